"""Denominator degrees of freedom for fixed effects.

- **Satterthwaite**: for a contrast ``l``, ``df = 2 (l'Cl)^2 / (g' Cov(theta) g)`` with
  ``C = (X'V^-1 X)^-1``, ``g_k = d(l'Cl)/dtheta_k = -l'C dS_k C l`` (``S = X'V^-1 X``,
  derivatives analytic) and ``Cov(theta)`` the inverse observed information of the fitted
  criterion.
- **Containment** (nlme's rule, ``getFixDF``): strata are the grouping levels from the
  outermost in, then the residual; stratum df start at the number of groups at that level
  minus the number at the level above (residual: ``N`` minus the innermost groups). A
  column is estimated in the innermost stratum in which it varies within some group; each
  stratum loses one df per column estimated in it, the outermost one more for an
  intercept (without an intercept every inner stratum gains one); an intercept gets the
  largest df.

Examples
--------
>>> import numpy as np
>>> X = np.column_stack([np.ones(8), [0, 1] * 4, np.repeat([0., 1.], 4)])
>>> containment_df(X, [np.repeat([0, 1], 4)]).tolist()
[5.0, 5.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def satterthwaite_df(cov_beta: np.ndarray, d_xvx: np.ndarray, cov_theta: np.ndarray,
                     contrasts: np.ndarray) -> np.ndarray:
    """Satterthwaite df of each contrast ``l'beta`` (rows of ``contrasts``); ``inf`` when
    no covariance parameter moves its variance.

    ``d_xvx`` are the derivatives of ``X'V^-1 X`` with respect to the covariance parameters,
    ``cov_theta`` the covariance of those parameters (inverse observed information).
    """
    c = cov_beta
    lc = np.atleast_2d(contrasts) @ c
    var = np.einsum("ij,ij->i", lc, np.atleast_2d(contrasts))
    if d_xvx is None or len(d_xvx) == 0:
        return np.full(len(var), np.inf)
    g = -np.einsum("ri,kij,rj->rk", lc, d_xvx, lc)  # d var_r / d theta_k
    spread = np.einsum("rk,kl,rl->r", g, cov_theta, g)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = 2 * var ** 2 / spread
    return np.where(np.isfinite(df) & (df > 0), df, np.inf)


def satterthwaite_f_df(cov_beta: np.ndarray, d_xvx: np.ndarray, cov_theta: np.ndarray,
                       contrasts: np.ndarray) -> float:
    """Denominator df of the F test of ``L beta = c`` (q rows): the Satterthwaite df of the
    q orthogonalised contrasts combined as in Fai & Cornelius (1996), lmerTest's method.
    """
    L = np.atleast_2d(contrasts)
    q = L.shape[0]
    values, vectors = np.linalg.eigh(L @ cov_beta @ L.T)
    rotated = vectors.T @ L
    nu = satterthwaite_df(cov_beta, d_xvx, cov_theta, rotated)
    if q == 1:
        return float(nu[0])
    big = nu > 2
    e = np.sum(nu[big] / (nu[big] - 2))
    return float(2 * e / (e - q)) if e > q else float(np.min(nu))


def _constant(x: np.ndarray) -> bool:
    first = x[0]
    scaled = x if first == 0 else x / first - 1
    return bool(np.all(np.abs(scaled) < np.sqrt(np.finfo(float).eps)))


def containment_df(X: np.ndarray, levels: Sequence[np.ndarray]) -> np.ndarray:
    """nlme's "containment" df per column of ``X``; ``levels`` are group labels from the
    outermost (e.g. therapist) to the innermost (dyad)."""
    n, p = X.shape
    ngroups = [len(np.unique(g)) for g in levels]
    df = np.array(ngroups + [n], float) - np.array([0] + ngroups, float)
    stratum = np.zeros(p, int)
    intercept = np.array([_constant(X[:, j]) for j in range(p)])
    for j in np.flatnonzero(~intercept):
        stratum[j] = 0
        for level, groups in enumerate(levels, start=1):
            _, inverse = np.unique(groups, return_inverse=True)
            lo = np.full(inverse.max() + 1, np.inf)
            hi = np.full(inverse.max() + 1, -np.inf)
            np.minimum.at(lo, inverse, X[:, j])
            np.maximum.at(hi, inverse, X[:, j])
            if np.any(hi - lo > 1e-12 * max(1.0, np.abs(X[:, j]).max())):
                stratum[j] = level
    for s in stratum[~intercept]:
        df[s] -= 1
    if intercept.any():
        df[0] -= 1
    else:
        df[1:] += 1
    out = df[stratum]
    out[intercept] = df.max()
    return out
