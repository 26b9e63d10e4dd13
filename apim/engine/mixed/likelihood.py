"""ML and REML log-likelihood of a :class:`MixedModel`, with its analytic gradient.

Conventions follow nlme (DESIGN.md §6)::

    ML:   l = -1/2 [ N log 2pi + sum_i log|V_i| + r'V^-1 r ]
    REML: l = -1/2 [ (N-p) log 2pi + sum_i log|V_i| + log|X'V^-1 X| + r'V^-1 r ]

Computation: per-dyad cross products of the whitened ``[Z_T | Z | X | y]``
(``R_i^-1 = W'W``, :mod:`apim.engine.mixed.moments`) are assembled per cluster, and each top-level
cluster (a dyad, or a therapist with its dyads) is handled in random-effect space by the
Woodbury identity with ``K = I + G A``, ``A = Z'R^-1 Z``::

    log|V| = log|R| + log|K|,    U'V^-1 U = U'R^-1 U - B' K^-1 G B,   B = Z'R^-1 U.

``G`` may be singular (a variance at zero). Derivatives: ``dK = dG A + G dA`` and
``d(K^-1 G) = K^-1 (dG - (dG A + G dA) K^-1 G)``; residual parameters enter through the
derivatives of the whitened cross products. Each kind of parameter is handled for all
parameters at once (one contraction over clusters, see :func:`_per_cluster_terms`).

Without a therapist level, dyads whose ``A`` agree in every stencil combination (random
intercepts: the same numbers of rows of each type) share ``K`` and ``K^-1 G``, and the
quadratic forms come from moments summed once per fit over each group
(:mod:`apim.engine.mixed.grouped`): an evaluation then costs nothing per dyad. ``evaluate(...,
grouped=False)`` always goes cluster by cluster. A product source kept in pieces of dyads
(``pieces()``: the per-dyad store of the out-of-core fit, :mod:`apim.engine.mixed.dyad_store`)
is evaluated piece by piece by the same per-cluster code, its terms added.

Examples
--------
>>> import numpy as np
>>> from apim.engine import MixedModel, Unstructured, Residual
>>> rng = np.random.default_rng(1)
>>> dyad = np.repeat(np.arange(40), 6); role = np.tile([0, 1], 120)
>>> session = np.tile(np.repeat([1, 2, 3], 2), 40)
>>> X = np.column_stack([1 - role, role]).astype(float)
>>> model = MixedModel(y=rng.normal(size=240), X=X, dyad=dyad, role=role, session=session,
...                    Z=X, random=Unstructured(2), residual=Residual.named("un"))
>>> prep = Prepared.of(model)
>>> theta = np.array([-0.5, 0.1, -0.7, 0.0, 0.1, 0.3])
>>> grouped, per_dyad = evaluate(model, prep, theta), evaluate(model, prep, theta,
...                                                              grouped=False)
>>> grouped_moments(prep).n_groups, bool(np.isclose(grouped.loglik, per_dyad.loglik))
(1, True)
>>> grouped.blups.shape  # one row per dyad, computed when asked for
(40, 2)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from apim.engine.mixed.grouped import GroupedMoments, RandomTerms
from apim.engine.mixed.model import MixedModel, Prepared
from apim.engine.mixed.moments import Products, TypeMoments
from apim.engine.mixed.products import ProductSource
from apim.engine.mixed.residuals import Residual
from apim.errors import FitError

LOG_2PI = np.log(2 * np.pi)


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Log-likelihood and the quantities inference needs, at one parameter vector.

    ``blups``, the (n_clusters, width) predicted random effects, are computed when first
    asked for (only the final evaluation of a fit needs them).
    """

    loglik: float
    gradient: np.ndarray | None
    beta: np.ndarray
    cov_beta: np.ndarray          # (X'V^-1 X)^-1
    d_xvx: np.ndarray | None      # (k, p, p) derivatives of X'V^-1 X (adjoint: see evaluate)
    predict: Callable[[np.ndarray], np.ndarray] = field(repr=False)  # (-beta, 1) -> blups

    @cached_property
    def blups(self) -> np.ndarray:
        """(n_clusters, width) predicted random effects."""
        return self.predict(np.r_[-self.beta, 1.0])

    @property
    def score(self) -> np.ndarray:
        """The gradient (an error when the evaluation was asked for without it)."""
        if self.gradient is None:
            raise FitError("the gradient was not computed at this evaluation; this is a bug")
        return self.gradient


def split_theta(model: MixedModel, theta: np.ndarray) -> tuple[np.ndarray, ...]:
    """``theta`` -> (dyad G part, therapist part, residual part)."""
    k1 = model.random.n_params if model.random else 0
    k2 = model.therapist_random.n_params if model.therapist_random else 0
    return theta[:k1], theta[k1:k1 + k2], theta[k1 + k2:]


def stacked_g(model: MixedModel, prep: Prepared, theta: np.ndarray, gradient: bool = True
              ) -> tuple[np.ndarray, np.ndarray]:
    """Covariance of a cluster's stacked random effects and its derivatives (k_G + k_T;
    none without ``gradient``)."""
    t_g, t_t, _ = split_theta(model, theta)
    w, qt = prep.width, prep.q_t
    parts: list[tuple[np.ndarray, np.ndarray, slice, int]] = []  # (G, dG, where, copies)
    for structure, t, where, copies in ((model.random, t_g, slice(qt, w), prep.n_slots),
                                        (model.therapist_random, t_t, slice(0, qt), 1)):
        if structure is not None:  # dyad G: one block per dyad slot of a cluster
            g = structure.matrix(t)
            parts.append((g, structure.jacobian(t) if gradient else np.zeros((0, *g.shape)),
                          where, copies))
    if prep.dyad_clusters and len(parts) == 1:
        return parts[0][0], parts[0][1]
    g_full = np.zeros((w, w))
    grads = np.zeros((sum(len(d) for _, d, _, _ in parts), w, w))
    at = 0
    for g, dg, where, copies in parts:
        q = len(g)
        for c in range(copies):  # block diagonal: one copy per slot
            block = slice(where.start + c * q, where.start + (c + 1) * q)
            g_full[block, block] = g
            grads[at:at + len(dg), block, block] = dg
        at += len(dg)
    return g_full, grads


def _assembled(rows: np.ndarray, prep: Prepared) -> np.ndarray:
    """Random-effect rows of the per-dyad cross products -> per cluster ``[A | B]`` with
    ``A = Z'R^-1 Z`` (w, w) and ``B = Z'R^-1 [X | y]``, random effects stacked as
    (therapist, dyad slots...). Leading axes before the dyad axis (derivatives) are kept.
    When each dyad is its own cluster the rows are that already (``r = w``): no copy."""
    qt, q, w = prep.q_t, prep.q, prep.width
    zt, z, u = slice(0, qt), slice(qt, qt + q), slice(qt + q, None)
    if prep.dyad_clusters:
        return rows
    lead = rows.shape[:-3]
    by_slot = np.zeros((*lead, prep.n_clusters, prep.n_slots, *rows.shape[-2:]))
    by_slot[..., prep.cluster, prep.slot, :, :] = rows
    ab = np.zeros((*lead, prep.n_clusters, w, w + rows.shape[-1] - qt - q))
    t_rows = np.zeros((*lead, prep.n_clusters, qt, rows.shape[-1]))
    for s in range(prep.n_slots):
        one = by_slot[..., s, :, :]
        t_rows += one[..., zt, :]  # therapist rows: sums over the cluster's dyads
        if not q:
            continue
        sl = slice(qt + s * q, qt + (s + 1) * q)
        ab[..., sl, sl] = one[..., z, z]
        ab[..., sl, w:] = one[..., z, u]
        if qt:
            ab[..., :qt, sl] = one[..., zt, z]
            ab[..., sl, :qt] = one[..., z, zt]
    if qt:
        ab[..., :qt, :qt] = t_rows[..., zt]
        ab[..., :qt, w:] = t_rows[..., u]
    return ab


def _assemble(rows: np.ndarray, prep: Prepared) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_assembled` split into ``A`` and ``B`` (views)."""
    ab = _assembled(rows, prep)
    return ab[..., :prep.width], ab[..., prep.width:]


def _inverse_logdet(k: np.ndarray) -> tuple[np.ndarray, float]:
    """Inverses (a new contiguous array) of a stack of small matrices with positive
    determinants, and the sum of their log determinants. Up to 2 x 2 by the closed form
    ``[[d, -b], [-c, a]] / (ad - bc)``: numpy's per-matrix LAPACK calls (an LU for the
    inverse, another for the determinant) cost far more than the arithmetic there."""
    w = k.shape[-1]
    if w == 1:
        return 1.0 / k, float(np.log(k).sum())
    if w == 2:
        k00, k01, k10, k11 = k[:, 0, 0], k[:, 0, 1], k[:, 1, 0], k[:, 1, 1]
        det = k00 * k11 - k01 * k10
        inv = np.empty(k.shape)
        inv[:, 0, 0], inv[:, 0, 1], inv[:, 1, 0], inv[:, 1, 1] = k11, -k01, -k10, k00
        inv /= det[:, None, None]
        return inv, float(np.log(det).sum())
    return np.ascontiguousarray(np.linalg.inv(k)), float(np.linalg.slogdet(k)[1].sum())


def _no_blups(n_clusters: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda v: np.zeros((n_clusters, 0))


def _per_cluster_terms(prep: Prepared, products: Products, g_full: np.ndarray,
                       dg: np.ndarray, gradient: bool) -> RandomTerms:
    """The likelihood's terms cluster by cluster (Woodbury in random-effect space).

    Per cluster ``K = I + G A``, ``Q = K^-1`` and ``H = Q G`` (symmetric). ``A`` and ``G``
    are symmetric, so products with the common ``G`` are single matrix products over all
    clusters stacked (``K' = I + A G``, ``H = Q G``), and one product per cluster gives
    ``[H; Q'] B = [H B; L]`` with ``L = K^-T B``. Then ``log|V| = log|R| + log|K|`` and
    ``S = sum C_uu - B' H B``. (``H B`` directly: ``G L`` is the same in exact arithmetic
    but loses digits when ``G`` is large and near singular.)

    Derivatives for all parameters at once. A random-effect parameter gives
    ``d sum_i B_i' H_i B_i = sum_i L_i' dG L_i`` (``(I - A H) B = K^-T B = L``) and
    ``d sum_i log|K_i| = <sum_i (A_i Q_i)', dG>``. A residual parameter moves ``C``:
    ``d log|K| = tr(H dA)`` and ``dS = T' dC T`` with ``T = [-H B; I]``, i.e. ``dC_uu +
    sym((H B)' dA (H B) - 2 (H B)' dB)`` summed over clusters (``sym(M) = (M + M')/2``):
    one product per cluster with the residual parameters stacked, and sums over clusters
    as single matrix products.
    """
    w = prep.width
    logdet = float(products.logdet.sum())
    if not w:
        d_logdet = d_s = None
        if gradient:
            assert products.d_logdet is not None and products.d_rest is not None
            d_logdet, d_s = products.d_logdet.sum(1), products.d_rest
        return RandomTerms(logdet, products.rest, d_logdet, d_s, _no_blups(prep.n_clusters))
    ab = _assembled(products.rows, prep)  # [A | B]
    n_c, m = len(ab), ab.shape[-1]
    u = m - w
    a_flat, b_flat = ab[:, :, :w].reshape(n_c * w, w), ab[:, :, w:].reshape(n_c * w, u)
    k_t = (a_flat @ g_full).reshape(n_c, w, w)  # K' = I + A G
    k_t += np.eye(w)
    q_mat, logdet_k = _inverse_logdet(np.swapaxes(k_t, 1, 2))  # Q = K^-1
    logdet += logdet_k
    h_q = np.empty((n_c, 2 * w, w))  # [H; Q']
    h_q[:, :w] = (q_mat.reshape(n_c * w, w) @ g_full).reshape(n_c, w, w)
    h_q[:, w:] = np.swapaxes(q_mat, 1, 2)
    hb_l = h_q @ ab[:, :, w:]  # [H B; L]
    hb_h = np.empty((n_c, w, u + w))  # [H B | H]
    hb_h[:, :, :u] = hb_l[:, :w]
    hb_h[:, :, u:] = h_q[:, :w]
    hb = hb_h[:, :, :u]
    hb_flat = hb.reshape(n_c * w, u)
    s = products.rest - b_flat.T @ hb_flat

    def blups(v: np.ndarray) -> np.ndarray:
        return hb @ v

    if not gradient:
        return RandomTerms(logdet, s, None, None, blups)
    # random-effect parameters: A, B, D do not move
    k_g = len(dg)
    flat_l = hb_l[:, w:].reshape(n_c, w * u)
    outer = (flat_l.T @ flat_l).reshape(w, u, w, u)  # sum_i L_i[a, x] L_i[b, y]
    ds_g = -np.tensordot(dg, outer, axes=([1, 2], [0, 2]))
    aq_sum = a_flat.T @ q_mat.reshape(n_c * w, w)  # sum_i A_i Q_i
    dlog_g = dg.reshape(k_g, w * w) @ aq_sum.T.ravel()
    vjp = products.vjp
    if vjp is not None:  # the residual parameters' derivatives by their adjoint
        def residual_adjoint(w_s: np.ndarray) -> np.ndarray:
            """With ``Phi = logdet + <w_s, s>``: ``dPhi/dA = H + (HB) w_s (HB)'``,
            ``dPhi/dB = -2 (HB) w_s``, ``dPhi/d rest = w_s``, ``dPhi/d log|R_i| = 1``."""
            hbw = (hb_flat @ w_s).reshape(n_c, w, u)
            a_rows = np.empty((n_c, w, w + u))
            np.matmul(hbw, np.swapaxes(hb, 1, 2), out=a_rows[:, :, :w])
            a_rows[:, :, :w] += hb_h[:, :, u:]
            np.multiply(hbw, -2.0, out=a_rows[:, :, w:])
            return vjp(a_rows, w_s, np.ones(n_c))
        return RandomTerms(logdet, s, dlog_g, ds_g, blups, residual_adjoint)
    d_rows, d_rest, d_logdet_r = products.d_rows, products.d_rest, products.d_logdet
    if d_rows is None or d_rest is None or d_logdet_r is None:
        raise FitError("the residual structure returned no derivatives; this is a bug")
    k_r = len(d_rows)
    # residual parameters move the products
    d_ab = _assembled(d_rows, prep)
    d_a = np.ascontiguousarray(np.moveaxis(d_ab[..., :w], 0, 2))  # clusters first, rows (a, k)
    d_a_h = (d_a.reshape(n_c, w * k_r, w) @ hb_h).reshape(n_c, w, k_r, u + w)  # [dA H B | dA H]
    dlog_r = d_logdet_r.sum(1) + np.einsum("iaka->k", d_a_h[..., u:])
    quad = (hb_flat.T @ d_a_h.reshape(n_c * w, k_r * (u + w))).reshape(u, k_r, u + w)
    cross = hb_flat.T @ d_ab[..., w:].reshape(k_r, n_c * w, u)  # sum (H B)' dB_k
    half = np.moveaxis(quad[..., :u], 1, 0) - 2.0 * cross  # sum (H B)' (dA H B - 2 dB)
    ds_r = d_rest + 0.5 * (half + np.swapaxes(half, 1, 2))
    return RandomTerms(logdet, s, np.concatenate([dlog_g, dlog_r]),
                       np.concatenate([ds_g, ds_r]), blups)


def random_terms(model: MixedModel, prep: Prepared, theta: np.ndarray, gradient: bool,
                 grouped: bool = True, adjoint: bool = False) -> RandomTerms:
    """``sum log|V_i|``, ``sum U_i' V_i^-1 U_i`` and their derivatives at ``theta``: by
    groups of dyads with equal random-effect blocks where that pays
    (:mod:`apim.engine.mixed.grouped`, not with ``grouped=False``), else cluster by cluster;
    with ``adjoint``, the residual parameters' derivatives as a vector-Jacobian product
    where the products offer one (dyads as clusters, see :class:`RandomTerms`)."""
    t_g, _, t_r = split_theta(model, theta)
    source = prep.products
    moments = grouped_moments(prep) if grouped else None
    if moments is not None and model.random is not None:
        assert isinstance(source, TypeMoments)  # grouped_moments checked it
        return moments.terms(source, model.residual, t_r, model.random.matrix(t_g),
                             model.random.jacobian(t_g), gradient)
    g_full, dg = stacked_g(model, prep, theta, gradient)
    pieces = getattr(source, "pieces", None)
    if pieces is not None and prep.dyad_clusters:
        return _terms_by_pieces(prep, pieces, model.residual, t_r, g_full, dg, gradient)
    adjoint_products = getattr(source, "adjoint_products", None)
    if gradient and adjoint and adjoint_products is not None and prep.width \
            and prep.dyad_clusters:
        products = adjoint_products(model.residual, t_r)
    else:
        products = source.products(model.residual, t_r, gradient)
    return _per_cluster_terms(prep, products, g_full, dg, gradient)


def _terms_by_pieces(prep: Prepared, pieces: Callable[[], Iterable[ProductSource]],
                     residual: Residual, theta_r: np.ndarray, g_full: np.ndarray,
                     dg: np.ndarray, gradient: bool) -> RandomTerms:
    """The terms of a product source kept as pieces of whole dyads (``source.pieces()``,
    each dyad its own cluster; e.g. the per-dyad store of the out-of-core fit,
    :mod:`apim.engine.mixed.dyad_store`): the cluster-by-cluster terms of each piece,
    added up, so that the temporaries of an evaluation are those of one piece. The
    BLUPs are recomputed piece by piece when asked for (nothing per dyad is kept)."""
    logdet, s = 0.0, np.zeros(0)
    d_logdet = d_s = None
    for k, piece in enumerate(pieces()):
        terms = _per_cluster_terms(prep, piece.products(residual, theta_r, gradient), g_full,
                                   dg, gradient)
        logdet += terms.logdet
        s = terms.s.copy() if k == 0 else s + terms.s
        if gradient:
            assert terms.d_logdet is not None and terms.d_s is not None
            d_logdet = terms.d_logdet if d_logdet is None else d_logdet + terms.d_logdet
            d_s = terms.d_s if d_s is None else d_s + terms.d_s

    def blups(v: np.ndarray) -> np.ndarray:
        return np.concatenate([
            _per_cluster_terms(prep, piece.products(residual, theta_r, False), g_full,
                               dg[:0], False).blups(v) for piece in pieces()])

    return RandomTerms(logdet, s, d_logdet, d_s, blups)


def grouped_moments(prep: Prepared) -> GroupedMoments | None:
    """The grouped moments where the grouped evaluation applies and pays: stencil products,
    dyad random effects, no therapist level (:mod:`apim.engine.mixed.grouped`)."""
    return prep.grouped


def evaluate(model: MixedModel, prep: Prepared, theta: np.ndarray, reml: bool = True,
             gradient: bool = True, grouped: bool = True, adjoint: bool = False
             ) -> Evaluation:
    """Log-likelihood (nlme convention), gradient and GLS quantities at ``theta``
    (``grouped=False``: always cluster by cluster, the oracle of the grouped path;
    ``adjoint=True``: the gradient by the adjoint method where the products offer it,
    cheaper; the derivatives of ``X'V^-1 X`` are then those in the parameters before the
    residual ones only, the first rows)."""
    theta = np.asarray(theta, float)
    terms = random_terms(model, prep, theta, gradient, grouped, adjoint)
    s = terms.s
    p = prep.p
    s_xx, s_xy, s_yy = s[:p, :p], s[:p, p], s[p, p]
    cov_beta = np.linalg.inv(s_xx)
    beta = cov_beta @ s_xy
    rss = s_yy - s_xy @ beta
    n = prep.n
    if reml:
        logdet_xvx = np.linalg.slogdet(s_xx)[1]
        loglik = -0.5 * ((n - p) * LOG_2PI + terms.logdet + logdet_xvx + rss)
    else:
        loglik = -0.5 * (n * LOG_2PI + terms.logdet + rss)
    v = np.append(-beta, 1.0)
    if not gradient:
        return Evaluation(float(loglik), None, beta, cov_beta, None, terms.blups)
    d_s, d_logdet = terms.d_s, terms.d_logdet
    assert d_s is not None and d_logdet is not None  # asked for above
    d_xvx = d_s[:, :p, :p]
    grad = -0.5 * (d_logdet + (d_s @ v) @ v)
    if reml:
        grad -= 0.5 * np.einsum("ij,kji->k", cov_beta, d_xvx)
    if terms.residual_adjoint is not None:  # d(rss + log|X'V^-1 X|) = <w, dS>
        w = np.outer(v, v)
        if reml:
            w[:p, :p] += cov_beta
        grad = np.r_[grad, -0.5 * terms.residual_adjoint(w)]
    return Evaluation(float(loglik), grad, beta, cov_beta, d_xvx, terms.blups)
