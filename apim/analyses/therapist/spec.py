"""What a therapist-effects analysis computes (:class:`TherapistSpec`) and the columns of
its tables.

Examples
--------
>>> spec = TherapistSpec(variables=("alliance",), predictor="alliance", outcome="outcome")
>>> spec.ci, spec.n_boot, spec.session_split
('auto', 500, True)
>>> TherapistSpec.from_dict(spec.to_dict()) == spec
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from apim.data.hints import option
from apim.errors import SpecError
from apim.specbase import Spec

__all__ = ["TherapistSpec", "SHARE_COLUMNS", "ASSOCIATION_COLUMNS", "CI", "Method"]

SHARE_COLUMNS = ["variable", "role", "level", "variance", "share", "ci_low", "ci_high",
                 "ci_method", "n_boot", "boundary", "n_obs", "n_dyads", "n_therapists"]
ASSOCIATION_COLUMNS = ["outcome_role", "predictor_role", "effect", "level", "estimate", "se",
                       "df", "t", "p", "ci_low", "ci_high", "n_dyads", "n_therapists"]
CI = Literal["auto", "bootstrap", "exact", "none"]
Method = Literal["REML", "ML"]


@dataclass(frozen=True)
class TherapistSpec(Spec):
    """What :func:`~apim.analyses.therapist.therapist_effects` computes.

    Parameters
    ----------
    variables : tuple of str
        Variables whose variance shares are wanted (e.g. alliance, outcome), per role.
    predictor, outcome : str, optional
        For the association split (both or neither): e.g. alliance and outcome.
    covariates : tuple of str
        Fixed effects in every model (e.g. treatment): conditional shares and effects.
        Text columns are dummy coded against their first level in sorted order.
    ci : {"auto", "bootstrap", "exact", "none"}
        Interval for the shares (see :mod:`apim.analyses.therapist`).
    n_boot : int
        Parametric bootstrap replicates.
    level : float
        Confidence level.
    method : {"REML", "ML"}
    session_split : bool
        Also split the association at the session level (three-level APIM).
    """

    variables: tuple[str, ...] = ()
    predictor: str | None = None
    outcome: str | None = None
    covariates: tuple[str, ...] = ()
    ci: CI = "auto"
    n_boot: int = 500
    level: float = 0.95
    method: Method = "REML"
    session_split: bool = True

    def check(self) -> None:
        if (self.predictor is None) != (self.outcome is None):
            raise SpecError("give both predictor and outcome for the association split, "
                            "or neither")
        if not self.variables and self.predictor is None:
            raise SpecError("nothing to do: give variables (variance shares) and/or a "
                            "predictor and an outcome (association split)")
        if not 0 < self.level < 1:
            raise SpecError(f"{option('level', str(self.level), str(self.level))} must lie "
                            f"between 0 and 1, e.g. {option('level', '0.95', '0.95')}")
        if self.n_boot < 20:
            shown = option("n_boot", str(self.n_boot), str(self.n_boot), "--bootstrap")
            raise SpecError(f"{shown} is too few for a percentile interval: use at least "
                            "20 (500 or more for a report)")
