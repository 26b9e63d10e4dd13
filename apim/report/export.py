"""Exports of a fitted APIM: APA tables in markdown, LaTeX and HTML (:mod:`apim.report.tables`)
and JSON (documented in the README).

Examples
--------
>>> import apim
>>> result = apim.fit(apim.load_alliance(), apim.APIMSpec("outcome", ("alliance",)))
>>> to_markdown(result).splitlines()[0]
'**Fixed effects**'
>>> "**Variance components**" in to_markdown(result)
True
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from apim.engine.mixed.estimate import BOUNDARY_NOTE
from apim.model.latent import LatentAPIMResult
from apim.model.result import APIMResult
from apim.report.tables import Table, effects_table, variance_table

__all__ = ["to_markdown", "to_latex", "to_html", "to_dict", "to_json"]


def to_markdown(result: APIMResult | LatentAPIMResult, digits: int = 2) -> str:
    """APA-style effects and variance-component tables as markdown (with notes)."""
    return "\n\n".join(t.to_markdown() for t in _tables(result, digits))


def to_latex(result: APIMResult | LatentAPIMResult, digits: int = 2) -> str:
    """APA-style tables as LaTeX ``table`` environments (needs ``\\usepackage{booktabs}``)."""
    return "\n\n".join(t.to_latex() for t in _tables(result, digits))


def to_html(result: APIMResult | LatentAPIMResult, digits: int = 2) -> str:
    """APA-style tables as an HTML fragment (tables with their notes and a small style)."""
    if isinstance(result, LatentAPIMResult):
        return _tables(result, digits)[0].to_html()
    first, second = _tables(result, digits)
    return first.to_html() + "\n" + second.to_html(css=False)


def _tables(result: APIMResult | LatentAPIMResult, digits: int) -> tuple[Table, ...]:
    if isinstance(result, LatentAPIMResult):
        from apim.report.latent import latent_effects_table

        return (latent_effects_table(result, digits),)
    return effects_table(result, digits), variance_table(result, max(digits, 3))


def to_dict(result: APIMResult | LatentAPIMResult) -> dict[str, Any]:
    """JSON-ready dictionary (documented in the README); latent fits as
    :func:`apim.report.latent.latent_to_dict`."""
    from apim import __version__

    if isinstance(result, LatentAPIMResult):
        from apim.report.latent import latent_to_dict

        return latent_to_dict(result)

    fit = result.engine
    records = result.parameters
    residual_sd = {}
    for p in records:
        if p.level == "residual" and p.kind == "sd":
            for r in p.roles:
                residual_sd[result.roles[r]] = p.estimate

    def first(level: str, kind: str) -> float | None:
        return next((p.estimate for p in records if p.level == level and p.kind == kind),
                    None)

    variance = {
        "random_effects": list(fit.model.z_names),
        "G": fit.G.tolist() if fit.G is not None else None,
        "residual_sd": residual_sd,
        "residual_correlation": first("residual", "cor"),
        "ar1_phi": first("residual", "phi"),
        "therapist_sd": first("therapist", "sd"),
        "parameters": [{"label": result.parameter_label(p), "level": p.level,
                        "kind": p.kind, "effects": list(p.effects),
                        "roles": [result.roles[r] for r in p.roles], "pooled": p.pooled,
                        "estimate": _jsonable(p.estimate), "se": _jsonable(p.se),
                        "at_boundary": p.at_boundary} for p in records],
        "table": {k: {"estimate": v["estimate"], "se": v["se"],
                      "at_boundary": bool(v["at_boundary"])}
                  for k, v in result.variance.iterrows()},
    }
    fixed = [{"term": name, **{k: _jsonable(v) for k, v in row.items()}}
             for name, row in result.effects.iterrows()]
    return {
        "version": __version__, "specification": result.spec.to_dict(),
        "n_obs": fit.n_obs, "n_dyads": fit.n_dyads, "method": fit.method,
        "loglik": fit.loglik, "aic": fit.aic, "bic": fit.bic,
        "converged": fit.converged, "message": fit.message,
        "boundary": list(fit.boundary),
        "boundary_note": BOUNDARY_NOTE if fit.boundary else None,
        "fit_seconds": fit.fit_seconds, "df": result.df,
        "fixed": fixed, "variance": variance,
        "dropped": [{"reason": e.reason, "rows": list(e.rows)} for e in result.design.dropped],
    }


def to_json(result: APIMResult | LatentAPIMResult, indent: int | None = 2) -> str:
    """:func:`to_dict` as JSON text."""
    return json.dumps(to_dict(result), indent=indent, default=_jsonable)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
