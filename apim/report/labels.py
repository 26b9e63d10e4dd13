"""Words for a reader: effect, level and variance-component labels, number formats, notes.

Term names (``patient.actor.within.alliance|treatment[AFT]``) are for code; tables and
figures use the labels made here ("Actor alliance (within-person) × treatment AFT").

Examples
--------
>>> p_value(0.0004), p_value(0.0312), p_value(0.5)
('< .001', '.031', '.500')
>>> ci_label(0.95)
'95% CI'
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from apim.apa import number, p_value
from apim.model.fitted import FittedModel

__all__ = ["p_value", "number", "stars", "ci_label", "level_label", "effect_label",
           "outcome_label", "variance_label", "notes",
           "SURFACE_TERMS"]

SURFACE_TERMS = {"P": "P", "T": "T", "P2": "P²", "PxT": "P × T", "T2": "T²"}
_LEVELS = {"within": "within-person", "between": "between-person",
           "therapist": "between-therapist", "none": ""}
KINDS = {"actor": "Actor", "partner": "Partner", "actor_x_partner": "Actor × partner",
         "autoregression": "Autoregression"}


def stars(p: float) -> str:
    """``***`` p < .001, ``**`` p < .01, ``*`` p < .05."""
    if p is None or not np.isfinite(p):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


def ci_label(level: float = 0.95) -> str:
    return f"{100 * level:g}% CI"


def level_label(level: str, result: FittedModel | None = None) -> str:
    """``within`` -> "within-person" and so on, as the model means it (three-level splits
    say so)."""
    names = result.level_names() if result is not None else _LEVELS
    return names.get(level, level)


def _by_label(by: str, references: dict[str, str]) -> str:
    match = re.fullmatch(r"(.+)\[(.+)\]", by)
    if match is None:
        return by
    name, value = match.groups()
    ref = references.get(name)
    return f"{name} {value}" + (f" (vs {ref})" if ref is not None else "")


def effect_label(row: pd.Series, result: FittedModel | None = None) -> str:
    """Readable label of one row of a result's effects table; the effect of one arm of a
    multi-group model ends in "in AFT"."""
    references = result.reference_levels() if result is not None else {}
    effect, level, predictor, by = row["effect"], row["level"], row["predictor"], row["by"]
    if effect == "intercept":
        return "Intercept"
    if effect == "term":
        return str(predictor)
    if effect == "surface":
        return SURFACE_TERMS.get(predictor, predictor)
    if effect == "covariate":
        return f"{predictor} (covariate)"
    if effect == "moderator":
        return _by_label(predictor, references)
    lev = level_label(level, result)
    target, dot, relation = str(effect).rpartition(".")
    if dot:  # an effect on another variable than the outcome (dynamic APIM: "alliance.actor")
        text = (f"{KINDS.get(relation, relation)} {predictor} → {row['outcome_role']}'s "
                f"{target}" + (f" ({lev})" if lev else ""))
    else:
        text = f"{KINDS.get(effect, effect)} {predictor}" + (f" ({lev})" if lev else "")
    if by:
        text += f" × {_by_label(by, {})}"
    group = row.get("group", "")
    return f"{text} in {group}" if group else text


def outcome_label(role: str, spec: Any) -> str:
    """"Patient's outcome", "Both members' outcome" or the formula's outcome."""
    outcome = getattr(spec, "outcome", None)
    if outcome is None:
        outcome = str(getattr(spec, "formula", "y")).split("~")[0].strip()
    if not role:
        return outcome
    if role == "both":
        return f"Both members' {outcome}"
    return f"{role[:1].upper()}{role[1:]}'s {outcome}"


def variance_label(name: str) -> tuple[str, str]:
    """(level, component) of a label of :attr:`APIMResult.variance`.

    >>> variance_label("dyad sd(patient)")
    ('Dyad', 'SD of patient intercepts')
    >>> variance_label("residual cor(patient,therapist)")
    ('Session (residual)', 'Correlation patient, therapist')
    >>> variance_label("between cov(x[patient],y[patient]) in AFT")
    ('Dyad (between)', 'Covariance x[patient], y[patient] in AFT')
    >>> variance_label("dyad sd(intercept patient)")  # the generalized APIM's naming
    ('Dyad', 'SD of patient intercepts')
    >>> variance_label("dyad cor(intercepts patient, therapist)")
    ('Dyad', 'Correlation patient, therapist')
    """
    head, _, rest = str(name).partition(" ")
    level = {"dyad": "Dyad", "residual": "Session (residual)", "therapist": "Therapist",
             "within": "Session (within)", "between": "Dyad (between)"}.get(head)
    if level is None:
        return "", str(name)
    rest, _, group = rest.partition(" in ")  # the arm of a multi-group model
    if group:
        inner_level, component = variance_label(f"{head} {rest}")
        return inner_level, f"{component} in {group}"
    covariance = re.fullmatch(r"(var|cov)\((.*)\)", rest)
    if covariance is not None:
        kind, inside = covariance.groups()
        return level, ("Variance " if kind == "var" else "Covariance ") + \
            inside.replace(",", ", ")
    if head == "residual" and rest in ("", "sd"):
        return level, "SD"
    match = re.fullmatch(r"(sd|cor)\((.*)\)", rest)
    if match is None:
        return level, rest.replace("phi", "φ")
    kind, inside = match.groups()

    def part(p: str) -> str:
        p = re.sub(r"^intercepts? ", "", p.strip())  # sd(intercept patient): the role's
        bits = p.split(".")
        if head == "dyad" and len(bits) == 4:
            lev = level_label(bits[2])
            return f"{bits[0]} {bits[1]} {bits[3]} slope" + (f" ({lev})" if lev else "")
        if head == "dyad" and len(bits) == 1:
            return f"{p} intercepts" if kind == "sd" else p
        return p

    if kind == "sd":
        if head == "dyad":
            return level, f"SD of {part(inside)}"
        return level, f"SD ({inside})"
    return level, "Correlation " + ", ".join(part(p) for p in inside.split(","))


def notes(result: FittedModel, level: float = 0.95) -> list[str]:
    """The notes under an effects table: what b and the CI are, then the model's own
    notes (roles, centring, reference categories, df and SE convention, convergence)."""
    return [f"b = unstandardised estimate; {ci_label(level)} = confidence interval "
            "(LL, UL)."] + result.notes()
