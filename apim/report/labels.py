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

import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from apim.model.spec import APIMSpec

if TYPE_CHECKING:
    from apim.model.result import APIMResult

__all__ = ["p_value", "number", "stars", "ci_label", "level_label", "effect_label",
           "outcome_label", "variance_label", "moderator_references", "notes",
           "SURFACE_TERMS"]

SURFACE_TERMS = {"P": "P", "T": "T", "P2": "P²", "PxT": "P × T", "T2": "T²"}
KINDS = {"actor": "Actor", "partner": "Partner", "actor_x_partner": "Actor × partner"}


def p_value(p: float) -> str:
    """APA p: no leading zero, three decimals, ``< .001`` below that."""
    if p is None or not np.isfinite(p):
        return "—"
    if p < 0.001:
        return "< .001"
    return f"{p:.3f}".replace("0.", ".", 1) if p < 1 else "1.000"


def number(value: Any, digits: int = 2) -> str:
    """A number with ``digits`` decimals and a true minus sign (kept on a rounded zero, so a
    CI bound just below zero reads −0.00); missing as an em dash.

    >>> number(-0.004), number(float("nan"))
    ('−0.00', '—')
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{float(value):.{digits}f}".replace("-", "−")


def stars(p: float) -> str:
    """``***`` p < .001, ``**`` p < .01, ``*`` p < .05."""
    if p is None or not np.isfinite(p):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


def ci_label(level: float = 0.95) -> str:
    return f"{100 * level:g}% CI"


def level_label(level: str, spec: Any = None) -> str:
    """``within`` -> "within-person" and so on (three-level splits say so)."""
    three = (isinstance(spec, APIMSpec) and spec.decomposition.center == "therapist") \
        or getattr(spec, "therapist_level", False) is True  # a latent APIM's third level
    return {"within": "within-person",
            "between": "between-dyad, within therapist" if three else "between-person",
            "therapist": "between-therapist", "none": ""}.get(level, level)


def _by_label(by: str, references: dict[str, str]) -> str:
    match = re.fullmatch(r"(.+)\[(.+)\]", by)
    if match is None:
        return by
    name, value = match.groups()
    ref = references.get(name)
    return f"{name} {value}" + (f" (vs {ref})" if ref is not None else "")


def effect_label(row: pd.Series, spec: Any = None,
                 references: dict[str, str] | None = None) -> str:
    """Readable label of one row of :attr:`APIMResult.effects`."""
    references = references or {}
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
    lev = level_label(level, spec)
    text = f"{KINDS.get(effect, effect)} {predictor}" + (f" ({lev})" if lev else "")
    if by:
        text += f" × {_by_label(by, {})}"
    return text


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
    """
    head, _, rest = str(name).partition(" ")
    level = {"dyad": "Dyad", "residual": "Session (residual)",
             "therapist": "Therapist"}.get(head)
    if level is None:
        return "", str(name)
    if head == "residual" and rest in ("", "sd"):
        return level, "SD"
    match = re.fullmatch(r"(sd|cor)\((.*)\)", rest)
    if match is None:
        return level, rest.replace("phi", "φ")
    kind, inside = match.groups()

    def part(p: str) -> str:
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


def moderator_references(result: APIMResult) -> dict[str, str]:
    """Reference category of every categorical moderator (as the design codes it)."""
    spec = result.spec
    out: dict[str, str] = {}
    if not isinstance(spec, APIMSpec):
        return out
    frame = result.design.data.frame
    for m in spec.moderators:
        values = frame[m]
        if pd.api.types.is_numeric_dtype(values) and values.dropna().nunique() > 2:
            continue
        if isinstance(values.dtype, pd.CategoricalDtype):
            levels = [c for c in values.cat.categories if (values == c).any()]
        else:
            levels = sorted(values.dropna().unique(), key=str)
        out[m] = str(levels[0])
    return out


def notes(result: APIMResult, level: float = 0.95) -> list[str]:
    """The notes under an effects table: reference categories, df method, SE convention."""
    spec = result.spec
    out = [f"b = unstandardised estimate; {ci_label(level)} = confidence interval "
           "(LL, UL)."]
    if isinstance(spec, APIMSpec):
        if spec.distinguishable:
            out.append(f"Roles: {result.roles[0]} (reference) and {result.roles[1]}; "
                       "actor and partner effects are estimated for each outcome role.")
        else:
            out.append("Indistinguishable dyads: one intercept and effects pooled over "
                       "roles.")
        center = spec.decomposition.center
        if center in ("person", "therapist"):
            out.append("Within-person: a session's deviation from the person's own mean; "
                       "between: the person's mean centred on the mean of their role"
                       + (" (between-therapist: the therapist's mean)."
                          if center == "therapist" else "."))
        refs = moderator_references(result)
        for m in spec.moderators:
            if m in refs:
                out.append(f"Moderator {m}: reference category {refs[m]}; "
                           f"terms × {m} are differences from {refs[m]}.")
            else:
                out.append(f"Moderator {m} is numeric: effects are at {m} = 0.")
    df = ("Satterthwaite approximation" if result.df == "satterthwaite"
          else "containment (nlme's rule)")
    out.append(f"df: {df}.")
    if result.engine.method == "ML":
        out.append("ML standard errors from (X′V⁻¹X)⁻¹, as vcov() in R and SAS report "
                   "them; nlme's summary() multiplies them by √(N/(N − p)).")
    else:
        out.append("REML estimates; standard errors from (X′V⁻¹X)⁻¹.")
    if not result.engine.converged:
        out.append(f"The fit did NOT converge: {result.engine.message}.")
    if result.engine.boundary:
        out.append("Boundary estimate: " + "; ".join(result.engine.boundary) + ".")
    n_dropped = sum(len(e.rows) for e in result.design.dropped)
    if n_dropped:
        out.append(f"{n_dropped} rows of the data were not used (missing values; listed "
                   "with their reasons in result.dropped and the HTML report).")
    return out
