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

import dataclasses
from dataclasses import dataclass, replace

import numpy as np

from apim.apa import p_phrase
from apim.data.session import SessionData
from apim.engine.distributions import stats
from apim.engine.mixed.residuals import Residual
from apim.errors import SpecError
from apim.model.fitted import FittedModel
from apim.model.registry import fit
from apim.model.spec import APIMSpec

__all__ = ["LikelihoodRatioTest", "likelihood_ratio_test", "distinguishability_test"]


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
    constraints: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = (f"likelihood-ratio test ({self.method}): chi2({self.df}) = {self.chi2:.3f}, "
                f"{p_phrase(self.p)}")
        if self.constraints:
            text += "; constraints tested: " + "; ".join(self.constraints)
        return text


def likelihood_ratio_test(reduced: FittedModel, full: FittedModel) -> LikelihoodRatioTest:
    """Compare two nested fits of the same rows (any kind of model).

    Raises
    ------
    SpecError
        When the fits use different rows or methods, when REML fits differ in their fixed
        effects (their likelihoods are not comparable: refit with method="ML"), or when the
        "full" model does not have more parameters.
    """
    a, b = reduced.statistics, full.statistics
    if a.method != b.method:
        raise SpecError("both models must be fitted with the same method (ML or REML)")
    if a.n_obs != b.n_obs or not np.array_equal(reduced.dropped["row"].to_numpy(),
                                                full.dropped["row"].to_numpy()):
        raise SpecError("the models use different rows; compare fits of the same rows")
    if a.method == "REML" and not _same_fixed_effects(reduced, full):
        raise SpecError("REML likelihoods of models with different fixed effects are not "
                        "comparable: refit both with method='ML'")
    df = b.n_params - a.n_params
    if df <= 0:
        raise SpecError(f"the full model has {b.n_params} parameters, the reduced "
                        f"{a.n_params}: pass the smaller model first")
    chi2 = max(2 * (b.loglik - a.loglik), 0.0)
    return LikelihoodRatioTest(chi2=chi2, df=df, p=float(stats.chi2.sf(chi2, df)),
                               loglik_reduced=a.loglik, loglik_full=b.loglik, method=a.method)


def _same_fixed_effects(a: FittedModel, b: FittedModel) -> bool:
    if list(a.coef.index) != list(b.coef.index):
        return False
    xa, xb = a.design_matrix(), b.design_matrix()
    return (xa is None) == (xb is None) and (xa is None or xb is None
                                             or np.allclose(xa.to_numpy(), xb.to_numpy()))


def distinguishability_test(data: SessionData, spec: APIMSpec) -> LikelihoodRatioTest:
    """ML test of distinguishable against indistinguishable dyads (Kenny, Kashy & Cook,
    2006).

    The full model is ``spec`` with distinguishable dyads (its residual structure, default
    ``un``; its random part). The reduced model pools intercepts and effects over roles,
    centres predictors on both roles together, gives the members' random effects the
    exchangeable covariance (equal variances, free covariances: nlme's
    ``pdCompSymm(~ 0 + member1 + member2)`` for intercepts) and the residuals equal
    variances (``un`` -> ``cs``, ``diagonal`` -> ``independent``, ``ar1`` ->
    ``ar1-equal``, ``un-ar1`` -> ``cs-ar1``). ``df`` is the difference in parameters;
    ``constraints`` lists what the test sets equal.
    """
    residual = Residual.named(spec.replace(distinguishable=True).residual_structure)
    cov = spec.covariance
    full = fit(data, spec.replace(distinguishable=True, method="ML",
                                  covariance=cov.replace(residual=residual.name)))
    reduced = fit(data, spec.replace(distinguishable=False, method="ML",
                                     covariance=cov.replace(residual=residual.pooled.name)))
    test = likelihood_ratio_test(reduced, full)
    constraints = list(_constraints(full, reduced))
    return replace(test, constraints=tuple(constraints))


def _constraints(full: FittedModel, reduced: FittedModel) -> list[str]:
    """What the reduced (indistinguishable) model sets equal, one line per group."""
    r0, r1 = full.roles
    out = []
    for term in full.terms:
        if term.outcome_role == r0:
            other = dataclasses.replace(term, outcome_role=r1)
            out.append(f"{term.name} = {other.name}")

    def random_count(result: FittedModel) -> int:
        return sum(p.level == "dyad" for p in result.parameters)

    k_full, k_reduced = random_count(full), random_count(reduced)
    if k_full > k_reduced:
        out.append(f"the two members' random effects have equal variances and covariances "
                   f"({k_full - k_reduced} constraint{'s' if k_full - k_reduced > 1 else ''})")
    if not any(p.level == "residual" and p.kind == "sd" and p.pooled
               for p in full.parameters):
        out.append(f"equal residual variances of {r0} and {r1}")
    return out
