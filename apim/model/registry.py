"""The one entry point for fitting: a registry from specification type to fitter.

:func:`fit` looks up the spec's type in :data:`FITTERS` and calls that fitter with the
options that apply to it. An option that does not apply to the spec's kind is refused
with a :class:`~apim.errors.SpecError` that names it, never ignored. A new model family
adds one line here: its spec type, its fitter and the options it takes.

Examples
--------
>>> import apim
>>> result = apim.fit(apim.load_alliance(), apim.APIMSpec("outcome", ("alliance",)))
>>> result.statistics.converged
True
>>> try:
...     apim.fit(apim.load_alliance(), apim.LatentAPIMSpec("outcome", ("alliance",)),
...              df="containment")
... except apim.errors.SpecError as error:
...     print(str(error).split(":")[0])
df='containment' does not apply to a latent APIM
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import pandas as pd

from apim.data.session import SessionData
from apim.engine.control import FitControl
from apim.engine.mixed.estimate import estimate_mixed as fit_engine
from apim.errors import SpecError
from apim.model.checks import check_design, check_sample
from apim.model.design import APIMDesign, build_design
from apim.model.dynamic_spec import DynamicAPIMSpec
from apim.model.fitted import FittedModel
from apim.model.generalized_spec import GeneralizedAPIMSpec
from apim.model.reliability import warn_if_unreliable
from apim.model.result import APIMResult
from apim.model.spec import APIMSpec, FormulaSpec, LatentAPIMSpec, Method
from apim.specbase import Spec

if TYPE_CHECKING:  # the other families' modules load when a spec of theirs is fitted
    from apim.model.dynamic_result import DynamicAPIMResult
    from apim.model.latent_result import LatentAPIMResult

__all__ = ["fit", "Fitter", "FITTERS"]


@dataclass(frozen=True)
class Fitter:
    """How one kind of spec is fitted.

    Attributes
    ----------
    function : ``function(data, spec, **options) -> FittedModel``
    options : the keyword options of :func:`fit` it takes
    refusals : for an option it does not take, why (said in the error)
    """

    function: Callable[..., FittedModel]
    options: tuple[str, ...] = ()
    refusals: tuple[tuple[str, str], ...] = ()


def _on_first_use(module: str, name: str) -> Callable[..., FittedModel]:
    """The fitter ``module.name``, imported when it is first called: ``apim fit`` of an
    APIM does not load the latent, generalized, dynamic and formula families' modules
    (patsy, their engines)."""

    def call(*args: Any, **options: Any) -> FittedModel:
        function: Callable[..., FittedModel] = getattr(importlib.import_module(module), name)
        return function(*args, **options)

    call.__name__ = call.__qualname__ = name
    call.__module__ = module
    return call


def _check_df(df: str) -> None:
    if df not in ("satterthwaite", "containment"):
        raise SpecError(f"df={df!r} is not one of 'satterthwaite', 'containment'")


def _fit_design(design: APIMDesign, method: Method, df: str,
                control: FitControl | None) -> APIMResult:
    check_sample(design.model.n_params, _count(design.model.dyad))
    return APIMResult(design=design, engine=fit_engine(design.model, method, control),
                      df=df)  # type: ignore[arg-type]


def _fit_apim(data: SessionData, spec: APIMSpec, df: str = "satterthwaite",
              control: FitControl | None = None) -> APIMResult:
    _check_df(df)
    check_design(data, spec)
    design = build_design(data, spec)  # design.spec: the data-dependent defaults resolved
    resolved = design.spec
    if isinstance(resolved, APIMSpec) and resolved.decomposition.center in ("person",
                                                                           "therapist"):
        warn_if_unreliable(data, spec.predictors)  # points to LatentAPIMSpec
    return _fit_design(design, spec.method, df, control)


def _fit_formula(data: SessionData, spec: FormulaSpec, df: str = "satterthwaite",
                 control: FitControl | None = None) -> APIMResult:
    from apim.model.formula import formula_design  # patsy: only here

    _check_df(df)
    return _fit_design(formula_design(data, spec), spec.method, df, control)


_LATENT_REFUSALS = (
    ("df", "its tests are z tests (normal theory, as lavaan reports them)"),
    ("control", "its optimiser has its own settings"),
)

FITTERS: dict[type[Spec], Fitter] = {
    APIMSpec: Fitter(_fit_apim, ("df", "control")),
    FormulaSpec: Fitter(_fit_formula, ("df", "control")),
    LatentAPIMSpec: Fitter(_on_first_use("apim.model.latent", "fit_latent"), (),
                           _LATENT_REFUSALS),
    GeneralizedAPIMSpec: Fitter(_on_first_use("apim.model.generalized", "fit_generalized"),
                                ("control",), (
        ("df", "its tests are z tests (maximum likelihood, as glmer and glmmTMB)"),)),
    DynamicAPIMSpec: Fitter(_on_first_use("apim.model.dynamic", "fit_dynamic_apim"), (),
                            _LATENT_REFUSALS),
}
"""Spec type -> fitter: the registry behind :func:`fit`."""


@overload
def fit(data: SessionData, spec: APIMSpec | FormulaSpec, *, df: str | None = ...,
        control: FitControl | None = ...) -> APIMResult: ...
@overload
def fit(data: SessionData, spec: LatentAPIMSpec, *, df: str | None = ...,
        control: FitControl | None = ...) -> LatentAPIMResult: ...
@overload
def fit(data: SessionData, spec: DynamicAPIMSpec, *, df: str | None = ...,
        control: FitControl | None = ...) -> DynamicAPIMResult: ...
@overload
def fit(data: SessionData, spec: Spec, *, df: str | None = ...,
        control: FitControl | None = ...) -> FittedModel: ...
def fit(data: SessionData, spec: Spec, *, df: str | None = None,
        control: FitControl | None = None) -> FittedModel:
    """Fit the model ``spec`` to ``data``.

    Parameters
    ----------
    data : SessionData
    spec : APIMSpec, FormulaSpec, LatentAPIMSpec or DynamicAPIMSpec
        The model; its type decides the fitter (:data:`FITTERS`).
    df : {"satterthwaite", "containment"}, optional
        Denominator degrees of freedom of the t tests of a mixed model (default
        Satterthwaite; containment: nlme's rule). Refused for the latent and dynamic
        APIMs (z tests).
    control : FitControl, optional
        The mixed-model engine's tolerances, iteration limits and optimiser.

    Returns
    -------
    FittedModel
        :class:`~apim.model.result.APIMResult` for an APIMSpec or FormulaSpec,
        :class:`~apim.model.latent_result.LatentAPIMResult` for a LatentAPIMSpec,
        :class:`~apim.model.dynamic_result.DynamicAPIMResult` for a DynamicAPIMSpec.

    Raises
    ------
    SpecError
        An unknown kind of spec, or an option that does not apply to it.

    Warns
    -----
    SmallSampleWarning
        Few dyads for the covariance parameters, or person means of a predictor with a
        mean reliability below .8 (observed-mean between effects are then biased toward
        the within effects; :class:`~apim.model.spec.LatentAPIMSpec` avoids that).
    """
    fitter = FITTERS.get(type(spec))
    if fitter is None:
        kinds = ", ".join(t.__name__ for t in FITTERS)
        raise SpecError(f"cannot fit a {type(spec).__name__}: the spec must be one of {kinds}")
    given = {name: value for name, value in (("df", df), ("control", control))
             if value is not None}
    why = dict(fitter.refusals)
    for name, value in given.items():
        if name not in fitter.options:
            shown = f"{value!r}" if isinstance(value, str) else type(value).__name__
            reason = why.get(name, "the option is not used by this kind of model")
            kind = getattr(spec, "kind", type(spec).__name__)
            raise SpecError(f"{name}={shown} does not apply to a {kind}: {reason}; "
                            f"drop {name}")
    return fitter.function(data, spec, **given)


def _count(labels: np.ndarray) -> int:
    """The number of distinct labels: hashed by pandas for numbers (a Python set of millions
    of numpy scalars takes ten times as long), by a set for text and other objects."""
    values = np.asarray(labels)
    return len(pd.unique(values)) if values.dtype.kind in "biuf" else len(set(values))
