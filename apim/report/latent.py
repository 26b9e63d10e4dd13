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

from apim.model.latent import LatentAPIMResult
from apim.report.export import _jsonable

__all__ = ["latent_to_dict", "latent_to_json"]


def latent_to_dict(result: LatentAPIMResult) -> dict[str, Any]:
    """JSON-ready dictionary: specification, fit statistics, effects, per-group means,
    within and between covariance matrices (and phi) with SEs, reliabilities."""
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
