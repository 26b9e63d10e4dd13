"""The dynamic engine (dynamic APIM): a vector of variables per session following a
VAR(1) around random intercepts, by exact ML.

:mod:`~apim.engine.dynamic.kalman` the likelihood (a Kalman filter over sessions for all
dyads at once); :mod:`~apim.engine.dynamic.parameters` the parameter vectors and their
maps; :mod:`~apim.engine.dynamic.estimate` the estimation (on :mod:`apim.engine.optimize`)
and :class:`~apim.engine.dynamic.estimate.DynamicFit`.
"""

from apim.engine.dynamic.estimate import DynamicFit, fit_dynamic

__all__ = ["DynamicFit", "fit_dynamic"]
