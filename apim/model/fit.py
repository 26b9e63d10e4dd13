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
from apim.engine.fit import fit as fit_engine
from apim.model.checks import check_design
from apim.model.design import build_design
from apim.model.result import DF, APIMResult
from apim.model.spec import APIMSpec

__all__ = ["fit"]


def fit(data: SessionData, spec: APIMSpec, df: DF = "satterthwaite") -> APIMResult:
    """Fit the APIM ``spec`` to ``data``.

    Parameters
    ----------
    data : SessionData
    spec : APIMSpec
    df : {"satterthwaite", "containment"}
        Denominator degrees of freedom of the t tests (containment: nlme's rule).

    Returns
    -------
    APIMResult
    """
    check_design(data, spec)
    design = build_design(data, spec)
    return APIMResult(design=design, engine=fit_engine(design.model, spec.method), df=df)
