"""The oracle of the stencil whitening: dense Cholesky factors per dyad.

With ``R_i = L L'`` the whitened rows are ``L^-1 u``. For a parameter ``t``,
``dL = L Phi(L^-1 dR L^-T)`` (``Phi`` keeps the lower triangle and halves the diagonal), so
``d(L^-1 u) = -Phi(L^-1 dR L^-T) L^-1 u`` and ``d log|R| = tr(L^-1 dR L^-T)``.
Dyads are padded to the largest dyad with unit variances, which changes nothing. ``R_i``
comes from the structure's dense matrix (:meth:`Residual.dense`).

:func:`cross_products` is the engine's choice of product source with dyads that miss
single ratings whitened densely instead of by the complete-grid correction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from apim.engine.mixed.moments import CHUNK_ROWS, Products, TypeMoments
from apim.engine.mixed.products import ProductSource
from apim.engine.mixed.products import cross_products as engine_cross_products
from apim.engine.mixed.residuals import Residual, ResidualLayout


def padded_positions(layout: ResidualLayout) -> tuple[np.ndarray, np.ndarray, int]:
    """Dyad index and position within the dyad of every row, and the largest dyad size."""
    dyad = layout.dyad
    return dyad, np.arange(len(dyad)) - layout.dyad_start[dyad], int(layout.sizes.max())


def residual_matrices(residual: Residual, theta: np.ndarray, layout: ResidualLayout
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Padded ``R_i`` (d, n, n), derivatives (k, d, n, n) and the validity mask (d, n)."""
    dyad, pos, width = padded_positions(layout)
    d = len(layout.dyad_start)
    valid = np.zeros((d, width), bool)
    valid[dyad, pos] = True
    role = np.zeros((d, width), int)
    role[dyad, pos] = layout.role
    t = np.zeros((d, width))
    t[dyad, pos] = layout.session
    both = valid[:, :, None] & valid[:, None, :]
    r, dr = residual.dense(theta, role, t)
    r = np.where(both, r, 0.0) + (np.eye(width, dtype=bool)[None] & ~both)
    return r, np.where(both[None], dr, 0.0), valid


def whiten_dense(residual: Residual, theta: np.ndarray, layout: ResidualLayout,
                 u: np.ndarray, derivatives: bool = True):
    """``L^-1 u`` per dyad, ``log|R_i|`` and their derivatives (k, ...) or None."""
    r, dr, valid = residual_matrices(residual, theta, layout)
    dyad, pos, width = padded_positions(layout)
    lower = np.linalg.cholesky(r)
    inv = np.linalg.inv(lower)
    up = np.zeros((r.shape[0], width, u.shape[1]))
    up[dyad, pos] = u
    wu_pad = inv @ up
    logdet = 2 * np.log(np.diagonal(lower, axis1=1, axis2=2)).sum(axis=1)
    wu = wu_pad[dyad, pos]
    if not derivatives:
        return wu, logdet, None, None
    m = inv[None] @ dr @ np.swapaxes(inv, 1, 2)[None]
    dlogdet = np.trace(m, axis1=2, axis2=3)
    phi_m = np.tril(m)
    idx = np.arange(width)
    phi_m[..., idx, idx] *= 0.5
    dwu = -(phi_m @ wu_pad[None])[:, dyad, pos]
    return wu, logdet, dwu, dlogdet


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
        halves = [crossprod(dwu[k], wu, self.layout) for k in range(dwu.shape[0])]
        d_cross = np.stack([h + np.swapaxes(h, 1, 2) for h in halves])
        return Products(cross[:, :r], cross[:, r:, r:].sum(0), logdet, d_cross[:, :, :r],
                        d_cross[:, :, r:, r:].sum(1), dlogdet)


@dataclass(frozen=True, eq=False)
class SplitProducts:
    """Stencil products for some dyads and dense ones for the others, in dyad order."""

    parts: tuple[tuple[np.ndarray, TypeMoments | DenseProducts], ...]  # (dyads, products)
    n_dyads: int

    def products(self, residual: Residual, theta: np.ndarray, gradient: bool) -> Products:
        pieces = [(dyads, part.products(residual, theta, gradient))
                  for dyads, part in self.parts]
        first = pieces[0][1]
        rows = np.zeros((self.n_dyads, *first.rows.shape[1:]))
        logdet = np.zeros(self.n_dyads)
        for dyads, got in pieces:
            rows[dyads], logdet[dyads] = got.rows, got.logdet
        rest = np.sum([got.rest for _, got in pieces], axis=0)
        if not gradient:
            return Products(rows, rest, logdet)
        d_rows = np.zeros((len(theta), *rows.shape))
        d_logdet = np.zeros((len(theta), self.n_dyads))
        d_rest = np.zeros((len(theta), *rest.shape))
        for dyads, got in pieces:
            assert got.d_rows is not None and got.d_logdet is not None  # asked for above
            assert got.d_rest is not None
            d_rows[:, dyads], d_logdet[:, dyads] = got.d_rows, got.d_logdet
            d_rest += got.d_rest
        return Products(rows, rest, logdet, d_rows, d_rest, d_logdet)


def _subset(layout: ResidualLayout, dyads: np.ndarray) -> tuple[ResidualLayout, np.ndarray]:
    """The layout of some dyads (renumbered) and the rows they hold."""
    keep = np.isin(layout.dyad, dyads)
    return ResidualLayout.build(layout.dyad[keep], layout.session[keep],
                                layout.role[keep]), keep


def cross_products(residual: Residual, layout: ResidualLayout, raw: np.ndarray,
                   n_random: int, dense: bool = True) -> ProductSource:
    """The engine's product source, or with ``dense=True`` the stencil on complete dyads
    and dense Cholesky factors on dyads with single ratings missing (the oracle of the
    complete-grid correction)."""
    counts = layout.sizes
    paired = np.bincount(layout.dyad, weights=layout.pair >= 0, minlength=len(counts))
    complete = counts == 2 * paired  # every session has both members
    if not dense or not residual.kronecker or complete.all():
        return engine_cross_products(residual, layout, raw, n_random)
    parts = []
    for dyads, kind in ((np.flatnonzero(complete), "stencil"),
                        (np.flatnonzero(~complete), "dense")):
        if len(dyads) == 0:
            continue
        sub, keep = _subset(layout, dyads)
        part = TypeMoments.of(residual, sub, raw[keep], n_random) if kind == "stencil" \
            else DenseProducts(sub, raw[keep], n_random)
        parts.append((dyads, part))
    if len(parts) == 1:
        return parts[0][1]
    return SplitProducts(parts=tuple(parts), n_dyads=len(counts))
