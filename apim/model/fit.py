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

import numpy as np
import pandas as pd

from apim.data.session import SessionData
from apim.engine.control import FitControl
from apim.engine.mixed.estimate import estimate_mixed as fit_engine
from apim.errors import SpecError
from apim.model.checks import check_design, check_sample
from apim.model.design import build_design
from apim.model.formula import formula_design
from apim.model.latent import LatentAPIMResult, LatentAPIMSpec, fit_latent, warn_if_unreliable
from apim.model.result import DF, APIMResult
from apim.model.spec import APIMSpec, FormulaSpec

__all__ = ["fit"]


@overload
def fit(data: SessionData, spec: LatentAPIMSpec, df: DF = ...,
        control: FitControl | None = ...) -> LatentAPIMResult: ...
@overload
def fit(data: SessionData, spec: APIMSpec | FormulaSpec, df: DF = ...,
        control: FitControl | None = ...) -> APIMResult: ...
def fit(data: SessionData, spec: APIMSpec | FormulaSpec | LatentAPIMSpec,
        df: DF = "satterthwaite", control: FitControl | None = None
        ) -> APIMResult | LatentAPIMResult:
    """Fit the APIM ``spec`` to ``data``.

    Parameters
    ----------
    data : SessionData
    spec : APIMSpec, FormulaSpec or LatentAPIMSpec
        A latent spec gives a :class:`~apim.model.latent.LatentAPIMResult`.
    df : {"satterthwaite", "containment"}
        Denominator degrees of freedom of the t tests (containment: nlme's rule).
    control : FitControl, optional
        The engine's tolerances, iteration limits and optimiser.

    Returns
    -------
    APIMResult or LatentAPIMResult

    Warns
    -----
    SmallSampleWarning
        Few dyads for the covariance parameters, or person means of a predictor with a
        mean reliability below .8 (observed-mean between effects are then biased toward
        the within effects; :class:`~apim.model.latent.LatentAPIMSpec` avoids that).
    """
    if df not in ("satterthwaite", "containment"):
        raise SpecError(f"df={df!r} is not one of 'satterthwaite', 'containment'")
    if isinstance(spec, LatentAPIMSpec):
        return fit_latent(data, spec)
    if isinstance(spec, FormulaSpec):
        design = formula_design(data, spec)
    elif isinstance(spec, APIMSpec):
        check_design(data, spec)
        design = build_design(data, spec)  # design.spec: the data-dependent defaults resolved
        resolved = design.spec
        if isinstance(resolved, APIMSpec) and \
                resolved.decomposition.center in ("person", "therapist"):
            warn_if_unreliable(data, spec.predictors)  # points to LatentAPIMSpec
    else:
        raise SpecError("spec must be an APIMSpec, a FormulaSpec or a LatentAPIMSpec, not "
                        f"{type(spec).__name__}")
    check_sample(design.model.n_params, _count(design.model.dyad))
    return APIMResult(design=design, engine=fit_engine(design.model, spec.method, control),
                      df=df)


def _count(labels: np.ndarray) -> int:
    """The number of distinct labels: hashed by pandas for numbers (a Python set of millions
    of numpy scalars takes ten times as long), by a set for text and other objects."""
    values = np.asarray(labels)
    return len(pd.unique(values)) if values.dtype.kind in "biuf" else len(set(values))
