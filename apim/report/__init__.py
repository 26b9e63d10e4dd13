"""Reports of fitted models: APA tables, figures, JSON and self-contained HTML reports.

- :mod:`apim.report.tables`: effects, variance-component and side-by-side tables in
  markdown, LaTeX (booktabs) and HTML;
- :mod:`apim.report.export`: one-call exports of a result (markdown, LaTeX, HTML, JSON);
- :mod:`apim.report.figures`: path diagram, simple slopes, response surface,
  trajectories, residual diagnostics (matplotlib, the ``plot`` extra);
- :mod:`apim.report.html`: one HTML report per fit;
- :mod:`apim.report.docx`, :mod:`apim.report.docx_report`: the APA tables and the fit
  report as Word documents (python-docx, the ``docx`` extra).
"""

from apim.report.export import (
    to_dict,
    to_html,
    to_json,
    to_latex,
    to_markdown,
)
from apim.report.html import fit_report
from apim.report.tables import Table, compare_table, effects_table, variance_table

__all__ = ["to_markdown", "to_latex", "to_html", "to_dict", "to_json",
           "effects_table", "variance_table", "compare_table", "Table", "fit_report"]
