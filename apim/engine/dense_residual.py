"""Whitening by a dense Cholesky factor per dyad, for ``UN x AR(1)`` residuals.

With ``R_i = L L'`` the whitened rows are ``L^-1 u``. For a parameter ``t``,
``dL = L Phi(L^-1 dR L^-T)`` (``Phi`` keeps the lower triangle and halves the diagonal), so
``d(L^-1 u) = -Phi(L^-1 dR L^-T) L^-1 u`` and ``d log|R| = tr(L^-1 dR L^-T)``.
Dyads are padded to the largest dyad with unit variances, which changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from apim.engine.residual import Residual, ResidualLayout


def padded_positions(layout: ResidualLayout) -> tuple[np.ndarray, np.ndarray, int]:
    """Dyad index and position within the dyad of every row, and the largest dyad size."""
    dyad = layout.dyad
    return dyad, np.arange(len(dyad)) - layout.dyad_start[dyad], int(layout.sizes.max())


def residual_matrices(residual: Residual, theta: np.ndarray, layout: ResidualLayout
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Padded ``R_i`` (d, n, n), derivatives (k, d, n, n) and the validity mask (d, n)."""
    sigma, rho, phi = residual.unpack(theta)
    dyad, pos, width = padded_positions(layout)
    d = len(layout.dyad_start)
    valid = np.zeros((d, width), bool)
    valid[dyad, pos] = True
    role = np.zeros((d, width), int)
    role[dyad, pos] = layout.role
    t = np.zeros((d, width))
    t[dyad, pos] = layout.session
    lag = np.abs(t[:, :, None] - t[:, None, :])
    same = role[:, :, None] == role[:, None, :]
    both = valid[:, :, None] & valid[:, None, :]
    s = sigma[role]
    scale = s[:, :, None] * s[:, None, :]
    corr = np.where(same, 1.0, rho) if residual.correlated else same.astype(float)
    decay = phi ** lag if residual.ar1 else (lag == 0).astype(float)
    r = np.where(both, scale * corr * decay, 0.0)
    eye = np.eye(width, dtype=bool)[None] & ~both
    r = r + eye
    grads = []
    n_sigma = 1 if residual.equal_variances else 2
    for k in range(n_sigma):
        if residual.equal_variances:
            grads.append(2 * np.where(both, r, 0.0))
        else:
            hits = (role[:, :, None] == k).astype(float) + (role[:, None, :] == k)
            grads.append(np.where(both, r * hits, 0.0))
    if residual.correlated:
        grads.append(np.where(both & ~same, scale * decay, 0.0) * (1 - rho ** 2))
    if residual.ar1:
        with np.errstate(divide="ignore", invalid="ignore"):
            dd = np.where(lag > 0, lag * phi ** np.maximum(lag - 1, 0), 0.0)
        grads.append(np.where(both, scale * corr * dd, 0.0) * (1 - phi ** 2))
    return r, np.stack(grads), valid


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
