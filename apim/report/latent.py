"""JSON export of a latent APIM (:class:`apim.model.latent.LatentAPIMResult`).

The effects table also goes through :func:`apim.report.to_markdown`, ``to_latex`` and
``to_html`` unchanged (they read only ``result.effects``).

Examples
--------
>>> import apim, json
>>> from apim.model.latent import LatentAPIMSpec
>>> result = apim.fit(apim.load_alliance(), LatentAPIMSpec("outcome", ("alliance",)))
>>> sorted(json.loads(latent_to_json(result)))[:4]
['aic', 'bic', 'boundary', 'converged']
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from apim.model.latent import LatentAPIMResult
from apim.report import labels as lab
from apim.report.export import _jsonable
from apim.report.tables import Table

__all__ = ["latent_to_dict", "latent_to_json"]


def latent_to_dict(result: LatentAPIMResult) -> dict[str, Any]:
    """JSON-ready dictionary: specification, fit statistics, effects, per-group means,
    within, between and (with a therapist level; else None) therapist covariance matrices
    (and phi) with SEs, reliabilities."""
    from apim import __version__

    stats = result.statistics
    fixed = [{"term": name, **{k: _jsonable(v) for k, v in row.items()}}
             for name, row in result.effects.iterrows()]
    groups = {}
    for group, fit in result.fits.items():
        se = np.sqrt(np.clip(np.diag(fit.cov), 0, None))
        groups[group] = {
            "variables": list(fit.names), "n_obs": fit.n_obs, "n_dyads": fit.n_clusters,
            "loglik": fit.loglik, "converged": fit.converged, "message": fit.message,
            "means": fit.mu.tolist(), "sigma_within": fit.sigma_w.tolist(),
            "sigma_between": fit.sigma_b.tolist(), "phi": fit.phi,
            "n_therapists": fit.n_therapists,
            "therapist_covariance": fit.therapist_covariance,
            "sigma_therapist": None if fit.sigma_t is None else fit.sigma_t.tolist(),
            "parameters": {n: {"estimate": float(e), "se": float(s)}
                           for n, e, s in zip(fit.parameter_names, fit.estimate, se)},
        }
    return {"version": __version__, "model": "latent",
            "specification": result.spec.to_dict(),
            **{k: _jsonable(v) for k, v in stats.items()},
            "boundary": list(result.boundary), "df": "normal (z tests)",
            "fixed": fixed, "groups": groups,
            "reliability": [{k: _jsonable(v) for k, v in row.items()}
                            for row in result.reliability.to_dict("records")]}


def latent_to_json(result: LatentAPIMResult, indent: int | None = 2) -> str:
    """:func:`latent_to_dict` as JSON text."""
    return json.dumps(latent_to_dict(result), indent=indent, default=_jsonable)


def latent_effects_table(result: LatentAPIMResult, digits: int = 2) -> Table:
    """The latent APIM's effects as an APA-style table (z tests, delta-method SEs).

    Examples
    --------
    >>> import apim
    >>> fit = apim.fit(apim.load_alliance(), apim.LatentAPIMSpec("outcome", ("alliance",)))
    >>> latent_effects_table(fit).to_markdown().splitlines()[0]
    '**Fixed effects (latent between-person means)**'
    """
    eff = result.effects
    s = result.statistics
    frame = pd.DataFrame({
        ("Outcome", ""): [lab.outcome_label(r, result.spec) for r in eff["outcome_role"]],
        ("Effect", ""): [lab.effect_label(row, result.spec, {}) for _, row in eff.iterrows()],
        ("Group", ""): [row["by"] or "all" for _, row in eff.iterrows()],
        ("b", ""): [lab.number(v, digits) for v in eff["estimate"]],
        ("SE", ""): [lab.number(v, digits) for v in eff["se"]],
        ("z", ""): [lab.number(v, 2) for v in eff["t"]],
        ("p", ""): [lab.p_value(v) for v in eff["p"]],
        ("95% CI", "LL"): [lab.number(v, digits) for v in eff["ci_low"]],
        ("95% CI", "UL"): [lab.number(v, digits) for v in eff["ci_high"]],
    })
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    therapists = f" of {s['n_therapists']} therapists" if s["n_therapists"] else ""
    header = (f"{result.model_line()}; {s['n_obs']} ratings from {s['n_dyads']} dyads"
              f"{therapists}; logLik = {lab.number(s['loglik'], 2)}")
    notes: tuple[str, ...] = (
        "Between-person effects are regressions on the latent person means; SEs by "
        "the delta method from the observed information; z tests, as lavaan reports "
        "them.",)
    if result.spec.therapist_level:
        notes += ("Between-dyad effects are within therapists (dyad-level covariance "
                  "around the therapist's level); between-therapist effects are the "
                  "regressions implied by the therapist-level covariance."
                  if result.spec.therapist_covariance == "unstructured" else
                  "Between-dyad effects are within therapists; the therapist-level "
                  "covariance is diagonal (no therapist-level effects).",)
    return Table(title="Fixed effects (latent between-person means)", header=header,
                 frame=frame, notes=notes, left=3)
