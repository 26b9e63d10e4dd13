"""The multivariate engine (latent APIM): a vector of variables per session, with
unstructured within- and between-cluster covariances (optionally AR(1) within, and a third,
therapist level), by ML or REML.

:mod:`~apim.engine.multivariate.likelihood` the two-level likelihood and its gradient;
:mod:`~apim.engine.multivariate.nested` the three-level one;
:mod:`~apim.engine.multivariate.parameters` the parameter vectors and their maps;
:mod:`~apim.engine.multivariate.start` the moment start values;
:mod:`~apim.engine.multivariate.estimate` the estimation (on :mod:`apim.engine.optimize`)
and :class:`~apim.engine.multivariate.estimate.MultivariateFit`.
"""

from apim.engine.multivariate.estimate import MultivariateFit, fit_multivariate

__all__ = ["MultivariateFit", "fit_multivariate"]
