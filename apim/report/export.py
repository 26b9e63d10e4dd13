"""Exports of any fitted model: APA tables in markdown, LaTeX and HTML
(:mod:`apim.report.tables`) and JSON (documented in the README).

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

from apim.model.fitted import FittedModel, jsonable
from apim.report.tables import Table, effects_table, variance_table

__all__ = ["to_markdown", "to_latex", "to_html", "to_dict", "to_json"]


def to_markdown(result: FittedModel, digits: int = 2) -> str:
    """APA-style effects and variance-component tables as markdown (with notes)."""
    return "\n\n".join(t.to_markdown() for t in _tables(result, digits))


def to_latex(result: FittedModel, digits: int = 2) -> str:
    """APA-style tables as LaTeX ``table`` environments (needs ``\\usepackage{booktabs}``)."""
    return "\n\n".join(t.to_latex() for t in _tables(result, digits))


def to_html(result: FittedModel, digits: int = 2) -> str:
    """APA-style tables as an HTML fragment (tables with their notes and a small style)."""
    first, second = _tables(result, digits)
    return first.to_html() + "\n" + second.to_html(css=False)


def _tables(result: FittedModel, digits: int) -> tuple[Table, Table]:
    return effects_table(result, digits), variance_table(result, max(digits, 3))


def to_dict(result: FittedModel) -> dict[str, Any]:
    """JSON-ready dictionary of any fitted model (its ``to_dict``; documented in the
    README)."""
    return result.to_dict()


def to_json(result: FittedModel, indent: int | None = 2) -> str:
    """:func:`to_dict` as JSON text."""
    return json.dumps(to_dict(result), indent=indent, default=jsonable)
