"""The specification of a generalized APIM: binary or ordinal session events.

The APIM design of :class:`~apim.model.spec.APIMSpec` (within/between split of both
members' predictors, role-specific intercepts, actor/partner/actor x partner/moderator
terms, covariates, lags, the indistinguishable variant) with a binomial (logit, probit)
or cumulative-link ordinal outcome and the dyad's two correlated random intercepts
(optionally dyads nested in therapists: a therapist random intercept shared by both
members). Estimation is maximum likelihood by Laplace (``nagq=1``) or adaptive
Gauss-Hermite quadrature (``nagq`` points per dimension, ``nagq^2`` per dyad); with a
therapist level by Laplace throughout.

Examples
--------
>>> spec = GeneralizedAPIMSpec("rupture", ("alliance",), family="binomial")
>>> spec.points, spec.link, spec.threshold_sets
(7, 'logit', 'role')
>>> GeneralizedAPIMSpec("rupture", ("alliance",), therapist_level=True).points  # Laplace
1
>>> GeneralizedAPIMSpec("rupture", ("alliance",), family="binomial", method="REML")
... # doctest: +ELLIPSIS
Traceback (most recent call last):
...
apim.errors.SpecError: method='REML' does not apply to a binomial outcome: ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from apim.errors import SpecError
from apim.model.centring import DecompositionSpec
from apim.model.spec import APIMSpec, CovarianceSpec, _check_reference, check_columns
from apim.specbase import Spec

__all__ = ["GeneralizedAPIMSpec", "DEFAULT_NAGQ", "MAX_NAGQ", "FAMILIES", "LINK_NAMES"]

DEFAULT_NAGQ = 7
"""Quadrature points per dimension by default: with few sessions per dyad the Laplace
approximation is visibly off (more than 1e-3 in the log-likelihood on 5-session dyads) and
7 points per dimension (49 per dyad) are within 1e-3 of 25
(tests/engine/test_glmm_engine.py)."""
MAX_NAGQ = 25
FAMILIES = ("binomial", "ordinal")
LINK_NAMES = ("logit", "probit")


@dataclass(frozen=True)
class GeneralizedAPIMSpec(Spec):
    """An APIM for a binary or ordinal outcome (fitted by :func:`apim.fit`).

    Parameters
    ----------
    outcome : str
        Each member's outcome: 0/1 for ``family="binomial"``; ordered categories (the
        sorted distinct numeric values) for ``family="ordinal"``.
    predictors : tuple of str
        Time-varying predictors rated by both members (as in :class:`APIMSpec`).
    family : {"binomial", "ordinal"}
    link : {"logit", "probit"}
        ``P(Y = 1) = F(eta)``; ordinal: ``P(Y <= k) = F(theta_k - eta)``, so a positive
        effect means higher categories.
    nagq : int, optional
        Quadrature points per dimension of the dyad's two intercepts (1: Laplace; at most
        25). Default (None): 7, or 1 with a therapist level (:attr:`points`).
    decomposition, distinguishable, interaction, moderators, covariates, reference
        As in :class:`~apim.model.spec.APIMSpec`.
    thresholds : {"role", "shared"}, optional
        Ordinal: one set of thresholds per role (default for distinguishable dyads) or one
        shared by both (default, and the only choice, for indistinguishable dyads).
    therapist_level : bool
        Dyads nested in therapists (the data's therapist column): a therapist random
        intercept shared by both members' linear predictors, as the Gaussian APIM's
        ``CovarianceSpec(therapist_level=True)``. Fitted by the Laplace approximation over
        each therapist's block (its intercept and its dyads' pairs), so ``nagq`` is 1
        by default (a warning says so when ``nagq > 1`` is given).
    method : {"ML"}
        Maximum likelihood (REML is refused: it is defined for Gaussian outcomes).
    """

    kind: ClassVar[str] = "generalized APIM"

    outcome: str
    predictors: tuple[str, ...]
    family: Literal["binomial", "ordinal"] = "binomial"
    link: Literal["logit", "probit"] = "logit"
    nagq: int | None = None
    decomposition: DecompositionSpec = field(default_factory=DecompositionSpec)
    distinguishable: bool = True
    interaction: bool = False
    moderators: tuple[str, ...] = ()
    covariates: tuple[str, ...] = ()
    thresholds: Literal["role", "shared"] | None = None
    method: str = "ML"
    reference: tuple[tuple[str, str], ...] = ()
    therapist_level: bool = False

    def check(self) -> None:
        if self.method.upper() != "ML":
            raise SpecError(f"method={self.method!r} does not apply to a {self.family} "
                            "outcome: a generalized APIM is fitted by maximum likelihood "
                            "only (REML is defined for Gaussian outcomes); use method='ML'")
        if self.nagq is not None and not 1 <= self.nagq <= MAX_NAGQ:
            raise SpecError(f"nagq={self.nagq} must be between 1 (Laplace) and {MAX_NAGQ} "
                            "quadrature points per dimension")
        check_columns("an APIM", self.outcome, self.predictors,
                      self.moderators + self.covariates)
        _check_reference(self.reference, self.moderators)
        if self.thresholds is not None and self.family != "ordinal":
            raise SpecError(f"thresholds={self.thresholds!r} applies to an ordinal outcome; "
                            "a binomial outcome has role intercepts instead: drop it")
        if self.thresholds == "role" and not self.distinguishable:
            raise SpecError("thresholds='role' gives the two roles different thresholds, "
                            "which indistinguishable dyads do not have; use "
                            "thresholds='shared' (or distinguishable=True)")

    @property
    def points(self) -> int:
        """The quadrature points per dimension in effect: ``nagq``, else 7, or 1 (Laplace)
        with a therapist level, which is fitted by Laplace throughout."""
        if self.nagq is not None:
            return self.nagq
        return 1 if self.therapist_level else DEFAULT_NAGQ

    @property
    def threshold_sets(self) -> Literal["role", "shared"]:
        """The thresholds in effect: ``role`` or ``shared``."""
        if self.thresholds is not None:
            return self.thresholds
        return "role" if self.distinguishable else "shared"

    def design_spec(self) -> APIMSpec:
        """The Gaussian APIM whose design (fixed effects, dyads, roles) this model uses:
        the same terms, random role intercepts, ML."""
        return APIMSpec(outcome=self.outcome, predictors=self.predictors,
                        decomposition=self.decomposition,
                        distinguishable=self.distinguishable, interaction=self.interaction,
                        moderators=self.moderators, covariates=self.covariates,
                        covariance=CovarianceSpec(random="intercepts",
                                                  therapist_level=self.therapist_level),
                        method="ML",
                        reference=self.reference)
