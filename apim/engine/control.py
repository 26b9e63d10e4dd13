"""Numerical settings of the engine (tolerances, iteration limits, optimiser), like nlme's
``lmeControl``: one frozen record instead of numbers spread through the code.

Examples
--------
>>> control = FitControl()
>>> control.optimizer, control.max_newton, control.hessian
('BFGS', 8, 'exact')
>>> FitControl(max_newton=-1)
Traceback (most recent call last):
...
apim.errors.SpecError: max_newton=-1 must be >= 0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from apim.errors import SpecError
from apim.specbase import Spec

__all__ = ["FitControl"]


@dataclass(frozen=True)
class FitControl(Spec):
    """How the engine searches for the optimum and decides that it has found it.

    Parameters
    ----------
    optimizer : {"BFGS", "L-BFGS-B"}
        Quasi-Newton method of the first phase (the other one is the fallback).
    handover_gradient : float
        The quasi-Newton phase hands over to the Newton phase once the largest gradient
        component per observation is below this (both scaled like
        ``gradient_tolerance``); 0 runs it to ``gradient_tolerance``. Where the Hessian
        at the handover point is not positive definite or the Newton steps do not settle
        within ``max_newton`` (a variance heading for zero), the quasi-Newton phase
        resumes and runs to ``gradient_tolerance``.
    gradient_tolerance : float
        Gradient tolerance of a quasi-Newton run to the optimum, per observation (grows
        with ``sqrt(N / 1e4)`` for large data, where round-off in the gradient grows).
    max_iterations : int
        Iteration limit of each quasi-Newton run.
    max_newton : int
        Newton steps after the quasi-Newton phase.
    hessian : {"exact", "differences"}
        Hessian of the standard errors: ``"exact"`` second derivatives in the
        random-effect parameters and central differences of the analytic gradient in the
        residual ones (:mod:`apim.engine.mixed.hessian`; the Newton phase uses forward
        differences there, and the Hessian is computed afresh at the optimum), or central
        differences of the analytic gradient in every parameter (``2 k`` evaluations;
        recomputed at the optimum unless the last Newton step left the parameters where
        it was computed).
    hessian_refresh : float
        A Newton step longer than this (largest change of an unconstrained parameter of
        the standardised model) is followed by a new Hessian; after shorter steps the
        last one is carried forward by the BFGS (secant) update from the change of the
        gradient along the step, so the steps still converge superlinearly. 0 computes
        a new Hessian after every step.
    step_tolerance : float
        The Newton phase stops when no unconstrained covariance parameter would move by
        more than this (the parameters, and so the SEs, are settled).
    relative_roundoff : float
        Round-off of the log-likelihood as a fraction of ``|logLik|``: a Newton step that
        lowers it by less is still accepted (its gradient says it is closer).
    converged_decrement : float
        Convergence is reported when the expected gain of a further Newton step is below
        this (or the largest gradient component below ``converged_gradient``).
    converged_gradient : float
    standardize : bool
        Fit on internally standardised outcome and design columns and map the estimates
        back, so a change of units changes no t value, p value or convergence decision.
    zero_sd_tolerance : float
        A random-effect SD (of a standardised column) is reported at zero below this
        fraction of the residual SD.
    correlation_tolerance : float
        A correlation is reported at +-1 within this of it.
    singular_tolerance : float
        A random-effect covariance matrix (of standardised columns) is reported singular
        when its smallest eigenvalue is below this fraction of its largest.
    """

    optimizer: Literal["BFGS", "L-BFGS-B"] = "BFGS"
    handover_gradient: float = 1e-3
    gradient_tolerance: float = 1e-7
    max_iterations: int = 2000
    max_newton: int = 8
    hessian: Literal["exact", "differences"] = "exact"
    hessian_refresh: float = 0.1
    step_tolerance: float = 1e-9
    relative_roundoff: float = 1e-10
    converged_decrement: float = 1e-6
    converged_gradient: float = 1e-3
    standardize: bool = True
    zero_sd_tolerance: float = 1e-4
    correlation_tolerance: float = 1e-4
    singular_tolerance: float = 1e-6

    def check(self) -> None:
        for name in ("max_iterations", "max_newton"):
            if getattr(self, name) < 0:
                raise SpecError(f"{name}={getattr(self, name)!r} must be >= 0")
        for name in ("handover_gradient", "hessian_refresh"):
            if not getattr(self, name) >= 0:
                raise SpecError(f"{name}={getattr(self, name)!r} must be >= 0")
        for name in ("gradient_tolerance", "step_tolerance",
                     "relative_roundoff", "converged_decrement", "converged_gradient",
                     "zero_sd_tolerance", "correlation_tolerance", "singular_tolerance"):
            if not getattr(self, name) > 0:
                raise SpecError(f"{name}={getattr(self, name)!r} must be a positive number")
