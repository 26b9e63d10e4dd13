"""What every fitted model offers: the protocol that inference, reports and the CLI use.

A fitted model of any kind (the observed-mean APIM, a formula model, the latent APIM, and
the model families to come) implements :class:`FittedModel`. Everything downstream reads a
result only through it: Wald tests, simple slopes and Johnson-Neyman regions, dyadic
patterns, effect sizes, tables, figures, HTML and JSON. Nothing downstream reaches into an
engine's result or asks which class a result is; what only some kinds can give (a design
matrix for the observed range of a moderator, fitted values for diagnostics) is a method
that answers ``None`` where the kind has no such thing.

The pieces shared by every kind live here too: the columns of the effects table
(:data:`EFFECT_COLUMNS`), the fit statistics (:class:`FitStatistics`), the effects table
built from estimates, SEs and df (:func:`effects_frame`), the JSON skeleton
(:func:`result_dict`) and rows not used (:func:`dropped_frame`).

Examples
--------
>>> import apim
>>> result = apim.fit(apim.load_alliance(), apim.APIMSpec("outcome", ("alliance",)))
>>> isinstance(result, FittedModel)
True
>>> result.statistics.converged, result.reference
(True, 't')
>>> list(result.effects.columns) == EFFECT_COLUMNS
True
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from apim._version import __version__
from apim.engine.distributions import stats
from apim.engine.parameters import VarianceParameter

if TYPE_CHECKING:
    from apim.data.session import SessionData
    from apim.model.design import Term
    from apim.specbase import Spec

__all__ = ["FittedModel", "FitStatistics", "ZTests", "EFFECT_COLUMNS", "effects_frame",
           "result_dict", "dropped_frame", "jsonable", "notebook_html", "variance_frame",
           "variance_json"]

EFFECT_COLUMNS = ["outcome_role", "effect", "level", "predictor", "by", "group", "estimate",
                  "se", "df", "t", "p", "ci_low", "ci_high"]
"""Columns of every effects table. ``by`` names a moderator of the term (an interaction,
``treatment[AFT]``); ``group`` the arm of a multi-group model the effect belongs to (empty
for one group). ``t`` holds the t statistic, or z where ``df`` is infinite."""


@dataclass(frozen=True)
class FitStatistics:
    """Counts, likelihood and convergence of a fit.

    Attributes
    ----------
    n_obs : int
        Observations (ratings) the likelihood uses.
    n_dyads, n_therapists : int
        Dyads and therapists (0 without a therapist level).
    n_params : int
        Estimated parameters (fixed effects and covariance parameters), the AIC's count.
    method : {"REML", "ML"}
    loglik, aic, bic : float
    converged : bool
    message : str
        The optimiser's message (empty or "converged" when all went well).
    fit_seconds : float
    """

    n_obs: int
    n_dyads: int
    n_therapists: int
    n_params: int
    method: str
    loglik: float
    aic: float
    bic: float
    converged: bool
    message: str
    fit_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {k: jsonable(v) for k, v in asdict(self).items()}

    def line(self, counts: str) -> str:
        """``counts``, the log-likelihood, AIC, BIC and convergence: the second line of
        every model's summary.

        >>> FitStatistics(10, 2, 0, 3, "ML", -5.0, 16.0, 17.0, True, "", 0.1).line("10 rows")
        '10 rows; logLik -5.000, AIC 16.000, BIC 17.000; converged'
        """
        status = ("converged" if self.converged
                  else "NOT CONVERGED" + (f": {self.message}" if self.message else ""))
        return (f"{counts}; logLik {self.loglik:.3f}, AIC {self.aic:.3f}, "
                f"BIC {self.bic:.3f}; {status}")


@runtime_checkable
class FittedModel(Protocol):
    """The interface of every fitted model (see the module docstring).

    Attributes and methods
    ----------------------
    spec : the specification that was fitted (a frozen :class:`~apim.specbase.Spec`)
    data : SessionData the model was fitted to
    roles : (reference role, other role)
    kind : short name of the model family ("APIM", "latent APIM", "formula model")
    coef, cov_coef : named coefficients and their covariance
    reference : "t" (t tests with :meth:`df_values`) or "z" (normal theory)
    df : how the df were obtained ("satterthwaite", "containment" or "normal")
    terms : one :class:`~apim.model.design.Term` per coefficient, in order
    effects : the tidy effects table (:data:`EFFECT_COLUMNS`, indexed by term name)
    parameters : covariance parameters as typed records
    statistics : :class:`FitStatistics`
    boundary : one line per estimate at the edge of its space
    dropped : rows of the input not used, with the reason
    """

    @property
    def spec(self) -> Spec: ...
    @property
    def data(self) -> SessionData: ...
    @property
    def roles(self) -> tuple[str, str]: ...
    @property
    def kind(self) -> str: ...
    @property
    def coef(self) -> pd.Series: ...
    @property
    def cov_coef(self) -> pd.DataFrame: ...
    @property
    def reference(self) -> Literal["t", "z"]: ...
    @property
    def df(self) -> str: ...
    @property
    def terms(self) -> Sequence[Term]: ...
    @property
    def effects(self) -> pd.DataFrame: ...
    @property
    def parameters(self) -> tuple[VarianceParameter, ...]: ...
    @property
    def variance(self) -> pd.DataFrame: ...
    @property
    def statistics(self) -> FitStatistics: ...
    @property
    def boundary(self) -> tuple[str, ...]: ...
    @property
    def dropped(self) -> pd.DataFrame: ...

    def df_values(self) -> pd.Series:
        """Denominator df of each coefficient (infinite for z tests)."""
        ...

    def contrast_df(self, L: np.ndarray) -> np.ndarray:
        """Denominator df of the t test of each row of ``L beta`` (inf for z tests)."""
        ...

    def joint_df(self, L: np.ndarray) -> float:
        """Denominator df of the F test of all rows of ``L beta`` jointly (inf: chi-square)."""
        ...

    def parameter_label(self, parameter: VarianceParameter) -> str:
        """A readable name of a covariance parameter."""
        ...

    def model_line(self) -> str:
        """One line saying which model was fitted."""
        ...

    def notes(self) -> list[str]:
        """What a reader of the effects table must know about this model (roles, centring,
        moderators' reference categories, the SE convention)."""
        ...

    def reference_levels(self) -> dict[str, str]:
        """Reference category of each categorical moderator or grouping."""
        ...

    def level_names(self) -> dict[str, str]:
        """What each level of the effects table means in this model (``within`` ->
        "within-person", ...)."""
        ...

    def design_matrix(self) -> pd.DataFrame | None:
        """The fixed-effects design of the rows used (columns named as :attr:`coef`), or
        None where the model has none (the latent APIM)."""
        ...

    def fitted_frame(self) -> pd.DataFrame | None:
        """Per used row: dyad, session, role, observed, fitted, residual; or None."""
        ...

    def summary(self, digits: int = 3) -> str:
        ...

    def to_dict(self) -> dict[str, Any]:
        """Everything about the fit, JSON-ready (see :func:`result_dict`)."""
        ...


def effects_frame(terms: Sequence[Term], names: Sequence[str], estimate: np.ndarray,
                  se: np.ndarray, df: np.ndarray, level: float = 0.95) -> pd.DataFrame:
    """The tidy effects table: t (or z where ``df`` is infinite) tests and CIs.

    Examples
    --------
    >>> from apim.model.design import Term
    >>> t = effects_frame([Term("patient", "intercept", "none", "", "")], ["patient.intercept"],
    ...                   np.array([2.0]), np.array([1.0]), np.array([np.inf]))
    >>> round(float(t.loc["patient.intercept", "p"]), 4)
    0.0455
    """
    estimate, se, df = (np.asarray(a, float) for a in (estimate, se, df))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = estimate / se
    p = 2 * stats.t.sf(np.abs(t), df)
    crit = stats.t.ppf(0.5 + level / 2, df)
    labels = [(term.outcome_role, term.effect, term.level, term.predictor, term.by,
               term.group) for term in terms]
    columns: dict[str, Any] = {name: [row[i] for row in labels] if labels
                               else np.array([], dtype=object)  # as text, not numbers
                               for i, name in enumerate(EFFECT_COLUMNS[:6])}
    columns.update(estimate=estimate, se=se, df=df, t=t, p=p, ci_low=estimate - crit * se,
                   ci_high=estimate + crit * se)  # one frame built at once: no inserts
    return pd.DataFrame(columns, index=pd.Index(list(names), name="term"))


class _Coefficients(Protocol):
    @property
    def terms(self) -> Sequence[Term]: ...
    @property
    def coef(self) -> pd.Series: ...
    @property
    def cov_coef(self) -> pd.DataFrame: ...


class ZTests:
    """The protocol's reference-distribution members of a model tested by z (normal
    theory, infinite df: the latent, generalized and dynamic APIMs), and its tidy
    ``effects`` from ``terms``, ``coef`` and ``cov_coef``; mixed into their results.

    Examples
    --------
    >>> import apim
    >>> fit = apim.fit(apim.load_alliance(), apim.LatentAPIMSpec("outcome", ("alliance",)))
    >>> isinstance(fit, ZTests), fit.reference, fit.joint_df(np.eye(2, len(fit.coef)))
    (True, 'z', inf)
    """

    @property
    def reference(self) -> Literal["t", "z"]:
        return "z"

    @property
    def df(self) -> str:
        return "normal"

    def df_values(self: _Coefficients) -> pd.Series:
        """Degrees of freedom per effect: infinite (normal-theory tests)."""
        return pd.Series(np.inf, index=self.coef.index)

    def contrast_df(self, L: np.ndarray) -> np.ndarray:
        return np.full(np.atleast_2d(L).shape[0], np.inf)

    def joint_df(self, L: np.ndarray) -> float:
        return float("inf")

    @property
    def effects(self: _Coefficients) -> pd.DataFrame:
        """Tidy effects table (the columns of every fitted model; ``t`` holds z)."""
        se = np.sqrt(np.clip(np.diag(self.cov_coef.to_numpy()), 0, None))
        return effects_frame(self.terms, list(self.coef.index), self.coef.to_numpy(), se,
                             np.full(len(se), np.inf))


def variance_frame(result: FittedModel) -> pd.DataFrame:
    """The covariance parameters with SEs and the boundary flag, indexed by their readable
    labels (``result.parameter_label``)."""
    records = result.parameters
    return pd.DataFrame({"estimate": [p.estimate for p in records],
                         "se": [p.se for p in records],
                         "at_boundary": [p.at_boundary for p in records]},
                        index=[result.parameter_label(p) for p in records])


def variance_json(variance: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The variance table (:func:`variance_frame`) as JSON: estimate, se and at_boundary
    per component."""
    return {k: {"estimate": jsonable(v["estimate"]), "se": jsonable(v["se"]),
                "at_boundary": bool(v["at_boundary"])} for k, v in variance.iterrows()}


def jsonable(value: Any) -> Any:
    """A number or flag as JSON takes it (non-finite numbers as None)."""
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def dropped_frame(rows: Sequence[tuple[int, str]]) -> pd.DataFrame:
    """Rows not used, as a frame sorted by row number (columns ``row``, ``reason``)."""
    return pd.DataFrame(list(rows), columns=["row", "reason"]).sort_values(
        "row", ignore_index=True)


def result_dict(result: FittedModel) -> dict[str, Any]:
    """The JSON skeleton every kind shares: version, model kind, specification, df,
    fit statistics, boundary notes, fixed effects, covariance parameters and rows not
    used. Each kind adds its own details to it in ``to_dict``."""
    fixed = [{"term": name, **{k: jsonable(v) for k, v in row.items()}}
             for name, row in result.effects.iterrows()]
    dropped = result.dropped
    reasons: dict[str, list[int]] = {}
    for row, reason in zip(dropped["row"], dropped["reason"]):
        reasons.setdefault(str(reason), []).append(int(row))
    return {
        "version": __version__, "model": result.kind,
        "specification": result.spec.to_dict(),
        **result.statistics.to_dict(),
        "df": result.df, "reference": result.reference,
        "boundary": list(result.boundary),
        "fixed": fixed,
        "parameters": [{"label": result.parameter_label(p), "level": p.level,
                        "kind": p.kind, "effects": list(p.effects),
                        "roles": [result.roles[r] for r in p.roles], "pooled": p.pooled,
                        "group": p.group, "estimate": jsonable(p.estimate),
                        "se": jsonable(p.se), "at_boundary": p.at_boundary}
                       for p in result.parameters],
        "dropped": [{"reason": k, "rows": v} for k, v in reasons.items()],
    }


def notebook_html(result: FittedModel, digits: int = 3) -> str:
    """How a result shows itself in Jupyter: the model line, the effects and the
    covariance parameters as plain HTML tables (text escaped). APA tables with notes come
    from :mod:`apim.report`."""
    s = result.statistics
    head = (f"<p><b>{html.escape(result.model_line())}</b><br>{s.n_obs} observations, "
            f"{s.n_dyads} dyads; logLik {s.loglik:.3f}; "
            f"{'converged' if s.converged else 'NOT converged: ' + html.escape(s.message)}"
            "</p>")
    return (head + result.effects.to_html(float_format=lambda v: f"{v:.{digits}f}")
            + result.variance.to_html(float_format=lambda v: f"{v:.{digits}f}"))
