"""The generalized (binary and ordinal) engine: a dyadic GLMM with the dyad's two
correlated random intercepts, by Laplace or adaptive Gauss-Hermite quadrature, optionally
with the dyads nested in therapists (a therapist intercept; Laplace throughout).

:mod:`~apim.engine.glmm.links` (logit, probit), :mod:`~apim.engine.glmm.response` (the
probability of an ordered category and its derivatives), :mod:`~apim.engine.glmm.quadrature`
(modes and the marginal likelihood, all dyads at once), :mod:`~apim.engine.glmm.nested`
(the therapist level: Laplace over each therapist's block, analytic gradient),
:mod:`~apim.engine.glmm.model`
(data and parameter map), :mod:`~apim.engine.glmm.estimate` (the problem for the shared
driver and the result).
"""

from apim.engine.glmm.estimate import GLMMFit, fit_glmm
from apim.engine.glmm.links import LINKS, Link
from apim.engine.glmm.model import GLMMModel

__all__ = ["GLMMModel", "GLMMFit", "fit_glmm", "LINKS", "Link"]
