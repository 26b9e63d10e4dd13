"""The APIM specification: what to fit, frozen and validated on construction.

Examples
--------
>>> spec = APIMSpec(outcome="outcome", predictors=("alliance",), moderators=("treatment",))
>>> spec.random, spec.residual_structure
('intercepts', 'un')
>>> APIMSpec(outcome="y", predictors=("x",), distinguishable=False).residual_structure
'cs'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from apim.engine.residual import RESIDUAL_NAMES
from apim.errors import SpecError
from apim.model.centring import DecompositionSpec

__all__ = ["APIMSpec", "EFFECTS"]

EFFECTS = ("intercept", "actor", "partner", "actor_x_partner", "moderator", "covariate")


@dataclass(frozen=True)
class APIMSpec:
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
        interaction with every actor and partner effect. Text columns are dummy coded
        against their first value in sorted order.
    covariates : tuple of str
        Further fixed effects (e.g. session number), per outcome role.
    random : {"none", "intercepts", "slopes"}
        Random effects per dyad: none, role-specific intercepts (default), or intercepts
        plus role-specific random actor and partner slopes of the time-varying parts.
    residual : str, optional
        Residual structure (``un``, ``cs``, ``diagonal``, ``independent``, ``ar1``,
        ``un-ar1``); default ``un`` for distinguishable and ``cs`` for indistinguishable.
    therapist_level : bool
        Add a random intercept per therapist (dyads nested in therapists).
    method : {"REML", "ML"}
    """

    outcome: str
    predictors: tuple[str, ...]
    decomposition: DecompositionSpec = field(default_factory=DecompositionSpec)
    distinguishable: bool = True
    interaction: bool = False
    moderators: tuple[str, ...] = ()
    covariates: tuple[str, ...] = ()
    random: Literal["none", "intercepts", "slopes"] = "intercepts"
    residual: str | None = None
    therapist_level: bool = False
    method: Literal["REML", "ML"] = "REML"

    def __post_init__(self) -> None:
        for name in ("predictors", "moderators", "covariates"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, (value,))
        if not self.predictors:
            raise SpecError("an APIM needs at least one predictor")
        if self.random not in ("none", "intercepts", "slopes"):
            raise SpecError(f"random={self.random!r} is not one of none, intercepts, slopes")
        if self.residual is not None and self.residual not in RESIDUAL_NAMES:
            raise SpecError(f"residual={self.residual!r} is not one of "
                              f"{', '.join(RESIDUAL_NAMES)}")
        if self.method not in ("REML", "ML"):
            raise SpecError(f"method={self.method!r} must be 'REML' or 'ML'")
        used = [self.outcome, *self.predictors, *self.moderators, *self.covariates]
        repeated = {c for c in used if used.count(c) > 1}
        if repeated:
            raise SpecError(f"column {sorted(repeated)[0]!r} is used twice in the model")

    @property
    def residual_structure(self) -> str:
        """The residual structure in effect."""
        if self.residual is not None:
            return self.residual
        return "un" if self.distinguishable else "cs"

    def replace(self, **changes: object) -> APIMSpec:
        """A copy with some fields changed."""
        from dataclasses import replace

        return replace(self, **changes)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready description."""
        d = self.decomposition
        return {
            "outcome": self.outcome, "predictors": list(self.predictors),
            "decomposition": {"center": d.center, "reference": d.reference, "lag": d.lag,
                              "lag_by": d.lag_by, "detrend": d.detrend},
            "distinguishable": self.distinguishable, "interaction": self.interaction,
            "moderators": list(self.moderators), "covariates": list(self.covariates),
            "random": self.random, "residual": self.residual_structure,
            "therapist_level": self.therapist_level, "method": self.method,
        }
