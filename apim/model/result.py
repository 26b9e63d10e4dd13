"""A fitted mixed-model APIM (observed-mean centring, or a formula): effects, variance
components and fit statistics, through the :class:`~apim.model.fitted.FittedModel`
protocol.

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

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd

from apim.apa import p_value
from apim.data.session import SessionData
from apim.engine.mixed.df import satterthwaite_df, satterthwaite_f_df
from apim.engine.mixed.estimate import BOUNDARY_NOTE, MixedFit
from apim.engine.mixed.estimate import estimate_mixed as fit_engine
from apim.engine.parameters import VarianceParameter
from apim.errors import SpecError
from apim.model.design import APIMDesign, Term, moderator_levels, reference_source
from apim.model.fitted import (
    FitStatistics,
    dropped_frame,
    effects_frame,
    notebook_html,
    result_dict,
    variance_frame,
    variance_json,
)
from apim.model.spec import APIMSpec, FormulaSpec

__all__ = ["APIMResult", "DF", "parameter_label", "summary_text"]

DF = Literal["satterthwaite", "containment"]
ML_SE_NOTE = ("ML standard errors are those of (X'V^-1 X)^-1, as vcov() in nlme and lme4 "
              "and SAS PROC MIXED report them; nlme's printed summary() of an ML fit "
              "multiplies them by sqrt(N / (N - p))")


def summary_text(head: list[str], effects: pd.DataFrame, variance: pd.DataFrame,
                 notes: list[str], footnotes: list[str], digits: int = 3) -> str:
    """A mixed-model fit's summary: the ``head`` lines, the fixed effects (p formatted, df
    to one decimal), the variance components, the notes on one line, the footnotes."""
    shown = effects.drop(columns="group")
    shown["p"] = shown["p"].map(p_value)
    shown["df"] = shown["df"].map(lambda v: f"{v:.1f}")
    body = shown.to_string(index=False, float_format=lambda v: f"{v:.{digits}f}")
    var = variance.to_string(float_format=lambda v: f"{v:.{digits}f}")
    return "\n".join(head + ["", "Fixed effects", body, "", "Variance components", var,
                             "", "; ".join(notes)] + footnotes)


def parameter_label(parameter: VarianceParameter, roles: tuple[str, str],
                    random_effects: dict[str, str]) -> str:
    """A readable name of a variance parameter, with the roles' labels
    (``random_effects``: the effect of each random-effect column without its member, as
    :attr:`~apim.model.design.APIMDesign.random_effects`)."""
    r0, r1 = roles
    if parameter.level == "residual":
        if parameter.kind == "sd":
            return "residual sd" if parameter.pooled else \
                f"residual sd({roles[parameter.roles[0]]})"
        if parameter.kind == "cor":
            return f"residual cor({r0},{r1})"
        if len(parameter.roles) == 1:  # a role's own autocorrelation
            return f"residual AR(1) phi({roles[parameter.roles[0]]})"
        return "residual AR(1) phi"
    if parameter.pooled or parameter.roles:  # exchangeable: shared by both members
        names = list(dict.fromkeys(random_effects.get(e, e) for e in parameter.effects))
        if parameter.kind == "sd":
            return f"{parameter.level} sd({names[0]})"
        where = "between members" if parameter.roles else "within member"
        return f"{parameter.level} cor({', '.join(names)}) {where}"
    inner = ",".join(parameter.effects)
    return f"{parameter.level} {parameter.kind}({inner})"


@dataclass(frozen=True, eq=False)
class APIMResult:
    """A fitted APIM or formula model: effects, variance components, fit statistics.

    Implements :class:`~apim.model.fitted.FittedModel` (t tests with Satterthwaite or
    containment df).

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
    def data(self) -> SessionData:
        return self.design.data

    @property
    def roles(self) -> tuple[str, str]:
        return self.design.data.roles

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def coef(self) -> pd.Series:
        return self.engine.coef

    @property
    def cov_coef(self) -> pd.DataFrame:
        return self.engine.cov_coef

    @property
    def reference(self) -> Literal["t", "z"]:
        return "t"

    @property
    def terms(self) -> tuple[Term, ...]:
        return self.design.terms

    def df_values(self) -> pd.Series:
        """Denominator df of every coefficient under the chosen method."""
        return (self.engine.df_satterthwaite if self.df == "satterthwaite"
                else self.engine.df_containment)

    def _involved_df(self, L: np.ndarray) -> float:
        return float(self.df_values().to_numpy()[np.any(L != 0, axis=0)].min())

    def contrast_df(self, L: np.ndarray) -> np.ndarray:
        """Satterthwaite df of each row of ``L beta`` (containment: the smallest df of the
        coefficients involved)."""
        if self.df == "satterthwaite":
            fit = self.engine
            return satterthwaite_df(fit.cov_coef.to_numpy(), fit.d_xvx, fit.cov_theta, L)
        return np.array([self._involved_df(row[None, :]) for row in np.atleast_2d(L)])

    def joint_df(self, L: np.ndarray) -> float:
        """Denominator df of the F test of ``L beta = c`` (Fai & Cornelius, 1996)."""
        if self.df == "satterthwaite":
            fit = self.engine
            return float(satterthwaite_f_df(fit.cov_coef.to_numpy(), fit.d_xvx,
                                            fit.cov_theta, L))
        return self._involved_df(L)

    @property
    def effects(self) -> pd.DataFrame:
        """Tidy effects table, one row per fixed effect, indexed by term name (a copy:
        changing it changes nothing in the result)."""
        return self._effects.copy()

    @cached_property
    def _effects(self) -> pd.DataFrame:
        """The effects table, built once (the summary, the JSON, the reports and the CLI
        each ask for it; its p values and quantiles are the costly part)."""
        fit = self.engine
        return effects_frame(self.terms, [t.name for t in self.terms], fit.coef.to_numpy(),
                             fit.se.to_numpy(), self.df_values().to_numpy())

    @property
    def parameters(self) -> tuple[VarianceParameter, ...]:
        """The variance parameters as typed records (see
        :class:`~apim.engine.parameters.VarianceParameter`)."""
        return self.engine.parameters

    def parameter_label(self, parameter: VarianceParameter) -> str:
        """A readable name of a variance parameter, with the roles' labels."""
        return parameter_label(parameter, self.roles, self.design.random_effects)

    @property
    def variance(self) -> pd.DataFrame:
        """Variance components on the natural scale (SDs, correlations), with SEs and the
        boundary flag, built from :attr:`parameters` with readable labels."""
        return variance_frame(self)

    @property
    def statistics(self) -> FitStatistics:
        fit = self.engine
        n_therapists = 0 if fit.model.therapist is None else \
            len(np.unique(fit.model.therapist))
        return FitStatistics(n_obs=fit.n_obs, n_dyads=fit.n_dyads,
                             n_therapists=n_therapists, n_params=fit.n_params,
                             method=fit.method, loglik=fit.loglik, aic=fit.aic,
                             bic=fit.bic, converged=fit.converged, message=fit.message,
                             fit_seconds=fit.fit_seconds)

    @property
    def boundary(self) -> tuple[str, ...]:
        return self.engine.boundary

    @property
    def dropped(self) -> pd.DataFrame:
        """Rows of the input not used in the fit, with the reason (a copy)."""
        return self._dropped.copy()

    @cached_property
    def _dropped(self) -> pd.DataFrame:
        return dropped_frame([(r, e.reason) for e in self.design.dropped for r in e.rows])

    def reference_levels(self) -> dict[str, str]:
        """Reference category of every categorical moderator (as the design codes it)."""
        spec = self.spec
        out: dict[str, str] = {}
        chosen = dict(getattr(spec, "reference", ()))
        for m in getattr(spec, "moderators", ()):
            levels = moderator_levels(self.data.frame[m], chosen.get(m), m)
            if levels is not None:
                out[m] = str(levels[0])
        return out

    def notes(self) -> list[str]:
        """Roles, centring, moderators' reference categories, df and SE convention,
        convergence, boundary and rows not used."""
        spec = self.spec
        out = []
        if isinstance(spec, APIMSpec):
            if spec.distinguishable:
                out.append(f"Roles: {self.roles[0]} (reference) and {self.roles[1]}; "
                           "actor and partner effects are estimated for each outcome role.")
            else:
                out.append("Indistinguishable dyads: one intercept and effects pooled over "
                           "roles.")
            center = spec.decomposition.center
            if center in ("person", "therapist"):
                out.append("Within-person: a session's deviation from the person's own "
                           "mean; between: the person's mean centred on the mean of their "
                           "role" + (" (between-therapist: the therapist's mean)."
                                     if center == "therapist" else "."))
            refs = self.reference_levels()
            for m in spec.moderators:
                if m in refs:
                    source = reference_source(self.data.frame[m], dict(spec.reference).get(m))
                    out.append(f"Moderator {m}: reference category {refs[m]} ({source}); "
                               f"terms × {m} are differences from {refs[m]}.")
                else:
                    out.append(f"Moderator {m} is numeric: effects are at {m} = 0.")
        df = ("Satterthwaite approximation" if self.df == "satterthwaite"
              else "containment (nlme's rule)")
        out.append(f"df: {df}.")
        if self.engine.method == "ML":
            out.append("ML standard errors from (X′V⁻¹X)⁻¹, as vcov() in R and SAS report "
                       "them; nlme's summary() multiplies them by √(N/(N − p)).")
        else:
            out.append("REML estimates; standard errors from (X′V⁻¹X)⁻¹.")
        if not self.engine.converged:
            out.append(f"The fit did NOT converge: {self.engine.message}.")
        if self.boundary:
            out.append("Boundary estimate: " + "; ".join(self.boundary) + ".")
        n_dropped = len(self.dropped)
        if n_dropped:
            out.append(f"{n_dropped} rows of the data were not used (missing values; listed "
                       "with their reasons in result.dropped and the HTML report).")
        return out

    def level_names(self) -> dict[str, str]:
        """What each level of the effects table means in this model."""
        three = isinstance(self.spec, APIMSpec) and self.spec.decomposition.center == \
            "therapist"
        return {"within": "within-person",
                "between": "between-dyad, within therapist" if three else "between-person",
                "therapist": "between-therapist", "none": ""}

    def design_matrix(self) -> pd.DataFrame:
        """The fixed-effects design of the used rows (columns named as :attr:`coef`)."""
        return pd.DataFrame(self.design.model.X, index=self.design.used,
                            columns=list(self.coef.index))

    def fitted_frame(self) -> pd.DataFrame:
        """Per used row: dyad, session, role, observed, fitted, residual."""
        frame = self.data.frame.loc[self.design.used, ["dyad", "session", "role"]].copy()
        frame["observed"] = self.design.model.y
        frame["fitted"] = self.engine.fitted
        frame["residual"] = self.engine.residuals
        return frame

    def random_effect(self, column: str) -> tuple[str, str]:
        """(member, effect) of a dyad-level random-effect column, e.g. ``("patient",
        "intercept")``."""
        return (self.design.random_members.get(column, ""),
                self.design.random_effects.get(column, column))

    def intercepts_only(self) -> APIMResult:
        """The model with the role intercepts only: the same rows, random effects and
        residual structure (the baseline of pseudo-R²).

        Raises
        ------
        SpecError
            For a formula model (it has no APIM intercepts to keep).
        """
        design = self.design
        spec = self.spec
        if not isinstance(spec, APIMSpec):
            raise SpecError("pseudo-R² compares an APIM with its intercepts-only model; "
                            "this fit is a formula model")
        roles = design.outcome_roles
        if spec.distinguishable:
            role = design.data.frame.loc[design.used, "role"]
            X0 = np.column_stack([(role == r).to_numpy(float) for r in roles])
        else:
            X0 = np.ones((len(design.used), 1))
        terms = tuple(Term(r, "intercept", "none", "") for r in roles)
        model = replace(design.model, X=X0, x_names=tuple(t.name for t in terms))
        return APIMResult(design=replace(design, terms=terms, model=model),
                          engine=fit_engine(model, spec.method), df=self.df)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (documented in the README)."""
        fit = self.engine
        out = result_dict(self)
        residual_sd = {}
        for p in self.parameters:
            if p.level == "residual" and p.kind == "sd":
                for r in p.roles:
                    residual_sd[self.roles[r]] = p.estimate

        def first(level: str, kind: str) -> float | None:
            return next((p.estimate for p in self.parameters
                         if p.level == level and p.kind == kind), None)

        out["boundary_note"] = BOUNDARY_NOTE if fit.boundary else None
        out["variance"] = {
            "random_effects": list(fit.model.z_names),
            "G": fit.G.tolist() if fit.G is not None else None,
            "residual_sd": residual_sd,
            "residual_correlation": first("residual", "cor"),
            "ar1_phi": first("residual", "phi"),
            "therapist_sd": first("therapist", "sd"),
            "parameters": out["parameters"],
            "table": variance_json(self.variance),
        }
        return out

    # ------------------------------------------------------------------ text
    def summary(self, digits: int = 3) -> str:
        """A journal-style table of effects, variance components and fit statistics."""
        s = self.statistics
        head = [self.model_line(),
                s.line(f"{s.n_obs} observations, {s.n_dyads} dyads")]
        notes = [f"df: {self.df}"]
        notes += [f"reference {m} = {level} (terms |{m}[...] are differences from it)"
                  for m, level in self.reference_levels().items()]
        footnotes = []
        if self.boundary:
            footnotes.append("boundary: " + "; ".join(self.boundary) + " ("
                             + BOUNDARY_NOTE + ")")
        if s.method == "ML":
            footnotes.append(ML_SE_NOTE)
        if len(self.dropped):
            notes.append(f"{len(self.dropped)} rows not used (see .dropped)")
        return summary_text(head, self.effects, self.variance, notes, footnotes, digits)

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
        s = self.statistics
        state = "converged" if s.converged else "NOT converged"
        return (f"<APIMResult: {self.model_line()}; {s.n_obs} observations, "
                f"{s.n_dyads} dyads; logLik {s.loglik:.2f}; {state}; "
                f"{len(self.coef)} fixed effects (print it, or see .effects and .variance)>")

    def _repr_html_(self) -> str:
        return notebook_html(self)
