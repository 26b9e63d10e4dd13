"""The analytic gradient of the Laplace / adaptive-quadrature marginal log-likelihood.

Dyad ``i``'s value ``log L_i = -log|H|/2 + LSE_k(log omega_k + h(a_k) + |z_k|^2/2)`` with
nodes ``a_k = a^ + C z_k`` depends on the parameters directly and through the mode ``a^``
and the scale ``C = R^-T`` (``RR' = H``). With ``pi_k`` the nodes' normalised weights:

    d log L_i = -tr(H^-1 dH)/2 + sum_k pi_k [d_theta h(a_k) + grad_a h(a_k)'(da^ + dC z_k)]

    da^ = H^-1 d_theta grad_a h(a^)                    (the mode's first-order condition)
    dH  = L' diag(dw) L + dL' W L + L' W dL,  dw = d_theta w + v o (L da^ + dL a^)
    dR  = R Phi(R^-1 dH R^-T),  dC = -C dR' C           (Phi: lower triangle, half diagonal)

with ``w_r = -sum_j d2_j`` and ``v_r = -sum_j d3_j`` over the member's observations (third
derivatives of the response: :func:`apim.engine.glmm.response.interval_terms`). Laplace
is the case of one node at ``z = 0``. Everything is per dyad and vectorised over dyads and
parameter directions; checked against differences in tests/engine/test_glmm_engine.py.
"""

from __future__ import annotations

import numpy as np

from apim.engine.glmm.model import Prepared
from apim.engine.glmm.quadrature import _curvature, hermite_grid, mode_location
from apim.engine.glmm.response import Terms, interval_terms, node_terms

__all__ = ["loglik_gradient", "threshold_jacobians", "fixed_parts", "fixed_envelope",
           "cov_derivatives"]


def cov_derivatives(prepared: Prepared, c: np.ndarray) -> np.ndarray:
    """dL/dc for each covariance parameter: (n_cov, 2, 2)."""
    if prepared.model.random == "unstructured":
        out = np.zeros((3, 2, 2))
        out[0, 0, 0] = np.exp(c[0])
        out[1, 1, 0] = 1.0
        out[2, 1, 1] = np.exp(c[2])
        return out
    sd, cor = np.exp(c[0]), np.tanh(c[1])
    root = np.sqrt(1 - cor * cor)
    L = sd * np.array([[1.0, 0.0], [cor, root]])
    dcor = sd * (1 - cor * cor) * np.array([[0.0, 0.0], [1.0, -cor / root]])
    return np.stack([L, dcor])


def threshold_jacobians(prepared: Prepared, raw: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
    """d theta_upper / d raw and d theta_lower / d raw per observation (N, m)."""
    model = prepared.model
    m = model.n_thresholds
    N = len(prepared.category)
    if m == 0:
        return np.zeros((N, 0)), np.zeros((N, 0))
    K1 = model.n_categories - 1
    raw = raw.reshape(model.n_sets, K1)
    # d theta_{s,q} / d raw_{s,l}: 1 for l = 0, exp(raw_{s,l}) for 1 <= l <= q
    out = []
    for index in (prepared.category, prepared.category - 1):  # upper, lower threshold
        J = np.zeros((N, m))
        valid = (index >= 0) & (index < K1)
        for s in range(model.n_sets):
            rows = valid & (prepared.threshold_set == s)
            q = index[rows]
            J[rows, s * K1] = 1.0
            steps = np.exp(raw[s, 1:])
            for step in range(1, K1):
                J[rows, s * K1 + step] = np.where(q >= step, steps[step - 1], 0.0)
        out.append(J)
    return out[0], out[1]


def fixed_parts(prepared: Prepared, T: Terms, Jup: np.ndarray, Jlow: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """At fixed intercepts, the derivatives in beta and the thresholds of each dyad's and
    role's summed ``d log P / d eta`` and weight ``w = -sum d2`` (each (n, 2, p + m)): the
    per-dyad-and-role sums by sparse products (the rows of X weighted by d2 and -d3)."""
    X, cl = prepared.X, prepared.clusters
    m = prepared.model.n_thresholds
    dgrad_u, dw = cl.weighted_columns(T.d2, X), cl.weighted_columns(-T.d3, X)
    if m:
        sums = cl.per_role_columns(np.concatenate([
            T.d1_up[:, None] * Jup + T.d1_low[:, None] * Jlow,  # d d1 / d raw
            -(T.d2_up[:, None] * Jup + T.d2_low[:, None] * Jlow)], axis=1))
        dgrad_u = np.concatenate([dgrad_u, sums[:, :, :m]], axis=2)
        dw = np.concatenate([dw, sums[:, :, m:]], axis=2)
    return dgrad_u, dw


def fixed_envelope(prepared: Prepared, T: Terms, Jup: np.ndarray, Jlow: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The derivatives of the summed log-probabilities in beta and the raw thresholds at
    fixed intercepts."""
    return (prepared.X.T @ T.d1,
            (T.up[:, None] * Jup + T.low[:, None] * Jlow).sum(axis=0))


def loglik_gradient(prepared: Prepared, x: np.ndarray, start: np.ndarray | None = None
                    ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """The marginal log-likelihood at ``x``, its gradient, the modes and their derivative
    in ``x`` (n, 2, P) (for a warm start of the next evaluation)."""
    model = prepared.model
    link = model.link_function
    cl = prepared.clusters
    beta, theta, c = model.split(x)
    upper, lower = prepared.bounds(theta)
    L = model.cholesky(c)
    dLs = cov_derivatives(prepared, c)
    p, m = len(beta), model.n_thresholds
    n = cl.n
    X = prepared.X
    offset = X @ beta
    a_hat, _ = mode_location(link, offset, upper, lower, cl, L, start)
    Jup, Jlow = threshold_jacobians(prepared, x[p:p + m])
    # --- at the mode
    eta = offset + cl.gather(a_hat @ L.T)
    T = interval_terms(link, upper, lower, eta)
    g = cl.per_role(T.d1)
    w = -cl.per_role(T.d2)
    v = -cl.per_role(T.d3)
    H = _curvature(L, w)
    dgrad_u, dw = fixed_parts(prepared, T, Jup, Jlow)
    dgrad = np.einsum("rc,nrq->ncq", L, dgrad_u)  # L' (...)
    n_cov = len(dLs)
    dgrad_c = np.empty((n, 2, n_cov))
    dw_c = np.empty((n, 2, n_cov))
    for q, dL in enumerate(dLs):
        dLa = a_hat @ dL.T  # (n, 2): (dL a)_r
        dgrad_c[:, :, q] = g @ dL - (w * dLa) @ L
        dw_c[:, :, q] = v * dLa
    dgrad = np.concatenate([dgrad, dgrad_c], axis=2)
    dw = np.concatenate([dw, dw_c], axis=2)
    # the mode's derivative
    Hinv = np.linalg.inv(H)
    da = np.einsum("nab,nbq->naq", Hinv, dgrad)
    # total dw and dH
    dw_total = dw + v[:, :, None] * np.einsum("rc,ncq->nrq", L, da)
    dH = np.einsum("ra,rb,nrq->nabq", L, L, dw_total)
    for q, dL in enumerate(dLs):
        WL = w[:, :, None] * L[None, :, :]  # (n, r, b): W L
        extra = np.einsum("ra,nrb->nab", dL, WL)
        dH[:, :, :, p + m + q] += extra + extra.transpose(0, 2, 1)
    # log|C| part
    grad = -0.5 * np.einsum("nab,nbaq->q", Hinv, dH)
    R = np.linalg.cholesky(H)
    Rinv = np.linalg.inv(R)
    C = Rinv.transpose(0, 2, 1)
    log_c = -np.log(R[:, 0, 0]) - np.log(R[:, 1, 1])
    if model.nagq == 1:
        value = np.bincount(cl.dyad, weights=T.logp, minlength=n) \
            - 0.5 * np.einsum("ij,ij->i", a_hat, a_hat) + log_c
        # d_theta h at the mode: beta, thresholds, covariance
        d_beta, d_thr = fixed_envelope(prepared, T, Jup, Jlow)
        d_cov = np.array([np.einsum("nr,nr->", g, a_hat @ dL.T) for dL in dLs])
        grad = grad + np.concatenate([d_beta, d_thr, d_cov])
        return float(value.sum()), grad, a_hat, da
    # --- quadrature nodes
    z, omega = hermite_grid(model.nagq)
    nodes = a_hat[:, None, :] + np.einsum("nab,kb->nka", C, z)  # (n, k, 2)
    u = nodes @ L.T
    # each observation's row of its member's intercepts at the nodes (one row gather)
    by_role = np.ascontiguousarray(u.transpose(0, 2, 1)).reshape(2 * n, -1)
    eta_k = offset[:, None] + np.take(by_role, cl.slot, axis=0)
    logp_k, d1_k, up_k, low_k = node_terms(link, upper[:, None], lower[:, None], eta_k,
                                           partials=m > 0)
    h = cl.per_dyad(logp_k) - 0.5 * np.einsum("nkc,nkc->nk", nodes, nodes)
    terms = h + np.log(omega)[None, :] + 0.5 * np.einsum("kc,kc->k", z, z)[None, :]
    top = terms.max(axis=1)
    weights = np.exp(terms - top[:, None])
    total = weights.sum(axis=1)
    pi = weights / total[:, None]  # (n, k)
    value = log_c + top + np.log(total)
    pi_obs = np.take(pi, cl.dyad, axis=0)  # (N, k)
    d_beta = X.T @ np.einsum("jk,jk->j", pi_obs, d1_k)
    d_thr = np.zeros(0)
    if up_k is not None and low_k is not None:  # free thresholds (ordinal)
        up_w = (pi_obs * up_k).sum(axis=1)
        low_w = (pi_obs * low_k).sum(axis=1)
        d_thr = (up_w[:, None] * Jup + low_w[:, None] * Jlow).sum(axis=0)
    gk = cl.per_role_columns(d1_k).transpose(0, 2, 1)  # (n, k, 2)
    Q = np.einsum("nk,nkr,nkc->nrc", pi, gk, nodes)  # sum_k pi g_k a_k'
    d_cov = np.array([np.einsum("rc,nrc->", dL, Q) for dL in dLs])
    grad = grad + np.concatenate([d_beta, d_thr, d_cov])
    grad_h = gk @ L - nodes  # grad_a h at each node (n, k, 2)
    mvec = np.einsum("nk,nka->na", pi, grad_h)
    M = np.einsum("nk,nka,kb->nab", pi, grad_h, z)
    grad = grad + np.einsum("na,naq->q", mvec, da)
    # dC = -C dR' C with dR = R Phi(R^-1 dH R^-T)
    inner = np.einsum("nab,nbcq,ndc->nadq", Rinv, dH, Rinv)
    phi = np.tril(np.moveaxis(inner, 3, 1))  # (n, q, 2, 2)
    phi[:, :, 0, 0] *= 0.5
    phi[:, :, 1, 1] *= 0.5
    dR = np.einsum("nab,nqbc->nqac", R, phi)
    dC = -np.einsum("nab,nqcb,ncd->nqad", C, dR, C)
    grad = grad + np.einsum("nab,nqab->q", M, dC)
    return float(value.sum()), grad, a_hat, da
