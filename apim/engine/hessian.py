"""Observed information of the covariance parameters: exact second derivatives of the
profiled (RE)ML log-likelihood in the random-effect parameters, differences of the analytic
gradient in the residual parameters.

With ``K = I + G A``, ``A = Z'R^-1 Z``, ``B = Z'R^-1 [X | y]`` per cluster (as in
:mod:`apim.engine.likelihood`), ``N = A K^-1`` (symmetric), ``U = K^-T B``,
``v = (-beta, 1)``, ``u = U v`` and ``S = sum(C) - sum_c B'K^-1 G B``, the random-effect
parameters ``k, l`` (entering only through ``G``, so ``A`` and ``B`` do not move) give::

    d2 log|K| = tr(N d2G_kl) - tr(dG_l N dG_k N)
    d2 S      = -sum_c [U' d2G_kl U - U' dG_l N dG_k U - U' dG_k N dG_l U]
    d2 rss    = v' d2S v - 2 (dS_k v)_x' S_xx^-1 (dS_l v)_x         (beta profiled out)
    d2 log|S_xx| = tr(S_xx^-1 d2S_xx) - tr(S_xx^-1 dS_xx,l S_xx^-1 dS_xx,k)     (REML)

and ``-2 loglik = sum log|K| + rss [+ log|S_xx|] + terms free of G``. The second
derivatives ``d2G`` of the (small) covariance matrices come from central differences of
their analytic Jacobians, which involve no likelihood evaluation. The residual parameters
move the whitened cross products, whose second derivatives the engine does not compute:
their rows and columns of the Hessian are central differences of the analytic gradient
(two evaluations per residual parameter).

Examples
--------
>>> import numpy as np
>>> from apim.engine import MixedModel, Unstructured, Residual
>>> from apim.engine.model import Prepared
>>> rng = np.random.default_rng(1)
>>> dyad = np.repeat(np.arange(30), 8); role = np.tile([0, 1], 120)
>>> session = np.tile(np.repeat([1, 2, 3, 4], 2), 30)
>>> X = np.column_stack([1 - role, role]).astype(float)
>>> y = X @ [1.0, 2.0] + rng.normal(size=(30, 2))[dyad, role] + rng.normal(size=240)
>>> model = MixedModel(y=y, X=X, dyad=dyad, role=role, session=session, Z=X,
...                    random=Unstructured(2), residual=Residual.named("un"))
>>> prep = Prepared.of(model)
>>> theta = np.array([0.1, 0.2, -0.1, 0.0, 0.1, 0.3])
>>> exact = information(model, prep, theta, reml=True)
>>> differences = difference_information(model, prep, theta, reml=True)
>>> bool(np.allclose(exact, differences, rtol=1e-6, atol=1e-6))
True
>>> from apim.engine.likelihood import evaluate
>>> rough = information(model, prep, theta, True, gradient=evaluate(model, prep, theta).score)
>>> bool(np.allclose(rough, differences, rtol=1e-4, atol=1e-4))
True
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from apim.engine.likelihood import _assemble, evaluate, split_theta, stacked_g
from apim.engine.model import MixedModel, Prepared

__all__ = ["information", "difference_information", "Score"]

#: clusters handled at once (bounds the memory of the per-parameter arrays)
CHUNK_CLUSTERS = 20_000


Score = Callable[[np.ndarray], np.ndarray]


def _scorer(model: MixedModel, prep: Prepared, reml: bool, score: Score | None) -> Score:
    return score or (lambda theta: evaluate(model, prep, theta, reml).score)


def _difference_column(score: Score, theta: np.ndarray, j: int,
                       gradient: np.ndarray | None = None) -> np.ndarray:
    """Column ``j`` of the Hessian of ``-loglik``: central differences of the gradient,
    or forward differences from ``gradient`` (the one at ``theta``) when it is given."""
    e = np.zeros(len(theta))
    if gradient is not None:
        e[j] = 1e-6 * max(1.0, abs(theta[j]))
        return -(score(theta + e) - gradient) / e[j]
    e[j] = 1e-5 * max(1.0, abs(theta[j]))
    return -(score(theta + e) - score(theta - e)) / (2 * e[j])


def difference_information(model: MixedModel, prep: Prepared, theta: np.ndarray,
                           reml: bool, score: Score | None = None) -> np.ndarray:
    """Hessian of ``-loglik`` from central differences of the analytic gradient in every
    parameter (``2 k`` evaluations): the reference for :func:`information`.

    ``score`` computes the gradient of the log-likelihood at a parameter vector (default:
    :func:`apim.engine.likelihood.evaluate`; a caller passes its own to count the
    evaluations)."""
    score = _scorer(model, prep, reml, score)
    k = len(theta)
    h = np.zeros((k, k))
    for j in range(k):
        h[:, j] = _difference_column(score, np.asarray(theta, float), j)
    return (h + h.T) / 2


def _second_g(model: MixedModel, prep: Prepared, theta: np.ndarray, n_g: int) -> np.ndarray:
    """``d2G[k, l]`` of the stacked cluster covariance, by central differences of its
    analytic Jacobian (no likelihood evaluation)."""
    w = prep.width
    out = np.zeros((n_g, n_g, w, w))
    for j in range(n_g):
        step = 1e-5 * max(1.0, abs(theta[j]))
        e = np.zeros(len(theta))
        e[j] = step
        out[:, j] = (stacked_g(model, prep, theta + e)[1]
                     - stacked_g(model, prep, theta - e)[1]) / (2 * step)
    return (out + np.swapaxes(out, 0, 1)) / 2


def _random_block(model: MixedModel, prep: Prepared, theta: np.ndarray, reml: bool,
                  n_g: int) -> np.ndarray:
    """Exact Hessian of ``-loglik`` in the first ``n_g`` (random-effect) parameters."""
    _, _, t_r = split_theta(model, theta)
    g_full, dg = stacked_g(model, prep, theta)
    products = prep.products.products(model.residual, t_r, False)
    a_all, b_all = _assemble(products.rows, prep)
    p = prep.p
    chunks = range(0, len(a_all), CHUNK_CLUSTERS)
    # first pass: S (for beta and S_xx^-1)
    s = products.rest.copy()
    parts = []
    for start in chunks:
        a, b = a_all[start:start + CHUNK_CLUSTERS], b_all[start:start + CHUNK_CLUSTERS]
        k_inv = np.linalg.inv(np.eye(len(g_full))[None] + g_full[None] @ a)
        hb = k_inv @ (g_full[None] @ b)
        s -= (np.swapaxes(b, 1, 2) @ hb).sum(0)
        parts.append((a, b, k_inv, hb))
    s_inv = np.linalg.inv(s[:p, :p])
    beta = s_inv @ s[:p, p]
    v = np.r_[-beta, 1.0]
    d2g = _second_g(model, prep, theta, n_g)
    second = np.zeros((n_g, n_g))  # of -2 loglik
    ds_v = np.zeros((n_g, p))       # (dS_k v)_x
    ds_xx = np.zeros((n_g, p, p))   # dS_xx,k
    for a, b, k_inv, hb in parts:
        n_mat = a @ k_inv                                  # (c, w, w), symmetric
        u_mat = b - a @ hb                                 # K^-T B
        u = u_mat @ v                                      # (c, w)
        ux = u_mat[:, :, :p]
        # terms with d2G: contract d2G with sums over clusters
        m_log = n_mat.sum(0)
        m_rss = np.einsum("ci,cj->ij", u, u)
        gu = np.einsum("kij,cj->kci", dg, u)               # dG_k u
        ngu = np.einsum("cij,kcj->kci", n_mat, gu)         # N dG_k u
        pk = np.einsum("kij,cjl->kcil", dg, n_mat)         # dG_k N
        wx = np.einsum("kij,cjl->kcil", dg, ux)            # dG_k Ux
        second += np.einsum("klij,ji->kl", d2g, m_log)
        second -= np.einsum("kcij,lcji->kl", pk, pk)
        second -= np.einsum("klij,ij->kl", d2g, m_rss)
        second += 2 * np.einsum("kci,lci->kl", gu, ngu)
        ds_v -= np.einsum("cim,kci->km", ux, gu)
        ds_xx -= np.einsum("cim,kcin->kmn", ux, wx)
        if reml:
            m_reml = np.einsum("cim,mn,cjn->ij", ux, s_inv, ux)
            nwx = np.einsum("cij,kcjm->kcim", n_mat, wx)   # N dG_k Ux
            wxs = np.einsum("kcim,mn->kcin", wx, s_inv)    # dG_l Ux S^-1
            cross = np.einsum("kcim,lcim->kl", nwx, wxs)
            second -= np.einsum("klij,ij->kl", d2g, m_reml)
            second += cross + cross.T
    second -= 2 * ds_v @ s_inv @ ds_v.T
    if reml:
        d = np.einsum("mn,knr->kmr", s_inv, ds_xx)
        second -= np.einsum("kmr,lrm->kl", d, d)
    hess = second / 2
    return (hess + hess.T) / 2


def information(model: MixedModel, prep: Prepared, theta: np.ndarray, reml: bool,
                score: Score | None = None, gradient: np.ndarray | None = None
                ) -> np.ndarray:
    """Hessian of ``-loglik`` at ``theta``: exact in the random-effect parameters (about
    one likelihood evaluation's work, without calling ``score``), central differences
    of the analytic gradient ``score`` (as in :func:`difference_information`) in the
    residual parameters, two evaluations each. Given ``gradient``, the log-likelihood's
    gradient at ``theta``, the residual columns are forward differences instead (one
    evaluation each, about 1e-6 relative error: good enough for Newton steps, not for
    standard errors)."""
    theta = np.asarray(theta, float)
    t_g, t_t, _ = split_theta(model, theta)
    n_g = len(t_g) + len(t_t)
    k = len(theta)
    score = _scorer(model, prep, reml, score)
    if n_g == 0 or prep.width == 0:
        if gradient is None:
            return difference_information(model, prep, theta, reml, score)
        n_g = 0
    h = np.zeros((k, k))
    if n_g:
        h[:n_g, :n_g] = _random_block(model, prep, theta, reml, n_g)
    for j in range(n_g, k):
        column = _difference_column(score, theta, j, gradient)
        h[:, j] = column
        h[j, :] = column
    tail = h[n_g:, n_g:]
    h[n_g:, n_g:] = (tail + tail.T) / 2
    return h
