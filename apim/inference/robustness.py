"""Robustness companions of an APIM fit.

- :func:`within_dyad_fixed_effects`: the time-varying actor and partner effects of each
  outcome role re-estimated with dyad fixed effects (``linearmodels.PanelOLS``, entity
  effects, standard errors clustered by dyad). Dyad-level confounding cannot bias them.
- :func:`mixedlm_counterpart`: the same model fitted by statsmodels ``MixedLM``, where
  its covariance can express it (random effects per dyad, one residual variance, no
  residual correlation, no therapist level).

Examples
--------
>>> import apim
>>> result = apim.fit(apim.load_alliance(), apim.APIMSpec("outcome", ("alliance",)))
>>> fe = within_dyad_fixed_effects(result)
>>> sorted(fe["effect"].unique())
['actor', 'partner']
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from apim.errors import SpecError

if TYPE_CHECKING:
    from apim.model.result import APIMResult

__all__ = ["within_dyad_fixed_effects", "mixedlm_counterpart"]


def within_dyad_fixed_effects(result: APIMResult) -> pd.DataFrame:
    """Time-varying actor and partner effects with dyad fixed effects (PanelOLS)."""
    from linearmodels.panel import PanelOLS

    design = result.design
    frame = design.data.frame.loc[design.used]
    terms = [t for t in design.terms if t.effect in ("actor", "partner", "actor_x_partner")
             and t.level in ("within", "none") and not t.by]
    if not terms:
        raise SpecError("the model has no time-varying actor or partner effect")
    X = pd.DataFrame(design.model.X, index=frame.index, columns=[t.name for t in design.terms])
    y = pd.Series(design.model.y, index=frame.index)
    rows = []
    for role in design.outcome_roles:
        mask = np.ones(len(frame), bool) if role == "both" else (frame["role"] == role).to_numpy()
        mine = [t for t in terms if t.outcome_role == role]
        index = pd.MultiIndex.from_arrays([frame["dyad"].to_numpy()[mask],
                                           frame["session"].to_numpy()[mask]],
                                          names=["dyad", "session"])
        if role == "both":  # pooled roles: both members share a session index
            index = pd.MultiIndex.from_arrays(
                [frame["dyad"].astype(str).to_numpy() + "|" + frame["role"].to_numpy(),
                 frame["session"].to_numpy()], names=["person", "session"])
        exog = pd.DataFrame(X.loc[mask, [t.name for t in mine]].to_numpy(), index=index,
                            columns=[t.name for t in mine])
        dep = pd.Series(y[mask].to_numpy(), index=index, name="outcome")
        clusters = pd.DataFrame({"dyad": pd.factorize(frame["dyad"].to_numpy()[mask])[0]},
                                index=index)
        fe = PanelOLS(dep, exog, entity_effects=True).fit(cov_type="clustered",
                                                          clusters=clusters)
        for t in mine:
            rows.append({"outcome_role": role, "effect": t.effect, "level": t.level,
                         "predictor": t.predictor, "estimate": fe.params[t.name],
                         "se": fe.std_errors[t.name], "t": fe.tstats[t.name],
                         "p": fe.pvalues[t.name], "n_obs": int(fe.nobs)})
    return pd.DataFrame(rows)


def mixedlm_counterpart(result: APIMResult) -> pd.DataFrame:
    """Fixed effects of the statsmodels MixedLM fit of the same model, beside apim's.

    Raises
    ------
    SpecError
        When MixedLM cannot express the model (residual structure other than
        ``independent``, a therapist level, or no random effects).
    """
    import statsmodels.api as sm

    from apim.engine.mixed.random_effects import Unstructured

    model = result.design.model
    if model.residual.name != "independent" or model.therapist is not None or model.Z is None \
            or not isinstance(model.random, Unstructured):
        raise SpecError(
            "statsmodels MixedLM has one residual variance, no residual correlation, no "
            "nested levels and an unstructured random-effect covariance: it can express "
            "this APIM only with residual='independent', distinguishable dyads' random "
            "effects and no therapist level")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = sm.MixedLM(model.y, model.X, groups=model.dyad, exog_re=model.Z).fit(
            reml=result.spec.method == "REML", method=["lbfgs", "bfgs"])
    names = list(result.coef.index)
    return pd.DataFrame({"apim": result.coef.to_numpy(),
                         "apim_se": result.effects["se"].to_numpy(),
                         "mixedlm": np.asarray(fitted.fe_params)[:len(names)],
                         "mixedlm_se": np.asarray(fitted.bse_fe)[:len(names)]}, index=names)
