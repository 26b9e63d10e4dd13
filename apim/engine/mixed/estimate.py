"""Estimation of a mixed model: the likelihood of :mod:`apim.engine.mixed.likelihood` and
the Hessians of :mod:`apim.engine.mixed.hessian` as a problem for the shared driver
(:func:`apim.engine.optimize.maximize`), from the moment start values of
:mod:`apim.engine.mixed.start`; the result is a :class:`MixedFit`.

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
>>> result = estimate_mixed(MixedModel(y=y, X=X, dyad=dyad, role=role, session=session,
...                                    Z=X, random=Unstructured(2),
...                                    residual=Residual.named("un")))
>>> result.converged
True
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Literal

import numpy as np

from apim.engine.control import FitControl
from apim.engine.mixed.hessian import difference_information, difference_step, information
from apim.engine.mixed.likelihood import Evaluation, evaluate, split_theta
from apim.engine.mixed.model import MixedModel, Prepared
from apim.engine.mixed.results import BOUNDARY_NOTE, MixedFit, dyad_sd_at_zero, fit_result
from apim.engine.mixed.scaling import Scaling
from apim.engine.mixed.start import column_variances, residual_moments, start_values
from apim.engine.optimize import maximize, positive_definite
from apim.engine.threads import one_blas_thread
from apim.errors import FitError, SpecError

__all__ = ["estimate_mixed", "MixedFit", "BOUNDARY_NOTE", "MixedProblem"]


Method = Literal["REML", "ML"]


@one_blas_thread
def estimate_mixed(model: MixedModel, method: Method = "REML",
                   control: FitControl | None = None, start: np.ndarray | None = None
                   ) -> MixedFit:
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

    Examples
    --------
    >>> import numpy as np
    >>> from apim.engine import MixedModel, Residual
    >>> rng = np.random.default_rng(0)
    >>> role = np.tile([0, 1], 50); X = np.column_stack([1 - role, role]).astype(float)
    >>> model = MixedModel(y=X @ [1.0, 2.0] + rng.normal(size=100), X=X,
    ...                    dyad=np.repeat(np.arange(25), 4), role=role,
    ...                    session=np.tile([1, 1, 2, 2], 25),
    ...                    residual=Residual.named("independent"))
    >>> fit = estimate_mixed(model, "ML")
    >>> fit.coef.round(1).tolist(), fit.converged
    ([1.0, 2.2], True)
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



class MixedProblem:
    """The (standardised) mixed model's log-likelihood as a problem for
    :func:`apim.engine.optimize.maximize`: evaluations cached by parameter vector and
    counted, the Hessian of :mod:`apim.engine.mixed.hessian`, a restart from a full-rank
    G where the search ends at a reduced-rank one, and the final evaluation completed by
    the derivatives of ``X'V^-1 X`` the Satterthwaite df need."""

    relative_steps = False

    def __init__(self, model: MixedModel, prep: Prepared, reml: bool, control: FitControl,
                 theta0: np.ndarray, given: bool) -> None:
        self.model, self.prep, self.reml, self.control = model, prep, reml, control
        self.theta0, self.given = theta0, given
        self.size = float(prep.n)
        self.calls = 0
        self.recent: dict[bytes, Evaluation] = {}  # the last evaluations, by parameters
        self.probes: dict[bytes, np.ndarray] = {}  # (X'V^-1 X)^-1 where a score was asked

    def evaluate(self, theta: np.ndarray, gradient: bool = True) -> Evaluation:
        key = np.asarray(theta, float).tobytes()
        ev = self.recent.get(key)
        if ev is None or (gradient and ev.gradient is None):
            self.calls += 1
            with np.errstate(all="ignore"):
                ev = evaluate(self.model, self.prep, theta, self.reml, gradient, adjoint=True)
            if len(self.recent) > 4:
                self.recent.pop(next(iter(self.recent)))
            self.recent[key] = ev
        return ev

    def score(self, theta: np.ndarray) -> np.ndarray:
        self.calls += 1
        ev = evaluate(self.model, self.prep, theta, self.reml, adjoint=True)
        self.probes[theta.tobytes()] = ev.cov_beta
        return ev.score

    def hessian(self, theta: np.ndarray, point: Evaluation | None = None) -> np.ndarray:
        """The Hessian of -loglik; ``point``: the evaluation at ``theta``, from which
        forward differences give the Newton phase a cheaper one (not for the SEs)."""
        if self.control.hessian == "differences":
            return difference_information(self.model, self.prep, theta, self.reml,
                                          self.score)
        return information(self.model, self.prep, theta, self.reml, self.score,
                           None if point is None else point.score)

    def restart(self, theta: np.ndarray, hess: np.ndarray) -> tuple[np.ndarray, str] | None:
        """A reduced-rank G can trap the search (where a variance heads for zero its
        gradient vanishes too): restart with its variances spread out, by the user's
        start or by each column's variance alone (the per-dyad coefficients of one column
        at a time: larger than the joint ones)."""
        model = self.model
        if model.random is None or (positive_definite(hess)
                                    and not dyad_sd_at_zero(model, theta, self.control)):
            return None
        if self.given:
            g_start = np.diag(model.random.matrix(split_theta(model, self.theta0)[0]))
        else:
            e, var_r, _, _ = residual_moments(model, self.prep)
            g_start = column_variances(self.prep.raw[:, self.prep.q_t:self.prep.q_t
                                                     + self.prep.q],
                                       e, self.prep.layout.dyad_start, var_r)
        return _spread(model, theta, g_start), "restarted from a full-rank G"

    def finish(self, theta: np.ndarray, ev: Evaluation) -> Evaluation:
        """The Satterthwaite df need d(X'V^-1 X): the residual parameters' from the
        evaluations of the Hessian's central differences, else one forward evaluation."""
        if len(theta) and (ev.d_xvx is None or len(ev.d_xvx) < len(theta)):
            d_xvx = _differenced_xvx(theta, ev, self.probes)
            if d_xvx is None:
                self.calls += 1
                return evaluate(self.model, self.prep, theta, self.reml)
            return replace(ev, d_xvx=d_xvx)
        return ev


def _estimate(scaling: Scaling, model: MixedModel, method: str, control: FitControl,
              theta0: np.ndarray | None, clock: float) -> MixedFit:
    """Fit the standardised ``model``; report in the original units."""
    prep = Prepared.of(model)
    given = theta0 is not None
    if theta0 is None:
        theta0 = start_values(model, prep)
    problem = MixedProblem(model, prep, method == "REML", control, theta0, given)
    optimum = maximize(problem, theta0, control)
    return fit_result(scaling, prep, method, optimum.x, optimum.point, optimum.hessian,
                      control, optimum.converged, optimum.message, problem.calls, clock)


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



def _spread(model: MixedModel, theta: np.ndarray, g_start: np.ndarray) -> np.ndarray:
    """``theta`` with the dyad-level G replaced by a diagonal one whose variances are the
    current ones floored at a tenth of ``g_start`` (correlations reset to zero)."""
    if model.random is None:
        return theta
    t_g, t_t, t_r = split_theta(model, theta)
    g_now = np.diag(model.random.matrix(t_g))
    return np.concatenate([model.random.start(np.maximum(g_now, 0.1 * g_start)), t_t, t_r])


