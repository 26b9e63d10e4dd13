"""Exports of a fitted APIM: markdown, LaTeX, HTML and JSON (documented in the README).

Examples
--------
>>> import apim
>>> result = apim.fit(apim.load_alliance(), apim.APIMSpec("outcome", ("alliance",)))
>>> to_markdown(result).splitlines()[0].startswith("| term |")
True
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from apim.engine.fit import BOUNDARY_NOTE
from apim.model.result import APIMResult

__all__ = ["to_frame", "to_markdown", "to_latex", "to_html", "to_dict", "to_json"]


def to_frame(result: APIMResult) -> pd.DataFrame:
    """The effects table as a DataFrame (a copy)."""
    return result.effects.reset_index()


def to_markdown(result: APIMResult, digits: int = 3) -> str:
    """The effects table as a markdown pipe table."""
    return _pipe_table(result.effects.reset_index(), digits)


def to_latex(result: APIMResult, digits: int = 3) -> str:
    """The effects table as a LaTeX tabular."""
    table = result.effects.reset_index()
    cols = list(table.columns)
    lines = [r"\begin{tabular}{" + "l" * 6 + "r" * (len(cols) - 6) + "}", r"\hline",
             " & ".join(c.replace("_", r"\_") for c in cols) + r" \\", r"\hline"]
    for _, row in table.iterrows():
        cells = [_fmt(v, digits).replace("_", r"\_").replace("|", r"$\mid$")
                 for v in row]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines)


def to_html(result: APIMResult, digits: int = 3) -> str:
    """The effects table as an HTML table."""
    return result.effects.reset_index().to_html(
        index=False, float_format=lambda v: f"{v:.{digits}f}")


def to_dict(result: APIMResult) -> dict[str, Any]:
    """JSON-ready dictionary (documented in the README)."""
    from apim import __version__

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


def to_json(result: APIMResult, indent: int | None = 2) -> str:
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


def _fmt(value: Any, digits: int) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"
    return str(value)


def _pipe_table(table: pd.DataFrame, digits: int) -> str:
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(_fmt(v, digits) for v in row) + " |")
    return "\n".join(lines)
