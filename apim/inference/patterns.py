"""Dyadic patterns: ``k = partner / actor`` per outcome role, level and predictor.

Kenny & Ledermann (2010): ``k = 1`` is the couple pattern (my and my partner's alliance
count the same), ``k = 0`` actor-only, ``k = -1`` contrast; a partner effect without an
actor effect is partner-only. The interval for ``k`` comes from Monte Carlo draws of the
two effects from their estimated joint normal distribution (percentile interval, seeded),
which respects the skew of a ratio.

Examples
--------
>>> import apim
>>> result = apim.fit(apim.load_alliance(), apim.APIMSpec("outcome", ("alliance",)))
>>> table = dyadic_patterns(result, draws=2000)
>>> list(table.columns)[:4]
['outcome_role', 'level', 'predictor', 'actor']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from apim.model.fitted import FittedModel

__all__ = ["dyadic_patterns", "PATTERNS"]

PATTERNS = {"couple": 1.0, "actor-only": 0.0, "contrast": -1.0}


def dyadic_patterns(result: FittedModel, draws: int = 20000, level: float = 0.95,
                    seed: int = 0) -> pd.DataFrame:
    """k with a Monte Carlo interval and the patterns the interval supports.

    Returns
    -------
    pandas.DataFrame
        Columns ``outcome_role, level, predictor, actor, partner, k, ci_low, ci_high,
        pattern, group`` (patterns inside the interval, joined by " or "; "partner-only"
        when the actor effect's own CI covers 0 and the partner effect's does not; group:
        the arm of a multi-group model, else empty).
    """
    effects = result.effects
    beta, cov = result.coef, result.cov_coef
    rng = np.random.default_rng(seed)
    alpha = (1 - level) / 2
    rows = []
    plain = effects[effects["by"] == ""]
    actors = plain[plain["effect"] == "actor"]
    for name, a in actors.iterrows():
        same = ((plain["outcome_role"] == a["outcome_role"]) & (plain["level"] == a["level"])
                & (plain["predictor"] == a["predictor"]) & (plain["group"] == a["group"]))
        partner = plain[same & (plain["effect"] == "partner")]
        if partner.empty:
            continue
        p_name = partner.index[0]
        pair = [name, p_name]
        sample = rng.multivariate_normal(beta[pair].to_numpy(),
                                         cov.loc[pair, pair].to_numpy(), size=draws)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = sample[:, 1] / sample[:, 0]
        low, high = np.quantile(ratio, [alpha, 1 - alpha])
        supported = [k for k, v in PATTERNS.items() if low <= v <= high]
        p = partner.iloc[0]
        if a["ci_low"] <= 0 <= a["ci_high"] and not p["ci_low"] <= 0 <= p["ci_high"]:
            supported.append("partner-only")
        rows.append({"outcome_role": a["outcome_role"], "level": a["level"],
                     "predictor": a["predictor"], "actor": a["estimate"],
                     "partner": p["estimate"], "k": p["estimate"] / a["estimate"],
                     "ci_low": low, "ci_high": high,
                     "pattern": " or ".join(supported) if supported else "none",
                     "group": a["group"]})
    return pd.DataFrame(rows)
