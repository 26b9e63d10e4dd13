"""Simple slopes and Johnson-Neyman regions for moderated and interacting effects.

An effect ``b`` moderated by ``m`` through ``c`` (``b + c m``) has at moderator value ``m``
the simple slope ``b + c m`` with variance ``v_b + 2 m v_bc + m^2 v_c``. The
Johnson-Neyman boundaries are the ``m`` where ``|slope| / se = t_crit``: the roots of
``(c^2 - t^2 v_c) m^2 + 2 (b c - t^2 v_bc) m + (b^2 - t^2 v_b) = 0``.

The moderating term is either a moderator's ``by`` term (``patient.actor.within.alliance|
treatment[AFT]``) or, for an actor effect, the actor x partner interaction (the actor
effect at given values of the partner's part).

Examples
--------
>>> import apim
>>> spec = apim.APIMSpec("outcome", ("alliance",), moderators=("treatment",))
>>> result = apim.fit(apim.load_alliance(), spec)
>>> table = simple_slopes(result, "patient.actor.within", "treatment[AFT]", at=[0, 1])
>>> len(table)
2
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from apim.engine.distributions import stats
from apim.errors import SpecError
from apim.inference.wald import contrast_matrix
from apim.model.fitted import FittedModel

__all__ = ["simple_slopes", "johnson_neyman", "JohnsonNeyman"]


def _pair(result: FittedModel, effect: str, moderator: str) -> tuple[int, int]:
    names = list(result.coef.index)
    L, _ = contrast_matrix(effect, names)
    i = int(np.flatnonzero(L[0])[0])
    base = names[i]
    candidates = [f"{base}|{moderator}"]
    head = base.split(".")
    if head[1] == "actor" and moderator in ("partner", "actor_x_partner"):
        candidates.append(".".join([head[0], "actor_x_partner", *head[2:]]))
    for c in candidates:
        if c in names:
            return i, names.index(c)
    found = [n[len(base) + 1:] for n in names if n.startswith(base + "|")]
    if head[1] == "actor" and ".".join([head[0], "actor_x_partner", *head[2:]]) in names:
        found.append("partner")
    if not found:
        raise SpecError(f"nothing moderates {base!r} in this model: fit it with a moderator "
                        "(moderators=...) or with the actor x partner interaction "
                        "(interaction=True) first")
    raise SpecError(f"{moderator!r} does not moderate {base!r} in this model; what does: "
                    f"{', '.join(repr(f) for f in found)}")


def _slope_table(result: FittedModel, i: int, j: int, at: np.ndarray) -> pd.DataFrame:
    beta, cov = result.coef.to_numpy(), result.cov_coef.to_numpy()
    df = float(min(result.df_values().iloc[i], result.df_values().iloc[j]))
    slope = beta[i] + beta[j] * at
    se = np.sqrt(cov[i, i] + 2 * at * cov[i, j] + at ** 2 * cov[j, j])
    t = slope / se
    crit = stats.t.ppf(0.975, df)
    return pd.DataFrame({"at": at, "slope": slope, "se": se, "df": df, "t": t,
                         "p": 2 * stats.t.sf(np.abs(t), df), "ci_low": slope - crit * se,
                         "ci_high": slope + crit * se})


def simple_slopes(result: FittedModel, effect: str, moderator: str,
                  at: Sequence[float] | None = None) -> pd.DataFrame:
    """Simple slopes of ``effect`` at values ``at`` of the moderator.

    Parameters
    ----------
    result : FittedModel
    effect : str
        Effect name (as in Wald hypotheses), e.g. ``"patient.actor.within"``.
    moderator : str
        The ``by`` label of the moderated term (``"treatment[AFT]"``), or
        ``"partner"`` for the actor effect at values of the partner's part (needs
        ``interaction=True``).
    at : values of the moderator; default: 0 and 1 for a 0/1 moderator, else the mean
        and +-1 SD of the moderating column in the fitted rows.
    """
    i, j = _pair(result, effect, moderator)
    if at is None:
        values = _moderator_values(result, i, j)
        at = [0.0, 1.0] if set(np.unique(values)) <= {0.0, 1.0} else \
            [values.mean() - values.std(), values.mean(), values.mean() + values.std()]
    return _slope_table(result, i, j, np.asarray(at, float))


def _moderator_values(result: FittedModel, i: int, j: int) -> np.ndarray:
    """The moderator's values in the fitted rows where the effect's column is non-zero
    (the moderated column divided by the effect's column)."""
    design = result.design_matrix()
    if design is None:
        return np.array([])
    X = design.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        column = X[:, j] / np.where(X[:, i] != 0, X[:, i], np.nan)
    return column[np.isfinite(column)]


@dataclass(frozen=True)
class JohnsonNeyman:
    """Moderator values where the simple slope changes significance.

    ``bounds`` are the real roots (sorted); ``significant_inside`` tells whether the slope
    is significant between them (else outside them). ``observed_range`` is the smallest
    and largest moderator value in the fitted rows; ``outside_range`` flags each bound
    that lies outside it (a region there is an extrapolation: no data support it).
    """

    effect: str
    moderator: str
    bounds: tuple[float, ...]
    significant_inside: bool
    alpha: float
    observed_range: tuple[float, float] = (float("nan"), float("nan"))
    outside_range: tuple[bool, ...] = ()

    def __str__(self) -> str:
        low, high = self.observed_range
        if not self.bounds:
            where = "no bound: significance does not change"
        else:
            marks = [f"{b:.4g}{' (outside the observed range)' if out else ''}"
                     for b, out in zip(self.bounds, self.outside_range)]
            side = "between" if self.significant_inside else "outside"
            where = f"significant {side} {' and '.join(marks)}"
        return (f"Johnson-Neyman region of {self.effect} over {self.moderator} "
                f"(alpha {self.alpha:g}): {where}; observed {self.moderator} "
                f"{low:.4g} to {high:.4g}")


def johnson_neyman(result: FittedModel, effect: str, moderator: str,
                   alpha: float = 0.05) -> JohnsonNeyman:
    """Johnson-Neyman region of ``effect`` over the moderator (see the module docstring),
    with the observed moderator range beside it and each bound outside it flagged."""
    i, j = _pair(result, effect, moderator)
    beta, cov = result.coef.to_numpy(), result.cov_coef.to_numpy()
    df = float(min(result.df_values().iloc[i], result.df_values().iloc[j]))
    t2 = stats.t.ppf(1 - alpha / 2, df) ** 2
    b, c = beta[i], beta[j]
    qa = c * c - t2 * cov[j, j]
    qb = 2 * (b * c - t2 * cov[i, j])
    qc = b * b - t2 * cov[i, i]
    disc = qb * qb - 4 * qa * qc
    if abs(qa) < 1e-15 or disc < 0:
        bounds: tuple[float, ...] = ()
    else:
        roots = np.sort([(-qb - np.sqrt(disc)) / (2 * qa), (-qb + np.sqrt(disc)) / (2 * qa)])
        bounds = tuple(float(r) for r in roots)
    middle = np.mean(bounds) if bounds else 0.0
    inside = bool(qa * middle ** 2 + qb * middle + qc > 0)
    values = _moderator_values(result, i, j)
    low, high = (float(values.min()), float(values.max())) if values.size else \
        (float("nan"), float("nan"))
    return JohnsonNeyman(effect=effect, moderator=moderator, bounds=bounds,
                         significant_inside=inside, alpha=alpha, observed_range=(low, high),
                         outside_range=tuple(not low <= b <= high for b in bounds))
