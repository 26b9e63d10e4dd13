"""The REML/ML engines, by job.

:mod:`apim.engine.mixed` fits ``y = X beta + Z b + e`` with structured covariances per
dyad (optionally nested in therapists); :mod:`apim.engine.multivariate` fits the
multivariate two- and three-level model of the latent APIM. Both use the one optimisation
driver of :mod:`apim.engine.optimize`; :mod:`~apim.engine.control`,
:mod:`~apim.engine.parameters`, :mod:`~apim.engine.distributions` and
:mod:`~apim.engine.threads` are shared. The engines know nothing about what the columns
mean. The multivariate engine loads on first use (``apim.engine.fit_multivariate``): a
mixed-model fit does not need it.
"""

from typing import Any

from apim.engine.control import FitControl
from apim.engine.mixed import (
    BOUNDARY_NOTE,
    RESIDUAL_NAMES,
    CompoundSymmetry,
    Diagonal,
    Exchangeable,
    MixedFit,
    MixedModel,
    RandomStructure,
    Residual,
    Unstructured,
    estimate_mixed,
    residual_names,
)
from apim.engine.parameters import VarianceParameter

__all__ = ["MixedModel", "MixedFit", "estimate_mixed", "BOUNDARY_NOTE", "Residual",
           "RESIDUAL_NAMES", "residual_names", "RandomStructure", "Unstructured", "Diagonal",
           "CompoundSymmetry", "Exchangeable", "FitControl", "VarianceParameter",
           "MultivariateFit", "fit_multivariate"]


def __getattr__(name: str) -> Any:
    if name in ("MultivariateFit", "fit_multivariate"):
        from apim.engine import multivariate

        return getattr(multivariate, name)
    raise AttributeError(f"module 'apim.engine' has no attribute {name!r}")
