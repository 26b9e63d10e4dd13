"""Therapist effects: variance shares per level and the alliance-outcome association split
into its therapist-level and patient-level parts.

**Variance shares.** For a variable rated by role ``r`` (patient- or therapist-rated
alliance, session outcome), the unconditional three-level model

    y_jit = mu + v_j + u_ji + e_jit,   v_j ~ N(0, tau^2), u_ji ~ N(0, omega^2),
    e_jit ~ N(0, sigma^2)

(sessions ``t`` of dyad ``i`` of therapist ``j``; nlme ``lme(y ~ 1, random = ~ 1 |
therapist/dyad)``) is fitted per role with the engine, and the shares of the total variance
``tau^2 + omega^2 + sigma^2`` at the therapist, dyad (patient within therapist) and session
levels are reported: the therapist share is the therapist ICC of Baldwin, Wampold & Imel
(2007). Covariates (e.g. treatment, session number) give conditional shares. Without a
therapist column the model has two levels (dyad, session); with one session per person the
dyad is the lowest level.

Confidence intervals:

- ``"bootstrap"``: parametric bootstrap (simulate from the fitted model, refit, percentile
  interval), replicates run with :func:`apim.parallel.run_jobs`;
- ``"exact"``: in a balanced one-way design (no therapist level, every dyad with the same
  number ``n`` of sessions, no covariates) the exact interval from the F distribution of
  ``F = MSB / MSW`` (Searle, 1971, sec. 9.6; Shrout & Fleiss, 1979, ICC(1,1))::

      F_L = F / F_{1-a/2}(k-1, k(n-1)),  F_U = F / F_{a/2}(k-1, k(n-1)),
      ICC in [(F_L - 1) / (F_L + n - 1), (F_U - 1) / (F_U + n - 1)]

  (the lower limit may be negative, as in Shrout & Fleiss; the session share's interval is
  one minus it);
- ``"auto"`` (default): exact where it applies, the bootstrap elsewhere; ``"none"``.

A variance estimated at zero is flagged in the ``boundary`` column (its interval then
starts at zero: a bootstrap from a boundary fit).

**Association split** (Baldwin, Wampold & Imel, 2007). At the dyad level, each dyad's mean
outcome (rated by the outcome role) is regressed on its mean predictor (rated by the
predictor role), split into the patient's deviation from their therapist's caseload mean
(the *patient-level*, within-therapist effect) and the therapist's caseload mean (the
*therapist-level* effect), with a random therapist intercept; the *contextual effect* is
therapist-level minus patient-level, with its t test (Satterthwaite df). The same split at
the session level uses the three-level decomposition (``DecompositionSpec(center=
"therapist")``) in a full APIM with a therapist level: actor and partner effects within
dyads, between dyads within therapist, and between therapists, with the contextual effect
``therapist - between`` per outcome role.

Examples
--------
>>> import apim
>>> data = apim.load_alliance()
>>> shares = variance_shares(data, ["alliance"], ci="none")
>>> shares.table[["role", "level"]].head(3).values.tolist()
[['patient', 'therapist'], ['patient', 'dyad'], ['patient', 'session']]
>>> bool(abs(shares.table.groupby("role")["share"].sum() - 1).max() < 1e-12)
True
>>> split = association_split(data, "alliance", "outcome")
>>> sorted(split["level"].unique())
['contextual', 'therapist', 'within_therapist']
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import patsy

from apim.data.session import SessionData
from apim.engine.distributions import stats
from apim.engine.fit import MixedFit
from apim.engine.fit import fit as engine_fit
from apim.engine.inference import satterthwaite_df
from apim.engine.model import MixedModel
from apim.engine.residual import Residual
from apim.engine.structures import Unstructured
from apim.errors import FitError, SpecError
from apim.inference.wald import wald_test
from apim.model.centring import DecompositionSpec
from apim.model.registry import fit as apim_fit
from apim.model.result import APIMResult
from apim.model.spec import APIMSpec, CovarianceSpec
from apim.parallel import run_jobs
from apim.specbase import Spec

__all__ = ["TherapistSpec", "VarianceShares", "TherapistEffects", "variance_shares",
           "association_split", "session_split", "therapist_effects", "exact_icc_interval",
           "SHARE_COLUMNS", "ASSOCIATION_COLUMNS"]

SHARE_COLUMNS = ["variable", "role", "level", "variance", "share", "ci_low", "ci_high",
                 "ci_method", "n_boot", "boundary", "n_obs", "n_dyads", "n_therapists"]
ASSOCIATION_COLUMNS = ["outcome_role", "predictor_role", "effect", "level", "estimate", "se",
                       "df", "t", "p", "ci_low", "ci_high", "n_dyads", "n_therapists"]
CI = Literal["auto", "bootstrap", "exact", "none"]
Method = Literal["REML", "ML"]
_BOUNDARY = 1e-4  # a level's SD below this fraction of the residual SD is at zero


@dataclass(frozen=True)
class TherapistSpec(Spec):
    """What :func:`therapist_effects` computes.

    Parameters
    ----------
    variables : tuple of str
        Variables whose variance shares are wanted (e.g. alliance, outcome), per role.
    predictor, outcome : str, optional
        For the association split (both or neither): e.g. alliance and outcome.
    covariates : tuple of str
        Fixed effects in every model (e.g. treatment): conditional shares and effects.
    ci : {"auto", "bootstrap", "exact", "none"}
        Interval for the shares (see the module docstring).
    n_boot : int
        Parametric bootstrap replicates.
    level : float
        Confidence level.
    method : {"REML", "ML"}
    session_split : bool
        Also split the association at the session level (three-level APIM).
    """

    variables: tuple[str, ...] = ()
    predictor: str | None = None
    outcome: str | None = None
    covariates: tuple[str, ...] = ()
    ci: CI = "auto"
    n_boot: int = 500
    level: float = 0.95
    method: Method = "REML"
    session_split: bool = True

    def check(self) -> None:
        if (self.predictor is None) != (self.outcome is None):
            raise SpecError("give both predictor and outcome for the association split, "
                            "or neither")
        if not self.variables and self.predictor is None:
            raise SpecError("nothing to do: give variables (variance shares) and/or a "
                            "predictor and an outcome (association split)")
        if not 0 < self.level < 1:
            raise SpecError(f"level={self.level} must lie between 0 and 1, e.g. 0.95")
        if self.n_boot < 20:
            raise SpecError(f"n_boot={self.n_boot} is too few for a percentile interval: "
                            "use at least 20 (500 or more for a report)")


# ---------------------------------------------------------------------- data preparation
def _require_therapists(data: SessionData, what: str) -> None:
    if not data.has_therapist:
        raise SpecError(f"{what} needs a therapist column: map it when reading the data "
                        "(therapist='COL', or --therapist COL)")


def _design(frame: pd.DataFrame, covariates: tuple[str, ...]) -> tuple[np.ndarray, tuple]:
    if not covariates:
        return np.ones((len(frame), 1)), ("(Intercept)",)
    matrix = patsy.dmatrix(" + ".join(f"Q('{c}')" for c in covariates), frame,
                           NA_action="raise", return_type="dataframe")
    names = tuple(n.replace("Q('", "").replace("')", "") for n in matrix.columns)
    return matrix.to_numpy(float), names


def _subset(data: SessionData, variable: str, role: str,
            covariates: tuple[str, ...]) -> pd.DataFrame:
    frame = data.frame
    values = data.numeric(variable)
    for c in covariates:
        if c not in frame.columns:
            data.numeric(c)  # raises the missing-column error with the known names
    keep = (frame["role"] == role) & values.notna()
    keep &= frame[list(covariates)].notna().all(axis=1) if covariates else True
    sub = frame.loc[keep].copy()
    sub[variable] = values[keep]
    if sub.empty:
        raise SpecError(f"column {variable!r} has no values rated by role {role!r}")
    return sub


@dataclass(frozen=True, eq=False)
class _LevelModel:
    """One role's variable: its engine model and which levels it has."""

    variable: str
    role: str
    model: MixedModel
    levels: tuple[str, ...]  # top to bottom, the last is the residual
    balanced_n: int  # sessions per dyad in a balanced one-way design, else 0


def _level_model(data: SessionData, variable: str, role: str,
                 covariates: tuple[str, ...]) -> _LevelModel:
    sub = _subset(data, variable, role, covariates)
    n = len(sub)
    X, names = _design(sub, covariates)
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise SpecError(f"covariates {list(covariates)} are collinear (or constant) among "
                        f"the {n} rows rated by {role!r}: drop one")
    per_dyad = sub.groupby("dyad")["session"].transform("size").to_numpy()
    has_dyad = bool(per_dyad.max() > 1)
    has_therapist = data.has_therapist and sub["therapist"].nunique() > 1
    if not has_dyad and not has_therapist:
        raise SpecError(f"{variable!r} rated by {role!r} has one value per dyad and no "
                        "therapist level: there is no variance to share out")
    one = np.ones((n, 1))
    model = MixedModel(
        y=sub[variable].to_numpy(float), X=X, dyad=sub["dyad"].to_numpy(),
        role=np.zeros(n, int), session=sub["session"].to_numpy(),
        Z=one if has_dyad else None, random=Unstructured(1) if has_dyad else None,
        residual=Residual.named("independent"),
        therapist=sub["therapist"].to_numpy() if has_therapist else None,
        therapist_random=Unstructured(1) if has_therapist else None,
        x_names=names, z_names=("dyad",) if has_dyad else (),
        therapist_names=("therapist",))
    levels = (("therapist",) if has_therapist else ()) + (
        ("dyad", "session") if has_dyad else ("dyad",))
    sizes = np.unique(per_dyad)
    balanced = (not has_therapist and has_dyad and not covariates and len(sizes) == 1)
    return _LevelModel(variable, role, model, levels, int(sizes[0]) if balanced else 0)


def _start(model: MixedModel) -> np.ndarray:
    """Moment start values (log SDs: dyad, therapist, residual) for the one-role model."""
    y = model.y - model.X @ np.linalg.lstsq(model.X, model.y, rcond=None)[0]
    frame = pd.DataFrame({"e": y, "d": model.dyad})
    dyad_mean = frame.groupby("d")["e"].transform("mean").to_numpy()
    total = max(float(np.var(y)), 1e-12)
    parts = []
    if model.random is not None:
        parts.append(max(0.5 * np.var(dyad_mean), 1e-3 * total))
    if model.therapist is not None:
        frame["t"] = model.therapist
        ther_mean = frame.groupby("t")["e"].transform("mean").to_numpy()
        parts.append(max(0.5 * np.var(ther_mean), 1e-3 * total))
    within = y - dyad_mean if model.random is not None else y
    parts.append(max(float(np.var(within)), 1e-3 * total))
    return 0.5 * np.log(np.array(parts))


def _components(model: MixedModel, fit: MixedFit) -> np.ndarray:
    """Variances top level first: [therapist], [dyad], residual."""
    out = []
    if model.therapist is not None:
        out.append(float(np.asarray(fit.T)[0, 0]))
    if model.random is not None:
        out.append(float(np.asarray(fit.G)[0, 0]))
    residual = next(p for p in fit.parameters
                    if p.level == "residual" and p.kind == "sd" and 0 in p.roles)
    out.append(residual.estimate ** 2)
    return np.array(out)


def _fit_one(model: MixedModel, method: Method, start: np.ndarray | None = None,
             quiet: bool = False) -> MixedFit:
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
        result = engine_fit(model, method, start=_start(model) if start is None else start)
    if not np.isfinite(result.loglik):
        raise FitError(f"the fit of {model.x_names} did not reach a finite likelihood")
    return result


def _replicate(job: int, seed: np.random.SeedSequence, models: tuple[MixedModel, ...],
               fits: tuple[tuple[np.ndarray, np.ndarray, np.ndarray | None], ...],
               method: Method, per_model: int) -> np.ndarray:
    """One parametric-bootstrap replicate: simulate from the fitted model and refit."""
    k = job // per_model
    model = models[k]
    beta, variances, theta = fits[k]
    rng = np.random.default_rng(seed)
    y = model.X @ beta
    sd = np.sqrt(variances)
    i = 0
    if model.therapist is not None:
        codes = np.unique(model.therapist, return_inverse=True)[1].ravel()
        y = y + rng.normal(0, sd[i], codes.max() + 1)[codes]
        i += 1
    if model.random is not None:
        codes = np.unique(model.dyad, return_inverse=True)[1].ravel()
        y = y + rng.normal(0, sd[i], codes.max() + 1)[codes]
    y = y + rng.normal(0, sd[-1], len(y))
    refit = _fit_one(dataclasses.replace(model, y=y), method,
                     start=theta, quiet=True)
    parts = _components(model, refit)
    return parts / parts.sum()


def exact_icc_interval(y: np.ndarray, group: np.ndarray, level: float = 0.95
                       ) -> tuple[float, float, float]:
    """ICC(1) point estimate and exact F-based interval in a balanced one-way design.

    ``F = MSB / MSW`` with ``k - 1`` and ``k (n - 1)`` df (``k`` groups of ``n``);
    ``ICC = (F - 1) / (F + n - 1)`` and the limits replace ``F`` by ``F / F_{1-a/2}`` and
    ``F / F_{a/2}`` (Searle, 1971; Shrout & Fleiss, 1979, ICC(1,1)).

    Examples
    --------
    >>> y = np.array([1., 2, 3, 2, 3, 4, 6, 7, 8]); g = np.repeat([0, 1, 2], 3)
    >>> [round(v, 4) for v in exact_icc_interval(y, g)]
    [0.8696, 0.3868, 0.9964]
    """
    y = np.asarray(y, float)
    codes = np.unique(group, return_inverse=True)[1].ravel()
    counts = np.bincount(codes)
    if len(counts) < 2 or len(np.unique(counts)) != 1 or counts[0] < 2:
        raise SpecError("the exact interval needs at least two groups of the same size "
                        f"of at least 2 (group sizes {sorted(set(counts.tolist()))[:5]})")
    k, n = len(counts), int(counts[0])
    means = np.bincount(codes, y) / n
    msb = n * np.sum((means - y.mean()) ** 2) / (k - 1)
    msw = np.sum((y - means[codes]) ** 2) / (k * (n - 1))
    f = msb / msw
    alpha = 1 - level
    df1, df2 = k - 1, k * (n - 1)
    f_low = f / stats.f.ppf(1 - alpha / 2, df1, df2)
    f_high = f / stats.f.ppf(alpha / 2, df1, df2)
    return (float((f - 1) / (f + n - 1)), float((f_low - 1) / (f_low + n - 1)),
            float((f_high - 1) / (f_high + n - 1)))


# ---------------------------------------------------------------------- variance shares
@dataclass(frozen=True, eq=False)
class VarianceShares:
    """Variance shares per variable, role and level.

    Attributes
    ----------
    table : pandas.DataFrame
        Columns :data:`SHARE_COLUMNS`: the level's variance and share of the total, the
        interval and how it was obtained (``exact``, ``bootstrap`` or ``none``), successful
        bootstrap replicates, whether the variance is at zero, and the counts.
    fits : dict
        ``(variable, role) -> MixedFit`` (the engine's results).
    failures : dict
        ``(variable, role) -> list of error texts`` of failed bootstrap replicates.
    """

    table: pd.DataFrame
    fits: dict[tuple[str, str], MixedFit] = field(repr=False)
    failures: dict[tuple[str, str], list[str]] = field(repr=False)

    def summary(self, digits: int = 3) -> str:
        """The table as text."""
        shown = self.table.drop(columns=["n_obs", "n_dyads", "n_therapists"])
        return shown.to_string(index=False, float_format=lambda v: f"{v:.{digits}f}")


def variance_shares(data: SessionData, variables: list[str] | tuple[str, ...], *,
                    covariates: tuple[str, ...] = (), ci: CI = "auto", n_boot: int = 500,
                    level: float = 0.95, method: Method = "REML", seed: int | None = None,
                    n_jobs: int = 1, progress: bool = False) -> VarianceShares:
    """Shares of each variable's variance at the therapist, dyad and session levels, per
    role (see the module docstring).

    Parameters
    ----------
    data : SessionData
    variables : list of str
    covariates : tuple of str
        Fixed effects for conditional shares (text columns are dummy coded).
    ci : {"auto", "bootstrap", "exact", "none"}
    n_boot : int
        Bootstrap replicates (each a refit).
    level : float
    method : {"REML", "ML"}
    seed : int, optional
        Seed of the bootstrap (results reproduce bit for bit).
    n_jobs : int
        Parallel workers for the bootstrap (:func:`apim.parallel.run_jobs`).
    progress : bool
        Show a progress bar for the bootstrap.

    Returns
    -------
    VarianceShares

    Examples
    --------
    >>> import apim
    >>> out = variance_shares(apim.load_alliance(), ["outcome"], ci="bootstrap", n_boot=20,
    ...                       seed=1)
    >>> row = out.table.iloc[0]
    >>> (row.role, row.level, row.ci_method, bool(row.ci_low < row.share < row.ci_high))
    ('patient', 'therapist', 'bootstrap', True)
    """
    spec = TherapistSpec(variables=tuple(variables), covariates=tuple(covariates), ci=ci,
                         n_boot=n_boot, level=level, method=method)
    if not spec.variables:
        raise SpecError("give at least one variable for the variance shares")
    units = [_level_model(data, v, r, spec.covariates)
             for v in spec.variables for r in data.roles]
    fits = [_fit_one(u.model, method) for u in units]
    shares = [_components(u.model, f) / _components(u.model, f).sum()
              for u, f in zip(units, fits)]
    how = []
    for u in units:
        if spec.ci == "none":
            how.append("none")
        elif spec.ci in ("auto", "exact") and u.balanced_n:
            how.append("exact")
        elif spec.ci == "exact":
            raise SpecError(f"ci='exact' needs every dyad to have the same number of "
                            f"{u.variable!r} ratings by {u.role!r}, and no covariates: "
                            "use ci='bootstrap'")
        else:
            how.append("bootstrap")
    alpha = 1 - spec.level
    limits: list[np.ndarray] = [np.full((len(s), 2), np.nan) for s in shares]
    n_ok = [0] * len(units)
    failures: dict[tuple[str, str], list[str]] = {}
    for k, u in enumerate(units):
        if how[k] == "exact":
            _, low, high = exact_icc_interval(u.model.y, u.model.dyad, spec.level)
            limits[k] = np.array([[low, high], [1 - high, 1 - low]])
    boot = [k for k in range(len(units)) if how[k] == "bootstrap"]
    if boot:
        models = tuple(units[k].model for k in boot)
        # refits start from the estimate, or from moments when it is on the boundary
        # (a variance at zero would hold every refit there)
        params = tuple((fits[k].coef.to_numpy(), _components(units[k].model, fits[k]),
                        None if fits[k].boundary else fits[k].theta) for k in boot)
        jobs = list(range(len(boot) * spec.n_boot))
        func = functools.partial(_replicate, models=models, fits=params, method=method,
                                 per_model=spec.n_boot)
        chunk = max(1, len(jobs) // (8 * max(n_jobs, 1)))
        outcomes = run_jobs(func, jobs, seed=seed, n_jobs=n_jobs, progress=progress,
                            desc="bootstrap", chunk_size=chunk)
        for j, k in enumerate(boot):
            mine = outcomes[j * spec.n_boot:(j + 1) * spec.n_boot]
            values = np.array([o.value for o in mine if o.ok])
            failures[(units[k].variable, units[k].role)] = [
                f"{o.error_type}: {o.error}" for o in mine if not o.ok]
            n_ok[k] = len(values)
            if len(values) >= 20:
                limits[k] = np.quantile(values, [alpha / 2, 1 - alpha / 2], axis=0).T
    rows = []
    for k, (u, f) in enumerate(zip(units, fits)):
        comps = _components(u.model, f)
        residual_sd = np.sqrt(comps[-1])
        n_ther = len(np.unique(u.model.therapist)) if u.model.therapist is not None else 0
        for j, name in enumerate(u.levels):
            at_zero = j < len(comps) - 1 and np.sqrt(comps[j]) < _BOUNDARY * residual_sd
            rows.append([u.variable, u.role, name, comps[j], shares[k][j], limits[k][j, 0],
                         limits[k][j, 1], how[k], n_ok[k], bool(at_zero), len(u.model.y),
                         len(np.unique(u.model.dyad)), n_ther])
    table = pd.DataFrame(rows, columns=SHARE_COLUMNS)
    return VarianceShares(table=table,
                          fits={(u.variable, u.role): f for u, f in zip(units, fits)},
                          failures=failures)


# ---------------------------------------------------------------------- association split
def _dyad_means(data: SessionData, column: str, role: str) -> pd.Series:
    values = data.numeric(column)
    frame = data.frame.assign(_v=values)
    return frame.loc[frame["role"] == role].groupby("dyad")["_v"].mean().dropna()


def _dyad_table(estimates: np.ndarray, cov: np.ndarray, df: np.ndarray,
                labels: list[str], level: float) -> list[list[Any]]:
    se = np.sqrt(np.diag(cov))
    t = estimates / se
    p = 2 * stats.t.sf(np.abs(t), df)
    crit = stats.t.ppf(0.5 + level / 2, df)
    return [[lab, e, s, d, tt, pp, e - c * s, e + c * s]
            for lab, e, s, d, tt, pp, c in zip(labels, estimates, se, df, t, p, crit)]


def association_split(data: SessionData, predictor: str, outcome: str, *,
                      covariates: tuple[str, ...] = (), method: Method = "REML",
                      level: float = 0.95) -> pd.DataFrame:
    """The dyad-level association of ``predictor`` with ``outcome`` split into its
    patient-level (within-therapist) and therapist-level parts, and the contextual effect
    (Baldwin, Wampold & Imel, 2007), for every pair of predictor and outcome roles.

    Each dyad's mean ``outcome`` (rated by the outcome role) is regressed on
    ``x_i - x_j`` (its mean ``predictor``, rated by the predictor role, minus the mean of
    the therapist's dyads) and ``x_j`` (centred on the mean over therapists), with a random
    intercept per therapist; ``contextual = therapist - within_therapist``.

    Parameters
    ----------
    data : SessionData
        With a therapist column.
    predictor, outcome : str
    covariates : tuple of str
        Dyad-level covariates (constant within dyad, e.g. treatment).
    method : {"REML", "ML"}
    level : float

    Returns
    -------
    pandas.DataFrame
        Columns :data:`ASSOCIATION_COLUMNS`; ``level`` is ``within_therapist``,
        ``therapist`` or ``contextual``; df are Satterthwaite's.

    Examples
    --------
    >>> import apim
    >>> table = association_split(apim.load_alliance(), "alliance", "outcome")
    >>> table.query("predictor_role == 'patient' and outcome_role == 'patient'")[
    ...     "level"].tolist()
    ['within_therapist', 'therapist', 'contextual']
    """
    _require_therapists(data, "the association split")
    if not 0 < level < 1:
        raise SpecError(f"level={level} must lie between 0 and 1, e.g. 0.95")
    therapist_of = data.frame.groupby("dyad")["therapist"].first()
    dyad_cov = pd.DataFrame(index=therapist_of.index)
    for c in covariates:
        if c not in data.frame.columns:
            data.numeric(c)
        per = data.frame.groupby("dyad")[c]
        if (per.nunique(dropna=True) > 1).any():
            bad = per.nunique(dropna=True)
            raise SpecError(f"covariate {c!r} changes within dyads "
                            f"{bad[bad > 1].index.tolist()[:5]}: the dyad-level split "
                            "needs dyad-level covariates")
        dyad_cov[c] = per.first()
    rows = []
    for p_role in data.roles:
        x = _dyad_means(data, predictor, p_role)
        for o_role in data.roles:
            y = _dyad_means(data, outcome, o_role)
            frame = pd.DataFrame({"x": x, "y": y}).join(dyad_cov).dropna()
            frame["therapist"] = therapist_of.loc[frame.index].to_numpy()
            n_ther = frame["therapist"].nunique()
            if n_ther < 3 or len(frame) < 5:
                raise SpecError(f"the association split of {outcome!r} ({o_role}) on "
                                f"{predictor!r} ({p_role}) has {len(frame)} dyads in "
                                f"{n_ther} therapists: it needs at least 3 therapists")
            ther_mean = frame.groupby("therapist")["x"].transform("mean")
            centre = frame.groupby("therapist")["x"].mean().mean()
            frame["within_therapist"] = frame["x"] - ther_mean
            frame["therapist_mean"] = ther_mean - centre
            X, names = _design(frame, tuple(covariates))
            X = np.column_stack([X[:, :1], frame[["within_therapist",
                                                  "therapist_mean"]].to_numpy(), X[:, 1:]])
            names = (names[0], "within_therapist", "therapist", *names[1:])
            n = len(frame)
            model = MixedModel(y=frame["y"].to_numpy(float), X=X,
                               dyad=frame.index.to_numpy(), role=np.zeros(n, int),
                               session=np.ones(n, int), residual=Residual.named("independent"),
                               therapist=frame["therapist"].to_numpy(),
                               therapist_random=Unstructured(1), x_names=names,
                               therapist_names=("therapist",))
            result = _fit_one(model, method)
            L = np.zeros((3, len(names)))
            L[0, 1] = L[1, 2] = L[2, 2] = 1
            L[2, 1] = -1
            beta = L @ result.coef.to_numpy()
            cov = L @ result.cov_coef.to_numpy() @ L.T
            df = satterthwaite_df(result.cov_coef.to_numpy(), result.d_xvx, result.cov_theta,
                                  L)
            for row in _dyad_table(beta, cov, df,
                                   ["within_therapist", "therapist", "contextual"], level):
                rows.append([o_role, p_role, "association", *row, n, n_ther])
    return pd.DataFrame(rows, columns=ASSOCIATION_COLUMNS)


def session_split(data: SessionData, predictor: str, outcome: str, *,
                  covariates: tuple[str, ...] = (), method: Method = "REML",
                  level: float = 0.95) -> tuple[pd.DataFrame, APIMResult]:
    """Actor and partner effects of ``predictor`` on ``outcome`` within dyads, between
    dyads within therapist and between therapists (three-level decomposition, APIM with a
    therapist level), with the contextual effect ``therapist - between`` per outcome role
    and effect.

    Returns
    -------
    (pandas.DataFrame, APIMResult)
        Columns :data:`ASSOCIATION_COLUMNS` (``predictor_role`` is the rater of the
        predictor: the outcome role for actor effects, the partner's for partner effects;
        ``level`` is ``within``, ``between_dyad``, ``therapist`` or ``contextual``), and
        the fitted APIM.

    Examples
    --------
    >>> import apim
    >>> table, fit = session_split(apim.load_alliance(), "alliance", "outcome")
    >>> table["level"].unique().tolist()
    ['within', 'between_dyad', 'therapist', 'contextual']
    """
    _require_therapists(data, "the session-level split")
    spec = APIMSpec(outcome=outcome, predictors=(predictor,),
                    decomposition=DecompositionSpec(center="therapist"),
                    covariates=tuple(covariates),
                    covariance=CovarianceSpec(therapist_level=True), method=method)
    result = apim_fit(data, spec)
    effects = result.effects
    crit = {"within": "within", "between": "between_dyad", "therapist": "therapist"}
    n_dyads = result.engine.n_dyads
    n_ther = int(data.frame.loc[data.frame["dyad"].isin(result.engine.random_effects.index),
                                "therapist"].nunique())
    rows = []
    for o_role in data.roles:
        other = data.roles[1] if o_role == data.roles[0] else data.roles[0]
        for effect in ("actor", "partner"):
            p_role = o_role if effect == "actor" else other
            for lev in ("within", "between", "therapist"):
                e = effects.loc[f"{o_role}.{effect}.{lev}.{predictor}"]
                rows.append([o_role, p_role, effect, crit[lev], e.estimate, e.se, e.df, e.t,
                             e.p, e.ci_low, e.ci_high, n_dyads, n_ther])
            test = wald_test(result, f"{o_role}.{effect}.therapist.{predictor} - "
                             f"{o_role}.{effect}.between.{predictor} = 0")
            est, se, df = test.estimate[0], test.se[0], test.df_den
            c = stats.t.ppf(0.5 + level / 2, df)
            rows.append([o_role, p_role, effect, "contextual", est, se, df, est / se, test.p,
                         est - c * se, est + c * se, n_dyads, n_ther])
    return pd.DataFrame(rows, columns=ASSOCIATION_COLUMNS), result


# ---------------------------------------------------------------------- all together
@dataclass(frozen=True, eq=False)
class TherapistEffects:
    """Result of :func:`therapist_effects`.

    Attributes
    ----------
    spec : TherapistSpec
    shares : VarianceShares or None
    dyad_association : pandas.DataFrame or None
        :func:`association_split`.
    session_association : pandas.DataFrame or None
        :func:`session_split`.
    session_fit : APIMResult or None
    """

    spec: TherapistSpec
    shares: VarianceShares | None
    dyad_association: pd.DataFrame | None
    session_association: pd.DataFrame | None
    session_fit: APIMResult | None = field(repr=False, default=None)

    def summary(self, digits: int = 3) -> str:
        """Plain-text report of every table."""
        fmt = {"float_format": lambda v: f"{v:.{digits}f}", "index": False}
        parts = []
        if self.shares is not None:
            parts += ["Variance shares (therapist, dyad and session levels)",
                      self.shares.summary(digits)]
            flagged = self.shares.table.query("boundary")
            if len(flagged):
                parts.append("boundary: " + "; ".join(
                    f"{r.variable} ({r.role}) {r.level} variance at zero"
                    for r in flagged.itertuples()))
        if self.dyad_association is not None:
            parts += ["", "Association at the dyad level: patient (within-therapist), "
                      "therapist and contextual effects (Baldwin, Wampold & Imel, 2007)",
                      self.dyad_association.drop(columns="effect").to_string(**fmt)]
        if self.session_association is not None:
            parts += ["", "Association at the session level (three-level APIM)",
                      self.session_association.to_string(**fmt)]
        return "\n".join(parts)

    def __str__(self) -> str:
        return self.summary()


def therapist_effects(data: SessionData, spec: TherapistSpec, *, seed: int | None = None,
                      n_jobs: int = 1, progress: bool = False) -> TherapistEffects:
    """Variance shares and the association split, as ``spec`` asks.

    Examples
    --------
    >>> import apim
    >>> spec = TherapistSpec(variables=("alliance",), predictor="alliance",
    ...                      outcome="outcome", ci="none", session_split=False)
    >>> out = therapist_effects(apim.load_alliance(), spec)
    >>> out.session_association is None, len(out.dyad_association)
    (True, 12)
    """
    _require_therapists(data, "therapist effects")
    shares = (variance_shares(data, spec.variables, covariates=spec.covariates, ci=spec.ci,
                              n_boot=spec.n_boot, level=spec.level, method=spec.method,
                              seed=seed, n_jobs=n_jobs, progress=progress)
              if spec.variables else None)
    dyad = session = fitted = None
    if spec.predictor is not None and spec.outcome is not None:
        dyad = association_split(data, spec.predictor, spec.outcome,
                                 covariates=spec.covariates, method=spec.method,
                                 level=spec.level)
        if spec.session_split:
            session, fitted = session_split(data, spec.predictor, spec.outcome,
                                            covariates=spec.covariates, method=spec.method,
                                            level=spec.level)
    return TherapistEffects(spec=spec, shares=shares, dyad_association=dyad,
                            session_association=session, session_fit=fitted)
