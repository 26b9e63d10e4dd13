"""Conversions between long, dyad-wide and pairwise layouts.

All conversions are lossless: long -> wide -> long and long -> pairwise -> long give back
the same values (wide data completes the dyad x session x role grid, so a member absent
from a session comes back as a row of missing values).

Examples
--------
>>> import pandas as pd
>>> from apim.data.session import SessionData
>>> df = pd.DataFrame({"d": [1, 1], "r": ["P", "T"], "x": [1.0, 2.0]})
>>> data = SessionData.from_long(df, dyad="d", role="r", roles=("P", "T"))
>>> data.to_pairwise()[["x_A", "x_P"]].values.tolist()
[[1.0, 2.0], [2.0, 1.0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import pandas as pd

from apim.data.interface import SessionLike
from apim.data.validate import require_columns
from apim.errors import PartnerMismatchError, RolesArgumentError, SpecError

T = TypeVar("T", bound=SessionLike)

ROW = "row"
FILE_ROW = "_file_row"  # the wide row's 1-based position, carried into both long rows


def partner_values(data: SessionLike, columns: Sequence[str]) -> pd.DataFrame:
    """The other member's values of ``columns`` at the same dyad and session.

    Rows whose partner has no row at that session get missing values.
    """
    frame = data.frame
    other = {data.roles[0]: data.roles[1], data.roles[1]: data.roles[0]}
    lookup = frame[["dyad", "session", "role", *columns]].assign(
        role=frame["role"].map(other))
    merged = frame[["dyad", "session", "role"]].merge(
        lookup, on=["dyad", "session", "role"], how="left", validate="one_to_one")
    merged.index = frame.index
    return merged[list(columns)]


def long_to_pairwise(data: SessionLike, actor_suffix: str, partner_suffix: str,
                     variables: Sequence[str] | None) -> pd.DataFrame:
    """Pairwise table: ``v{actor_suffix}`` own values, ``v{partner_suffix}`` partner's.

    By default every variable that differs between the members is paired; variables both
    members share (treatment arm, centred time) stay single columns.
    """
    if variables is None:
        shared = shared_columns(data)
        variables = [v for v in data.variables if v not in shared]
    long = data.to_long()
    partner = partner_values(data, variables)
    for v in variables:
        position = long.columns.get_loc(v)
        long = long.rename(columns={v: f"{v}{actor_suffix}"})
        long.insert(position + 1, f"{v}{partner_suffix}", partner[v].to_numpy())
    return long


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Elementwise equality treating two missing values as equal (numbers to 1e-9)."""
    both_missing = a.isna().to_numpy() & b.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
        x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            close = np.abs(x - y) <= 1e-9 * np.maximum(1.0, np.abs(y))
        return both_missing | close
    return both_missing | (a.astype(object).to_numpy() == b.astype(object).to_numpy())


def _recodes_role(frame: pd.DataFrame, actor: pd.Series, partner: pd.Series) -> bool:
    """Whether an actor/partner pair only names the member's role and the partner's, each
    in labels of its own (dyadr's Acitelli file: ``Gender_A`` 'Husband'/'Wife' beside
    ``Gender_P`` 'MALE'/'FEMALE'): one value per role in each column, different between
    the roles, none missing."""
    role = frame["role"]

    def one_per_role(values: pd.Series) -> bool:
        # labels only: a numeric variable that happens to be constant within each role
        # (e.g. two rows) is a variable and is checked as one
        if values.isna().any() or pd.api.types.is_numeric_dtype(values):
            return False
        per_role = values.astype(str).groupby(role.to_numpy(), observed=True).nunique()
        labels = values.astype(str).groupby(role.to_numpy(), observed=True).first()
        return bool(len(per_role) == 2 and (per_role == 1).all() and labels.nunique() == 2)

    return one_per_role(actor) and one_per_role(partner)


def pairwise_to_long(data: T, actor_suffix: str, partner_suffix: str) -> T:
    """Strip actor suffixes, check partner columns against the partner's rows, drop them.

    Only columns present with both suffixes are paired; any other column is kept as it is.
    A pair of text columns that only recodes the roles (one label per role in each column,
    possibly different labels in the two columns, as ``Gender_A`` 'Wife' beside ``Gender_P``
    'MALE') repeats the role column and is dropped.
    """
    frame = data.frame
    paired = [c[: -len(actor_suffix)] for c in frame.columns
              if isinstance(c, str) and c.endswith(actor_suffix) and len(c) > len(actor_suffix)
              and f"{c[: -len(actor_suffix)]}{partner_suffix}" in frame.columns]
    clash = [s for s in paired if s in frame.columns]
    if clash:
        raise SpecError(
            f"column {clash[0]!r} exists both with and without the actor suffix "
            f"{actor_suffix!r}; rename one of them")
    recoded = [s for s in paired if _recodes_role(frame, frame[f"{s}{actor_suffix}"],
                                                  frame[f"{s}{partner_suffix}"])]
    paired = [s for s in paired if s not in recoded]
    frame = frame.drop(columns=[f"{s}{x}" for s in recoded for x in (actor_suffix,
                                                                     partner_suffix)])
    frame = frame.rename(columns={f"{s}{actor_suffix}": s for s in paired})
    own = data.replace(frame)
    partner = partner_values(own, paired)
    for s in paired:
        given = frame[f"{s}{partner_suffix}"]
        ok = _same(given, partner[s])
        if not ok.all():
            bad = ~ok
            raise PartnerMismatchError(f"{s}{partner_suffix}", given[bad].iloc[0],
                                       partner[s][bad].iloc[0], frame.loc[bad, ROW].tolist())
    role_column = data.columns.role
    implied = [f"{s}{partner_suffix}" for s in paired]
    if role_column.endswith(actor_suffix):
        implied.append(role_column[: -len(actor_suffix)] + partner_suffix)
    frame = frame.drop(columns=[c for c in implied if c in frame.columns])
    return data.replace(frame)


def shared_columns(data: SessionLike) -> list[str]:
    """Variables equal for both members at every dyad x session (e.g. treatment, time)."""
    variables = data.variables
    if not variables:
        return []
    partner = partner_values(data, variables)
    counts = data.frame.groupby(["dyad", "session"])["role"].transform("size")
    both = (counts == 2).to_numpy()
    return [v for v in variables if _same(data.frame[v], partner[v])[both].all()]


def long_to_wide(data: SessionLike, separator: str) -> pd.DataFrame:
    """One row per dyad x session; role-specific columns ``{role}{separator}{variable}``."""
    frame = data.frame
    keys = ["dyad", "session"] + (["therapist"] if data.has_therapist else [])
    shared = shared_columns(data)
    own = [v for v in data.variables if v not in shared]
    if not own:  # keep role-prefixed columns so the wide table still names the roles
        shared, own = [], data.variables
    index = frame[keys].drop_duplicates().reset_index(drop=True)
    wide = index.merge(frame.groupby(["dyad", "session"], sort=False)[shared].first()
                       .reset_index(), on=["dyad", "session"], how="left")
    for role in data.roles:
        part = frame.loc[frame["role"] == role, ["dyad", "session", *own]]
        part = part.rename(columns={v: f"{role}{separator}{v}" for v in own})
        wide = wide.merge(part, on=["dyad", "session"], how="left")
    if data.columns.session is None:
        wide = wide.drop(columns="session")
    return wide.rename(columns=data.columns.user())


def wide_to_long(frame: pd.DataFrame, roles: Sequence[str], separator: str,
                 keys: Sequence[str]) -> pd.DataFrame:
    """Stack ``{role}{separator}{variable}`` columns into one row per role."""
    if isinstance(roles, str) or len(roles) != 2 or roles[0] == roles[1]:
        raise RolesArgumentError(roles)
    require_columns(frame, {f"key {k}": k for k in keys})
    if "role" in frame.columns:
        raise SpecError("wide data already has a column 'role'; rename it before stacking")
    prefixes = {r: f"{r}{separator}" for r in roles}
    owned = {r: [c for c in frame.columns if isinstance(c, str) and c.startswith(p)]
             for r, p in prefixes.items()}
    if not owned[roles[0]] and not owned[roles[1]]:
        raise SpecError(
            f"no column starts with {prefixes[roles[0]]!r} or {prefixes[roles[1]]!r}; "
            "wide data needs role-prefixed columns such as "
            f"{prefixes[roles[0]]}alliance")
    shared = [c for c in frame.columns if c not in owned[roles[0]] + owned[roles[1]]]
    stems = list(dict.fromkeys(c[len(prefixes[r]):] for r in roles for c in owned[r]))
    parts = []
    for order, r in enumerate(roles):
        part = frame[shared].copy()
        part["role"] = r
        for s in stems:
            column = f"{prefixes[r]}{s}"
            part[s] = frame[column] if column in frame.columns else np.nan
        part[FILE_ROW] = np.arange(1, len(frame) + 1)
        part["_order"] = order
        parts.append(part)
    long = pd.concat(parts, ignore_index=True).sort_values([FILE_ROW, "_order"])
    return long.drop(columns=["_order"]).reset_index(drop=True)
