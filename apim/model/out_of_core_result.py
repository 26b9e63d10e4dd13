"""The result of an APIM fitted out of core (:func:`apim.model.out_of_core.fit_out_of_core`):
effects, variance components and fit statistics from the summed block statistics, as an
in-memory fit reports them, without the rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from apim.engine.mixed.df import satterthwaite_df, satterthwaite_f_df
from apim.engine.mixed.estimate import BOUNDARY_NOTE
from apim.engine.mixed.results import criteria
from apim.engine.mixed.statistics import StatisticsFit
from apim.engine.parameters import VarianceParameter
from apim.model.design import Term
from apim.model.fitted import (
    FitStatistics,
    effects_frame,
    result_dict,
    variance_json,
)
from apim.model.result import parameter_label, summary_text
from apim.model.spec import APIMSpec

__all__ = ["OutOfCoreResult"]


@dataclass(frozen=True, eq=False)
class OutOfCoreResult:
    """An APIM fitted from a file read in blocks: effects, variance components and fit
    statistics, as an in-memory fit reports them, without the rows (no fitted values,
    random effects per dyad, figures or data report).

    Attributes
    ----------
    spec : the resolved specification
    roles : the two roles, reference first
    terms : the fixed-effect columns
    engine : the engine's :class:`~apim.engine.mixed.statistics.StatisticsFit`
    dropped_rows : reason -> file row numbers not used
    random_effects : the effect of each random-effect column without its member
    source : the file read
    n_blocks, n_rows_read : blocks and rows read
    """

    spec: APIMSpec
    roles: tuple[str, str]
    terms: tuple[Term, ...]
    engine: StatisticsFit = field(repr=False)
    dropped_rows: dict[str, np.ndarray] = field(repr=False)
    random_effects: dict[str, str] = field(repr=False)
    source: str = ""
    n_blocks: int = 0
    n_rows_read: int = 0
    df: Literal["satterthwaite"] = "satterthwaite"

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def reference(self) -> Literal["t", "z"]:
        return "t"

    @property
    def coef(self) -> pd.Series:
        return self.engine.coef

    @property
    def cov_coef(self) -> pd.DataFrame:
        return self.engine.cov_coef

    def df_values(self) -> pd.Series:
        return self.engine.df_satterthwaite

    def contrast_df(self, L: np.ndarray) -> np.ndarray:
        fit = self.engine
        return satterthwaite_df(fit.cov_coef.to_numpy(), fit.d_xvx, fit.cov_theta, L)

    def joint_df(self, L: np.ndarray) -> float:
        fit = self.engine
        return float(satterthwaite_f_df(fit.cov_coef.to_numpy(), fit.d_xvx, fit.cov_theta,
                                        L))

    @property
    def effects(self) -> pd.DataFrame:
        se = np.sqrt(np.diag(self.cov_coef.to_numpy()))
        return effects_frame(self.terms, [t.name for t in self.terms],
                             self.coef.to_numpy(), se, self.df_values().to_numpy())

    @property
    def parameters(self) -> tuple[VarianceParameter, ...]:
        return self.engine.parameters

    def parameter_label(self, parameter: VarianceParameter) -> str:
        return parameter_label(parameter, self.roles, self.random_effects)

    @property
    def variance(self) -> pd.DataFrame:
        records = self.parameters
        return pd.DataFrame({"estimate": [p.estimate for p in records],
                             "se": [p.se for p in records],
                             "at_boundary": [p.at_boundary for p in records]},
                            index=pd.Index([self.parameter_label(p) for p in records],
                                           name="parameter"))

    @property
    def statistics(self) -> FitStatistics:
        fit = self.engine
        n_params = len(fit.coef) + len(fit.theta)
        aic, bic = criteria(fit.loglik, n_params, fit.n_obs, len(fit.coef), fit.method)
        return FitStatistics(n_obs=fit.n_obs, n_dyads=fit.n_dyads, n_therapists=0,
                             n_params=n_params, method=fit.method, loglik=fit.loglik,
                             aic=aic, bic=bic,
                             converged=fit.converged, message=fit.message,
                             fit_seconds=fit.fit_seconds)

    @property
    def boundary(self) -> tuple[str, ...]:
        return self.engine.boundary

    @property
    def dropped_counts(self) -> dict[str, int]:
        """Number of rows not used, per reason."""
        return {why: len(rows) for why, rows in self.dropped_rows.items()}

    @property
    def dropped(self) -> pd.DataFrame:
        """Rows of the file not used, with the reason (columns ``row``, ``reason``)."""
        reasons = list(self.dropped_rows)
        rows = [self.dropped_rows[r] for r in reasons]
        frame = pd.DataFrame({"row": np.concatenate(rows) if rows else np.zeros(0, int),
                              "reason": np.repeat(reasons, [len(r) for r in rows])})
        return frame.sort_values("row", ignore_index=True)

    def reference_levels(self) -> dict[str, str]:
        """No categorical moderators out of core: empty."""
        return {}

    def level_names(self) -> dict[str, str]:
        """What each level of the effects table means (no therapist centring here)."""
        return {"within": "within-person", "between": "between-person", "none": ""}

    def notes(self) -> list[str]:
        """Roles, df, convergence, boundary and rows not used, for tables."""
        out = [f"Roles: {self.roles[0]} (reference) and {self.roles[1]}." if
               self.spec.distinguishable else "Indistinguishable dyads: effects pooled over "
               "roles.", "Fitted out of core from summed statistics; Satterthwaite df."]
        if self.boundary:
            out.append("Boundary: " + "; ".join(self.boundary) + ".")
        if self.dropped_rows:
            out.append("Rows not used: " + "; ".join(
                f"{n:,} {why}" for why, n in sorted(self.dropped_counts.items())) + ".")
        return out

    def design_matrix(self) -> None:
        """None: the rows are not kept."""
        return None

    def fitted_frame(self) -> None:
        """None: the rows are not kept."""
        return None

    def model_line(self) -> str:
        spec = self.spec
        return (f"APIM of {spec.outcome!r} on {', '.join(spec.predictors)} "
                f"({'distinguishable' if spec.distinguishable else 'indistinguishable'} "
                f"dyads, {spec.method}, residuals {spec.residual_structure}, random "
                f"{spec.covariance.random}; out of core: {self.n_blocks} "
                f"{'block' if self.n_blocks == 1 else 'blocks'} of "
                f"{self.source})")

    def to_dict(self) -> dict[str, Any]:
        out = result_dict(self)  # type: ignore[arg-type]
        out["dropped_counts"] = self.dropped_counts
        out["out_of_core"] = {"source": self.source, "blocks": self.n_blocks,
                              "rows_read": self.n_rows_read}
        out["variance"] = {"table": variance_json(self.variance)}
        return out

    def summary(self, digits: int = 3) -> str:
        """The tables an in-memory fit prints, and the rows not used per reason."""
        s = self.statistics
        head = [self.model_line(),
                s.line(f"{s.n_obs} observations, {s.n_dyads} dyads")]
        notes = [f"df: {self.df}"]
        if self.dropped_counts:
            notes.append("rows not used: " + "; ".join(
                f"{n:,} {why}" for why, n in sorted(self.dropped_counts.items())))
        tail = []
        if self.boundary:
            tail.append("boundary: " + "; ".join(self.boundary) + " (" + BOUNDARY_NOTE + ")")
        return summary_text(head, self.effects, self.variance, notes, tail, digits)

    def __str__(self) -> str:
        return self.summary()
