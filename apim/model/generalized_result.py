"""A fitted generalized APIM (binary or ordinal outcome) through the
:class:`~apim.model.fitted.FittedModel` protocol: coefficients on the link scale with z
tests, odds ratios, thresholds, the random intercepts' SDs and correlation (and the
therapist intercept's SD), latent-scale ICCs and variance shares.

Examples
--------
>>> import apim
>>> from apim.model.generalized_spec import GeneralizedAPIMSpec
>>> frame = apim.load_alliance().frame.drop(columns="row")
>>> frame = frame[frame["dyad"] <= 40]  # a part of the data, to keep the example quick
>>> frame["low"] = (frame["outcome"] < 2.8).astype(float).where(frame["outcome"].notna())
>>> data = apim.SessionData.from_long(frame, dyad="dyad", session="session", role="role")
>>> result = apim.fit(data, GeneralizedAPIMSpec("low", ("alliance",), nagq=1))
>>> list(result.odds_ratios.columns)
['odds_ratio', 'ci_low', 'ci_high']
>>> result.df, bool(result.effects["df"].isin([float("inf")]).all())
('normal', True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from apim.apa import p_value
from apim.data.session import SessionData
from apim.engine.glmm import LINKS, GLMMFit
from apim.engine.parameters import VarianceParameter
from apim.errors import SpecError
from apim.model.design import APIMDesign, Term, moderator_levels, reference_source
from apim.model.fitted import (
    FitStatistics,
    ZTests,
    dropped_frame,
    jsonable,
    notebook_html,
    result_dict,
    variance_frame,
    variance_json,
)
from apim.model.generalized_effects import average_marginal_effects, slope_parts
from apim.model.generalized_spec import GeneralizedAPIMSpec

__all__ = ["GeneralizedAPIMResult"]


@dataclass(frozen=True, eq=False)
class GeneralizedAPIMResult(ZTests):
    """A fitted generalized APIM (z tests: normal theory, as glmer and glmmTMB).

    Attributes
    ----------
    design : APIMDesign
        The Gaussian APIM's design the model was built from (its rows and dyads).
    engine : GLMMFit
    terms : the fixed effects (an ordinal outcome has no intercepts)
    categories : the outcome's categories in order
    spec : GeneralizedAPIMSpec (with the data-dependent defaults resolved)
    """

    design: APIMDesign = field(repr=False)
    engine: GLMMFit = field(repr=False)
    terms: tuple[Term, ...]
    categories: np.ndarray
    spec: GeneralizedAPIMSpec

    # ------------------------------------------------------------------ protocol
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
    def names(self) -> list[str]:
        return [t.name for t in self.terms]

    @property
    def coef(self) -> pd.Series:
        return pd.Series(self.engine.coef, index=self.names, name="estimate")

    @property
    def cov_coef(self) -> pd.DataFrame:
        return pd.DataFrame(self.engine.cov_coef, index=self.names, columns=self.names)

    @property
    def odds_ratios(self) -> pd.DataFrame:
        """exp(coefficient) with its 95% CI (logit link; for probit the same exponentials
        are not odds ratios and the table is empty)."""
        if self.spec.link != "logit":
            return pd.DataFrame(columns=["odds_ratio", "ci_low", "ci_high"])
        e = self.effects
        return pd.DataFrame({"odds_ratio": np.exp(e["estimate"]),
                             "ci_low": np.exp(e["ci_low"]), "ci_high": np.exp(e["ci_high"])})

    @property
    def thresholds(self) -> pd.DataFrame:
        """Ordinal thresholds ``theta_k`` (``P(Y <= k) = F(theta_k - eta)``): role (or
        "both"), category (``k|k+1``), estimate, se; empty for a binary outcome."""
        rows = []
        fit = self.engine
        labels = [f"{a:g}|{b:g}" for a, b in zip(self.categories[:-1], self.categories[1:])]
        sets = list(self.roles) if self.spec.threshold_sets == "role" else ["both"]
        for s, role in enumerate(sets[:fit.model.n_sets]):
            for k, label in enumerate(labels):
                rows.append({"role": role, "category": label,
                             "estimate": fit.thresholds[s, k], "se": fit.threshold_se[s, k]})
        return pd.DataFrame(rows, columns=["role", "category", "estimate", "se"])

    @property
    def marginal_effects(self) -> pd.DataFrame:
        """Average marginal effects of the actor and partner terms on the probability of
        the event (binary) or of each category (ordinal), for dyads whose random
        intercepts are zero, with delta-method SEs
        (:func:`~apim.model.generalized_effects.average_marginal_effects`)."""
        fit = self.engine
        p, m = fit.model.X.shape[1], fit.model.n_thresholds
        shape = fit.thresholds if m else np.zeros((0, 1))
        return average_marginal_effects(
            self.terms, self.design_matrix().to_numpy(), self.design.model.role,
            fit.natural[:p + m], fit.cov_natural[:p + m, :p + m], self.spec.link,
            self.spec.family, self.categories, shape, self.spec.threshold_sets)

    def predicted_probabilities(self, term: str, points: int = 25) -> pd.DataFrame:
        """Predicted probability of each category as the predictor part of ``term`` (e.g.
        ``patient.partner.within.alliance``) runs over its 5th to 95th percentile among the
        rows of the term's outcome role, the other columns at their means there (moderated
        and actor x partner columns follow the term's value), random intercepts 0.

        Returns
        -------
        DataFrame with ``value``, ``category``, ``probability`` (long format).
        """
        if term not in self.names:
            raise SpecError(f"{term!r} is not a fixed effect of this model; its terms: "
                            f"{', '.join(self.names)}")
        X = self.design_matrix().to_numpy()
        j = self.names.index(term)
        owner = self.terms[j].outcome_role
        roles = self.design.model.role
        rows = np.ones(len(X), dtype=bool) if owner == "both" else \
            roles == list(self.roles).index(owner)
        low, high = np.percentile(X[rows, j], [5, 95])
        grid = np.linspace(float(low), float(high), points)
        base = X[rows].mean(axis=0)
        parts = slope_parts(self.terms, X, j)
        frame = []
        for value in grid:
            x = base.copy()
            for column, multiplier in parts:  # d column / d value, at the rows' mean
                x[column] = base[column] + (value - base[j]) * multiplier[rows].mean()
            eta = np.array([x @ self.engine.coef])
            role = np.array([0 if owner == "both" else list(self.roles).index(owner)])
            probs = self.category_probabilities(eta, role)[0]
            frame += [{"value": value, "category": f"{c:g}", "probability": p}
                      for c, p in zip(self.categories, probs)]
        return pd.DataFrame(frame)

    @property
    def parameters(self) -> tuple[VarianceParameter, ...]:
        """The random intercepts on the latent (link) scale: the therapist's SD (with a
        therapist level), the dyad's SDs and correlation (exchangeable for
        indistinguishable dyads: one SD shared by both members)."""
        fit = self.engine
        therapist: tuple[VarianceParameter, ...] = ()
        if fit.model.therapist is not None:
            therapist = (VarianceParameter(
                "therapist", "sd", ("intercept",), roles=(0, 1), pooled=True,
                estimate=fit.therapist_sd, se=fit.therapist_sd_se,
                at_boundary=any("therapist" in b for b in fit.boundary)),)
        p = fit.model.X.shape[1] + fit.model.n_thresholds
        est = fit.natural[p:p + 3]
        se = np.sqrt(np.diag(fit.cov_natural)[p:p + 3])
        at = fit.boundary
        r0, r1 = self.roles
        zero = [any(f"sd(member {r})" in b for b in at) for r in (0, 1)]
        cor_edge = any("correlation" in b for b in at) or any(zero)  # undefined at sd 0
        if self.spec.distinguishable:
            return therapist + (VarianceParameter("dyad", "sd", (r0,), estimate=est[0], se=se[0],
                                      at_boundary=zero[0]),
                    VarianceParameter("dyad", "sd", (r1,), estimate=est[1], se=se[1],
                                      at_boundary=zero[1]),
                    VarianceParameter("dyad", "cor", (r0, r1), roles=(0, 1),
                                      estimate=est[2], se=se[2], at_boundary=cor_edge))
        return therapist + (VarianceParameter("dyad", "sd", (r0, r1), pooled=True, estimate=est[0],
                                  se=se[0], at_boundary=zero[0]),
                VarianceParameter("dyad", "cor", (r0, r1), roles=(0, 1), pooled=True,
                                  estimate=est[2], se=se[2], at_boundary=cor_edge))

    def parameter_label(self, parameter: VarianceParameter) -> str:
        if parameter.level == "therapist":
            return "therapist sd(intercept)"
        if parameter.kind == "sd":
            who = "both members" if parameter.pooled else parameter.effects[0]
            return f"dyad sd(intercept {who})"
        return f"dyad cor(intercepts {self.roles[0]}, {self.roles[1]})"

    @property
    def variance(self) -> pd.DataFrame:
        return variance_frame(self)

    @property
    def icc(self) -> pd.DataFrame:
        """Latent-scale ICC per role: the random-intercept variance (the dyad's, plus the
        therapist's with a therapist level) over it plus the link's level-1 variance
        (pi^2/3 for logit, 1 for probit); the share of a member's latent variance that lies
        between dyads. With a therapist level also the variance shares: ``therapist``
        (between therapists, = the therapist ICC), ``dyad`` (between dyads within
        therapists) and ``within`` (the level-1 variance), summing to 1."""
        G = self.engine.G
        level1 = LINKS[self.spec.link].latent_variance
        tau = self.engine.therapist_sd ** 2
        total = np.diag(G) + tau + level1
        out = pd.DataFrame({"icc": (np.diag(G) + tau) / total, "level1_variance": level1},
                           index=list(self.roles))
        if self.engine.model.therapist is not None:
            out["therapist_share"] = tau / total
            out["dyad_share"] = np.diag(G) / total
            out["within_share"] = level1 / total
        return out

    @property
    def statistics(self) -> FitStatistics:
        fit = self.engine
        k = fit.n_params
        return FitStatistics(n_obs=fit.n_obs, n_dyads=fit.n_dyads,
                             n_therapists=fit.n_therapists,
                             n_params=k, method="ML", loglik=fit.loglik,
                             aic=-2 * fit.loglik + 2 * k,
                             bic=-2 * fit.loglik + k * np.log(fit.n_obs),
                             converged=fit.converged, message=fit.message,
                             fit_seconds=fit.fit_seconds)

    @property
    def boundary(self) -> tuple[str, ...]:
        out = []
        for line in self.engine.boundary:
            for r, role in enumerate(self.roles):
                line = line.replace(f"member {r}", role)
            out.append(line)
        return tuple(out)

    @property
    def dropped(self) -> pd.DataFrame:
        return dropped_frame([(r, e.reason) for e in self.design.dropped for r in e.rows])

    def reference_levels(self) -> dict[str, str]:
        chosen = dict(self.spec.reference)
        out = {}
        for m in self.spec.moderators:
            levels = moderator_levels(self.data.frame[m], chosen.get(m), m)
            if levels is not None:
                out[m] = str(levels[0])
        return out

    def level_names(self) -> dict[str, str]:
        three = self.spec.decomposition.center == "therapist"
        return {"within": "within-person",
                "between": "between-dyad, within therapist" if three else "between-person",
                "therapist": "between-therapist", "none": ""}

    def quadrature_text(self) -> str:
        k = self.spec.points
        if self.spec.therapist_level:
            ignored = f"; nagq={k} does not apply" if k > 1 else ""
            return ("Laplace approximation throughout (over each therapist's intercept and "
                    f"its dyads' intercepts together{ignored})")
        return "Laplace approximation" if k == 1 else \
            f"adaptive Gauss-Hermite quadrature, {k} points per dimension ({k * k} per dyad)"

    def notes(self) -> list[str]:
        spec = self.spec
        out = []
        if spec.family == "binomial":
            scale = "log odds" if spec.link == "logit" else "probit (latent normal) scale"
            out.append(f"Binary outcome {spec.outcome!r}: P(event) = F(eta); coefficients "
                       f"on the {scale}, z tests.")
        else:
            labels = ", ".join(f"{c:g}" for c in self.categories)
            out.append(f"Ordinal outcome {spec.outcome!r} (categories {labels}): P(Y <= k) "
                       f"= F(theta_k - eta) with {spec.link} link, thresholds "
                       f"{'per role' if spec.threshold_sets == 'role' else 'shared by the roles'}"
                       "; a positive effect means higher categories; z tests.")
        if spec.distinguishable:
            out.append(f"Roles: {self.roles[0]} (reference) and {self.roles[1]}; actor and "
                       "partner effects for each outcome role; the dyad's two random "
                       "intercepts have an unstructured 2x2 covariance.")
        else:
            out.append("Indistinguishable dyads: effects pooled over roles; the two random "
                       "intercepts have equal variances and a free correlation.")
        if spec.therapist_level:
            fit = self.engine
            caseload = pd.Series(self.design.model.dyad).groupby(
                pd.Series(fit.model.therapist)).nunique()
            single = int((caseload == 1).sum())
            out.append(f"Dyads nested in {fit.n_therapists} therapists "
                       f"({caseload.min()}-{caseload.max()} dyads each"
                       + (f", {single} with one dyad" if single else "")
                       + "): a therapist random intercept shared by both members.")
        if spec.decomposition.center in ("person", "therapist"):
            out.append("Within-person: a session's deviation from the person's own mean; "
                       "between: the person's mean centred on the mean of their role.")
        refs = self.reference_levels()
        for m in spec.moderators:
            if m in refs:
                source = reference_source(self.data.frame[m], dict(spec.reference).get(m))
                out.append(f"Moderator {m}: reference category {refs[m]} ({source}).")
        if spec.family == "binomial":
            y = self.design.model.y
            dyads = pd.Series(y).groupby(self.design.model.dyad).max()
            none = int((dyads == 0).sum())
            if none:
                out.append(f"{none} of {len(dyads)} dyads had no event; they stay in the "
                           "fit (their random intercepts are low, which the variance "
                           "components reflect).")
        out.append(f"Maximum likelihood by {self.quadrature_text()}; standard errors from "
                   "the observed information.")
        if not self.engine.converged:
            out.append(f"The fit did NOT converge: {self.engine.message}.")
        if self.boundary:
            out.append("Boundary estimate: " + "; ".join(self.boundary) + ".")
        if len(self.dropped):
            out.append(f"{len(self.dropped)} rows of the data were not used (missing "
                       "values; listed in result.dropped).")
        return out

    def design_matrix(self) -> pd.DataFrame:
        keep = [self.design.terms.index(t) for t in self.terms]
        return pd.DataFrame(self.design.model.X[:, keep], index=self.design.used,
                            columns=self.names)

    def linear_predictor(self, conditional: bool = True) -> np.ndarray:
        """eta per used row (with each dyad's conditional modes and its therapist's, or
        without)."""
        fit = self.engine
        eta = self.design_matrix().to_numpy() @ fit.coef
        if conditional:
            index = pd.Index(fit.dyads).get_indexer(self.design.model.dyad)
            eta = eta + fit.modes[index, self.design.model.role]
            if fit.therapists is not None and fit.therapist_modes is not None:
                which = pd.Index(fit.therapists).get_indexer(fit.model.therapist)
                eta = eta + fit.therapist_modes[which]
        return eta

    def category_probabilities(self, eta: np.ndarray, role: np.ndarray) -> np.ndarray:
        """P(Y = k) for each row (columns: the categories)."""
        link = LINKS[self.spec.link]
        if self.spec.family == "binomial":
            p1 = link.cdf(eta)
            return np.column_stack([1 - p1, p1])
        theta = self.engine.thresholds
        sets = role if self.spec.threshold_sets == "role" else np.zeros_like(role)
        cum = link.cdf(theta[sets] - eta[:, None])
        cum = np.column_stack([np.zeros(len(eta)), cum, np.ones(len(eta))])
        return np.diff(cum, axis=1)

    def fitted_frame(self) -> pd.DataFrame:
        """Per used row: observed, fitted (expected value given the dyad's conditional
        modes: P(event), or the expected category) and residual."""
        frame = self.data.frame.loc[self.design.used, ["dyad", "session", "role"]].copy()
        probs = self.category_probabilities(self.linear_predictor(),
                                            self.design.model.role)
        frame["observed"] = self.design.model.y
        frame["fitted"] = probs @ self.categories
        frame["residual"] = frame["observed"] - frame["fitted"]
        return frame

    def to_dict(self) -> dict[str, Any]:
        out = result_dict(self)
        out.update({"family": self.spec.family, "link": self.spec.link,
                    "nagq": self.spec.points, "approximation": self.quadrature_text(),
                    "integration": self.engine.integration,
                    "therapist_level": self.spec.therapist_level,
                    "variance": {"therapist_sd": jsonable(self.engine.therapist_sd)
                                 if self.spec.therapist_level else None,
                                 "table": variance_json(self.variance)},
                    "variance_shares": {role: {k: jsonable(v) for k, v in row.items()}
                                        for role, row in self.icc.iterrows()},
                    "categories": [jsonable(c) for c in self.categories],
                    "thresholds": [{k: jsonable(v) for k, v in row.items()}
                                   for row in self.thresholds.to_dict("records")],
                    "odds_ratios": [{"term": name, **{k: jsonable(v) for k, v in row.items()}}
                                    for name, row in self.odds_ratios.iterrows()],
                    "icc": {role: jsonable(v) for role, v in self.icc["icc"].items()},
                    "marginal_effects": [{k: jsonable(v) for k, v in row.items()}
                                         for row in self.marginal_effects.to_dict("records")]})
        return out

    def model_line(self) -> str:
        spec = self.spec
        return (f"Generalized APIM of {spec.outcome!r} ({spec.family}, {spec.link} link) on "
                f"{', '.join(spec.predictors)} "
                f"({'distinguishable' if spec.distinguishable else 'indistinguishable'} "
                f"dyads, ML, {self.quadrature_text()})")

    def summary(self, digits: int = 3) -> str:
        s = self.statistics
        counts = f"{s.n_obs} observations, {s.n_dyads} dyads"
        if s.n_therapists:
            counts += f", {s.n_therapists} therapists"
        head = [self.model_line(), s.line(counts)]
        shown = self.effects.drop(columns=["group", "df"]).rename(columns={"t": "z"})
        shown["p"] = shown["p"].map(p_value)
        fmt = {"float_format": lambda v: f"{v:.{digits}f}"}
        parts = head + ["", "Fixed effects (link scale)", shown.to_string(index=False, **fmt)]
        if len(self.odds_ratios):
            parts += ["", "Odds ratios", self.odds_ratios.to_string(**fmt)]
        if len(self.thresholds):
            parts += ["", "Thresholds", self.thresholds.to_string(index=False, **fmt)]
        ame = self.marginal_effects
        if len(ame):
            shown_ame = ame.drop(columns=["term"]).copy()
            shown_ame["p"] = shown_ame["p"].map(p_value)
            what = "P(event)" if self.spec.family == "binomial" else "P(category)"
            parts += ["", f"Average marginal effects on {what} (random intercepts at 0)",
                      shown_ame.to_string(index=False, **fmt)]
        icc_title = ("Latent-scale ICC and variance shares" if self.spec.therapist_level
                     else "Latent-scale ICC")
        parts += ["", "Random intercepts (latent scale)", self.variance.to_string(**fmt),
                  "", icc_title, self.icc.to_string(**fmt), ""]
        parts += self.notes()
        return "\n".join(parts)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        s = self.statistics
        return (f"<GeneralizedAPIMResult: {self.model_line()}; {s.n_obs} observations, "
                f"{s.n_dyads} dyads; logLik {s.loglik:.2f}>")

    def _repr_html_(self) -> str:
        return notebook_html(self)

