"""Fitting the multivariate two-level model by ML or REML
(:mod:`apim.engine.multivariate.likelihood`), optionally with a third (therapist) level
(:mod:`apim.engine.multivariate.nested`).

The likelihood is maximised by the shared driver (:func:`apim.engine.optimize.maximize`):
Newton steps on the **natural scale** (means under ML, the lower triangles of
``Sigma_W``, ``Sigma_B`` and ``Sigma_T`` (its diagonal when diagonal), ``phi``) from the
moment start values of :mod:`apim.engine.multivariate.start`, with the Hessian from
forward differences of the analytic gradient (carried forward by secant updates after
short steps); where they do not settle, the quasi-Newton search over unconstrained
parameters (log-Cholesky factors of ``Sigma_W``, ``Sigma_B`` and an unstructured
``Sigma_T``, or the log variances of a diagonal ``Sigma_T``; ``atanh(phi)``; the means
profiled out) first (:mod:`apim.engine.multivariate.parameters`). Standard errors come
from the **observed information on the natural scale**: the Hessian of the
log-likelihood at the optimum from differences of its analytic gradient, inverted. Under
ML the means are parameters (the full Hessian, as lavaan's observed information); under
REML the covariance parameters' information comes from the REML criterion and the means'
covariance is ``(X'V^-1 X)^-1``. Functions of the parameters (e.g. regression
coefficients) get their standard errors by the delta method
(:meth:`MultivariateFit.delta`).

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

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from apim.engine.control import FitControl
from apim.engine.multivariate.likelihood import MultivariateData, prepare
from apim.engine.multivariate.parameters import (
    Layout,
    Method,
    Parameters,
    TherapistCovariance,
    admissible,
    gradient_of,
    matrices_of,
    natural_names,
    theta_of,
)
from apim.engine.multivariate.start import positive_part, start_values, therapist_start
from apim.engine.optimize import Point, difference_hessian, maximize
from apim.engine.threads import one_blas_thread
from apim.errors import SpecError

__all__ = ["MultivariateFit", "fit_multivariate", "check_therapists", "MultivariateProblem"]


#: The driver's settings for the multivariate model: Newton steps measured relative to
#: the parameters (in the data's units) until they move by less than 1e-10, the
#: log-likelihood's round-off 1e-12 of it; where Newton steps from the start values do
#: not settle, the quasi-Newton search runs to the optimum before Newton steps take over
#: (no handover: a Hessian costs a gradient per parameter here).
CONTROL = FitControl(step_tolerance=1e-10, relative_roundoff=1e-12, hessian="differences",
                     handover_gradient=0.0, max_newton=10)


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


class MultivariateProblem:
    """The multivariate log-likelihood as a problem for
    :func:`apim.engine.optimize.maximize`: Newton on the natural vector, the quasi-Newton
    search over the unconstrained one with the means profiled out (per observation).

    Evaluations are counted in :attr:`calls`; the last few are kept by parameter vector.
    """

    relative_steps = True
    newton_first = True

    def __init__(self, data: MultivariateData, layout: Layout, start: Parameters) -> None:
        self.data, self.layout, self.start = data, layout, start
        self.size = float(data.n_obs)
        self.calls = 0
        self.recent: dict[bytes, Point] = {}
        k = layout.k
        self.rows, self.cols = np.tril_indices(k)
        self.diag = self.rows == self.cols

    def evaluate(self, nat: np.ndarray) -> Point:
        key = np.asarray(nat, float).tobytes()
        point = self.recent.get(key)
        if point is None:
            self.calls += 1
            ev = self.layout.evaluate(self.data, self.layout.unpack(nat))
            point = Point(float(ev.loglik), self.layout.gradient(ev)) \
                if np.isfinite(ev.loglik) else Point(-np.inf, np.full(len(nat), np.nan))
            if len(self.recent) > 4:
                self.recent.pop(next(iter(self.recent)))
            self.recent[key] = point
        return point

    def gradient(self, nat: np.ndarray) -> np.ndarray:
        self.calls += 1
        return gradient_of(self.data, self.layout, nat)

    def hessian(self, nat: np.ndarray, point: Point | None = None) -> np.ndarray:
        """Hessian of -loglik from forward differences of the analytic gradient."""
        at = (point if point is not None else self.evaluate(nat)).score
        return -difference_hessian(self.gradient, nat, at)

    def admissible(self, nat: np.ndarray) -> bool:
        return admissible(self.layout, nat)

    def to_search(self, nat: np.ndarray) -> np.ndarray:
        """The unconstrained vector of ``nat`` (matrices without a Cholesky factor, at a
        boundary, made positive definite first)."""
        p = self.layout.unpack(nat)
        try:
            return theta_of(self.layout, p)
        except np.linalg.LinAlgError:
            sigma_t = None if p.sigma_t is None else positive_part(p.sigma_t, 1e-8)
            return theta_of(self.layout, p._replace(sigma_w=positive_part(p.sigma_w, 1e-8),
                                                    sigma_b=positive_part(p.sigma_b, 1e-8),
                                                    sigma_t=sigma_t))

    def from_search(self, theta: np.ndarray) -> np.ndarray:
        p = matrices_of(self.layout, theta)[0]
        self.calls += 1
        mu = self.layout.evaluate(self.data, p, profile=True).mu
        return self.layout.pack(p._replace(mu=mu))

    def search_objective(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """``-loglik`` per observation (the means profiled out) and its gradient in the
        unconstrained parameters."""
        self.calls += 1
        layout = self.layout
        p, (lw, lb, lt) = matrices_of(layout, theta)
        ev = layout.evaluate(self.data, p, profile=True)
        if not np.isfinite(ev.loglik):
            return np.inf, np.zeros_like(theta)
        parts = [self._chain(ev.grad_w, lw), self._chain(ev.grad_b, lb)]
        if lt is not None and ev.grad_t is not None:
            parts.append(self._chain(ev.grad_t, lt))
        elif layout.therapist == "diagonal" and ev.grad_t is not None \
                and p.sigma_t is not None:
            parts.append(np.diag(ev.grad_t) * np.diag(p.sigma_t))
        if p.phi is not None:
            parts.append(np.array([ev.grad_phi * (1 - p.phi ** 2)]))
        return -ev.loglik / self.size, -np.concatenate(parts) / self.size

    def stationary(self, nat: np.ndarray) -> bool:
        """At a boundary the natural gradient need not vanish: stationary in the
        unconstrained parameters (largest component below ``1e-3 max(1, n / 1000)`` of
        the log-likelihood)."""
        gradient = self.search_objective(self.to_search(nat))[1] * self.size
        return bool(np.max(np.abs(gradient)) < 1e-3 * max(1.0, self.size / 1e3))

    def _chain(self, grad: np.ndarray, sigma_factor: np.ndarray) -> np.ndarray:
        """d loglik / d log-Cholesky parameters from d loglik / d Sigma (symmetric)."""
        rows, cols = self.rows, self.cols
        d_lower = (2 * grad @ sigma_factor)[rows, cols]
        return np.where(self.diag, d_lower * sigma_factor[rows, cols], d_lower)


@one_blas_thread
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
        Newton steps per phase of the driver (:func:`apim.engine.optimize.maximize`).
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
    sw0, sb0 = start_values(data, ddof=1 if reml else 0)
    st0 = None
    if level is not None:
        sb0, st0 = therapist_start(data, sw0, sb0)
        if level == "diagonal":
            st0 = np.diag(np.diag(st0))
    start = Parameters(None, sw0, sb0, 0.2 if ar1 else None, st0)
    problem = MultivariateProblem(data, layout, start)
    # Newton on the natural scale from the moment estimates (exact ML/REML in balanced
    # complete data)
    mu0 = layout.evaluate(data, start, profile=True).mu
    optimum = maximize(problem, layout.pack(start._replace(mu=mu0)), CONTROL.replace(
        max_newton=max_newton))
    nat, hess, converged = optimum.x, -optimum.hessian, optimum.converged
    messages = [optimum.message]
    if not optimum.settled:
        messages.append("estimates at the boundary: SEs from the observed information "
                        "are approximate")
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
    return MultivariateFit(
        names=names, method=method, mu=ev.mu, sigma_w=final.sigma_w, sigma_b=final.sigma_b,
        phi=final.phi, loglik=ev.loglik, n_obs=data.n_obs, n_clusters=data.n_clusters,
        estimate=nat, cov=cov, converged=converged, message="; ".join(messages),
        iterations=problem.calls + 2, seconds=time.perf_counter() - clock,
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
