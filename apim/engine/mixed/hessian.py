"""Observed information of the covariance parameters: exact second derivatives of the
profiled (RE)ML log-likelihood in the random-effect parameters, differences of the analytic
gradient in the residual parameters.

With ``K = I + G A``, ``A = Z'R^-1 Z``, ``B = Z'R^-1 [X | y]`` per cluster (as in
:mod:`apim.engine.mixed.likelihood`), ``N = A K^-1`` (symmetric), ``U = K^-T B``,
``v = (-beta, 1)``, ``u = U v`` and ``S = sum(C) - sum_c B'K^-1 G B``, the random-effect
parameters ``k, l`` (entering only through ``G``, so ``A`` and ``B`` do not move) give::

    d2 log|K| = tr(N d2G_kl) - tr(dG_l N dG_k N)
    d2 S      = -sum_c [U' d2G_kl U - U' dG_l N dG_k U - U' dG_k N dG_l U]
    d2 rss    = v' d2S v - 2 (dS_k v)_x' S_xx^-1 (dS_l v)_x         (beta profiled out)
    d2 log|S_xx| = tr(S_xx^-1 d2S_xx) - tr(S_xx^-1 dS_xx,l S_xx^-1 dS_xx,k)     (REML)

and ``-2 loglik = sum log|K| + rss [+ log|S_xx|] + terms free of G``. Each term is a
contraction of ``dG_k``, ``dG_l`` (or ``d2G_kl``) with sums over clusters that do not
depend on the parameters, built in one pass. The ``d2G`` terms are the Hessian of
``tr(G M)`` for a fixed ``M``: in closed form for ``Unstructured`` (log-Cholesky),
otherwise central differences of the structure's analytic Jacobian (no likelihood
evaluation). The residual parameters
move the whitened cross products, whose second derivatives the engine does not compute:
their rows and columns of the Hessian are central differences of the analytic gradient
(two evaluations per residual parameter).

Examples
--------
>>> import numpy as np
>>> from apim.engine import MixedModel, Unstructured, Residual
>>> from apim.engine.mixed.model import Prepared
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
>>> from apim.engine.mixed.likelihood import evaluate
>>> rough = information(model, prep, theta, True, gradient=evaluate(model, prep, theta).score)
>>> bool(np.allclose(rough, differences, rtol=1e-4, atol=1e-4))
True
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from apim.engine.mixed.likelihood import _assemble, evaluate, split_theta, stacked_g
from apim.engine.mixed.model import MixedModel, Prepared
from apim.engine.mixed.random_effects import RandomStructure, Unstructured, lower_indices

__all__ = ["information", "difference_information", "Score"]

#: clusters handled at once (bounds the memory of the per-cluster arrays)
CHUNK_CLUSTERS = 20_000
#: clusters wider than this (stacked random effects) take the per-parameter form
WIDE_CLUSTER = 16


Score = Callable[[np.ndarray], np.ndarray]


def _scorer(model: MixedModel, prep: Prepared, reml: bool, score: Score | None) -> Score:
    return score or (lambda theta: evaluate(model, prep, theta, reml).score)


def difference_step(theta: np.ndarray, j: int, central: bool = True) -> np.ndarray:
    """The step in parameter ``j`` of the differences: ``1e-5 max(1, |theta_j|)``
    (central) or ``1e-6 max(1, |theta_j|)`` (forward), as a vector."""
    e = np.zeros(len(theta))
    e[j] = (1e-5 if central else 1e-6) * max(1.0, abs(theta[j]))
    return e


def _difference_column(score: Score, theta: np.ndarray, j: int,
                       gradient: np.ndarray | None = None) -> np.ndarray:
    """Column ``j`` of the Hessian of ``-loglik``: central differences of the gradient,
    or forward differences from ``gradient`` (the one at ``theta``) when it is given."""
    e = difference_step(theta, j, central=gradient is None)
    if gradient is not None:
        return -(score(theta + e) - gradient) / e[j]
    return -(score(theta + e) - score(theta - e)) / (2 * e[j])


def difference_information(model: MixedModel, prep: Prepared, theta: np.ndarray,
                           reml: bool, score: Score | None = None) -> np.ndarray:
    """Hessian of ``-loglik`` from central differences of the analytic gradient in every
    parameter (``2 k`` evaluations): the reference for :func:`information`.

    ``score`` computes the gradient of the log-likelihood at a parameter vector (default:
    :func:`apim.engine.mixed.likelihood.evaluate`; a caller passes its own to count the
    evaluations)."""
    score = _scorer(model, prep, reml, score)
    k = len(theta)
    h = np.zeros((k, k))
    for j in range(k):
        h[:, j] = _difference_column(score, np.asarray(theta, float), j)
    return (h + h.T) / 2


def _trace_hessian(structure: RandomStructure, t: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Hessian of ``tr(G(t) m)`` for a symmetric ``m``: closed form for the log-Cholesky
    ``Unstructured`` (``G = L L'``), else central differences of the analytic gradient
    ``tr(dG_k m)`` (no likelihood evaluation)."""
    if isinstance(structure, Unstructured):
        q = structure.size
        rows, cols = lower_indices(q)
        lower = np.zeros((q, q))
        lower[rows, cols] = t
        lower[np.diag_indices(q)] = np.exp(np.diag(lower))
        diagonal = rows == cols
        slope = np.where(diagonal, lower[rows, rows], 1.0)  # dL[r, c] / dt
        same_column = cols[:, None] == cols[None, :]
        hess = 2 * np.outer(slope, slope) * m[rows[:, None], rows[None, :]] * same_column
        return hess + np.diag(np.where(diagonal, 2 * (m @ lower)[rows, rows] * slope, 0.0))
    hess = np.zeros((len(t), len(t)))
    for j in range(len(t)):
        e = np.zeros(len(t))
        e[j] = 1e-5 * max(1.0, abs(t[j]))
        hess[:, j] = np.einsum("kij,ji->k", structure.jacobian(t + e)
                               - structure.jacobian(t - e), m) / (2 * e[j])
    return (hess + hess.T) / 2


def _second_g_terms(model: MixedModel, prep: Prepared, theta: np.ndarray, m: np.ndarray
                    ) -> np.ndarray:
    """``tr(d2G_kl m)`` for the stacked cluster covariance (therapist block, then one
    block per dyad slot); the two levels' parameters do not interact."""
    m = (m + m.T) / 2
    t_g, t_t, _ = split_theta(model, theta)
    qt, q = prep.q_t, prep.q
    out = np.zeros((len(t_g) + len(t_t),) * 2)
    if model.random is not None:
        slots = sum(m[qt + s * q:qt + (s + 1) * q, qt + s * q:qt + (s + 1) * q]
                    for s in range(prep.n_slots))
        out[:len(t_g), :len(t_g)] = _trace_hessian(model.random, t_g, np.asarray(slots))
    if model.therapist_random is not None:
        out[len(t_g):, len(t_g):] = _trace_hessian(model.therapist_random, t_t,
                                                   m[:qt, :qt])
    return out


def _flat(x: np.ndarray) -> np.ndarray:
    """(k, ...) -> (k, rest) for sums over all but the first axis by matrix products."""
    return x.reshape(len(x), -1)


def _cluster_pieces(model: MixedModel, prep: Prepared, theta: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """``S``'s inverse ``xx`` block, ``v = (-beta, 1)`` and, per chunk of clusters,
    ``N = A K^-1`` and ``U = K^-T B``."""
    _, _, t_r = split_theta(model, theta)
    g_full, _ = stacked_g(model, prep, theta)
    products = prep.products.products(model.residual, t_r, False)
    a_all, b_all = _assemble(products.rows, prep)
    p = prep.p
    s = products.rest.copy()
    parts = []
    for start in range(0, len(a_all), CHUNK_CLUSTERS):
        a, b = a_all[start:start + CHUNK_CLUSTERS], b_all[start:start + CHUNK_CLUSTERS]
        k_inv = np.linalg.inv(np.eye(len(g_full))[None] + g_full[None] @ a)
        hb = k_inv @ (g_full[None] @ b)
        s -= (np.swapaxes(b, 1, 2) @ hb).sum(0)
        parts.append((a @ k_inv, b - a @ hb))
    s_inv = np.linalg.inv(s[:p, :p])
    return s_inv, np.append(-(s_inv @ s[:p, p]), 1.0), parts


def _random_block(model: MixedModel, prep: Prepared, theta: np.ndarray, reml: bool,
                  n_g: int) -> np.ndarray:
    """Exact Hessian of ``-loglik`` in the first ``n_g`` (random-effect) parameters.

    Every term is a contraction of ``dG_k`` and ``dG_l`` with a sum over clusters that
    does not depend on the parameters (e.g. ``tr(dG_k N dG_l N) = sum dG_k[a, b]
    dG_l[c, d] T[a, b, c, d]`` with ``T = sum_c N[b, c] N[d, a]``): one pass over the
    clusters builds these ``w^4`` sums, so the cost does not grow with ``n_g``. Wide
    clusters (a therapist with many dyads) take the per-parameter form instead."""
    _, dg = stacked_g(model, prep, theta)
    s_inv, v, parts = _cluster_pieces(model, prep, theta)
    w, p = prep.width, prep.p
    if w > WIDE_CLUSTER:
        second, ds_v, ds_xx, m = _random_block_wide(dg, s_inv, v, parts, reml)
        second += _second_g_terms(model, prep, theta, m)
        return _finish(second, ds_v, ds_xx, s_inv, reml)
    flat = dg.reshape(n_g, w * w)
    trace = np.zeros((w,) * 4)    # sum N[b, c] N[d, a], indexed [a, b, c, d]
    quad = np.zeros((w,) * 4)     # sum u[a] u[d] N[b, c]
    cross = np.zeros((w,) * 4)    # sum N[i, a] (Ux S^-1 Ux')[e, b], indexed [a, b, i, e]
    lin = np.zeros((w, w, p))     # sum Ux[i, m] u[j], indexed [i, j, m]
    outer = np.zeros((w, w, p, p))  # sum Ux[i, m] Ux[j, n], indexed [i, j, m, n]
    sums = np.zeros((3, w, w))    # contracted with d2G: sum N, sum u u', sum Ux S^-1 Ux'
    for n_mat, u_mat in parts:
        c = len(n_mat)
        u = u_mat @ v
        ux = u_mat[:, :, :p]
        nf = n_mat.reshape(c, w * w)
        uu = (u[:, :, None] * u[:, None, :]).reshape(c, w * w)
        trace += (nf.T @ nf).reshape(w, w, w, w).transpose(3, 0, 1, 2)
        quad += (uu.T @ nf).reshape(w, w, w, w).transpose(0, 2, 3, 1)
        uxf = ux.reshape(c, w * p)
        lin += (uxf.T @ u).reshape(w, p, w).transpose(0, 2, 1)
        outer += (uxf.T @ uxf).reshape(w, p, w, p).transpose(0, 2, 1, 3)
        sums[0] += n_mat.sum(0)
        sums[1] += u.T @ u
        if reml:
            r = np.einsum("cim,mn,cjn->cij", ux, s_inv, ux)
            cross += (nf.T @ r.reshape(c, w * w)).reshape(w, w, w, w).transpose(1, 3, 0, 2)
            sums[2] += r.sum(0)
    second = -flat @ trace.reshape(w * w, w * w) @ flat.T     # of -2 loglik
    second += 2 * flat @ quad.reshape(w * w, w * w) @ flat.T
    ds_v = -flat @ lin.reshape(w * w, p)                       # (dS_k v)_x
    ds_xx = -(flat @ outer.reshape(w * w, p * p)).reshape(n_g, p, p)
    if reml:
        c_kl = flat @ cross.reshape(w * w, w * w) @ flat.T
        second += c_kl + c_kl.T
    second += _second_g_terms(model, prep, theta, sums[0] - sums[1] - sums[2])
    return _finish(second, ds_v, ds_xx, s_inv, reml)


def _finish(second: np.ndarray, ds_v: np.ndarray, ds_xx: np.ndarray, s_inv: np.ndarray,
            reml: bool) -> np.ndarray:
    """Add the terms of the profiled-out fixed effects; Hessian of ``-loglik``."""
    second = second - 2 * ds_v @ s_inv @ ds_v.T
    if reml:
        d = np.einsum("mn,knr->kmr", s_inv, ds_xx)
        second -= np.einsum("kmr,lrm->kl", d, d)
    hess = second / 2
    return (hess + hess.T) / 2


def _random_block_wide(dg: np.ndarray, s_inv: np.ndarray, v: np.ndarray,
                       parts: list[tuple[np.ndarray, np.ndarray]], reml: bool
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_random_block`'s sums term by term per parameter (for wide clusters):
    the second derivatives of ``-2 loglik`` without the ``d2G`` and fixed-effect terms,
    ``(dS_k v)_x``, ``dS_xx,k`` and the matrix the ``d2G`` are contracted with."""
    n_g, w, p = len(dg), dg.shape[1], len(s_inv)
    second = np.zeros((n_g, n_g))
    ds_v = np.zeros((n_g, p))
    ds_xx = np.zeros((n_g, p, p))
    m = np.zeros((w, w))
    for n_mat, u_mat in parts:
        c = len(n_mat)
        u = u_mat @ v
        ux = u_mat[:, :, :p]
        m += n_mat.sum(0) - u.T @ u
        gu = np.einsum("kij,cj->kci", dg, u)                       # dG_k u
        pk = np.einsum("kij,cjl->kcil", dg, n_mat)                 # dG_k N
        wx = np.einsum("kij,cjl->kcil", dg, ux)                    # dG_k Ux
        second -= _flat(pk) @ _flat(pk.transpose(0, 1, 3, 2)).T
        second += 2 * _flat(gu) @ _flat(np.einsum("cij,kcj->kci", n_mat, gu)).T
        ds_v -= _flat(gu) @ ux.reshape(c * w, p)
        ds_xx -= np.einsum("cim,kcin->kmn", ux, wx)
        if reml:
            m -= np.einsum("cim,mn,cjn->ij", ux, s_inv, ux)
            nwx = np.einsum("cij,kcjm->kcim", n_mat, wx)           # N dG_k Ux
            c_kl = _flat(nwx) @ _flat(wx @ s_inv).T
            second += c_kl + c_kl.T
    return second, ds_v, ds_xx, m


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
