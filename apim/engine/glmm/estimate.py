"""Maximum likelihood for a dyadic GLMM: the marginal log-likelihood of
:mod:`apim.engine.glmm.quadrature` with its analytic gradient
(:mod:`apim.engine.glmm.gradient`) as a problem for the shared driver
(:func:`apim.engine.optimize.maximize`); the result is a :class:`GLMMFit`.

The search is quasi-Newton (BFGS on the analytic gradient) from the start values to the
driver's hand-over, then Newton steps with one forward-difference Hessian of the
analytic gradient, refined by secant updates; the Hessian for the standard errors is
forward differences of the analytic gradient at the optimum (each evaluation finds every
dyad's mode afresh, warm-started, to 1e-11, so the differences are smooth). With a
therapist level the value and gradient are :mod:`apim.engine.glmm.nested`'s (Laplace
over each therapist's block, whatever ``nagq``). Standard errors come from the
inverse of that observed information over all parameters; those of the natural
covariance parameters and thresholds by the delta method (the Jacobian of the natural
parameters by differences).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(3)
>>> dyad = np.repeat(np.arange(40), 10); role = np.tile([0, 1], 200)
>>> X = np.column_stack([1 - role, role]).astype(float)
>>> u = rng.normal(size=(40, 2))[dyad, role]
>>> y = (rng.logistic(size=400) < X @ [-0.5, 0.5] + u).astype(int)
>>> fit = fit_glmm(GLMMModel(category=y, X=X, dyad=dyad, role=role, nagq=5))
>>> fit.converged, len(fit.coef)
(True, 2)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from apim.engine.control import FitControl
from apim.engine.glmm.gradient import loglik_gradient, threshold_jacobians
from apim.engine.glmm.model import GLMMModel, Prepared, prepare
from apim.engine.glmm.nested import NestedModes, nested_loglik
from apim.engine.glmm.nested import loglik_gradient as nested_gradient
from apim.engine.glmm.quadrature import Modes, marginal_loglik
from apim.engine.glmm.response import interval, interval_terms
from apim.engine.optimize import Point, difference_hessian, maximize
from apim.engine.threads import one_blas_thread

__all__ = ["fit_glmm", "GLMMFit", "GLMMProblem"]

BOUNDARY_SD = 1e-4  # a random-intercept SD below this (latent scale) is at zero


class GLMMProblem:
    """The marginal log-likelihood of a prepared GLMM as a problem for
    :func:`~apim.engine.optimize.maximize`. It keeps the last modes found to warm-start
    the next evaluation and the last Hessian of the Newton steps.

    A Hessian costs one gradient per parameter (forward differences) or two (central),
    so from the start values the quasi-Newton search goes first (``search_first``) and
    Newton steps polish from where it hands over; given a ``rough`` Hessian (the start
    is Laplace's optimum) Newton steps go first. With ``polish_only`` the Hessian at the
    optimum is forward differences (half the gradients of central ones), for a stage
    whose standard errors are not reported (Laplace before quadrature: its Hessian
    starts quadrature's Newton steps)."""

    relative_steps = True

    def __init__(self, prepared: Prepared, rough: np.ndarray | None = None,
                 polish_only: bool = False) -> None:
        self.prepared = prepared
        self.size = float(len(prepared.category))
        self._start: np.ndarray | None = None
        self._moved: tuple[np.ndarray, np.ndarray] | None = None  # x and d modes / d x
        self._rough = rough  # a Hessian for the first Newton steps (e.g. Laplace's)
        self.search_first = rough is None
        self.polish_only = polish_only
        self._polish: np.ndarray | None = None  # the Newton steps' Hessian
        self._last: tuple[np.ndarray, Point | None] = (np.zeros(0), None)  # x, evaluation

    def loglik(self, x: np.ndarray) -> float:
        """The marginal log-likelihood at ``x``."""
        per_dyad, found = self.per_dyad(x)
        return float(per_dyad.sum())

    def per_dyad(self, x: np.ndarray):  # noqa: ANN201 (tuple of arrays and Modes)
        prep = self.prepared
        model = prep.model
        beta, theta, c = model.split(x)
        upper, lower = prep.bounds(theta)
        L = model.cholesky(c)
        if not np.all(np.isfinite(L)) or not np.all(np.isfinite(x)):
            return np.full(prep.clusters.n, -np.inf), None
        with np.errstate(over="ignore", invalid="ignore"):
            found: Modes | NestedModes
            if model.therapist is not None:  # per therapist
                values, found = nested_loglik(prep, x, self._start)
                state = found.state
            else:
                values, found = marginal_loglik(model.link_function, prep.X @ beta, upper,
                                                lower, prep.clusters, L, model.nagq,
                                                self._start)
                state = found.a
        if np.all(np.isfinite(state)):
            self._start, self._moved = state, None
        return values, found

    def _warm_start(self, x: np.ndarray) -> np.ndarray | None:
        """The last modes, moved to first order towards ``x`` where it is near the last
        point (the modes' implicit derivative): one Newton step fewer per dyad."""
        if self._start is None or self._moved is None:
            return self._start
        last_x, derivative = self._moved
        dx = x - last_x
        if not np.max(np.abs(dx), initial=0.0) < 0.1:
            return self._start
        return self._start + derivative @ dx

    def gradient(self, x: np.ndarray) -> np.ndarray:
        """The analytic gradient of the marginal log-likelihood."""
        return self.evaluate(x).score

    def evaluate(self, x: np.ndarray) -> Point:
        """The log-likelihood and its gradient at ``x`` (the last evaluation again if
        ``x`` is its point: the driver re-evaluates where the quasi-Newton search ended)."""
        last_x, last = self._last
        if last is not None and np.array_equal(last_x, x):
            return last
        model = self.prepared.model
        beta, _, c = model.split(x)
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(model.cholesky(c)))
                and np.isfinite(model.therapist_sd(x))):
            return Point(-np.inf, np.zeros(len(x)))
        evaluate = nested_gradient if model.therapist is not None else loglik_gradient
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            try:
                value, grad, a, da = evaluate(self.prepared, x, self._warm_start(x))
            except np.linalg.LinAlgError:
                return Point(-np.inf, np.zeros(len(x)))
        if not (np.isfinite(value) and np.all(np.isfinite(grad))):
            return Point(-np.inf, np.zeros(len(x)))
        self._start = a
        self._moved = (x.copy(), da) if np.all(np.isfinite(da)) else None
        point = Point(value, grad)
        self._last = (x.copy(), point)
        return point

    def hessian(self, x: np.ndarray, point: Point | None = None) -> np.ndarray:
        """Hessian of ``-loglik``: central differences of the analytic gradient; for
        Newton steps (``point`` given) the rough one this problem was given, if any (the
        secant updates refine it), else forward differences from ``point``."""
        if point is not None and self._rough is not None:
            rough, self._rough = self._rough, None
            return rough
        if point is not None:  # for Newton steps: forward differences from the point
            self._polish = difference_hessian(lambda z: -self.gradient(z), x, -point.score)
            return self._polish
        return difference_hessian(lambda z: -self.gradient(z), x)

    def final_hessian(self, x: np.ndarray) -> np.ndarray:
        """The Hessian at the optimum for the standard errors: forward differences of the
        analytic gradient (one gradient per parameter; within about 1e-7 relative of
        central ones, which cost two: the gradient is exact to round-off). With
        ``polish_only`` (a stage whose standard errors are not reported, whose Hessian
        only starts the next stage's Newton steps) the Hessian of the last Newton steps,
        computed where they began, if there was one."""
        if self.polish_only and self._polish is not None:
            return self._polish
        return difference_hessian(lambda z: -self.gradient(z), x, -self.gradient(x))


@dataclass(frozen=True, eq=False)
class GLMMFit:
    """A fitted dyadic GLMM.

    Attributes
    ----------
    model : GLMMModel
    x : unconstrained parameters at the optimum
    loglik : the (Laplace or quadrature) marginal log-likelihood
    natural : beta, thresholds, sd(0), sd(1), cor
    cov_natural : covariance of ``natural`` (delta method; NaN rows for parameters at a
        boundary)
    coef_names : names of beta
    converged, message : the driver's decision and messages
    boundary : one line per estimate at the edge of its space
    modes : each dyad's conditional modes of its two intercepts (u = L a), in the order of
        ``dyads``
    dyads : the dyad labels
    fit_seconds : float
    therapist_modes : each therapist's conditional mode of its intercept (in the order of
        ``therapists``), or None without a therapist level
    therapists : the therapist labels, or None
    """

    model: GLMMModel = field(repr=False)
    x: np.ndarray
    loglik: float
    natural: np.ndarray
    cov_natural: np.ndarray
    converged: bool
    message: str
    boundary: tuple[str, ...]
    modes: np.ndarray = field(repr=False)
    dyads: np.ndarray = field(repr=False)
    fit_seconds: float = 0.0
    therapist_modes: np.ndarray | None = field(default=None, repr=False)
    therapists: np.ndarray | None = field(default=None, repr=False)

    @property
    def integration(self) -> str:
        """How the random effects were integrated out: ``Laplace``, ``adaptive
        Gauss-Hermite (K points per dimension)``, or with a therapist level ``Laplace
        throughout`` (over each therapist's whole block, whatever ``nagq``)."""
        if self.model.therapist is not None:
            return "Laplace throughout (therapist level)"
        if self.model.nagq == 1:
            return "Laplace"
        return f"adaptive Gauss-Hermite ({self.model.nagq} points per dimension)"

    @property
    def n_therapists(self) -> int:
        return 0 if self.therapists is None else len(self.therapists)

    @property
    def therapist_sd(self) -> float:
        """The SD of the therapist intercept (latent scale; 0 without one)."""
        return self.model.therapist_sd(self.x)

    @property
    def therapist_sd_se(self) -> float:
        if self.model.therapist is None:
            return float("nan")
        return float(np.sqrt(self.cov_natural[-1, -1]))

    @property
    def n_obs(self) -> int:
        return len(self.model.category)

    @property
    def n_dyads(self) -> int:
        return len(self.dyads)

    @property
    def n_params(self) -> int:
        return self.model.n_params

    @property
    def coef(self) -> np.ndarray:
        return self.natural[:self.model.X.shape[1]]

    @property
    def cov_coef(self) -> np.ndarray:
        p = self.model.X.shape[1]
        return self.cov_natural[:p, :p]

    @property
    def thresholds(self) -> np.ndarray:
        """(n_sets, K-1) thresholds."""
        p, m = self.model.X.shape[1], self.model.n_thresholds
        return self.natural[p:p + m].reshape(self.model.n_sets, -1)

    @property
    def threshold_se(self) -> np.ndarray:
        p, m = self.model.X.shape[1], self.model.n_thresholds
        return np.sqrt(np.diag(self.cov_natural)[p:p + m]).reshape(self.model.n_sets, -1)

    @property
    def G(self) -> np.ndarray:
        return self.model.covariance(self.model.split(self.x)[2])


def _threshold_start(prepared: Prepared) -> list[np.ndarray]:
    """Per threshold set: the link quantiles of its cumulative proportions, as raw
    (unconstrained) parameters."""
    model = prepared.model
    link = model.link_function
    raw = []
    for s in range(model.n_sets):
        k = prepared.category[prepared.threshold_set == s]
        counts = np.bincount(k, minlength=model.n_categories)[:-1] + 0.5
        cum = np.cumsum(counts) / (len(k) + 0.5 * model.n_categories)
        theta = link.quantile(np.clip(cum, 0.01, 0.99))
        theta = np.maximum.accumulate(theta + 1e-3 * np.arange(len(theta)))
        raw.append(np.r_[theta[0], np.log(np.maximum(np.diff(theta), 1e-2))])
    return raw


def _binary_glm(prepared: Prepared, max_steps: int = 50) -> np.ndarray | None:
    """The fixed effects of a binary model without random intercepts by Newton steps
    (Hessian ``X' diag(-d2) X``, positive definite: the links are log-concave), halved
    where the log-likelihood would fall; None where they do not settle."""
    X, link = prepared.X, prepared.model.link_function
    upper, lower = prepared.bounds(np.zeros((0, 1)))
    beta = np.zeros(X.shape[1])
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        logp, d1, d2 = interval(link, upper, lower, X @ beta)
        for _step in range(max_steps):
            try:
                step = np.linalg.solve(X.T @ (-d2[:, None] * X), X.T @ d1)
            except np.linalg.LinAlgError:
                return None
            for _half in range(30):
                trial = interval(link, upper, lower, X @ (beta + step))
                if trial[0].sum() >= logp.sum() - 1e-9 * abs(logp.sum()):
                    break
                step = step / 2
            beta = beta + step
            logp, d1, d2 = trial
            if np.max(np.abs(step), initial=0.0) < 1e-8:
                return beta if np.all(np.isfinite(beta)) else None
    return None


def _start(prepared: Prepared) -> np.ndarray:
    """Start values: the fixed effects and thresholds of the model without random
    intercepts (a GLM: binary by Newton steps, ordinal by quasi-Newton steps with its
    analytic gradient), the intercepts' SDs 1 and correlation 0 (and a therapist
    intercept's SD 0.5)."""
    from scipy.optimize import minimize

    model = prepared.model
    p = model.X.shape[1]
    if model.family == "binomial":
        beta = _binary_glm(prepared)
        if beta is not None:
            return np.concatenate([beta, np.zeros(model.n_covariance),
                                   np.full(model.n_therapist, np.log(0.5))])
    x0 = np.concatenate([np.zeros(p), *_threshold_start(prepared)])
    cov = np.zeros(model.n_covariance)

    def objective(z: np.ndarray) -> tuple[float, np.ndarray]:
        beta, theta, _ = model.split(np.concatenate([z, cov]))
        upper, lower = prepared.bounds(theta)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            t = interval_terms(model.link_function, upper, lower, prepared.X @ beta)
            Jup, Jlow = threshold_jacobians(prepared, z[p:])
            grad = np.concatenate([prepared.X.T @ t.d1,
                                   (t.up[:, None] * Jup + t.low[:, None] * Jlow).sum(axis=0)])
        value = float(t.logp.sum())
        if not (np.isfinite(value) and np.all(np.isfinite(grad))):
            return np.inf, np.zeros_like(z)
        return -value / len(t.logp), -grad / len(t.logp)

    result = minimize(objective, x0, jac=True, method="BFGS", options={"maxiter": 200})
    z = result.x if np.all(np.isfinite(result.x)) and result.fun <= objective(x0)[0] else x0
    return np.concatenate([z, cov, np.full(model.n_therapist, np.log(0.5))])


def _natural_jacobian(model: GLMMModel, x: np.ndarray) -> np.ndarray:
    """d natural / d x by central differences (the map is cheap and smooth)."""
    base = model.natural(x)
    J = np.empty((len(base), len(x)))
    for j in range(len(x)):
        step = 1e-6 * max(1.0, abs(x[j]))
        e = np.zeros(len(x))
        e[j] = step
        J[:, j] = (model.natural(x + e) - model.natural(x - e)) / (2 * step)
    return J


def _boundary(model: GLMMModel, x: np.ndarray, control: FitControl
              ) -> tuple[tuple[str, ...], np.ndarray]:
    """Lines for estimates at the edge (an SD at zero, a correlation at +-1) and which
    covariance parameters (of ``x``) are then not identified."""
    c = model.split(x)[2]
    G = model.covariance(c)
    sd = np.sqrt(np.diag(G))
    lines = []
    free = np.ones(len(x), dtype=bool)
    start = model.X.shape[1] + model.n_thresholds
    if model.therapist is not None and model.therapist_sd(x) < BOUNDARY_SD:
        lines.append("therapist intercept sd at zero")
        free[-1] = False
    names = ("member 0", "member 1")
    for r in range(2):
        if sd[r] < BOUNDARY_SD:
            lines.append(f"random intercept sd({names[r]}) at zero")
    if model.random == "unstructured":
        if sd[0] < BOUNDARY_SD:
            free[start:start + 2] = False  # L11 and L21 (the correlation) not identified
        if np.exp(c[2]) < BOUNDARY_SD * max(sd[1], 1.0):
            free[start + 2] = False
            if sd[0] >= BOUNDARY_SD and sd[1] >= BOUNDARY_SD:
                lines.append("random intercept correlation at "
                             f"{'+' if c[1] > 0 else '-'}1 (G singular)")
    else:
        if sd[0] < BOUNDARY_SD:
            free[start:start + model.n_covariance] = False
        elif abs(np.tanh(c[1])) > 1 - control.correlation_tolerance:
            free[start + 1] = False
            lines.append(f"random intercept correlation at {'+' if c[1] > 0 else '-'}1")
    return tuple(lines), free


@one_blas_thread
def fit_glmm(model: GLMMModel, control: FitControl | None = None) -> GLMMFit:
    """Fit ``model`` by maximum likelihood (Laplace for ``nagq = 1``, else adaptive
    Gauss-Hermite quadrature with ``nagq`` points per dimension).

    Returns
    -------
    GLMMFit
    """
    control = control or FitControl()
    started = time.perf_counter()
    if model.therapist is not None and model.nagq > 1:
        model = replace(model, nagq=1)  # Laplace throughout over each therapist's block
    prepared = prepare(model)
    start = _start(prepared)
    rough = None
    if model.nagq > 1:  # quadrature's optimum is close to Laplace's: start Newton there
        laplace = GLMMProblem(replace(prepared, model=replace(model, nagq=1)),
                              polish_only=True)
        first = maximize(laplace, start, control)
        start, rough = first.x, first.hessian
    problem = GLMMProblem(prepared, rough)
    optimum = maximize(problem, start, control)
    x = optimum.x
    boundary, free = _boundary(model, x, control)
    hess = optimum.hessian if free.all() else problem.hessian(x)
    cov_x = np.full((len(x), len(x)), np.nan)
    sub = hess[np.ix_(free, free)]
    try:
        cov_x[np.ix_(free, free)] = np.linalg.inv(sub)
    except np.linalg.LinAlgError:
        pass
    J = _natural_jacobian(model, x)
    with np.errstate(invalid="ignore"):
        cov_natural = J @ np.where(np.isnan(cov_x), 0.0, cov_x) @ J.T
    unidentified = np.any(np.abs(J[:, ~free]) > 1e-8, axis=1) if (~free).any() \
        else np.zeros(len(J), dtype=bool)
    # an SD at zero has no SE, and the correlation of an intercept without variance none
    natural = model.natural(x)
    sd0 = model.X.shape[1] + model.n_thresholds  # sd(0), sd(1), cor of the dyads
    at_zero = natural[sd0:sd0 + 2] < BOUNDARY_SD
    if at_zero.any():
        unidentified[sd0:sd0 + 2] |= at_zero
        unidentified[sd0 + 2] = True
    if model.therapist is not None and natural[-1] < BOUNDARY_SD:
        unidentified[-1] = True
    cov_natural[unidentified, :] = np.nan
    cov_natural[:, unidentified] = np.nan
    if np.isnan(cov_x[np.ix_(free, free)]).any():
        cov_natural[:] = np.nan
    values, found = problem.per_dyad(x)
    L = model.cholesky(model.split(x)[2])
    modes = found.a @ L.T if found is not None else np.full((prepared.clusters.n, 2), np.nan)
    therapist_modes = None
    if prepared.therapists is not None:
        therapist_modes = (model.therapist_sd(x) * found.a0 if found is not None
                           else np.full(len(prepared.therapists), np.nan))
    converged = optimum.converged and (found is not None and found.converged)
    return GLMMFit(model=model, x=x, loglik=float(values.sum()), natural=natural,
                   cov_natural=cov_natural, converged=converged, message=optimum.message,
                   boundary=boundary, modes=modes, dyads=prepared.dyads,
                   fit_seconds=time.perf_counter() - started,
                   therapist_modes=therapist_modes, therapists=prepared.therapists)
