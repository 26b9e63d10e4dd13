"""Tests and tables for latent APIMs (:class:`apim.model.latent.LatentAPIMResult`).

- :func:`latent_wald_test`: Wald tests of linear hypotheses written with effect names, as
  :func:`apim.inference.wald.wald_test` (same hypothesis syntax, same :class:`WaldTest`),
  with normal-theory reference distributions (z, chi-square; ``df_den = inf``), as lavaan.
- :func:`arm_differences`: in a multi-group (moderator) model, each effect's difference
  between every other group and the first, with its Wald test, plus one joint test per
  group of all actor and partner effects being equal.
- :func:`compare_between`: observed-mean and latent between effects side by side, with the
  reliability of the predictor's person means.

Examples
--------
>>> import apim
>>> from apim.model.latent import LatentAPIMSpec
>>> result = apim.fit(apim.load_alliance(), LatentAPIMSpec("outcome", ("alliance",)))
>>> test = latent_wald_test(result, "patient.actor.between = patient.actor.within")
>>> test.df_num
1
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from apim.engine.distributions import stats
from apim.errors import SpecError
from apim.inference.wald import WaldTest, contrast_matrix
from apim.model.latent import LatentAPIMResult
from apim.model.result import APIMResult

__all__ = ["latent_wald_test", "arm_differences", "compare_between"]


def latent_wald_test(result: LatentAPIMResult, hypothesis: str) -> WaldTest:
    """Test ``hypothesis`` (equations separated by ``;``) on a latent APIM.

    One equation gives a z test (reported as ``statistic`` with ``df_den = inf``), several
    a chi-square test (``statistic`` is chi2 / q, its p from the chi-square).
    """
    names = list(result.coef.index)
    L, c = contrast_matrix(hypothesis, names)
    beta, cov = result.coef.to_numpy(), result.cov_coef.to_numpy()
    diff = L @ beta - c
    lcl = L @ cov @ L.T
    q = L.shape[0]
    if np.linalg.matrix_rank(lcl) < q:
        raise SpecError("the equations of the hypothesis are not linearly independent")
    se = np.sqrt(np.diag(lcl))
    chi2 = float(diff @ np.linalg.solve(lcl, diff))
    p_chi2 = float(stats.chi2.sf(chi2, q))
    statistic = float(diff[0] / se[0]) if q == 1 else chi2 / q
    return WaldTest(hypothesis=hypothesis, estimate=tuple(map(float, diff)),
                    se=tuple(map(float, se)), statistic=statistic, df_num=q,
                    df_den=float("inf"), p=p_chi2, chi2=chi2, p_chi2=p_chi2)


def arm_differences(result: LatentAPIMResult) -> pd.DataFrame:
    """Differences of every effect between groups (each group against the first).

    Returns
    -------
    DataFrame
        One row per effect and group: ``difference``, ``se``, ``z``, ``p``; then one row
        per group with effect ``all actor and partner effects`` holding the joint chi-square
        (in ``z``: chi2, and its p).
    """
    groups = list(result.fits)
    if len(groups) < 2:
        raise SpecError("arm differences need a multi-group model (LatentAPIMSpec with a "
                        "moderator)")
    first = groups[0]
    stems = [n[: -len(f"[{first}]")] for n in result.coef.index if n.endswith(f"[{first}]")]
    rows = []
    for group in groups[1:]:
        effects = []
        for stem in stems:
            test = latent_wald_test(result, f"{stem}[{group}] - {stem}[{first}] = 0")
            rows.append((stem, f"{group} - {first}", test.estimate[0], test.se[0],
                         test.statistic, test.p))
            if ".intercept" not in stem:
                effects.append(f"{stem}[{group}] = {stem}[{first}]")
        joint = latent_wald_test(result, "; ".join(effects))
        rows.append(("all actor and partner effects", f"{group} - {first}", np.nan, np.nan,
                     joint.chi2, joint.p))
    return pd.DataFrame(rows, columns=["effect", "contrast", "difference", "se", "z", "p"])


def compare_between(observed: APIMResult, latent: LatentAPIMResult) -> pd.DataFrame:
    """Observed-mean and latent between effects side by side.

    Parameters
    ----------
    observed : APIMResult
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
