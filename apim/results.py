"""Fitting an APIM and reading its results: the tidy effects table and its exports.

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

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from apim.data.session import SessionData
from apim.design import APIMDesign, build_design
from apim.engine.fit import MixedFit
from apim.engine.fit import fit as fit_engine
from apim.spec import APIMSpec

__all__ = ["APIMResult", "fit", "EFFECT_COLUMNS"]

EFFECT_COLUMNS = ["outcome_role", "effect", "level", "predictor", "by", "estimate", "se", "df",
                  "t", "p", "ci_low", "ci_high"]
DF = Literal["satterthwaite", "containment"]


def fit(data: SessionData, spec: APIMSpec, df: DF = "satterthwaite") -> "APIMResult":
    """Fit the APIM ``spec`` to ``data``.

    Parameters
    ----------
    data : SessionData
    spec : APIMSpec
    df : {"satterthwaite", "containment"}
        Denominator degrees of freedom of the t tests (containment: nlme's rule).

    Returns
    -------
    APIMResult
    """
    design = build_design(data, spec)
    return APIMResult(design=design, engine=fit_engine(design.model, spec.method), df=df)


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

    def to_frame(self) -> pd.DataFrame:
        """The effects table as a DataFrame (a copy)."""
        return self.effects.reset_index()

    def to_markdown(self, digits: int = 3) -> str:
        return _pipe_table(self.effects.reset_index(), digits)

    def to_latex(self, digits: int = 3) -> str:
        table = self.effects.reset_index()
        cols = list(table.columns)
        lines = [r"\begin{tabular}{" + "l" * 6 + "r" * (len(cols) - 6) + "}", r"\hline",
                 " & ".join(c.replace("_", r"\_") for c in cols) + r" \\", r"\hline"]
        for _, row in table.iterrows():
            cells = [_fmt(v, digits).replace("_", r"\_").replace("|", r"$\mid$")
                     for v in row]
            lines.append(" & ".join(cells) + r" \\")
        lines += [r"\hline", r"\end{tabular}"]
        return "\n".join(lines)

    def to_html(self, digits: int = 3) -> str:
        return self.effects.reset_index().to_html(
            index=False, float_format=lambda v: f"{v:.{digits}f}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (documented in the README)."""
        from apim import __version__

        fit = self.engine
        var = fit.variance["estimate"]
        r0, r1 = self.roles
        g = fit.G
        variance = {
            "random_effects": list(fit.model.z_names),
            "G": g.tolist() if g is not None else None,
            "residual_sd": {r0: var["sigma(0)"], r1: var["sigma(1)"]},
            "residual_correlation": var.get("rho"),
            "ar1_phi": var.get("phi"),
            "therapist_sd": float(np.sqrt(fit.T[0, 0])) if fit.T is not None else None,
            "table": {k: {"estimate": v["estimate"], "se": v["se"]}
                      for k, v in self.variance.iterrows()},
        }
        fixed = [{"term": name, **{k: _jsonable(v) for k, v in row.items()}}
                 for name, row in self.effects.iterrows()]
        return {
            "version": __version__, "specification": self.spec.to_dict(),
            "n_obs": fit.n_obs, "n_dyads": fit.n_dyads, "method": fit.method,
            "loglik": fit.loglik, "aic": fit.aic, "bic": fit.bic,
            "converged": fit.converged, "message": fit.message,
            "boundary": list(fit.boundary), "fit_seconds": fit.fit_seconds, "df": self.df,
            "fixed": fixed, "variance": variance,
            "dropped": [{"reason": e.reason, "rows": list(e.rows)} for e in self.design.dropped],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=_jsonable)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _fmt(value: Any, digits: int) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"
    return str(value)


def _pipe_table(table: pd.DataFrame, digits: int) -> str:
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(_fmt(v, digits) for v in row) + " |")
    return "\n".join(lines)
