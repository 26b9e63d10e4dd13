"""Fitting: Newton (where needed quasi-Newton) steps from the moment start values of
:mod:`apim.engine.mixed.start`, boundary checks and the results.

Examples
--------
>>> import numpy as np
>>> from apim.engine import MixedModel, Unstructured, Residual
>>> rng = np.random.default_rng(1)
>>> dyad = np.repeat(np.arange(30), 8); role = np.tile([0, 1], 120)
>>> session = np.tile(np.repeat([1, 2, 3, 4], 2), 30)
>>> X = np.column_stack([1 - role, role]).astype(float)
>>> u = rng.normal(size=(30, 2))[dyad, role]
>>> y = X @ [1.0, 2.0] + u + rng.normal(size=240)
>>> result = estimate_mixed(MixedModel(y=y, X=X, dyad=dyad, role=role, session=session, Z=X,
...                                    random=Unstructured(2), residual=Residual.named("un")))
>>> result.converged
True
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

from apim.engine.control import FitControl
from apim.engine.mixed.df import satterthwaite_df, sorted_containment_df
from apim.engine.mixed.hessian import difference_information, difference_step, information
from apim.engine.mixed.likelihood import Evaluation, evaluate, split_theta
from apim.engine.mixed.model import MixedModel, Prepared, row_blocks
from apim.engine.mixed.scaling import Scaling
from apim.engine.mixed.start import column_variances, residual_moments, start_values
from apim.engine.parameters import VarianceParameter, parameter_table
from apim.engine.threads import one_blas_thread
from apim.errors import BoundaryWarning, FitError, SpecError

__all__ = ["estimate_mixed", "MixedFit", "BOUNDARY_NOTE"]


Method = Literal["REML", "ML"]


@dataclass(frozen=True, eq=False)
class MixedFit:
    """Result of :func:`estimate_mixed`. Arrays of rows are in the model's input order.

    Attributes
    ----------
    model : MixedModel
        The (unchanged) model that was fitted.
    method : {"REML", "ML"}
    theta : unconstrained covariance parameters at the optimum
    loglik : log-likelihood in nlme's convention
    coef : pandas.Series of fixed effects
    cov_coef : pandas.DataFrame, ``(X'V^-1 X)^-1``
    df_satterthwaite, df_containment : pandas.Series of denominator df per coefficient
    parameters : tuple of VarianceParameter
        Natural-scale variance parameters as typed records (level, kind, effects, roles,
        estimate, SE, at-boundary flag); select them by their fields.
    variance : pandas.DataFrame of the same, indexed by each record's ``label``, with
        columns ``estimate``, ``se``, ``at_boundary``
    G, T : random-effect covariance matrices at the dyad and therapist level (or None)
    converged, message, n_evaluations : optimizer diagnostics (``n_evaluations``
        counts every likelihood evaluation, those of the Hessians' difference columns
        included; the exact random-effect block of a Hessian calls no evaluation)
    boundary : one line per boundary finding (zero SD, correlation at +-1, singular G or
        therapist matrix, singular information)
    fitted, fitted_population, residuals : arrays in input row order
    random_effects, therapist_effects : predicted random effects (DataFrames)
    hessian : Hessian of ``-loglik`` in ``theta``
    cov_theta : its (pseudo-)inverse, the covariance of ``theta``
    d_xvx : derivatives of ``X'V^-1 X`` with respect to ``theta`` (for Satterthwaite df)
    fit_seconds : wall time of the estimation
    control : the FitControl used
    """

    model: MixedModel
    method: str
    theta: np.ndarray
    loglik: float
    coef: pd.Series
    cov_coef: pd.DataFrame
    df_satterthwaite: pd.Series
    df_containment: pd.Series
    parameters: tuple[VarianceParameter, ...]
    variance: pd.DataFrame
    G: np.ndarray | None
    T: np.ndarray | None
    converged: bool
    message: str
    n_evaluations: int
    boundary: tuple[str, ...]
    fitted: np.ndarray
    fitted_population: np.ndarray
    residuals: np.ndarray
    random_effects: pd.DataFrame
    therapist_effects: pd.DataFrame
    hessian: np.ndarray
    cov_theta: np.ndarray
    d_xvx: np.ndarray
    fit_seconds: float
    n_obs: int
    n_dyads: int
    control: FitControl = field(default_factory=FitControl)

    @property
    def n_params(self) -> int:
        """Parameters counted by nlme's AIC/BIC: fixed effects plus covariance parameters."""
        return len(self.coef) + len(self.theta)

    @property
    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.n_params

    @property
    def bic(self) -> float:
        n = self.n_obs - (len(self.coef) if self.method == "REML" else 0)
        return -2 * self.loglik + self.n_params * np.log(n)

    @property
    def se(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.cov_coef)), index=self.coef.index)


def _names(model: MixedModel) -> tuple[list[str], list[str], list[str]]:
    p = np.asarray(model.X).reshape(len(model.y), -1).shape[1]
    x = list(model.x_names) or [f"x{j}" for j in range(p)]
    z = list(model.z_names) or [f"z{j}" for j in range(model.q)]
    t = list(model.therapist_names) or [f"therapist{j}" for j in range(model.q_therapist)]
    return x, z, t


def _records(model: MixedModel, theta: np.ndarray) -> list[VarianceParameter]:
    """Natural-scale variance parameters of ``model`` at ``theta`` (no SEs yet)."""
    _, z_names, t_names = _names(model)
    t_g, t_t, t_r = split_theta(model, theta)
    out: list[VarianceParameter] = []
    if model.random is not None:
        out += model.random.records(t_g, z_names, "dyad")
    if model.therapist_random is not None:
        out += model.therapist_random.records(t_t, t_names, "therapist")
    out += model.residual.records(t_r)
    return out


def _natural(model: MixedModel, theta: np.ndarray) -> np.ndarray:
    return np.array([p.estimate for p in _records(model, theta)])


def _natural_table(model: MixedModel, theta: np.ndarray, cov_theta: np.ndarray
                   ) -> list[VarianceParameter]:
    """Records with delta-method SEs from the covariance of ``theta``."""
    records = _records(model, theta)
    jac = np.zeros((len(records), len(theta)))
    for j in range(len(theta)):
        step = 1e-6 * max(1.0, abs(theta[j]))
        e = np.zeros(len(theta))
        e[j] = step
        jac[:, j] = (_natural(model, theta + e) - _natural(model, theta - e)) / (2 * step)
    cov = jac @ cov_theta @ jac.T
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    return [p.with_values(p.estimate, s) for p, s in zip(records, se)]


def _singular(level: str, g: np.ndarray | None, tolerance: float) -> str | None:
    """A line when ``g`` (of standardised columns) is singular by its relative
    eigenvalues; None otherwise."""
    if g is None or len(g) < 2:
        return None
    values = np.linalg.eigvalsh((g + g.T) / 2)
    top = max(float(values[-1]), 0.0)
    if top > 0 and values[0] < tolerance * top:
        return (f"the {level}-level random-effect covariance matrix is singular (smallest "
                f"eigenvalue {max(values[0], 0.0) / top:.1e} of the largest): some random "
                "effects are (nearly) linear combinations of others")
    return None


def _boundary(inner: MixedModel, inner_theta: np.ndarray, records: list[VarianceParameter],
              hessian: np.ndarray, control: FitControl
              ) -> tuple[list[VarianceParameter], tuple[str, ...]]:
    """Flag boundary estimates on the standardised model (so the decision does not depend
    on units): an SD at zero, a correlation at +-1, a singular G or therapist matrix by
    relative eigenvalues, a singular information matrix. Returns the records with
    ``at_boundary`` set and one line per finding."""
    scaled = _records(inner, inner_theta)
    residual_sd = max((p.estimate for p in scaled if p.level == "residual"
                       and p.kind == "sd"), default=1.0)
    flags: list[str] = []
    marked = []
    for p, q in zip(records, scaled):
        hit = False
        if p.kind == "sd" and q.estimate < control.zero_sd_tolerance * residual_sd:
            flags.append(f"{p.level} {p.label} is at zero")
            hit = True
        elif p.kind in ("cor", "phi") and abs(q.estimate) > 1 - control.correlation_tolerance:
            flags.append(f"{p.level} {p.label} is at {np.sign(q.estimate):+.0f}")
            hit = True
        marked.append(p.with_values(p.estimate, p.se, hit))
    t_g, t_t, _ = split_theta(inner, inner_theta)
    for level, structure, t in (("dyad", inner.random, t_g),
                                ("therapist", inner.therapist_random, t_t)):
        if structure is None:
            continue
        line = _singular(level, structure.matrix(t), control.singular_tolerance)
        if line is not None and not any(p.at_boundary for p in marked if p.level == level):
            flags.append(line)
        if line is not None:
            marked = [p.with_values(p.estimate, p.se, True) if p.level == level else p
                      for p in marked]
    if not flags and len(hessian) and np.linalg.eigvalsh(hessian).min() <= 0:
        flags.append("the information matrix of the covariance parameters is singular: "
                     "some of them are not identified")
    return marked, tuple(flags)


BOUNDARY_NOTE = ("Satterthwaite df and the SEs of the variance parameters are unreliable "
                 "there; consider a simpler random part")


def _quasi_newton(objective: Callable[[np.ndarray], tuple[float, np.ndarray]],
                  theta: np.ndarray, scale: float, control: FitControl, tolerance: float
                  ) -> tuple[np.ndarray, list[str]]:
    """The chosen quasi-Newton method to the per-observation gradient ``tolerance``, then
    the other one from where it stopped if it did not get close."""
    from scipy import optimize  # not on import: ``import apim`` stays light

    messages = []
    # the round-off in the per-observation gradient grows with the number of observations
    gtol = tolerance * max(1.0, np.sqrt(scale / 1e4))
    options = {"BFGS": {"gtol": gtol, "maxiter": control.max_iterations},
               "L-BFGS-B": {"ftol": 1e-13, "gtol": 1e-8,
                            "maxiter": max(control.max_iterations, 5000)}}
    order = [control.optimizer] + [m for m in options if m != control.optimizer]
    for solver in order:
        start = objective(theta)[0]  # the solver's first evaluation (the objective caches)
        result = optimize.minimize(objective, theta, jac=True, method=solver,
                                   options=options[solver])
        messages.append(f"{solver}: {result.message}")
        if np.all(np.isfinite(result.x)) and result.fun <= start:
            theta = result.x
        if result.success or np.max(np.abs(result.jac), initial=0) * scale < 1e-1:
            break  # Newton steps finish the job
    return theta, messages


def _positive_definite(matrix: np.ndarray) -> bool:
    try:
        np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        return False
    return True


def _dyad_sd_at_zero(model: MixedModel, theta: np.ndarray, control: FitControl) -> bool:
    """Whether a dyad-level random-effect SD of the standardised ``model`` is at zero (as
    :func:`_boundary` decides)."""
    records = _records(model, theta)
    residual_sd = max((p.estimate for p in records if p.level == "residual"
                       and p.kind == "sd"), default=1.0)
    return any(p.level == "dyad" and p.kind == "sd"
               and p.estimate < control.zero_sd_tolerance * residual_sd for p in records)


def _spread(model: MixedModel, theta: np.ndarray, g_start: np.ndarray) -> np.ndarray:
    """``theta`` with the dyad-level G replaced by a diagonal one whose variances are the
    current ones floored at a tenth of ``g_start`` (correlations reset to zero)."""
    if model.random is None:
        return theta
    t_g, t_t, t_r = split_theta(model, theta)
    g_now = np.diag(model.random.matrix(t_g))
    return np.concatenate([model.random.start(np.maximum(g_now, 0.1 * g_start)), t_t, t_r])


@one_blas_thread
def estimate_mixed(model: MixedModel, method: Method = "REML", control: FitControl | None = None,
        start: np.ndarray | None = None) -> MixedFit:
    """Fit ``model`` by REML (default) or ML.

    The outcome and every design column are standardised internally and the estimates mapped
    back (:mod:`apim.engine.mixed.scaling`), so units change no t value, p value or convergence
    decision. From moment-based start values the optimizer first tries Newton steps alone;
    where they do not settle (or the Hessian at the start is not positive definite) it runs
    BFGS with the analytic gradient (falling back to L-BFGS-B from where BFGS stopped) until
    the gradient is small enough for Newton steps (``control.handover_gradient``). Newton
    steps use the Hessian of :mod:`apim.engine.mixed.hessian` (exact in the random-effect
    parameters, forward differences of the analytic gradient in the residual ones),
    recomputed only after a step longer than ``control.hessian_refresh`` (after shorter ones
    it is carried forward by the BFGS secant update), until no parameter would move by more
    than ``control.step_tolerance`` (or the expected gain is below the round-off of the
    log-likelihood). Where the Hessian is not positive definite or the steps do not settle
    (a variance heading for zero), BFGS runs on to ``control.gradient_tolerance``; when it
    ends where the information is singular or a dyad-level SD is at zero, a second search
    starts from a full-rank G and the better optimum is kept, and Newton steps finish. The
    Hessian behind the standard errors and the Satterthwaite df is computed afresh at the
    optimum (central differences in the residual parameters). Gradients come by the adjoint
    method where the products offer it (``UN x AR(1)`` with missing ratings); the
    derivatives of ``X'V^-1 X`` in the residual parameters are then central differences at
    the points of that Hessian. Convergence, boundary estimates (zero SDs, correlations at
    +-1, singular G or therapist matrices) and the optimizer's message are reported;
    nothing is returned as NaN silently.

    Parameters
    ----------
    model : MixedModel
    method : {"REML", "ML"}
    control : FitControl, optional
        Tolerances, iteration limits and the optimiser (default ``FitControl()``).
    start : array, optional
        Unconstrained starting values in the model's units (default:
        :func:`apim.engine.mixed.start.start_values`).

    Returns
    -------
    MixedFit

    Raises
    ------
    DataError
        For a constant outcome.
    FitError
        When the linear algebra fails (the message says what to try).
    """
    if method not in ("REML", "ML"):
        raise SpecError(f"method={method!r} must be 'REML' or 'ML'")
    control = control or FitControl()
    clock = time.perf_counter()
    scaling = Scaling.of(model, control.standardize)
    inner = scaling.model
    theta0 = None
    if start is not None:
        if len(start) != model.n_params:
            raise SpecError(f"start has {len(start)} values; the model has {model.n_params}")
        theta0 = scaling.inner_theta(np.asarray(start, float))[0]
    try:
        with np.errstate(all="ignore"):
            return _estimate(scaling, inner, method, control, theta0, clock)
    except np.linalg.LinAlgError as error:
        raise FitError(f"the estimation failed in the linear algebra ({error}): the design "
                       "or the random part is (nearly) singular; check for predictors that "
                       "are (nearly) collinear or constant within the fitted rows, and try "
                       "a simpler random part (random='intercepts' or 'none') or residual "
                       "structure") from None


def _estimate(scaling: Scaling, model: MixedModel, method: str, control: FitControl,
              theta0: np.ndarray | None, clock: float) -> MixedFit:
    """Fit the standardised ``model``; report in the original units."""
    reml = method == "REML"
    prep = Prepared.of(model)
    given = theta0 is not None
    if theta0 is None:
        theta0 = start_values(model, prep)
    scale = float(prep.n)
    calls = [0]
    recent: dict[bytes, Evaluation] = {}  # the last evaluations, by parameter vector

    def evaluation(theta: np.ndarray, gradient: bool = True) -> Evaluation:
        key = np.asarray(theta, float).tobytes()
        ev = recent.get(key)
        if ev is None or (gradient and ev.gradient is None):
            calls[0] += 1
            with np.errstate(all="ignore"):
                ev = evaluate(model, prep, theta, reml, gradient, adjoint=True)
            if len(recent) > 4:
                recent.pop(next(iter(recent)))
            recent[key] = ev
        return ev

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        ev = evaluation(theta)
        if not np.isfinite(ev.loglik) or not np.all(np.isfinite(ev.score)):
            return np.inf, np.zeros_like(theta)  # outside the numerically usable region
        return -ev.loglik / scale, -ev.score / scale

    probes: dict[bytes, np.ndarray] = {}  # (X'V^-1 X)^-1 where the score was asked for

    def score(theta: np.ndarray) -> np.ndarray:
        calls[0] += 1
        ev = evaluate(model, prep, theta, reml, adjoint=True)
        probes[theta.tobytes()] = ev.cov_beta
        return ev.score

    def hessian(theta: np.ndarray, rough: Evaluation | None = None) -> np.ndarray:
        """The Hessian of -loglik; ``rough``: the evaluation at ``theta``, from which
        forward differences give the Newton phase a cheaper one (not for the SEs)."""
        if control.hessian == "differences":
            return difference_information(model, prep, theta, reml, score)
        return information(model, prep, theta, reml, score,
                           None if rough is None else rough.score)

    def newton(theta: np.ndarray, ev: Evaluation, hess: np.ndarray
               ) -> tuple[np.ndarray, Evaluation, np.ndarray, np.ndarray, float, bool]:
        """Newton steps from ``theta``; a new Hessian only after a long step. Returns the
        parameters, their evaluation, the Hessian, where it was computed, the expected
        gain of a further step and whether the parameters settled."""
        theta_hess = theta
        decrement = np.inf  # expected gain in log-likelihood of a full Newton step
        for iteration in range(control.max_newton + 1):
            if not _positive_definite(hess):
                break
            step = np.linalg.solve(hess, ev.score)
            decrement = float(ev.score @ step) / 2
            # the gradient resolves the optimum far more finely than differences of the
            # log-likelihood do: step until the parameters (and so the SEs) are settled
            if np.max(np.abs(step), initial=0.0) < control.step_tolerance:
                return theta, ev, hess, theta_hess, decrement, True
            if iteration == control.max_newton:
                break
            for _half in range(10):
                trial = evaluation(theta + step)
                if np.isfinite(trial.loglik) and trial.loglik >= ev.loglik - noise:
                    break
                step = step / 2
            else:
                break  # no step improves: stay where we are
            theta, ev, score_before = theta + step, trial, ev.score
            if np.max(np.abs(theta - theta_hess)) > control.hessian_refresh:
                hess, theta_hess = hessian(theta, ev), theta
            else:
                hess = _secant_update(hess, step, score_before - ev.score)
        return theta, ev, hess, theta_hess, decrement, False

    handover = control.handover_gradient > control.gradient_tolerance
    theta, messages, settled = theta0, [], False
    ev = evaluation(theta)
    # round-off in the log-likelihood, a sum over N observations: below it no step is
    # meaningful and no decrease is real
    noise = control.relative_roundoff * max(1.0, abs(ev.loglik))
    if handover and control.max_newton and np.isfinite(ev.loglik):
        # from good start values Newton steps alone get there (and the quasi-Newton
        # search, with its import of scipy.optimize, is not needed)
        hess = hessian(theta, ev)
        if _positive_definite(hess):
            theta, ev, hess, theta_hess, decrement, settled = newton(theta, ev, hess)
            if settled:
                messages.append("Newton steps from the start values")
    if not settled:
        theta, more = _quasi_newton(objective, theta, scale, control,
                                    control.handover_gradient if handover
                                    else control.gradient_tolerance)
        messages += more
        ev = evaluation(theta)
        hess = hessian(theta, ev)
        noise = control.relative_roundoff * max(1.0, abs(ev.loglik))
        if handover and _positive_definite(hess):
            theta, ev, hess, theta_hess, decrement, settled = newton(theta, ev, hess)
    if handover and not settled:
        # Newton steps cannot finish from there (not close enough, or a variance heading
        # for zero): the quasi-Newton search runs to the optimum first
        theta, more = _quasi_newton(objective, theta, scale, control,
                                    control.gradient_tolerance)
        messages += more
        ev = evaluation(theta)
        hess = hessian(theta, ev)
    if not settled:
        if model.random is not None and (not _positive_definite(hess)
                                         or _dyad_sd_at_zero(model, theta, control)):
            # a reduced-rank G can trap the search (where a variance heads for zero its
            # gradient vanishes too): restart with its variances spread out
            # spread by the user's start or by each column's variance alone (the
            # per-dyad coefficients of one column at a time: larger than the joint ones)
            if given:
                g_start = np.diag(model.random.matrix(split_theta(model, theta0)[0]))
            else:
                e, var_r, _, _ = residual_moments(model, prep)
                g_start = column_variances(prep.raw[:, prep.q_t:prep.q_t + prep.q], e,
                                            prep.layout.dyad_start, var_r)
            restart, more = _quasi_newton(objective, _spread(model, theta, g_start), scale,
                                          control, control.gradient_tolerance)
            again = evaluation(restart)
            if again.loglik > ev.loglik + 1e-8:
                theta, ev = restart, again
                hess = hessian(theta, ev)
                messages += ["restarted from a full-rank G"] + more
        theta, ev, hess, theta_hess, decrement, _ = newton(theta, ev, hess)
    message = "; ".join(messages)
    if len(theta) and (control.hessian == "exact"  # the Newton phase's are rough
                       or not np.array_equal(theta, theta_hess)):
        hess = hessian(theta)  # the SEs are those at the optimum
        if _positive_definite(hess):
            decrement = float(ev.score @ np.linalg.solve(hess, ev.score)) / 2
    if len(theta) and (ev.d_xvx is None or len(ev.d_xvx) < len(theta)):
        # the Satterthwaite df need d(X'V^-1 X): the residual parameters' from the
        # evaluations of the Hessian's central differences, else one forward evaluation
        d_xvx = _differenced_xvx(theta, ev, probes)
        if d_xvx is None:
            calls[0] += 1
            ev = evaluate(model, prep, theta, reml)
        else:
            ev = replace(ev, d_xvx=d_xvx)
    gradient = ev.gradient if ev.gradient is not None else np.zeros(len(theta))
    grad_norm = float(np.max(np.abs(gradient))) if len(theta) else 0.0
    converged = bool(np.isfinite(ev.loglik) and (
        decrement < max(control.converged_decrement, 10 * noise)
        or grad_norm < control.converged_gradient))
    if not converged:
        message = (f"{message}; largest gradient component {grad_norm:.2e}, "
                   f"Newton decrement {decrement:.2e}")
    return _result(scaling, prep, method, theta, ev, hess, control, converged, message,
                   calls[0], clock)


def _differenced_xvx(theta: np.ndarray, ev: Evaluation, probes: dict[bytes, np.ndarray]
                     ) -> np.ndarray | None:
    """``ev.d_xvx`` (the derivatives of ``X'V^-1 X`` in its first parameters) completed by
    central differences of ``X'V^-1 X`` at the points ``theta +- h e_j`` where the Hessian's
    differences evaluated the likelihood (``probes``: ``(X'V^-1 X)^-1`` by point); None
    when one of them was not evaluated."""
    if ev.d_xvx is None:
        return None
    columns = [ev.d_xvx]
    for j in range(len(ev.d_xvx), len(theta)):
        e = difference_step(theta, j)
        plus, minus = probes.get((theta + e).tobytes()), probes.get((theta - e).tobytes())
        if plus is None or minus is None:
            return None
        columns.append(((np.linalg.inv(plus) - np.linalg.inv(minus)) / (2 * e[j]))[None])
    return np.concatenate(columns)


def _secant_update(hess: np.ndarray, step: np.ndarray, change: np.ndarray) -> np.ndarray:
    """The BFGS update of ``hess`` (of ``-loglik``) by a step and the change of the
    gradient of ``-loglik`` along it: reused Hessians then converge superlinearly rather
    than linearly. Kept as it is where the pair has no positive curvature."""
    curvature = float(step @ change)
    h_step = hess @ step
    along = float(step @ h_step)
    if not (curvature > 1e-12 * along > 0):
        return hess
    return hess + np.outer(change, change) / curvature - np.outer(h_step, h_step) / along


def _fitted(prep: Prepared, beta: np.ndarray, b: np.ndarray, v: np.ndarray, y_scale: float
            ) -> tuple[np.ndarray, np.ndarray]:
    """Conditional and population fitted values in the input row order and the original
    units, block by block of sorted rows (no full-size temporaries)."""
    qt, q, p = prep.q_t, prep.q, prep.p
    raw, order, dyad = prep.raw, prep.order, prep.layout.dyad
    fitted, population = np.empty(prep.n), np.empty(prep.n)
    for rows in row_blocks(prep.n):
        xb = raw[rows, qt + q:qt + q + p] @ beta
        here = dyad[rows]
        block = xb + np.einsum("nk,nk->n", raw[rows, qt:qt + q], b[here])
        if qt:
            block = block + np.einsum("nk,nk->n", raw[rows, :qt], v[prep.cluster[here]])
        fitted[order[rows]] = block * y_scale
        population[order[rows]] = xb * y_scale
    return fitted, population


def _result(scaling: Scaling, prep: Prepared, method: str, inner_theta: np.ndarray,
            ev: Evaluation, inner_hess: np.ndarray, control: FitControl, converged: bool,
            message: str, n_eval: int, clock: float) -> MixedFit:
    model, inner = scaling.original, scaling.model
    reml = method == "REML"
    theta, jac = scaling.outer_theta(inner_theta)
    hess = inner_hess * np.outer(jac, jac)  # of -logLik in the original parameters
    inner_cov = np.linalg.pinv(inner_hess)  # inverse observed information
    cov_theta = inner_cov / np.outer(jac, jac)
    records = _natural_table(model, theta, cov_theta)
    records, boundary = _boundary(inner, inner_theta, records, inner_hess, control)
    if boundary:
        warnings.warn("boundary estimate: " + "; ".join(boundary) + ". " + BOUNDARY_NOTE,
                      BoundaryWarning, stacklevel=4)
    x_names, z_names, t_names = _names(model)
    t_g, t_t, _ = split_theta(model, theta)
    lay = prep.layout
    qt, q = prep.q_t, prep.q
    labels = np.asarray(model.dyad)[prep.order[lay.dyad_start]]
    b = np.zeros((len(labels), q))
    for s in range(prep.n_slots if q else 0):
        rows = np.flatnonzero(prep.slot == s)
        b[rows] = ev.blups[prep.cluster[rows], qt + s * q: qt + (s + 1) * q]
    therapist_effects = pd.DataFrame(columns=t_names)
    v = ev.blups[:, :qt]
    if qt:
        first_dyad = np.flatnonzero(prep.slot == 0)
        t_labels = np.asarray(model.therapist)[prep.order[lay.dyad_start[first_dyad]]]
        therapist_effects = pd.DataFrame(v[prep.cluster[first_dyad]] * scaling.y / scaling.zt,
                                         index=t_labels, columns=t_names)
    fitted, population = _fitted(prep, ev.beta, b, v, scaling.y)
    y = np.asarray(model.y, float)
    beta = scaling.beta(ev.beta)
    cov_beta = scaling.cov_beta(ev.cov_beta)
    inner_d = ev.d_xvx if ev.d_xvx is not None else np.zeros((0, prep.p, prep.p))
    d_xvx = scaling.d_xvx(inner_d, 1 / jac)
    starts = [lay.dyad_start]  # the rows of each group (sorted order), outermost first
    if model.therapist is not None:
        starts.insert(0, lay.dyad_start[prep.slot == 0])
    return MixedFit(
        model=model, method=method, theta=theta,
        loglik=float(scaling.loglik(float(ev.loglik), reml)),
        coef=pd.Series(beta, index=x_names),
        cov_coef=pd.DataFrame(cov_beta, index=x_names, columns=x_names),
        df_satterthwaite=pd.Series(satterthwaite_df(ev.cov_beta, inner_d, inner_cov,
                                                    np.eye(len(x_names))), index=x_names),
        df_containment=pd.Series(sorted_containment_df(np.asarray(model.X, float), prep.order,
                                                       starts), index=x_names),
        parameters=tuple(records), variance=parameter_table(records),
        G=model.random.matrix(t_g) if model.random is not None else None,
        T=model.therapist_random.matrix(t_t) if model.therapist_random is not None else None,
        converged=converged, message=message, n_evaluations=n_eval, boundary=boundary,
        fitted=fitted, fitted_population=population, residuals=np.subtract(y, fitted),
        random_effects=pd.DataFrame(b * scaling.y / scaling.z, index=labels,
                                    columns=z_names),
        therapist_effects=therapist_effects, hessian=hess, cov_theta=cov_theta,
        d_xvx=d_xvx, fit_seconds=time.perf_counter() - clock,
        n_obs=prep.n, n_dyads=len(labels), control=control)
