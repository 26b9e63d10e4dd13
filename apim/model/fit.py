"""The one entry point for fitting an APIM: data and spec in, :class:`APIMResult` out.

Examples
--------
>>> import apim
>>> result = apim.fit(apim.load_alliance(), apim.APIMSpec("outcome", ("alliance",)))
>>> result.engine.converged
True
"""

from __future__ import annotations

from typing import overload

from apim.data.session import SessionData
from apim.engine.fit import fit as fit_engine
from apim.errors import SpecError
from apim.model.design import build_design
from apim.model.formula import formula_design
from apim.model.latent import LatentAPIMResult, LatentAPIMSpec, fit_latent
from apim.model.result import DF, APIMResult
from apim.model.spec import APIMSpec, FormulaSpec

__all__ = ["fit"]


@overload
def fit(data: SessionData, spec: LatentAPIMSpec, df: DF = ...) -> LatentAPIMResult: ...
@overload
def fit(data: SessionData, spec: APIMSpec | FormulaSpec, df: DF = ...) -> APIMResult: ...
def fit(data: SessionData, spec: APIMSpec | FormulaSpec | LatentAPIMSpec,
        df: DF = "satterthwaite") -> APIMResult | LatentAPIMResult:
    """Fit the APIM ``spec`` to ``data``.

    Parameters
    ----------
    data : SessionData
    spec : APIMSpec, FormulaSpec or LatentAPIMSpec
        A latent spec gives a :class:`~apim.model.latent.LatentAPIMResult`.
    df : {"satterthwaite", "containment"}
        Denominator degrees of freedom of the t tests (containment: nlme's rule).

    Returns
    -------
    APIMResult
    """
    if df not in ("satterthwaite", "containment"):
        raise SpecError(f"df={df!r} is not one of 'satterthwaite', 'containment'")
    if isinstance(spec, LatentAPIMSpec):
        return fit_latent(data, spec)
    if isinstance(spec, FormulaSpec):
        design = formula_design(data, spec)
    elif isinstance(spec, APIMSpec):
        design = build_design(data, spec)
    else:
        raise SpecError(f"spec must be an APIMSpec or a FormulaSpec, not {type(spec).__name__}")
    return APIMResult(design=design, engine=fit_engine(design.model, spec.method), df=df)
