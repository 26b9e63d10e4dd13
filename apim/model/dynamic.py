"""The dynamic APIM: lagged actor and partner effects without the centring bias.

Per dyad ``i`` and session ``t`` the vector of both members' predictors and outcome
(for one predictor ``x`` and outcome ``y``: ``x_P, x_T, y_P, y_T``, K = 4) is::

    z_it = mu + u_i + w_it,     u_i ~ N(0, Sigma_B)           latent person means
    w_it = Phi w_i,t-1 + e_it,  e_it ~ N(0, Sigma_W)          within-person dynamics

with ``Phi`` a full K x K matrix (``Phi[to, from]``), ``Sigma_B`` and ``Sigma_W``
unstructured and ``u`` independent of ``w``. The process starts at the study's first
session number for every dyad; a session a dyad has no row for, or a missing rating, is a
missing observation the process runs on through (full information). With
``initial="free"`` the within part at the first session has its own covariance (the
RI-CLPM; Hamaker, Kuiper & Grasman, 2015), with ``"stationary"`` the stationary one.
Estimation is exact ML by a Kalman filter (:mod:`apim.engine.dynamic`); no person means
are subtracted, so the lagged effects carry no dynamic-panel (Nickell) bias.

Effects (``Phi`` entries, by the role and variable they go to and come from):

- the outcome's equation: ``patient.actor.lagged.alliance`` (own alliance at t-1 -> own
  outcome at t), ``patient.partner.lagged.alliance`` (the therapist's alliance at t-1),
  ``patient.autoregression.lagged.outcome``, ``patient.partner.lagged.outcome``;
- a predictor's equation (reverse paths and the predictor's own dynamics):
  ``patient.alliance.actor.lagged.outcome`` (own outcome at t-1 -> own alliance at t),
  ``patient.alliance.partner.lagged.outcome``, ``patient.alliance.autoregression.lagged
  .alliance``, ``patient.alliance.partner.lagged.alliance``;
- the between-level actor and partner effects of the latent mean predictors on the latent
  mean outcomes (``patient.actor.between.alliance``), as in the latent APIM, and the
  outcome means (``patient.intercept``).

**Therapist level** (``therapist_level=True``): ``z_it = mu + v_j + u_i + w_it`` for dyad
``i`` of therapist ``j``, ``v_j ~ N(0, Sigma_T)`` (unstructured or diagonal), integrated
out in closed form per therapist on the dyads' sums (:mod:`apim.engine.dynamic.kalman`).
The between effects are then between dyads of the same therapist; ``Sigma_T`` is in the
variance table (``therapist var(...)``, ``therapist cov(...)``), as in the latent APIM.

SEs from the observed information (numerical second derivatives of the exact
log-likelihood), delta method for functions of the parameters, z tests (as lavaan).

Examples
--------
>>> import apim
>>> frame = apim.load_alliance().to_long()
>>> part = frame[frame["dyad"].isin(frame["dyad"].unique()[:40]) & (frame["session"] <= 6)]
>>> data = apim.SessionData.from_long(part, dyad="dyad", session="session", role="role")
>>> result = apim.fit(data, DynamicAPIMSpec("outcome", ("alliance",),
...                                         initial="stationary"))
>>> result.effects.loc["patient.actor.lagged.alliance", "level"]
'lagged'
>>> result.statistics.converged, len(result.lagged)
(True, 16)
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd

from apim.data.hints import option
from apim.data.session import SessionData
from apim.engine.dynamic import fit_dynamic
from apim.engine.dynamic.parameters import DynamicParameters
from apim.errors import BoundaryWarning, ConvergenceWarning, DataError, DataWarning, SpecError
from apim.model.design import Term, _dummies, moderator_levels
from apim.model.dynamic_result import DynamicAPIMResult
from apim.model.dynamic_spec import DynamicAPIMSpec
from apim.model.latent import (
    _check_therapists,
    _label,
    _sort_key,
    latent_values,
    term_name,
    variable_names,
)
from apim.model.spec import LatentAPIMSpec

__all__ = ["DynamicAPIMSpec", "DynamicAPIMResult", "fit_dynamic_apim", "session_grid",
           "lagged_terms", "effect_names"]


def session_grid(data: SessionData, spec: DynamicAPIMSpec
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    """The ratings on the study's session grid.

    Returns
    -------
    y : array (dyads, sessions, K)
        NaN where a rating is missing or a session has no rows.
    dyads : the dyad labels, in the order of ``y``
    sessions : the session numbers of the grid (the study's first to its last)
    wide : one row per dyad x session with a rating, with the dyad's ``group`` (the
        moderator's level; ``"all"`` without one;
        :func:`apim.model.latent.latent_values`)

    Raises
    ------
    DataError
        A variable constant within every dyad, or no dyad with two rated sessions.
    """
    frame = data.frame
    rated = pd.concat([data.numeric(v) for v in (*spec.predictors, spec.outcome)],
                      axis=1).notna().any(axis=1).to_numpy()
    per_dyad = frame.loc[rated].groupby("dyad")["session"].nunique()
    if len(per_dyad) == 0 or per_dyad.max() < 2:
        raise DataError("no dyad has two rated sessions: the dynamic APIM needs lags "
                        "(ratings at two or more sessions of a dyad); check the session "
                        "column")
    latent = _latent_spec(spec)
    wide = latent_values(data, latent)
    names = variable_names(latent, data.roles)
    per_dyad_values = wide.groupby("dyad")[names]
    spreads = (per_dyad_values.max() - per_dyad_values.min()).where(
        per_dyad_values.count() > 1)
    for name in names:
        spread = spreads[name]
        if spread.notna().any() and (spread.dropna() == 0).all():
            variable, role = name[:-1].split("[", 1)
            raise DataError(
                f"{variable!r} of role {role!r} is constant within every dyad: the dynamic "
                "APIM needs session-to-session changes of every variable; drop it from "
                "the model (or use it as a dyad-level moderator elsewhere)")
    y, dyads = _grid(wide, names, int(wide["session"].min()), int(wide["session"].max()))
    single = dyads[(~np.isnan(y)).any(axis=2).sum(axis=1) < 2]
    if len(single):
        warnings.warn(DataWarning(
            f"{len(single)} dyads have a single rated session (no lag), e.g. "
            f"{list(single[:5])}: they inform the means and the person-level covariance "
            "only"), stacklevel=3)
    return y, dyads, np.arange(int(wide["session"].min()), int(wide["session"].max()) + 1), \
        wide


def _latent_spec(spec: DynamicAPIMSpec) -> LatentAPIMSpec:
    """The latent APIM's spec of the same variables (its data preparation is shared)."""
    return LatentAPIMSpec(spec.outcome, spec.predictors, moderator=spec.moderator,
                          reference=tuple((c, v) for c, v in spec.reference
                                          if c == spec.moderator),
                          therapist_level=spec.therapist_level,
                          therapist_covariance=spec.therapist_covariance)


def _therapists(wide: pd.DataFrame, dyads: np.ndarray) -> np.ndarray:
    """The therapist of each dyad (in the order of ``dyads``).

    Raises
    ------
    DataError
        A dyad with sessions under two therapists (dyads must be nested in therapists).
    """
    per_dyad = wide.groupby("dyad")["therapist"]
    counts = per_dyad.nunique(dropna=False)
    crossed = counts.index[counts > 1]
    if len(crossed):
        shown = "; ".join(
            f"{d!r}: {', '.join(sorted(map(str, per_dyad.get_group(d).unique())))}"
            for d in crossed[:3])
        raise DataError(f"{len(crossed)} dyads have sessions with two or more therapists "
                        f"({shown}): the therapist level needs each dyad nested in one "
                        "therapist; correct the therapist column or drop the therapist "
                        "level")
    missing = per_dyad.first().isna()
    if missing.any():
        raise DataError(f"the therapist is missing for dyads "
                        f"{list(missing.index[missing][:5])}: fill it in or drop those dyads")
    return per_dyad.first().loc[dyads].to_numpy()


def _grid(wide: pd.DataFrame, names: list[str], first: int, last: int
          ) -> tuple[np.ndarray, np.ndarray]:
    dyads, code = np.unique(wide["dyad"].to_numpy(), return_inverse=True)
    session = wide["session"].to_numpy().astype(np.int64)
    y = np.full((len(dyads), last - first + 1, len(names)), np.nan)
    y[code.ravel(), session - first] = wide[names].to_numpy(float)
    return y, dyads


def _groups(data: SessionData, spec: DynamicAPIMSpec, wide: pd.DataFrame) -> list[str]:
    """The moderator's groups, the reference first (as the latent APIM orders them)."""
    present = sorted(wide["group"].unique(), key=_sort_key)
    if spec.moderator is None:
        return present
    levels = moderator_levels(data.frame[spec.moderator],
                              dict(spec.reference).get(spec.moderator), spec.moderator)
    groups = present if levels is None else [g for g in map(_label, levels)
                                            if g in set(present)]
    if len(groups) < 2:
        raise SpecError(f"moderator {spec.moderator!r} has a single value ({groups[0]!r}): "
                        "a multi-group model needs two or more")
    return groups


def dyad_covariates(data: SessionData, spec: DynamicAPIMSpec) -> pd.DataFrame:
    """The covariates of the means, one row per dyad with a rated session (index the dyad
    labels), coded: numeric columns as they are, text ones 0/1 against the reference
    level (as moderators; column ``name[level]``).

    Raises
    ------
    DataError
        A covariate missing in rated rows, or not constant within a dyad (the dynamic
        APIM's covariates are dyad-level: time-varying covariates are not supported).

    Examples
    --------
    >>> import apim
    >>> data = apim.load_alliance()
    >>> list(dyad_covariates(data, DynamicAPIMSpec("outcome", ("alliance",),
    ...                                            covariates=("treatment",))).columns)
    ['treatment[AFT]']
    """
    frame = data.frame
    rated = pd.concat([data.numeric(v) for v in (*spec.predictors, spec.outcome)],
                      axis=1).notna().any(axis=1).to_numpy()
    coded: dict[str, pd.Series] = {}
    references = dict(spec.reference)
    for column in spec.covariates:
        raw = (data.numeric(column) if pd.api.types.is_numeric_dtype(
            frame[data.resolve(column)]) else frame[data.resolve(column)])[rated]
        missing = raw.isna().to_numpy()
        if missing.any():
            rows = frame.loc[rated, "row"][missing].tolist()
            dyads = sorted(set(frame.loc[rated, "dyad"][missing]), key=str)
            raise DataError(f"covariate {column!r} is missing in {len(rows)} rated rows "
                            f"(rows {rows[:10]}, dyads {dyads[:5]}): fill it in or drop "
                            "those dyads")
        per_dyad = raw.groupby(frame.loc[rated, "dyad"].to_numpy(), sort=False)
        counts = per_dyad.nunique()
        varying = counts.index[counts > 1]
        if len(varying):
            dyad = varying[0]
            values = sorted(per_dyad.get_group(dyad).unique().tolist(), key=str)
            raise DataError(
                f"covariate {column!r} varies within dyad {dyad!r} (values {values[:6]}"
                f"{' ...' if len(values) > 6 else ''}; {len(varying)} dyads vary): the "
                "dynamic APIM's covariates are constant within a dyad (e.g. treatment "
                "arm, baseline severity); time-varying covariates are not supported")
        first = per_dyad.first()
        if pd.api.types.is_numeric_dtype(raw):
            coded[column] = first.astype(float)
        elif first.nunique() < 2:
            raise DataError(f"covariate {column!r} takes a single value ({first.iloc[0]!r}) "
                            "in every dyad: it has no effect to estimate; drop it from the "
                            "covariates")
        else:
            coded.update(_dummies(first, column, references.get(column)))
    return pd.DataFrame(coded)


def _check_collinear(values: pd.DataFrame, where: str) -> None:
    """Refuse covariates that are (with the intercept) linearly dependent, naming the
    columns."""
    names = list(values.columns)
    x = np.column_stack([np.ones(len(values)), values.to_numpy(float)])
    for j in range(1, x.shape[1]):
        coef, *_ = np.linalg.lstsq(x[:, :j], x[:, j], rcond=None)
        residual = x[:, j] - x[:, :j] @ coef
        if np.linalg.norm(residual) <= 1e-9 * max(1.0, float(np.linalg.norm(x[:, j]))):
            others = [names[i - 1] for i in range(1, j)
                      if abs(coef[i]) > 1e-9 * max(1.0, float(np.max(np.abs(coef))))]
            what = (f"a linear function of {', '.join(map(repr, others))}" if others
                    else "constant")
            raise DataError(f"covariate {names[j - 1]!r} is {what} across the dyads{where}: "
                            "its effect on the means cannot be separated (collinear); drop "
                            "it from the covariates")


def lagged_terms(spec: DynamicAPIMSpec, roles: tuple[str, str]
                 ) -> list[tuple[int, int, Term]]:
    """One term per entry ``Phi[to, from]`` in row order (see the module docstring)."""
    variables = [(v, r) for v in (*spec.predictors, spec.outcome) for r in range(2)]
    out = []
    for i, (v_to, r_to) in enumerate(variables):
        for j, (v_from, r_from) in enumerate(variables):
            relation = "actor" if r_from == r_to else "partner"
            if relation == "actor" and v_from == v_to:
                relation = "autoregression"
            effect = relation if v_to == spec.outcome else f"{v_to}.{relation}"
            out.append((i, j, Term(roles[r_to], effect, "lagged", v_from)))
    return out


def _effect_order(entry: tuple[int, int, Term], k: int) -> tuple[bool, int, int, bool]:
    """Where a lagged effect ``(to, from, term)`` goes in the results: the outcome's
    equations first, then the predictors'; within an equation by the variable it comes
    from, the member's own (actor or autoregression) before the partner's, for either
    role."""
    to, source, _ = entry
    return to < k - 2, to, source // 2, source % 2 != to % 2


def _constraints(spec: DynamicAPIMSpec) -> tuple[np.ndarray, list]:
    """Entries of ``Phi`` estimated, and the pairs constrained equal."""
    k = 2 * (len(spec.predictors) + 1)
    free = np.ones((k, k), bool)
    if not spec.reverse_paths:
        free[:k - 2, k - 2:] = False      # outcome at t-1 -> predictors at t
    equal = []
    if spec.equal_roles:
        swap = [j + 1 if j % 2 == 0 else j - 1 for j in range(k)]
        for i in range(0, k, 2):          # the first role's equations lead
            for j in range(k):
                if free[i, j]:
                    equal.append(((i, j), (swap[i], swap[j])))
    return free, equal


def effect_names(spec: DynamicAPIMSpec, roles: tuple[str, str]) -> list[str]:
    """The names of a fit's effects (one group), known before fitting: the outcome
    intercepts, the estimated lagged effects (the outcome's equations first) and the
    between effects.

    Examples
    --------
    >>> effect_names(DynamicAPIMSpec("y", ("x",)), ("patient", "therapist"))[2]
    'patient.actor.lagged.x'
    """
    free, equal = _constraints(spec)
    followers = {b for _, b in equal}
    k = len(free)
    lagged = [(i, j, t) for i, j, t in lagged_terms(spec, roles)
              if free[i, j] and (i, j) not in followers]
    lagged.sort(key=lambda entry: _effect_order(entry, k))
    return ([f"{r}.intercept" for r in roles] + [t.name for _, _, t in lagged]
            + [f"{roles[r]}.{rel}.{level}.{v}" for level in _levels(spec)
               for r in range(2) for v in spec.predictors for rel in ("actor", "partner")])


def _covariate_term(spec: DynamicAPIMSpec, roles: tuple[str, str], variable: int,
                    column: str, group: str = "") -> Term:
    """The effect of covariate ``column`` on the mean of engine variable ``variable``
    (``patient.covariate.none.severity`` on the outcome,
    ``patient.alliance.covariate.none.severity`` on a predictor)."""
    n_pred = len(spec.predictors)
    name = (*spec.predictors, spec.outcome)[variable // 2]
    effect = "covariate" if variable // 2 == n_pred else f"{name}.covariate"
    return Term(roles[variable % 2], effect, "none", column, group=group)


def _levels(spec: DynamicAPIMSpec) -> tuple[str, ...]:
    """The levels of the between effects: the dyads', and with an unstructured therapist
    covariance the therapists' (the regressions it implies, as in the latent APIM)."""
    unstructured = spec.therapist_level and spec.therapist_covariance == "unstructured"
    return ("between", "therapist") if unstructured else ("between",)


def _between(n_pred: int, sigma_b: np.ndarray) -> np.ndarray:
    """Actor and partner regressions of the latent mean outcomes on the latent mean
    predictors, per outcome role and predictor."""
    x = np.arange(2 * n_pred)
    y = np.array([2 * n_pred, 2 * n_pred + 1])
    try:
        b = sigma_b[np.ix_(y, x)] @ np.linalg.inv(sigma_b[np.ix_(x, x)])
    except np.linalg.LinAlgError:
        b = np.full((2, len(x)), np.nan)
    return np.array([b[r, [2 * v + r, 2 * v + 1 - r]] for r in range(2)
                     for v in range(n_pred)]).reshape(-1)


def fit_dynamic_apim(data: SessionData, spec: DynamicAPIMSpec) -> DynamicAPIMResult:
    """Fit a :class:`DynamicAPIMSpec` (also reached through :func:`apim.fit`); with a
    moderator, one model per group on the same session grid.

    Warns
    -----
    ConvergenceWarning, BoundaryWarning
        When the fit did not converge, or an estimate is at the edge of its space (a
        singular person-level covariance; ``Phi`` near the edge of stationarity under
        ``initial="stationary"``, or not stable under ``"free"``).
    DataWarning
        Dyads with a single rated session.
    """
    if not isinstance(spec, DynamicAPIMSpec):
        raise SpecError(f"spec must be a DynamicAPIMSpec, not {type(spec).__name__}")
    _, _, sessions, wide = session_grid(data, spec)
    names = variable_names(_latent_spec(spec), data.roles)
    if spec.therapist_level:
        _therapists(wide, wide["dyad"].unique())
        _check_therapists(wide, _latent_spec(spec), len(names))
    covariates = dyad_covariates(data, spec) if spec.covariates else None
    free, equal = _constraints(spec)
    n_pred, k = len(spec.predictors), len(names)
    fits, dyads = {}, {}
    order = [k - 2, k - 1] + list(range(k - 2))     # the outcome's means first
    terms: list[Term] = []
    estimates, covariances = [], []
    for group in _groups(data, spec, wide):
        part = wide[wide["group"] == group]
        y, dyads[group] = _grid(part, names, int(sessions[0]), int(sessions[-1]))
        values = None
        if covariates is not None:
            values = covariates.loc[dyads[group]]
            _check_collinear(values, f" of group {group!r}" if spec.moderator else "")
        fit = fit_dynamic(y, names=names, initial=spec.initial, free_phi=free,
                          equal_phi=equal,
                          therapist=(_therapists(part, dyads[group]) if spec.therapist_level
                                     else None),
                          therapist_covariance=spec.therapist_covariance,
                          covariates=None if values is None else values.to_numpy(float))
        fits[group] = fit
        where = f" (group {group})" if spec.moderator is not None else ""
        if not fit.converged:
            warnings.warn(ConvergenceWarning(f"the dynamic APIM{where} did not converge: "
                                             f"{fit.message}"), stacklevel=2)
        if fit.boundary:
            hint = (f"; fit {option('initial', 'free')}, which does not assume it"
                    if spec.initial == "stationary"
                    and any("stationarity" in b for b in fit.boundary) else "")
            warnings.warn(BoundaryWarning(f"dynamic APIM{where}: {'; '.join(fit.boundary)}"
                                          f"{hint}"), stacklevel=2)
        estimated = set(fit.layout.phi_index)
        lagged = [(i, j, t) for i, j, t in lagged_terms(spec, data.roles)
                  if (i, j) in estimated]
        lagged.sort(key=lambda entry: _effect_order(entry, k))

        def effects(p: DynamicParameters, lagged: list = lagged) -> np.ndarray:
            levels = [p.sigma_b] + ([p.sigma_t] if p.sigma_t is not None
                                    and len(_levels(spec)) == 2 else [])
            coef = p.mu.reshape(k, -1)      # B[variable, covariate], intercept first
            return np.concatenate([coef[[k - 2, k - 1], 0], coef[order, 1:].T.reshape(-1),
                                   [p.phi[i, j] for i, j, _ in lagged],
                                   *(_between(n_pred, m) for m in levels)])

        est, cov = fit.delta(effects)
        arm = group if spec.moderator is not None else ""
        group_terms = [Term(r, "intercept", "none", "", group=arm) for r in data.roles]
        group_terms += [_covariate_term(spec, data.roles, v, c, arm)
                        for c in ([] if covariates is None else covariates.columns)
                        for v in order]
        group_terms += [replace(t, group=arm) for _, _, t in lagged]
        group_terms += [Term(data.roles[r], rel, level, v, group=arm)
                        for level in _levels(spec) for r in range(2)
                        for v in spec.predictors for rel in ("actor", "partner")]
        terms += group_terms
        estimates.append(est)
        covariances.append(cov)
    labels = [term_name(t, t.group or None) for t in terms]
    size = sum(len(e) for e in estimates)
    cov_all = np.zeros((size, size))
    at = 0
    for cov in covariances:
        cov_all[at:at + len(cov), at:at + len(cov)] = cov
        at += len(cov)
    rated = pd.concat([data.numeric(v) for v in (*spec.predictors, spec.outcome)],
                      axis=1).notna().any(axis=1)
    return DynamicAPIMResult(spec=spec, data=data, fits=fits, terms=terms,
                             coef=pd.Series(np.concatenate(estimates), index=labels,
                                            name="estimate"),
                             cov_coef=pd.DataFrame(cov_all, index=labels, columns=labels),
                             sessions=sessions, dyads=dyads,
                             used=data.frame.index[rated.to_numpy()].to_numpy())
