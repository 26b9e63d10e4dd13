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

Products = tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]


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
    """Raw moments by row type and dyad (see the module docstring), stored as
    ``(types, dyads * m * m)`` so that weighting them is one matrix product."""

    types: RowTypes
    m1: np.ndarray      # (T, D*m*m)
    m23: np.ndarray     # (2L, D*m*m): M2 + M2' and M3 of the linked types
    counts: np.ndarray  # (D, T) rows per dyad and type
    shape: tuple[int, int]

    @classmethod
    def of(cls, residual: Residual, layout: ResidualLayout, raw: np.ndarray) -> "TypeMoments":
        types = residual.row_types(layout)
        n_types = len(types.role)
        d, m = len(layout.dyad_start), raw.shape[1]
        m1 = np.stack([crossprod(raw * (types.index == t)[:, None], raw, layout).ravel()
                       for t in range(n_types)])
        partner = raw[np.maximum(types.link, 0)]
        m2, m3 = [], []
        for t in np.flatnonzero(types.linked):
            mask = (types.index == t)[:, None]
            half = crossprod(raw * mask, partner, layout)
            m2.append((half + np.swapaxes(half, 1, 2)).ravel())
            m3.append(crossprod(partner * mask, partner, layout).ravel())
        counts = np.add.reduceat(np.eye(n_types)[types.index], layout.dyad_start, axis=0)
        m23 = np.array(m2 + m3).reshape(-1, d * m * m)
        return cls(types=types, m1=m1, m23=m23, counts=counts, shape=(d, m))

    def _combine(self, w1: np.ndarray, w2: np.ndarray, w3: np.ndarray) -> np.ndarray:
        """``sum_t w1 M1 + w2 (M2 + M2') + w3 M3`` for each row of the weights (n, T)."""
        linked = self.types.linked
        out = w1 @ self.m1
        if len(self.m23):
            out = out + np.concatenate([w2[:, linked], w3[:, linked]], axis=1) @ self.m23
        d, m = self.shape
        return out.reshape(-1, d, m, m)

    def products(self, residual: Residual, theta: np.ndarray, gradient: bool) -> Products:
        """Whitened cross products, ``log|R_i|`` and their derivatives."""
        a, c, da, dc = residual.coefficients(theta, self.types)
        logdet = -2 * self.counts @ np.log(a)
        if not gradient:
            cross = self._combine((a * a)[None], (a * c)[None], (c * c)[None])[0]
            return cross, logdet, None, None
        all_ = self._combine(np.vstack([a * a, 2 * a * da]),
                             np.vstack([a * c, da * c + a * dc]),
                             np.vstack([c * c, 2 * c * dc]))
        dlogdet = -2 * (self.counts @ (da / a).T).T
        return all_[0], logdet, all_[1:], dlogdet


@dataclass(frozen=True, eq=False)
class DenseProducts:
    """Cross products for residual structures whitened densely per dyad."""

    layout: ResidualLayout
    raw: np.ndarray

    def products(self, residual: Residual, theta: np.ndarray, gradient: bool) -> Products:
        wu, logdet, dwu, dlogdet = whiten_dense(residual, theta, self.layout, self.raw,
                                                gradient)
        cross = crossprod(wu, wu, self.layout)
        if not gradient:
            return cross, logdet, None, None
        dcross = []
        for k in range(dwu.shape[0]):
            half = crossprod(dwu[k], wu, self.layout)
            dcross.append(half + np.swapaxes(half, 1, 2))
        return cross, logdet, np.stack(dcross), dlogdet


def cross_products(residual: Residual, layout: ResidualLayout,
                   raw: np.ndarray) -> TypeMoments | DenseProducts:
    """The cheapest exact way to get whitened cross products for ``residual``."""
    if residual.dense:
        return DenseProducts(layout, raw)
    return TypeMoments.of(residual, layout, raw)
