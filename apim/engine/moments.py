"""Per-dyad cross products of whitened data, ``C_i = U_i' R_i^-1 U_i``, and derivatives.

``U = [Z_T | Z | X | y]``. For stencil-whitened structures the cross products are fixed
combinations of raw moments by row type, computed once per fit::

    C_i = sum_types a^2 M1 + a c (M2 + M2') + c^2 M3,
    M1 = sum u u',  M2 = sum u u_link',  M3 = sum u_link u_link'

so an evaluation costs O(dyads x types x m^2), whatever the number of sessions. ``UN x
AR(1)`` residuals are whitened densely per dyad and their products summed directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from apim.engine.dense_residual import padded_positions, whiten_dense
from apim.engine.residual import Residual, ResidualLayout, RowTypes

CHUNK_ROWS = 200_000



@dataclass(frozen=True, eq=False)
class Products:
    """Whitened cross products ``C_i = U_i' R_i^-1 U_i`` in the form the likelihood uses:
    the random-effect rows of each dyad's ``C_i`` and the sum over dyads of the rest.

    Attributes
    ----------
    rows : (D, r, m) the first ``r`` rows (``Z_T`` and ``Z`` columns) of each ``C_i``
    rest : (m - r, m - r) ``sum_i`` of the ``[X | y]`` block
    logdet : (D,) ``log|R_i|``
    d_rows, d_rest, d_logdet : derivatives (leading axis: residual parameters) or None
    """

    rows: np.ndarray
    rest: np.ndarray
    logdet: np.ndarray
    d_rows: np.ndarray | None = None
    d_rest: np.ndarray | None = None
    d_logdet: np.ndarray | None = None


def crossprod(a: np.ndarray, b: np.ndarray, layout: ResidualLayout) -> np.ndarray:
    """Per-dyad ``a_i' b_i`` by batched matrix products on dyads padded with zero rows,
    in chunks of whole dyads to bound memory."""
    dyad, pos, width = padded_positions(layout)
    n_dyads = len(layout.dyad_start)
    out = np.empty((n_dyads, a.shape[1], b.shape[1]))
    step = max(1, CHUNK_ROWS // width)
    starts = np.r_[layout.dyad_start, len(dyad)]
    for lo in range(0, n_dyads, step):
        hi = min(lo + step, n_dyads)
        rows = slice(starts[lo], starts[hi])
        pa = np.zeros((hi - lo, width, a.shape[1]))
        pb = np.zeros((hi - lo, width, b.shape[1]))
        pa[dyad[rows] - lo, pos[rows]] = a[rows]
        pb[dyad[rows] - lo, pos[rows]] = b[rows]
        out[lo:hi] = np.swapaxes(pa, 1, 2) @ pb
    return out


@dataclass(frozen=True, eq=False)
class TypeMoments:
    """Raw moments by row type (see the module docstring). Per dyad only the random-effect
    rows are kept, as ``(types, dyads * r * m)``, so that weighting them is one matrix
    product; the ``[X | y]`` block is summed over dyads at once."""

    types: RowTypes
    rows1: np.ndarray   # (T, D*r*m): random-effect rows of M1
    rows23: np.ndarray  # (2L, D*r*m): those of M2 + M2' and M3, linked types only
    rest1: np.ndarray   # (T, u, u): sum over dyads of the [X | y] block of M1
    rest23: np.ndarray  # (2L, u, u)
    counts: np.ndarray  # (D, T) rows per dyad and type
    shape: tuple[int, int, int]

    @classmethod
    def of(cls, residual: Residual, layout: ResidualLayout, raw: np.ndarray,
           n_random: int) -> "TypeMoments":
        types = residual.row_types(layout)
        n_types = len(types.role)
        d, m, r = len(layout.dyad_start), raw.shape[1], n_random
        partner = raw[np.maximum(types.link, 0)]
        rows, rest = [], []

        def keep(full: np.ndarray) -> None:
            rows.append(full[:, :r, :].ravel())
            rest.append(full[:, r:, r:].sum(0))

        for t in range(n_types):
            keep(crossprod(raw * (types.index == t)[:, None], raw, layout))
        m3 = []
        for t in np.flatnonzero(types.linked):
            mask = (types.index == t)[:, None]
            half = crossprod(raw * mask, partner, layout)
            keep(half + np.swapaxes(half, 1, 2))
            m3.append(crossprod(partner * mask, partner, layout))
        for full in m3:
            keep(full)
        counts = np.add.reduceat(np.eye(n_types)[types.index], layout.dyad_start, axis=0)
        rows_all = np.array(rows).reshape(len(rows), d * r * m)
        rest_all = np.array(rest)
        return cls(types=types, rows1=rows_all[:n_types], rows23=rows_all[n_types:],
                   rest1=rest_all[:n_types], rest23=rest_all[n_types:], counts=counts,
                   shape=(d, r, m))

    def _combine(self, w1: np.ndarray, w2: np.ndarray, w3: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
        """``sum_t w1 M1 + w2 (M2 + M2') + w3 M3`` for each row of the weights (n, T)."""
        linked = self.types.linked
        rows = w1 @ self.rows1
        rest = np.tensordot(w1, self.rest1, axes=1)
        if len(self.rows23):
            w23 = np.concatenate([w2[:, linked], w3[:, linked]], axis=1)
            rows = rows + w23 @ self.rows23
            rest = rest + np.tensordot(w23, self.rest23, axes=1)
        d, r, m = self.shape
        return rows.reshape(len(w1), d, r, m), rest

    def products(self, residual: Residual, theta: np.ndarray, gradient: bool) -> Products:
        """Whitened cross products, ``log|R_i|`` and their derivatives."""
        a, c, da, dc = residual.coefficients(theta, self.types)
        logdet = -2 * self.counts @ np.log(a)
        if not gradient:
            rows, rest = self._combine((a * a)[None], (a * c)[None], (c * c)[None])
            return Products(rows[0], rest[0], logdet)
        rows, rest = self._combine(np.vstack([a * a, 2 * a * da]),
                                   np.vstack([a * c, da * c + a * dc]),
                                   np.vstack([c * c, 2 * c * dc]))
        dlogdet = -2 * (self.counts @ (da / a).T).T
        return Products(rows[0], rest[0], logdet, rows[1:], rest[1:], dlogdet)


@dataclass(frozen=True, eq=False)
class DenseProducts:
    """Cross products for residual structures whitened densely per dyad."""

    layout: ResidualLayout
    raw: np.ndarray
    n_random: int

    def products(self, residual: Residual, theta: np.ndarray, gradient: bool) -> Products:
        r = self.n_random
        wu, logdet, dwu, dlogdet = whiten_dense(residual, theta, self.layout, self.raw,
                                                gradient)
        cross = crossprod(wu, wu, self.layout)
        if not gradient:
            return Products(cross[:, :r], cross[:, r:, r:].sum(0), logdet)
        d_cross = []
        for k in range(dwu.shape[0]):
            half = crossprod(dwu[k], wu, self.layout)
            d_cross.append(half + np.swapaxes(half, 1, 2))
        d_cross = np.stack(d_cross)
        return Products(cross[:, :r], cross[:, r:, r:].sum(0), logdet, d_cross[:, :, :r],
                        d_cross[:, :, r:, r:].sum(1), dlogdet)


def cross_products(residual: Residual, layout: ResidualLayout, raw: np.ndarray,
                   n_random: int) -> TypeMoments | DenseProducts:
    """The cheapest exact way to get whitened cross products for ``residual``; the first
    ``n_random`` columns of ``raw`` are the random-effect designs."""
    if residual.dense:
        return DenseProducts(layout, raw, n_random)
    return TypeMoments.of(residual, layout, raw, n_random)
