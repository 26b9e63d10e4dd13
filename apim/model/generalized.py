"""Fitting a generalized APIM: the Gaussian APIM's design, a binary or ordinal outcome,
and the generalized engine (:mod:`apim.engine.glmm`).

The design (within/between split, role intercepts, actor/partner/moderator terms, rows
dropped for missing values) is :func:`apim.model.design.build_design`'s for the same
terms (:meth:`GeneralizedAPIMSpec.design_spec`); an ordinal outcome drops the role
intercepts (its thresholds take their place). Person means for the split follow the
Gaussian APIM's rule (DESIGN.md §4: over the sessions where the person rated the
predictor).

Examples
--------
>>> import apim
>>> data = apim.load_alliance()
>>> frame = data.frame.drop(columns="row")
>>> frame = frame[frame["dyad"] <= 40]  # a part of the data, to keep the example quick
>>> frame["low"] = (frame["outcome"] < 2.8).astype(float).where(frame["outcome"].notna())
>>> data = apim.SessionData.from_long(frame, dyad="dyad", session="session", role="role")
>>> spec = GeneralizedAPIMSpec("low", ("alliance",), family="binomial", nagq=1)
>>> result = apim.fit(data, spec)
>>> result.statistics.converged, result.reference
(True, 'z')
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from apim.data.session import SessionData
from apim.engine.control import FitControl
from apim.engine.glmm import GLMMModel, fit_glmm
from apim.errors import ApimWarning, SpecError
from apim.model.centring import is_cross_sectional
from apim.model.checks import check_design, check_sample
from apim.model.design import build_design
from apim.model.generalized_checks import (
    check_events,
    check_separation,
    outcome_categories,
)
from apim.model.generalized_result import GeneralizedAPIMResult
from apim.model.generalized_spec import GeneralizedAPIMSpec
from apim.model.spec import APIMSpec

__all__ = ["fit_generalized"]


def fit_generalized(data: SessionData, spec: GeneralizedAPIMSpec,
                    control: FitControl | None = None) -> GeneralizedAPIMResult:
    """Fit a generalized APIM (:class:`GeneralizedAPIMSpec`) by maximum likelihood.

    Raises
    ------
    DataError
        A binary outcome not coded 0/1, an ordinal outcome with an unused category (or
        one a role never uses, with thresholds per role), separation.
    SpecError
        Cross-sectional data (one observation per member cannot identify two random
        intercepts of a binary outcome); a therapist level without a therapist column, or
        with one dyad per therapist.
    DataError
        A therapist level where a dyad has more than one therapist.

    Warns
    -----
    SmallSampleWarning
        Few dyads, or fewer than 10 events of the rarer outcome per fixed effect.
    ApimWarning
        A therapist level with ``nagq > 1``: the fit is by Laplace throughout.
    """
    if is_cross_sectional(data):
        raise SpecError("a generalized APIM needs repeated sessions per member: with one "
                        "observation per member the dyad's random intercepts of a binary "
                        "or ordinal outcome are not identified")
    categories = outcome_categories(data, spec.outcome, spec.family,
                                    per_role=spec.family == "ordinal"
                                    and spec.threshold_sets == "role")
    gaussian = spec.design_spec()
    check_design(data, gaussian)
    design = build_design(data, gaussian)
    model = design.model
    keep = [j for j, t in enumerate(design.terms)
            if not (spec.family == "ordinal" and t.effect == "intercept")]
    terms = tuple(design.terms[j] for j in keep)
    X = model.X[:, keep]
    names = [t.name for t in terms]
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise SpecError("the fixed effects are linearly dependent in the rows fitted (a "
                        "term is constant or duplicates another): drop one of "
                        f"{', '.join(names)}")
    category = np.searchsorted(categories, model.y)
    sets = None
    if spec.family == "ordinal":
        sets = model.role if spec.threshold_sets == "role" else np.zeros_like(model.role)
    check_separation(X, category, names, len(categories), sets)
    check_events(category, len(categories), X.shape[1])
    n_dyads = len(np.unique(model.dyad))
    check_sample(3 if spec.distinguishable else 2, n_dyads)
    if spec.therapist_level:
        caseload = pd.Series(model.dyad).groupby(pd.Series(model.therapist)).nunique()
        if bool((caseload == 1).all()):
            raise SpecError(f"every one of the {len(caseload)} therapists has one dyad in the "
                            "rows fitted: a therapist intercept shared by both members is "
                            "then not distinguishable from the dyad's two correlated "
                            "intercepts; drop therapist_level (--therapist-level)")
    if spec.therapist_level and spec.points > 1:
        warnings.warn(f"nagq={spec.points}: with a therapist level the generalized APIM is "
                      "fitted by the Laplace approximation throughout (over each "
                      "therapist's intercept and its dyads' intercepts together), not by "
                      "quadrature; drop nagq (or set nagq=1)", ApimWarning, stacklevel=2)
    engine_model = GLMMModel(
        category=category, X=X, dyad=model.dyad, role=model.role, family=spec.family,
        link=spec.link, n_categories=len(categories), thresholds=spec.threshold_sets,
        random="unstructured" if spec.distinguishable else "exchangeable", nagq=spec.points,
        x_names=tuple(names), therapist=model.therapist)
    resolved = design.spec
    if isinstance(resolved, APIMSpec):  # the data-dependent centring made explicit
        spec = spec.replace(decomposition=resolved.decomposition)
    return GeneralizedAPIMResult(design=design, engine=fit_glmm(engine_model, control),
                                 terms=terms, categories=categories, spec=spec)
