"""The mixed-model engine: ``y = X beta + Z_T v + Z b + e`` by REML or ML, per dyad
(optionally nested in therapists), with structured random effects and residuals.

:mod:`~apim.engine.mixed.model` the model and its sorted form;
:mod:`~apim.engine.mixed.random_effects` and :mod:`~apim.engine.mixed.residuals` the
covariance structures; :mod:`~apim.engine.mixed.moments`,
:mod:`~apim.engine.mixed.grouped`, :mod:`~apim.engine.mixed.missing_ratings` and
:mod:`~apim.engine.mixed.products` the whitened cross products;
:mod:`~apim.engine.mixed.likelihood` the likelihood and its gradient;
:mod:`~apim.engine.mixed.hessian` the observed information; :mod:`~apim.engine.mixed.start`
the start values; :mod:`~apim.engine.mixed.scaling` the internal standardisation;
:mod:`~apim.engine.mixed.df` the denominator degrees of freedom;
:mod:`~apim.engine.mixed.estimate` the estimation (on :mod:`apim.engine.optimize`) and
:class:`~apim.engine.mixed.estimate.MixedFit`.
"""

from apim.engine.mixed.estimate import BOUNDARY_NOTE, MixedFit, estimate_mixed
from apim.engine.mixed.model import MixedModel
from apim.engine.mixed.random_effects import (
    CompoundSymmetry,
    Diagonal,
    Exchangeable,
    RandomStructure,
    Unstructured,
)
from apim.engine.mixed.residuals import RESIDUAL_NAMES, Residual, residual_names

__all__ = ["MixedModel", "MixedFit", "estimate_mixed", "BOUNDARY_NOTE", "Residual",
           "RESIDUAL_NAMES", "residual_names", "RandomStructure", "Unstructured", "Diagonal",
           "CompoundSymmetry", "Exchangeable"]
