"""Fitting the dynamic model by exact ML (:mod:`apim.engine.dynamic.kalman`).

The data are standardised per variable first (so that steps and tolerances mean the same
in any units) and the estimates mapped back. The quasi-Newton search of the shared driver
(:func:`apim.engine.optimize.quasi_newton`) runs over the unconstrained parameters
(``Phi`` as it is, log-Cholesky factors of ``Sigma_W``, ``Sigma_B`` and a free ``P0``; the
means profiled out by GLS) from moment start values; then Newton steps of the shared
driver (:func:`apim.engine.optimize.newton`) on the natural scale polish the optimum.
**Gradients are analytic**: the adjoint of the filter
(:func:`apim.engine.dynamic.gradient.loglik_gradient`), mapped to the unconstrained and the
natural parameters by :class:`~apim.engine.dynamic.parameters.DynamicLayout`. **The
observed information of the standard errors is numerical**: forward differences of the
analytic gradient in the natural parameters (means included) at the optimum (one pass of
the filter and its adjoint over the perturbed ``Phi``, ``Sigma_W`` and ``P0``; the means
and ``Sigma_B`` on that filter's sums, :meth:`_Problem.hessian`). The quasi-Newton search
stops early (:data:`SEARCH_TOLERANCE`) and Newton steps on that information finish.
Where they cannot (a singular ``Sigma_T``: the natural optimum lies outside the positive
semi-definite matrices) Newton steps run in the search's coordinates, where ``Sigma_T``'s
Cholesky factor is not logged and its boundary an ordinary point (:class:`_SearchSteps`;
at a low-rank unstructured ``Sigma_T`` with the factor's surplus columns fixed at zero,
:func:`_reduced_rank`); where those do not settle either, the search resumes to
``CONTROL.gradient_tolerance``.

Examples
--------
>>> rng = np.random.default_rng(4)
>>> n, t = 60, 6
>>> u = rng.normal(size=(n, 1, 2))
>>> w = np.zeros((n, t, 2)); w[:, 0] = rng.normal(size=(n, 2))
>>> for s in range(1, t):
...     w[:, s] = 0.4 * w[:, s - 1] + rng.normal(size=(n, 2))
>>> fit = fit_dynamic(u + w, names=("x", "y"), initial="stationary")
>>> fit.converged, fit.phi.shape
(True, (2, 2))
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from apim.engine.control import FitControl
from apim.engine.dynamic.gradient import (
    MatrixGradient,
    between_gradient_many,
    gradient_many,
    loglik_gradient,
)
from apim.engine.dynamic.kalman import (
    DynamicData,
    TherapistLevel,
    evaluate_many,
    prepare_dynamic,
    run_filter,
    spectral_radius,
    therapist_level,
)
from apim.engine.dynamic.parameters import (
    DynamicLayout,
    DynamicParameters,
    Initial,
    TherapistCovariance,
)
from apim.engine.multivariate.parameters import (
    cholesky_factor,
    tril,
    unvech,
    vech_gradient,
)
from apim.engine.multivariate.start import positive_part
from apim.engine.optimize import Point, newton, quasi_newton
from apim.engine.optimize import _Steps as Steps  # newton's result
from apim.engine.threads import one_blas_thread
from apim.errors import DataError

__all__ = ["DynamicFit", "fit_dynamic"]

CONTROL = FitControl(step_tolerance=1e-8, relative_roundoff=1e-12, max_newton=4,
                     hessian_refresh=np.inf, gradient_tolerance=1e-7)
#: The quasi-Newton search stops at this per-observation gradient, Newton steps on the
#: batched information finish (to ``CONTROL.gradient_tolerance`` if they cannot)
SEARCH_TOLERANCE = 1e-4
#: Newton steps in the search's coordinates (a singular ``Sigma_T``) start farther off
#: (the natural ones did not settle), with secant updates: up to eight
SEARCH_STEPS_CONTROL = dataclasses.replace(CONTROL, max_newton=8)
_CHUNK = 256        # parameter sets per pass of the filter
_GRADIENT_CHUNK = 64  # ... of the filter and its adjoint (which keeps every session)
_KEPT_BYTES = 2e8    # at most this much kept per pass of the adjoint
#: Under ``initial="stationary"`` the likelihood cannot leave the stable region; a largest
#: |eigenvalue| of Phi beyond this is reported as a sign of a non-stationary process.
NEAR_UNIT = 0.95


@dataclass(frozen=True, eq=False)
class DynamicFit:
    """A fitted dynamic model (on the data's scale).

    Attributes
    ----------
    names : the K variables
    initial : {"free", "stationary"}
    mu, phi, sigma_w, sigma_b, p0 : means, lagged coefficients (``phi[to, from]``),
        innovation covariance, between (random-intercept) covariance (of dyads within
        therapists with a therapist level), covariance of the within part at the first
        session
    loglik : float
    n_obs, n_dyads, n_sessions : counts (sessions of the grid)
    layout : where each natural parameter sits
    estimate, cov : natural parameters and their covariance (observed information)
    converged, message, seconds
    boundary : estimates at the edge of the parameter space
    sigma_t : the therapists' covariance (None without a therapist level)
    n_therapists : therapists (0 without a therapist level)
    """

    names: tuple[str, ...]
    initial: Initial
    mu: np.ndarray
    phi: np.ndarray
    sigma_w: np.ndarray
    sigma_b: np.ndarray
    p0: np.ndarray
    loglik: float
    n_obs: int
    n_dyads: int
    n_sessions: int
    layout: DynamicLayout = field(repr=False)
    estimate: np.ndarray = field(repr=False)
    cov: np.ndarray = field(repr=False)
    converged: bool = True
    message: str = ""
    seconds: float = 0.0
    boundary: tuple[str, ...] = ()
    sigma_t: np.ndarray | None = None
    n_therapists: int = 0

    @property
    def parameter_names(self) -> list[str]:
        return self.layout.names(self.names)

    @property
    def n_params(self) -> int:
        return len(self.estimate)

    @property
    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of ``Phi``, largest modulus first (complex where they are)."""
        vals = np.linalg.eigvals(self.phi)
        return vals[np.argsort(-np.abs(vals), kind="stable")]

    def delta(self, func: Callable[[DynamicParameters], np.ndarray]
              ) -> tuple[np.ndarray, np.ndarray]:
        """Estimate and covariance of ``func(parameters)`` by the delta method (central
        differences for its Jacobian)."""
        value = np.atleast_1d(np.asarray(func(self.layout.unpack(self.estimate)), float))
        jac = np.zeros((len(value), self.n_params))
        for j in range(self.n_params):
            step = 1e-6 * max(1.0, abs(self.estimate[j]))
            e = np.zeros(self.n_params)
            e[j] = step
            up = np.atleast_1d(func(self.layout.unpack(self.estimate + e)))
            down = np.atleast_1d(func(self.layout.unpack(self.estimate - e)))
            jac[:, j] = (up - down) / (2 * step)
        return value, jac @ self.cov @ jac.T


class _Problem:
    """The standardised log-likelihood for the shared driver: natural coordinates for
    the Newton steps, unconstrained ones for the quasi-Newton search; values by
    :func:`evaluate_many`, gradients by :func:`gradient_many` (one pass of the filter
    and its adjoint, many parameter sets at once for the information)."""

    relative_steps = True

    def __init__(self, data: DynamicData, layout: DynamicLayout,
                 level: TherapistLevel | None = None) -> None:
        self.data, self.layout, self.level = data, layout, level
        self.size = float(data.n_obs)
        self._last: tuple[bytes, tuple[float, np.ndarray], np.ndarray] | None = None

    def loglik_many(self, nats: np.ndarray) -> np.ndarray:
        """Log-likelihoods at the rows of ``nats`` (means given)."""
        out = np.full(len(nats), -np.inf)
        for lo in range(0, len(nats), _CHUNK):
            part = [self.layout.unpack(x) for x in nats[lo:lo + _CHUNK]]
            out[lo:lo + _CHUNK] = self._many(part, profile=False)[0]
        return out

    def search_many(self, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log-likelihoods (means profiled) and the means at the rows of ``thetas``."""
        return self._many([self.layout.from_search(x) for x in thetas], profile=True)

    def _many(self, part: list[DynamicParameters], profile: bool
              ) -> tuple[np.ndarray, np.ndarray]:
        stack, finite = _stack(part, self.data.k)
        loglik, mu, _ = evaluate_many(self.data, *stack,
                                      None if profile else np.array([p.mu for p in part]),
                                      self.level, _sigma_t(part))
        return np.where(finite, loglik, -np.inf), mu

    def loglik(self, nat: np.ndarray) -> float:
        return float(self.loglik_many(nat[None])[0])

    def gradient_many(self, nats: np.ndarray) -> np.ndarray:
        """Analytic gradients in the natural parameters (means given) at the rows of
        ``nats`` (:func:`gradient_many`, in chunks); NaN where not admissible."""
        out = np.full(nats.shape, np.nan)
        # the adjoint keeps three K-vectors per dyad and session of each set
        per_set = 24.0 * self.data.k * float(self.data.active.sum())
        chunk = int(max(1, min(_GRADIENT_CHUNK, _KEPT_BYTES // per_set)))
        for lo in range(0, len(nats), chunk):
            part = [self.layout.unpack(x) for x in nats[lo:lo + chunk]]
            stack, finite = _stack(part, self.data.k)
            g = gradient_many(self.data, *stack, np.array([p.mu for p in part]),
                              self.level, _sigma_t(part))
            values = np.asarray(g.loglik)
            for j, p in enumerate(part):
                if finite[j] and np.isfinite(values[j]):
                    out[lo + j] = self.layout.natural_gradient(p, _bar(g, j))
        return out

    def gradient(self, nat: np.ndarray) -> tuple[float, np.ndarray]:
        """The log-likelihood (means given) and its analytic gradient in the natural
        parameters (:func:`loglik_gradient`); ``-inf`` and NaN where not admissible."""
        p = self.layout.unpack(nat)
        if not np.all(np.isfinite(p.p0)):
            return -np.inf, np.full(len(nat), np.nan)
        g = loglik_gradient(self.data, p.phi, p.sigma_w, p.sigma_b, p.p0, p.mu,
                            self.level, p.sigma_t)
        if not np.isfinite(g.loglik):
            return -np.inf, np.full(len(nat), np.nan)
        return float(g.loglik), self.layout.natural_gradient(p, _bar(g))

    def score(self, nat: np.ndarray) -> np.ndarray:
        return self.gradient(nat)[1]

    def evaluate(self, nat: np.ndarray) -> Point:
        value, score = self.gradient(nat)
        if not np.isfinite(value):
            return Point(-np.inf, np.full(len(nat), np.nan))
        return Point(value, score)

    def hessian(self, nat: np.ndarray, point: Point | None = None) -> np.ndarray:
        """Hessian of ``-loglik``: forward differences of the analytic gradient (step
        ``1e-7 max(1, |x_j|)``, as :func:`apim.engine.optimize.difference_hessian` with
        a gradient at ``x``); symmetrised. The columns of ``Phi``, ``Sigma_W`` and ``P0``
        take the filter and its adjoint, in one pass over as many parameter sets; those
        of the means and ``Sigma_B``, which leave the filter as it is, only the
        integration of the random intercepts on the filter's sums at ``nat``
        (:func:`between_gradient_many`) and, off their own block, the symmetry. (Against
        central differences of the whole gradient, 2p passes, the SEs of the seed design
        differ by 1e-6 relative.)"""
        layout = self.layout
        steps = 1e-7 * np.maximum(1.0, np.abs(nat))
        start_sb = layout.n_means + layout.n_phi + layout.h
        cheap = np.r_[np.arange(layout.n_means), np.arange(start_sb, start_sb + layout.h),
                      np.arange(layout.therapist_start, layout.n_natural)]
        heavy = np.setdiff1d(np.arange(len(nat)), cheap)
        hess = np.zeros((len(nat), len(nat)))
        grads = -self.gradient_many(np.vstack([nat, nat + np.diag(steps)[heavy]]))
        hess[:, heavy] = ((grads[1:] - grads[0]) / steps[heavy, None]).T
        p = layout.unpack(nat)
        if not np.all(np.isfinite(p.p0)):
            return np.full_like(hess, np.nan)
        totals, _ = run_filter(self.data, p.phi[None], p.sigma_w[None], p.p0[None])
        moved = [layout.unpack(x) for x in np.vstack([nat, nat + np.diag(steps)[cheap]])]
        _, bar_mu, bar_sb, bar_st = between_gradient_many(
            self.data, totals, np.array([q.sigma_b for q in moved]),
            np.array([q.mu for q in moved]), self.level, _sigma_t(moved))
        blocks = [bar_mu, np.array([vech_gradient(b) for b in bar_sb])]
        if bar_st is not None:
            blocks.append(np.array([np.diag(b) if layout.therapist == "diagonal"
                                    else vech_gradient(b) for b in bar_st]))
        cheap_grads = -np.hstack(blocks)
        hess[np.ix_(cheap, cheap)] = ((cheap_grads[1:] - cheap_grads[0])
                                      / steps[cheap, None]).T
        hess[np.ix_(heavy, cheap)] = hess[np.ix_(cheap, heavy)].T
        return (hess + hess.T) / 2

    def admissible(self, nat: np.ndarray) -> bool:
        p = self.layout.unpack(nat)
        if not np.all(np.isfinite(p.p0)):
            return False
        semi = (p.sigma_b, p.p0) + (() if p.sigma_t is None else (p.sigma_t,))
        return all(np.linalg.eigvalsh(m).min() >= -1e-12 for m in semi) \
            and np.linalg.eigvalsh(p.sigma_w).min() > 0

    def search_objective(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """``-loglik`` per observation (means profiled by GLS) and its analytic gradient
        in the unconstrained parameters (at the profiled means the means' own derivative
        vanishes, so the gradient is that with the means held there); one pass of the
        filter and its adjoint, the last point remembered (the driver asks for its
        start twice)."""
        key = theta.tobytes()
        if self._last is not None and self._last[0] == key:
            return self._last[1][0], self._last[1][1].copy()
        p = self.layout.from_search(theta)
        mu = np.zeros(self.layout.n_means)
        if not np.all(np.isfinite(p.p0)):
            result: tuple[float, np.ndarray] = (np.inf, np.zeros_like(theta))
        else:
            g = loglik_gradient(self.data, p.phi, p.sigma_w, p.sigma_b, p.p0, None,
                                self.level, p.sigma_t)
            if not np.isfinite(g.loglik):
                result = (np.inf, np.zeros_like(theta))
            else:
                grad = self.layout.search_gradient(theta, _bar(g))
                result = (-float(g.loglik) / self.size, -grad / self.size)
                mu = g.means
        self._last = (key, result, mu)
        return result[0], result[1].copy()

    def natural(self, theta: np.ndarray) -> np.ndarray:
        self.search_objective(theta)
        assert self._last is not None
        return self.layout.pack(self.layout.from_search(theta)._replace(mu=self._last[2]))


def _stack(part: list[DynamicParameters], k: int
           ) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """The matrices of parameter sets stacked for the filter (``phi``, ``sigma_w``,
    ``sigma_b``, ``p0``) and which sets have a finite ``P0`` (the others get the
    identity, their value is ``-inf``)."""
    finite = np.array([bool(np.all(np.isfinite(p.p0))) for p in part])
    return (np.array([p.phi for p in part]), np.array([p.sigma_w for p in part]),
            np.array([p.sigma_b for p in part]),
            np.array([p.p0 if ok else np.eye(k) for p, ok in zip(part, finite)])), finite


def _sigma_t(part: Sequence[DynamicParameters]) -> np.ndarray | None:
    """The therapists' covariances of parameter sets stacked (None without the level)."""
    if part[0].sigma_t is None:
        return None
    return np.array([p.sigma_t for p in part])


def _bar(g: MatrixGradient, j: int | None = None) -> DynamicParameters:
    """The derivatives of :func:`loglik_gradient` (or set ``j`` of
    :func:`gradient_many`) as matrices of the parameters."""
    if j is None:
        return DynamicParameters(g.mu, g.phi, g.sigma_w, g.sigma_b, g.p0, g.sigma_t)
    return DynamicParameters(g.mu[j], g.phi[j], g.sigma_w[j], g.sigma_b[j], g.p0[j],
                             None if g.sigma_t is None else g.sigma_t[j])


def _start(y: np.ndarray, layout: DynamicLayout) -> DynamicParameters:
    """Moment start values: within and between covariances from person means, ``Phi``
    from the person-mean-centred lag-1 regression (shrunk inside the stable region)."""
    k = y.shape[2]
    with np.errstate(invalid="ignore", divide="ignore"):
        counts = (~np.isnan(y)).sum(axis=1)
        means = np.where(counts > 0, np.nansum(y, axis=1) / np.maximum(counts, 1), np.nan)
    dev = y - means[:, None, :]
    flat = dev.reshape(-1, k)
    both = ~np.isnan(flat)
    filled = np.where(both, flat, 0.0)
    pairs = both.T.astype(float) @ both.astype(float)
    gamma = positive_part((filled.T @ filled) / np.maximum(pairs - len(y), 1.0), 1e-2)
    n_bar = max(float(np.mean(both.sum(axis=0))) / len(y), 1.0)
    sb = np.ma.cov(np.ma.masked_invalid(means), rowvar=False, allow_masked=True).filled(0.0)
    sb = positive_part(np.atleast_2d(sb) - gamma / n_bar, 0.05)
    now, before = dev[:, 1:].reshape(-1, k), dev[:, :-1].reshape(-1, k)
    rows = ~np.isnan(now).any(axis=1) & ~np.isnan(before).any(axis=1)
    phi = np.zeros((k, k))
    if rows.sum() > 2 * k:
        phi = np.linalg.lstsq(before[rows], now[rows], rcond=None)[0].T
    phi = layout.phi_of(np.array([phi[r, c] for r, c in layout.phi_index]))
    radius = spectral_radius(phi)
    if radius > 0.8:
        phi = phi * 0.8 / radius
    sw = positive_part(gamma - phi @ gamma @ phi.T, 0.05)
    if layout.therapist is None:
        return DynamicParameters(np.zeros(layout.n_means), phi, sw, sb, gamma)
    # a fifth of the person-level covariance to the therapists (both stay positive
    # definite)
    st = np.diag(np.diag(sb)) / 5 if layout.therapist == "diagonal" else sb / 5
    return DynamicParameters(np.zeros(layout.n_means), phi, sw, 0.8 * sb, gamma, st)


@one_blas_thread
def fit_dynamic(y: np.ndarray, names: Sequence[str] | None = None,
                initial: Initial = "free", free_phi: np.ndarray | None = None,
                equal_phi: Sequence[tuple[tuple[int, int], tuple[int, int]]] = (),
                therapist: np.ndarray | None = None,
                therapist_covariance: TherapistCovariance = "unstructured",
                covariates: np.ndarray | None = None) -> DynamicFit:
    """Fit the dynamic model to ``y`` (dyads, sessions of the grid, K; NaN missing).

    Parameters
    ----------
    y : array (dyads, sessions, K)
        Session ``j`` of every dyad is the same session of the study (the grid starts at
        the study's first session); NaN for a missing rating or session.
    names : the K variable names
    initial : {"free", "stationary"}
        Covariance of the within part at the first session: its own free matrix (as
        the RI-CLPM), or the stationary covariance implied by ``Phi`` and ``Sigma_W``.
    free_phi : (K, K) bool array, optional
        The entries of ``Phi`` that are estimated (others fixed at zero).
    equal_phi : pairs of ``(to, from)`` entries constrained equal
    therapist : array (dyads,), optional
        The therapist of each dyad (any labels): a therapist level, ``v_j ~ N(0,
        Sigma_T)`` added to every session of the therapist's dyads.
    therapist_covariance : {"unstructured", "diagonal"}
        Structure of ``Sigma_T``.
    covariates : array (dyads, c), optional
        Dyad-level covariates of the means: ``mu_i = B' (1, c_i)``, the means ``mu``
        the K x (1 + c) coefficients ``B[variable, covariate]`` (profiled by GLS).

    Returns
    -------
    DynamicFit
    """
    clock = time.perf_counter()
    y = np.asarray(y, float)
    k = y.shape[2]
    names = tuple(names) if names is not None else tuple(f"v{j}" for j in range(k))
    seen = ~np.isnan(y)
    center = np.array([y[..., j][seen[..., j]].mean() for j in range(k)])
    scale = np.array([y[..., j][seen[..., j]].std() for j in range(k)])
    if np.any(~(scale > 0)):
        bad = names[int(np.flatnonzero(~(scale > 0))[0])]
        raise DataError(f"{bad} does not vary: the dynamic model needs variation in "
                        "every variable")
    z = (y - center) / scale
    data = prepare_dynamic(z, design=None if covariates is None else np.column_stack(
        [np.ones(len(y)), np.asarray(covariates, float)]))
    layout = DynamicLayout(k, initial,
                           None if free_phi is None else tuple(map(tuple, np.asarray(
                               free_phi, bool).tolist())),
                           tuple(equal_phi),
                           None if therapist is None else therapist_covariance,
                           0 if covariates is None else np.shape(covariates)[1])
    level = None if therapist is None else therapist_level(data, np.asarray(therapist))
    problem = _Problem(data, layout, level)
    start = _start(z, layout)
    theta, messages = quasi_newton(problem.search_objective, layout.to_search(start),
                                   problem.size, CONTROL, SEARCH_TOLERANCE)
    steps = _polish(problem, theta)
    if not steps.settled and steps.decrement >= 1e-6 and level is not None:
        # Sigma_T singular (few therapists): Newton steps in the search's coordinates
        steps, theta = _polish_search(problem, theta, steps)
        if steps.settled:
            messages.append("Newton steps in the search's coordinates (Sigma_T singular)")
    if not steps.settled and steps.decrement >= 1e-6:     # search on, to the end
        theta, more = quasi_newton(problem.search_objective, theta if level is not None
                                   else layout.to_search(_admissible_part(layout.unpack(
                                       steps.x))), problem.size, CONTROL,
                                   CONTROL.gradient_tolerance)
        messages += more
        steps = _polish(problem, theta)
    nat, point, hess, decrement = steps.x, steps.point, steps.hessian, steps.decrement
    # at a boundary (a singular Sigma_B) Newton steps cannot settle: stationary in the
    # unconstrained parameters instead
    largest = float(np.max(np.abs(problem.search_objective(
        layout.to_search(_admissible_part(layout.unpack(nat))))[1]))) * problem.size
    converged = bool(np.isfinite(point.loglik) and (
        steps.settled or decrement < 1e-6 or largest < 1e-3 * max(1.0, problem.size / 1e3)))
    if not converged:
        messages.append(f"Newton decrement {decrement:.2e}, largest gradient component "
                        f"{largest:.2e}")
    try:
        cov_std = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        cov_std = np.linalg.pinv(hess)
    jac, offset = _unstandardise(layout, center, scale)
    estimate = jac @ nat + offset
    p = layout.unpack(estimate)
    loglik = float(point.loglik - np.sum(seen.sum(axis=(0, 1)) * np.log(scale)))
    return DynamicFit(
        names=names, initial=initial, mu=p.mu, phi=p.phi, sigma_w=p.sigma_w,
        sigma_b=p.sigma_b, p0=p.p0, loglik=loglik, n_obs=data.n_obs,
        n_dyads=data.n_dyads, n_sessions=data.n_sessions, layout=layout,
        estimate=estimate, cov=jac @ cov_std @ jac.T, converged=converged,
        message="; ".join(messages), seconds=time.perf_counter() - clock,
        boundary=_boundary(p, initial), sigma_t=p.sigma_t,
        n_therapists=0 if level is None else level.n_therapists)


class _Polished(NamedTuple):
    x: np.ndarray
    point: Point
    hessian: np.ndarray
    settled: bool
    decrement: float
    start_hessian: np.ndarray  # the information where the steps started


def _polish(problem: _Problem, theta: np.ndarray) -> _Polished:
    """Newton steps on the natural scale from the search's ``theta`` (secant updates of
    the information at the start); the information at the point they reach (computed
    again if they moved)."""
    nat = problem.natural(theta)
    point = problem.evaluate(nat)
    hess = problem.hessian(nat)
    noise = CONTROL.relative_roundoff * max(1.0, abs(point.loglik))
    steps = newton(problem, nat, point, hess, CONTROL, noise)
    start = hess
    if np.any(steps.x != nat):
        hess = problem.hessian(steps.x)
    return _Polished(steps.x, steps.point, hess, steps.settled, float(steps.decrement),
                     start)


class _SearchSteps:
    """The profiled log-likelihood in the search's coordinates for the shared driver's
    :func:`newton`. Where ``Sigma_T`` is singular its natural parameters' optimum lies
    outside the positive semi-definite matrices and Newton steps there cannot settle; in
    the Cholesky factor of ``Sigma_T`` (not logged) the same optimum is an ordinary one
    (a zero diagonal entry of the factor with positive curvature), so Newton steps settle
    there as in the interior."""

    relative_steps = True

    def __init__(self, problem: _Problem) -> None:
        self.problem, self.size = problem, problem.size

    def evaluate(self, theta: np.ndarray) -> Point:
        value, grad = self.problem.search_objective(theta)
        if not np.isfinite(value):
            return Point(-np.inf, np.full(len(theta), np.nan))
        return Point(-value * self.size, -grad * self.size)

    def hessian(self, theta: np.ndarray, point: Point | None = None,
                natural: np.ndarray | None = None) -> np.ndarray:
        """Hessian of ``-loglik`` (means profiled) in ``theta`` from that in the natural
        parameters (``natural``, at ``problem.natural(theta)``, computed if not given):
        the means' block profiled out (Schur complement), then ``J'HJ`` plus the
        gradient times the second derivatives of the natural parameters in ``theta``
        (:func:`_factor_curvature`; ``J`` by central differences of that cheap map)."""
        problem, layout = self.problem, self.problem.layout
        k, q = layout.k, layout.n_means  # the means (and covariates' coefficients) profiled
        nat = problem.natural(theta)
        full = problem.hessian(nat) if natural is None else natural
        hess = full[q:, q:] - full[q:, :q] @ np.linalg.solve(full[:q, :q], full[:q, q:])
        grad = -problem.gradient(nat)[1][q:]

        def natural_of(t: np.ndarray) -> np.ndarray:
            return layout.pack(layout.from_search(t))[q:]

        n, step = len(theta), 1e-6
        eye = np.eye(n)
        jac = np.array([(natural_of(theta + step * e) - natural_of(theta - step * e))
                        / (2 * step) for e in eye]).T
        out = jac.T @ hess @ jac
        m, h = layout.n_phi, layout.h
        starts = [m, m + h] + ([m + 2 * h] if layout.initial == "free" else [])
        for a in starts:  # log-Cholesky factors
            block = slice(a, a + h)
            out[block, block] += _factor_curvature(theta[block], grad[block], k)
        if layout.therapist == "diagonal":  # Sigma_T = diag(s^2)
            tail = slice(n - layout.n_therapist, n)
            out[tail, tail] += 2 * np.diag(grad[-layout.n_therapist:])
        elif layout.therapist is not None:  # a Cholesky factor, not logged
            tail = slice(n - h, n)
            out[tail, tail] += _factor_curvature(theta[tail], grad[-h:], k, log=False)
        return out


def _factor_curvature(theta: np.ndarray, grad: np.ndarray, k: int, log: bool = True
                      ) -> np.ndarray:
    """Second derivatives of ``grad . vech(L L')`` in the (log-, with ``log``) Cholesky
    vector ``theta`` of ``L``: with ``G`` the symmetric matrix of ``grad`` (``tr(G L L')
    = grad . vech(L L')``), ``2 G[r, s]`` between entries ``(r, c)`` and ``(s, c)`` of one
    column of ``L``, times ``dL/dtheta`` (``L_jj`` on a logged diagonal), which adds
    ``(2 G L)_jj L_jj`` on that diagonal."""
    rows, cols = tril(k)
    g = unvech(grad, k)
    g = (g + np.diag(np.diag(g))) / 2
    lower = cholesky_factor(theta, k) if log else unvech(theta, k) * np.tri(k)
    out = 2 * g[np.ix_(rows, rows)] * (cols[:, None] == cols[None, :])
    if not log:
        return out
    diagonal = rows == cols
    scale = np.where(diagonal, lower[rows, cols], 1.0)
    out *= np.outer(scale, scale)
    out[np.flatnonzero(diagonal), np.flatnonzero(diagonal)] += \
        (2 * g @ lower)[rows[diagonal], cols[diagonal]] * lower[rows[diagonal], cols[diagonal]]
    return out


class _FixedZero:
    """:class:`_SearchSteps` with some coordinates held at zero (the others ``x``)."""

    relative_steps = True

    def __init__(self, full: _SearchSteps, free: np.ndarray, n: int) -> None:
        self.full, self.free, self.n, self.size = full, free, n, full.size

    def expand(self, x: np.ndarray) -> np.ndarray:
        theta = np.zeros(self.n)
        theta[self.free] = x
        return theta

    def evaluate(self, x: np.ndarray) -> Point:
        point = self.full.evaluate(self.expand(x))
        return Point(point.loglik, point.score[self.free])

    def hessian(self, x: np.ndarray, point: Point | None = None) -> np.ndarray:
        return self.full.hessian(self.expand(x))[np.ix_(self.free, self.free)]


def _reduced_rank(full: _SearchSteps, steps: Steps) -> Steps:
    """Where Newton steps in the search's coordinates do not settle at an unstructured
    ``Sigma_T`` of low rank (a nearly flat direction into the cone, along which they
    converge only linearly): the Cholesky factor's columns beyond the rank ``r`` (the
    eigenvalues above 1% of the largest) fixed at zero, Newton steps on the rest; kept
    if they settle, the log-likelihood is not lower and no direction into the cone gains
    (the gradient in ``Sigma_T`` negative semi-definite on its null space: the KKT
    condition), else ``steps`` as they were."""
    problem, layout = full.problem, full.problem.layout
    k, n = layout.k, len(steps.x)
    sigma_t = layout.from_search(steps.x).sigma_t
    assert sigma_t is not None
    values = np.linalg.eigvalsh(sigma_t)
    rank = int(np.sum(values > 1e-2 * values.max()))
    if rank == k:
        return steps
    rows, cols = tril(k)
    free = np.ones(n, bool)
    free[n - layout.h + np.flatnonzero(cols >= rank)] = False
    reduced = _FixedZero(full, free, n)
    x = steps.x[free]
    point = reduced.evaluate(x)
    try:
        hess = reduced.hessian(x)
    except np.linalg.LinAlgError:
        return steps
    noise = CONTROL.relative_roundoff * max(1.0, abs(point.loglik))
    found = newton(reduced, x, point, hess, SEARCH_STEPS_CONTROL, noise)
    if not found.settled or found.point.loglik < steps.point.loglik - noise:
        return steps
    theta = reduced.expand(found.x)
    nat = problem.natural(theta)
    g = unvech(problem.gradient(nat)[1][layout.therapist_start:], k)
    g = (g + np.diag(np.diag(g))) / 2         # d loglik / d Sigma_T as a symmetric matrix
    sigma_t = layout.from_search(theta).sigma_t
    assert sigma_t is not None
    vectors = np.linalg.eigh(sigma_t)[1][:, :k - rank]
    if np.linalg.eigvalsh(vectors.T @ g @ vectors).max() > 1e-6 * problem.size:
        return steps
    return found._replace(x=theta, point=full.evaluate(theta))


def _polish_search(problem: _Problem, theta: np.ndarray, before: _Polished
                   ) -> tuple[_Polished, np.ndarray]:
    """Newton steps in the search's coordinates from ``theta`` (:class:`_SearchSteps`,
    the natural information at ``theta`` reused), then the natural information at the
    point they reach; ``before`` (the natural Newton steps' result) where they do not
    settle. Also where they ended (in the search's coordinates: the search resumes from
    there where they did not settle)."""
    steps_problem = _SearchSteps(problem)
    point = steps_problem.evaluate(theta)
    try:
        hess = steps_problem.hessian(theta, natural=before.start_hessian)
    except np.linalg.LinAlgError:
        return before, theta
    noise = CONTROL.relative_roundoff * max(1.0, abs(point.loglik))
    steps = newton(steps_problem, theta, point, hess, SEARCH_STEPS_CONTROL, noise)
    if not steps.settled and problem.layout.therapist == "unstructured":
        steps = _reduced_rank(steps_problem, steps)
    if not steps.settled:
        return before, steps.x
    nat = problem.natural(steps.x)
    hess = problem.hessian(nat)
    return (_Polished(nat, problem.evaluate(nat), hess, True, float(steps.decrement), hess),
            steps.x)


def _admissible_part(p: DynamicParameters) -> DynamicParameters:
    """``p`` with its covariances made positive definite (for a log-Cholesky factor)."""
    return p._replace(sigma_w=positive_part(p.sigma_w, 1e-10),
                      sigma_b=positive_part(p.sigma_b, 1e-10),
                      p0=positive_part(p.p0, 1e-10),
                      sigma_t=None if p.sigma_t is None else positive_part(p.sigma_t, 1e-10))


def _unstandardise(layout: DynamicLayout, center: np.ndarray, scale: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The linear map from standardised natural parameters to the data's scale:
    ``mu = c + d mu*`` (a covariate's coefficient ``d b*``), ``Phi[r, c] = d_r Phi*[r, c]
    / d_c``, ``Sigma[a, b] = d_a d_b Sigma*[a, b]``."""
    k = layout.k
    factors = list(np.repeat(scale, 1 + layout.covariates))
    factors += [scale[r] / scale[c] for r, c in layout.phi_index]
    rows, cols = np.tril_indices(k)
    blocks = 2 + (layout.initial == "free")
    factors += list(np.tile(scale[rows] * scale[cols], blocks))
    if layout.therapist == "diagonal":
        factors += list(scale ** 2)
    elif layout.therapist is not None:
        factors += list(scale[rows] * scale[cols])
    offset = np.zeros(layout.n_natural)
    offset[:layout.n_means:1 + layout.covariates] = center
    return np.diag(factors), offset


def _boundary(p: DynamicParameters, initial: Initial) -> tuple[str, ...]:
    flags = []
    levels = [("between", p.sigma_b)] + ([("initial", p.p0)] if initial == "free" else [])
    if p.sigma_t is not None:
        levels.append(("therapist", p.sigma_t))
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
    radius = spectral_radius(p.phi)
    if initial == "stationary" and radius > NEAR_UNIT:
        flags.append(f"Phi is near the edge of stationarity (largest |eigenvalue| "
                     f"{radius:.3f}): the process may not be stationary")
    elif initial == "free" and radius >= 1:
        flags.append(f"Phi is not stable (largest |eigenvalue| {radius:.3f}): the process "
                     "is not stationary but grows from session to session")
    return tuple(flags)
