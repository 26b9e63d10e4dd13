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

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from apim.data.report import Exclusion
from apim.data.session import SessionData
from apim.data.validate import require_columns
from apim.engine import Diagonal, MixedModel, Residual, Unstructured
from apim.errors import SpecError
from apim.model.centring import Decomposition, decompose
from apim.model.spec import APIMSpec, FormulaSpec

__all__ = ["Term", "APIMDesign", "build_design"]

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
    """

    spec: APIMSpec | FormulaSpec
    data: SessionData = field(repr=False)
    terms: tuple[Term, ...]
    model: MixedModel = field(repr=False)
    used: np.ndarray = field(repr=False)
    dropped: tuple[Exclusion, ...]
    components: Decomposition | None = field(repr=False)
    outcome_roles: tuple[str, ...]


def _dummies(values: pd.Series, name: str) -> dict[str, pd.Series]:
    """Numeric moderators as they are; others as 0/1 columns against the first level (the
    first category of a pandas Categorical, else the first value in sorted order)."""
    if pd.api.types.is_numeric_dtype(values) and values.dropna().nunique() > 2:
        return {name: values.astype(float)}
    if isinstance(values.dtype, pd.CategoricalDtype):
        levels = [c for c in values.cat.categories if (values == c).any()]
    else:
        levels = sorted(values.dropna().unique(), key=str)
    if len(levels) < 2:
        raise SpecError(f"moderator {name!r} takes a single value; it cannot moderate")
    out = {}
    for level in levels[1:]:
        column = (values == level).astype(float).where(values.notna())
        out[f"{name}[{level}]"] = column
    return out


def build_design(data: SessionData, spec: APIMSpec) -> APIMDesign:
    """Build the fixed and random designs of ``spec`` on ``data``.

    Raises
    ------
    SpecError
        For options that do not fit the data (e.g. a therapist level without therapists).
    """
    frame = data.frame
    if spec.outcome in spec.predictors:
        raise SpecError(f"{spec.outcome!r} cannot be both the outcome and a predictor")
    cov = spec.covariance
    if cov.therapist_level and not data.has_therapist:
        raise SpecError("therapist_level=True needs a therapist column (therapist=...)")
    y = data.numeric(spec.outcome)
    parts = decompose(data, list(spec.predictors), spec.decomposition)
    comp = parts.components
    roles = data.roles if spec.distinguishable else ("both",)
    indicator = {r: (frame["role"] == r).astype(float) for r in data.roles}
    indicator["both"] = pd.Series(1.0, index=frame.index)

    # predictor columns shared by the roles: (effect, level, predictor, values)
    base: list[tuple[str, str, str, pd.Series]] = []
    slopes: list[tuple[str, str, str, pd.Series]] = []
    for x in spec.predictors:
        for kind, column in parts.parts[x].items():
            if kind == "trend":
                continue
            level = LEVEL_OF[kind]
            actor, partner = comp[column], comp[f"{column}_partner"]
            base += [("actor", level, x, actor), ("partner", level, x, partner)]
            if kind in TIME_VARYING:
                slopes += [("actor", level, x, actor), ("partner", level, x, partner)]
        if spec.interaction:
            for kind, column in parts.parts[x].items():
                if kind in ("within", "between", "centered", "raw"):
                    base.append(("actor_x_partner", LEVEL_OF[kind], x,
                                 comp[column] * comp[f"{column}_partner"]))
    moderators: dict[str, pd.Series] = {}
    for m in spec.moderators:
        require_columns(frame, {"moderator": m})
        moderators.update(_dummies(frame[m], m))
    covariates = {c: data.numeric(c) for c in spec.covariates}

    columns: dict[Term, pd.Series] = {}
    for r in roles:
        d = indicator[r]
        columns[Term(r, "intercept", "none", "")] = d
        for effect, level, x, values in base:
            columns[Term(r, effect, level, x)] = d * values
        for mname, mvalues in moderators.items():
            columns[Term(r, "moderator", "none", mname)] = d * mvalues
            for effect, level, x, values in base:
                if effect in ("actor", "partner"):
                    columns[Term(r, effect, level, x, by=mname)] = d * values * mvalues
        for cname, cvalues in covariates.items():
            columns[Term(r, "covariate", "none", cname)] = d * cvalues
    X = pd.DataFrame({t.name: v for t, v in columns.items()}, index=frame.index)

    z_cols: dict[str, pd.Series] = {}
    if cov.random != "none":
        for r in roles:
            z_cols[f"{r}" if spec.distinguishable else "intercept"] = indicator[r]
        if cov.random == "slopes":
            for r in roles:
                for effect, level, x, values in slopes:
                    z_cols[f"{r}.{effect}.{level}.{x}"] = indicator[r] * values
    Z = pd.DataFrame(z_cols, index=frame.index)

    sources = pd.concat([y.rename(spec.outcome), comp, pd.DataFrame(moderators),
                         pd.DataFrame(covariates)], axis=1)
    return assemble_design(data, spec, y, X, Z if len(z_cols) else None, tuple(columns),
                           sources, parts)


def assemble_design(data: SessionData, spec: APIMSpec | FormulaSpec, y: pd.Series, X: pd.DataFrame,
                    Z: pd.DataFrame | None, terms: tuple[Term, ...], sources: pd.DataFrame,
                    components: Decomposition | None = None) -> APIMDesign:
    """Keep the rows with every design value and build the engine's model.

    Rows left out are grouped by the first of ``sources`` (the columns the design was made
    of) that is missing in them.
    """
    frame = data.frame
    therapist_level = (spec.covariance.therapist_level if isinstance(spec, APIMSpec)
                       else spec.therapist_level)
    ok = (y.notna() & X.notna().all(axis=1)).to_numpy()
    if Z is not None:
        ok = ok & Z.notna().all(axis=1).to_numpy()
    if not ok.any():
        raise SpecError("no row has the outcome and every predictor: nothing to fit")
    remaining = ~ok
    reasons: dict[str, list[int]] = {}
    for name in sources.columns:
        hit = remaining & sources[name].isna().to_numpy()
        if hit.any():
            why = f"missing {name}"
            if str(name).endswith("_partner"):
                why += " (the partner has no rating for this session)"
            reasons[why] = frame.loc[hit, "row"].tolist()
            remaining &= ~hit
    if remaining.any():  # a product of non-missing values cannot be missing; be safe
        reasons["missing a design value"] = frame.loc[remaining, "row"].tolist()
    model = MixedModel(
        y=y[ok].to_numpy(float), X=X[ok].to_numpy(float),
        dyad=frame.loc[ok, "dyad"].to_numpy(),
        role=(frame.loc[ok, "role"] == data.roles[1]).to_numpy().astype(int),
        session=frame.loc[ok, "session"].to_numpy(),
        Z=None if Z is None else Z[ok].to_numpy(float),
        random=None if Z is None else Unstructured(Z.shape[1]),
        residual=Residual.named(spec.residual_structure),
        therapist=frame.loc[ok, "therapist"].to_numpy() if therapist_level else None,
        therapist_random=Diagonal(1) if therapist_level else None,
        x_names=tuple(X.columns), z_names=() if Z is None else tuple(Z.columns),
        therapist_names=("therapist level",) if therapist_level else ())
    return APIMDesign(spec=spec, data=data, terms=terms, model=model,
                      used=np.asarray(frame.index[ok]),
                      dropped=tuple(Exclusion(why, tuple(rows)) for why, rows in reasons.items()),
                      components=components,
                      outcome_roles=tuple(dict.fromkeys(t.outcome_role for t in terms)))
