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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import apim.data.validate as check
from apim.data.formats import (
    FILE_ROW,
    long_to_pairwise,
    long_to_wide,
    pairwise_to_long,
    wide_to_long,
)
from apim.data.hints import option
from apim.data.io import ReadOptions, _missing_codes, read_with_notes
from apim.data.report import DataReport
from apim.errors import EmptyDataError, MissingColumnError, SpecError

__all__ = ["ColumnMap", "SessionData", "RowKeys", "KEYS"]

READ_OPTIONS = ("sep", "decimal", "encoding", "sheet", "missing", "columns")


def _check_read(read: dict[str, Any]) -> None:
    unknown = [k for k in read if k not in READ_OPTIONS]
    if unknown:
        raise SpecError(f"unknown option {unknown[0]!r}; the reading options are "
                        f"{', '.join(READ_OPTIONS)}")

KEYS = ("dyad", "session", "role")


def copy_on_write() -> bool:
    """Whether pandas copies on write (always from pandas 3; an option in pandas 2). Then
    a shallow copy of a frame is a cheap independent copy; otherwise copies must be deep
    to keep :class:`SessionData` immutable."""
    if int(pd.__version__.split(".", 1)[0]) >= 3:
        return True
    return pd.options.mode.copy_on_write is True


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

    def __post_init__(self) -> None:  # names in NFC form, as the columns read are
        for name in ("dyad", "session", "role", "therapist"):
            object.__setattr__(self, name, check.nfc(getattr(self, name)))

    def canonical(self) -> dict[str, str]:
        """Map user names to canonical names."""
        pairs = {"dyad": self.dyad, "session": self.session, "role": self.role,
                 "therapist": self.therapist}
        return {user: canon for canon, user in pairs.items() if user is not None}

    def user(self) -> dict[str, str]:
        """Map canonical names back to user names."""
        return {canon: user for user, canon in self.canonical().items()}


def as_frame(source: pd.DataFrame | str | Path,
             options: ReadOptions | None = None) -> tuple[pd.DataFrame, str, list[str]]:
    """Read ``source`` if it is a path; return the table, a description of it and the
    reader's notes. Declared missing codes also apply to a DataFrame."""
    options = options or ReadOptions()
    notes: list[str] = []
    if isinstance(source, pd.DataFrame):
        frame, name = source, "the data frame"
        names = check.unique_names(list(frame.columns), name,
                                   [*options.identifiers, *(options.columns or ())])
        if names != [str(c) for c in frame.columns]:
            frame = frame.set_axis(names, axis=1)
        if options.missing:
            frame = _missing_codes(frame.copy(), options.missing, options.identifiers, notes)
    elif isinstance(source, (str, Path)):
        frame, notes = read_with_notes(source, options)
        name = f"file {str(source)!r}"
    else:
        raise SpecError(f"data must be a pandas DataFrame or a file path, not "
                        f"{type(source).__name__}")
    if len(frame) == 0:
        raise EmptyDataError(name)
    return frame, name, notes


def _options(identifiers: Sequence[str | None], labelled: Sequence[str | None],
             read: dict[str, Any]) -> ReadOptions:
    missing = read.pop("missing", None) or ()
    if isinstance(missing, (int, float, str)):
        missing = (missing,)
    try:
        codes = tuple(float(m) for m in missing)
    except (TypeError, ValueError):
        raise SpecError(f"missing={missing!r} must be numbers, e.g. missing=(-99, 999)") \
            from None
    columns = read.pop("columns", None)
    return ReadOptions(identifiers=tuple(check.nfc(c) for c in identifiers if c),
                       labelled=tuple(check.nfc(c) for c in labelled if c), missing=codes,
                       columns=None if columns is None else tuple(check.nfc(c)
                                                                  for c in columns), **read)


@dataclass(frozen=True, eq=False)
class RowKeys:
    """Integer keys of the rows of a long table, for computing per person and per partner
    without pandas' group-bys and merges.

    Attributes
    ----------
    role : (N,) int8, 0 for the reference role and 1 for the other
    person : (N,) int64, ``2 * dyad code + role`` (dyad codes in order of appearance)
    partner : (N,) int64, the row of the other member of the dyad at the same session, or
        -1 when that member has no row there
    first : (2 * dyads,) int64, the first row of each person code, or -1 (a member with
        no rows)

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"d": [1, 1, 1, 2], "t": [1, 1, 2, 1], "r": ["P", "T", "P", "T"],
    ...                    "x": [1.0, 2.0, 3.0, 4.0]})
    >>> keys = SessionData.from_long(df, dyad="d", session="t", role="r").keys
    >>> keys.partner.tolist(), keys.person.tolist()
    ([1, 0, -1, -1], [0, 1, 0, 3])
    """

    role: np.ndarray
    person: np.ndarray
    partner: np.ndarray
    first: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame, roles: tuple[str, str]) -> RowKeys | None:
        """The keys of ``frame`` (any row order), or None when its identifying columns are
        not what validation makes of them (then callers use pandas)."""
        session = frame["session"]
        if not pd.api.types.is_integer_dtype(session) or len(frame) == 0:
            return None
        role_values = frame["role"]
        role = (role_values == roles[1]).to_numpy(bool)
        if not bool(((role_values == roles[0]).to_numpy(bool) | role).all()):
            return None
        dyad = pd.factorize(frame["dyad"])[0].astype(np.int64)
        if (dyad < 0).any():
            return None
        n = len(frame)
        person = 2 * dyad + role
        t = session.to_numpy(np.int64)
        low, span = int(t.min()), int(t.max()) - int(t.min()) + 1
        if (int(dyad.max()) + 1) * span * 2 >= 2 ** 62:
            return None
        key = (dyad * span + (t - low)) * 2 + role  # dyad, session, role
        order = None if bool(np.all(key[1:] >= key[:-1])) else np.argsort(key, kind="stable")
        rows = np.arange(n) if order is None else order
        ks = key[rows] // 2
        rs = role[rows]
        both = (ks[1:] == ks[:-1]) & (rs[1:] != rs[:-1])
        partner = np.full(n, -1, np.int64)
        partner[rows[:-1][both]] = rows[1:][both]
        partner[rows[1:][both]] = rows[:-1][both]
        first = np.full(2 * (int(dyad.max()) + 1), -1, np.int64)
        codes, at = np.unique(person, return_index=True)
        first[codes] = at
        return cls(role=role.astype(np.int8), person=person, partner=partner, first=first)


def _role_labels(values: pd.Series) -> tuple[pd.Series, np.ndarray | None, list[str]]:
    """The role column as text (:func:`apim.data.validate.role_labels`) and, for a
    numeric column, each row's code into the distinct labels (``names``): numbers are
    converted once per distinct value, not row by row.

    Examples
    --------
    >>> labels, codes, names = _role_labels(pd.Series([2.0, 1.0, 2.0]))
    >>> labels.tolist(), codes.tolist(), names
    (['2', '1', '2'], [0, 1, 0], ['2', '1'])
    """
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values) \
            or values.isna().any():
        return check.role_labels(values), None, []
    codes, uniques = pd.factorize(values)
    text = check.role_labels(pd.Series(uniques))
    labels = pd.Series(text.array.take(codes), index=values.index, name=values.name,
                       copy=False)
    return labels, codes, [str(t) for t in text]


def _sorted_rows(frame: pd.DataFrame, role_order: np.ndarray) -> bool:
    """Whether the rows are sorted by dyad, session and role (in ``role_order``), so that
    sorting them (stably) would change nothing."""
    dyad = frame["dyad"]
    if len(frame) < 2:
        return True
    try:
        if not dyad.is_monotonic_increasing:
            return False
    except TypeError:  # ids pandas cannot order: let the sort decide
        return False
    values = dyad.to_numpy()
    same = values[1:] == values[:-1]
    session = frame["session"].to_numpy()
    if np.any(same & (session[1:] < session[:-1])):
        return False
    same &= session[1:] == session[:-1]
    return not bool(np.any(same & (role_order[1:] < role_order[:-1])))


def _adjacent_duplicates(frame: pd.DataFrame, role_order: np.ndarray) -> bool:
    """In sorted rows, whether two neighbours have the same dyad, session and role."""
    values = frame["dyad"].to_numpy()
    session = frame["session"].to_numpy()
    return bool(np.any((values[1:] == values[:-1]) & (session[1:] == session[:-1])
                       & (role_order[1:] == role_order[:-1])))


class SessionData:
    """Session-by-session data of distinguishable or indistinguishable dyads.

    Build it with :meth:`from_long`, :meth:`from_wide` or :meth:`from_pairwise`; the
    constructors validate the data (DESIGN.md §9) and never drop a row. The object is
    immutable: :attr:`frame` returns a copy (cheap under pandas' copy-on-write), so a
    change to it never reaches a fit made from this data.

    Attributes
    ----------
    frame : pandas.DataFrame
        Long data sorted by dyad, session and role (reference role first), with canonical
        columns ``dyad``, ``session`` (int), ``role`` (str), optional ``therapist``,
        ``row`` (1-based data row of the user's file: row 1 is the first line after the
        header, in every layout) and the other columns.
    roles : tuple of str
        The two roles, the reference first.
    columns : ColumnMap
        The user's names of the identifying columns.
    source : str
        Where the data came from, for messages.
    notes : tuple of str
        What reading and validation decided (encoding, codes set missing, session dates).
    """

    __slots__ = ("_frame", "roles", "columns", "source", "notes", "_keys")

    _frame: pd.DataFrame
    roles: tuple[str, str]
    columns: ColumnMap
    source: str
    notes: tuple[str, ...]
    _keys: tuple[RowKeys | None, ...]  # () until computed

    def __init__(self, frame: pd.DataFrame, roles: tuple[str, str], columns: ColumnMap,
                 source: str = "the data frame", notes: Sequence[str] = ()) -> None:
        object.__setattr__(self, "_frame", frame.copy(deep=not copy_on_write()))
        object.__setattr__(self, "roles", tuple(roles))
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "notes", tuple(notes))
        object.__setattr__(self, "_keys", ())

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"SessionData is immutable; build new data with "
                             f"data.replace(frame) instead of setting {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:  # pickling for parallel workers
        return (SessionData, (self._frame, self.roles, self.columns, self.source, self.notes))

    def __repr__(self) -> str:
        return (f"SessionData({len(self._frame)} rows, {self.n_dyads} dyads, "
                f"roles={self.roles!r}, source={self.source!r})")

    @property
    def frame(self) -> pd.DataFrame:
        """The long table (a copy: changing it does not change the data)."""
        return self._frame.copy(deep=not copy_on_write())

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_long(cls, data: pd.DataFrame | str | Path, *, dyad: str, role: str,
                  session: str | None = None, roles: Sequence[object] | None = None,
                  therapist: str | None = None, first_row: int = 1,
                  **read: Any) -> SessionData:
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
        first_row : int
            The row number of the first row (default 1): a block of a larger file keeps
            the file's row numbers in messages and in the rows dropped.
        sep, decimal, encoding, sheet, missing, columns : optional
            How to read a file (see :func:`apim.data.io.read_table`); ``missing`` codes
            (e.g. ``(-99, 999)``) also apply to a DataFrame.

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"d": [1, 1], "r": ["wife", "husband"], "y": [3.0, 4.0]})
        >>> SessionData.from_long(df, dyad="d", role="r").roles
        ('husband', 'wife')
        """
        _check_read(read)
        options = _options([dyad, session, role, therapist], [role], dict(read))
        frame, name, notes = as_frame(data, options)
        columns = ColumnMap(dyad=dyad, session=session, role=role, therapist=therapist)
        rows = None if first_row == 1 else np.arange(first_row, first_row + len(frame))
        return cls._build(frame, columns, roles, name, notes, rows)

    @classmethod
    def _build(cls, frame: pd.DataFrame, columns: ColumnMap,
               roles: Sequence[object] | None, source: str, notes: Sequence[str] = (),
               rows: np.ndarray | None = None) -> SessionData:
        notes = list(notes)
        for what, column in {"dyad": columns.dyad, "session": columns.session,
                             "role": columns.role, "therapist": columns.therapist}.items():
            if column is not None and not isinstance(column, str):
                raise SpecError(f"{what}={column!r} must be a column name")
        check.single_column_file(frame, source)
        check.require_columns(frame, {"dyad": columns.dyad, "session": columns.session,
                                      "role": columns.role, "therapist": columns.therapist})
        rename = columns.canonical()
        reserved = ["dyad", "session", "role", ROW]
        if columns.therapist is not None:
            reserved.append("therapist")
        clashes = [c for c in frame.columns if c in reserved and c not in rename]
        if clashes:
            raise SpecError(
                f"column {clashes[0]!r} clashes with a name apim reserves for identifying "
                f"columns; rename it, or map it with {option(clashes[0], clashes[0])}")
        if columns.therapist is None:
            notes += check.unmapped_therapist(frame)
        frame = frame.rename(columns=rename)  # a new frame: changing it spares the input
        frame.insert(0, ROW, np.arange(1, len(frame) + 1) if rows is None else rows)
        if columns.session is None:
            frame["session"] = 1
        keys = ["dyad", "session", "role"] + (["therapist"] if columns.therapist else [])
        check.require_keys(frame, [k for k in keys])
        labels, codes, names = _role_labels(frame["role"])
        resolved = check.resolve_roles(pd.Series(labels.array, index=pd.Index(frame[ROW]),
                                                 copy=False), columns.role, roles)
        frame["role"] = labels
        frame["session"], note = check.session_order(frame, "session",
                                                     columns.session or "session")
        if note:
            notes.append(note)
        if codes is None:
            order = pd.Categorical(frame["role"], categories=list(resolved)).codes
        else:  # the few distinct labels placed, then every row by its code
            order = np.array([resolved.index(n) for n in names], np.int8)[codes]
        in_order = _sorted_rows(frame, order)  # files usually come sorted
        if not in_order or _adjacent_duplicates(frame, order):
            check.no_duplicates(frame, list(KEYS),
                                [columns.dyad, columns.session or "session", columns.role])
        if columns.therapist:
            check.one_therapist_per_dyad(frame, "dyad", "therapist", columns.therapist)
        check.near_duplicate_ids(frame, "dyad", columns.dyad)
        if columns.therapist:
            check.near_duplicate_ids(frame, "therapist", columns.therapist)
        if in_order:
            frame = frame.reset_index(drop=True)
        else:
            frame = (frame.assign(_order=order)
                     .sort_values(["dyad", "session", "_order"], kind="stable")
                     .drop(columns="_order").reset_index(drop=True))
        front = [ROW, "dyad", "session", "role"] + (["therapist"] if columns.therapist else [])
        frame = frame[front + [c for c in frame.columns if c not in front]]
        return cls(frame=frame, roles=resolved, columns=columns, source=source, notes=notes)

    @classmethod
    def from_wide(cls, data: pd.DataFrame | str | Path, *, dyad: str, roles: Sequence[str],
                  session: str | None = None, therapist: str | None = None,
                  separator: str = "_", **read: Any) -> SessionData:
        """Read dyad-wide data: one row per dyad x session, ``{role}{separator}{variable}``.

        Columns without a role prefix (e.g. a treatment arm, centred time) are shared by
        both members and copied into both rows. Every wide row gives one row per role;
        both keep the wide row's number in the user's file for messages.

        Examples
        --------
        >>> import pandas as pd
        >>> wide = pd.DataFrame({"d": [1], "t": [1], "f_y": [2.0], "m_y": [3.0]})
        >>> SessionData.from_wide(wide, dyad="d", session="t", roles=("f", "m")).frame["y"].tolist()
        [2.0, 3.0]
        """
        _check_read(read)
        options = _options([dyad, session, therapist], [], dict(read))
        frame, name, notes = as_frame(data, options)
        long = wide_to_long(frame, roles=roles, separator=separator,
                            keys=[c for c in (dyad, session, therapist) if c])
        rows = long.pop(FILE_ROW).to_numpy()
        columns = ColumnMap(dyad=dyad, session=session, role="role", therapist=therapist)
        return cls._build(long, columns, roles, name, notes, rows=rows)

    @classmethod
    def from_pairwise(cls, data: pd.DataFrame | str | Path, *, dyad: str, role: str,
                      session: str | None = None, roles: Sequence[object] | None = None,
                      therapist: str | None = None, actor_suffix: str = "_A",
                      partner_suffix: str = "_P", **read: Any) -> SessionData:
        """Read pairwise data: each person's row also holds the partner's values.

        ``x{actor_suffix}`` is the person's own value and ``x{partner_suffix}`` the partner's
        at the same session (Kenny's ``_A``/``_P`` convention). Partner columns are checked
        against the partner's own row and then dropped: they carry no new information.

        Raises
        ------
        PartnerMismatchError
            When a partner column disagrees with the partner's own row.
        """
        _check_read(read)
        options = _options([dyad, session, role, therapist], [role], dict(read))
        frame, name, notes = as_frame(data, options)
        columns = ColumnMap(dyad=dyad, session=session, role=role, therapist=therapist)
        own = cls._build(frame, columns, roles, name, notes)
        return pairwise_to_long(own, actor_suffix, partner_suffix)

    # ------------------------------------------------------------------ views
    @property
    def keys(self) -> RowKeys | None:
        """Integer keys of the rows (:class:`RowKeys`), computed once; None when the
        frame's identifying columns are not in their validated form."""
        if not self._keys:
            object.__setattr__(self, "_keys", (RowKeys.of(self._frame, self.roles),))
        return self._keys[0]

    @property
    def n_dyads(self) -> int:
        """Number of dyads."""
        return int(self._frame["dyad"].nunique())

    @property
    def has_therapist(self) -> bool:
        """Whether a therapist column is mapped."""
        return self.columns.therapist is not None

    @property
    def variables(self) -> list[str]:
        """Columns other than the identifying ones (an unmapped ``therapist`` column is a
        variable like any other)."""
        skip = {ROW, "dyad", "session", "role"} | ({"therapist"} if self.has_therapist
                                                   else set())
        return [c for c in self._frame.columns if c not in skip]

    def numeric(self, column: str) -> pd.Series:
        """A variable as float64 after checking it is numeric and finite.

        The user's name of the session column (``week``) gives the session numbers, so a
        time trend can be a covariate under the name the user knows.
        """
        if column == ROW:
            raise MissingColumnError("variable", column, self.variables)
        column = self.resolve(column)
        check.require_columns(self._frame, {"variable": column})
        return check.numeric_column(self._frame, column)

    def resolve(self, column: str) -> str:
        """The frame's name of a variable the user names: Unicode names in NFC form, and
        the user's session column (``week``) as ``session``."""
        column = check.nfc(column)
        if column not in self._frame.columns and column == self.columns.session:
            return "session"
        return column

    def replace(self, frame: pd.DataFrame) -> SessionData:
        """The same data description with another frame (rows in the same order)."""
        return SessionData(frame=frame, roles=self.roles, columns=self.columns,
                           source=self.source, notes=self.notes)

    # ------------------------------------------------------------------ conversions
    def to_long(self) -> pd.DataFrame:
        """Long data under the user's column names (cross-sectional: no session column)."""
        frame = self.frame.drop(columns=ROW)
        if self.columns.session is None:
            frame = frame.drop(columns="session")
        return frame.rename(columns=self.columns.user())

    def to_wide(self, separator: str = "_") -> pd.DataFrame:
        """One row per dyad x session with ``{role}{separator}{variable}`` columns."""
        return long_to_wide(self, separator)

    def to_pairwise(self, actor_suffix: str = "_A", partner_suffix: str = "_P",
                    variables: Sequence[str] | None = None) -> pd.DataFrame:
        """Each row with the partner's same-session values beside the person's own.

        ``variables`` are the columns to pair; default: those that differ between members.
        """
        return long_to_pairwise(self, actor_suffix, partner_suffix, variables)

    def report(self, variables: Sequence[str] | None = None,
               predictors: Sequence[str] = ()) -> DataReport:
        """The data report (see :class:`apim.data.report.DataReport`)."""
        return DataReport.of(self, variables, predictors)
