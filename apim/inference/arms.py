"""Multi-group (treatment-arm) comparisons and observed-mean versus latent between effects.

- :func:`arm_differences`: in a multi-group model, each effect's difference between every
  other group and the first, with its Wald test, plus one joint test per group of all
  actor and partner effects being equal.
- :func:`compare_between`: observed-mean and latent between effects side by side, with the
  reliability of the predictor's person means.

Both work on any :class:`~apim.model.fitted.FittedModel` with the columns they need (a
``group`` per effect; between effects).

Examples
--------
>>> import apim
>>> spec = apim.LatentAPIMSpec("outcome", ("alliance",), moderator="treatment")
>>> table = arm_differences(apim.fit(apim.load_alliance(), spec))
>>> table["contrast"].iloc[0]
'AFT − CBT'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from apim.errors import SpecError
from apim.inference.wald import wald_test
from apim.model.fitted import FittedModel

if TYPE_CHECKING:
    from apim.model.latent_result import LatentAPIMResult

__all__ = ["arm_differences", "compare_between"]


def arm_differences(result: FittedModel) -> pd.DataFrame:
    """Differences of every effect between groups (each group against the first).

    Returns
    -------
    DataFrame
        One row per effect and group: ``effect`` (the name without the arm),
        ``contrast`` ("AFT − CBT"), ``difference``, ``se``, ``statistic`` (z or t),
        ``df``, ``p``; then one row per group with effect ``all actor and partner effects``
        holding the joint chi-square (or F) test in ``statistic`` and its p.
    """
    effects = result.effects
    groups = list(dict.fromkeys(g for g in effects["group"] if g))
    if len(groups) < 2:
        raise SpecError("arm differences need a multi-group model (a LatentAPIMSpec with a "
                        "moderator)")
    first = groups[0]
    suffix = f"[{first}]"
    stems = [n[: -len(suffix)] for n in effects.index
             if effects.at[n, "group"] == first and n.endswith(suffix)]
    rows = []
    for group in groups[1:]:
        contrast = f"{group} − {first}"
        equal = []
        for stem in stems:
            test = wald_test(result, f"{stem}[{group}] - {stem}[{first}] = 0")
            rows.append((stem, contrast, test.estimate[0], test.se[0], test.statistic,
                         test.df_den, test.p))
            if ".intercept" not in stem:
                equal.append(f"{stem}[{group}] = {stem}[{first}]")
        joint = wald_test(result, "; ".join(equal))
        rows.append(("all actor and partner effects", contrast, np.nan, np.nan,
                     joint.chi2 if not np.isfinite(joint.df_den) else joint.statistic,
                     joint.df_den, joint.p))
    return pd.DataFrame(rows, columns=["effect", "contrast", "difference", "se", "statistic",
                                       "df", "p"])


def compare_between(observed: FittedModel, latent: LatentAPIMResult) -> pd.DataFrame:
    """Observed-mean and latent between effects side by side.

    Parameters
    ----------
    observed : FittedModel
        An APIM with the person-mean split (between effects named
        ``role.actor.between.x``).
    latent : LatentAPIMResult
        Without a moderator.

    Returns
    -------
    DataFrame
        One row per between effect: both estimates and SEs, and the reliability of the
        predictor's person means of the role whose mean the effect is about (from the
        latent fit).
    """
    if len(latent.fits) != 1:
        raise SpecError("compare_between needs a latent APIM without a moderator")
    obs, lat = observed.effects, latent.effects
    rel = latent.reliability.set_index(["variable", "role"])["reliability"]
    roles = [str(r) for r in latent.roles]
    rows = []
    for term, row in lat[lat["level"] == "between"].iterrows():
        if term not in obs.index:
            continue
        role = str(row["outcome_role"])
        about = role if row["effect"] == "actor" else roles[1 - roles.index(role)]
        rows.append((term, row["outcome_role"], row["effect"], row["predictor"],
                     obs.loc[term, "estimate"], obs.loc[term, "se"], row["estimate"],
                     row["se"], float(rel.get((row["predictor"], about), np.nan))))
    return pd.DataFrame(rows, columns=["term", "outcome_role", "effect", "predictor",
                                       "observed", "observed_se", "latent", "latent_se",
                                       "reliability"]).set_index("term")
