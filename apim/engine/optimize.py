"""The one optimisation driver of the engines: Newton steps with exact or secant-updated
Hessians, a quasi-Newton fallback, the final Hessian and a restart hook for boundaries.

An engine describes its maximisation problem by a :class:`Problem` (the log-likelihood
and its gradient at a point, the Hessian of ``-loglik``, optionally other coordinates for
the quasi-Newton search and a restart where that search stops at a boundary) and
:func:`maximize` does the rest, the same way for every engine:

1. from the start values, Newton steps alone (good start values get there);
2. where they do not settle: the quasi-Newton search (BFGS, falling back to L-BFGS-B)
   until the gradient is small enough to hand over (``handover_gradient``), then Newton;
3. where Newton still does not settle (a variance heading for zero): the quasi-Newton
   search to ``gradient_tolerance``; where it ends at a boundary, a search from the
   problem's restart point, the better optimum kept; Newton steps finish;
4. the Hessian at the optimum (for the standard errors) and the convergence decision.

Newton steps use the problem's Hessian, recomputed only after a step longer than
``hessian_refresh`` and carried forward by the BFGS secant update after shorter ones, so
reused Hessians still converge superlinearly; a step is halved until the log-likelihood
does not fall by more than its round-off.

Examples
--------
>>> import numpy as np
>>> from apim.engine.control import FitControl
>>> class Quadratic:  # loglik = -(x - 1)' A (x - 1) / 2
...     size, relative_steps = 1.0, False
...     a = np.array([[2.0, 0.5], [0.5, 1.0]])
...     def evaluate(self, x):
...         return Point(float(-(x - 1) @ self.a @ (x - 1) / 2), -self.a @ (x - 1))
...     def hessian(self, x, point=None):
...         return self.a
>>> optimum = maximize(Quadratic(), np.zeros(2), FitControl())
>>> optimum.x.round(6).tolist(), optimum.converged, optimum.message
([1.0, 1.0], True, 'Newton steps from the start values')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

import numpy as np

from apim.engine.control import FitControl

__all__ = ["Point", "Problem", "Optimum", "maximize", "newton", "quasi_newton",
           "secant_update", "positive_definite", "difference_hessian"]


class Point(NamedTuple):
    """The log-likelihood and its gradient (``score``) at a point."""

    loglik: float
    score: np.ndarray


class Evaluated(Protocol):
    """What the driver reads of an evaluation (an engine may return richer records)."""

    @property
    def loglik(self) -> float: ...

    @property
    def score(self) -> np.ndarray: ...


P = TypeVar("P", bound=Evaluated)


class Problem(Protocol[P]):
    """A maximisation problem for :func:`maximize`.

    ``size`` (the number of observations) scales the gradient tolerances, which are per
    observation; with ``relative_steps`` a Newton step is measured relative to
    ``max(1, |x|)`` (parameters in the data's units), else absolutely. Optional methods
    (looked up with ``getattr``): ``search_objective(z) -> (f, g)`` with
    ``to_search(x)``/``from_search(z)``, the quasi-Newton search in other coordinates
    (default: ``-loglik / size`` in ``x``); ``admissible(x)``, whether a Newton trial
    point may be evaluated; ``restart(x, hessian)``, a start (in search coordinates) for
    a second search where the first ended at a boundary and the message that reports
    it, or None; ``final_hessian(x)``, the Hessian for the standard errors (default:
    :meth:`hessian` without a point); ``finish(x, point)``, the evaluation to report at
    the optimum (e.g. with derivatives the search did not need); ``stationary(x)``, the
    problem's own test of a stationary point where the gradient in ``x`` need not vanish
    (an optimum at a boundary, stationary in the search coordinates); ``newton_first``,
    try Newton steps from the start values even where the quasi-Newton search runs to
    ``gradient_tolerance`` at once (``handover_gradient`` not above it); ``search_first``,
    start with the quasi-Newton search where Newton steps would be tried first (a Hessian
    that costs many gradients, start values far off).
    """

    size: float
    relative_steps: bool

    def evaluate(self, x: np.ndarray, /) -> P: ...

    def hessian(self, x: np.ndarray, point: P | None = None, /) -> np.ndarray:
        """Hessian of ``-loglik`` at ``x``; given the evaluation at ``x`` it may be a
        cheaper, rougher one (for Newton steps, not for standard errors)."""
        ...


@dataclass(frozen=True, eq=False)
class Optimum(Generic[P]):
    """Where :func:`maximize` ended.

    Attributes
    ----------
    x : the parameters
    point : the evaluation at ``x``
    hessian : Hessian of ``-loglik`` at ``x`` (for the standard errors)
    decrement : expected gain in log-likelihood of a further Newton step
    converged : bool
    message : the phases that ran and their optimisers' messages
    settled : whether the last Newton steps settled (else the optimum may be at a
        boundary of the parameter space, where Newton steps cannot go)
    """

    x: np.ndarray
    point: P
    hessian: np.ndarray
    decrement: float
    converged: bool
    message: str
    settled: bool = True


def positive_definite(matrix: np.ndarray) -> bool:
    """Whether ``matrix`` has a Cholesky factor."""
    try:
        np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        return False
    return True


def secant_update(hess: np.ndarray, step: np.ndarray, change: np.ndarray) -> np.ndarray:
    """The BFGS update of ``hess`` (of ``-loglik``) by a step and the change of the
    gradient of ``-loglik`` along it: reused Hessians then converge superlinearly rather
    than linearly. Kept as it is where the pair has no positive curvature."""
    curvature = float(step @ change)
    h_step = hess @ step
    along = float(step @ h_step)
    if not (curvature > 1e-12 * along > 0):
        return hess
    return hess + np.outer(change, change) / curvature - np.outer(h_step, h_step) / along


def difference_hessian(gradient: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                       at_x: np.ndarray | None = None) -> np.ndarray:
    """Hessian of the function whose gradient is ``gradient``, from differences of it:
    central (step ``1e-5 max(1, |x_j|)``), or forward from ``at_x`` (the gradient at
    ``x``) with step ``1e-7 max(1, |x_j|)``; symmetrised."""
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


class _Steps(NamedTuple):
    x: np.ndarray
    point: Any  # the problem's evaluation (P; a generic NamedTuple needs Python 3.11)
    hessian: np.ndarray
    x_hessian: np.ndarray  # where the Hessian was computed
    decrement: float
    settled: bool


def newton(problem: Problem[P], x: np.ndarray, point: P, hess: np.ndarray,
           control: FitControl, noise: float) -> _Steps:
    """Newton steps from ``x`` (evaluated: ``point``, Hessian ``hess``); a new Hessian
    only after a step longer than ``control.hessian_refresh``, else the secant update.
    Settled when no parameter would move by more than ``control.step_tolerance``; a step
    is halved (up to ten times) until the log-likelihood falls by no more than ``noise``.
    """
    admissible = getattr(problem, "admissible", None)
    x_hess = x
    decrement = np.inf  # expected gain in log-likelihood of a full Newton step
    for iteration in range(control.max_newton + 1):
        if not positive_definite(hess):
            break
        step = np.linalg.solve(hess, point.score)
        decrement = float(point.score @ step) / 2
        # the gradient resolves the optimum far more finely than differences of the
        # log-likelihood do: step until the parameters (and so the SEs) are settled
        size = np.abs(step) / np.maximum(1.0, np.abs(x)) if problem.relative_steps \
            else np.abs(step)
        if np.max(size, initial=0.0) < control.step_tolerance:
            return _Steps(x, point, hess, x_hess, decrement, True)
        if iteration == control.max_newton:
            break
        for _half in range(10):
            if admissible is None or admissible(x + step):
                trial = problem.evaluate(x + step)
                if np.isfinite(trial.loglik) and trial.loglik >= point.loglik - noise:
                    break
            step = step / 2
        else:
            break  # no step improves: stay where we are
        x, point, score_before = x + step, trial, point.score
        moved = np.abs(x - x_hess)
        if problem.relative_steps:
            moved = moved / np.maximum(1.0, np.abs(x_hess))
        if np.max(moved) > control.hessian_refresh:
            hess, x_hess = problem.hessian(x, point), x
        else:
            hess = secant_update(hess, step, score_before - point.score)
    return _Steps(x, point, hess, x_hess, decrement, False)


def quasi_newton(objective: Callable[[np.ndarray], tuple[float, np.ndarray]],
                 z: np.ndarray, size: float, control: FitControl, tolerance: float
                 ) -> tuple[np.ndarray, list[str]]:
    """The chosen quasi-Newton method (``control.optimizer``) on ``objective`` (a value
    per observation and its gradient) to the per-observation gradient ``tolerance``, then
    the other one from where it stopped if it did not get close."""
    from scipy import optimize  # not on import: ``import apim`` stays light

    messages = []
    # the round-off in the per-observation gradient grows with the number of observations
    gtol = tolerance * max(1.0, np.sqrt(size / 1e4))
    options = {"BFGS": {"gtol": gtol, "maxiter": control.max_iterations},
               "L-BFGS-B": {"ftol": 1e-13, "gtol": 1e-8,
                            "maxiter": max(control.max_iterations, 5000)}}
    order = [control.optimizer] + [m for m in options if m != control.optimizer]
    for solver in order:
        start = objective(z)[0]  # the solver's first evaluation (the objective caches)
        result = optimize.minimize(objective, z, jac=True, method=solver,
                                   options=options[solver])
        messages.append(f"{solver}: {result.message}")
        if np.all(np.isfinite(result.x)) and result.fun <= start:
            z = result.x
        if result.success or np.max(np.abs(result.jac), initial=0) * size < 1e-1:
            break  # Newton steps finish the job
    return z, messages


class _Search(Generic[P]):
    """The quasi-Newton side of a problem: its own coordinates, or ``-loglik / size``."""

    def __init__(self, problem: Problem[P]) -> None:
        self.problem = problem
        own = getattr(problem, "search_objective", None)
        self.objective = own if own is not None else self._objective
        self.to_search: Callable[[np.ndarray], np.ndarray] = getattr(
            problem, "to_search", lambda x: x)
        self.from_search: Callable[[np.ndarray], np.ndarray] = getattr(
            problem, "from_search", lambda z: z)

    def _objective(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        point = self.problem.evaluate(x)
        if not np.isfinite(point.loglik) or not np.all(np.isfinite(point.score)):
            return np.inf, np.zeros_like(x)  # outside the numerically usable region
        return -point.loglik / self.problem.size, -point.score / self.problem.size

    def run(self, x: np.ndarray, control: FitControl, tolerance: float
            ) -> tuple[np.ndarray, list[str]]:
        z, messages = quasi_newton(self.objective, self.to_search(x), self.problem.size,
                                   control, tolerance)
        return self.from_search(z), messages


def maximize(problem: Problem[P], x0: np.ndarray, control: FitControl) -> Optimum[P]:
    """Maximise ``problem``'s log-likelihood from ``x0`` (see the module docstring).

    Returns
    -------
    Optimum
        The parameters, their evaluation, the Hessian of ``-loglik`` there (from
        ``problem.final_hessian`` or a fresh ``problem.hessian`` where the last Newton
        Hessian was not computed at the optimum, or always with
        ``control.hessian == "exact"``), the Newton decrement, the convergence decision
        (decrement below ``control.converged_decrement`` or ten times the round-off, or
        the largest gradient component below ``control.converged_gradient``) and the
        phases' messages.
    """
    search = _Search(problem)
    handover = control.handover_gradient > control.gradient_tolerance
    x, messages, settled = x0, [], False
    x_hess, decrement = x0, np.inf
    point = problem.evaluate(x)
    # round-off in the log-likelihood, a sum over N observations: below it no step is
    # meaningful and no decrease is real
    noise = control.relative_roundoff * max(1.0, abs(point.loglik))
    newton_first = (handover or getattr(problem, "newton_first", False)) \
        and not getattr(problem, "search_first", False)
    if newton_first and control.max_newton and np.isfinite(point.loglik):
        # from good start values Newton steps alone get there (and the quasi-Newton
        # search, with its import of scipy.optimize, is not needed)
        hess = problem.hessian(x, point)
        if positive_definite(hess):
            x, point, hess, x_hess, decrement, settled = newton(problem, x, point, hess,
                                                                control, noise)
            if settled:
                messages.append("Newton steps from the start values")
    if not settled:
        x, more = search.run(x, control, control.handover_gradient if handover
                             else control.gradient_tolerance)
        messages += more
        point = problem.evaluate(x)
        hess = problem.hessian(x, point)
        noise = control.relative_roundoff * max(1.0, abs(point.loglik))
        if handover and positive_definite(hess):
            x, point, hess, x_hess, decrement, settled = newton(problem, x, point, hess,
                                                                control, noise)
    if handover and not settled:
        # Newton steps cannot finish from there (not close enough, or a variance heading
        # for zero): the quasi-Newton search runs to the optimum first
        x, more = search.run(x, control, control.gradient_tolerance)
        messages += more
        point = problem.evaluate(x)
        hess = problem.hessian(x, point)
    if not settled:
        restart = getattr(problem, "restart", None)
        restarted = restart(x, hess) if restart is not None else None
        if restarted is not None:
            z, label = restarted
            # a boundary can trap the search (where a variance heads for zero its
            # gradient vanishes too): a second search from the problem's restart point
            z, more = quasi_newton(search.objective, z, problem.size, control,
                                   control.gradient_tolerance)
            again_x = search.from_search(z)
            again = problem.evaluate(again_x)
            if again.loglik > point.loglik + 1e-8:
                x, point = again_x, again
                hess = problem.hessian(x, point)
                messages += [label] + more
        x, point, hess, x_hess, decrement, settled = newton(problem, x, point, hess,
                                                            control, noise)
    if len(x) and (control.hessian == "exact"  # the Newton phase's are rough
                   or not np.array_equal(x, x_hess)):
        final = getattr(problem, "final_hessian", None)
        hess = final(x) if final is not None else problem.hessian(x)
        if positive_definite(hess):
            decrement = float(point.score @ np.linalg.solve(hess, point.score)) / 2
    finish = getattr(problem, "finish", None)
    if finish is not None:
        point = finish(x, point)
    grad_norm = float(np.max(np.abs(point.score))) if len(x) else 0.0
    stationary = getattr(problem, "stationary", None)
    converged = bool(np.isfinite(point.loglik) and (
        decrement < max(control.converged_decrement, 10 * noise)
        or grad_norm < control.converged_gradient
        or (stationary is not None and stationary(x))))
    message = "; ".join(messages)
    if not converged:
        message = (f"{message}; largest gradient component {grad_norm:.2e}, "
                   f"Newton decrement {decrement:.2e}")
    return Optimum(x, point, hess, decrement, converged, message, settled)
