"""The analytic gradient of the dynamic model's log-likelihood
(:mod:`apim.engine.dynamic.kalman`) by reverse-mode differentiation (the adjoint) of the
Kalman filter, for one parameter set at a time.

The forward pass runs the filter per dyad (no sharing of histories) and keeps each
session's quantities; the backward pass carries the adjoints of the predicted state
``a``, the regressors' state ``X`` and the covariance ``P`` from the last session to the
first. Per dyad and session (``D`` the mask of observed ratings)::

    F = D P D + (I - D),  G = D F^-1 D,  e = D (y - a),  E = D (I - X)
    c += e'G e,  s += E'G e,  S += E'G E,  log|F|
    a <- Phi (a + P G e),  X <- Phi (X + P G E),  P <- Phi (P - P G P) Phi' + Sigma_W

and per dyad ``-2 log L_i = n_i log 2 pi + sum log|F| + c - 2 s'mu + mu'S mu
+ log|I + Sigma_B S| - r' (I + Sigma_B S)^-1 Sigma_B r`` with ``r = s - S mu``. Matrices
are differentiated as unconstrained (their symmetry is imposed by the maps to the
parameter vectors in :mod:`apim.engine.dynamic.estimate`). The tests check the gradient
against central differences of :func:`apim.engine.dynamic.kalman.evaluate`.

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

from apim.engine.dynamic.kalman import LOG_2PI, DynamicData

__all__ = ["MatrixGradient", "loglik_gradient", "stationary_adjoint"]


class MatrixGradient(NamedTuple):
    """The log-likelihood and its derivatives in the entries of each matrix (taken as
    unconstrained) and of the means."""

    loglik: float
    mu: np.ndarray
    phi: np.ndarray
    sigma_w: np.ndarray
    sigma_b: np.ndarray
    p0: np.ndarray


class _Session(NamedTuple):
    """What the backward pass needs of one session (the first ``na`` dyads)."""

    na: int
    d: np.ndarray        # (na, K) mask
    p: np.ndarray        # predicted covariance (na, K, K)
    g_mat: np.ndarray    # G (na, K, K)
    e: np.ndarray        # data innovation (na, K)
    big_e: np.ndarray    # regressors' innovation (na, K, K)
    a_up: np.ndarray     # filtered data state (na, K)
    x_up: np.ndarray     # filtered regressors' state (na, K, K)
    p_up: np.ndarray     # filtered covariance (na, K, K)


class _Totals(NamedTuple):
    logdet: np.ndarray   # (n,)
    c: np.ndarray        # (n,)
    s: np.ndarray        # (n, K)
    big_s: np.ndarray    # (n, K, K)


def _mv(m: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Matrix times vector per dyad."""
    return np.einsum("nij,nj->ni", m, v)


def _t(m: np.ndarray) -> np.ndarray:
    return np.swapaxes(m, -1, -2)


def _forward(data: DynamicData, phi: np.ndarray, sigma_w: np.ndarray, p0: np.ndarray
             ) -> tuple[_Totals, list[_Session]]:
    """The filter per dyad, keeping each session for the backward pass."""
    n, n_t, k = data.y.shape
    eye = np.eye(k)
    a, x = np.zeros((n, k)), np.zeros((n, k, k))
    p = np.broadcast_to(p0, (n, k, k)).copy()
    logdet, c, s, big_s = np.zeros(n), np.zeros(n), np.zeros((n, k)), np.zeros((n, k, k))
    sessions = []
    for t in range(n_t):
        na = int(data.active[t])
        if na == 0:
            break
        d = data.observed[:na, t].astype(float)
        both = d[:, :, None] * d[:, None, :]
        pa = p[:na]
        f = pa * both + (1 - d)[:, :, None] * eye
        sign, ld = np.linalg.slogdet(f)
        g_mat = np.linalg.inv(f) * both
        e = (data.y[:na, t] - a[:na]) * d
        big_e = (eye - x[:na]) * d[:, :, None]
        g_e, g_big = _mv(g_mat, e), g_mat @ big_e
        logdet[:na] += np.where(sign > 0, ld, -np.inf)
        c[:na] += (e * g_e).sum(axis=1)
        s[:na] += np.einsum("nji,nj->ni", big_e, g_e)
        big_s[:na] += _t(big_e) @ g_big
        a_up = a[:na] + _mv(pa, g_e)
        x_up = x[:na] + pa @ g_big
        p_up = pa - pa @ g_mat @ pa
        sessions.append(_Session(na, d, pa.copy(), g_mat, e, big_e, a_up, x_up, p_up))
        a[:na] = a_up @ phi.T
        x[:na] = phi @ x_up
        p[:na] = phi @ p_up @ phi.T + sigma_w
    return _Totals(logdet, c, s, big_s), sessions


def _backward(sessions: list[_Session], phi: np.ndarray, bar_s: np.ndarray,
              bar_big_s: np.ndarray, scale: float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adjoints of ``Phi``, ``Sigma_W`` and ``P0`` of ``scale * (sum log|F| + c) +
    bar_s . s + bar_big_s . S`` (summed over dyads)."""
    n, k = bar_s.shape
    bar_a, bar_x, bar_p = np.zeros((n, k)), np.zeros((n, k, k)), np.zeros((n, k, k))
    bar_phi, bar_sw = np.zeros((k, k)), np.zeros((k, k))
    for ses in reversed(sessions):
        na = ses.na
        ba, bx, bp = bar_a[:na], bar_x[:na], bar_p[:na]
        bar_phi += ba.T @ ses.a_up + (bx @ _t(ses.x_up)).sum(axis=0)
        bar_phi += (bp @ phi @ _t(ses.p_up) + _t(bp) @ phi @ ses.p_up).sum(axis=0)
        bar_sw += bp.sum(axis=0)
        ba_up = ba @ phi
        bx_up = phi.T @ bx
        bp_up = phi.T @ bp @ phi
        g_mat, pa, e, big_e = ses.g_mat, ses.p, ses.e, ses.big_e
        sv, ss = bar_s[:na], bar_big_s[:na]
        g_e, g_big = _mv(g_mat, e), g_mat @ big_e
        p_ba = _mv(pa, ba_up)
        p_bx = pa @ bx_up
        bar_e = 2 * scale * g_e + _mv(g_big, sv) + _mv(g_mat, p_ba)
        bar_big_e = g_e[:, :, None] * sv[:, None, :] + 2 * g_big @ ss + g_mat @ p_bx
        bar_g = (scale * e[:, :, None] * e[:, None, :]
                 + _mv(big_e, sv)[:, :, None] * e[:, None, :]
                 + big_e @ ss @ _t(big_e) + p_ba[:, :, None] * e[:, None, :]
                 + p_bx @ _t(big_e) - pa @ bp_up @ pa)
        bar_p[:na] = (bp_up - bp_up @ pa @ g_mat - g_mat @ pa @ bp_up
                      + ba_up[:, :, None] * g_e[:, None, :] + bx_up @ _t(g_big)
                      + scale * g_mat - g_mat @ bar_g @ g_mat)
        bar_a[:na] = ba_up - ses.d * bar_e
        bar_x[:na] = bx_up - ses.d[:, :, None] * bar_big_e
    return bar_phi, bar_sw, bar_p.sum(axis=0)


def loglik_gradient(data: DynamicData, phi: np.ndarray, sigma_w: np.ndarray,
                    sigma_b: np.ndarray, p0: np.ndarray, mu: np.ndarray
                    ) -> MatrixGradient:
    """The log-likelihood at the given matrices and means and its derivatives in each
    entry of them (the matrices taken as unconstrained); the value is ``-inf`` (and the
    derivatives NaN) where a covariance is not admissible.

    Parameters
    ----------
    data : the prepared ratings
    phi, sigma_w, sigma_b, p0 : (K, K) matrices
    mu : (K,) means

    Returns
    -------
    MatrixGradient
    """
    k = data.k
    eye = np.eye(k)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        totals, sessions = _forward(data, phi, sigma_w, p0)
        m_mat = eye + sigma_b @ totals.big_s                        # I + Sigma_B S
        sign, log_m = np.linalg.slogdet(m_mat)
        r = totals.s - totals.big_s @ mu
        q = np.linalg.solve(m_mat, (sigma_b @ r.T).T[..., None])[..., 0]   # P r
        w = np.linalg.solve(_t(m_mat), r[..., None])[..., 0]              # M^-T r
        s_m = np.linalg.solve(_t(m_mat), totals.big_s)                    # S M^-1
        total = (data.n_obs * LOG_2PI + totals.logdet.sum() + totals.c.sum()
                 - 2 * (totals.s @ mu).sum() + np.einsum("j,njk,k->", mu, totals.big_s, mu)
                 + log_m.sum() - (r * q).sum())
        # d(-2 log L) / d s and / d S (symmetrised), per dyad
        bar_s = -2 * (mu + q)
        plus = mu + q
        p_mat = np.linalg.solve(m_mat, np.broadcast_to(sigma_b, m_mat.shape))
        bar_big_s = plus[:, :, None] * plus[:, None, :] + (p_mat + _t(p_mat)) / 2
        bar_sb = (s_m - w[:, :, None] * w[:, None, :]).sum(axis=0)
        bar_mu = -2 * (r - _mv(totals.big_s, q)).sum(axis=0)
        bar_phi, bar_sw, bar_p0 = _backward(sessions, phi, bar_s, bar_big_s, 1.0)
    if np.any(sign <= 0) or not np.isfinite(total):
        nan = np.full((k, k), np.nan)
        return MatrixGradient(-np.inf, np.full(k, np.nan), nan, nan, nan, nan)
    return MatrixGradient(-total / 2, -bar_mu / 2, -bar_phi / 2, -bar_sw / 2,
                          -bar_sb / 2, -bar_p0 / 2)


def stationary_adjoint(phi: np.ndarray, p0: np.ndarray, bar_p0: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Adjoints of ``Phi`` and ``Sigma_W`` of a function of the stationary covariance
    ``P0`` (``P0 = Phi P0 Phi' + Sigma_W``) whose adjoint in ``P0`` is ``bar_p0``."""
    k = len(phi)
    lam = np.linalg.solve((np.eye(k * k) - np.kron(phi, phi)).T,
                          bar_p0.reshape(-1)).reshape(k, k)
    return lam @ phi @ p0.T + lam.T @ phi @ p0, lam
