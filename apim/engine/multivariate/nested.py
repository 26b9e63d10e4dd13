"""ML/REML likelihood of the multivariate **three-level** model, with its analytic gradient.

Clusters ``i`` (dyads) are nested in higher-level units ``j`` (therapists); at each occasion
``t`` a vector of ``K`` variables, any of them possibly missing::

    z_jit = mu + v_j + b_ji + w_jit,   v_j ~ N(0, Sigma_T),  b_ji ~ N(0, Sigma_B),
    w_jit ~ N(0, Sigma_W)   (optional AR(1) over occasion numbers, as in
    :mod:`apim.engine.multivariate.likelihood`)

``Sigma_B`` is the cluster-within-unit covariance. The covariance of unit ``j``'s values is
``V_j = blockdiag_i(V_i) + X_j Sigma_T X_j'`` with ``V_i`` the two-level covariance of
cluster ``i``. The computation has three stages, each linear in the number of clusters:

1. **Per cluster** (the two-level machinery: missingness patterns, or one Cholesky per
   shape under AR(1)): ``log|V_i|``, ``Q_i = X_i'V_i^-1 X_i``, ``X_i'V_i^-1 y_i`` and
   ``y_i'V_i^-1 y_i``.
2. **Per unit**, Woodbury in the ``K``-dimensional unit effect (valid for singular
   ``Sigma_T``): with ``Q_j = sum_i Q_i`` and ``H_j = (I + Sigma_T Q_j)^-1 Sigma_T``,
   ``log|V_j| = sum_i log|V_i| + log|I + Sigma_T Q_j|``,
   ``X_j'V_j^-1 X_j = Q_j - Q_j H_j Q_j`` and likewise every quadratic form; the GLS
   means, the log-likelihood and ``G_T = -1/2 sum_j X_j'P_j X_j`` (``P`` as in
   :mod:`apim.engine.multivariate.likelihood`).
3. **Per cluster again**: the block of ``P_j`` belonging to cluster ``i`` is
   ``V_i^-1 - V_i^-1 X_i S_i X_i'V_i^-1 - V_i^-1 r~_i r~_i' V_i^-1`` with the residual
   ``r~_i = y_i - X_i (mu + v^_j)`` around the cluster's unit-level mean
   (``v^_j = H_j X_j'V~^-1 r_j``, the predicted unit effect) and
   ``S_i = H_j`` (ML) or ``H_j + F_j C F_j'`` (REML; ``F_j = I - H_j Q_j``,
   ``C = (X'V^-1 X)^-1``), from which the gradients with respect to ``Sigma_W``,
   ``Sigma_B`` and ``phi`` follow as in the two-level model.

With ``Sigma_T = 0`` this reduces exactly to :func:`apim.engine.multivariate.likelihood.evaluate`.

Examples
--------
>>> import numpy as np
>>> from apim.engine.multivariate.likelihood import prepare
>>> rng = np.random.default_rng(1)
>>> y = rng.normal(size=(40, 2)); cluster = np.repeat(np.arange(10), 4)
>>> data = prepare(y, cluster, np.tile(np.arange(1, 5), 10), therapist=cluster // 2)
>>> ev = evaluate_nested(data, np.eye(2), 0.1 * np.eye(2), 0.2 * np.eye(2))
>>> bool(np.isfinite(ev.loglik)), ev.grad_t.shape
(True, (2, 2))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from apim.engine.multivariate.likelihood import (
    LOG_2PI,
    Evaluation,
    MultivariateData,
    _invalid,
    pattern_inverses,
    shape_covariance,
)

__all__ = ["evaluate_nested"]


@dataclass(frozen=True, eq=False)
class _Clusters:
    """Stage 1: per-cluster pieces of the two-level covariance ``V_i``."""

    logdet: np.ndarray   # (d,) log|V_i|
    q: np.ndarray        # (d, K, K) X_i'V_i^-1 X_i
    qy: np.ndarray       # (d, K) X_i'V_i^-1 y_i
    yy: np.ndarray       # (d,) y_i'V_i^-1 y_i


def _sym(m: np.ndarray) -> np.ndarray:
    return (m + np.swapaxes(m, -1, -2)) / 2


def _sum_by(values: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n,) + values.shape[1:])
    np.add.at(out, index, values)
    return out


def evaluate_nested(data: MultivariateData, sigma_w: np.ndarray, sigma_b: np.ndarray,
                    sigma_t: np.ndarray, phi: float | None = None,
                    mu: np.ndarray | None = None, reml: bool = False) -> Evaluation:
    """Log-likelihood and analytic gradient at ``(Sigma_W, Sigma_B, Sigma_T, phi)``.

    Parameters
    ----------
    data : MultivariateData
        Prepared with ``therapist=`` (:func:`apim.engine.multivariate.likelihood.prepare`).
    sigma_w, sigma_b, sigma_t : (K, K) arrays
        Occasion-level, cluster-within-unit and unit-level covariances; ``sigma_b`` and
        ``sigma_t`` may be singular.
    phi : float, optional
        AR(1) parameter over occasion numbers (``None``: independent occasions).
    mu : (K,) array, optional
        The means; default their GLS estimate (``None`` for REML).
    reml : bool

    Returns
    -------
    Evaluation
        With ``grad_t`` and ``therapist_blups``; ``loglik = -inf`` where ``Sigma_W`` is not
        positive definite or a ``V_j`` is singular.
    """
    if data.therapist_of is None:
        raise ValueError("the data were prepared without therapist=: no third level")
    if reml and mu is not None:
        raise ValueError("REML profiles the means out: mu must be None")
    k = data.k
    if phi is not None and not -1 < phi < 1:
        return _invalid(k)
    first = (_patterns_stage1(data, sigma_w, sigma_b) if phi is None
             else _shapes_stage1(data, sigma_w, sigma_b, phi))
    if first is None:
        return _invalid(k)
    clusters, extra = first
    tj, nt = data.therapist_of, data.n_therapists
    # stage 2: Woodbury per therapist
    q_j = _sym(_sum_by(clusters.q, tj, nt))
    qy_j = _sum_by(clusters.qy, tj, nt)
    kt = np.eye(k) + sigma_t @ q_j
    sign, logdet_kt = np.linalg.slogdet(kt)
    if np.any(sign <= 0):
        return _invalid(k)
    h_j = _sym(np.linalg.solve(kt, np.broadcast_to(sigma_t, kt.shape)))
    qh = q_j @ h_j
    qt_j = _sym(q_j - qh @ q_j)                          # X_j'V_j^-1 X_j
    qyt_j = qy_j - np.einsum("jkl,jl->jk", qh, qy_j)     # X_j'V_j^-1 y_j
    xvx, xvy = qt_j.sum(axis=0), qyt_j.sum(axis=0)
    yvy = clusters.yy.sum() - np.einsum("jk,jkl,jl->", qy_j, h_j, qy_j)
    try:
        cov_mu = np.linalg.inv(xvx)
    except np.linalg.LinAlgError:
        return _invalid(k)
    beta = cov_mu @ xvy if mu is None else np.asarray(mu, float)
    quad = yvy - 2 * beta @ xvy + beta @ xvx @ beta
    logdet = float(clusters.logdet.sum() + logdet_kt.sum())
    if reml:
        loglik = -0.5 * ((data.n_obs - k) * LOG_2PI + logdet + np.linalg.slogdet(xvx)[1]
                         + quad)
    else:
        loglik = -0.5 * (data.n_obs * LOG_2PI + logdet + quad)
    u_j = qy_j - q_j @ beta                               # X_j'V~_j^-1 r_j
    v_hat = np.einsum("jkl,jl->jk", h_j, u_j)             # predicted therapist effects
    a_j = qyt_j - qt_j @ beta                             # X_j'V_j^-1 r_j
    grad_t = qt_j.sum(axis=0) - a_j.T @ a_j
    s_j = h_j
    if reml:
        grad_t -= np.einsum("jkl,lm,jmn->kn", qt_j, cov_mu, qt_j)
        f_j = np.eye(k) - h_j @ q_j
        s_j = h_j + f_j @ cov_mu @ np.swapaxes(f_j, 1, 2)
    # stage 3: per cluster, around the therapist-level means
    mean_i = beta + v_hat[tj]
    grad_w, grad_b, grad_phi, blups = (
        _patterns_stage3(data, sigma_w, clusters, extra, mean_i, s_j[tj]) if phi is None
        else _shapes_stage3(data, sigma_w, sigma_b, phi, clusters, extra, mean_i, s_j[tj]))
    grad_t = -0.5 * grad_t
    return Evaluation(loglik=float(loglik), mu=beta, xvx=xvx, grad_w=_sym(grad_w),
                      grad_b=_sym(grad_b), grad_mu=a_j.sum(axis=0), grad_phi=grad_phi,
                      blups=blups, grad_t=_sym(grad_t), therapist_blups=v_hat)


# ------------------------------------------------------------ no AR(1): missingness patterns
def _patterns_stage1(data: MultivariateData, sw: np.ndarray, sb: np.ndarray
                     ) -> tuple[_Clusters, tuple] | None:
    k = data.k
    inverses = pattern_inverses(data, sw)
    if inverses is None:
        return None
    m_p, logdet_p = inverses
    ng, gi, _ = data.count_groups
    a_g = np.einsum("gp,pkl->gkl", ng, m_p)
    kt = np.eye(k) + sb @ a_g
    sign, logdet_k = np.linalg.slogdet(kt)
    if np.any(sign <= 0):
        return None
    h_g = _sym(np.linalg.solve(kt, np.broadcast_to(sb, kt.shape)))
    q_g = _sym(a_g - a_g @ h_g @ a_g)
    a_vec = np.einsum("pkl,dpl->dk", m_p, data.sums)     # X_i'R_i^-1 y_i
    n_pat = len(data.patterns)
    c_sc = np.einsum("pq,dpq->d", m_p.reshape(n_pat, k * k),
                     data.cross.reshape(data.n_clusters, n_pat, k * k))
    a_i, h_i = a_g[gi], h_g[gi]
    ha = np.einsum("dkl,dl->dk", h_i, a_vec)
    qy = a_vec - np.einsum("dkl,dl->dk", a_i, ha)
    yy = c_sc - np.einsum("dk,dk->d", a_vec, ha)
    logdet = data.counts @ logdet_p + logdet_k[gi]
    return _Clusters(logdet, q_g[gi], qy, yy), (m_p, a_vec, a_i, h_i)


def _patterns_stage3(data: MultivariateData, sw: np.ndarray, clusters: _Clusters,
                     extra: tuple, mean_i: np.ndarray, s_i: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    m_p, a_vec, a_i, h_i = extra
    k = data.k
    q_i = clusters.q
    q_res = clusters.qy - np.einsum("dkl,dl->dk", q_i, mean_i)   # X_i'V_i^-1 r~_i
    grad_b = (q_i - q_i @ s_i @ q_i).sum(axis=0) - q_res.T @ q_res
    g = a_vec - np.einsum("dkl,dl->dk", a_i, mean_i)             # X_i'R_i^-1 r~_i
    blups = np.einsum("dkl,dl->dk", h_i, g)
    m = mean_i + blups                                           # predicted cluster means
    f_i = np.eye(k) - h_i @ a_i
    counts = data.counts
    e_p = counts.sum(axis=0)[:, None, None] * sw
    e_p -= np.einsum("dp,dkl->pkl", counts, h_i + f_i @ s_i @ np.swapaxes(f_i, 1, 2))
    e_p -= data.cross_total
    sm = np.einsum("dpk,dl->pkl", data.sums, m)
    e_p += sm + np.swapaxes(sm, 1, 2)
    e_p -= np.einsum("dpk,dl->pkl", counts[:, :, None] * m[:, None, :], m)
    grad_w = -0.5 * np.einsum("pkl,plm,pmn->kn", m_p, e_p, m_p)
    return grad_w, -0.5 * grad_b, 0.0, blups


# ----------------------------------------------------------------- AR(1): cluster shapes
def _shapes_stage1(data: MultivariateData, sw: np.ndarray, sb: np.ndarray, phi: float
                   ) -> tuple[_Clusters, tuple] | None:
    k, d = data.k, data.n_clusters
    logdet, qy, yy = np.zeros(d), np.zeros((d, k)), np.zeros(d)
    q = np.zeros((d, k, k))
    parts = []
    for shape in data.shapes():
        pieces = shape_covariance(shape, sw, sb, phi)
        if pieces is None:
            return None
        x, corr, chol, inv = pieces
        xv = x.T @ inv
        c = shape.clusters
        logdet[c] = 2 * np.log(np.diag(chol)).sum()
        q[c] = xv @ x
        qy[c] = shape.values @ xv.T
        yy[c] = np.einsum("cm,cm->c", shape.values @ inv, shape.values)
        parts.append((shape, x, corr, inv, xv))
    return _Clusters(logdet, q, qy, yy), tuple(parts)


def _shapes_stage3(data: MultivariateData, sw: np.ndarray, sb: np.ndarray, phi: float,
                   clusters: _Clusters, parts: tuple, mean_i: np.ndarray, s_i: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    k = data.k
    grad_w, grad_b = np.zeros((k, k)), np.zeros((k, k))
    grad_phi = 0.0
    blups = np.zeros((data.n_clusters, k))
    for shape, x, corr, inv, xv in parts:
        c = shape.clusters
        resid = shape.values - mean_i[c][:, shape.var]
        alpha = resid @ inv                                   # V_i^-1 r~_i per cluster
        p_mat = len(c) * inv - alpha.T @ alpha - xv.T @ s_i[c].sum(axis=0) @ xv
        grad_b += x.T @ p_mat @ x
        grad_w += x.T @ (p_mat * corr) @ x
        grad_phi += float(np.sum(p_mat * shape.block(sw) * shape.powers(phi)[1]))
        blups[c] = (alpha @ x) @ sb
    return -0.5 * grad_w, -0.5 * grad_b, -0.5 * grad_phi, blups
