"""The REML/ML engine for linear mixed models with dyadic covariance structures.

It fits ``y = X beta + Z b + e`` per dyad (optionally nested in therapists) and knows
nothing about what the columns mean.
"""

from apim.engine.control import FitControl
from apim.engine.model import MixedModel
from apim.engine.parameters import VarianceParameter
from apim.engine.residual import Residual
from apim.engine.structures import CompoundSymmetry, Diagonal, Exchangeable, Unstructured

__all__ = ["MixedModel", "Residual", "Unstructured", "Diagonal", "CompoundSymmetry",
           "Exchangeable", "FitControl", "VarianceParameter"]
