"""The dynamic APIM side by side with the person-mean-centred lag-1 model on the same data,
in one call: how much of a lagged effect the centring bias (Nickell, 1981; Hamaker &
Grasman, 2015) moves.

The person-mean-centred model is the observed-mean APIM (ML) of the outcome at session t
on the person-centred predictors and the person-centred outcome at session t-1 (a copy of
the outcome column, lagged by session number), actor and partner, with random intercepts
per dyad: the model a researcher fits with ``--lag 1`` plus the prior outcome. Its lagged
effects are biased toward negative values by about ``-(1 + phi) / (T - 1)`` with ``T``
sessions; the dynamic APIM's are not.

Examples
--------
>>> import apim
>>> frame = apim.load_alliance().to_long()
>>> part = frame[frame["dyad"].isin(frame["dyad"].unique()[:40]) & (frame["session"] <= 6)]
>>> data = apim.SessionData.from_long(part, dyad="dyad", session="session", role="role")
>>> comparison = compare_centring(data, apim.DynamicAPIMSpec("outcome", ("alliance",),
...                                                          initial="stationary"))
>>> list(comparison.table.index[:2])
['patient.actor.lagged.alliance', 'patient.partner.lagged.alliance']
>>> list(comparison.table.columns)
['dynamic', 'dynamic_se', 'centred', 'centred_se', 'difference']
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import pandas as pd

from apim.data.session import SessionData
from apim.errors import SpecError
from apim.model.centring import DecompositionSpec
from apim.model.dynamic_result import DynamicAPIMResult
from apim.model.dynamic_spec import DynamicAPIMSpec
from apim.model.registry import fit
from apim.model.result import APIMResult
from apim.model.spec import APIMSpec

__all__ = ["CentringComparison", "compare_centring"]


@dataclass(frozen=True, eq=False)
class CentringComparison:
    """Both fits and their lagged effects side by side.

    Attributes
    ----------
    dynamic : the dynamic APIM
    centred : the person-mean-centred lag-1 APIM
    table : per lagged effect of the outcome's equation: both estimates and SEs and the
        difference (centred minus dynamic)
    """

    dynamic: DynamicAPIMResult
    centred: APIMResult = field(repr=False)
    table: pd.DataFrame = field(repr=False)


def compare_centring(data: SessionData, spec: DynamicAPIMSpec) -> CentringComparison:
    """Fit ``spec`` and the person-mean-centred lag-1 model of the same outcome and
    predictors to ``data`` and put their lagged effects side by side."""
    if not isinstance(spec, DynamicAPIMSpec):
        raise SpecError(f"spec must be a DynamicAPIMSpec, not {type(spec).__name__}")
    if spec.moderator is not None:
        raise SpecError("compare_centring compares one group: fit each group's dyads "
                        "separately (drop the moderator)")
    copy = f"{spec.outcome}_previous"
    if copy in data.frame.columns:
        raise SpecError(f"the data already have a column {copy!r}; rename it to compare "
                        "with the person-mean-centred model")
    dynamic = fit(data, spec)
    frame = data.frame.drop(columns="row").copy()
    frame[copy] = data.numeric(spec.outcome).to_numpy()
    lagged_data = SessionData.from_long(frame, dyad="dyad", session="session", role="role",
                                        roles=data.roles)
    centred_spec = APIMSpec(spec.outcome, (*spec.predictors, copy),
                            decomposition=DecompositionSpec(lag=1), method="ML")
    with warnings.catch_warnings():  # the reliability warning is about between effects
        warnings.simplefilter("ignore")
        centred = fit(lagged_data, centred_spec)
    rows = []
    dyn, cen = dynamic.effects, centred.effects
    for role in data.roles:
        pairs = [(f"{role}.{rel}.lagged.{v}", f"{role}.{rel}.within.{v}")
                 for v in spec.predictors for rel in ("actor", "partner")]
        pairs += [(f"{role}.autoregression.lagged.{spec.outcome}",
                   f"{role}.actor.within.{copy}"),
                  (f"{role}.partner.lagged.{spec.outcome}", f"{role}.partner.within.{copy}")]
        for ours, theirs in pairs:
            if ours in dyn.index and theirs in cen.index:
                a, b = dyn.loc[ours], cen.loc[theirs]
                rows.append((ours, a["estimate"], a["se"], b["estimate"], b["se"],
                             b["estimate"] - a["estimate"]))
    table = pd.DataFrame(rows, columns=["term", "dynamic", "dynamic_se", "centred",
                                        "centred_se", "difference"]).set_index("term")
    return CentringComparison(dynamic, centred, table)
