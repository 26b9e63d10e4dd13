"""From session data and an :class:`~apim.model.spec.APIMSpec` to the engine's arrays.

Each fixed-effect column is a :class:`Term` that knows what it means: the outcome role it
belongs to, the kind of effect, the level, the predictor and the moderator it is
conditional on. Term names are what Wald hypotheses use::

    patient.intercept
    patient.actor.within.alliance
    therapist.partner.between.alliance
    patient.actor.within.alliance|treatment[AFT]      (difference for AFT vs CBT)
    patient.moderator.none.treatment[AFT]
    both.actor.within.alliance                        (indistinguishable dyads)

Examples
--------
>>> from apim import load_alliance, APIMSpec
>>> design = build_design(load_alliance(), APIMSpec("outcome", ("alliance",)))
>>> [t.name for t in design.terms][:3]
['patient.intercept', 'patient.actor.within.alliance', 'patient.partner.within.alliance']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from apim.data.hints import current, option
from apim.data.report import Exclusion
from apim.data.session import SessionData
from apim.data.validate import require_columns
from apim.engine import Diagonal, MixedModel, Residual, Unstructured
from apim.engine.mixed.random_effects import Exchangeable, RandomStructure
from apim.errors import DataError, SpecError
from apim.model.centring import Decomposition, decompose, default_center, is_cross_sectional
from apim.model.spec import APIMSpec, FormulaSpec

__all__ = ["Term", "APIMDesign", "build_design", "resolve_spec", "check_identified",
           "moderator_levels", "reference_source"]

LEVEL_OF = {"within": "within", "between": "between", "between_dyad": "between",
            "between_therapist": "therapist", "centered": "none", "raw": "none"}
TIME_VARYING = ("within", "centered", "raw")


@dataclass(frozen=True)
class Term:
    """One fixed-effect column and what it means."""

    outcome_role: str
    effect: str
    level: str
    predictor: str
    by: str = ""
    group: str = ""  # the arm of a multi-group model the term belongs to

    @property
    def name(self) -> str:
        if self.effect == "intercept":
            return f"{self.outcome_role}.intercept"
        if self.effect == "term":  # a column of a formula fit
            return self.predictor
        base = f"{self.outcome_role}.{self.effect}.{self.level}.{self.predictor}"
        return f"{base}|{self.by}" if self.by else base


@dataclass(frozen=True, eq=False)
class APIMDesign:
    """Everything the engine needs, and the bookkeeping to read its results.

    Attributes
    ----------
    spec, data : the specification and the data it was built from
    terms : fixed-effect columns, in the order of ``model.X``
    model : the engine's :class:`~apim.engine.MixedModel` (used rows only)
    used : index labels of ``data.frame`` rows in the fit
    dropped : rows not used, with reasons
    components : the decomposition the predictors came from (None for formula fits)
    outcome_roles : the outcome roles of the terms (``("both",)`` when indistinguishable)
    random_effects : for each random-effect column, its effect without the member
        (``"intercept"``, ``"actor.within.alliance"``)
    random_members : for each random-effect column, the role (member) it belongs to
    """

    spec: APIMSpec | FormulaSpec
    data: SessionData = field(repr=False)
    terms: tuple[Term, ...]
    model: MixedModel = field(repr=False)
    used: np.ndarray = field(repr=False)
    dropped: tuple[Exclusion, ...]
    components: Decomposition | None = field(repr=False)
    outcome_roles: tuple[str, ...]
    random_effects: dict[str, str] = field(default_factory=dict, repr=False)
    random_members: dict[str, str] = field(default_factory=dict, repr=False)


def moderator_levels(values: pd.Series, reference: str | None = None,
                     name: str = "") -> list[Any] | None:
    """The levels of a categorical moderator, the reference first; None for a numeric
    moderator with more than two values (used as it is).

    The one place that decides the reference level, the same for Python, the CLI and
    plans: ``reference`` when given (``APIMSpec.reference``, ``--reference COL=LEVEL``);
    otherwise the data's declared order (the first category of a pandas Categorical: SPSS
    and Stata value labels, Parquet categories, a plan's ``categories``); otherwise the
    first level in sorted order (a CSV declares no order; sorting keeps the result
    independent of the order of the rows).

    Examples
    --------
    >>> arm = pd.Series(["CBT", "AFT", "CBT"])
    >>> moderator_levels(arm), moderator_levels(arm, "CBT", "treatment")
    (['AFT', 'CBT'], ['CBT', 'AFT'])
    >>> moderator_levels(arm, "DBT", "treatment")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    apim.errors.DataError: reference treatment=DBT: column 'treatment' has no level 'DBT'; ...
    """
    numeric = pd.api.types.is_numeric_dtype(values) and values.dropna().nunique() > 2
    if numeric:
        if reference is not None:
            raise DataError(f"reference {name}={reference}: column {name!r} is numeric "
                            f"({values.dropna().nunique()} values), not a categorical "
                            "moderator, so it has no reference level; drop the reference")
        return None
    if isinstance(values.dtype, pd.CategoricalDtype):
        levels = [c for c in values.cat.categories if (values == c).any()]
    else:
        levels = sorted(values.dropna().unique(), key=str)
    if reference is None:
        return levels
    first = [v for v in levels if str(v) == str(reference)]
    if not first:
        raise DataError(f"reference {name}={reference}: column {name!r} has no level "
                        f"{str(reference)!r}; its levels are "
                        f"{', '.join(map(str, levels)) or 'none (all missing)'}")
    return first + [v for v in levels if str(v) != str(reference)]


def reference_source(values: pd.Series, reference: str | None) -> str:
    """Where the reference level of a categorical moderator came from, for table notes."""
    if reference is not None:
        return "set with reference / --reference"
    if isinstance(values.dtype, pd.CategoricalDtype):
        return "the data's declared order"
    return ("first in sorted order, as the data declare no order; choose another with "
            "reference / --reference")


def _dummies(values: pd.Series, name: str, reference: str | None = None
             ) -> dict[str, pd.Series]:
    """Numeric moderators as they are; others as 0/1 columns against the reference level
    (:func:`moderator_levels`)."""
    levels = moderator_levels(values, reference, name)
    if levels is None:
        return {name: values.astype(float)}
    if len(levels) < 2:
        raise SpecError(f"moderator {name!r} takes a single value; it cannot moderate")
    out = {}
    for level in levels[1:]:
        column = (values == level).astype(float).where(values.notna())
        out[f"{name}[{level}]"] = column
    return out


def resolve_spec(data: SessionData, spec: APIMSpec) -> APIMSpec:
    """``spec`` with its data-dependent defaults made explicit: the one place where they
    are decided.

    - Cross-sectional data (every member has one row, or no session column): raw
      predictors (``center="none"``) and no random effects, so the role-specific residual
      covariance carries the dyad (nlme's ``gls(..., corCompSymm, varIdent)`` for
      distinguishable dyads, ``corCompSymm`` alone for indistinguishable ones).
    - Data over time: the person-mean split and random role intercepts.
    - The residual structure: ``un`` for distinguishable and ``cs`` for indistinguishable
      dyads (:attr:`APIMSpec.residual_structure`).
    """
    cross = is_cross_sectional(data)
    decomposition, covariance = spec.decomposition, spec.covariance
    if decomposition.center is None:
        decomposition = decomposition.replace(center=default_center(data))
    if covariance.random is None:
        covariance = covariance.replace(random="none" if cross else "intercepts")
    covariance = covariance.replace(residual=spec.residual_structure)
    return spec.replace(decomposition=decomposition, covariance=covariance)


def check_identified(data: SessionData, spec: APIMSpec) -> None:
    """Refuse what cross-sectional data cannot identify (before any fitting).

    With one observation per member, a member's random intercept and their residual are
    the same quantity: their variances (and the random-intercept correlation and the
    residual correlation) cannot be told apart; and a person-mean split leaves no
    within-person part.
    """
    cov = spec.covariance
    if not is_cross_sectional(data):
        return
    center = spec.decomposition.center
    if center in ("person", "therapist"):
        default = ("omitting --center chooses" if current() == "cli"
                   else "center=None chooses")
        raise SpecError(
            f"{option('center', center)} splits predictors into within- and between-person "
            "parts, but every member has one observation, so the within part is zero; use "
            f"{option('center', 'none')} or {option('center', 'grand')} ({default} raw "
            "predictors for cross-sectional data)")
    if cov.random in (None, "none"):
        return
    omit = "drop --random" if current() == "cli" else "leave random unset"
    raise SpecError(
        f"{option('random', str(cov.random))} with "
        f"{option('residual', str(spec.residual_structure))} is not identified: every "
        "member has one observation, so a random intercept cannot be told apart from the "
        f"residual; use {option('random', 'none')} (the residual covariance, e.g. un or "
        f"cs, then carries the partners' correlation, as nlme's gls does), or {omit} so "
        "the default for cross-sectional data applies")


def build_design(data: SessionData, spec: APIMSpec,
                 centres: pd.DataFrame | None = None) -> APIMDesign:
    """Build the fixed and random designs of ``spec`` on ``data``.

    ``centres``: the centres of the between parts per predictor and role to use instead
    of ``data``'s own (:func:`~apim.model.centring.decompose`; a block of a larger data
    set is centred on the whole set's).

    Defaults that depend on the data (cross-sectional or over time) are resolved first
    (:func:`resolve_spec`); the design's ``spec`` is the resolved one.

    Indistinguishable dyads (``distinguishable=False``) get one intercept and effects
    pooled over roles, predictors centred on both roles together, random intercepts (and
    slopes) per member with the exchangeable covariance
    (:class:`~apim.engine.mixed.random_effects.Exchangeable`: equal variances, free covariances)
    and a residual structure with equal variances, so nothing depends on which member
    carries which label.

    Raises
    ------
    SpecError
        For options that do not fit the data (e.g. a therapist level without therapists,
        a random part that one observation per member cannot identify, a residual
        structure with role-specific variances for indistinguishable dyads).
    """
    frame = data.frame
    if spec.outcome in spec.predictors:
        raise SpecError(f"{spec.outcome!r} cannot be both the outcome and a predictor")
    spec = resolve_spec(data, spec)
    check_identified(data, spec)
    cov = spec.covariance
    if cov.therapist_level and not data.has_therapist:
        raise SpecError("therapist_level=True needs a therapist column (therapist=...)")
    residual = Residual.named(spec.residual_structure)
    if not spec.distinguishable and not residual.equal_variances:
        raise SpecError(
            f"residual={spec.residual_structure!r} gives the two roles different variances, "
            "which indistinguishable dyads do not have; use "
            f"residual={residual.pooled.name!r} (or distinguishable=True)")
    y = data.numeric(spec.outcome)
    parts = decompose(data, list(spec.predictors), spec.decomposition,
                      pooled=not spec.distinguishable, centres=centres)
    comp = parts.components
    roles = data.roles if spec.distinguishable else ("both",)
    keys = data.keys
    indicator = {r: ((frame["role"] == r).to_numpy() if keys is None else keys.role == k
                     ).astype(float) for k, r in enumerate(data.roles)}
    indicator["both"] = np.ones(len(frame))

    def values_of(column: str) -> np.ndarray:
        return comp[column].to_numpy(float)

    # predictor columns shared by the roles: (effect, level, predictor, values)
    base: list[tuple[str, str, str, np.ndarray]] = []
    slopes: list[tuple[str, str, str, np.ndarray]] = []
    for x in spec.predictors:
        for kind, column in parts.parts[x].items():
            if kind == "trend":
                continue
            level = LEVEL_OF[kind]
            actor, partner = values_of(column), values_of(f"{column}_partner")
            base += [("actor", level, x, actor), ("partner", level, x, partner)]
            if kind in TIME_VARYING:
                slopes += [("actor", level, x, actor), ("partner", level, x, partner)]
        if spec.interaction:
            for kind, column in parts.parts[x].items():
                if kind in ("within", "between", "centered", "raw"):
                    base.append(("actor_x_partner", LEVEL_OF[kind], x,
                                 values_of(column) * values_of(f"{column}_partner")))
    moderators: dict[str, pd.Series] = {}
    references = dict(spec.reference)
    for m in spec.moderators:
        require_columns(frame, {"moderator": m})
        moderators.update(_dummies(frame[m], m, references.get(m)))
    covariates = {c: data.numeric(c) for c in spec.covariates}
    mod_values = {name: v.to_numpy(float) for name, v in moderators.items()}
    cov_values = {name: v.to_numpy(float) for name, v in covariates.items()}

    # each column: the product of its factors, left to right (filled in place)
    columns: dict[Term, tuple[np.ndarray, ...]] = {}
    for r in roles:
        d = indicator[r]
        columns[Term(r, "intercept", "none", "")] = (d,)
        for effect, level, x, values in base:
            columns[Term(r, effect, level, x)] = (d, values)
        for mname, mvalues in mod_values.items():
            columns[Term(r, "moderator", "none", mname)] = (d, mvalues)
            for effect, level, x, values in base:
                if effect in ("actor", "partner"):
                    columns[Term(r, effect, level, x, by=mname)] = (d, values, mvalues)
        for cname, cvalues in cov_values.items():
            columns[Term(r, "covariate", "none", cname)] = (d, cvalues)
    X = _frame_of({t.name: v for t, v in columns.items()}, frame.index)

    # random effects per member: intercepts, then (when asked) the time-varying slopes;
    # for indistinguishable dyads the same effects of both members, member by member
    z_cols: dict[str, tuple[np.ndarray, ...]] = {}
    effects: dict[str, str] = {}
    members: dict[str, str] = {}
    if cov.random != "none":
        kinds: list[tuple[str, np.ndarray | None]] = [("intercept", None)]
        if cov.random == "slopes":
            kinds += [(f"{effect}.{level}.{x}", values) for effect, level, x, values in slopes]
        order = [(r, k) for r in data.roles for k in kinds] if not spec.distinguishable \
            else [(r, kinds[0]) for r in data.roles] + \
            [(r, k) for r in data.roles for k in kinds[1:]]
        for r, (name, slope) in order:
            column = f"{r}" if name == "intercept" else f"{r}.{name}"
            z_cols[column] = (indicator[r],) if slope is None else (indicator[r], slope)
            effects[column] = name
            members[column] = r
    Z = _frame_of(z_cols, frame.index)
    random: RandomStructure | None = None
    if z_cols:
        random = Unstructured(len(z_cols)) if spec.distinguishable else \
            Exchangeable(len(z_cols) // 2)

    sources = {spec.outcome: y, **{c: comp[c] for c in comp.columns}, **moderators,
               **covariates}
    return assemble_design(data, spec, y, X, Z if len(z_cols) else None, tuple(columns),
                           sources, parts, random=random, random_effects=effects,
                           random_members=members, labels=source_labels(parts))


def source_labels(parts: Decomposition) -> dict[str, str]:
    """What each component column is, in the user's terms, for the reasons rows are left
    out: ``alliance_within`` is the person's own ``alliance``, ``alliance_within_partner``
    the partner's at the same session, ``_lag1`` the rating one session before.

    Examples
    --------
    >>> import apim
    >>> parts = apim.decompose(apim.load_alliance(), ["alliance"])
    >>> source_labels(parts)["alliance_within_partner"]
    "the partner's alliance at this session (partner effects need it)"
    """
    lag = parts.spec.lag
    later = f" lagged by {lag} session{'s' if lag != 1 else ''}"
    out = {}
    for x, names in parts.parts.items():
        for name in names.values():
            lagged = f"_lag{lag}" in name[len(x):] if lag else False
            out[name] = x + (later if lagged else "")
            out[f"{name}_partner"] = (f"the partner's {x}" + (later if lagged else
                                      " at this session") + " (partner effects need it)")
    return out


def _frame_of(columns: dict[str, tuple[np.ndarray, ...]], index: pd.Index) -> pd.DataFrame:
    """Columns, each the product of its factors (left to right), computed into one
    DataFrame block (its values come back column-major, as from a frame built column by
    column)."""
    block = np.empty((len(columns), len(index)))
    for row, factors in zip(block, columns.values()):
        if len(factors) == 1:
            row[:] = factors[0]
            continue
        np.multiply(factors[0], factors[1], out=row)
        for factor in factors[2:]:
            np.multiply(row, factor, out=row)
    return pd.DataFrame(block.T, index=index, columns=list(columns), copy=False)


def _rows(values: np.ndarray, keep: np.ndarray, every: bool = False) -> np.ndarray:
    """The rows ``keep`` of a matrix, column-major (as a DataFrame's values come); the
    matrix itself, not a copy, when ``every`` row is kept."""
    if every:
        return values
    out = np.empty((int(keep.sum()), values.shape[1]), order="F")
    for j in range(values.shape[1]):
        out[:, j] = values[keep, j]
    return out


def assemble_design(data: SessionData, spec: APIMSpec | FormulaSpec, y: pd.Series,
                    X: pd.DataFrame, Z: pd.DataFrame | None, terms: tuple[Term, ...],
                    sources: pd.DataFrame | Mapping[str, Any],
                    components: Decomposition | None = None,
                    random: RandomStructure | None = None,
                    random_effects: dict[str, str] | None = None,
                    random_members: dict[str, str] | None = None,
                    labels: Mapping[str, str] | None = None) -> APIMDesign:
    """Keep the rows with every design value and build the engine's model.

    Rows left out are grouped by the first of ``sources`` (the columns the design was made
    of: a DataFrame, or a mapping of names to columns) that is missing in them, named by
    ``labels`` (what each source is, in the user's terms) where it has the name.
    ``random`` is the structure of ``Z`` (default unstructured); ``random_effects`` names
    the effect of each ``Z`` column without its member (for labels of parameters shared
    by both members), ``random_members`` the member (role) of each.

    Raises
    ------
    DataError
        When the outcome takes one value in the rows fitted.
    """
    frame = data.frame
    therapist_level = (spec.covariance.therapist_level if isinstance(spec, APIMSpec)
                       else spec.therapist_level)
    y_values = y.to_numpy(float)
    x_values = X.to_numpy(float)
    ok = ~np.isnan(y_values) & ~np.isnan(x_values).any(axis=1)
    if Z is not None:
        ok &= ~np.isnan(Z.to_numpy(float)).any(axis=1)
    if not ok.any():
        raise SpecError("no row has the outcome and every predictor: nothing to fit")
    remaining = ~ok
    reasons: dict[str, list[int]] = {}
    for name, values in sources.items():
        if not remaining.any():
            break
        hit = remaining & pd.isna(np.asarray(values))
        if hit.any():
            if labels is not None and name in labels:
                why = f"missing {labels[name]}"
            else:
                why = f"missing {name}"
                if str(name).endswith("_partner"):
                    why += " (the partner has no rating for this session)"
            reasons[why] = frame.loc[hit, "row"].tolist()
            remaining &= ~hit
    if remaining.any():  # a product of non-missing values cannot be missing; be safe
        reasons["missing a design value"] = frame.loc[remaining, "row"].tolist()
    every = bool(ok.all())  # then the arrays are used as they are: no copies

    def kept(values: np.ndarray) -> np.ndarray:
        return values if every else values[ok]

    outcome = kept(y_values)
    if bool(np.all(outcome == outcome[0])):
        first = y[ok].iloc[0]
        raise DataError(f"the outcome {y.name!r} takes one value ({first!r}) in all "
                        f"{len(outcome)} rows fitted: there is no variance to model; check "
                        "the outcome column (and the rows dropped for missing values)")
    keys = data.keys
    role = (frame["role"] == data.roles[1]).to_numpy() if keys is None else keys.role == 1
    model = MixedModel(
        y=outcome, X=_rows(x_values, ok, every),
        dyad=kept(frame["dyad"].to_numpy()),
        role=kept(role).astype(int),
        session=kept(frame["session"].to_numpy()),
        Z=None if Z is None else _rows(Z.to_numpy(float), ok, every),
        random=None if Z is None else (random or Unstructured(Z.shape[1])),
        residual=Residual.named(spec.residual_structure),
        therapist=kept(frame["therapist"].to_numpy()) if therapist_level else None,
        therapist_random=Diagonal(1) if therapist_level else None,
        x_names=tuple(X.columns), z_names=() if Z is None else tuple(Z.columns),
        therapist_names=("intercept",) if therapist_level else ())
    return APIMDesign(spec=spec, data=data, terms=terms, model=model,
                      used=np.asarray(frame.index[ok]),
                      dropped=tuple(Exclusion(why, tuple(rows)) for why, rows in reasons.items()),
                      components=components, random_effects=dict(random_effects or {}),
                      random_members=dict(random_members or {}),
                      outcome_roles=tuple(dict.fromkeys(t.outcome_role for t in terms)))
