"""The dense oracle of the dynamic APIM: each dyad's full stacked covariance over the
session grid built from the model's definition, its observed rows selected, and the
Gaussian log-likelihood computed with a dense Cholesky factor. Nothing is shared with
the Kalman filter of :mod:`apim.engine.dynamic.kalman`."""

from __future__ import annotations

import numpy as np


def within_covariance(phi: np.ndarray, sigma_w: np.ndarray, p0: np.ndarray,
                      n_sessions: int) -> np.ndarray:
    """Cov(w_s, w_t) over the grid: Var(w_t0) = P0, Var(w_t+1) = Phi Var(w_t) Phi' +
    Sigma_W, Cov(w_t, w_s) = Phi^(t-s) Var(w_s) for t >= s."""
    k = len(phi)
    var = [p0]
    for _ in range(n_sessions - 1):
        var.append(phi @ var[-1] @ phi.T + sigma_w)
    out = np.zeros((n_sessions * k, n_sessions * k))
    for s in range(n_sessions):
        block = var[s]
        for t in range(s, n_sessions):
            out[t * k:(t + 1) * k, s * k:(s + 1) * k] = block
            out[s * k:(s + 1) * k, t * k:(t + 1) * k] = block.T
            block = phi @ block
    return out


def dense_loglik(y: np.ndarray, mu: np.ndarray, phi: np.ndarray, sigma_w: np.ndarray,
                 sigma_b: np.ndarray, p0: np.ndarray) -> float:
    """ML log-likelihood of ``y`` (dyads, sessions, K; NaN missing); ``mu`` (K,) the
    same means for every dyad, or (dyads, K) each dyad's own (covariates of the means)."""
    n, n_t, k = y.shape
    mu = np.broadcast_to(np.asarray(mu, float), (n, k))
    cov_w = within_covariance(phi, sigma_w, p0, n_t)
    ones = np.tile(np.eye(k), (n_t, 1))
    full = cov_w + ones @ sigma_b @ ones.T
    total = 0.0
    for i in range(n):
        flat = y[i].reshape(-1)
        seen = ~np.isnan(flat)
        if not seen.any():
            continue
        v = full[np.ix_(seen, seen)]
        r = flat[seen] - np.tile(mu[i], n_t)[seen]
        chol = np.linalg.cholesky(v)
        z = np.linalg.solve(chol, r)
        total += -0.5 * (seen.sum() * np.log(2 * np.pi)
                         + 2 * np.log(np.diag(chol)).sum() + z @ z)
    return float(total)


def dense_therapist_loglik(y: np.ndarray, therapist: np.ndarray, mu: np.ndarray,
                           phi: np.ndarray, sigma_w: np.ndarray, sigma_b: np.ndarray,
                           p0: np.ndarray, sigma_t: np.ndarray) -> float:
    """ML log-likelihood with dyads nested in therapists (``therapist`` the label of each
    dyad): all observations of a therapist's dyads stacked into one vector whose
    covariance is block diagonal over dyads (as :func:`dense_loglik`) plus ``Sigma_T``
    between every pair of its observations of the same or another dyad; ``mu`` as in
    :func:`dense_loglik`."""
    n, n_t, k = y.shape
    mu = np.broadcast_to(np.asarray(mu, float), (n, k))
    cov_w = within_covariance(phi, sigma_w, p0, n_t)
    ones = np.tile(np.eye(k), (n_t, 1))
    dyad_cov = cov_w + ones @ sigma_b @ ones.T
    total = 0.0
    for label in np.unique(therapist):
        members = np.flatnonzero(therapist == label)
        size = len(members) * n_t * k
        cov = np.kron(np.ones((len(members), len(members))), ones @ sigma_t @ ones.T)
        cov += np.kron(np.eye(len(members)), dyad_cov)
        flat = y[members].reshape(-1)
        seen = ~np.isnan(flat)
        if not seen.any():
            continue
        assert cov.shape == (size, size)
        v = cov[np.ix_(seen, seen)]
        r = flat[seen] - np.repeat(mu[members], n_t, axis=0).reshape(-1)[seen]
        chol = np.linalg.cholesky(v)
        z = np.linalg.solve(chol, r)
        total += -0.5 * (seen.sum() * np.log(2 * np.pi)
                         + 2 * np.log(np.diag(chol)).sum() + z @ z)
    return float(total)


def central_gradient(func, x: np.ndarray, step: float = 1e-6) -> np.ndarray:
    """Central differences of ``func`` at ``x``."""
    eye = np.eye(len(x)) * step
    return np.array([(func(x + e) - func(x - e)) / (2 * step) for e in eye])


def assert_problem_gradient(problem, nat: np.ndarray) -> np.ndarray:
    """The estimation's analytic gradients (natural vector ``nat``, means given; the
    search's unconstrained vector, means profiled) against central differences of its
    likelihood, relative 1e-6; returns the natural gradient."""
    layout = problem.layout
    value, grad = problem.gradient(nat)
    assert abs(value - problem.loglik(nat)) < 1e-8
    numeric = central_gradient(problem.loglik, nat)
    assert np.max(np.abs(grad - numeric)) < 1e-6 * np.max(np.abs(numeric))
    theta = layout.to_search(layout.unpack(nat))
    _, search = problem.search_objective(theta)
    numeric = central_gradient(lambda x: problem.search_objective(x)[0], theta)
    assert np.max(np.abs(search - numeric)) < 1e-6 * np.max(np.abs(numeric))
    return grad
