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
from apim.engine.mixed.estimate import BOUNDARY_NOTE, MixedFit
from apim.engine.parameters import VarianceParameter
from apim.model.design import APIMDesign
from apim.model.spec import APIMSpec, FormulaSpec

__all__ = ["APIMResult", "EFFECT_COLUMNS", "DF"]

EFFECT_COLUMNS = ["outcome_role", "effect", "level", "predictor", "by", "estimate", "se", "df",
                  "t", "p", "ci_low", "ci_high"]
DF = Literal["satterthwaite", "containment"]
ML_SE_NOTE = ("ML standard errors are those of (X'V^-1 X)^-1, as vcov() in nlme and lme4 "
              "and SAS PROC MIXED report them; nlme's printed summary() of an ML fit "
              "multiplies them by sqrt(N / (N - p))")


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
    def spec(self) -> APIMSpec | FormulaSpec:
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
    def parameters(self) -> tuple[VarianceParameter, ...]:
        """The variance parameters as typed records (see
        :class:`~apim.engine.parameters.VarianceParameter`)."""
        return self.engine.parameters

    def parameter_label(self, parameter: VarianceParameter) -> str:
        """A readable name of a variance parameter, with the roles' labels."""
        r0, r1 = self.roles
        if parameter.level == "residual":
            if parameter.kind == "sd":
                return "residual sd" if parameter.pooled else \
                    f"residual sd({self.roles[parameter.roles[0]]})"
            return f"residual cor({r0},{r1})" if parameter.kind == "cor" else \
                "residual AR(1) phi"
        effects = self.design.random_effects
        if parameter.pooled or parameter.roles:  # exchangeable: shared by both members
            names = list(dict.fromkeys(effects.get(e, e) for e in parameter.effects))
            if parameter.kind == "sd":
                return f"{parameter.level} sd({names[0]})"
            where = "between members" if parameter.roles else "within member"
            return f"{parameter.level} cor({', '.join(names)}) {where}"
        inner = ",".join(parameter.effects)
        return f"{parameter.level} {parameter.kind}({inner})"

    @property
    def variance(self) -> pd.DataFrame:
        """Variance components on the natural scale (SDs, correlations), with SEs and the
        boundary flag, built from :attr:`parameters` with readable labels."""
        records = self.parameters
        return pd.DataFrame({"estimate": [p.estimate for p in records],
                             "se": [p.se for p in records],
                             "at_boundary": [p.at_boundary for p in records]},
                            index=[self.parameter_label(p) for p in records])

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
        head = [self.model_line(),
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
        footnotes = []
        if self.engine.boundary:
            footnotes.append("boundary: " + "; ".join(self.engine.boundary) + " ("
                             + BOUNDARY_NOTE + ")")
        if self.engine.method == "ML":
            footnotes.append(ML_SE_NOTE)
        dropped = sum(len(e.rows) for e in self.design.dropped)
        if dropped:
            notes.append(f"{dropped} rows not used (see .dropped)")
        return "\n".join(head + ["", "Fixed effects", body, "", "Variance components", var,
                                 "", "; ".join(notes)] + footnotes)

    def model_line(self) -> str:
        """One line saying which model was fitted."""
        spec = self.spec
        if isinstance(spec, FormulaSpec):
            return (f"Dyadic mixed model {spec.formula} (random {spec.random or 'none'}, "
                    f"{spec.method}, residuals {spec.residual}"
                    f"{', therapist level' if spec.therapist_level else ''})")
        cov = spec.covariance
        exchangeable = not spec.distinguishable and cov.random not in ("none", None)
        return (f"APIM of {spec.outcome!r} on {', '.join(spec.predictors)} "
                f"({'distinguishable' if spec.distinguishable else 'indistinguishable'} dyads, "
                f"{spec.method}, residuals {spec.residual_structure}, random "
                f"{cov.random}"
                f"{' (exchangeable between members)' if exchangeable else ''}"
                f"{', therapist level' if cov.therapist_level else ''})")

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        fit = self.engine
        state = "converged" if fit.converged else "NOT converged"
        return (f"<APIMResult: {self.model_line()}; {fit.n_obs} observations, "
                f"{fit.n_dyads} dyads; logLik {fit.loglik:.2f}; {state}; "
                f"{len(fit.coef)} fixed effects (print it, or see .effects and .variance)>")

    def _repr_html_(self) -> str:
        """APA tables of effects and variance components (Jupyter)."""
        from apim.report.html import result_html

        return result_html(self)

    @property
    def dropped(self) -> pd.DataFrame:
        """Rows of the input not used in the fit, with the reason."""
        rows = [(r, e.reason) for e in self.design.dropped for r in e.rows]
        return pd.DataFrame(rows, columns=["row", "reason"]).sort_values("row",
                                                                          ignore_index=True)
