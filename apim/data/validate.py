"""Checks of session data; each failure raises a specific :mod:`apim.errors` error.

Row numbers in messages are 1-based positions of the rows in the input table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from apim.errors import (
    AllMissingError,
    ConstantVariableError,
    DuplicateRowError,
    MissingColumnError,
    MissingKeyError,
    NonFiniteError,
    NonNumericError,
    RoleCountError,
    RolesArgumentError,
    SessionNotIntegerError,
    TherapistChangeError,
    UnknownRoleError,
)

ROW = "row"  # column of 1-based input positions carried through every conversion


def require_columns(frame: pd.DataFrame, mapping: dict[str, str | None]) -> None:
    """Raise :class:`MissingColumnError` for the first mapped column not in ``frame``."""
    for what, column in mapping.items():
        if column is not None and column not in frame.columns:
            raise MissingColumnError(what, column, [str(c) for c in frame.columns])


def require_keys(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    """Identifying columns must have no empty cells."""
    for column in columns:
        empty = frame[column].isna().to_numpy()
        if empty.any():
            raise MissingKeyError(column, frame.loc[empty, ROW].tolist())


def role_labels(values: pd.Series) -> pd.Series:
    """Role values as strings; whole-number floats lose their ``.0`` (1.0 -> "1")."""
    if pd.api.types.is_float_dtype(values) and np.all(np.mod(values.dropna(), 1) == 0):
        values = values.astype("Int64")
    return values.astype(str)


def resolve_roles(labels: pd.Series, column: str,
                  roles: Sequence[object] | None) -> tuple[str, str]:
    """Check the role column against ``roles`` and return the two roles, reference first."""
    present = list(pd.unique(labels))
    if roles is None:
        if len(present) != 2:
            raise RoleCountError(column, sorted(present))
        return tuple(sorted(present))  # type: ignore[return-value]
    if isinstance(roles, str) or len(roles) != 2 or str(roles[0]) == str(roles[1]):
        raise RolesArgumentError(roles)
    wanted = (str(roles[0]), str(roles[1]))
    for value in present:
        if value not in wanted:
            rows = labels.index[labels == value]
            raise UnknownRoleError(column, value, rows.tolist(), wanted)
    if len(present) != 2:
        raise RoleCountError(column, present)
    return wanted


def integer_sessions(frame: pd.DataFrame, column: str, name: str) -> pd.Series:
    """Session numbers as int64, or :class:`SessionNotIntegerError` naming column ``name``."""
    values = frame[column]
    numeric = pd.to_numeric(values, errors="coerce")
    bad = numeric.isna() & values.notna()
    if not bad.any():
        finite = np.isfinite(numeric.to_numpy(dtype=float))
        bad = pd.Series(~finite | (np.mod(numeric.to_numpy(dtype=float), 1) != 0),
                        index=values.index)
    if bad.any():
        first = values[bad].iloc[0]
        raise SessionNotIntegerError(name, first, frame.loc[bad, ROW].tolist())
    return numeric.astype("int64")


def no_duplicates(frame: pd.DataFrame, keys: Sequence[str], names: Sequence[str]) -> None:
    """Each dyad x session x role may appear once."""
    dup = frame.duplicated(list(keys), keep=False)
    if dup.any():
        first = frame.loc[dup].iloc[0]
        same = (frame[list(keys)] == first[list(keys)]).all(axis=1)
        raise DuplicateRowError(*(first[k] for k in keys), frame.loc[same, ROW].tolist(),
                                names)


def one_therapist_per_dyad(frame: pd.DataFrame, dyad: str, therapist: str,
                           name: str) -> None:
    """The therapist id must be constant within a dyad."""
    counts = frame.groupby(dyad, sort=False)[therapist].nunique()
    changing = counts.index[counts > 1]
    if len(changing):
        d = changing[0]
        rows = frame.loc[frame[dyad] == d]
        values = list(pd.unique(rows[therapist]))
        firsts = rows.drop_duplicates(therapist)[ROW].tolist()
        raise TherapistChangeError(name, d, values, firsts)


def numeric_column(frame: pd.DataFrame, column: str) -> pd.Series:
    """A variable as float64: text raises :class:`NonNumericError`, ±inf :class:`NonFiniteError`."""
    values = frame[column]
    if pd.api.types.is_bool_dtype(values):
        values = values.astype(float)
    if not pd.api.types.is_numeric_dtype(values):
        numeric = pd.to_numeric(values, errors="coerce")
        bad = numeric.isna() & values.notna()
        if bad.any():
            raise NonNumericError(column, values[bad].iloc[0], frame.loc[bad, ROW].tolist())
        values = numeric
    values = values.astype("float64")
    inf = np.isinf(values.to_numpy())
    if inf.any():
        raise NonFiniteError(column, float(values[inf].iloc[0]), frame.loc[inf, ROW].tolist())
    return values


def informative(values: pd.Series, column: str, scope: str = "") -> None:
    """A predictor must have at least two distinct non-missing values."""
    present = values.dropna()
    if present.empty:
        raise AllMissingError(column, scope)
    if present.nunique() == 1:
        raise ConstantVariableError(column, float(present.iloc[0]), scope)
