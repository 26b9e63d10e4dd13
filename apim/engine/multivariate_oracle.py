"""A dense, naive likelihood of the multivariate two-level model, for tests.

It shares nothing with :mod:`apim.engine.multivariate`: the full covariance ``V`` of all
observed values (every cluster at once) is built entry by entry and the likelihood taken
from ``slogdet`` and ``solve`` on the whole matrix. Use it on small data only.

Examples
--------
>>> import numpy as np
>>> y = np.array([[1.0, 2.0], [0.5, np.nan], [2.0, 1.0]])
>>> value = dense_loglik(y, np.array([0, 0, 1]), np.array([1, 2, 1]), np.eye(2),
...                      0.5 * np.eye(2), mu=np.zeros(2))
>>> round(float(value), 6)
-8.893214
"""

from __future__ import annotations

import numpy as np

__all__ = ["dense_covariance", "dense_loglik"]


def dense_covariance(y: np.ndarray, cluster: np.ndarray, occasion: np.ndarray,
                     sigma_w: np.ndarray, sigma_b: np.ndarray, phi: float | None = None,
                     therapist: np.ndarray | None = None,
                     sigma_t: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``V`` of the observed values (row-major over ``y``) and their variable indices."""
    rows, var = np.nonzero(~np.isnan(np.asarray(y, float)))
    n = len(rows)
    v = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            ra, rb = rows[a], rows[b]
            ka, kb = var[a], var[b]
            if therapist is not None and sigma_t is not None \
                    and therapist[ra] == therapist[rb]:
                v[a, b] += sigma_t[ka, kb]
            if cluster[ra] != cluster[rb]:
                continue
            v[a, b] += sigma_b[ka, kb]
            lag = abs(int(occasion[ra]) - int(occasion[rb]))
            if phi is None:
                v[a, b] += sigma_w[ka, kb] if lag == 0 else 0.0
            else:
                v[a, b] += sigma_w[ka, kb] * phi ** lag
    return v, var


def dense_loglik(y: np.ndarray, cluster: np.ndarray, occasion: np.ndarray,
                 sigma_w: np.ndarray, sigma_b: np.ndarray, phi: float | None = None,
                 mu: np.ndarray | None = None, reml: bool = False,
                 therapist: np.ndarray | None = None,
                 sigma_t: np.ndarray | None = None) -> float:
    """ML (at ``mu``, or at the GLS means) or REML log-likelihood, nlme's convention."""
    y = np.asarray(y, float)
    v, var = dense_covariance(y, cluster, occasion, sigma_w, sigma_b, phi, therapist,
                              sigma_t)
    values = y[~np.isnan(y)]
    x = np.eye(y.shape[1])[var]
    n, p = x.shape
    vinv_x = np.linalg.solve(v, x)
    xvx = x.T @ vinv_x
    beta = np.linalg.solve(xvx, vinv_x.T @ values) if mu is None else np.asarray(mu)
    r = values - x @ beta
    quad = r @ np.linalg.solve(v, r)
    logdet = np.linalg.slogdet(v)[1]
    if reml:
        return float(-0.5 * ((n - p) * np.log(2 * np.pi) + logdet
                             + np.linalg.slogdet(xvx)[1] + quad))
    return float(-0.5 * (n * np.log(2 * np.pi) + logdet + quad))
