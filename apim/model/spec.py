"""What to fit, frozen and checked on construction: the APIM's effects (:class:`APIMSpec`)
and, separately, its covariance structure (:class:`CovarianceSpec`); :class:`FormulaSpec`
for models written as patsy formulas.

Every spec round-trips through ``to_dict``/``from_dict`` and has a stable ``digest()``
(:mod:`apim.specbase`).

Examples
--------
>>> spec = APIMSpec(outcome="outcome", predictors=("alliance",), moderators=("treatment",))
>>> spec.covariance.random, spec.residual_structure
(None, 'un')
>>> APIMSpec(outcome="y", predictors=("x",), distinguishable=False).residual_structure
'cs'
>>> APIMSpec.from_dict(spec.to_dict()) == spec
True
>>> APIMSpec("y", ("x",), interaction="False")
Traceback (most recent call last):
...
apim.errors.SpecError: interaction='False' must be true or false
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from apim.engine.mixed.residuals import RESIDUAL_NAMES
from apim.errors import SpecError
from apim.model.centring import DecompositionSpec
from apim.specbase import Spec

__all__ = ["APIMSpec", "CovarianceSpec", "FormulaSpec", "LatentAPIMSpec", "EFFECTS", "Method"]

EFFECTS = ("intercept", "actor", "partner", "actor_x_partner", "moderator", "covariate")
Method = Literal["REML", "ML"]


def check_columns(kind: str, outcome: str, predictors: tuple[str, ...],
                  others: tuple[str, ...] = ()) -> None:
    """A model needs a predictor, and uses each column (outcome, predictors, moderators,
    covariates: ``others``) once; ``kind`` names the model in the message ("an APIM")."""
    if not predictors:
        raise SpecError(f"{kind} needs at least one predictor")
    used = [outcome, *predictors, *others]
    repeated = {c for c in used if used.count(c) > 1}
    if repeated:
        raise SpecError(f"column {sorted(repeated)[0]!r} is used twice in the model")


def check_therapist_covariance(covariance: str, therapist_level: bool) -> None:
    """A therapist covariance structure other than the default needs the level."""
    if covariance != "unstructured" and not therapist_level:
        raise SpecError(f"therapist_covariance={covariance!r} applies to the therapist "
                        "level: set therapist_level=True too")


def _check_reference(reference: tuple[tuple[str, str], ...],
                     moderators: tuple[str, ...]) -> None:
    """Each reference names a moderator of the model, once (the level is checked against
    the data by :func:`apim.model.design.moderator_levels`)."""
    columns = [c for c, _ in reference]
    for column in columns:
        if columns.count(column) > 1:
            raise SpecError(f"reference names column {column!r} twice; give one level per "
                            "moderator")
        if column not in moderators:
            present = ", ".join(repr(m) for m in moderators) or "none"
            raise SpecError(f"reference {column}=...: {column!r} is not a moderator of the "
                            f"model (its moderators: {present}); add it as a moderator or "
                            "drop the reference")


def _check_residual(residual: str | None) -> None:
    if residual is not None and residual not in RESIDUAL_NAMES:
        raise SpecError(f"residual={residual!r} is not one of {', '.join(RESIDUAL_NAMES)}")


@dataclass(frozen=True)
class CovarianceSpec(Spec):
    """The random part and the residual structure of a dyadic model.

    Parameters
    ----------
    random : {"none", "intercepts", "slopes"}, optional
        Random effects per dyad: none, role-specific intercepts, or intercepts plus
        role-specific random actor and partner slopes of the time-varying parts. Default
        (None): intercepts for data over time, none for cross-sectional data (decided in
        :func:`apim.model.design.resolve_spec`).
    residual : str, optional
        Residual structure, one of :data:`apim.engine.RESIDUAL_NAMES` (``un``,
        ``cs``, ``diagonal``, ``independent``, ``ar1``, ``un-ar1``, ``ar1-equal``,
        ``cs-ar1``); default ``un`` for distinguishable and ``cs`` for indistinguishable
        dyads.
    therapist_level : bool
        Add a random intercept per therapist (dyads nested in therapists).
    """

    random: Literal["none", "intercepts", "slopes"] | None = None
    residual: str | None = None
    therapist_level: bool = False

    def check(self) -> None:
        _check_residual(self.residual)


@dataclass(frozen=True)
class APIMSpec(Spec):
    """An actor-partner interdependence model for session-by-session data.

    Parameters
    ----------
    outcome : str
        Each member's outcome (e.g. their session-outcome rating).
    predictors : tuple of str
        Time-varying predictors rated by both members (e.g. alliance); each gives actor and
        partner effects at the levels the decomposition defines.
    decomposition : DecompositionSpec
        Person-mean split (default), three levels with therapists, grand-mean centring or
        raw predictors; lag; detrending (the removed trend is not itself a predictor: add
        ``session`` as a covariate to model change over sessions).
    distinguishable : bool
        Two-intercept model with effects per outcome role (default), or one intercept and
        effects pooled over roles (indistinguishable dyads).
    interaction : bool
        Add actor x partner interactions at the within and between level.
    moderators : tuple of str
        Dyad-level moderators (e.g. treatment arm): their main effect and their
        interaction with every actor and partner effect. Categorical moderators are dummy
        coded against their reference level (see ``reference``).
    covariates : tuple of str
        Further fixed effects (e.g. session number), per outcome role.
    covariance : CovarianceSpec
        Random effects, residual structure and therapist level.
    method : {"REML", "ML"}
    reference : mapping or tuple of (column, level) pairs
        The reference level of categorical moderators, e.g. ``{"treatment": "CBT"}``
        (stored as ``(("treatment", "CBT"),)``). Default, the same in Python, the CLI and
        plans: the data's declared order (a pandas Categorical: SPSS/Stata value labels,
        Parquet categories, a plan's ``categories``), otherwise the first level in sorted
        order (:func:`apim.model.design.moderator_levels`, the one place that decides).
    """

    kind: ClassVar[str] = "observed-mean APIM"

    outcome: str
    predictors: tuple[str, ...]
    decomposition: DecompositionSpec = field(default_factory=DecompositionSpec)
    distinguishable: bool = True
    interaction: bool = False
    moderators: tuple[str, ...] = ()
    covariates: tuple[str, ...] = ()
    covariance: CovarianceSpec = field(default_factory=CovarianceSpec)
    method: Method = "REML"
    reference: tuple[tuple[str, str], ...] = ()

    def check(self) -> None:
        check_columns("an APIM", self.outcome, self.predictors,
                      self.moderators + self.covariates)
        _check_reference(self.reference, self.moderators)

    @property
    def residual_structure(self) -> str:
        """The residual structure in effect."""
        if self.covariance.residual is not None:
            return self.covariance.residual
        return "un" if self.distinguishable else "cs"


@dataclass(frozen=True)
class FormulaSpec(Spec):
    """A dyadic mixed model written as a patsy formula (fitted by :func:`apim.fit`).

    Parameters
    ----------
    formula : str
        ``outcome ~ terms``; ``x_partner`` is the partner's ``x`` at the same session.
    random : str, optional
        Right-hand side of the dyad-level random effects, e.g. ``"0 + man + woman"``.
    residual : str
        Residual structure (as in :class:`CovarianceSpec`).
    therapist_level : bool
    method : {"REML", "ML"}
    """

    kind: ClassVar[str] = "formula model"

    formula: str
    random: str | None = None
    residual: str = "un"
    therapist_level: bool = False
    method: Method = "REML"

    def check(self) -> None:
        _check_residual(self.residual)
        if "~" not in self.formula:
            raise SpecError(f"formula={self.formula!r} needs an outcome: 'y ~ x + x_partner'")

    @property
    def residual_structure(self) -> str:
        return self.residual


@dataclass(frozen=True)
class LatentAPIMSpec(Spec):
    """An APIM with latent within/between decomposition (fitted by :func:`apim.fit`).

    Parameters
    ----------
    outcome : str
        Each member's outcome.
    predictors : tuple of str
        Time-varying predictors rated by both members.
    moderator : str, optional
        Dyad-level grouping (e.g. treatment arm): a multi-group model with separate
        means, ``Sigma_B`` and ``Sigma_W`` per group.
    ar1 : bool
        AR(1) over session numbers for the session-level part.
    method : {"ML", "REML"}
        ML (default, as lavaan) or REML (the means integrated out).
    therapist_level : bool
        Dyads nested in therapists: a random K-vector per therapist (needs the data's
        therapist column). ``Sigma_B`` becomes the covariance of dyads within therapists.
    therapist_covariance : {"unstructured", "diagonal"}
        Structure of the therapist-level covariance ``Sigma_T`` (diagonal: fewer
        parameters, no therapist-level regressions).
    reference : mapping or tuple of (column, level) pairs
        The reference group of ``moderator`` (the first group; arm differences are
        against it), e.g. ``{"treatment": "CBT"}``; default as in :class:`APIMSpec`.

    Examples
    --------
    >>> spec = LatentAPIMSpec("outcome", ("alliance",), therapist_level=True)
    >>> spec.therapist_covariance
    'unstructured'
    """

    kind: ClassVar[str] = "latent APIM"

    outcome: str
    predictors: tuple[str, ...]
    moderator: str | None = None
    ar1: bool = False
    method: Literal["ML", "REML"] = "ML"
    therapist_level: bool = False
    therapist_covariance: Literal["unstructured", "diagonal"] = "unstructured"
    reference: tuple[tuple[str, str], ...] = ()

    def check(self) -> None:
        _check_reference(self.reference, (self.moderator,) if self.moderator else ())
        check_columns("a latent APIM", self.outcome, self.predictors,
                      (self.moderator,) if self.moderator else ())
        check_therapist_covariance(self.therapist_covariance, self.therapist_level)
