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


def _merged_groups(dyads: np.ndarray, size: np.ndarray, touch: np.ndarray
                   ) -> list[tuple[int, np.ndarray]]:
    """Dyads grouped by padded number of missing entries; neighbouring groups are merged
    while the padding costs less than the overhead of another batch."""
    overhead = 20_000  # array elements worth one more batch of numpy calls
    groups: list[tuple[int, int, np.ndarray]] = []  # (width, touching-row width, dyads)
    for width in np.unique(size):
        members = size == width
        w, wj, dy = int(width), int(touch[members].max()), dyads[members]
        if groups:
            w0, wj0, dy0 = groups[-1]
            merged = (len(dy0) + len(dy)) * w * wj
            if merged <= len(dy0) * w0 * wj0 + len(dy) * w * wj + overhead:
                groups[-1] = (w, wj, np.sort(np.r_[dy0, dy]))
                continue
        groups.append((w, wj, dy))
    return [(w, dy) for w, _, dy in groups]


@dataclass(frozen=True, eq=False)
class _Batch:
    """Dyads whose missing entries fit in ``n_missing`` slots (padded)."""

    dyads: np.ndarray      # (b,) dyad numbers
    j_rows: np.ndarray     # (nJ,) whitened rows touching a missing entry (indices into J)
    j_dyad: np.ndarray     # (nJ,) local dyad (0..b-1)
    j_pos: np.ndarray      # (nJ,) position among the dyad's touching rows
    e_dyad: np.ndarray     # (nE,) incidences: local dyad,
    e_row: np.ndarray      # position of the whitened row,
    e_col: np.ndarray      # position of the missing entry,
    e_slot: np.ndarray     # stencil slot through which the row touches it,
    e_type: np.ndarray     # type of the whitened row
    pad: np.ndarray        # (b, n_missing, n_missing) 1 on the diagonal of padding slots
    width_j: int
    n_params: int

    @property
    def e_flat(self) -> np.ndarray:
        """Flat positions of the incidences in ``E`` (b, width_j, n_missing)."""
        return (self.e_dyad * self.width_j + self.e_row) * self.pad.shape[1] + self.e_col

    @property
    def j_flat(self) -> np.ndarray:
        return self.j_dyad * self.width_j + self.j_pos

    @property
    def de_flat(self) -> np.ndarray:
        """Flat positions of (incidence, parameter) in ``dE'`` (b, k, n_missing, width_j)."""
        k, width = self.n_params, self.pad.shape[1]
        return (((self.e_dyad[:, None] * k + np.arange(k)) * width + self.e_col[:, None])
                * self.width_j + self.e_row[:, None])


@dataclass(frozen=True, eq=False)
class MissingCorrection:
    """The Schur-complement correction ``B' Q_mm^-1 B`` per dyad with missing entries.

    ``J`` are the whitened rows that touch a missing entry; ``gathered`` holds, for each
    of them and each stencil slot, the (zero-filled) data row the slot links to.
    """

    types: RowTypes
    j_type: np.ndarray      # (nJ,)
    gathered: np.ndarray    # (slots, nJ, m)
    batches: tuple[_Batch, ...]
    n_random: int

    @classmethod
    def of(cls, types: RowTypes, grid: ResidualLayout, grid_raw: np.ndarray,
           missing: np.ndarray, n_random: int, n_params: int) -> MissingCorrection:
        links = types.links
        is_missing = np.zeros(len(grid.dyad), bool)
        is_missing[missing] = True
        inc_row, inc_slot, inc_col = [], [], []
        for s in range(len(types.slots)):
            hit = np.flatnonzero((links[s] >= 0) & is_missing[np.maximum(links[s], 0)])
            inc_row.append(hit)
            inc_slot.append(np.full(len(hit), s))
            inc_col.append(links[s][hit])
        row, slot, col = (np.concatenate(a) for a in (inc_row, inc_slot, inc_col))
        j_rows, j_index = np.unique(row, return_inverse=True)
        gathered = np.where((links[:, j_rows] >= 0)[:, :, None],
                            grid_raw[np.maximum(links[:, j_rows], 0)], 0.0)
        # per dyad: missing entries and touching rows, numbered from 0
        m_dyad = grid.dyad[missing]
        m_pos = np.arange(len(missing)) - np.searchsorted(m_dyad, m_dyad)
        n_missing = np.bincount(m_dyad, minlength=len(grid.dyad_start))
        j_dyad_all = grid.dyad[j_rows]
        j_pos_all = np.arange(len(j_rows)) - np.searchsorted(j_dyad_all, j_dyad_all)
        n_touch = np.bincount(j_dyad_all, minlength=len(grid.dyad_start))
        col_pos = m_pos[np.searchsorted(missing, col)]
        dyads = np.flatnonzero(n_missing)
        size = 2 ** np.ceil(np.log2(n_missing[dyads])).astype(int)
        batches = []
        for width, group in _merged_groups(dyads, size, n_touch[dyads]):
            for lo in range(0, len(group), BATCH_DYADS):
                members = group[lo:lo + BATCH_DYADS]
                local = np.full(len(grid.dyad_start), -1)
                local[members] = np.arange(len(members))
                in_j = np.flatnonzero(local[j_dyad_all] >= 0)
                in_e = np.flatnonzero(local[grid.dyad[row]] >= 0)
                pad = np.arange(width)[None, :] >= n_missing[members][:, None]
                pad = pad[:, :, None] * np.eye(width)
                batches.append(_Batch(
                    dyads=members, j_rows=in_j, j_dyad=local[j_dyad_all[in_j]],
                    j_pos=j_pos_all[in_j], e_dyad=local[grid.dyad[row[in_e]]],
                    e_row=j_pos_all[j_index[in_e]], e_col=col_pos[in_e],
                    e_slot=slot[in_e], e_type=types.index[row[in_e]], pad=pad,
                    width_j=int(n_touch[members].max()), n_params=n_params))
        return cls(types=types, j_type=types.index[j_rows], gathered=gathered,
                   batches=tuple(batches), n_random=n_random)

    def apply(self, products: Products, c: np.ndarray, dc: np.ndarray | None) -> Products:
        """``products`` of the complete grid minus the correction, plus ``log|Q_mm|``.

        With ``X = Q_mm^-1 B`` and ``sym(A) = A + A'``::

            d(B' X) = sym(K' X),   K = dE' WU + E' d(WU) - E' dE X,
            d log|Q_mm| = 2 tr(dE' E Q_mm^-1).
        """
        r = self.n_random
        coef = c[:, self.j_type]                                 # (slots, nJ)
        wu = sum(coef[s][:, None] * self.gathered[s] for s in range(len(coef)))  # W U
        rows, rest, logdet = products.rows.copy(), products.rest.copy(), products.logdet.copy()
        gradient = dc is not None and products.d_rows is not None
        if dc is not None and products.d_rows is not None:
            d_coef = dc[:, :, self.j_type].transpose(1, 2, 0)       # (slots, nJ, k)
            d_wu = sum(d_coef[s][:, :, None] * self.gathered[s][:, None]
                       for s in range(len(d_coef)))                  # (nJ, k, m)
            d_rows = products.d_rows.copy()
            d_rest = np.array(products.d_rest, float)
            d_logdet = np.array(products.d_logdet, float)
        m = wu.shape[1]
        for b in self.batches:
            n_b, width, _ = b.pad.shape
            e = np.zeros(n_b * b.width_j * width)
            e[b.e_flat] = c[b.e_slot, b.e_type]
            e = e.reshape(n_b, b.width_j, width)
            w = np.zeros((n_b * b.width_j, m))
            w[b.j_flat] = wu[b.j_rows]
            w = w.reshape(n_b, b.width_j, m)
            et = np.swapaxes(e, 1, 2)
            q = et @ e
            q += b.pad
            big_b = et @ w
            lower = np.linalg.cholesky(q)
            q_inv = np.linalg.inv(q)
            x = q_inv @ big_b
            rows[b.dyads] -= np.swapaxes(big_b[..., :r], 1, 2) @ x
            rest -= big_b[..., r:].reshape(-1, m - r).T @ x[..., r:].reshape(-1, m - r)
            logdet[b.dyads] += 2 * np.log(np.diagonal(lower, axis1=1, axis2=2)).sum(1)
            if dc is None or not gradient:
                continue
            # in the space of the missing entries (parameters folded into the matrix
            # dimensions: few, larger products)
            k, wj = dc.shape[0], b.width_j
            de_t = np.zeros(n_b * k * width * wj)                # dE'
            de_t[b.de_flat] = dc[:, b.e_slot, b.e_type].T
            de_t = de_t.reshape(n_b, k, width, wj)
            dw = np.zeros((n_b * wj, k, m))                     # d(WU)
            dw[b.j_flat] = d_wu[b.j_rows]
            dw = dw.reshape(n_b, wj, k, m)
            de_t2 = de_t.reshape(n_b, k * width, wj)
            h = (de_t2 @ e).reshape(n_b, k, width, width)        # dE'E
            kk = ((de_t2 @ w).reshape(n_b, k, width, m)
                  + (et @ dw.reshape(n_b, wj, k * m)).reshape(n_b, width, k, m)
                  .transpose(0, 2, 1, 3)
                  - np.swapaxes(h, 2, 3) @ x[:, None])             # K = dB - E'dE X
            xr = x[:, None, :, :r]
            d_rows[:, b.dyads] -= (np.swapaxes(kk[..., :r], 2, 3) @ x[:, None]
                                   + np.swapaxes(xr, 2, 3) @ kk).transpose(1, 0, 2, 3)
            u = m - r
            half = (np.swapaxes(kk[..., r:].transpose(1, 0, 2, 3).reshape(k, -1, u), 1, 2)
                    @ x[..., r:].reshape(-1, u))
            d_rest -= half + np.swapaxes(half, 1, 2)
            d_logdet[:, b.dyads] += 2 * np.einsum("bkpp->kb", h @ q_inv[:, None])
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
        return cls(moments, MissingCorrection.of(types, grid, grid_raw, missing, n_random,
                                                 residual.n_params))

    def products(self, residual: Residual, theta: np.ndarray, gradient: bool) -> Products:
        c, dc = residual.coefficients(theta, self.moments.types)
        full = self.moments.products(residual, theta, gradient, (c, dc))
        return self.correction.apply(full, c, dc if gradient else None)
