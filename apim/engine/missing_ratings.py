"""``UN x AR(1)`` residuals with single missing ratings, exactly, by a Schur complement.

Within a dyad, take the *complete* series: both members at every session at which at least
one of them rated (a session neither rated is a gap, which the AR(1) factor ``phi^gap``
already marginalises exactly). Its precision ``Q = R^-1 = W'W`` is the banded Kronecker
stencil of :mod:`apim.engine.residual`. With ``o`` the observed and ``m`` the missing
entries, the observed covariance ``R_oo`` has::

    R_oo^-1 = Q_oo - Q_om Q_mm^-1 Q_mo,       log|R_oo| = log|R| + log|Q_mm|.

With the data ``U`` filled with zero rows at the missing entries, ``U_o' Q_oo U_o =
(W U)'(W U)``, the stencil's type moments on the complete grid; and ``Q_mo U_o = E' (W U)``
with ``E = W[:, m]``, which is non-zero only in the (at most four) whitened rows that touch a
missing entry. So per dyad::

    U_o' R_oo^-1 U_o = (W U)'(W U) - B' (E'E)^-1 B,      B = E' (W U),   Q_mm = E'E,

a small dense solve of the size of the dyad's missing entries, on top of the stencil. The
derivatives follow from those of the stencil coefficients (``dE``, ``d(WU)``)::

    d(B' Q_mm^-1 B) = dB' X + X' dB - X' dQ_mm X,   X = Q_mm^-1 B,
    d log|Q_mm| = tr(Q_mm^-1 dQ_mm).

Dyads are grouped by their number of missing entries (padded to a power of two) and handled
in batches. The dense Cholesky path (:mod:`apim.engine.dense_residual`) stays as the oracle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from apim.engine.moments import Products, TypeMoments
from apim.engine.residual import Residual, ResidualLayout, RowTypes

__all__ = ["complete_grid", "MissingCorrection", "GridProducts"]

BATCH_DYADS = 20_000


def complete_grid(layout: ResidualLayout, raw: np.ndarray
                  ) -> tuple[ResidualLayout, np.ndarray, np.ndarray]:
    """Both members at every session of each dyad at which anyone rated.

    Returns the grid's layout (same dyads, in the same order), ``raw`` with zero rows at
    the missing entries, and the grid rows that are missing.
    """
    new_key = np.r_[True, (layout.dyad[1:] != layout.dyad[:-1])
                    | (layout.session[1:] != layout.session[:-1])]
    key = np.cumsum(new_key) - 1
    first = np.flatnonzero(new_key)
    grid_rows = 2 * key + layout.role
    n_grid = 2 * len(first)
    grid_raw = np.zeros((n_grid, raw.shape[1]))
    grid_raw[grid_rows] = raw
    observed = np.zeros(n_grid, bool)
    observed[grid_rows] = True
    grid = ResidualLayout.build(np.repeat(layout.dyad[first], 2),
                                np.repeat(layout.session[first], 2),
                                np.tile(np.array([0, 1]), len(first)))
    return grid, grid_raw, np.flatnonzero(~observed)


def _merged_groups(dyads: np.ndarray, size: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """Dyads grouped by padded number of missing entries; neighbouring groups are merged
    while the padding costs less than the overhead of another batch."""
    overhead = 2_000  # padded entries worth one more batch of numpy calls
    groups: list[tuple[int, np.ndarray]] = []
    for width in np.unique(size):
        w, dy = int(width), dyads[size == width]
        if groups:
            w0, dy0 = groups[-1]
            if (len(dy0) + len(dy)) * w * w <= len(dy0) * w0 * w0 + len(dy) * w * w + overhead:
                groups[-1] = (w, np.sort(np.r_[dy0, dy]))
                continue
        groups.append((w, dy))
    return groups


@dataclass(frozen=True, eq=False)
class _Batch:
    """Dyads whose missing entries fit in ``width`` slots (padded), with the moments that
    give ``B = E'(WU)`` and ``Q_mm = E'E`` as weighted sums (see :class:`MissingCorrection`).
    """

    dyads: np.ndarray      # (b,) dyad numbers
    pad: np.ndarray        # (b, width, width) 1 on the diagonal of padding slots
    b_moments: np.ndarray  # (combos, b * width * m)
    q_moments: np.ndarray  # (combos, b * width * width)


@dataclass(frozen=True, eq=False)
class MissingCorrection:
    """The Schur-complement correction ``B' Q_mm^-1 B`` per dyad with missing entries.

    A whitened row ``j`` of type ``t`` touches a missing entry through its slot ``l``
    (``E[j, col] = c_l(t)``) and combines data rows through its slots ``l'``
    (``(WU)_j = sum_l' c_l'(t) u_l'``). So ``B = E'(WU)`` and ``Q_mm = E'E`` are sums over
    combinations ``(t, l, l')`` of ``c_l(t) c_l'(t)`` times moments that do not depend on
    the parameters, computed once, as for the stencil itself (:class:`TypeMoments`).
    """

    combos: np.ndarray     # (C, 3): type, slot touching the missing entry, other slot
    batches: tuple[_Batch, ...]
    n_random: int

    @classmethod
    def of(cls, types: RowTypes, grid: ResidualLayout, grid_raw: np.ndarray,
           missing: np.ndarray, n_random: int) -> MissingCorrection:
        links = types.links
        n_slots, n_types = len(types.slots), len(types.role)
        m = grid_raw.shape[1]
        is_missing = np.zeros(len(grid.dyad), bool)
        is_missing[missing] = True
        m_dyad = grid.dyad[missing]
        m_pos = np.arange(len(missing)) - np.searchsorted(m_dyad, m_dyad)
        n_missing = np.bincount(m_dyad, minlength=len(grid.dyad_start))
        # incidences: (row, slot) -> position of the missing entry it touches, or -1
        touching = np.flatnonzero(np.any((links >= 0) & is_missing[np.maximum(links, 0)], 0))
        hit_col = np.full((len(touching), n_slots), -1)
        for sl in range(n_slots):
            target = links[sl, touching]
            hit = (target >= 0) & is_missing[np.maximum(target, 0)]
            hit_col[hit, sl] = m_pos[np.searchsorted(missing, target[hit])]
        kind = types.index[touching]
        present = links[:, touching] >= 0                      # (slots, rows)
        used = np.zeros((n_types, n_slots, n_slots), bool)
        for s1 in range(n_slots):
            for s2 in range(n_slots):
                used[kind[(hit_col[:, s1] >= 0) & present[s2]], s1, s2] = True
        # c_l c_l' is symmetric in (l, l'): both orders share one moment
        used = np.triu(used | np.swapaxes(used, 1, 2))
        combos = np.argwhere(used)
        combo_id = np.full(used.shape, -1)
        combo_id[tuple(combos.T)] = np.arange(len(combos))
        combo_id = np.maximum(combo_id, np.swapaxes(combo_id, 1, 2))
        row_dyad = grid.dyad[touching]
        dyads = np.flatnonzero(n_missing)
        size = 2 ** np.ceil(np.log2(n_missing[dyads])).astype(int)
        batches = []
        for width, group in _merged_groups(dyads, size):
            for lo in range(0, len(group), BATCH_DYADS):
                members = group[lo:lo + BATCH_DYADS]
                local = np.full(len(grid.dyad_start), -1)
                local[members] = np.arange(len(members))
                mine = local[row_dyad] >= 0
                b_idx, col_h = local[row_dyad[mine]], hit_col[mine]
                rows_h, kind_h = touching[mine], kind[mine]
                n_b = len(members)
                bm = np.zeros((len(combos), n_b, width, m))
                qm = np.zeros((len(combos), n_b, width, width))
                for s1 in range(n_slots):
                    on = col_h[:, s1] >= 0
                    for s2 in range(n_slots):
                        both = on & (links[s2, rows_h] >= 0)
                        cid = combo_id[kind_h[both], s1, s2]
                        np.add.at(bm, (cid, b_idx[both], col_h[both, s1]),
                                  grid_raw[links[s2, rows_h[both]]])
                        pair = both & (col_h[:, s2] >= 0)
                        np.add.at(qm, (combo_id[kind_h[pair], s1, s2], b_idx[pair],
                                       col_h[pair, s1], col_h[pair, s2]), 1.0)
                pad = np.arange(width)[None, :] >= n_missing[members][:, None]
                batches.append(_Batch(dyads=members, pad=pad[:, :, None] * np.eye(width),
                                      b_moments=bm.reshape(len(combos), -1),
                                      q_moments=qm.reshape(len(combos), -1)))
        return cls(combos=combos, batches=tuple(batches), n_random=n_random)

    def apply(self, products: Products, c: np.ndarray, dc: np.ndarray | None) -> Products:
        """``products`` of the complete grid minus the correction, plus ``log|Q_mm|``.

        With ``X = Q_mm^-1 B`` and ``sym(A) = A + A'``::

            d(B' X) = sym(L' X),   L = dB - dQ_mm X / 2,   d log|Q_mm| = tr(Q_mm^-1 dQ_mm).
        """
        r = self.n_random
        t, s1, s2 = self.combos.T
        weights = (c[s1, t] * c[s2, t])[None]
        gradient = dc is not None and products.d_rows is not None
        if dc is not None and gradient:
            weights = np.vstack([weights, dc[:, s1, t] * c[s2, t] + c[s1, t] * dc[:, s2, t]])
            d_rows = np.array(products.d_rows, float)
            d_rest = np.array(products.d_rest, float)
            d_logdet = np.array(products.d_logdet, float)
        rows, rest, logdet = products.rows.copy(), products.rest.copy(), products.logdet.copy()
        m = rows.shape[2]
        u = m - r
        for b in self.batches:
            n_b, width, _ = b.pad.shape
            big_b = (weights @ b.b_moments).reshape(len(weights), n_b, width, m)
            q_all = (weights @ b.q_moments).reshape(len(weights), n_b, width, width)
            q = q_all[0] + b.pad
            lower = np.linalg.cholesky(q)
            q_inv = np.linalg.inv(q)
            x = q_inv @ big_b[0]
            rows[b.dyads] -= np.swapaxes(big_b[0, ..., :r], 1, 2) @ x
            rest -= big_b[0, ..., r:].reshape(-1, u).T @ x[..., r:].reshape(-1, u)
            logdet[b.dyads] += 2 * np.log(np.diagonal(lower, axis1=1, axis2=2)).sum(1)
            if not gradient:
                continue
            ell = big_b[1:] - 0.5 * q_all[1:] @ x[None]           # (k, b, width, m)
            d_rows[:, b.dyads] -= (np.swapaxes(ell[..., :r], 2, 3) @ x[None]
                                   + np.swapaxes(x[None, ..., :r], 2, 3) @ ell)
            k = len(ell)
            half = np.swapaxes(ell[..., r:].reshape(k, -1, u), 1, 2) @ x[..., r:].reshape(-1, u)
            d_rest -= half + np.swapaxes(half, 1, 2)
            d_logdet[:, b.dyads] += np.einsum("bij,kbji->kb", q_inv, q_all[1:])
        if not gradient:
            return Products(rows, rest, logdet)
        return Products(rows, rest, logdet, d_rows, d_rest, d_logdet)


@dataclass(frozen=True, eq=False)
class GridProducts:
    """Stencil moments of the complete grid with the missing-entry correction."""

    moments: TypeMoments
    correction: MissingCorrection

    @classmethod
    def of(cls, residual: Residual, layout: ResidualLayout, raw: np.ndarray,
           n_random: int) -> GridProducts:
        grid, grid_raw, missing = complete_grid(layout, raw)
        types = residual.row_types(grid)
        moments = TypeMoments.of(residual, grid, grid_raw, n_random, types)
        return cls(moments, MissingCorrection.of(types, grid, grid_raw, missing, n_random))

    def products(self, residual: Residual, theta: np.ndarray, gradient: bool) -> Products:
        c, dc = residual.coefficients(theta, self.moments.types)
        full = self.moments.products(residual, theta, gradient, (c, dc))
        return self.correction.apply(full, c, dc if gradient else None)
