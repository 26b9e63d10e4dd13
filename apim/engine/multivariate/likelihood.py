"""ML/REML likelihood of the multivariate two-level model, with its analytic gradient.

Each cluster ``i`` (a dyad) is observed on occasions ``t`` (sessions); at each occasion a
vector of ``K`` variables ``z_it`` (e.g. patient and therapist alliance, patient and
therapist outcome), any of them possibly missing::

    z_it = mu + b_i + w_it,     b_i ~ N(0, Sigma_B),     w_it ~ N(0, Sigma_W),
    Cov(w_it, w_is) = Sigma_W * phi^|t - s|   (optional AR(1) over occasion numbers)

with ``Sigma_B`` and ``Sigma_W`` unstructured.  Every observed value enters (full
information); a missing value is simply absent from ``y_i``.  Writing ``X_i = Z_i`` for the
selection of the variable of each observed value, ``V_i = R_i + X_i Sigma_B X_i'`` and the
log-likelihood follows nlme's convention (DESIGN.md §6), with ``mu`` profiled out by GLS.

Two exact computations, both vectorised across clusters:

- **Pattern path** (no AR(1)): ``R_i`` is block diagonal over occasions, so with ``M_p``
  the inverse of ``Sigma_W`` restricted to the variables of missingness pattern ``p``
  (embedded in ``K x K``), ``X'R^-1 X = sum_p n_ip M_p``, ``X'R^-1 y = sum_p M_p s_ip`` and
  ``y'R^-1 y = sum_p tr(M_p C_ip)`` from per cluster x pattern counts, sums and cross
  products.  Woodbury in the ``K``-dimensional random-effect space
  (``H_i = (Sigma_B^-1 + A_i)^-1 = (I + Sigma_B A_i)^-1 Sigma_B``, valid for singular
  ``Sigma_B``) gives ``log|V_i| = log|R_i| + log|I + Sigma_B A_i|`` and every quadratic form.
- **Shape path** (AR(1)): clusters with the same occasions and missingness (the same
  "shape") share one ``V``; one Cholesky per shape, all clusters of the shape at once.

The gradient is ``dl = -1/2 tr(P dV)`` with ``P = V^-1 - a a'`` (``a = V^-1 r``; REML also
``- V^-1 X C X' V^-1``, ``C = (X'V^-1 X)^-1``), collapsed to ``K x K`` matrices ``G_W``,
``G_B`` with ``dl = tr(G_W dSigma_W) + tr(G_B dSigma_B)``; in the pattern path
``G_W = -1/2 sum_p M_p E_p M_p`` with
``E_p = sum_i [n_ip (Sigma_W - H_i - F_i C F_i') - D_ip]``, ``F_i = I - H_i A_i``,
``D_ip = sum_t (y_t - m_i)(y_t - m_i)'`` over the cluster's occasions with pattern ``p`` and
``m_i = mu + H_i X'R^-1 r_i`` (the cluster's predicted mean).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> y = rng.normal(size=(40, 2)); cluster = np.repeat(np.arange(10), 4)
>>> data = prepare(y, cluster, np.tile(np.arange(1, 5), 10))
>>> ev = evaluate(data, np.eye(2), 0.1 * np.eye(2), reml=False)
>>> bool(np.isfinite(ev.loglik)), ev.grad_w.shape
(True, (2, 2))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from apim.errors import DataError

__all__ = ["MultivariateData", "Evaluation", "prepare", "evaluate", "pattern_inverses"]

LOG_2PI = float(np.log(2 * np.pi))


@dataclass(frozen=True, eq=False)
class Shape:
    """Clusters sharing occasions and missingness: one ``V`` for all of them."""

    var: np.ndarray        # (m,) variable of each observed value
    occasion: np.ndarray   # (m,) occasion of each observed value
    values: np.ndarray     # (n_clusters_in_shape, m)
    clusters: np.ndarray   # (n_clusters_in_shape,) cluster code of each row of values

    @cached_property
    def lag(self) -> np.ndarray:
        """``|occasion difference|`` of every pair of entries, (m, m) integers."""
        return np.abs(self.occasion[:, None] - self.occasion[None, :])

    def block(self, matrix: np.ndarray) -> np.ndarray:
        """``matrix[var_a, var_b]`` for every pair of entries ``a, b``."""
        return matrix[self.var[:, None], self.var]

    def powers(self, phi: float) -> tuple[np.ndarray, np.ndarray]:
        """``phi ** lag`` and its derivative ``lag * phi ** (lag - 1)`` (0 at lag 0), looked
        up from the powers of ``phi`` up to the largest lag."""
        n = np.arange(int(self.lag.max()) + 1)
        power = phi ** n.astype(float)
        return power[self.lag], (n * np.r_[0.0, power[:-1]])[self.lag]


@dataclass(frozen=True, eq=False)
class MultivariateData:
    """Observed values arranged for the likelihood (built by :func:`prepare`).

    Attributes
    ----------
    y : (n, K) array with NaN for missing values (rows without any value removed)
    cluster, occasion : (n,) integer codes / occasion numbers of the rows
    n_clusters, n_obs : number of clusters and of observed values
    patterns : (P, K) bool, the missingness patterns present
    counts, sums, cross : per cluster x pattern ``n_ip``, ``s_ip`` (K) and ``C_ip`` (K x K)
    therapist_of : (n_clusters,) integer codes, optional
        The higher-level unit (therapist) of each cluster, for the three-level model
        (:mod:`apim.engine.multivariate.nested`).
    """

    y: np.ndarray
    cluster: np.ndarray
    occasion: np.ndarray
    n_clusters: int
    n_obs: int
    patterns: np.ndarray
    counts: np.ndarray
    sums: np.ndarray
    cross: np.ndarray
    therapist_of: np.ndarray | None = None
    _shapes: list[Shape] | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def cross_total(self) -> np.ndarray:
        """``sum_i C_ip`` per pattern."""
        return self._cached("_cross_total", lambda: self.cross.sum(axis=0))

    @property
    def count_groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distinct rows of ``counts`` (G x P), each cluster's row index, multiplicities."""
        def build() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            rows, index, size = np.unique(self.counts, axis=0, return_inverse=True,
                                          return_counts=True)
            return rows, index.ravel(), size.astype(float)
        return self._cached("_count_groups", build)

    def _cached(self, name: str, build: Any) -> Any:
        if name not in self._cache:
            self._cache[name] = build()
        return self._cache[name]

    @property
    def k(self) -> int:
        return int(self.y.shape[1])

    @property
    def n_therapists(self) -> int:
        """Number of higher-level units (0 without ``therapist_of``)."""
        return 0 if self.therapist_of is None else int(self.therapist_of.max()) + 1

    def shapes(self) -> list[Shape]:
        """Clusters grouped by identical occasions and missingness (for AR(1))."""
        if self._shapes is not None:
            return self._shapes
        order = np.lexsort((self.occasion, self.cluster))
        y, cl, occ = self.y[order], self.cluster[order], self.occasion[order]
        observed = ~np.isnan(y)
        starts = np.flatnonzero(np.r_[True, cl[1:] != cl[:-1]])
        ends = np.r_[starts[1:], len(cl)]
        groups: dict[bytes, list[np.ndarray]] = {}
        members: dict[bytes, list[int]] = {}
        keys: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
        for s, e in zip(starts, ends):
            mask = observed[s:e]
            rows, var = np.nonzero(mask)
            occasions = occ[s:e][rows]
            key = occasions.tobytes() + b"|" + var.astype(np.int64).tobytes()
            groups.setdefault(key, []).append(y[s:e][mask])
            members.setdefault(key, []).append(int(cl[s]))
            keys[key] = (var, occasions)
        shapes = [Shape(var=keys[k][0], occasion=keys[k][1], values=np.array(v),
                        clusters=np.array(members[k], dtype=np.int64))
                  for k, v in groups.items()]
        object.__setattr__(self, "_shapes", shapes)
        return shapes


def prepare(y: np.ndarray, cluster: np.ndarray, occasion: np.ndarray,
            therapist: np.ndarray | None = None) -> MultivariateData:
    """Arrange ``y`` (rows: cluster x occasion, columns: the K variables, NaN = missing).

    Rows with no observed value are dropped; ``cluster`` (and ``therapist``, the
    higher-level unit of each row's cluster, for a three-level model) may be any labels.

    Raises
    ------
    DataError
        For a repeated cluster x occasion row, an infinite value, no data, or a cluster
        whose rows carry more than one therapist.
    """
    y = np.asarray(y, float)
    if y.ndim != 2:
        raise DataError("y must be a two-dimensional array (rows x variables)")
    if np.isinf(y).any():
        rows = np.flatnonzero(np.isinf(y).any(axis=1))[:5].tolist()
        raise DataError(f"infinite values in rows {rows}: replace them or mark them missing")
    keep = ~np.isnan(y).all(axis=1)
    y = y[keep]
    cluster_labels = np.asarray(cluster)
    _, cluster = np.unique(cluster_labels[keep], return_inverse=True)
    cluster = cluster.ravel()
    occasion = np.asarray(occasion)[keep].astype(np.int64)
    if len(y) == 0:
        raise DataError("no observed values")
    key = cluster.astype(np.int64) * (int(occasion.max()) - int(occasion.min()) + 1) \
        + (occasion - occasion.min())
    if len(np.unique(key)) < len(key):
        _, first, count = np.unique(key, return_index=True, return_counts=True)
        rows = np.flatnonzero(keep)[first[count > 1]][:5].tolist()
        raise DataError(f"repeated cluster x occasion rows (e.g. rows {rows}): one row per "
                        "dyad and session is needed")
    observed = ~np.isnan(y)
    k = y.shape[1]
    code = observed.astype(np.int64) @ (1 << np.arange(k))
    codes, pattern = np.unique(code, return_inverse=True)
    patterns = ((codes[:, None] >> np.arange(k)) & 1).astype(bool)
    d, p = int(cluster.max()) + 1, len(codes)
    cell = cluster * p + pattern
    filled = np.where(observed, y, 0.0)
    counts = np.bincount(cell, minlength=d * p).reshape(d, p).astype(float)
    sums = np.zeros((d * p, k))
    np.add.at(sums, cell, filled)
    cross = np.zeros((d * p, k, k))
    np.add.at(cross, cell, filled[:, :, None] * filled[:, None, :])
    therapist_of = None if therapist is None else _therapist_of(
        np.asarray(cluster_labels)[keep], cluster, np.asarray(therapist)[keep], d)
    return MultivariateData(y=y, cluster=cluster, occasion=occasion, n_clusters=d,
                            n_obs=int(observed.sum()), patterns=patterns, counts=counts,
                            sums=sums.reshape(d, p, k), cross=cross.reshape(d, p, k, k),
                            therapist_of=therapist_of)


def _therapist_of(labels: np.ndarray, cluster: np.ndarray, therapist: np.ndarray,
                  n_clusters: int) -> np.ndarray:
    """Therapist code of each cluster; a cluster with two therapists is an error."""
    import pandas as pd

    if len(therapist) != len(cluster):
        raise DataError(f"therapist has {len(therapist)} rows, the data {len(cluster)}")
    code, uniques = pd.factorize(pd.Series(therapist), sort=True)
    if (code < 0).any():
        rows = np.flatnonzero(code < 0)[:5].tolist()
        raise DataError(f"the therapist is missing in rows {rows}: every dyad needs its "
                        "therapist's id")
    pairs = np.unique(np.column_stack([cluster, code]), axis=0)
    if len(pairs) > n_clusters:
        many = int(np.flatnonzero(np.bincount(pairs[:, 0], minlength=n_clusters) > 1)[0])
        names = [str(uniques[c]) for c in pairs[pairs[:, 0] == many, 1]]
        label = labels[cluster == many][0]
        label = label.item() if isinstance(label, np.generic) else label
        raise DataError(f"dyad {label!r} has more than one therapist "
                        f"({', '.join(names)}): a dyad must be nested in one therapist; "
                        "correct the therapist ids")
    out = np.zeros(n_clusters, dtype=np.int64)
    out[pairs[:, 0]] = pairs[:, 1]
    _, out = np.unique(out, return_inverse=True)  # codes of therapists with data
    return out.ravel().astype(np.int64)


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Log-likelihood and gradient at one parameter point.

    ``grad_w``, ``grad_b`` satisfy ``dl = tr(grad_w dSigma_W) + tr(grad_b dSigma_B)``;
    ``grad_mu`` is ``dl/dmu`` (zero at the GLS ``mu``), ``grad_phi`` ``dl/dphi``;
    ``xvx`` is ``X'V^-1 X`` and ``blups`` the predicted cluster effects ``b_i``; in the
    three-level model (:mod:`apim.engine.multivariate.nested`) also ``grad_t``
    (``dl = ... + tr(grad_t dSigma_T)``) and ``therapist_blups``.
    """

    loglik: float
    mu: np.ndarray
    xvx: np.ndarray
    grad_w: np.ndarray
    grad_b: np.ndarray
    grad_mu: np.ndarray
    grad_phi: float
    blups: np.ndarray | None = None
    grad_t: np.ndarray | None = None
    therapist_blups: np.ndarray | None = None


def _invalid(k: int) -> Evaluation:
    z = np.zeros((k, k))
    return Evaluation(-np.inf, np.zeros(k), z, z, z, np.zeros(k), 0.0)


def evaluate(data: MultivariateData, sigma_w: np.ndarray, sigma_b: np.ndarray,
             phi: float | None = None, mu: np.ndarray | None = None,
             reml: bool = False) -> Evaluation:
    """Log-likelihood and analytic gradient at ``(Sigma_W, Sigma_B, phi)``.

    Parameters
    ----------
    data : MultivariateData
    sigma_w, sigma_b : (K, K) arrays
        Within (occasion-level) and between (cluster-level) covariance; ``sigma_b`` may be
        singular.
    phi : float, optional
        AR(1) parameter over occasion numbers (``None``: independent occasions).
    mu : (K,) array, optional
        The means; default their GLS estimate (required to be ``None`` for REML).
    reml : bool

    Returns
    -------
    Evaluation
        ``loglik = -inf`` where ``Sigma_W`` is not positive definite or ``V`` is singular.
    """
    if reml and mu is not None:
        raise ValueError("REML profiles the means out: mu must be None")
    if phi is None:
        return _pattern_path(data, sigma_w, sigma_b, mu, reml)
    return _shape_path(data, sigma_w, sigma_b, phi, mu, reml)


def pattern_inverses(data: MultivariateData, sw: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray] | None:
    """Per missingness pattern, ``M_p`` (the inverse of ``Sigma_W`` restricted to the
    pattern's variables, embedded in ``K x K``) and ``log|Sigma_W[p, p]|``; ``None`` when
    ``Sigma_W`` is not positive definite."""
    k = data.k
    n_pat = len(data.patterns)
    m_p = np.zeros((n_pat, k, k))
    logdet_p = np.zeros(n_pat)
    for p, obs in enumerate(data.patterns):
        idx = np.flatnonzero(obs)
        sub = sw[np.ix_(idx, idx)]
        try:
            chol = np.linalg.cholesky(sub)
        except np.linalg.LinAlgError:
            return None
        inv = np.linalg.inv(sub)
        m_p[p][np.ix_(idx, idx)] = (inv + inv.T) / 2
        logdet_p[p] = 2 * np.log(np.diag(chol)).sum()
    return m_p, logdet_p


def _pattern_path(data: MultivariateData, sw: np.ndarray, sb: np.ndarray,
                  mu: np.ndarray | None, reml: bool) -> Evaluation:
    k = data.k
    s, cr = data.sums, data.cross
    # clusters with the same pattern counts share A, H and every K x K matrix
    ng, gi, mult = data.count_groups
    weight = ng * mult[:, None]                 # (G, P) occasions per group and pattern
    n_pat = len(data.patterns)
    inverses = pattern_inverses(data, sw)
    if inverses is None:
        return _invalid(k)
    m_p, logdet_p = inverses
    a_g = np.einsum("gp,pkl->gkl", ng, m_p)
    a_vec = np.einsum("pkl,dpl->dk", m_p, s)
    c_sc = np.einsum("pq,dpq->d", m_p.reshape(n_pat, k * k), cr.reshape(len(s), n_pat, k * k))
    kt = np.eye(k) + sb @ a_g
    sign, logdet_k = np.linalg.slogdet(kt)
    if np.any(sign <= 0):
        return _invalid(k)
    h_g = np.linalg.solve(kt, np.broadcast_to(sb, kt.shape))
    h_g = (h_g + np.swapaxes(h_g, 1, 2)) / 2
    ah_g = a_g @ h_g
    q_g = a_g - ah_g @ a_g
    q_g = (q_g + np.swapaxes(q_g, 1, 2)) / 2
    h, ah = h_g[gi], ah_g[gi]
    qy = a_vec - np.einsum("dkl,dl->dk", ah, a_vec)
    yy = c_sc - np.einsum("dk,dk->d", a_vec, np.einsum("dkl,dl->dk", h, a_vec))
    xvx, xvy = np.tensordot(mult, q_g, axes=1), qy.sum(axis=0)
    try:
        cov_mu = np.linalg.inv(xvx)
    except np.linalg.LinAlgError:
        return _invalid(k)
    beta = cov_mu @ xvy if mu is None else np.asarray(mu, float)
    quad = yy.sum() - 2 * beta @ xvy + beta @ xvx @ beta
    logdet = float(weight.sum(axis=0) @ logdet_p + mult @ logdet_k)
    if reml:
        loglik = -0.5 * ((data.n_obs - k) * LOG_2PI + logdet + np.linalg.slogdet(xvx)[1]
                         + quad)
    else:
        loglik = -0.5 * (data.n_obs * LOG_2PI + logdet + quad)
    q = qy - (q_g @ beta)[gi]                   # X_i' V_i^-1 r_i
    g = a_vec - (a_g @ beta)[gi]                # X_i' R_i^-1 r_i
    blups = np.einsum("dkl,dl->dk", h, g)
    m = beta + blups                            # predicted cluster means
    grad_b = xvx - q.T @ q
    n_total = weight.sum(axis=0)
    e_p = n_total[:, None, None] * sw - np.einsum("gp,gkl->pkl", weight, h_g)
    e_p -= data.cross_total
    sm = np.einsum("dpk,dl->pkl", s, m)
    e_p += sm + np.swapaxes(sm, 1, 2)
    e_p -= np.einsum("dpk,dl->pkl", data.counts[:, :, None] * m[:, None, :], m)
    if reml:
        grad_b -= np.einsum("g,gkl,lm,gmn->kn", mult, q_g, cov_mu, q_g)
        f = np.eye(k) - h_g @ a_g
        e_p -= np.einsum("gp,gkl->pkl", weight, f @ cov_mu @ np.swapaxes(f, 1, 2))
    grad_w = -0.5 * np.einsum("pkl,plm,pmn->kn", m_p, e_p, m_p)
    grad_b = -0.5 * grad_b
    return Evaluation(loglik=float(loglik), mu=beta, xvx=xvx,
                      grad_w=(grad_w + grad_w.T) / 2, grad_b=(grad_b + grad_b.T) / 2,
                      grad_mu=q.sum(axis=0), grad_phi=0.0, blups=blups)


def shape_covariance(shape: Shape, sw: np.ndarray, sb: np.ndarray, phi: float
                     ) -> tuple[np.ndarray, ...] | None:
    """A shape's covariance ``V = Sigma_W * phi^lag + Sigma_B`` over its (variable,
    occasion) entries: the entries' variable indicators ``x``, ``phi^lag``, the Cholesky
    factor and the symmetrised inverse of ``V``; None where ``V`` is not positive
    definite."""
    x = np.eye(len(sw))[shape.var]
    corr = shape.powers(phi)[0]
    big = shape.block(sw) * corr + shape.block(sb)
    try:
        chol = np.linalg.cholesky(big)
    except np.linalg.LinAlgError:
        return None
    inv = np.linalg.inv(big)
    return x, corr, chol, (inv + inv.T) / 2


def _shape_path(data: MultivariateData, sw: np.ndarray, sb: np.ndarray, phi: float,
                mu: np.ndarray | None, reml: bool) -> Evaluation:
    k = data.k
    if not -1 < phi < 1:
        return _invalid(k)
    parts = []
    xvx = np.zeros((k, k))
    xvy = np.zeros(k)
    logdet = 0.0
    for shape in data.shapes():
        pieces = shape_covariance(shape, sw, sb, phi)
        if pieces is None:
            return _invalid(k)
        x, corr, chol, inv = pieces
        count = len(shape.values)
        xv = x.T @ inv
        xvx += count * xv @ x
        xvy += xv @ shape.values.sum(axis=0)
        logdet += count * 2 * np.log(np.diag(chol)).sum()
        parts.append((shape, x, corr, inv, xv))
    try:
        cov_mu = np.linalg.inv(xvx)
    except np.linalg.LinAlgError:
        return _invalid(k)
    beta = cov_mu @ xvy if mu is None else np.asarray(mu, float)
    quad = 0.0
    grad_w, grad_b = np.zeros((k, k)), np.zeros((k, k))
    grad_phi, grad_mu = 0.0, np.zeros(k)
    for shape, x, corr, inv, xv in parts:
        count = len(shape.values)
        resid = shape.values - x @ beta
        alpha = resid @ inv
        quad += float(np.einsum("cm,cm->", resid, alpha))
        p_mat = count * inv - alpha.T @ alpha
        if reml:
            p_mat -= count * xv.T @ cov_mu @ xv
        grad_b += x.T @ p_mat @ x
        grad_w += x.T @ (p_mat * corr) @ x
        grad_phi += float(np.sum(p_mat * shape.block(sw) * shape.powers(phi)[1]))
        grad_mu += x.T @ alpha.sum(axis=0)
    if reml:
        loglik = -0.5 * ((data.n_obs - k) * LOG_2PI + logdet + np.linalg.slogdet(xvx)[1]
                         + quad)
    else:
        loglik = -0.5 * (data.n_obs * LOG_2PI + logdet + quad)
    grad_w, grad_b = -0.5 * grad_w, -0.5 * grad_b
    return Evaluation(loglik=float(loglik), mu=beta, xvx=xvx,
                      grad_w=(grad_w + grad_w.T) / 2, grad_b=(grad_b + grad_b.T) / 2,
                      grad_mu=grad_mu, grad_phi=-0.5 * grad_phi)
