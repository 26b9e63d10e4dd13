"""Everything a :class:`~apim.analyses.therapist.spec.TherapistSpec` asks for, checked
before the first fit: the association splits (quick) first, the variance shares with
their bootstrap (slow) last.

Examples
--------
>>> import apim
>>> spec = TherapistSpec(variables=("alliance",), predictor="alliance",
...                      outcome="outcome", ci="none", session_split=False)
>>> out = therapist_effects(apim.load_alliance(), spec)
>>> out.session_association is None, len(out.dyad_association)
(True, 12)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import pandas as pd

from apim.analyses.therapist.association import association_split, session_split
from apim.analyses.therapist.checks import (
    check_caseloads,
    code_covariates,
    dyad_covariates,
    require_therapists,
)
from apim.analyses.therapist.shares import VarianceShares, variance_shares
from apim.analyses.therapist.spec import TherapistSpec
from apim.apa import p_value
from apim.data.session import SessionData
from apim.errors import SmallSampleWarning
from apim.model.result import APIMResult

__all__ = ["TherapistEffects", "therapist_effects", "check_therapist_spec"]


@dataclass(frozen=True, eq=False)
class TherapistEffects:
    """Result of :func:`therapist_effects`.

    Attributes
    ----------
    spec : TherapistSpec
    shares : VarianceShares or None
    dyad_association : pandas.DataFrame or None
        :func:`~apim.analyses.therapist.association.association_split`.
    session_association : pandas.DataFrame or None
        :func:`~apim.analyses.therapist.association.session_split`.
    session_fit : APIMResult or None
    notes : tuple of str
        How text covariates were coded (their reference levels).
    """

    spec: TherapistSpec
    shares: VarianceShares | None
    dyad_association: pd.DataFrame | None
    session_association: pd.DataFrame | None
    session_fit: APIMResult | None = field(repr=False, default=None)
    notes: tuple[str, ...] = ()

    def summary(self, digits: int = 3) -> str:
        """Plain-text report of every table."""
        fmt = {"float_format": lambda v: f"{v:.{digits}f}", "index": False}
        parts = []
        if self.shares is not None:
            parts += ["Variance shares (therapist, dyad and session levels)",
                      self.shares.table.drop(columns=["n_obs", "n_dyads", "n_therapists"])
                      .to_string(**fmt)]
            flagged = self.shares.table.query("boundary")
            if len(flagged):
                parts.append("boundary: " + "; ".join(
                    f"{r.variable} ({r.role}) {r.level} variance at zero"
                    for r in flagged.itertuples()))
        if self.dyad_association is not None:
            parts += ["", "Association at the dyad level: patient (within-therapist), "
                      "therapist and contextual effects (Baldwin, Wampold & Imel, 2007)",
                      _apa_p(self.dyad_association.drop(columns="effect")).to_string(**fmt)]
        if self.session_association is not None:
            parts += ["", "Association at the session level (three-level APIM)",
                      _apa_p(self.session_association).to_string(**fmt)]
        if self.notes:
            parts += ["", *self.notes]
        return "\n".join(parts)

    def __str__(self) -> str:
        return self.summary()


def _apa_p(table: pd.DataFrame) -> pd.DataFrame:
    """The table with its p values as APA writes them (``< .001``, ``.027``)."""
    return table.assign(p=table["p"].map(p_value)) if "p" in table else table


def check_therapist_spec(data: SessionData, spec: TherapistSpec) -> tuple[str, ...]:
    """Everything :func:`therapist_effects` can check without fitting: the therapist
    column and caseloads, the columns, the covariates (dyad-level ones for the split).
    Returns the notes on the coding of text covariates.

    Raises
    ------
    SpecError, DataError
        Naming the column, the value and the rows.
    """
    require_therapists(data, "therapist effects")
    for column in (*spec.variables, spec.predictor, spec.outcome):
        if column is not None:
            data.numeric(column)
    coding = code_covariates(data, spec.covariates)
    check_caseloads(data, "therapist effects")
    if spec.predictor is not None:
        dyad_covariates(data, spec.covariates)
    return coding.notes


def therapist_effects(data: SessionData, spec: TherapistSpec, *, seed: int | None = None,
                      n_jobs: int = 1, progress: bool = False) -> TherapistEffects:
    """Variance shares and the association split, as ``spec`` asks.

    Every check that needs no fit runs first (:func:`check_therapist_spec`); then the
    association splits and last the variance shares with their bootstrap.

    Parameters
    ----------
    data : SessionData
        With a therapist column.
    spec : TherapistSpec
    seed : int, optional
        Seed of the bootstrap.
    n_jobs : int
        Parallel workers for the bootstrap.
    progress : bool
        Show a progress bar for the bootstrap.

    Returns
    -------
    TherapistEffects
    """
    notes = check_therapist_spec(data, spec)  # warns once about single-dyad caseloads
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".* therapists in column .* serve one dyad",
                                category=SmallSampleWarning)
        dyad = session = fitted = None
        if spec.predictor is not None and spec.outcome is not None:
            dyad = association_split(data, spec.predictor, spec.outcome,
                                     covariates=spec.covariates, method=spec.method,
                                     level=spec.level)
            if spec.session_split:
                session, fitted = session_split(data, spec.predictor, spec.outcome,
                                                covariates=spec.covariates,
                                                method=spec.method, level=spec.level)
        shares = (variance_shares(data, spec.variables, covariates=spec.covariates,
                                  ci=spec.ci, n_boot=spec.n_boot, level=spec.level,
                                  method=spec.method, seed=seed, n_jobs=n_jobs,
                                  progress=progress)
                  if spec.variables else None)
    return TherapistEffects(spec=spec, shares=shares, dyad_association=dyad,
                            session_association=session, session_fit=fitted, notes=notes)
