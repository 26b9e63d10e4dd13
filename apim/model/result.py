"""A fitted APIM: the tidy effects table, variance components and fit statistics.

Exports (markdown, LaTeX, HTML, JSON) are functions of a result in :mod:`apim.report`.

Examples
--------
>>> import apim
>>> result = apim.fit(apim.load_alliance(), apim.APIMSpec("outcome", ("alliance",)))
>>> list(result.effects.columns)[:5]
['outcome_role', 'effect', 'level', 'predictor', 'by']
>>> bool(result.effects.loc["patient.actor.within.alliance", "estimate"] > 0)
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from apim.engine.distributions import stats
from apim.engine.fit import MixedFit
from apim.model.design import APIMDesign
from apim.model.spec import APIMSpec

__all__ = ["APIMResult", "EFFECT_COLUMNS", "DF"]

EFFECT_COLUMNS = ["outcome_role", "effect", "level", "predictor", "by", "estimate", "se", "df",
                  "t", "p", "ci_low", "ci_high"]
DF = Literal["satterthwaite", "containment"]


@dataclass(frozen=True, eq=False)
class APIMResult:
    """A fitted APIM: effects, variance components, fit statistics and exports.

    Attributes
    ----------
    design : APIMDesign
    engine : MixedFit
        The engine's result (all details: BLUPs, fitted values, Hessian ...).
    df : {"satterthwaite", "containment"}
    """

    design: APIMDesign = field(repr=False)
    engine: MixedFit = field(repr=False)
    df: DF = "satterthwaite"

    @property
    def spec(self) -> APIMSpec:
        return self.design.spec

    @property
    def roles(self) -> tuple[str, str]:
        return self.design.data.roles

    def df_values(self) -> pd.Series:
        """Denominator df of every coefficient under the chosen method."""
        return (self.engine.df_satterthwaite if self.df == "satterthwaite"
                else self.engine.df_containment)

    @property
    def effects(self) -> pd.DataFrame:
        """Tidy effects table, one row per fixed effect, indexed by term name."""
        fit = self.engine
        est, se = fit.coef.to_numpy(), fit.se.to_numpy()
        df = self.df_values().to_numpy()
        t = est / se
        p = 2 * stats.t.sf(np.abs(t), df)
        crit = stats.t.ppf(0.975, df)
        rows = [[term.outcome_role, term.effect, term.level, term.predictor, term.by]
                for term in self.design.terms]
        table = pd.DataFrame(rows, columns=EFFECT_COLUMNS[:5],
                             index=pd.Index([term.name for term in self.design.terms],
                                            name="term"))
        table["estimate"], table["se"], table["df"] = est, se, df
        table["t"], table["p"] = t, p
        table["ci_low"], table["ci_high"] = est - crit * se, est + crit * se
        return table

    @property
    def variance(self) -> pd.DataFrame:
        """Variance components on the natural scale (SDs, correlations), with SEs."""
        table = self.engine.variance.copy()
        r0, r1 = self.roles
        rename = {"sigma(0)": f"residual sd({r0})", "sigma(1)": f"residual sd({r1})",
                  "rho": f"residual cor({r0},{r1})", "phi": "residual AR(1) phi",
                  "sd(therapist level)": "therapist sd(intercept)"}
        table.index = [rename.get(n, f"dyad {n}") for n in table.index]
        if self.engine.model.residual.equal_variances:
            table = table.drop(index=f"residual sd({r1})").rename(
                index={f"residual sd({r0})": "residual sd"})
        return table

    @property
    def statistics(self) -> dict[str, Any]:
        fit = self.engine
        return {"n_obs": fit.n_obs, "n_dyads": fit.n_dyads, "method": fit.method,
                "loglik": fit.loglik, "aic": fit.aic, "bic": fit.bic,
                "converged": fit.converged, "fit_seconds": fit.fit_seconds}

    # ------------------------------------------------------------------ exports
    def summary(self, digits: int = 3) -> str:
        """A journal-style table of effects, variance components and fit statistics."""
        s = self.statistics
        spec = self.spec
        head = [f"APIM of {spec.outcome!r} on {', '.join(spec.predictors)} "
                f"({'distinguishable' if spec.distinguishable else 'indistinguishable'} dyads, "
                f"{spec.method}, residuals {spec.residual_structure}, random "
                f"{spec.random}{', therapist level' if spec.therapist_level else ''})",
                f"{s['n_obs']} observations, {s['n_dyads']} dyads; logLik {s['loglik']:.3f}, "
                f"AIC {s['aic']:.3f}, BIC {s['bic']:.3f}; "
                f"{'converged' if s['converged'] else 'NOT CONVERGED: ' + self.engine.message}"]
        eff = self.effects
        shown = eff[["outcome_role", "effect", "level", "predictor", "by", "estimate", "se",
                     "df", "t", "p", "ci_low", "ci_high"]].copy()
        shown["p"] = shown["p"].map(lambda v: "<.001" if v < 0.001 else f"{v:.3f}")
        shown["df"] = shown["df"].map(lambda v: f"{v:.1f}")
        body = shown.to_string(index=False, float_format=lambda v: f"{v:.{digits}f}")
        var = self.variance.to_string(float_format=lambda v: f"{v:.{digits}f}")
        notes = [f"df: {self.df}"]
        if self.engine.boundary:
            notes.append("boundary: " + "; ".join(self.engine.boundary))
        dropped = sum(len(e.rows) for e in self.design.dropped)
        if dropped:
            notes.append(f"{dropped} rows not used (see .dropped)")
        return "\n".join(head + ["", "Fixed effects", body, "", "Variance components", var,
                                 "", "; ".join(notes)])

    def __str__(self) -> str:
        return self.summary()

    @property
    def dropped(self) -> pd.DataFrame:
        """Rows of the input not used in the fit, with the reason."""
        rows = [(r, e.reason) for e in self.design.dropped for r in e.rows]
        return pd.DataFrame(rows, columns=["row", "reason"]).sort_values("row",
                                                                          ignore_index=True)
