"""Likelihood-ratio tests of nested APIMs and the test of distinguishability.

Examples
--------
>>> import apim
>>> data = apim.load_alliance()
>>> spec = apim.APIMSpec("outcome", ("alliance",), method="ML")
>>> test = likelihood_ratio_test(apim.fit(data, spec.replace(interaction=False)),
...                              apim.fit(data, spec.replace(interaction=True)))
>>> test.df
4
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from apim.data.session import SessionData
from apim.engine.distributions import stats
from apim.errors import SpecError
from apim.model.fit import fit
from apim.model.result import APIMResult
from apim.model.spec import APIMSpec

__all__ = ["LikelihoodRatioTest", "likelihood_ratio_test", "distinguishability_test",
           "POOLED_RESIDUAL"]

POOLED_RESIDUAL = {"un": "cs", "diagonal": "independent", "ar1": "ar1-equal",
                   "un-ar1": "cs-ar1"}


@dataclass(frozen=True)
class LikelihoodRatioTest:
    """``chi2 = 2 (logLik_full - logLik_reduced)`` on ``df`` degrees of freedom.

    When the reduced model puts a variance on the boundary (e.g. drops a random effect),
    the chi-square p value is conservative (Self & Liang, 1987).
    """

    chi2: float
    df: int
    p: float
    loglik_reduced: float
    loglik_full: float
    method: str

    def __str__(self) -> str:
        return (f"likelihood-ratio test ({self.method}): chi2({self.df}) = {self.chi2:.3f}, "
                f"p = {self.p:.4g}")


def likelihood_ratio_test(reduced: APIMResult, full: APIMResult) -> LikelihoodRatioTest:
    """Compare two nested fits of the same rows.

    Raises
    ------
    SpecError
        When the fits use different rows or methods, when REML fits differ in their fixed
        effects (their likelihoods are not comparable: refit with method="ML"), or when the
        "full" model does not have more parameters.
    """
    a, b = reduced.engine, full.engine
    if a.method != b.method:
        raise SpecError("both models must be fitted with the same method (ML or REML)")
    if a.n_obs != b.n_obs or not np.array_equal(np.sort(reduced.design.used),
                                                np.sort(full.design.used)):
        raise SpecError("the models use different rows; compare fits of the same rows")
    if a.method == "REML" and (list(a.coef.index) != list(b.coef.index)
                               or not np.allclose(a.model.X, b.model.X)):
        raise SpecError("REML likelihoods of models with different fixed effects are not "
                          "comparable: refit both with method='ML'")
    df = b.n_params - a.n_params
    if df <= 0:
        raise SpecError(f"the full model has {b.n_params} parameters, the reduced "
                          f"{a.n_params}: pass the smaller model first")
    chi2 = max(2 * (b.loglik - a.loglik), 0.0)
    return LikelihoodRatioTest(chi2=chi2, df=df, p=float(stats.chi2.sf(chi2, df)),
                               loglik_reduced=a.loglik, loglik_full=b.loglik, method=a.method)


def distinguishability_test(data: SessionData, spec: APIMSpec) -> LikelihoodRatioTest:
    """ML test of distinguishable against indistinguishable dyads (Kenny, Kashy & Cook,
    2006): the indistinguishable model pools intercepts and effects over roles and sets
    the residual variances equal (``un`` -> ``cs`` etc.)."""
    residual = spec.replace(distinguishable=True).residual_structure
    full = fit(data, spec.replace(distinguishable=True, method="ML", residual=residual))
    pooled = POOLED_RESIDUAL.get(residual, residual)
    reduced = fit(data, spec.replace(distinguishable=False, method="ML", residual=pooled))
    return likelihood_ratio_test(reduced, full)
