"""A fitted latent (multivariate) APIM, through the
:class:`~apim.model.fitted.FittedModel` protocol.

Effects come with delta-method SEs from the observed information and z tests (as lavaan
reports them); in a multi-group model (a moderator such as the treatment arm) every effect
belongs to one arm (the ``group`` column of the effects table, ``[arm]`` in its name).

Examples
--------
>>> import apim
>>> result = apim.fit(apim.load_alliance(), apim.LatentAPIMSpec("outcome", ("alliance",)))
>>> result.reference, result.df
('z', 'normal')
>>> result.effects.loc["patient.actor.between.alliance", "level"]
'between'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from apim.apa import p_value
from apim.data.session import SessionData
from apim.engine.parameters import Level, VarianceParameter
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
    from apim.engine.multivariate.estimate import MultivariateFit
    from apim.model.spec import LatentAPIMSpec

__all__ = ["LatentAPIMResult", "NOT_USED"]

_LEVELS: dict[str, Level] = {"within": "residual", "between": "dyad", "therapist": "therapist"}


@dataclass(frozen=True, eq=False, repr=False)
class LatentAPIMResult(ZTests, PerGroupFits):
    """A fitted latent APIM (see :mod:`apim.model.latent`).

    Attributes
    ----------
    spec : LatentAPIMSpec
    data : SessionData
    fits : dict
        The engine fit per group (``"all"`` without a moderator).
    counts : dict
        Per group, the number of ratings per dyad and variable (for reliabilities).
    terms : effects in table order
    coef, cov_coef : estimates and their covariance (delta method)
    used : index labels of the data rows whose ratings enter the likelihood
    """

    spec: LatentAPIMSpec
    data: SessionData = field(repr=False)
    fits: dict[str, MultivariateFit] = field(repr=False)
    counts: dict[str, np.ndarray] = field(repr=False)
    terms: Sequence[Term] = field(repr=False)
    coef: pd.Series = field(repr=False)
    cov_coef: pd.DataFrame = field(repr=False)
    used: np.ndarray = field(repr=False)

    @property
    def roles(self) -> tuple[str, str]:
        return self.data.roles

    @property
    def kind(self) -> str:
        return "latent APIM"

    @property
    def parameters(self) -> tuple[VarianceParameter, ...]:
        """Within (``residual``), between (``dyad``) and therapist covariances and phi of
        each group as typed records (kinds ``var``, ``cov``, ``phi``)."""
        out = []
        for group, fit in self.fits.items():
            se = np.sqrt(np.clip(np.diag(fit.cov), 0, None))
            for name, est, s in zip(fit.parameter_names, fit.estimate, se):
                if name.startswith("mean("):
                    continue
                if name == "phi":
                    out.append(VarianceParameter("residual", "phi", estimate=float(est),
                                                 se=float(s), group=self._group_label(group),
                                                 at_boundary=any("phi" in b
                                                                 for b in fit.boundary)))
                    continue
                level, _, inner = name[:-1].partition("(")
                v, w = _split_pair(inner)
                boundary = any(f" {level} " in f" {b} " for b in fit.boundary)
                out.append(VarianceParameter(
                    _LEVELS[level], "var" if v == w else "cov",
                    effects=(v,) if v == w else (v, w), estimate=float(est), se=float(s),
                    at_boundary=boundary, group=self._group_label(group)))
        return tuple(out)

    def parameter_label(self, parameter: VarianceParameter) -> str:
        """``within var(alliance[patient])``, ``between cov(alliance[patient],
        outcome[patient])``, ``within AR(1) phi``; ``in AFT`` added per arm."""
        level = {v: k for k, v in _LEVELS.items()}[parameter.level]
        if parameter.kind == "phi":
            text = f"{level} AR(1) phi"
        else:
            text = f"{level} {parameter.kind}({','.join(parameter.effects)})"
        return f"{text} in {parameter.group}" if parameter.group else text

    @property
    def variance(self) -> pd.DataFrame:
        """The covariance parameters with SEs and the boundary flag, indexed by label."""
        return variance_frame(self)

    @property
    def reliability(self) -> pd.DataFrame:
        """Reliability of each role's person means, ``lambda = tau^2 / (tau^2 + sigma^2/n)``
        with ``tau^2``, ``sigma^2`` from ``Sigma_B`` (plus ``Sigma_T`` with a therapist
        level: the person's level includes the therapist's), ``Sigma_W`` and ``n`` each
        person's number of ratings (mean, min and max over persons; AR(1) ignored)."""
        rows = []
        for group, fit in self.fits.items():
            n = self.counts[group]
            for j, name in enumerate(fit.names):
                var, role = name[:-1].split("[", 1)
                tau2, sigma2 = fit.sigma_b[j, j], fit.sigma_w[j, j]
                if fit.sigma_t is not None:
                    tau2 = tau2 + fit.sigma_t[j, j]
                nj = n[:, j][n[:, j] > 0]
                lam = tau2 / (tau2 + sigma2 / nj)
                rows.append((group, var, role, tau2, sigma2, float(nj.mean()),
                             float(lam.mean()), float(lam.min()), float(lam.max())))
        return pd.DataFrame(rows, columns=["group", "variable", "role", "tau2", "sigma2",
                                           "mean_sessions", "reliability", "min", "max"])

    @property
    def statistics(self) -> FitStatistics:
        fits = list(self.fits.values())
        k = sum(f.n_params for f in fits)
        n_obs = sum(f.n_obs for f in fits)
        loglik = float(sum(f.loglik for f in fits))
        return FitStatistics(
            n_obs=n_obs, n_dyads=sum(f.n_clusters for f in fits),
            n_therapists=sum(f.n_therapists for f in fits), n_params=k,
            method=self.spec.method, loglik=loglik, aic=-2 * loglik + 2 * k,
            bic=-2 * loglik + float(np.log(n_obs)) * k,
            converged=all(f.converged for f in fits),
            message="; ".join(f.message for f in fits if not f.converged),
            fit_seconds=sum(f.seconds for f in fits))

    def level_names(self) -> dict[str, str]:
        """What each level of the effects table means in this model."""
        return {"within": "within-person",
                "between": ("between-dyad, within therapist" if self.spec.therapist_level
                            else "between-person, latent means"),
                "therapist": "between-therapist", "none": ""}

    def notes(self) -> list[str]:
        """What a reader of the effects table must know."""
        spec = self.spec
        out = [f"Roles: {self.roles[0]} (reference) and {self.roles[1]}; actor and partner "
               "effects are estimated for each outcome role.",
               "Between-person effects are regressions on the latent person means; SEs by "
               "the delta method from the observed information; z tests, as lavaan reports "
               "them."]
        if spec.moderator:
            source = reference_source(self.data.frame[spec.moderator],
                                      dict(spec.reference).get(spec.moderator))
            out.append(f"One model per {spec.moderator} group ({', '.join(self.groups)}): "
                       "each effect is that group's; differences between groups with "
                       f"apim.arm_differences, each group minus the reference group "
                       f"{self.groups[0]} ({source}).")
        if spec.therapist_level:
            out.append("Between-dyad effects are within therapists (dyad-level covariance "
                       "around the therapist's level); between-therapist effects are the "
                       "regressions implied by the therapist-level covariance."
                       if spec.therapist_covariance == "unstructured" else
                       "Between-dyad effects are within therapists; the therapist-level "
                       "covariance is diagonal (no therapist-level effects).")
        return out + self.closing_notes()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the shared skeleton, plus per group the means, within, between and
        (with a therapist level; else None) therapist covariance matrices and phi with
        SEs, and the reliabilities."""
        out = result_dict(self)
        groups = {}
        for group, fit in self.fits.items():
            se = np.sqrt(np.clip(np.diag(fit.cov), 0, None))
            groups[group] = {
                "variables": list(fit.names), "n_obs": fit.n_obs, "n_dyads": fit.n_clusters,
                "loglik": fit.loglik, "converged": fit.converged, "message": fit.message,
                "means": fit.mu.tolist(), "sigma_within": fit.sigma_w.tolist(),
                "sigma_between": fit.sigma_b.tolist(), "phi": fit.phi,
                "n_therapists": fit.n_therapists,
                "therapist_covariance": fit.therapist_covariance,
                "sigma_therapist": None if fit.sigma_t is None else fit.sigma_t.tolist(),
                "parameters": {n: {"estimate": float(e), "se": float(s)}
                               for n, e, s in zip(fit.parameter_names, fit.estimate, se)},
            }
        out["groups"] = groups
        out["reliability"] = [{k: jsonable(v) for k, v in row.items()}
                              for row in self.reliability.to_dict("records")]
        return out

    def model_line(self) -> str:
        spec = self.spec
        level = (f", {spec.therapist_covariance} therapist level" if spec.therapist_level
                 else "")
        return (f"Latent APIM of {spec.outcome!r} on {', '.join(spec.predictors)} "
                f"({spec.method}, unstructured within and between covariances"
                f"{', AR(1)' if spec.ar1 else ''}"
                f"{level}"
                f"{', one model per ' + spec.moderator + ' group' if spec.moderator else ''})")

    def summary(self, digits: int = 3) -> str:
        """Effects, reliabilities and fit statistics as text."""
        s = self.statistics
        head = [self.model_line(),
                s.line(f"{s.n_obs} ratings, {s.n_dyads} dyads"
                       + (f", {s.n_therapists} therapists" if s.n_therapists else ""))]
        shown = self.effects.drop(columns="by")
        if not self.spec.moderator:
            shown = shown.drop(columns="group")
        shown["p"] = shown["p"].map(p_value)
        body = shown.drop(columns="df").rename(columns={"t": "z"}).to_string(
            index=False, float_format=lambda v: f"{v:.{digits}f}")
        rel = self.reliability.to_string(index=False,
                                         float_format=lambda v: f"{v:.{digits}f}")
        notes = ["SEs: delta method from the observed information; z tests"]
        if self.spec.moderator:
            notes.append(f"reference group {self.spec.moderator} = {self.groups[0]}")
        if self.spec.therapist_level:
            notes.append("between = between dyads of the same therapist")
        if self.boundary:
            notes.append("boundary: " + "; ".join(self.boundary))
        parts = head + ["", "Effects", body, "", "Reliability of person means", rel]
        if self.spec.therapist_level:
            var = self.variance
            ther = var[var.index.str.startswith("therapist ")]
            parts += ["", "Therapist-level covariance (Sigma_T)",
                      ther.to_string(float_format=lambda v: f"{v:.{digits}f}")]
        return "\n".join(parts + ["", "; ".join(notes)])



def _split_pair(inner: str) -> tuple[str, str]:
    """``"x[patient],y[therapist]"`` -> the two variable names (names hold no ``],``)."""
    head, sep, tail = inner.partition("],")
    return (head + "]", tail) if sep else (inner, inner)
