"""Fitting the multivariate two-level model by ML or REML
(:mod:`apim.engine.multivariate.likelihood`), optionally with a third (therapist) level
(:mod:`apim.engine.multivariate.nested`).

Optimisation is over unconstrained parameters (log-Cholesky factors of ``Sigma_W``,
``Sigma_B`` and an unstructured ``Sigma_T``, or the log variances of a diagonal
``Sigma_T``; ``atanh(phi)``) with the analytic gradient: BFGS from moment-based start
values, then Newton steps with the Hessian from central differences of the analytic
gradient. Standard errors come from the **observed information on the natural scale**
(means, the lower triangles of ``Sigma_W``, ``Sigma_B`` and ``Sigma_T`` (its diagonal
when diagonal), ``phi``): the Hessian of the
log-likelihood from central differences of its analytic gradient, inverted. Under ML the
means are parameters (the full Hessian, as lavaan's observed information); under REML the
covariance parameters' information comes from the REML criterion and the means' covariance
is ``(X'V^-1 X)^-1``. Functions of the parameters (e.g. regression coefficients) get their
standard errors by the delta method (:meth:`MultivariateFit.delta`).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(2)
>>> b = rng.normal(size=(30, 2)); cluster = np.repeat(np.arange(30), 5)
>>> y = b[cluster] + rng.normal(size=(150, 2))
>>> fit = fit_multivariate(y, cluster, np.tile(np.arange(1, 6), 30), names=("a", "b"))
>>> fit.converged, fit.sigma_w.shape
(True, (2, 2))
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np

from apim.engine.multivariate.likelihood import Evaluation, MultivariateData, evaluate, prepare
from apim.engine.multivariate.nested import evaluate_nested
from apim.errors import SpecError

__all__ = ["MultivariateFit", "Parameters", "Layout", "fit_multivariate", "natural_names",
           "start_values", "therapist_start", "check_therapists", "natural_gradient"]

Method = Literal["ML", "REML"]
TherapistCovariance = Literal["unstructured", "diagonal"]


class Parameters(NamedTuple):
    """The model's parameters on the natural scale (``sigma_t`` None without a therapist
    level)."""

    mu: np.ndarray | None
    sigma_w: np.ndarray
    sigma_b: np.ndarray
    phi: float | None
    sigma_t: np.ndarray | None = None


def natural_names(names: Sequence[str], ar1: bool,
                  therapist: TherapistCovariance | None = None) -> list[str]:
    """Names of the natural parameters: ``mean(v)``, ``within(v,w)``, ``between(v,w)``,
    ``therapist(v,w)`` (with a therapist level), ``phi``."""
    k = len(names)
    rows, cols = np.tril_indices(k)
    out = [f"mean({n})" for n in names]
    for level in ("within", "between"):
        out += [f"{level}({names[int(c)]},{names[int(r)]})" for r, c in zip(rows, cols)]
    if therapist == "unstructured":
        out += [f"therapist({names[int(c)]},{names[int(r)]})" for r, c in zip(rows, cols)]
    elif therapist == "diagonal":
        out += [f"therapist({n},{n})" for n in names]
    return out + (["phi"] if ar1 else [])


@dataclass(frozen=True)
class Layout:
    """Where each parameter sits in the natural vector: ``[mu (ML only)], vech(Sigma_W),
    vech(Sigma_B), [vech or diag(Sigma_T)], [phi]``."""

    k: int
    ar1: bool
    reml: bool
    therapist: TherapistCovariance | None = None

    @property
    def h(self) -> int:
        return self.k * (self.k + 1) // 2

    @property
    def n_t(self) -> int:
        return {None: 0, "unstructured": self.h, "diagonal": self.k}[self.therapist]

    def pack(self, p: Parameters) -> np.ndarray:
        parts = ([] if self.reml else [np.asarray(p.mu, float)])
        parts += [_vech(p.sigma_w), _vech(p.sigma_b)]
        if self.therapist is not None:
            if p.sigma_t is None:
                raise ValueError("a therapist level needs sigma_t")
            parts.append(_vech(p.sigma_t) if self.therapist == "unstructured"
                         else np.diag(p.sigma_t).copy())
        return np.concatenate(parts + ([np.array([p.phi])] if self.ar1 else []))

    def unpack(self, nat: np.ndarray) -> Parameters:
        k, h = self.k, self.h
        off = 0 if self.reml else k
        mu = None if self.reml else nat[:k]
        sw, sb = _unvech(nat[off:off + h], k), _unvech(nat[off + h:off + 2 * h], k)
        off += 2 * h
        st = None
        if self.therapist == "unstructured":
            st = _unvech(nat[off:off + h], k)
        elif self.therapist == "diagonal":
            st = np.diag(nat[off:off + k])
        phi = float(nat[off + self.n_t]) if self.ar1 else None
        return Parameters(mu, sw, sb, phi, st)

    def evaluate(self, data: MultivariateData, p: Parameters,
                 profile: bool = False) -> Evaluation:
        """The likelihood at ``p`` (the means profiled out when ``profile`` or REML)."""
        mu = None if profile or self.reml else p.mu
        if self.therapist is None:
            return evaluate(data, p.sigma_w, p.sigma_b, p.phi, mu=mu, reml=self.reml)
        if p.sigma_t is None:
            raise ValueError("a therapist level needs sigma_t")
        return evaluate_nested(data, p.sigma_w, p.sigma_b, p.sigma_t, p.phi, mu=mu,
                               reml=self.reml)

    def gradient(self, ev: Evaluation) -> np.ndarray:
        """``ev``'s gradient as a vector in this layout."""
        parts = [] if self.reml else [ev.grad_mu]
        parts += [_grad_vech(ev.grad_w), _grad_vech(ev.grad_b)]
        if self.therapist is not None:
            if ev.grad_t is None:
                raise ValueError("the evaluation has no therapist level")
            parts.append(_grad_vech(ev.grad_t) if self.therapist == "unstructured"
                         else np.diag(ev.grad_t).copy())
        if self.ar1:
            parts.append(np.array([ev.grad_phi]))
        return np.concatenate(parts)


@functools.lru_cache(maxsize=32)
def _tril(k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.tril_indices(k)


def _vech(m: np.ndarray) -> np.ndarray:
    return m[_tril(len(m))]


def _unvech(v: np.ndarray, k: int) -> np.ndarray:
    rows, cols = _tril(k)
    m = np.zeros((k, k))
    m[rows, cols] = v
    m[cols, rows] = v
    return m


def _grad_vech(g: np.ndarray) -> np.ndarray:
    """Gradient with respect to the lower triangle of a symmetric matrix."""
    full = 2 * g - np.diag(np.diag(g))
    return _vech(full)


@dataclass(frozen=True, eq=False)
class MultivariateFit:
    """A fitted multivariate two-level (or three-level) model.

    Attributes
    ----------
    names : tuple of str
        The K variables.
    method : {"ML", "REML"}
    mu, sigma_w, sigma_b : estimated means, within and between covariance (between
        clusters within therapists when there is a therapist level)
    phi : float or None
        AR(1) parameter (None without AR(1)).
    loglik : float
    n_obs, n_clusters : observed values and clusters
    estimate, cov : natural parameter vector and its covariance (observed information)
    converged, message, iterations, seconds
    boundary : tuple of str
        Covariance estimates at the edge of the parameter space.
    sigma_t : array or None
        Therapist-level covariance (None without a therapist level).
    therapist_covariance : {"unstructured", "diagonal"} or None
    n_therapists : int
    """

    names: tuple[str, ...]
    method: str
    mu: np.ndarray
    sigma_w: np.ndarray
    sigma_b: np.ndarray
    phi: float | None
    loglik: float
    n_obs: int
    n_clusters: int
    estimate: np.ndarray = field(repr=False)
    cov: np.ndarray = field(repr=False)
    converged: bool = True
    message: str = ""
    iterations: int = 0
    seconds: float = 0.0
    boundary: tuple[str, ...] = ()
    blups: np.ndarray | None = field(default=None, repr=False)
    sigma_t: np.ndarray | None = None
    therapist_covariance: TherapistCovariance | None = None
    n_therapists: int = 0
    therapist_blups: np.ndarray | None = field(default=None, repr=False)

    @property
    def layout(self) -> Layout:
        """The layout of :attr:`estimate` (the means always included)."""
        return Layout(len(self.names), self.phi is not None, False,
                      self.therapist_covariance)

    @property
    def parameter_names(self) -> list[str]:
        return natural_names(self.names, self.phi is not None, self.therapist_covariance)

    @property
    def n_params(self) -> int:
        return len(self.estimate)

    def unpack(self, nat: np.ndarray) -> Parameters:
        """Natural vector -> :class:`Parameters` (mu, Sigma_W, Sigma_B, phi, Sigma_T)."""
        return self.layout.unpack(nat)

    def delta(self, func: Callable[[Parameters], np.ndarray]
              ) -> tuple[np.ndarray, np.ndarray]:
        """Estimate and covariance of ``func(parameters)`` by the delta method (numerical
        Jacobian by central differences)."""
        value = np.atleast_1d(np.asarray(func(self.unpack(self.estimate)), float))
        jac = np.zeros((len(value), self.n_params))
        for j in range(self.n_params):
            step = 1e-6 * max(1.0, abs(self.estimate[j]))
            e = np.zeros(self.n_params)
            e[j] = step
            up = np.atleast_1d(func(self.unpack(self.estimate + e)))
            down = np.atleast_1d(func(self.unpack(self.estimate - e)))
            jac[:, j] = (up - down) / (2 * step)
        return value, jac @ self.cov @ jac.T


def start_values(data: MultivariateData, ddof: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Moment estimates of ``Sigma_W`` (pooled within covariance, pairwise) and
    ``Sigma_B`` (covariance of cluster means minus ``Sigma_W / n``), made positive
    definite; ``ddof=0`` gives the ML and ``ddof=1`` the REML estimates in balanced
    complete data."""
    y, cl = data.y, data.cluster
    k = data.k
    obs = ~np.isnan(y)
    counts = np.zeros((data.n_clusters, k))
    np.add.at(counts, cl, obs)
    sums = np.zeros((data.n_clusters, k))
    np.add.at(sums, cl, np.where(obs, y, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    dev = y - means[cl]
    sw = np.zeros((k, k))
    for a in range(k):
        for b in range(a + 1):
            both = obs[:, a] & obs[:, b]
            denom = max(both.sum() - data.n_clusters, 1)
            sw[a, b] = sw[b, a] = np.sum(dev[both, a] * dev[both, b]) / denom
    frame_means = np.ma.masked_invalid(means)
    sb = np.ma.cov(frame_means, rowvar=False, allow_masked=True, ddof=ddof).filled(0.0)
    sb = np.atleast_2d(sb) - sw / max(float(np.nanmean(counts)), 1.0)
    return _positive(sw, 1e-2), _positive(sb, 0.05)


def therapist_start(data: MultivariateData, sw: np.ndarray, sb: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Moment estimates of ``Sigma_B`` (dyads within therapists) and ``Sigma_T`` from the
    clusters' means: the pooled within-therapist covariance of the cluster means estimates
    ``Sigma_B + Sigma_W / n``, the covariance of the therapists' means of their cluster
    means ``Sigma_T + (Sigma_B + Sigma_W / n) / m`` (``n`` occasions per cluster, ``m``
    clusters per therapist, their means); both made positive definite. ``sb`` (the
    two-level estimate) is the fallback where a moment is not available."""
    if data.therapist_of is None:
        raise ValueError("no therapist level in the data")
    k = data.k
    obs = ~np.isnan(data.y)
    sums = np.zeros((data.n_clusters, k))
    counts = np.zeros((data.n_clusters, k))
    np.add.at(sums, data.cluster, np.where(obs, data.y, 0.0))
    np.add.at(counts, data.cluster, obs)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    tj, nt = data.therapist_of, data.n_therapists
    seen = ~np.isnan(means)
    t_sum = np.zeros((nt, k))
    t_n = np.zeros((nt, k))
    np.add.at(t_sum, tj, np.where(seen, means, 0.0))
    np.add.at(t_n, tj, seen)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_means = t_sum / t_n
    dev = np.where(seen, means - t_means[tj], 0.0)
    both = seen.astype(float).T @ seen.astype(float)            # pairwise counts
    pooled = (dev.T @ dev) / np.maximum(both - nt, 1.0)
    n_bar = max(float(np.nanmean(np.where(counts > 0, counts, np.nan))), 1.0)
    m_bar = data.n_clusters / nt
    between = pooled - sw / n_bar
    if nt > 1:
        st = np.ma.cov(np.ma.masked_invalid(t_means), rowvar=False,
                       allow_masked=True).filled(0.0)
        st = np.atleast_2d(st) - pooled / m_bar
    else:
        st = 0.1 * sb
    if not np.all(np.isfinite(between)):
        between = sb
    return _positive(between, 0.05), _positive(np.nan_to_num(st), 0.05)


def _positive(m: np.ndarray, floor: float) -> np.ndarray:
    vals, vecs = np.linalg.eigh((m + m.T) / 2)
    top = max(vals.max(), 1e-8)
    return (vecs * np.maximum(vals, floor * top)) @ vecs.T


def _log_cholesky(m: np.ndarray) -> np.ndarray:
    lower = np.linalg.cholesky(m)
    lower[np.diag_indices(len(m))] = np.log(np.diag(lower))
    return lower[np.tril_indices(len(m))]


def _theta_of(layout: Layout, p: Parameters) -> np.ndarray:
    parts = [_log_cholesky(p.sigma_w), _log_cholesky(p.sigma_b)]
    if layout.therapist == "unstructured" and p.sigma_t is not None:
        parts.append(_log_cholesky(p.sigma_t))
    elif layout.therapist == "diagonal" and p.sigma_t is not None:
        parts.append(np.log(np.diag(p.sigma_t)))
    if p.phi is not None:
        parts.append(np.array([np.arctanh(p.phi)]))
    return np.concatenate(parts)


def _matrices_of(layout: Layout, theta: np.ndarray
                 ) -> tuple[Parameters, tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """Unconstrained ``theta`` -> parameters (no means) and the Cholesky factors."""
    k, h = layout.k, layout.h
    lw, lb = _factor(theta[:h], k), _factor(theta[h:2 * h], k)
    lt, st = None, None
    if layout.therapist == "unstructured":
        lt = _factor(theta[2 * h:3 * h], k)
        st = lt @ lt.T
    elif layout.therapist == "diagonal":
        st = np.diag(np.exp(theta[2 * h:2 * h + k]))
    phi = float(np.tanh(theta[2 * h + layout.n_t])) if layout.ar1 else None
    return Parameters(None, lw @ lw.T, lb @ lb.T, phi, st), (lw, lb, lt)


def fit_multivariate(y: np.ndarray, cluster: np.ndarray, occasion: np.ndarray,
                     names: Sequence[str] | None = None, method: Method = "ML",
                     ar1: bool = False, max_newton: int = 10,
                     therapist: np.ndarray | None = None,
                     therapist_covariance: TherapistCovariance = "unstructured"
                     ) -> MultivariateFit:
    """Fit the multivariate two-level model (module :mod:`apim.engine.multivariate.likelihood`), or
    with ``therapist`` the three-level model (:mod:`apim.engine.multivariate.nested`).

    Parameters
    ----------
    y : (n, K) array
        One row per cluster x occasion, one column per variable, NaN for a missing value.
    cluster, occasion : (n,) arrays
        Cluster labels and occasion numbers (integers; AR(1) uses their differences).
    names : sequence of str, optional
    method : {"ML", "REML"}
    ar1 : bool
        AR(1) over occasion numbers for the within part.
    max_newton : int
        Newton steps after BFGS.
    therapist : (n,) array, optional
        The therapist of each row (constant within a cluster): a third level with a
        random K-vector per therapist.
    therapist_covariance : {"unstructured", "diagonal"}
        Structure of the therapist-level covariance ``Sigma_T``.

    Returns
    -------
    MultivariateFit

    Raises
    ------
    SpecError
        With a therapist level where no therapist has two or more clusters (the therapist
        and cluster levels are then not separately identified).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(3)
    >>> ther = np.repeat(np.arange(20), 3)                    # 20 therapists x 3 dyads
    >>> cl = np.repeat(np.arange(60), 4); th = ther[cl]       # 4 sessions each
    >>> y = (rng.normal(size=(20, 2))[th] + rng.normal(size=(60, 2))[cl]
    ...      + rng.normal(size=(240, 2)))
    >>> fit = fit_multivariate(y, cl, np.tile(np.arange(1, 5), 60), therapist=th)
    >>> fit.sigma_t.shape, fit.n_therapists
    ((2, 2), 20)
    """
    if method not in ("ML", "REML"):
        raise SpecError(f"method={method!r} must be 'ML' or 'REML'")
    if therapist_covariance not in ("unstructured", "diagonal"):
        raise SpecError(f"therapist_covariance={therapist_covariance!r} must be "
                        "'unstructured' or 'diagonal'")
    clock = time.perf_counter()
    data = prepare(y, cluster, occasion, therapist=therapist)
    k = data.k
    names = tuple(names) if names is not None else tuple(f"v{j}" for j in range(k))
    reml = method == "REML"
    level = therapist_covariance if therapist is not None else None
    layout = Layout(k, ar1, reml, level)
    if level is not None:
        check_therapists(data)

    calls = [0]
    rows, cols = np.tril_indices(k)
    diag = rows == cols

    def chain(grad: np.ndarray, sigma_factor: np.ndarray) -> np.ndarray:
        """d loglik / d log-Cholesky parameters from d loglik / d Sigma (symmetric)."""
        d_lower = (2 * grad @ sigma_factor)[rows, cols]
        return np.where(diag, d_lower * sigma_factor[rows, cols], d_lower)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        calls[0] += 1
        p, (lw, lb, lt) = _matrices_of(layout, theta)
        ev = layout.evaluate(data, p, profile=True)
        if not np.isfinite(ev.loglik):
            return np.inf, np.zeros_like(theta)
        parts = [chain(ev.grad_w, lw), chain(ev.grad_b, lb)]
        if lt is not None and ev.grad_t is not None:
            parts.append(chain(ev.grad_t, lt))
        elif level == "diagonal" and ev.grad_t is not None and p.sigma_t is not None:
            parts.append(np.diag(ev.grad_t) * np.diag(p.sigma_t))
        if p.phi is not None:
            parts.append(np.array([ev.grad_phi * (1 - p.phi ** 2)]))
        return -ev.loglik, -np.concatenate(parts)

    sw0, sb0 = start_values(data, ddof=1 if reml else 0)
    st0 = None
    if level is not None:
        sb0, st0 = therapist_start(data, sw0, sb0)
        if level == "diagonal":
            st0 = np.diag(np.diag(st0))
    phi0 = 0.2 if ar1 else None
    start = Parameters(None, sw0, sb0, phi0, st0)
    # Newton on the natural scale from the moment estimates (exact ML/REML in balanced
    # complete data), with the differenced Hessian that also gives the observed information
    mu0 = layout.evaluate(data, start, profile=True).mu
    nat, hess, converged = _newton(data, layout, layout.pack(start._replace(mu=mu0)))
    calls[0] += len(nat) + 2
    messages = ["Newton from moment estimates"]
    if not converged:  # far start or boundary: quasi-Newton first, then Newton steps
        from scipy import optimize  # not on import: ``import apim`` stays light

        result = optimize.minimize(objective, _theta_of(layout, start), jac=True,
                                   method="BFGS",
                                   options={"gtol": 1e-5 * max(1.0, data.n_obs / 1e3),
                                            "maxiter": 3000})
        messages = [f"BFGS: {result.message}"]
        p1 = _matrices_of(layout, result.x)[0]
        mu1 = layout.evaluate(data, p1, profile=True).mu
        bfgs = layout.pack(p1._replace(mu=mu1))
        nat, hess, converged = _newton(data, layout, bfgs, rounds=max_newton)
        calls[0] += 2 * len(nat) + 1
        if not converged:  # at the boundary of the parameter space: the BFGS optimum
            grad_theta = objective(result.x)[1]
            converged = bool(np.max(np.abs(grad_theta)) < 1e-3 * max(1.0, data.n_obs / 1e3))
            nat = bfgs
            hess = _fd_hessian(lambda x: _gradient(data, layout, x), nat)
            messages.append("estimates at the boundary: SEs from the unconstrained "
                            "information are approximate")
    try:
        cov = np.linalg.inv(-hess)
    except np.linalg.LinAlgError:
        cov = np.linalg.pinv(-hess)
    final = layout.unpack(nat)
    ev = layout.evaluate(data, final, profile=True)
    if reml:
        full = np.zeros((len(nat) + k, len(nat) + k))
        full[:k, :k] = np.linalg.inv(ev.xvx)
        full[k:, k:] = cov
        cov, nat = full, np.concatenate([ev.mu, nat])
    if not converged:
        messages.append("the Newton phase did not converge")
    return MultivariateFit(
        names=names, method=method, mu=ev.mu, sigma_w=final.sigma_w, sigma_b=final.sigma_b,
        phi=final.phi, loglik=ev.loglik, n_obs=data.n_obs, n_clusters=data.n_clusters,
        estimate=nat, cov=cov, converged=converged, message="; ".join(messages),
        iterations=calls[0], seconds=time.perf_counter() - clock,
        boundary=_boundary(final.sigma_w, final.sigma_b, final.phi, final.sigma_t),
        blups=ev.blups, sigma_t=final.sigma_t, therapist_covariance=level,
        n_therapists=data.n_therapists, therapist_blups=ev.therapist_blups)


def check_therapists(data: MultivariateData) -> None:
    """The therapist and cluster levels are separately identified only when some
    therapist has two or more clusters.

    Raises
    ------
    SpecError
        When every therapist has a single cluster.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.random.default_rng(0).normal(size=(6, 2))
    >>> from apim.errors import SpecError
    >>> try:
    ...     check_therapists(prepare(y, np.arange(6), np.ones(6), therapist=np.arange(6)))
    ... except SpecError as error:
    ...     print(str(error)[:45])
    every one of the 6 therapists has a single dy
    """
    if data.therapist_of is None:
        return
    sizes = np.bincount(data.therapist_of)
    if sizes.max() < 2:
        raise SpecError(f"every one of the {len(sizes)} therapists has a single dyad: the "
                        "therapist level is then not identified (it cannot be told apart "
                        "from the dyad level); drop the therapist level")


def _newton(data: MultivariateData, layout: Layout, nat: np.ndarray,
            rounds: int = 3, steps: int = 40) -> tuple[np.ndarray, np.ndarray, bool]:
    """Newton iterations on the natural scale, reusing each differenced Hessian for
    several steps (chord method); the Hessian returned was taken within 1e-6 (relative)
    of the returned point. Returns (point, Hessian, converged)."""
    def gradient(x: np.ndarray) -> np.ndarray:
        return _gradient(data, layout, x)

    hess = np.zeros((len(nat), len(nat)))
    for _ in range(rounds):
        anchor = nat.copy()
        hess = _fd_hessian(gradient, nat, gradient(nat))
        if not np.all(np.isfinite(hess)) or np.linalg.eigvalsh(hess).max() >= 0:
            return nat, hess, False
        done = False
        for _ in range(steps):
            grad = gradient(nat)
            step = -np.linalg.solve(hess, grad)
            if np.max(np.abs(step) / np.maximum(1.0, np.abs(nat))) < 1e-10:
                done = True
                break
            base = layout.evaluate(data, layout.unpack(nat)).loglik
            for shrink in (1.0, 0.5, 0.25, 0.125):
                trial = nat + shrink * step
                if not _admissible(layout, trial):
                    continue
                if layout.evaluate(data, layout.unpack(trial)).loglik \
                        >= base - 1e-12 * abs(base):
                    nat = trial
                    break
            else:
                return nat, hess, False
        moved = np.max(np.abs(nat - anchor) / np.maximum(1.0, np.abs(anchor)))
        if done and moved < 1e-6:
            return nat, hess, True
    return nat, hess, False


def _admissible(layout: Layout, nat: np.ndarray) -> bool:
    """Sigma_W positive definite, Sigma_B and Sigma_T positive semi-definite, |phi| < 1."""
    p = layout.unpack(nat)
    scale = max(float(np.abs(np.diag(p.sigma_w)).max()), 1e-300)
    if np.linalg.eigvalsh(p.sigma_w).min() <= 0 \
            or np.linalg.eigvalsh(p.sigma_b).min() < -1e-10 * scale:
        return False
    if p.sigma_t is not None and np.linalg.eigvalsh(p.sigma_t).min() < -1e-10 * scale:
        return False
    return p.phi is None or abs(p.phi) < 1


def _factor(theta: np.ndarray, k: int) -> np.ndarray:
    lower = np.zeros((k, k))
    lower[_tril(k)] = theta
    idx = np.arange(k)
    lower[idx, idx] = np.exp(lower[idx, idx])
    return lower


def _fd_hessian(gradient: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                at_x: np.ndarray | None = None) -> np.ndarray:
    """Hessian from differences of the analytic gradient: central, or forward from
    ``at_x`` (the gradient at ``x``) with a smaller step."""
    n = len(x)
    hess = np.zeros((n, n))
    for j in range(n):
        e = np.zeros(n)
        if at_x is None:
            e[j] = step = 1e-5 * max(1.0, abs(x[j]))
            hess[:, j] = (gradient(x + e) - gradient(x - e)) / (2 * step)
        else:
            e[j] = step = 1e-7 * max(1.0, abs(x[j]))
            hess[:, j] = (gradient(x + e) - at_x) / step
    return (hess + hess.T) / 2


def _gradient(data: MultivariateData, layout: Layout, nat: np.ndarray) -> np.ndarray:
    ev = layout.evaluate(data, layout.unpack(nat))
    if not np.isfinite(ev.loglik):
        return np.full(len(nat), np.nan)
    return layout.gradient(ev)


def natural_gradient(data: MultivariateData, nat: np.ndarray, ar1: bool, reml: bool,
                     therapist: TherapistCovariance | None = None) -> np.ndarray:
    """Gradient of the log-likelihood with respect to the natural parameters (ML: means
    included; REML: covariance parameters only, ``nat`` without the means); with
    ``therapist`` the three-level model (``data`` prepared with ``therapist=``)."""
    return _gradient(data, Layout(data.k, ar1, reml, therapist), nat)


def _boundary(sw: np.ndarray, sb: np.ndarray, phi: float | None,
              st: np.ndarray | None = None) -> tuple[str, ...]:
    flags = []
    levels = [("within", sw), ("between", sb)] + ([("therapist", st)] if st is not None
                                                    else [])
    for label, m in levels:
        sd = np.sqrt(np.clip(np.diag(m), 0, None))
        if sd.max() == 0:
            flags.append(f"the {label} covariance matrix is zero")
            continue
        if np.any(sd < 1e-4 * sd.max()):
            flags.append(f"a {label} variance is at zero")
        vals = np.linalg.eigvalsh(m / np.outer(sd, sd)) if np.all(sd > 0) else [0.0]
        if min(vals) < 1e-6:
            flags.append(f"the {label} covariance matrix is singular")
    if phi is not None and abs(phi) > 0.9999:
        flags.append(f"phi is at {np.sign(phi):+.0f}")
    return tuple(flags)
