"""Reliability of observed person means, and the warning when it is low.

The observed-mean APIM's between effects use each person's observed mean; with few
sessions it is an unreliable measure of the person's level, and the between effects are
pulled toward the within effects (DESIGN §4). :func:`warn_if_unreliable` says so when it
happens and points to the latent APIM. Kept apart from :mod:`apim.model.latent` so that
an observed-mean fit does not load the latent model and its multivariate engine.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from apim.data.hints import current
from apim.data.session import SessionData
from apim.errors import SmallSampleWarning

__all__ = ["person_mean_reliability", "warn_if_unreliable"]


def person_mean_reliability(data: SessionData, variable: str) -> pd.DataFrame:
    """Reliability of each role's observed person means of ``variable`` from moments.

    One-way ANOVA estimates per role: ``sigma^2`` the pooled within-person variance,
    ``tau^2`` the variance of the person means minus ``sigma^2`` times the mean of
    ``1/n``; each person's ``lambda = tau^2 / (tau^2 + sigma^2 / n)``.

    Returns
    -------
    DataFrame
        One row per role: ``tau2``, ``sigma2``, ``mean_sessions``, ``reliability`` (mean
        ``lambda`` over persons).

    Examples
    --------
    >>> import apim
    >>> table = person_mean_reliability(apim.load_alliance(), "alliance")
    >>> bool(table["reliability"].between(0, 1).all())
    True
    """
    frame = data.frame
    x = data.numeric(variable).to_numpy(float)
    role, dyad = frame["role"].to_numpy(), frame["dyad"].to_numpy()
    rated = ~np.isnan(x)
    rows = []
    for r in data.roles:
        sel = (role == r) & rated
        values = x[sel]
        person, _ = pd.factorize(dyad[sel])  # one code per person of this role
        n = np.bincount(person).astype(float)
        means = np.bincount(person, weights=values) / n if len(n) else n
        dev = values - means[person]
        dof = len(values) - len(n)
        sigma2 = float((dev ** 2).sum() / dof) if dof > 0 else np.nan
        tau2 = max(float(np.var(means, ddof=1)) - sigma2 * float(np.mean(1 / n)),
                   0.0) if len(n) > 1 else np.nan
        lam = tau2 / (tau2 + sigma2 / n) if tau2 > 0 else np.zeros_like(n)
        rows.append((variable, r, tau2, sigma2, float(n.mean()), float(np.mean(lam))))
    return pd.DataFrame(rows, columns=["variable", "role", "tau2", "sigma2",
                                       "mean_sessions", "reliability"])


def warn_if_unreliable(data: SessionData, predictors: tuple[str, ...] | list[str],
                       threshold: float = 0.8) -> None:
    """Warn (:class:`SmallSampleWarning`) when a role's observed person means of a
    predictor have mean reliability below ``threshold``: observed-mean between effects
    are then pulled toward the within effects; point to :class:`LatentAPIMSpec`."""
    latent = ("add --centring latent" if current() == "cli"
              else "fit LatentAPIMSpec (the latent APIM)")
    for v in predictors:
        table = person_mean_reliability(data, v)
        low = table[table["reliability"] < threshold]
        if len(low):
            detail = ", ".join(f"{r.role} {r.reliability:.2f}" for r in low.itertuples())
            warnings.warn(SmallSampleWarning(
                f"the person means of {v!r} are unreliable (mean reliability {detail} "
                f"< {threshold}): observed-mean between effects are biased toward the "
                f"within effects; {latent} for latent between effects"), stacklevel=3)
