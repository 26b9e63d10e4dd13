"""The analytic gradient of the dynamic model's log-likelihood
(:mod:`apim.engine.dynamic.kalman`) by reverse-mode differentiation (the adjoint) of the
Kalman filter, for ``m`` parameter sets at once.

The forward pass is the filter itself (:func:`~apim.engine.dynamic.kalman.run_filter`,
keeping each session); the backward pass carries the adjoints of the predicted state
``a`` (per dyad), and of the regressors' state ``X`` and the covariance ``P`` (per
history: the dyads sharing them, :mod:`apim.engine.dynamic.patterns`) from the last
session to the first. Per node of dyads with the same history and observed variables
(``D`` the mask)::

    F = D P D + (I - D),  G = D F^-1 D,  e = D (y - a),  E = D (I - X)
    c += e'G e,  s += E'G e,  S += E'G E,  log|F|
    a <- Phi (a + P G e),  X <- Phi (X + P G E),  P <- Phi (P - P G P) Phi' + Sigma_W

and per dyad ``-2 log L_i = n_i log 2 pi + sum log|F| + c - 2 s'mu + mu'S mu
+ log|I + Sigma_B S| - r' (I + Sigma_B S)^-1 Sigma_B r`` with ``r = s - S mu``. The
adjoint of a node's ``P``, ``G`` and ``X`` is a sum over its dyads, and the per-dyad terms
enter it through sums of outer products of K-vectors (``sum e e'``, ``sum e s-bar'``,
...) taken once per node. Matrices are differentiated as unconstrained (their symmetry
is imposed by the maps to the parameter vectors in :mod:`apim.engine.dynamic.parameters`).
The tests check the gradient against central differences of
:func:`apim.engine.dynamic.kalman.evaluate`.

Examples
--------
>>> from apim.engine.dynamic.kalman import prepare_dynamic
>>> rng = np.random.default_rng(0)
>>> data = prepare_dynamic(rng.normal(size=(5, 4, 2)))
>>> grad = loglik_gradient(data, 0.3 * np.eye(2), np.eye(2), 0.5 * np.eye(2), np.eye(2),
...                        np.zeros(2))
>>> grad.phi.shape, bool(np.isfinite(grad.loglik))
((2, 2), True)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from apim.engine.dynamic.kalman import (
    DynamicData,
    Integrated,
    Stored,
    TherapistLevel,
    Totals,
    dyad_means,
    integrate,
    integrate_nested,
    matrix_vector,
    run_filter,
)

__all__ = ["MatrixGradient", "loglik_gradient", "gradient_many", "between_gradient_many",
           "stationary_adjoint"]


class MatrixGradient(NamedTuple):
    """The log-likelihood and its derivatives in the entries of each matrix (taken as
    unconstrained) and of the means (with a leading axis of parameter sets from
    :func:`gradient_many`); ``mu`` the means used (given or profiled)."""

    loglik: float | np.ndarray
    mu: np.ndarray
    phi: np.ndarray
    sigma_w: np.ndarray
    sigma_b: np.ndarray
    p0: np.ndarray
    means: np.ndarray
    sigma_t: np.ndarray | None = None


def _backward(data: DynamicData, stored: list[Stored], phi: np.ndarray,
              bar_s: np.ndarray, bar_big_s: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adjoints of ``Phi``, ``Sigma_W`` and ``P0`` (m, K, K) of ``sum log|F| + c +
    bar_s . s + bar_big_s . S`` summed over dyads (``bar_s`` (m, n, K) per set and
    dyad, ``bar_big_s`` (G, m, K, K) summed over the dyads of each group)."""
    m, n, k = bar_s.shape
    phi_t = phi.mT
    bar_a = np.zeros((m, n, k))
    bar_x = bar_p = np.zeros((len(data.steps[-1].keep), m, k, k))   # per history
    bar_phi, bar_sw = np.zeros((m, k, k)), np.zeros((m, k, k))
    for t in reversed(range(len(stored))):
        st, kept = data.steps[t], stored[t]
        na = st.na
        p, g, big_e, g_big_e, p_g = kept.p, kept.g, kept.big_e, kept.g_big_e, kept.p_g
        e, g_e = kept.e, kept.g_e
        ba = bar_a[:, :na]
        bar_phi += ba.mT @ kept.a_up
        ba_up = ba @ phi
        sv = bar_s[:, :na]
        g_p = p_g.mT
        # sums over each node's dyads: e e', e s-bar', e a-bar'; S-bar
        sums = st.node_outer(e, np.concatenate([e, sv, ba_up], axis=2))
        c_ee, c_es, c_ea = sums[..., :k], sums[..., k:2 * k], sums[..., 2 * k:]
        ss = st.group_sum(bar_big_s)
        bar_e = 2 * g_e + st.apply(g_big_e, sv) + st.apply(g_p, ba_up)
        bar_g = c_ee + big_e @ c_es.mT + big_e @ ss @ big_e.mT + p @ c_ea.mT
        inner = c_es + 2 * big_e @ ss
        bar_node_p = c_ea.mT @ g + st.counts * g
        bar_sw += bar_p.sum(axis=0)
        if st.all_complete:     # the filtered X and P do not depend on the node's
            bar_phi += bar_x.sum(axis=0)
            bar_node_x = -st.rows * (g @ inner)
        else:
            bar_phi += (bar_x @ kept.x_up.mT
                        + (bar_p + bar_p.mT) @ phi @ kept.p_up).sum(axis=0)
            bx_up = (phi_t @ bar_x)[st.following]
            bp_up = (phi_t @ bar_p @ phi)[st.following]
            if st.reset:      # the merged history's state does not depend on the node's
                bx_up[st.complete] = 0.0
                bp_up[st.complete] = 0.0
            bar_g = bar_g + p @ bx_up @ big_e.mT - p @ bp_up @ p
            bar_node_x = bx_up - st.rows * (g @ (inner + p @ bx_up))
            bar_node_p = (bar_node_p + bp_up - bp_up @ p_g - g_p @ bp_up
                          + bx_up @ g_big_e.mT)
        bar_node_p = bar_node_p - g @ bar_g @ g
        bar_a[:, :na] = ba_up - st.dyad_mask * bar_e
        bar_p, bar_x = st.to_histories(bar_node_p), st.to_histories(bar_node_x)
    return bar_phi, bar_sw, bar_p[0]


class _Top(NamedTuple):
    """The integrated likelihood and the adjoints of ``-2 log L`` in the means and
    ``Sigma_B`` (m sets), ``mu + q`` per dyad and ``M^-T`` per group."""

    out: Integrated
    bar_mu: np.ndarray
    bar_sb: np.ndarray
    plus: np.ndarray


def _top(data: DynamicData, totals: Totals, sigma_b: np.ndarray, mu: np.ndarray | None
         ) -> _Top:
    out = integrate(data, totals, sigma_b, mu)
    group, big_s = data.groups, totals.big_s
    m_inv_t = np.linalg.inv(out.m_mat.mT)                        # M^-T per group
    w = matrix_vector(m_inv_t[group], out.r)                    # M^-T r
    counts = data.group_counts.astype(float)
    bar_sb = (np.tensordot(counts, m_inv_t @ big_s, axes=1)
              - np.einsum("nmi,nmj->mij", w, w))
    score = out.r - matrix_vector(big_s[group], out.q)          # per dyad
    if data.design is None:
        return _Top(out, -2 * score.sum(axis=0), bar_sb, out.mu + out.q)
    return _Top(out, -2 * _over_design(score, data.design), bar_sb,
                dyad_means(out.mu, data.design) + out.q)


def _over_design(per_dyad: np.ndarray, design: np.ndarray) -> np.ndarray:
    """``sum_i X_i' g_i`` (m, K q) of per-dyad vectors ``g_i`` (n, m, K), ``X_i = I_K (x)
    x_i'``: the adjoint of the coefficients of means that are regressions on covariates
    (:func:`~apim.engine.dynamic.kalman.dyad_means`)."""
    return np.einsum("nmj,na->mja", per_dyad, design).reshape(per_dyad.shape[1], -1)


def _sym(m: np.ndarray) -> np.ndarray:
    return (m + m.mT) / 2


class _Nested(NamedTuple):
    """The adjoints of ``-2 log L`` with a therapist level: in the means, ``Sigma_B``,
    ``Sigma_T``, the filter's ``s`` (m, n, K) and ``S`` (G, m, K, K, summed per group)."""

    out: Integrated
    bar_mu: np.ndarray
    bar_sb: np.ndarray
    bar_st: np.ndarray
    bar_s: np.ndarray
    bar_big_s: np.ndarray


def _nested_top(data: DynamicData, totals: Totals, sigma_b: np.ndarray,
                mu: np.ndarray | None, level: TherapistLevel, sigma_t: np.ndarray
                ) -> _Nested:
    """The therapist level's algebra (:func:`~apim.engine.dynamic.kalman.integrate`)
    differentiated back to the filter's sums: the top level as :func:`_top` on the
    therapists' ``A_j``, ``v_j``; then through each dyad's ``A = M^-T S``, ``v = M^-T
    s`` (``M = I + Sigma_B S``) and its own ``log|M| - s' M^-1 Sigma_B s``."""
    out, red = integrate_nested(data, totals, sigma_b, mu, level, sigma_t)
    group, big_s = data.groups, totals.big_s
    # the top level: log|M_j| - r_j' P_j r_j - 2 v_j'mu + mu'A_j mu over therapists
    m_inv_t = np.linalg.inv(out.m_mat.mT)
    w = matrix_vector(m_inv_t, out.r)
    bar_st = (m_inv_t @ red.a_t).sum(axis=0) - np.einsum("jmi,jmk->mik", w, w)
    if data.design is None:
        bar_mu = -2 * (out.r - matrix_vector(red.a_t, out.q)).sum(axis=0)
        plus = out.mu + out.q
        bar_a_t = _sym(out.p_mat) + plus[..., :, None] * plus[..., None, :]
        bar_a = np.tensordot(level.counts.T, bar_a_t, axes=1)      # (G, m, K, K)
        bar_v = -2 * plus[level.codes]                             # (n, m, K)
    else:   # each dyad's own means: mu_i + q_j, per dyad
        plus = dyad_means(out.mu, data.design) + out.q[level.codes]
        bar_mu = -2 * _over_design(red.v - matrix_vector(red.a[group], plus),
                                   data.design)
        bar_a = np.tensordot(level.counts.T, _sym(out.p_mat), axes=1)
        np.add.at(bar_a, group, plus[..., :, None] * plus[..., None, :])
        bar_v = -2 * plus
    # through v = M^-T s and A = M^-T S
    m_mat = red.m_mat
    g = np.linalg.solve(m_mat[group], bar_v[..., None])[..., 0]
    sb_v = matrix_vector(sigma_b, red.v)
    h = np.linalg.solve(m_mat, bar_a)
    bar_s = g.copy()
    bar_big_s = h - h @ red.a.mT @ sigma_b.mT
    np.add.at(bar_big_s, group, -g[..., :, None] * sb_v[..., None, :])
    s_g = matrix_vector(big_s.mT[group], g)
    bar_sb = (-np.einsum("nmi,nmk->mik", s_g, red.v)
              - (big_s.mT @ h @ red.a.mT).sum(axis=0))
    # the dyads' own log|M| - s' M^-1 Sigma_B s (as _top at zero means: w = v, q = q)
    counts = data.group_counts.astype(float)
    m_inv_t_b = np.linalg.inv(m_mat.mT)
    bar_sb = bar_sb + (np.tensordot(counts, m_inv_t_b @ big_s, axes=1)
                       - np.einsum("nmi,nmk->mik", red.v, red.v))
    p_b = np.linalg.solve(m_mat, np.broadcast_to(sigma_b, m_mat.shape))
    bar_big_s = bar_big_s + counts[:, None, None, None] * _sym(p_b)
    np.add.at(bar_big_s, group, red.q[..., :, None] * red.q[..., None, :])
    bar_s = bar_s - 2 * red.q
    return _Nested(out, bar_mu, _sym(bar_sb), _sym(bar_st), np.swapaxes(bar_s, 0, 1),
                   _sym(bar_big_s))


def gradient_many(data: DynamicData, phi: np.ndarray, sigma_w: np.ndarray,
                  sigma_b: np.ndarray, p0: np.ndarray, mu: np.ndarray | None,
                  level: TherapistLevel | None = None, sigma_t: np.ndarray | None = None
                  ) -> MatrixGradient:
    """Log-likelihoods of ``m`` parameter sets (matrices (m, K, K), ``mu`` (m, K) or
    None: profiled by GLS, when the gradient is that at the profiled means held fixed,
    their own derivative vanishing there) and their derivatives in each entry of the
    matrices and means; ``-inf`` (and NaN derivatives) where a covariance is not
    admissible. With a therapist ``level`` (``sigma_t`` (m, K, K)) also the derivatives
    in ``Sigma_T`` (:func:`_nested_top`)."""
    if level is not None:
        assert sigma_t is not None
        return _nested_gradient(data, phi, sigma_w, sigma_b, p0, mu, level, sigma_t)
    k = data.k
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        totals, stored = run_filter(data, phi, sigma_w, p0, keep=True)
        top = _top(data, totals, sigma_b, mu)
        out, plus, group = top.out, top.plus, data.groups
        sym = (out.p_mat + out.p_mat.mT) / 2
        counts = data.group_counts.astype(float)
        bar_big_s = np.zeros_like(totals.big_s)                # summed over each group
        np.add.at(bar_big_s, group, plus[..., :, None] * plus[..., None, :])
        bar_big_s += counts[:, None, None, None] * sym
        bar_phi, bar_sw, bar_p0 = _backward(data, stored, phi, -2 * np.swapaxes(plus, 0, 1),
                                             bar_big_s)
    loglik = np.where(out.ok, -out.total / 2, -np.inf)
    nan = np.full((k, k), np.nan)
    bad = ~out.ok[:, None, None]
    phi_, sw_, sb_, p0_ = (np.where(bad, nan, -b / 2)
                           for b in (bar_phi, bar_sw, top.bar_sb, bar_p0))
    return MatrixGradient(loglik, np.where(bad[..., 0], np.nan, -top.bar_mu / 2), phi_, sw_,
                          sb_, p0_, out.mu)


def _nested_gradient(data: DynamicData, phi: np.ndarray, sigma_w: np.ndarray,
                     sigma_b: np.ndarray, p0: np.ndarray, mu: np.ndarray | None,
                     level: TherapistLevel, sigma_t: np.ndarray) -> MatrixGradient:
    """:func:`gradient_many` with a therapist level."""
    k = data.k
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        totals, stored = run_filter(data, phi, sigma_w, p0, keep=True)
        top = _nested_top(data, totals, sigma_b, mu, level, sigma_t)
        bar_phi, bar_sw, bar_p0 = _backward(data, stored, phi, top.bar_s, top.bar_big_s)
    out = top.out
    loglik = np.where(out.ok, -out.total / 2, -np.inf)
    nan = np.full((k, k), np.nan)
    bad = ~out.ok[:, None, None]
    phi_, sw_, sb_, p0_, st_ = (np.where(bad, nan, -b / 2)
                                for b in (bar_phi, bar_sw, top.bar_sb, bar_p0, top.bar_st))
    return MatrixGradient(loglik, np.where(bad[..., 0], np.nan, -top.bar_mu / 2), phi_, sw_,
                          sb_, p0_, out.mu, st_)


def between_gradient_many(data: DynamicData, totals: Totals, sigma_b: np.ndarray,
                          mu: np.ndarray, level: TherapistLevel | None = None,
                          sigma_t: np.ndarray | None = None
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Log-likelihoods and their derivatives in the means (m, K), in ``Sigma_B``
    (m, K, K) and, with a therapist ``level``, in ``Sigma_T`` (else None) of ``m`` sets
    of means and between covariances on the filter's sums of one set of ``Phi``,
    ``Sigma_W``, ``P0`` (``totals`` of one set: the filter does not depend on the means
    or the random intercepts' covariances, so no filter or adjoint runs)."""
    m, g = len(sigma_b), len(totals.big_s)
    n, k = totals.s.shape[1:]
    shared = Totals(np.broadcast_to(totals.logdet, (m,)), np.broadcast_to(totals.c, (m,)),
                    np.broadcast_to(totals.s, (m, n, k)),
                    np.broadcast_to(totals.big_s, (g, m, k, k)))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if level is not None:
            assert sigma_t is not None
            nested = _nested_top(data, shared, sigma_b, mu, level, sigma_t)
            loglik = np.where(nested.out.ok, -nested.out.total / 2, -np.inf)
            return loglik, -nested.bar_mu / 2, -nested.bar_sb / 2, -nested.bar_st / 2
        top = _top(data, shared, sigma_b, mu)
    loglik = np.where(top.out.ok, -top.out.total / 2, -np.inf)
    return loglik, -top.bar_mu / 2, -top.bar_sb / 2, None


def loglik_gradient(data: DynamicData, phi: np.ndarray, sigma_w: np.ndarray,
                    sigma_b: np.ndarray, p0: np.ndarray, mu: np.ndarray | None,
                    level: TherapistLevel | None = None, sigma_t: np.ndarray | None = None
                    ) -> MatrixGradient:
    """The log-likelihood at the given matrices and means (None: profiled) and its
    derivatives in each entry of them (the matrices taken as unconstrained); the value
    is ``-inf`` (and the derivatives NaN) where a covariance is not admissible.

    Parameters
    ----------
    data : the prepared ratings
    phi, sigma_w, sigma_b, p0 : (K, K) matrices
    mu : (K,) means (K q coefficients ``B[variable, covariate]`` with covariates of the
        means, :func:`~apim.engine.dynamic.kalman.prepare_dynamic`), or None
    level, sigma_t : a therapist level and its (K, K) covariance, optional

    Returns
    -------
    MatrixGradient
    """
    many = gradient_many(data, phi[None], sigma_w[None], sigma_b[None], p0[None],
                         None if mu is None else np.asarray(mu, float)[None], level,
                         None if sigma_t is None else np.asarray(sigma_t, float)[None])
    return MatrixGradient(float(np.asarray(many.loglik)[0]), many.mu[0], many.phi[0],
                          many.sigma_w[0], many.sigma_b[0], many.p0[0], many.means[0],
                          None if many.sigma_t is None else many.sigma_t[0])


def stationary_adjoint(phi: np.ndarray, p0: np.ndarray, bar_p0: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Adjoints of ``Phi`` and ``Sigma_W`` of a function of the stationary covariance
    ``P0`` (``P0 = Phi P0 Phi' + Sigma_W``) whose adjoint in ``P0`` is ``bar_p0``."""
    k = len(phi)
    lam = np.linalg.solve((np.eye(k * k) - np.kron(phi, phi)).T,
                          bar_p0.reshape(-1)).reshape(k, k)
    return lam @ phi @ p0.T + lam.T @ phi @ p0, lam
