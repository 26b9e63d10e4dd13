"""A dense, naive likelihood of the multivariate two-level model, for tests.

It shares nothing with :mod:`apim.engine.multivariate.likelihood` or
:mod:`apim.engine.multivariate.nested`: the full covariance ``V`` of all observed values
(every cluster at once; with a therapist level, every therapist's clusters together) is
built entry by entry and the likelihood taken from ``slogdet`` and ``solve`` on the whole
matrix. :func:`dense_gradient` builds ``V`` a second way, as a sum of Kronecker-style
indicator products (``Sigma[var_a, var_b]`` times same-therapist, same-cluster and
``phi^lag`` indicator matrices), and differentiates it entry by entry:
``dl/dtheta = -1/2 tr(P dV/dtheta)``. Use both on small data only.

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

__all__ = ["dense_covariance", "dense_loglik", "dense_gradient"]


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


def dense_gradient(y: np.ndarray, cluster: np.ndarray, occasion: np.ndarray,
                   sigma_w: np.ndarray, sigma_b: np.ndarray, phi: float | None = None,
                   mu: np.ndarray | None = None, reml: bool = False,
                   therapist: np.ndarray | None = None,
                   sigma_t: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Gradient of :func:`dense_loglik` with respect to each entry of ``Sigma_W``,
    ``Sigma_B``, ``Sigma_T`` (``K x K`` arrays, entries treated as separate parameters,
    so a symmetric perturbation ``dS`` changes the log-likelihood by ``sum(g * dS)``),
    ``phi`` and ``mu`` (ML only).

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([[1.0, 2.0], [0.5, np.nan], [2.0, 1.0]])
    >>> g = dense_gradient(y, np.array([0, 0, 1]), np.array([1, 2, 1]), np.eye(2),
    ...                    0.5 * np.eye(2), mu=np.zeros(2))
    >>> sorted(g)
    ['between', 'mu', 'within']
    """
    y = np.asarray(y, float)
    k = y.shape[1]
    rows, var = np.nonzero(~np.isnan(y))
    values = y[rows, var]
    cl = np.asarray(cluster)[rows]
    same_cluster = (cl[:, None] == cl[None, :]).astype(float)
    lag = np.abs(np.asarray(occasion)[rows][:, None] - np.asarray(occasion)[rows][None, :])
    corr = (lag == 0).astype(float) if phi is None else phi ** lag.astype(float)
    corr = corr * same_cluster
    same_therapist = None
    if therapist is not None and sigma_t is not None:
        th = np.asarray(therapist)[rows]
        same_therapist = (th[:, None] == th[None, :]).astype(float)

    def spread(s: np.ndarray) -> np.ndarray:
        return s[var[:, None], var[None, :]]

    v = spread(sigma_w) * corr + spread(sigma_b) * same_cluster
    if same_therapist is not None and sigma_t is not None:
        v = v + spread(sigma_t) * same_therapist
    x = np.eye(k)[var]
    vinv = np.linalg.inv(v)
    xvx = x.T @ vinv @ x
    beta = np.linalg.solve(xvx, x.T @ vinv @ values) if mu is None else np.asarray(mu)
    a = vinv @ (values - x @ beta)
    p = vinv - np.outer(a, a)
    if reml:
        vx = vinv @ x
        p = p - vx @ np.linalg.solve(xvx, vx.T)
    parts = {"within": corr, "between": same_cluster}
    if same_therapist is not None:
        parts["therapist"] = same_therapist
    out = {}
    for name, indicator in parts.items():
        g = np.zeros((k, k))
        for i in range(k):
            for j in range(k):
                unit = np.zeros((k, k))
                unit[i, j] = 1.0
                g[i, j] = -0.5 * np.sum(p * (spread(unit) * indicator))
        out[name] = g
    if phi is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            dcorr = np.where(lag > 0, lag * phi ** (lag - 1.0), 0.0) * same_cluster
        out["phi"] = np.array(-0.5 * np.sum(p * spread(sigma_w) * dcorr))
    if not reml:
        out["mu"] = x.T @ a
    return out
