"""Checks of session data; each failure raises a specific :mod:`apim.errors` error.

Row numbers in messages are 1-based positions of the rows in the input table.
"""

from __future__ import annotations

import unicodedata
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from apim.data.hints import option
from apim.errors import (
    AllMissingError,
    ConstantVariableError,
    DataError,
    DataWarning,
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
    format_rows,
)

ROW = "row"  # column of 1-based input positions carried through every conversion


def require_columns(frame: pd.DataFrame, mapping: dict[str, str | None]) -> None:
    """Raise :class:`MissingColumnError` for the first mapped column not in ``frame``."""
    for what, column in mapping.items():
        if column is not None and column not in frame.columns:
            twins = [str(c) for c in frame.columns
                     if _name_key(str(c).rsplit(" (column ", 1)[0]) == _name_key(column)
                     and str(c).endswith(")") and " (column " in str(c)]
            if len(twins) > 1:
                raise DataError(
                    f"{what} column {column!r} is in the data more than once (as "
                    f"{' and '.join(repr(t) for t in twins[:3])}); rename the columns so "
                    "each has its own name")
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


LARGEST_SESSION = 2 ** 53  # beyond it, session numbers read as numbers are not exact


def integer_sessions(frame: pd.DataFrame, column: str, name: str) -> pd.Series:
    """Session numbers as int64, or :class:`SessionNotIntegerError` naming column ``name``;
    numbers beyond :data:`LARGEST_SESSION` are refused (never wrapped round)."""
    values = frame[column]
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.dtype == object:  # integers beyond uint64 stay Python ints
        numeric = numeric.astype(float)
    _sessions_in_range(values, numeric, frame, name)
    bad = numeric.isna() & values.notna()
    if not bad.any():
        finite = np.isfinite(numeric.to_numpy(dtype=float))
        bad = pd.Series(~finite | (np.mod(numeric.to_numpy(dtype=float), 1) != 0),
                        index=values.index)
    if bad.any():
        first = values[bad].iloc[0]
        as_number = numeric[bad].iloc[0]
        if not pd.isna(as_number):
            first = as_number
        raise SessionNotIntegerError(name, first, frame.loc[bad, ROW].tolist())
    return numeric.astype("int64")


def _sessions_in_range(values: pd.Series, numeric: pd.Series, frame: pd.DataFrame,
                       name: str) -> None:
    with np.errstate(invalid="ignore"):
        far = np.abs(numeric.to_numpy(dtype=float)) > LARGEST_SESSION
    if far.any():
        first = values[far].iloc[0]
        raise DataError(
            f"session column {name!r} holds {str(first).strip()} "
            f"({format_rows(frame.loc[far, ROW].tolist())}), beyond the largest session number "
            f"apim can hold ({LARGEST_SESSION:,} = 2^53; larger numbers would wrap round or "
            "lose digits); number the sessions 1, 2, 3, ... or give their dates")


def no_duplicates(frame: pd.DataFrame, keys: Sequence[str], names: Sequence[str]) -> None:
    """Each dyad x session x role may appear once."""
    dup = frame.duplicated(list(keys), keep=False)
    if dup.any():
        first = frame.loc[dup].iloc[0]
        same = (frame[list(keys)] == first[list(keys)]).all(axis=1)
        dyad, session, role = (first[k] for k in keys)
        raise DuplicateRowError(dyad, session, role, frame.loc[same, ROW].tolist(), names)


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
    if is_constant(present):
        raise ConstantVariableError(column, float(present.iloc[0]), scope)


def is_constant(present: pd.Series) -> bool:
    """Whether every value of ``present`` (no missing values, at least one) equals the
    first: one comparison per row, where counting the distinct values would hash them.

    Examples
    --------
    >>> is_constant(pd.Series([2.0, 2.0])), is_constant(pd.Series([2.0, -1.0]))
    (True, False)
    """
    return not bool((present.to_numpy() != present.iloc[0]).any())


def nfc(name: str) -> str:
    """A column name in Unicode NFC form, so that ``'Qualita\u0308t'`` (decomposed, as macOS
    and some exports write it) and ``'Qualit\u00e4t'`` are the same name.

    Examples
    --------
    >>> nfc("Qualita\u0308t") == "Qualit\u00e4t"
    True
    """
    return unicodedata.normalize("NFC", name) if isinstance(name, str) else name


def _name_key(name: object) -> str:
    return unicodedata.normalize("NFC", str(name)).strip()


def unique_names(names: Sequence[object], source: str,
                 needed: Sequence[str] = ()) -> list[str]:
    """Column names in Unicode NFC form (see :func:`nfc`) and made unique: repeated names
    (also those equal after Unicode normalisation or stripping spaces) become
    ``'name (column k)'``, with a :class:`DataWarning`; a repeated name that is ``needed``
    (mapped or in the model) is a :class:`DataError` naming both columns."""
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault(_name_key(name), []).append(i)
    out = [nfc(str(n)) for n in names]
    wanted = {_name_key(n) for n in needed}
    for key, positions in groups.items():
        if len(positions) < 2:
            continue
        shown = [str(names[i]) for i in positions]
        same = "the same name" if len(set(shown)) == 1 else (
            "names that differ only in Unicode normalisation or surrounding spaces")
        both = " and ".join(repr(n) for n in shown[:3])
        where = ", ".join(str(i + 1) for i in positions[:3])
        if key in wanted:
            raise DataError(
                f"{source} has two columns named {both} (columns {where}; {same}); rename "
                "one of them so each column has its own name")
        for i in positions:
            out[i] = f"{nfc(str(names[i]))} (column {i + 1})"
        warnings.warn(DataWarning(
            f"{source} has two columns named {both} (columns {where}; {same}); they are "
            f"kept as {', '.join(repr(out[i]) for i in positions[:3])}: rename them in the "
            "file to use them"), stacklevel=5)
    return out


def single_column_file(frame: pd.DataFrame, source: str) -> None:
    """A file read as one column whose name holds a delimiter: the delimiter was wrong."""
    if frame.shape[1] != 1:
        return
    name = str(frame.columns[0])
    for sep in (";", ",", "\t", "|", " "):
        if sep in name.strip():
            shown = "tab" if sep == "\t" else ("space" if sep == " " else repr(sep))
            raise DataError(
                f"{source} was read as a single column {name[:40]!r}: its delimiter ({shown}) "
                f"was not recognised; give it with {option('sep', sep)}")


THERAPIST_NAMES = ("therapist", "therapist_id", "therapistid", "clinician", "counselor",
                   "counsellor")


def unmapped_therapist(frame: pd.DataFrame) -> list[str]:
    """A note for a column that looks like a therapist id but is not mapped."""
    for column in frame.columns:
        if str(column).strip().lower() in THERAPIST_NAMES:
            return [f"column {column!r} is an ordinary variable here; to use it as the "
                    f"therapist id (therapist level, three-level centring) map it with "
                    f"{option('therapist', str(column))}"]
    return []


_ISO_DATE = r"\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?"


def session_order(frame: pd.DataFrame, column: str, name: str) -> tuple[pd.Series, str | None]:
    """Session numbers as int64; dates (ISO text, Excel or SPSS dates) become the order of
    the dates within each dyad, with a note and a :class:`DataWarning` that says so
    (the rule: each dyad's earliest date is session 1). Anything else raises
    :class:`SessionNotIntegerError` naming column ``name``."""
    values = frame[column]
    dates = None
    if pd.api.types.is_datetime64_any_dtype(values):
        dates = values
    elif not pd.api.types.is_numeric_dtype(values):
        text = values.dropna().astype(str).str.strip()
        if len(text) and text.str.fullmatch(_ISO_DATE).all():
            dates = pd.to_datetime(values.astype(str).str.strip(), format="ISO8601",
                                   errors="coerce")
            if dates.isna().any():
                bad = dates.isna().to_numpy()
                raise SessionNotIntegerError(name, values[bad].iloc[0],
                                             frame.loc[bad, ROW].tolist())
        elif len(text) and text.map(lambda v: hasattr(v, "year")).all():
            dates = pd.to_datetime(values)
    if dates is None:
        return integer_sessions(frame, column, name), None
    order = dates.groupby(frame["dyad"]).rank(method="dense").astype("int64")
    note = (f"session column {name!r} holds dates ({dates.min():%Y-%m-%d} to "
            f"{dates.max():%Y-%m-%d}): sessions are numbered 1, 2, ... in date order within "
            "each dyad (the earliest date of a dyad is session 1; two rows of a dyad on the "
            "same date are the same session), so a lag counts sessions held, not days")
    warnings.warn(DataWarning(note), stacklevel=4)
    return order, note


def near_duplicate_ids(frame: pd.DataFrame, column: str, name: str) -> None:
    """Warn about ids that differ only in case or surrounding spaces (``'A1'``, ``'a1 '``)."""
    ids = pd.Series(pd.unique(frame[column].dropna()))
    if ids.empty or pd.api.types.is_numeric_dtype(ids):
        return
    keys = ids.astype(str).str.strip().str.casefold()
    repeated = keys[keys.duplicated(keep=False)]
    if repeated.empty:
        return
    group = ids[keys == repeated.iloc[0]].tolist()
    rows = frame.loc[frame[column].isin(group)].drop_duplicates(column)[ROW].tolist()
    warnings.warn(DataWarning(
        f"column {name!r} holds ids {', '.join(repr(g) for g in group[:3])} that differ "
        f"only in case or surrounding spaces (first at {format_rows(rows)}); they are "
        "treated as different: correct the ids if they are the same"), stacklevel=4)


def suspicious_values(values: pd.Series, rows: pd.Series, column: str) -> str | None:
    """A message for values far outside the rest of a numeric column (-99, 999, 9999 ...),
    or None. Far: beyond 10 interquartile ranges of the other values, and rare."""
    x = values.dropna()
    if len(x) < 8:
        return None
    q1, q3 = np.percentile(x, [25, 75])
    spread = q3 - q1
    if spread <= 0:
        spread = float(np.std(x)) or 1.0
    far = ((values < q1 - 10 * spread) | (values > q3 + 10 * spread)).to_numpy()
    n = int(far.sum())
    if n == 0 or n > max(1, 0.05 * len(x)):
        return None
    codes = pd.unique(values[far])
    inside = x[~far[values.notna().to_numpy()]]
    listed = ",".join(f"{v:g}" for v in codes[:3])
    return (f"column {column!r} holds {', '.join(f'{v:g}' for v in codes[:3])} "
            f"({format_rows(rows[far].tolist())}), far outside its other values "
            f"({inside.min():g} to {inside.max():g}); if these are missing-value codes, "
            f"declare them with {option('missing', listed, f'({listed},)')}")


def within_variation(frame: pd.DataFrame, values: pd.Series, column: str,
                     what: str = "predictor") -> None:
    """Refuse a within-person split of a predictor no person rated at two sessions.

    A within effect (person-mean or three-level centring, latent centring) is the effect of
    a person's session-to-session changes; with one rated session per dyad member there are
    none, and the within part would be zero everywhere.

    Parameters
    ----------
    frame : DataFrame
        Long data with ``dyad``, ``role`` and ``session`` (``SessionData.frame``).
    values : Series
        The predictor, aligned with ``frame`` (missing where not rated).
    column : str
        Its name, for the message.
    what : str
        What it is in the model (``"predictor"``; ``"outcome"`` for latent centring).

    Raises
    ------
    DataError
        When every dyad member has at most one session with a rating of ``column``.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"dyad": [1, 1, 2, 2], "role": ["P", "T", "P", "T"],
    ...                       "session": [1, 1, 1, 1]})
    >>> within_variation(frame, pd.Series([1.0, 2.0, 3.0, 4.0]), "alliance")
    Traceback (most recent call last):
    ...
    apim.errors.DataError: predictor 'alliance' is rated at one session per person ...
    """
    rated = values.notna().to_numpy()
    if not rated.any():
        raise AllMissingError(column, "")
    per_person = pd.Series(rated).groupby(
        [frame["dyad"].to_numpy(), frame["role"].to_numpy()]).sum()
    if int(per_person.max()) >= 2:
        return
    raise DataError(
        f"{what} {column!r} is rated at one session per person (no member of any of the "
        f"{frame['dyad'].nunique()} dyads rated it at two sessions), so it has no "
        "within-person variation: its within effects (and latent centring) are not "
        f"identified; fit between-person effects with {option('center', 'grand')} (or "
        f"{option('center', 'none')}), or use data with several sessions per person")
