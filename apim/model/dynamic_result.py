"""A fitted dynamic APIM, through the :class:`~apim.model.fitted.FittedModel` protocol.

Effects: the outcome means, the lagged effects (entries of ``Phi``) and the between-level
actor and partner effects, with SEs from the observed information (delta method) and z
tests, as lavaan reports them. Beyond the protocol: :attr:`DynamicAPIMResult.lagged` (all
K x K entries of ``Phi`` by variable and role), :attr:`~DynamicAPIMResult.eigenvalues`,
:attr:`~DynamicAPIMResult.standardized` (within-person standardised lagged effects) and
:attr:`~DynamicAPIMResult.within_correlations` (same-session innovation correlations).

Examples
--------
>>> import apim
>>> frame = apim.load_alliance().to_long()
>>> part = frame[frame["dyad"].isin(frame["dyad"].unique()[:40]) & (frame["session"] <= 6)]
>>> data = apim.SessionData.from_long(part, dyad="dyad", session="session", role="role")
>>> result = apim.fit(data, apim.DynamicAPIMSpec("outcome", ("alliance",),
...                                              initial="stationary"))
>>> result.reference, result.kind
('z', 'dynamic APIM')
>>> list(result.lagged.columns[:4])
['to_variable', 'to_role', 'from_variable', 'from_role']
>>> result.data_report().unused_heading[:35]
'Rows the dynamic APIM does not use '
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from apim.apa import p_value
from apim.data.report import DataReport, Exclusion
from apim.data.session import SessionData
from apim.engine.distributions import stats
from apim.engine.dynamic.kalman import spectral_radius, stationary_covariance
from apim.engine.parameters import Level, VarianceParameter
from apim.errors import SpecError
from apim.model.design import Term, reference_source
from apim.model.fitted import (
    FitStatistics,
    ZTests,
    jsonable,
    result_dict,
    variance_frame,
)
from apim.model.groups import NOT_USED, PerGroupFits

if TYPE_CHECKING:
    from apim.engine.dynamic import DynamicFit
    from apim.model.dynamic_spec import DynamicAPIMSpec

__all__ = ["DynamicAPIMResult", "NOT_USED", "LAGGED_COLUMNS", "UNUSED_HEADING"]

#: The data report's heading of the rows the dynamic APIM leaves out
UNUSED_HEADING = ("Rows the dynamic APIM does not use (it uses every row with at least "
                  "one of its variables rated: a missing rating is a missing observation "
                  "at that session)")

#: The covariance levels of the engine's parameter names and their variance-table levels
_LEVELS: dict[str, Level] = {"innovation": "residual", "between": "dyad",
                             "therapist": "therapist"}

LAGGED_COLUMNS = ["to_variable", "to_role", "from_variable", "from_role", "estimate", "se",
                  "z", "p", "fixed"]


def _split(name: str) -> tuple[str, str]:
    """``"alliance[patient]"`` -> ``("alliance", "patient")``."""
    variable, role = name[:-1].rsplit("[", 1)
    return variable, role


@dataclass(frozen=True, eq=False, repr=False)
class DynamicAPIMResult(ZTests, PerGroupFits):
    """A fitted dynamic APIM (see :mod:`apim.model.dynamic`).

    Attributes
    ----------
    spec : DynamicAPIMSpec
    data : SessionData
    fits : dict
        The engine's :class:`~apim.engine.dynamic.DynamicFit` per group (``"all"``
        without a moderator).
    terms : effects in table order
    coef, cov_coef : estimates and their covariance (delta method)
    sessions : the session numbers of the grid
    dyads : the dyad labels per group, in the engine's order
    used : index labels of the data rows whose ratings enter the likelihood
    """

    spec: DynamicAPIMSpec
    data: SessionData = field(repr=False)
    fits: dict[str, DynamicFit] = field(repr=False)
    terms: Sequence[Term] = field(repr=False)
    coef: pd.Series = field(repr=False)
    cov_coef: pd.DataFrame = field(repr=False)
    sessions: np.ndarray = field(repr=False)
    dyads: dict[str, np.ndarray] = field(repr=False)
    used: np.ndarray = field(repr=False)

    @property
    def fit(self) -> DynamicFit:
        """The engine's fit of a model without a moderator (one group)."""
        if len(self.fits) != 1:
            raise SpecError(f"a multi-group model has one fit per group: use "
                            f"fits[group] with a group of {', '.join(self.groups)}")
        return next(iter(self.fits.values()))

    def _fit_of(self, group: str | None) -> DynamicFit:
        if group is None:
            return self.fit
        if group not in self.fits:
            raise SpecError(f"no group {group!r}: give one of {', '.join(self.groups)}")
        return self.fits[group]

    @property
    def roles(self) -> tuple[str, str]:
        return self.data.roles

    @property
    def kind(self) -> str:
        return "dynamic APIM"

    @property
    def lagged(self) -> pd.DataFrame:
        """Every entry ``Phi[to, from]`` (per group): the effect of ``from`` at session
        t-1 on ``to`` at t, with SE, z and p (``fixed`` for entries fixed at zero by the
        spec or equal to another by ``equal_roles``, whose SE is that of the entry it
        equals)."""
        rows = []
        for group, fit in self.fits.items():
            k = len(fit.names)
            est, cov = fit.delta(lambda p: p.phi.reshape(-1))
            se = np.sqrt(np.clip(np.diag(cov), 0, None))
            estimated = set(fit.layout.phi_index)
            z = np.divide(est, se, out=np.full(len(est), np.nan), where=se > 0)
            p = 2 * stats.norm.sf(np.abs(z))  # NaN where z is
            for i in range(k):
                for j in range(k):
                    to_v, to_r = _split(fit.names[i])
                    from_v, from_r = _split(fit.names[j])
                    s = se[i * k + j]
                    rows.append((to_v, to_r, from_v, from_r, est[i * k + j],
                                 s if s > 0 else np.nan, z[i * k + j], p[i * k + j],
                                 (i, j) not in estimated, self._group_label(group)))
        return pd.DataFrame(rows, columns=[*LAGGED_COLUMNS, "group"])

    @property
    def eigenvalues(self) -> pd.DataFrame:
        """Eigenvalues of ``Phi`` per group, largest modulus first (``real``,
        ``imaginary``, ``modulus``): all inside the unit circle for a stationary process;
        the largest modulus is how slowly a disturbance fades."""
        rows = [(self._group_label(g), float(v.real), float(v.imag), float(abs(v)))
                for g, fit in self.fits.items() for v in fit.eigenvalues]
        return pd.DataFrame(rows, columns=["group", "real", "imaginary", "modulus"])

    def _stationary(self, phi: np.ndarray, sigma_w: np.ndarray) -> np.ndarray:
        if spectral_radius(phi) >= 1:
            return np.full(phi.shape, np.nan)
        return stationary_covariance(phi, sigma_w)

    @property
    def standardized(self) -> pd.DataFrame:
        """Within-person standardised lagged effects ``Phi[to, from] sd(from) / sd(to)``
        with the within-person SDs of the stationary process (NaN if it is not
        stationary), with delta-method SEs (per group)."""
        def func(p: Any) -> np.ndarray:
            sd = np.sqrt(np.diag(self._stationary(p.phi, p.sigma_w)))
            return (p.phi * sd[None, :] / sd[:, None]).reshape(-1)
        parts = [fit.delta(func) for fit in self.fits.values()]
        table = self.lagged[["to_variable", "to_role", "from_variable", "from_role",
                             "group"]].copy()
        table["estimate"] = np.concatenate([est for est, _ in parts])
        table["se"] = np.concatenate([np.sqrt(np.clip(np.diag(cov), 0, None))
                                      for _, cov in parts])
        return table

    def impulse_responses(self, variable: str | None = None, role: str | None = None,
                          horizon: int = 8, level: float = 0.95,
                          group: str | None = None) -> pd.DataFrame:
        """How every variable responds over the next sessions to a rise of one
        within-person SD in ``variable`` of ``role`` (default: the first predictor of the
        reference role) at session t: ``Phi^h e_j sd_j`` for ``h = 0..horizon``, with
        delta-method SEs and ``level`` bands. The SD is the stationary within-person SD
        (the innovation SD where ``Phi`` is not stable); the rise is not propagated to
        the other variables at session t (a plain, not an orthogonalised, impulse).
        ``group``: the group of a multi-group model.

        Returns
        -------
        DataFrame
            ``sessions_after``, ``variable``, ``role``, ``response``, ``se``,
            ``ci_low``, ``ci_high``.
        """
        variable = variable if variable is not None else self.spec.predictors[0]
        role = role if role is not None else self.roles[0]
        name = f"{variable}[{role}]"
        fit = self._fit_of(group)
        names = list(fit.names)
        if name not in names:
            raise SpecError(f"no variable {variable!r} of role {role!r} in the model: "
                            f"give one of {', '.join(names)}")
        j = names.index(name)
        if horizon < 1:
            raise SpecError(f"horizon={horizon} must be a whole number >= 1")

        def func(p: Any) -> np.ndarray:
            cov = self._stationary(p.phi, p.sigma_w)
            if not np.all(np.isfinite(cov)):
                cov = p.sigma_w
            shock = np.zeros(len(names))
            shock[j] = np.sqrt(cov[j, j])
            out = [shock]
            for _ in range(horizon):
                out.append(p.phi @ out[-1])
            return np.concatenate(out)

        est, cov = fit.delta(func)
        se = np.sqrt(np.clip(np.diag(cov), 0, None))
        crit = float(stats.norm.ppf(0.5 + level / 2))
        rows = []
        for h in range(horizon + 1):
            for i, target in enumerate(names):
                v, r = _split(target)
                at = h * len(names) + i
                rows.append((h, v, r, est[at], se[at], est[at] - crit * se[at],
                             est[at] + crit * se[at]))
        return pd.DataFrame(rows, columns=["sessions_after", "variable", "role", "response",
                                           "se", "ci_low", "ci_high"])

    def within_correlations(self, group: str | None = None) -> pd.DataFrame:
        """Same-session correlations of the innovations (``Sigma_W`` as correlations):
        how the members' and variables' unpredicted changes go together (``group``: the
        group of a multi-group model)."""
        fit = self._fit_of(group)
        sd = np.sqrt(np.diag(fit.sigma_w))
        return pd.DataFrame(fit.sigma_w / np.outer(sd, sd), index=list(fit.names),
                            columns=list(fit.names))

    @property
    def parameters(self) -> tuple[VarianceParameter, ...]:
        """Innovation (``residual``), person-level (``dyad``) and, with a therapist
        level, therapist-level (``therapist``) covariances as typed records (kinds
        ``var``, ``cov``); the free initial covariance is a nuisance part of the first
        session and is listed in :meth:`to_dict` only."""
        out = []
        for group, fit in self.fits.items():
            se = np.sqrt(np.clip(np.diag(fit.cov), 0, None))
            for name, est, s in zip(fit.parameter_names, fit.estimate, se):
                level, _, inner = name[:-1].partition("(")
                if level not in _LEVELS:
                    continue
                v, w = inner.split("],")[0] + "]", inner.split("],")[-1]
                if "]," not in inner:
                    v = w = inner
                boundary = level != "innovation" and any(f" {level} " in f" {b} "
                                                         for b in fit.boundary)
                out.append(VarianceParameter(
                    _LEVELS[level],
                    "var" if v == w else "cov", effects=(v,) if v == w else (v, w),
                    estimate=float(est), se=float(s), at_boundary=boundary,
                    group=self._group_label(group)))
        return tuple(out)

    def parameter_label(self, parameter: VarianceParameter) -> str:
        """``innovation var(alliance[patient])``, ``between cov(alliance[patient],
        outcome[patient])``, ``therapist var(alliance[patient])``."""
        level = {v: k for k, v in _LEVELS.items()}[parameter.level]
        text = f"{level} {parameter.kind}({','.join(parameter.effects)})"
        return f"{text} in {parameter.group}" if parameter.group else text

    @property
    def variance(self) -> pd.DataFrame:
        return variance_frame(self)

    @property
    def statistics(self) -> FitStatistics:
        fits = list(self.fits.values())
        k = sum(f.n_params for f in fits)
        n_obs = sum(f.n_obs for f in fits)
        loglik = float(sum(f.loglik for f in fits))
        return FitStatistics(
            n_obs=n_obs, n_dyads=sum(f.n_dyads for f in fits),
            n_therapists=sum(f.n_therapists for f in fits), n_params=k,
            method="ML", loglik=loglik, aic=-2 * loglik + 2 * k,
            bic=-2 * loglik + float(np.log(n_obs)) * k,
            converged=all(f.converged for f in fits),
            message="; ".join(f.message for f in fits if not f.converged),
            fit_seconds=sum(f.seconds for f in fits))

    def level_names(self) -> dict[str, str]:
        return {"lagged": "within-person, lag 1",
                "between": ("between-dyad (within therapist), latent means"
                            if self.spec.therapist_level else
                            "between-person, latent means"),
                "therapist": "between-therapist", "none": ""}

    def data_report(self) -> DataReport:
        """The report of the fitted data on the model's variables, with the rows this
        model does not use: only rows with none of its variables rated (a row with some
        rated is used, its missing ratings being missing observations of that session),
        not the rows a cross-sectional dyadic fit would drop (example in the module's
        docstring)."""
        spec = self.spec
        report = self.data.report([*spec.predictors, spec.outcome])
        rows = tuple(int(r) for r in self.dropped["row"])
        return replace(report, exclusions=(Exclusion(NOT_USED, rows),) if rows else (),
                       unused_heading=UNUSED_HEADING)

    def notes(self) -> list[str]:
        spec = self.spec
        out = [f"Roles: {self.roles[0]} (reference) and {self.roles[1]}; lagged effects "
               "go from a variable at session t-1 to one at session t (Phi[to, from]); "
               "'actor' from the same member, 'partner' from the other.",
               f"The process starts at session {self.sessions[0]} for every dyad; skipped "
               "sessions and missing ratings are missing observations (full information); "
               f"initial condition: {spec.initial}.",
               "No person-mean centring: latent person means (random intercepts), exact ML; "
               "SEs from the observed information (numerical derivatives), z tests."]
        if not spec.reverse_paths:
            out.append(f"Reverse paths ({spec.outcome} at t-1 -> predictors at t) fixed "
                       "at zero.")
        if spec.equal_roles:
            out.append("Equal roles: each lagged effect is the same for both members.")
        if spec.therapist_level:
            out.append("Therapist level: a random mean per therapist and variable "
                       f"({spec.therapist_covariance} covariance Sigma_T); between-dyad "
                       "effects are within therapists"
                       + ("; between-therapist effects are the regressions implied by "
                          "Sigma_T." if spec.therapist_covariance == "unstructured"
                          else " (no therapist-level effects with a diagonal Sigma_T)."))
        if spec.covariates:
            out.append(f"Dyad-level covariates of the means ({', '.join(spec.covariates)}; "
                       "constant within each dyad): each one's effect on the mean of every "
                       "variable of both members; the intercepts are the means at covariate "
                       "values zero.")
        if spec.moderator:
            source = reference_source(self.data.frame[spec.moderator],
                                      dict(spec.reference).get(spec.moderator))
            out.append(f"One model per {spec.moderator} group ({', '.join(self.groups)}) on "
                       "the same session grid: each effect is that group's; differences "
                       "between groups with apim.arm_differences, each group minus the "
                       f"reference group {self.groups[0]} ({source}).")
        for group, fit in self.fits.items():
            radius = float(np.max(np.abs(fit.eigenvalues)))
            where = f" in {group}" if spec.moderator else ""
            out.append(f"Largest |eigenvalue| of Phi{where}: {radius:.3f}"
                       + (" (not stationary)" if radius >= 1 else ""))
        return out + self.closing_notes()

    @property
    def covariate_columns(self) -> list[str]:
        """The coded covariates of the means (a text covariate as ``name[level]``), in
        the order of the engine's coefficients."""
        return list(dict.fromkeys(t.predictor for t in self.terms
                                  if t.effect.endswith("covariate")))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the shared skeleton plus ``lagged`` (every K x K entry of ``Phi``:
        from/to variable and role, estimate, se, z, p), the eigenvalues of ``Phi``, the
        means, the innovation, person-level and initial covariance matrices and the
        same-session innovation correlations; with covariates of the means, the means are
        the intercepts (at covariate values zero) and ``covariate_coefficients`` (per
        variable, one column per coded covariate of ``covariates``)."""
        out = result_dict(self)
        out["lagged"] = [{k: jsonable(v) for k, v in row.items()}
                         for row in self.lagged.to_dict("records")]
        out["eigenvalues"] = [{k: jsonable(v) for k, v in row.items()}
                              for row in self.eigenvalues.to_dict("records")]
        out["groups"] = {group: {
            "variables": list(fit.names), "initial": fit.initial, "n_dyads": fit.n_dyads,
            "n_obs": fit.n_obs, "loglik": fit.loglik, "converged": fit.converged,
            "sessions": [int(self.sessions[0]), int(self.sessions[-1])],
            "means": fit.mu.reshape(len(fit.names), -1)[:, 0].tolist(),
            "covariates": self.covariate_columns,
            "covariate_coefficients": fit.mu.reshape(len(fit.names), -1)[:, 1:].tolist(),
            "phi": fit.phi.tolist(),
            "sigma_innovation": fit.sigma_w.tolist(), "sigma_between": fit.sigma_b.tolist(),
            "initial_covariance": fit.p0.tolist(),
            "n_therapists": fit.n_therapists,
            "therapist_covariance": (self.spec.therapist_covariance
                                     if fit.sigma_t is not None else None),
            "sigma_therapist": None if fit.sigma_t is None else fit.sigma_t.tolist(),
            "innovation_correlations": self.within_correlations(group).to_numpy().tolist()}
            for group, fit in self.fits.items()}
        return out

    def model_line(self) -> str:
        spec = self.spec
        extra = "" if spec.reverse_paths else ", no reverse paths"
        extra += ", equal roles" if spec.equal_roles else ""
        extra += f", one model per {spec.moderator} group" if spec.moderator else ""
        extra += (f", {spec.therapist_covariance} therapist level" if spec.therapist_level
                  else "")
        return (f"Dynamic APIM of {spec.outcome!r} on {', '.join(spec.predictors)} (ML, "
                f"lag 1, latent person means, {spec.initial} initial condition{extra})")

    def summary(self, digits: int = 3) -> str:
        """Effects, the lagged matrix, eigenvalues and fit statistics as text."""
        s = self.statistics
        head = [self.model_line(),
                s.line(f"{s.n_obs} ratings, {s.n_dyads} dyads, "
                       + (f"{s.n_therapists} therapists, " if s.n_therapists else "")
                       + f"sessions {self.sessions[0]}-{self.sessions[-1]}")]
        shown = self.effects.drop(columns=["by", "df"])
        if not self.spec.moderator:
            shown = shown.drop(columns="group")
        shown["p"] = shown["p"].map(p_value)
        body = shown.rename(columns={"t": "z"}).to_string(
            index=False, float_format=lambda v: f"{v:.{digits}f}")
        parts = head + ["", "Effects", body]
        for group, fit in self.fits.items():
            where = f" in {group}" if self.spec.moderator else ""
            phi = pd.DataFrame(fit.phi, index=[f"{n} (t)" for n in fit.names],
                               columns=[f"{n} (t-1)" for n in fit.names])
            eig = ", ".join(f"{v.real:.{digits}f}" if abs(v.imag) < 1e-12
                            else f"{v.real:.{digits}f}{v.imag:+.{digits}f}i"
                            for v in fit.eigenvalues)
            parts += ["", f"Lagged effects Phi[to, from]{where}",
                      phi.to_string(float_format=lambda v: f"{v:.{digits}f}"),
                      f"Eigenvalues of Phi{where}: {eig}", "",
                      f"Same-session innovation correlations{where}",
                      self.within_correlations(group).to_string(
                          float_format=lambda v: f"{v:.{digits}f}")]
        if self.spec.therapist_level:
            var = self.variance
            ther = var[var.index.str.startswith("therapist ")]
            parts += ["", "Therapist-level covariance (Sigma_T)",
                      ther.to_string(float_format=lambda v: f"{v:.{digits}f}")]
        notes = ["SEs: observed information (numerical), delta method; z tests"]
        if self.spec.moderator:
            notes.append(f"reference group {self.spec.moderator} = {self.groups[0]}")
        if self.spec.therapist_level:
            notes.append("between = between dyads of the same therapist")
        if self.boundary:
            notes.append("boundary: " + "; ".join(self.boundary))
        return "\n".join(parts + ["", "; ".join(notes)])
