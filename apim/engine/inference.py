"""Denominator degrees of freedom for fixed effects.

- **Satterthwaite**: ``df_j = 2 C_jj^2 / (g' Cov(theta) g)`` with ``C = (X'V^-1 X)^-1``,
  ``g_k = dC_jj / dtheta_k = -(C dS_k C)_jj`` (``S = X'V^-1 X``, derivatives analytic) and
  ``Cov(theta)`` the inverse observed information of the fitted criterion.
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
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from apim.engine.likelihood import Evaluation


def satterthwaite_df(ev: "Evaluation", cov_theta: np.ndarray) -> np.ndarray:
    """Satterthwaite df for each coefficient (``inf`` when no covariance parameter moves
    the variance)."""
    c = ev.cov_beta
    if ev.d_xvx is None or len(ev.d_xvx) == 0:
        return np.full(len(c), np.inf)
    g = -np.einsum("ji,kil,lj->jk", c, ev.d_xvx, c)  # (p, k): d C_jj / d theta_k
    var = np.einsum("jk,kl,jl->j", g, cov_theta, g)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = 2 * np.diag(c) ** 2 / var
    return np.where(np.isfinite(df) & (df > 0), df, np.inf)


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
