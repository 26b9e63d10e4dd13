"""Where each residual sits: the rows of a dyad by session and role, and the row types a
whitening stencil distinguishes.

Examples
--------
>>> lay = ResidualLayout.build(np.array([7, 7, 9]), np.array([1, 1, 1]), np.array([0, 1, 0]))
>>> lay.dyad_start.tolist(), lay.pair.tolist()
([0, 2], [-1, 0, -1])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ResidualLayout", "RowTypes", "index_dtype"]


def index_dtype(n: int) -> type[np.signedinteger]:
    """The integer type of row indices for ``n`` rows: int32 when they fit (half the
    memory of int64), else int64."""
    return np.int32 if n < 2 ** 31 - 1 else np.int64


def _narrow(values: np.ndarray, kind: type[np.signedinteger]) -> np.ndarray:
    """Whole numbers as ``kind`` when every value fits, else int64."""
    values = np.asarray(values)
    if values.dtype.kind not in "iub":
        values = values.astype(np.int64)
    info = np.iinfo(kind)
    if len(values) and (values.min() < info.min or values.max() > info.max):
        return values.astype(np.int64, copy=False)
    return values.astype(kind, copy=False)


@dataclass(frozen=True)
class ResidualLayout:
    """Index arrays describing where each observation sits (rows sorted by dyad, session,
    role).

    Attributes
    ----------
    dyad : int64 array
        Dyad of each row, numbered 0..D-1 in row order (int64, so products such as
        ``dyad * n_types`` cannot overflow).
    role : int array, 0 or 1
    session : int array
    dyad_start : int array
        First row of each dyad.
    pair : int array
        For a role-1 row, the row of the role-0 member at the same session, else -1.
    previous : int array
        The same person's previous row (by session), else -1.
    gap : int array (computed when asked for, not stored)
        Session difference to ``previous`` (1 where there is none).

    Row indices (``dyad_start``, ``pair``, ``previous``), roles, sessions and gaps are
    int32 when the number of rows allows (:func:`index_dtype`).

    Examples
    --------
    >>> lay = ResidualLayout.build(np.array([7, 7, 7, 9]), np.array([1, 1, 2, 1]),
    ...                            np.array([0, 1, 1, 0]))
    >>> lay.dyad.tolist(), lay.pair.tolist(), lay.previous.tolist(), lay.gap.tolist()
    ([0, 0, 0, 1], [-1, 0, -1, -1], [-1, -1, 1, -1], [1, 1, 1, 1])
    """

    dyad: np.ndarray
    role: np.ndarray
    session: np.ndarray
    dyad_start: np.ndarray
    pair: np.ndarray
    previous: np.ndarray

    @classmethod
    def build(cls, dyad: np.ndarray, session: np.ndarray, role: np.ndarray) -> ResidualLayout:
        """Rows must be sorted by dyad, session and role (any dyad labels)."""
        n = len(dyad)
        kind = index_dtype(n)
        role, session = _narrow(role, kind), _narrow(session, kind)
        new = np.empty(n, bool)
        new[:1] = True
        np.not_equal(dyad[1:], dyad[:-1], out=new[1:])
        start = np.flatnonzero(new).astype(kind)
        dyad = np.cumsum(new, dtype=np.int64) - 1
        rows = np.arange(n, dtype=kind)
        same_session = np.r_[False, (~new[1:]) & (session[1:] == session[:-1])]
        pair = np.where(same_session & (role == 1), rows - 1, -1).astype(kind, copy=False)
        del new, same_session
        # a person's rows are in session order within the dyad: the previous row of the
        # same person is the previous row with the same role, if in the same dyad
        previous = np.full(n, -1, dtype=kind)
        for value in np.unique(role):
            mine = rows[role == value]
            before = mine[:-1]
            same = dyad[mine[1:]] == dyad[before]
            previous[mine[1:][same]] = before[same]
        return cls(dyad=dyad, role=role, session=session, dyad_start=start,
                   pair=pair, previous=previous)

    @property
    def gap(self) -> np.ndarray:
        """Session difference to ``previous`` (1 where there is none)."""
        gap = np.ones(len(self.session), dtype=self.session.dtype)
        has = self.previous >= 0
        gap[has] = self.session[has] - self.session[self.previous[has]]
        return gap

    @property
    def sizes(self) -> np.ndarray:
        """Rows per dyad."""
        return np.bincount(self.dyad)


@dataclass(frozen=True)
class RowTypes:
    """Rows grouped by what their whitening coefficients depend on: role, whether the
    partner rated the same session, whether the person has an earlier session (AR(1)
    structures) and the session gap to it.

    Attributes
    ----------
    index : (N,) type of each row
    slots : names of the rows a whitened row combines (``self``, ``pair``, ``prev``,
        ``prev_pair``)
    links : (slots, N) the row each slot refers to, or -1
    role, paired, has_prev, gap : (n_types,) description of each type
    """

    index: np.ndarray
    slots: tuple[str, ...]
    links: np.ndarray
    role: np.ndarray
    paired: np.ndarray
    has_prev: np.ndarray
    gap: np.ndarray
