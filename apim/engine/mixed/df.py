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


def _df(ngroups: Sequence[int], n: int, stratum: np.ndarray, intercept: np.ndarray
        ) -> np.ndarray:
    """The containment df from the number of groups per level, each column's stratum and
    which columns are intercepts."""
    df = np.array(list(ngroups) + [n], float) - np.array([0] + list(ngroups), float)
    for s in stratum[~intercept]:
        df[s] -= 1
    if intercept.any():
        df[0] -= 1
    else:
        df[1:] += 1
    out = df[stratum]
    out[intercept] = df.max()
    return out


def containment_df(X: np.ndarray, levels: Sequence[np.ndarray]) -> np.ndarray:
    """nlme's "containment" df per column of ``X``; ``levels`` are group labels from the
    outermost (e.g. therapist) to the innermost (dyad)."""
    n, p = X.shape
    codes = [np.unique(g, return_inverse=True)[1].reshape(-1) for g in levels]
    ngroups = [int(c.max()) + 1 if len(c) else 0 for c in codes]
    stratum = np.zeros(p, int)
    intercept = np.array([_constant(X[:, j]) for j in range(p)])
    for j in np.flatnonzero(~intercept):
        for level, (inverse, size) in enumerate(zip(codes, ngroups, strict=True), start=1):
            lo = np.full(size, np.inf)
            hi = np.full(size, -np.inf)
            np.minimum.at(lo, inverse, X[:, j])
            np.maximum.at(hi, inverse, X[:, j])
            if np.any(hi - lo > 1e-12 * max(1.0, np.abs(X[:, j]).max())):
                stratum[j] = level
    return _df(ngroups, n, stratum, intercept)


def sorted_containment_df(X: np.ndarray, order: np.ndarray, starts: Sequence[np.ndarray]
                          ) -> np.ndarray:
    """:func:`containment_df` when the rows ``X[order]`` come in groups at every level:
    ``starts`` are the first sorted rows of each group, outermost level first. One column
    at a time and no sort (an engine fit has the order at hand).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.column_stack([np.ones(8), [0, 1] * 4, np.repeat([0., 1.], 4)])
    >>> order = np.array([0, 2, 4, 6, 1, 3, 5, 7])  # odd and even rows: the groups
    >>> sorted_containment_df(X, order, [np.array([0, 4])]).tolist()
    [5.0, 0.0, 5.0]
    >>> containment_df(X, [np.array([0, 1] * 4)]).tolist()
    [5.0, 0.0, 5.0]
    """
    n, p = X.shape
    tolerance = np.sqrt(np.finfo(float).eps)
    stratum = np.zeros(p, int)
    intercept = np.zeros(p, bool)
    for j in range(p):
        column = np.empty(n)
        for at in range(0, n, 65_536):  # no full-size index temporary
            column[at:at + 65_536] = X[order[at:at + 65_536], j]
        bounds = []
        for first in starts:
            bounds.append((np.minimum.reduceat(column, first) if len(first) else column[:0],
                           np.maximum.reduceat(column, first) if len(first) else column[:0]))
        del column
        lo, hi = float(np.min(X[:, j])), float(np.max(X[:, j]))
        # x / x[0] - 1 is monotone in x: its largest size is at the smallest or largest x
        x0 = X[0, j]
        ends = np.array([lo, hi]) if x0 == 0 else np.array([lo, hi]) / x0 - 1
        intercept[j] = bool(np.all(np.abs(ends) < tolerance))
        if intercept[j]:
            continue
        for level, (low, high) in enumerate(bounds, start=1):
            if np.any(high - low > 1e-12 * max(1.0, abs(lo), abs(hi))):
                stratum[j] = level
    return _df([len(first) for first in starts], n, stratum, intercept)
