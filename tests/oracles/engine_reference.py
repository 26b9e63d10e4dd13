"""The engine's per-cluster likelihood as it was before the grouped evaluation (apim commit
8e9fa3c, ``apim/engine/likelihood.py``), kept verbatim as the oracle of
tests/engine/test_engine_grouped.py: one parameter at a time, every product per dyad."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from apim.engine.mixed.likelihood import LOG_2PI, split_theta
from apim.engine.mixed.model import MixedModel, Prepared
from apim.errors import FitError


class Reference(NamedTuple):
    loglik: float
    gradient: np.ndarray | None
    beta: np.ndarray
    cov_beta: np.ndarray
    d_xvx: np.ndarray | None
    blups: np.ndarray

    @property
    def score(self) -> np.ndarray:
        assert self.gradient is not None
        return self.gradient


def stacked_g(model: MixedModel, prep: Prepared, theta: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Covariance of a cluster's stacked random effects and its derivatives (k_G + k_T)."""
    t_g, t_t, _ = split_theta(model, theta)
    w = prep.width
    g_full = np.zeros((w, w))
    grads = []
    if model.therapist_random is not None:
        qt = prep.q_t
        g_full[:qt, :qt] = model.therapist_random.matrix(t_t)
        for d in model.therapist_random.jacobian(t_t):
            m = np.zeros((w, w))
            m[:qt, :qt] = d
            grads.append(m)
    if model.random is not None:
        def blocks(g: np.ndarray) -> np.ndarray:  # one block per dyad slot of a cluster
            return g if prep.n_slots == 1 else np.kron(np.eye(prep.n_slots), g)

        g_full[prep.q_t:, prep.q_t:] = blocks(model.random.matrix(t_g))
        dyad_grads = []
        for d in model.random.jacobian(t_g):
            m = np.zeros((w, w))
            m[prep.q_t:, prep.q_t:] = blocks(d)
            dyad_grads.append(m)
        grads = dyad_grads + grads
    return g_full, (np.stack(grads) if grads else np.zeros((0, w, w)))


def _assemble(rows: np.ndarray, prep: Prepared) -> tuple[np.ndarray, np.ndarray]:
    """Random-effect rows of the per-dyad cross products -> per-cluster ``A = Z'R^-1 Z``
    and ``B = Z'R^-1 [X | y]``, random effects stacked as (therapist, dyad slots...)."""
    qt, q, w = prep.q_t, prep.q, prep.width
    zt, z, u = slice(0, qt), slice(qt, qt + q), slice(qt + q, None)
    if qt == 0 and prep.n_slots == 1:  # each dyad is its own cluster
        return rows[:, :, z], rows[:, :, u]
    c = prep.n_clusters
    a = np.zeros((c, w, w))
    b = np.zeros((c, w, rows.shape[-1] - qt - q))
    if qt:
        np.add.at(a[:, :qt, :qt], prep.cluster, rows[:, zt, zt])
        np.add.at(b[:, :qt], prep.cluster, rows[:, zt, u])
    for s in range(prep.n_slots if q else 0):
        dyads = np.flatnonzero(prep.slot == s)
        cl = prep.cluster[dyads]
        sl = slice(qt + s * q, qt + (s + 1) * q)
        a[cl, sl, sl] = rows[dyads, z, z]
        b[cl, sl] = rows[dyads, z, u]
        if qt:
            a[cl, :qt, sl] = rows[dyads, zt, z]
            a[cl, sl, :qt] = rows[dyads, z, zt]
    return a, b


def reference_evaluate(model: MixedModel, prep: Prepared, theta: np.ndarray, reml: bool = True,
             gradient: bool = True) -> Reference:
    """Log-likelihood, gradient and GLS quantities at ``theta``, as the per-cluster code
    evaluated them before the grouped path (loops over parameters, eager BLUPs)."""
    theta = np.asarray(theta, float)
    _, _, t_r = split_theta(model, theta)
    g_full, dg = stacked_g(model, prep, theta)
    products = prep.products.products(model.residual, t_r, gradient)
    a, b = _assemble(products.rows, prep)
    logdet_r = products.logdet
    w = prep.width
    p = prep.p
    if w:
        k_mat = np.eye(w)[None] + g_full[None] @ a
        k_inv = np.linalg.inv(k_mat)
        h = k_inv @ g_full[None]
        logdet_k = np.linalg.slogdet(k_mat)[1]
        hb = h @ b
        bt = np.swapaxes(b, 1, 2)
        s = products.rest - (bt @ hb).sum(0)
    else:
        logdet_k = np.zeros(prep.n_clusters)
        s = products.rest
    s_xx, s_xy, s_yy = s[:p, :p], s[:p, p], s[p, p]
    cov_beta = np.linalg.inv(s_xx)
    beta = cov_beta @ s_xy
    rss = s_yy - s_xy @ beta
    logdet = logdet_r.sum() + logdet_k.sum()
    n = prep.n
    if reml:
        logdet_xvx = np.linalg.slogdet(s_xx)[1]
        loglik = -0.5 * ((n - p) * LOG_2PI + logdet + logdet_xvx + rss)
    else:
        loglik = -0.5 * (n * LOG_2PI + logdet + rss)
    v = np.r_[-beta, 1.0]
    blups = hb @ v if w else np.zeros((prep.n_clusters, 0))
    if not gradient:
        return Reference(loglik, None, beta, cov_beta, None, blups)
    d_rows, d_rest, d_logdet_r = products.d_rows, products.d_rest, products.d_logdet
    if d_rows is None or d_rest is None or d_logdet_r is None:
        raise FitError("the residual structure returned no derivatives; this is a bug")

    d_s_list: list[np.ndarray] = []
    d_logdet: list[float] = []
    for dgk in dg:  # random-effect parameters: A, B, D do not move
        dk = dgk[None] @ a
        d_logdet.append(np.sum(k_inv * np.swapaxes(dk, 1, 2)))
        dh = k_inv @ (dgk[None] - dk @ h)
        d_s_list.append(-(bt @ (dh @ b)).sum(0))
    for k in range(len(d_logdet_r)):  # residual parameters move the products
        da, db = _assemble(d_rows[k], prep)
        ds = d_rest[k]
        dl = d_logdet_r[k].sum()
        if w:
            gda = g_full[None] @ da
            dl += np.sum(k_inv * np.swapaxes(gda, 1, 2))
            dh = -k_inv @ gda @ h
            cross_term = (np.swapaxes(db, 1, 2) @ hb).sum(0)
            ds = ds - (cross_term + cross_term.T + (bt @ (dh @ b)).sum(0))
        d_s_list.append(ds)
        d_logdet.append(dl)
    d_s = np.stack(d_s_list) if d_s_list else np.zeros((0, p + 1, p + 1))
    d_xvx = d_s[:, :p, :p]
    grad = np.array([
        -0.5 * (d_logdet[k] + v @ d_s[k] @ v
                + (np.einsum("ij,ji->", cov_beta, d_xvx[k]) if reml else 0.0))
        for k in range(len(d_s))])
    return Reference(loglik, grad, beta, cov_beta, d_xvx, blups)
