"""The one entry point for fitting an APIM: data and spec in, :class:`APIMResult` out.

Examples
--------
>>> import apim
>>> result = apim.fit(apim.load_alliance(), apim.APIMSpec("outcome", ("alliance",)))
>>> result.engine.converged
True
"""

from __future__ import annotations

from apim.data.session import SessionData
from apim.engine.control import FitControl
from apim.engine.fit import fit as fit_engine
from apim.errors import SpecError
from apim.model.checks import check_design, check_sample
from apim.model.design import build_design
from apim.model.formula import formula_design
from apim.model.result import DF, APIMResult
from apim.model.spec import APIMSpec, FormulaSpec

__all__ = ["fit"]


def fit(data: SessionData, spec: APIMSpec | FormulaSpec, df: DF = "satterthwaite",
        control: FitControl | None = None) -> APIMResult:
    """Fit the APIM ``spec`` to ``data``.

    Parameters
    ----------
    data : SessionData
    spec : APIMSpec
    df : {"satterthwaite", "containment"}
        Denominator degrees of freedom of the t tests (containment: nlme's rule).
    control : FitControl, optional
        The engine's tolerances, iteration limits and optimiser.

    Returns
    -------
    APIMResult
    """
    if df not in ("satterthwaite", "containment"):
        raise SpecError(f"df={df!r} is not one of 'satterthwaite', 'containment'")
    if isinstance(spec, FormulaSpec):
        design = formula_design(data, spec)
    elif isinstance(spec, APIMSpec):
        check_design(data, spec)
        design = build_design(data, spec)
    else:
        raise SpecError(f"spec must be an APIMSpec or a FormulaSpec, not {type(spec).__name__}")
    check_sample(design.model.n_params, len(set(design.model.dyad)))
    return APIMResult(design=design, engine=fit_engine(design.model, spec.method, control),
                      df=df)
