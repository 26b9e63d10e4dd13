"""Validated session-by-session dyadic data in long ("individual") format.

:class:`SessionData` is the normalised form every other part of apim reads: one row per
dyad x session x role, identifying columns under canonical names (``dyad``, ``session``,
``role``, optional ``therapist``) and every other column kept as it was. The original
names are remembered, so conversions give back the user's own column names.

Examples
--------
>>> import pandas as pd
>>> raw = pd.DataFrame({"pair": [1, 1, 1, 1], "week": [1, 1, 2, 2],
...                     "who": ["P", "T", "P", "T"], "wai": [5.0, 6.0, 5.5, 6.5]})
>>> data = SessionData.from_long(raw, dyad="pair", session="week", role="who",
...                              roles=("P", "T"))
>>> data.roles
('P', 'T')
>>> data.n_dyads
1
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from apim.data import validate as check
from apim.data.io import read_table
from apim.errors import EmptyDataError, MissingColumnError, SpecError

if TYPE_CHECKING:
    from apim.data.report import DataReport

__all__ = ["ColumnMap", "SessionData", "KEYS"]

KEYS = ("dyad", "session", "role")
ROW = check.ROW


@dataclass(frozen=True)
class ColumnMap:
    """Names of the identifying columns in the user's data.

    ``session=None`` means cross-sectional data (one measurement per person), stored as
    session 1.
    """

    dyad: str
    session: str | None
    role: str
    therapist: str | None = None

    def canonical(self) -> dict[str, str]:
        """Map user names to canonical names."""
        pairs = {"dyad": self.dyad, "session": self.session, "role": self.role,
                 "therapist": self.therapist}
        return {user: canon for canon, user in pairs.items() if user is not None}

    def user(self) -> dict[str, str]:
        """Map canonical names back to user names."""
        return {canon: user for user, canon in self.canonical().items()}


def as_frame(source: pd.DataFrame | str | Path) -> tuple[pd.DataFrame, str]:
    """Read ``source`` if it is a path; return the table and a description of it."""
    if isinstance(source, pd.DataFrame):
        frame, name = source, "the data frame"
    else:
        frame, name = read_table(source), f"file {str(source)!r}"
    if len(frame) == 0:
        raise EmptyDataError(name)
    return frame, name


@dataclass(frozen=True)
class SessionData:
    """Session-by-session data of distinguishable or indistinguishable dyads.

    Build it with :meth:`from_long`, :meth:`from_wide` or :meth:`from_pairwise`; the
    constructors validate the data (DESIGN.md §9) and never drop a row.

    Attributes
    ----------
    frame : pandas.DataFrame
        Long data sorted by dyad, session and role (reference role first), with canonical
        columns ``dyad``, ``session`` (int), ``role`` (str), optional ``therapist``,
        ``row`` (1-based position of the row in the input) and the other columns.
    roles : tuple of str
        The two roles, the reference first.
    columns : ColumnMap
        The user's names of the identifying columns.
    source : str
        Where the data came from, for messages.
    """

    frame: pd.DataFrame = field(repr=False)
    roles: tuple[str, str]
    columns: ColumnMap
    source: str = "the data frame"

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_long(cls, data: pd.DataFrame | str | Path, *, dyad: str, role: str,
                  session: str | None = None, roles: Sequence[object] | None = None,
                  therapist: str | None = None) -> SessionData:
        """Validate long data: one row per dyad x session x role.

        Parameters
        ----------
        data : DataFrame or path
            The table, or a file :func:`apim.data.io.read_table` can read.
        dyad, session, role : str
            Names of the identifying columns. ``session=None`` for cross-sectional data.
        roles : pair, optional
            The two role values, the reference first. Default: the two values sorted.
        therapist : str, optional
            Column identifying a therapist who may serve several dyads.

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"d": [1, 1], "r": ["wife", "husband"], "y": [3.0, 4.0]})
        >>> SessionData.from_long(df, dyad="d", role="r").roles
        ('husband', 'wife')
        """
        frame, name = as_frame(data)
        columns = ColumnMap(dyad=dyad, session=session, role=role, therapist=therapist)
        return cls._build(frame, columns, roles, name)

    @classmethod
    def _build(cls, frame: pd.DataFrame, columns: ColumnMap,
               roles: Sequence[object] | None, source: str) -> SessionData:
        check.require_columns(frame, {"dyad": columns.dyad, "session": columns.session,
                                      "role": columns.role, "therapist": columns.therapist})
        rename = columns.canonical()
        clashes = [c for c in frame.columns if c in ("dyad", "session", "role", "therapist",
                                                     ROW) and c not in rename]
        if clashes:
            raise SpecError(
                f"column {clashes[0]!r} clashes with a name apim reserves for identifying "
                f"columns; rename it or map it with {clashes[0]}=...")
        frame = frame.rename(columns=rename).copy()
        frame.insert(0, ROW, np.arange(1, len(frame) + 1))
        if columns.session is None:
            frame["session"] = 1
        keys = ["dyad", "session", "role"] + (["therapist"] if columns.therapist else [])
        check.require_keys(frame, [k for k in keys])
        labels = check.role_labels(frame["role"])
        resolved = check.resolve_roles(pd.Series(labels.to_numpy(), index=frame[ROW]),
                                       columns.role, roles)
        frame["role"] = labels
        frame["session"] = check.integer_sessions(frame, "session", columns.session or "session")
        check.no_duplicates(frame, list(KEYS),
                            [columns.dyad, columns.session or "session", columns.role])
        if columns.therapist:
            check.one_therapist_per_dyad(frame, "dyad", "therapist", columns.therapist)
        order = pd.Categorical(frame["role"], categories=list(resolved)).codes
        frame = (frame.assign(_order=order)
                 .sort_values(["dyad", "session", "_order"], kind="stable")
                 .drop(columns="_order").reset_index(drop=True))
        front = [ROW, "dyad", "session", "role"] + (["therapist"] if columns.therapist else [])
        frame = frame[front + [c for c in frame.columns if c not in front]]
        return cls(frame=frame, roles=resolved, columns=columns, source=source)

    @classmethod
    def from_wide(cls, data: pd.DataFrame | str | Path, *, dyad: str, roles: Sequence[str],
                  session: str | None = None, therapist: str | None = None,
                  separator: str = "_") -> SessionData:
        """Read dyad-wide data: one row per dyad x session, ``{role}{separator}{variable}``.

        Columns without a role prefix (e.g. a treatment arm, centred time) are shared by
        both members and copied into both rows. Every wide row gives one row per role.

        Examples
        --------
        >>> import pandas as pd
        >>> wide = pd.DataFrame({"d": [1], "t": [1], "f_y": [2.0], "m_y": [3.0]})
        >>> SessionData.from_wide(wide, dyad="d", session="t", roles=("f", "m")).frame["y"].tolist()
        [2.0, 3.0]
        """
        from apim.data.formats import wide_to_long

        frame, name = as_frame(data)
        long = wide_to_long(frame, roles=roles, separator=separator,
                            keys=[c for c in (dyad, session, therapist) if c])
        columns = ColumnMap(dyad=dyad, session=session, role="role", therapist=therapist)
        return cls._build(long, columns, roles, name)

    @classmethod
    def from_pairwise(cls, data: pd.DataFrame | str | Path, *, dyad: str, role: str,
                      session: str | None = None, roles: Sequence[object] | None = None,
                      therapist: str | None = None, actor_suffix: str = "_A",
                      partner_suffix: str = "_P") -> SessionData:
        """Read pairwise data: each person's row also holds the partner's values.

        ``x{actor_suffix}`` is the person's own value and ``x{partner_suffix}`` the partner's
        at the same session (Kenny's ``_A``/``_P`` convention). Partner columns are checked
        against the partner's own row and then dropped: they carry no new information.

        Raises
        ------
        PartnerMismatchError
            When a partner column disagrees with the partner's own row.
        """
        from apim.data.formats import pairwise_to_long

        frame, name = as_frame(data)
        own = cls.from_long(frame, dyad=dyad, session=session, role=role, roles=roles,
                            therapist=therapist)
        return pairwise_to_long(own, actor_suffix, partner_suffix)

    # ------------------------------------------------------------------ views
    @property
    def n_dyads(self) -> int:
        """Number of dyads."""
        return int(self.frame["dyad"].nunique())

    @property
    def has_therapist(self) -> bool:
        """Whether a therapist column is mapped."""
        return self.columns.therapist is not None

    @property
    def variables(self) -> list[str]:
        """Columns other than the identifying ones."""
        skip = {ROW, "dyad", "session", "role", "therapist"}
        return [c for c in self.frame.columns if c not in skip]

    def numeric(self, column: str) -> pd.Series:
        """A variable as float64 after checking it is numeric and finite."""
        if column == ROW:
            raise MissingColumnError("variable", column, self.variables)
        check.require_columns(self.frame, {"variable": column})
        return check.numeric_column(self.frame, column)

    def replace(self, frame: pd.DataFrame) -> SessionData:
        """The same data description with another frame (rows in the same order)."""
        return SessionData(frame=frame, roles=self.roles, columns=self.columns,
                           source=self.source)

    # ------------------------------------------------------------------ conversions
    def to_long(self) -> pd.DataFrame:
        """Long data under the user's column names (cross-sectional: no session column)."""
        frame = self.frame.drop(columns=ROW)
        if self.columns.session is None:
            frame = frame.drop(columns="session")
        return frame.rename(columns=self.columns.user())

    def to_wide(self, separator: str = "_") -> pd.DataFrame:
        """One row per dyad x session with ``{role}{separator}{variable}`` columns."""
        from apim.data.formats import long_to_wide

        return long_to_wide(self, separator)

    def to_pairwise(self, actor_suffix: str = "_A", partner_suffix: str = "_P",
                    variables: Sequence[str] | None = None) -> pd.DataFrame:
        """Each row with the partner's same-session values beside the person's own.

        ``variables`` are the columns to pair; default: those that differ between members.
        """
        from apim.data.formats import long_to_pairwise

        return long_to_pairwise(self, actor_suffix, partner_suffix, variables)

    def report(self, variables: Sequence[str] | None = None) -> DataReport:
        """The data report (see :class:`apim.data.report.DataReport`)."""
        from apim.data.report import DataReport

        return DataReport.of(self, variables)
