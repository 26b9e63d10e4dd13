"""The latent (multivariate) APIM: latent between-person effects, full information.

Per dyad ``i`` and session ``t`` the vector of both members' predictors and outcomes
(for one predictor ``x`` and outcome ``y``: ``x_P, x_T, y_P, y_T``) is split into a dyad
level and a session level (Lüdtke et al., 2008; DESIGN.md §4)::

    z_it = mu + b_i + w_it,   b_i ~ N(0, Sigma_B),   w_it ~ N(0, Sigma_W)
    (optional AR(1) over session numbers: Cov(w_it, w_is) = Sigma_W phi^|t-s|)

with both covariances unstructured (:mod:`apim.engine.multivariate`). The APIM
coefficients at each level are the regressions of the outcomes on the predictors implied
by that level's covariance, ``B = Sigma[y, x] Sigma[x, x]^-1``: for outcome role ``r``,
the coefficient of ``x`` of the same role is the **actor** effect and of the other role
the **partner** effect, ``within`` from ``Sigma_W`` and ``between`` (latent person means)
from ``Sigma_B``. Intercepts are the outcome means (the outcome at the mean latent
predictor levels). Every observed rating enters (no listwise deletion of sessions where a
member's rating is missing).

Standard errors: **delta method** from the observed information of the natural
parameters (means, ``Sigma_W``, ``Sigma_B``, ``phi``; :mod:`apim.engine.multivariate.estimate`);
at the ML estimate this equals the observed-information SEs of a direct regression
parameterisation (lavaan's two-level SEM with ``information="observed"``). Tests use the
normal distribution (``df = inf``), as lavaan does.

**Therapist level** (``therapist_level=True``; dyads nested in therapists who see several
patients): a third level with a random K-vector per therapist, ``v_j ~ N(0, Sigma_T)``
(unstructured, or diagonal with ``therapist_covariance="diagonal"``), so that
``z_jit = mu + v_j + b_ji + w_jit`` and ``Sigma_B`` is the covariance of dyads within
therapists (:mod:`apim.engine.multivariate.nested`). The within and between effects are
reported as without it (``between`` now means between dyads of the same therapist); an
unstructured ``Sigma_T`` adds the therapist-level regressions (level ``therapist``, e.g.
``patient.actor.therapist.alliance``: the patients' outcome on the therapist's mean
patient-rated alliance), and :attr:`LatentAPIMResult.variance` lists ``Sigma_T``.

A moderator (e.g. treatment arm) gives a **multi-group** model: separate means,
``Sigma_B`` and ``Sigma_W`` (and ``phi``) per arm; effects are named with the arm in
brackets (``patient.actor.between.alliance[1]``; the ``group`` column of the effects table)
and compared across arms with :func:`apim.inference.arms.arm_differences` or
:func:`apim.inference.wald.wald_test`. With a therapist level each arm has its
own ``Sigma_T``; therapists must then be nested in arms (a therapist who treats patients
in two arms is an error: the arms' models are fitted separately, so such a therapist's
effect could not be shared between them).

Examples
--------
>>> import apim
>>> data = apim.load_alliance()
>>> result = apim.fit(data, LatentAPIMSpec("outcome", ("alliance",)))
>>> result.effects.loc["patient.actor.between.alliance", "level"]
'between'
>>> rel = result.reliability
>>> rel.loc[rel["variable"] == "alliance", "role"].tolist()
['patient', 'therapist']
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from apim.data.hints import current, option
from apim.data.session import SessionData
from apim.data.validate import informative, within_variation
from apim.engine.multivariate.estimate import MultivariateFit, fit_multivariate
from apim.errors import (
    BoundaryWarning,
    ConvergenceWarning,
    DataError,
    SmallSampleWarning,
    SpecError,
)
from apim.model.design import Term, moderator_levels
from apim.model.latent_result import LatentAPIMResult
from apim.model.reliability import person_mean_reliability, warn_if_unreliable
from apim.model.spec import LatentAPIMSpec

__all__ = ["LatentAPIMSpec", "LatentAPIMResult", "fit_latent", "latent_values",
           "person_mean_reliability", "warn_if_unreliable"]


def variable_names(spec: LatentAPIMSpec, roles: tuple[str, str]) -> list[str]:
    """The K variables in engine order: each predictor per role, then the outcome."""
    return [f"{v}[{r}]" for v in (*spec.predictors, spec.outcome) for r in roles]


def latent_values(data: SessionData, spec: LatentAPIMSpec) -> pd.DataFrame:
    """One row per dyad x session with any rating: ``dyad``, ``session``, ``group``,
    (with a therapist level) ``therapist``, and the K variables (:func:`variable_names`),
    NaN where a rating is missing."""
    frame = data.frame
    if spec.therapist_level and not data.has_therapist:
        flag = "--therapist-level" if current() == "cli" else "therapist_level=True"
        raise SpecError(f"{flag} needs a therapist column: map the therapist ids with "
                        f"{option('therapist', 'COL')}")
    roles = data.roles
    columns = {}
    for v in (*spec.predictors, spec.outcome):
        x = data.numeric(v)
        within_variation(frame, x, v, "predictor" if v in spec.predictors else "outcome")
        for role in roles:
            informative(x[frame["role"] == role], v, f"for role {role!r}")
        columns[v] = x
    dyad_code, dyads = pd.factorize(frame["dyad"], sort=True)
    session = frame["session"].to_numpy().astype(np.int64)
    low = int(session.min())
    key = dyad_code.astype(np.int64) * (int(session.max()) - low + 1) + (session - low)
    unique_keys, first, codes = np.unique(key, return_index=True, return_inverse=True)
    role_index = (frame["role"] == roles[1]).to_numpy().astype(int)
    values = np.full((len(unique_keys), 2 * (len(spec.predictors) + 1)), np.nan)
    for j, v in enumerate((*spec.predictors, spec.outcome)):
        values[codes, 2 * j + role_index] = columns[v].to_numpy()
    wide = pd.DataFrame(values, columns=variable_names(spec, roles))
    wide.insert(0, "dyad", np.asarray(dyads)[dyad_code[first]])
    wide.insert(1, "session", session[first])
    if spec.moderator is None:
        wide.insert(2, "group", "all")
    else:
        mod = frame[spec.moderator]
        per_dyad = mod.groupby(frame["dyad"]).nunique(dropna=False)
        changing = per_dyad.index[per_dyad > 1]
        if len(changing):
            raise DataError(f"moderator {spec.moderator!r} changes within dyads "
                            f"{list(changing[:5])}: a group must be constant per dyad")
        if mod.isna().any():
            rows = list(frame.index[mod.isna()][:5])
            raise DataError(f"moderator {spec.moderator!r} is missing in rows {rows}: fill "
                            "it in or drop those dyads")
        labels = mod.groupby(frame["dyad"]).first().map(_label)
        wide.insert(2, "group", wide["dyad"].map(labels).to_numpy())
    if spec.therapist_level:
        wide.insert(3, "therapist", frame["therapist"].to_numpy()[first])
    keep = wide[variable_names(spec, roles)].notna().any(axis=1)
    return wide[keep].reset_index(drop=True)


def _block_diagonal(blocks: list[np.ndarray]) -> np.ndarray:
    """The square blocks on the diagonal of one matrix (the groups' fits are
    independent); numpy only, so that fitting loads no scipy.linalg."""
    sizes = [len(b) for b in blocks]
    out = np.zeros((sum(sizes), sum(sizes)))
    at = 0
    for block, n in zip(blocks, sizes):
        out[at:at + n, at:at + n] = block
        at += n
    return out


def _label(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _coefficients(n_pred: int, mu: np.ndarray, sw: np.ndarray, sb: np.ndarray,
                  st: np.ndarray | None = None) -> np.ndarray:
    """Intercepts, then per level (within, between, [therapist]), outcome role and
    predictor the actor and partner coefficients (the order of :func:`_terms`)."""
    x = np.arange(2 * n_pred)
    y = np.array([2 * n_pred, 2 * n_pred + 1])
    out = [mu[y]]
    for s in (sw, sb) if st is None else (sw, sb, st):
        try:
            inv = np.linalg.inv(s[np.ix_(x, x)])
        except np.linalg.LinAlgError:  # a singular (boundary) therapist covariance
            inv = np.full((len(x), len(x)), np.nan)
        b = s[np.ix_(y, x)] @ inv
        for r_out in range(2):
            for v in range(n_pred):
                out.append(b[r_out, [2 * v + r_out, 2 * v + 1 - r_out]])  # actor, partner
    return np.concatenate(out)


def _terms(spec: LatentAPIMSpec, roles: tuple[str, str], group: str | None) -> list[Term]:
    arm = group or ""
    terms = [Term(r, "intercept", "none", "", group=arm) for r in roles]
    for level in ("within", "between") + (("therapist",) if _therapist_effects(spec)
                                          else ()):
        for role in roles:
            for v in spec.predictors:
                terms += [Term(role, "actor", level, v, group=arm),
                          Term(role, "partner", level, v, group=arm)]
    return terms


def _therapist_effects(spec: LatentAPIMSpec) -> bool:
    """Therapist-level regressions are reported with an unstructured ``Sigma_T``."""
    return spec.therapist_level and spec.therapist_covariance == "unstructured"


def term_name(term: Term, group: str | None) -> str:
    """Effect name; multi-group effects carry the group in brackets."""
    if term.effect == "intercept":
        base = f"{term.outcome_role}.intercept"
    else:
        base = f"{term.outcome_role}.{term.effect}.{term.level}.{term.predictor}"
    return f"{base}[{group}]" if group is not None else base


def fit_latent(data: SessionData, spec: LatentAPIMSpec) -> LatentAPIMResult:
    """Fit a :class:`LatentAPIMSpec` (also reached through :func:`apim.fit`).

    Examples
    --------
    >>> import apim
    >>> result = fit_latent(apim.load_alliance(), LatentAPIMSpec("outcome", ("alliance",)))
    >>> result.statistics.converged
    True
    """
    if not isinstance(spec, LatentAPIMSpec):
        raise SpecError(f"spec must be a LatentAPIMSpec, not {type(spec).__name__}")
    wide = latent_values(data, spec)
    names = variable_names(spec, data.roles)
    groups = sorted(wide["group"].unique(), key=_sort_key)
    if spec.moderator is not None:  # the design's order: the reference group first
        levels = moderator_levels(data.frame[spec.moderator],
                                  dict(spec.reference).get(spec.moderator), spec.moderator)
        if levels is not None:
            groups = [g for g in map(_label, levels) if g in set(groups)]
    if spec.moderator is not None and len(groups) < 2:
        raise SpecError(f"moderator {spec.moderator!r} has a single value "
                        f"({groups[0]!r}): a multi-group model needs two or more")
    if spec.therapist_level:
        _check_therapists(wide, spec, len(names))
    fits: dict[str, MultivariateFit] = {}
    counts: dict[str, np.ndarray] = {}
    n_pred = len(spec.predictors)
    est_parts, cov_parts, terms, labels = [], [], [], []
    for group in groups:
        part = wide[wide["group"] == group]
        y = part[names].to_numpy(float)
        fit = fit_multivariate(y, part["dyad"].to_numpy(), part["session"].to_numpy(),
                               names=names, method=spec.method, ar1=spec.ar1,
                               therapist=(part["therapist"].to_numpy()
                                          if spec.therapist_level else None),
                               therapist_covariance=spec.therapist_covariance)
        fits[group] = fit
        where = f" (group {group})" if spec.moderator is not None else ""
        if not fit.converged:
            warnings.warn(ConvergenceWarning(f"the latent APIM{where} did not converge: "
                                             f"{fit.message}"), stacklevel=2)
        if fit.boundary:
            warnings.warn(BoundaryWarning(f"latent APIM{where}: {'; '.join(fit.boundary)}; "
                                          "effects at that level are not identified from "
                                          "the data and their SEs are approximate"),
                          stacklevel=2)
        counts[group] = part[names].notna().groupby(part["dyad"].to_numpy()).sum().to_numpy()
        est, cov = fit.delta(lambda p: _coefficients(
            n_pred, np.asarray(p.mu), p.sigma_w, p.sigma_b,
            p.sigma_t if _therapist_effects(spec) else None))
        est_parts.append(est)
        cov_parts.append(cov)
        label = group if spec.moderator is not None else None
        group_terms = _terms(spec, data.roles, label)
        terms += group_terms
        labels += [term_name(t, label) for t in group_terms]
    coef = pd.Series(np.concatenate(est_parts), index=labels, name="estimate")
    cov_coef = pd.DataFrame(_block_diagonal(cov_parts), index=labels, columns=labels)
    rated = pd.concat([data.numeric(v) for v in (*spec.predictors, spec.outcome)],
                      axis=1).notna().any(axis=1)
    return LatentAPIMResult(spec=spec, data=data, fits=fits, counts=counts, terms=terms,
                            coef=coef, cov_coef=cov_coef,
                            used=data.frame.index[rated.to_numpy()].to_numpy())


FEW_THERAPISTS = 20


def _check_therapists(wide: pd.DataFrame, spec: LatentAPIMSpec, k: int) -> None:
    """Therapists nested in groups, enough of them, some with two or more dyads."""
    dyads = wide.drop_duplicates("dyad")
    if spec.moderator is not None:
        arms = dyads.groupby("therapist")["group"].unique()
        crossed = arms[arms.map(len) > 1]
        if len(crossed):
            shown = "; ".join(f"{t!r} in {', '.join(sorted(a, key=_sort_key))}"
                              for t, a in list(crossed.items())[:3])
            raise DataError(
                f"therapists treat dyads in more than one group of {spec.moderator!r} "
                f"({len(crossed)} therapists, e.g. {shown}): the multi-group model with a "
                "therapist level fits each group separately and needs therapists nested in "
                "groups; drop the moderator or the therapist level")
    for group, part in dyads.groupby("group"):
        where = f" in group {group}" if spec.moderator is not None else ""
        sizes = part.groupby("therapist").size()
        n = len(sizes)
        if n < 3:
            raise SpecError(
                f"the therapist level needs at least 3 therapists{where}, the data have {n}: "
                "drop the therapist level (or fit the therapists as fixed effects elsewhere)")
        if sizes.max() < 2:
            raise SpecError(
                f"every one of the {n} therapists{where} has a single dyad: the therapist "
                "level is then not identified (it cannot be told apart from the dyad "
                "level); drop the therapist level")
        if n < FEW_THERAPISTS:
            extra = ("; with fewer therapists than variables use "
                     + option("therapist_covariance", "diagonal")
                     if spec.therapist_covariance == "unstructured" and n <= k else "")
            warnings.warn(SmallSampleWarning(
                f"only {n} therapists{where}: the therapist-level covariance and effects "
                f"will be imprecise (aim for {FEW_THERAPISTS} or more){extra}"), stacklevel=3)


def _sort_key(label: str) -> tuple[int, float | str]:
    try:
        return (0, float(label))
    except ValueError:
        return (1, label)
