"""A dense, naive likelihood with the full ``N x N`` matrix ``V``, for tests.

It shares nothing with :mod:`apim.engine.mixed.likelihood` but the parameter maps: ``V`` is
built entry by entry from the natural parameters and the likelihood from ``slogdet`` and
``solve`` on the whole matrix. Use it on small data only.

Examples
--------
>>> import numpy as np
>>> from apim.engine import MixedModel, Residual
>>> y = np.array([1.0, 2.0, 0.5, 1.5]); X = np.ones((4, 1))
>>> model = MixedModel(y=y, X=X, dyad=np.array([0, 0, 1, 1]), role=np.array([0, 1, 0, 1]),
...                    session=np.ones(4, int), residual=Residual.named("independent"))
>>> round(float(dense_loglik(model, np.array([0.0]), reml=False)), 6)
-4.300754
"""

from __future__ import annotations

import numpy as np

from apim.engine.mixed.likelihood import split_theta
from apim.engine.mixed.model import MixedModel


def dense_covariance(model: MixedModel, theta: np.ndarray) -> np.ndarray:
    """The full marginal covariance ``V`` of ``y`` in input row order."""
    t_g, t_t, t_r = split_theta(model, np.asarray(theta, float))
    n = len(model.y)
    dyad = np.asarray(model.dyad)
    v = np.zeros((n, n))
    for label in np.unique(dyad):
        rows = np.flatnonzero(dyad == label)
        r, _ = model.residual.dense(t_r, np.asarray(model.role)[rows],
                                    np.asarray(model.session)[rows])
        v[np.ix_(rows, rows)] = r
    if model.random is not None:
        z = np.asarray(model.Z, float)
        same = dyad[:, None] == dyad[None, :]
        v += same * (z @ model.random.matrix(t_g) @ z.T)
    if model.therapist is not None and model.therapist_random is not None:
        zt = np.ones((n, 1)) if model.Z_therapist is None else np.asarray(model.Z_therapist)
        t = model.therapist_random.matrix(t_t)
        same = np.asarray(model.therapist)[:, None] == np.asarray(model.therapist)[None, :]
        v += same * (zt @ t @ zt.T)
    return v


def dense_loglik(model: MixedModel, theta: np.ndarray, reml: bool = True) -> float:
    """ML or REML log-likelihood (nlme convention) from the full ``V``."""
    v = dense_covariance(model, theta)
    X, y = np.asarray(model.X, float), np.asarray(model.y, float)
    n, p = X.shape
    vinv_x = np.linalg.solve(v, X)
    xvx = X.T @ vinv_x
    beta = np.linalg.solve(xvx, vinv_x.T @ y)
    r = y - X @ beta
    quad = r @ np.linalg.solve(v, r)
    logdet = np.linalg.slogdet(v)[1]
    if reml:
        return -0.5 * ((n - p) * np.log(2 * np.pi) + logdet + np.linalg.slogdet(xvx)[1] + quad)
    return -0.5 * (n * np.log(2 * np.pi) + logdet + quad)
