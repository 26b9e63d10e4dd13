"""The association of a predictor with an outcome split into its therapist-level and
patient-level parts (Baldwin, Wampold & Imel, 2007), at the dyad level
(:func:`association_split`) and at the session level in a three-level APIM
(:func:`session_split`); both fit through :func:`apim.fit`.

Examples
--------
>>> import apim
>>> split = association_split(apim.load_alliance(), "alliance", "outcome")
>>> sorted(split["level"].unique())
['contextual', 'therapist', 'within_therapist']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from apim.analyses.therapist.checks import (
    check_caseloads,
    code_covariates,
    dyad_covariates,
    require_therapists,
)
from apim.analyses.therapist.levels import term
from apim.analyses.therapist.spec import ASSOCIATION_COLUMNS, Method
from apim.data.session import SessionData
from apim.engine.distributions import stats
from apim.errors import SpecError
from apim.inference.wald import wald_test
from apim.model.centring import DecompositionSpec
from apim.model.registry import fit
from apim.model.result import APIMResult
from apim.model.spec import APIMSpec, CovarianceSpec, FormulaSpec

__all__ = ["association_split", "session_split", "dyad_split_spec", "session_split_spec"]

_OUTCOME, _WITHIN, _THERAPIST = "dyad_mean_outcome", "within_therapist", "therapist_mean"


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise SpecError(f"level={level} must lie between 0 and 1, e.g. 0.95")


def _row(estimate: float, se: float, df: float, level: float) -> list[float]:
    t = estimate / se
    crit = stats.t.ppf(0.5 + level / 2, df)
    return [estimate, se, df, t, float(2 * stats.t.sf(abs(t), df)), estimate - crit * se,
            estimate + crit * se]


def dyad_split_spec(covariates: Sequence[str], method: Method) -> FormulaSpec:
    """The dyad-level split as a public spec: the dyad's mean outcome on the patient's
    deviation from the caseload mean and the caseload mean, with a random intercept per
    therapist (each dyad one row).

    Examples
    --------
    >>> dyad_split_spec(("treatment",), "REML").formula
    'dyad_mean_outcome ~ within_therapist + therapist_mean + treatment'
    """
    right = " + ".join([_WITHIN, _THERAPIST, *(term(c) for c in covariates)])
    return FormulaSpec(f"{_OUTCOME} ~ {right}", residual="independent",
                       therapist_level=True, method=method)


def _dyad_means(data: SessionData, column: str, role: str) -> pd.Series:
    values = data.numeric(column)
    frame = data.frame.assign(_v=values)
    return frame.loc[frame["role"] == role].groupby("dyad")["_v"].mean().dropna()


def _dyad_data(data: SessionData, x: pd.Series, y: pd.Series, covariates: pd.DataFrame,
               role: str) -> SessionData:
    """One row per dyad with both means, the split predictor and the covariates."""
    frame = data.frame
    first = frame.groupby("dyad", sort=False)[["row", "therapist"]].first()
    table = pd.DataFrame({"x": x, _OUTCOME: y}).join(covariates).dropna()
    ther = first.loc[table.index, "therapist"]
    ther_mean = table.groupby(ther.to_numpy())["x"].transform("mean")
    centre = table.groupby(ther.to_numpy())["x"].mean().mean()
    rows = pd.DataFrame({"row": first.loc[table.index, "row"].to_numpy(),
                         "dyad": table.index.to_numpy(), "session": 1, "role": role,
                         "therapist": ther.to_numpy(),
                         _OUTCOME: table[_OUTCOME].to_numpy(),
                         _WITHIN: (table["x"] - ther_mean).to_numpy(),
                         _THERAPIST: (ther_mean - centre).to_numpy()})
    for c in covariates.columns:
        rows[c] = table[c].to_numpy()
    return data.replace(rows)


def association_split(data: SessionData, predictor: str, outcome: str, *,
                      covariates: tuple[str, ...] = (), method: Method = "REML",
                      level: float = 0.95) -> pd.DataFrame:
    """The dyad-level association of ``predictor`` with ``outcome`` split into its
    patient-level (within-therapist) and therapist-level parts, and the contextual effect
    (Baldwin, Wampold & Imel, 2007), for every pair of predictor and outcome roles.

    Each dyad's mean ``outcome`` (rated by the outcome role) is regressed on
    ``x_i - x_j`` (its mean ``predictor``, rated by the predictor role, minus the mean of
    the therapist's dyads) and ``x_j`` (centred on the mean over therapists), with a random
    intercept per therapist (:func:`dyad_split_spec`, fitted by :func:`apim.fit`);
    ``contextual = therapist - within_therapist``.

    Parameters
    ----------
    data : SessionData
        With a therapist column.
    predictor, outcome : str
    covariates : tuple of str
        Dyad-level covariates (constant within dyad, e.g. treatment; text columns are
        dummy coded against their first level).
    method : {"REML", "ML"}
    level : float

    Returns
    -------
    pandas.DataFrame
        Columns :data:`~apim.analyses.therapist.spec.ASSOCIATION_COLUMNS`; ``level`` is
        ``within_therapist``, ``therapist`` or ``contextual``; df are Satterthwaite's.

    Raises
    ------
    SpecError
        Before any fit: no therapist column; fewer than 3 therapists or every therapist
        with one dyad; a covariate that changes within dyads or takes one value.

    Examples
    --------
    >>> import apim
    >>> table = association_split(apim.load_alliance(), "alliance", "outcome")
    >>> table.query("predictor_role == 'patient' and outcome_role == 'patient'")[
    ...     "level"].tolist()
    ['within_therapist', 'therapist', 'contextual']
    """
    require_therapists(data, "the association split")
    _check_level(level)
    data.numeric(predictor), data.numeric(outcome)
    code_covariates(data, covariates)
    check_caseloads(data, "the association split")
    per_dyad = dyad_covariates(data, covariates)
    spec = dyad_split_spec(covariates, method)
    rows: list[list[Any]] = []
    for p_role in data.roles:
        x = _dyad_means(data, predictor, p_role)
        for o_role in data.roles:
            dyads = _dyad_data(data, x, _dyad_means(data, outcome, o_role), per_dyad, o_role)
            frame = dyads.frame
            n, n_ther = len(frame), int(frame["therapist"].nunique())
            if n_ther < 3 or n < 5:
                raise SpecError(f"the association split of {outcome!r} ({o_role}) on "
                                f"{predictor!r} ({p_role}) has {n} dyads in "
                                f"{n_ther} therapists: it needs at least 3 therapists")
            result = fit(dyads, spec)
            for label, hypothesis in (("within_therapist", f"{_WITHIN} = 0"),
                                      ("therapist", f"{_THERAPIST} = 0"),
                                      ("contextual", f"{_THERAPIST} - {_WITHIN} = 0")):
                test = wald_test(result, hypothesis)
                rows.append([o_role, p_role, "association", label,
                             *_row(test.estimate[0], test.se[0], test.df_den, level),
                             n, n_ther])
    return pd.DataFrame(rows, columns=ASSOCIATION_COLUMNS)


def session_split_spec(predictor: str, outcome: str, covariates: Sequence[str],
                       method: Method) -> APIMSpec:
    """The session-level split as a public spec: the APIM with the three-level
    decomposition (``DecompositionSpec(center="therapist")``) and a therapist level.

    Examples
    --------
    >>> session_split_spec("alliance", "outcome", (), "REML").decomposition.center
    'therapist'
    """
    return APIMSpec(outcome=outcome, predictors=(predictor,),
                    decomposition=DecompositionSpec(center="therapist"),
                    covariates=tuple(covariates),
                    covariance=CovarianceSpec(therapist_level=True), method=method)


def session_split(data: SessionData, predictor: str, outcome: str, *,
                  covariates: tuple[str, ...] = (), method: Method = "REML",
                  level: float = 0.95) -> tuple[pd.DataFrame, APIMResult]:
    """Actor and partner effects of ``predictor`` on ``outcome`` within dyads, between
    dyads within therapist and between therapists (three-level decomposition, APIM with a
    therapist level: :func:`session_split_spec`), with the contextual effect
    ``therapist - between`` per outcome role and effect.

    Text covariates enter as 0/1 columns against their first level (``treatment[T.CBT]``).

    Returns
    -------
    (pandas.DataFrame, APIMResult)
        Columns :data:`~apim.analyses.therapist.spec.ASSOCIATION_COLUMNS`
        (``predictor_role`` is the rater of the predictor: the outcome role for actor
        effects, the partner's for partner effects; ``level`` is ``within``,
        ``between_dyad``, ``therapist`` or ``contextual``), and the fitted APIM.

    Examples
    --------
    >>> import apim
    >>> table, fit = session_split(apim.load_alliance(), "alliance", "outcome")
    >>> table["level"].unique().tolist()
    ['within', 'between_dyad', 'therapist', 'contextual']
    """
    require_therapists(data, "the session-level split")
    _check_level(level)
    coded, names = code_covariates(data, covariates).numeric(data)
    check_caseloads(data, "the session-level split")
    result = fit(coded, session_split_spec(predictor, outcome, names, method))
    effects = result.effects
    crit = {"within": "within", "between": "between_dyad", "therapist": "therapist"}
    n_dyads = result.engine.n_dyads
    frame = coded.frame
    n_ther = int(frame.loc[frame["dyad"].isin(result.engine.random_effects.index),
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
