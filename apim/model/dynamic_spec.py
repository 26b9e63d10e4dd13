"""What to fit for the dynamic APIM (issue 22): lagged actor and partner effects of a
VAR(1) around latent person means, by exact ML (:mod:`apim.model.dynamic`).

Examples
--------
>>> spec = DynamicAPIMSpec("outcome", ("alliance",))
>>> spec.initial, spec.reverse_paths, spec.equal_roles
('free', True, False)
>>> DynamicAPIMSpec.from_dict(spec.to_dict()) == spec
True
>>> DynamicAPIMSpec("outcome", ("alliance",), therapist_level=True).therapist_covariance
'unstructured'
>>> DynamicAPIMSpec("outcome", ("alliance",), initial="steady")
Traceback (most recent call last):
...
apim.errors.SpecError: initial='steady' is not one of 'free', 'stationary'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from apim.model.spec import _check_reference, check_columns, check_therapist_covariance
from apim.specbase import Spec

__all__ = ["DynamicAPIMSpec"]


@dataclass(frozen=True)
class DynamicAPIMSpec(Spec):
    """A dynamic APIM (fitted by :func:`apim.fit`).

    For each dyad ``i`` and session ``t`` the vector ``z_it`` of both members'
    predictors and outcome is ``mu + u_i + w_it`` with latent person means
    ``u_i ~ N(0, Sigma_B)`` and ``w_it = Phi w_i,t-1 + e_it``, ``e_it ~ N(0, Sigma_W)``
    (``Phi`` a full K x K matrix of lagged effects, both covariances unstructured). With
    a therapist level ``z_it = mu + v_j + u_i + w_it`` for dyad ``i`` of therapist ``j``,
    ``v_j ~ N(0, Sigma_T)``.

    Parameters
    ----------
    outcome : str
        Each member's outcome.
    predictors : tuple of str
        Time-varying variables rated by both members (e.g. alliance).
    initial : {"free", "stationary"}
        The within part at the study's first session: its own free covariance (as the
        RI-CLPM; default) or the stationary distribution implied by ``Phi`` and
        ``Sigma_W`` (the process has run before the first session; ``Phi`` must then be
        stable).
    reverse_paths : bool
        Estimate the lagged effects of the outcome on the predictors (outcome at t-1 ->
        alliance at t); False fixes them at zero.
    equal_roles : bool
        The same lagged effects for both roles (indistinguishable dyads): each of the
        second role's lagged effects equals the first role's counterpart.
    moderator : str, optional
        Dyad-level grouping (e.g. treatment arm): a multi-group model with its own means,
        ``Phi``, ``Sigma_W`` and ``Sigma_B`` per group; effects carry the group in
        brackets and :func:`apim.arm_differences` tests the groups' differences.
    reference : mapping or tuple of (column, level) pairs
        The reference group of ``moderator`` (the first group), e.g.
        ``{"treatment": "CBT"}``; default as in :class:`~apim.model.spec.APIMSpec`.
    therapist_level : bool
        Dyads nested in therapists: a random K-vector of means per therapist (needs the
        data's therapist column); ``Sigma_B`` becomes the covariance of dyads within
        therapists. With a moderator the therapists must be nested in its groups.
    therapist_covariance : {"unstructured", "diagonal"}
        Structure of the therapist-level covariance ``Sigma_T`` (as in
        :class:`~apim.model.spec.LatentAPIMSpec`).
    covariates : tuple of str
        Dyad-level covariates of the means (constant within each dyad, e.g. baseline
        severity or treatment arm): ``mu_i = B' (1, c_i)``, each covariate's effect on
        the mean of every variable of both members; a text column is coded 0/1 against
        its reference level (as a moderator). Time-varying covariates are not supported.

    Examples
    --------
    >>> DynamicAPIMSpec("outcome", ("alliance",), initial="stationary").kind
    'dynamic APIM'
    """

    kind: ClassVar[str] = "dynamic APIM"

    outcome: str
    predictors: tuple[str, ...]
    initial: Literal["free", "stationary"] = "free"
    reverse_paths: bool = True
    equal_roles: bool = False
    moderator: str | None = None
    reference: tuple[tuple[str, str], ...] = ()
    therapist_level: bool = False
    therapist_covariance: Literal["unstructured", "diagonal"] = "unstructured"
    covariates: tuple[str, ...] = ()

    def check(self) -> None:
        _check_reference(self.reference, ((self.moderator,) if self.moderator else ())
                         + tuple(self.covariates))
        check_columns("a dynamic APIM", self.outcome, self.predictors,
                      self.covariates + ((self.moderator,) if self.moderator else ()))
        check_therapist_covariance(self.therapist_covariance, self.therapist_level)
