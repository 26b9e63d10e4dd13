"""Reports of fitted models: exports now; APA tables, figures and HTML reports later."""

from apim.report.export import (
    to_dict,
    to_frame,
    to_html,
    to_json,
    to_latex,
    to_markdown,
)

__all__ = ["to_frame", "to_markdown", "to_latex", "to_html", "to_dict", "to_json"]
