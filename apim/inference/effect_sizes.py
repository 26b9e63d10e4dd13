"""Effect sizes: standardised effects per level, partial r, d, and pseudo-R² per level.

None for intercepts. For every other effect, from its t test with ``df`` denominator df:

- ``partial_r = t / sqrt(t^2 + df)``, the partial correlation of the predictor and the
  outcome given the other terms (Rosenthal & Rosnow).
- ``d = 2 t / sqrt(df)``, the standardised difference of two groups, **only for a
  dichotomous predictor** (a column that takes two values in its rows, e.g. a 0/1
  treatment dummy); NaN for continuous predictors, where it has no meaning.
- ``standardised = b * SD(x part) / SD(y part)`` at the effect's level, **only for
  continuous predictors**: within-person SDs (deviations from the person mean) for
  within effects, SDs of person means over persons for between effects, overall SDs
  otherwise; per outcome role. Moderated (``|``) terms get NaN (a difference of slopes).
- Pseudo-R² per level and outcome role (Raudenbush & Bryk; Kenny, Kashy & Cook, 2006):
  ``1 - var(full) / var(empty)`` for the residual variance (within level) and the dyad
  random-intercept variance (between level), against the model with intercepts only
  and the same covariance structure.

Examples
--------
>>> import apim
>>> result = apim.fit(apim.load_alliance(), apim.APIMSpec("outcome", ("alliance",)))
>>> sizes = effect_sizes(result)
>>> bool((sizes["partial_r"].abs() <= 1).all())
True
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from apim.errors import SpecError
from apim.model.fitted import FittedModel
from apim.model.result import APIMResult

__all__ = ["effect_sizes", "pseudo_r2"]


def _level_sd(values: pd.Series, person: list[pd.Series], level: str) -> float:
    if level == "within":
        return float((values - values.groupby(person).transform("mean")).std())
    if level in ("between", "therapist"):
        return float(values.groupby(person).mean().std())
    return float(values.std())



def effect_sizes(result: FittedModel) -> pd.DataFrame:
    """Partial r, d (dichotomous predictors) and standardised effects (continuous
    predictors) for every effect of ``result`` but the intercepts (see the module
    docstring for the formulas).

    Returns
    -------
    pandas.DataFrame
        One row per non-intercept term: ``outcome_role``, ``effect``, ``level``,
        ``predictor``, ``by``, ``estimate``, ``dichotomous``, ``partial_r``, ``d``,
        ``standardised``.
    """
    X = result.design_matrix()
    fitted = result.fitted_frame()
    if X is None or fitted is None:
        raise SpecError(f"effect sizes need the rows' design and outcome; a "
                        f"{result.kind} has neither (its effects are regressions implied "
                        "by covariance matrices)")
    frame = fitted
    person = [frame["dyad"], frame["role"]]
    y = frame["observed"]
    table = result.effects[["outcome_role", "effect", "level", "predictor", "by", "estimate",
                            "t", "df"]].copy()
    levels = []
    for name, row in table.iterrows():
        rows = np.ones(len(frame), bool) if row["outcome_role"] in ("both", "") else \
            (frame["role"] == row["outcome_role"]).to_numpy()
        levels.append(X.loc[rows, name].nunique())
    # intercepts (also a formula's constant column) get no effect size
    keep = (table["effect"] != "intercept").to_numpy() & (np.array(levels) > 1)
    table = table[keep].copy()
    table["dichotomous"] = np.array(levels)[keep] == 2
    table["partial_r"] = table["t"] / np.sqrt(table["t"] ** 2 + table["df"])
    table["d"] = np.where(table["dichotomous"], 2 * table["t"] / np.sqrt(table["df"]), np.nan)
    standardised = []
    for name, row in table.iterrows():
        if row["effect"] not in ("actor", "partner", "actor_x_partner", "covariate", "term") \
                or row["by"] or row["dichotomous"]:
            standardised.append(np.nan)
            continue
        rows = slice(None) if row["outcome_role"] in ("both", "") else \
            (frame["role"] == row["outcome_role"]).to_numpy()
        sx = _level_sd(X.loc[rows, name], [p[rows] for p in person], row["level"])
        sy = _level_sd(y[rows], [p[rows] for p in person], row["level"])
        standardised.append(row["estimate"] * sx / sy if sy > 0 else np.nan)
    table["standardised"] = standardised
    return table.drop(columns=["t", "df"])


def pseudo_r2(result: APIMResult) -> pd.DataFrame:
    """Pseudo-R² per level and outcome role against the intercepts-only model (same rows,
    same random effects and residual structure)."""
    base = result.intercepts_only()
    rows = []
    for now, empty in zip(result.parameters, base.parameters):
        if now.kind != "sd" or now.level == "therapist":
            continue
        if now.level == "residual":
            level = "within"
            who = "both" if now.pooled else result.roles[now.roles[0]]
        else:
            member, effect = result.random_effect(now.effects[0])
            if effect != "intercept":
                continue
            level = "between"
            who = "both" if now.pooled else member
        v0, v1 = empty.variance, now.variance
        rows.append({"level": level, "outcome_role": who, "variance_empty": v0,
                     "variance_full": v1, "pseudo_r2": 1 - v1 / v0})
    return pd.DataFrame(rows)
