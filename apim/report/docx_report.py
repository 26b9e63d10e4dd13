"""The fit report as a Word document (``.docx``; python-docx, the ``docx`` extra): the
model, the data report, the APA tables of :mod:`apim.report.docx` (effects, variance
components, dyadic patterns), the rows not used and the warnings; the HTML report's
content without the figures.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from typing import Any

from apim._version import __version__
from apim.data.report import DataReport
from apim.errors import format_rows
from apim.model.fitted import FittedModel
from apim.report.docx import (
    TEXT_PT,
    add_table,
    borders,
    new_document,
    plain,
    save,
    set_widths,
    write_cell,
)
from apim.report.html import fitted_data_report, patterns_frame
from apim.report.tables import Table, effects_table, variance_table

__all__ = ["fit_report_docx"]

_NONE = {"val": "nil"}


def _facts_table(document: Any, facts: Sequence[tuple[str, str]]) -> None:
    word = document.add_table(rows=len(facts), cols=2)
    for i, (key, value) in enumerate(facts):
        write_cell(word.cell(i, 0), key, "left", size=TEXT_PT)
        write_cell(word.cell(i, 1), value, "left", size=TEXT_PT)
    set_widths(word, [1.8, 4.7])
    borders(word._tbl.tblPr, "w:tblBorders", dict.fromkeys(
        ("top", "bottom", "left", "right", "insideH", "insideV"), _NONE))


def _data_section(document: Any, report: DataReport) -> None:
    from docx.shared import Pt

    lo, med, hi = report.sessions_per_dyad
    facts = [("Source", report.source),
             ("Roles", f"{report.roles[0]} (reference), {report.roles[1]}"),
             ("Rows", f"{report.n_rows} (" + ", ".join(
                 f"{r} {n}" for r, n in report.rows_per_role.items()) + ")"),
             ("Dyads", str(report.n_dyads)), ("Persons", str(report.n_persons))]
    if report.n_therapists:
        facts.append(("Therapists", str(report.n_therapists)))
    facts += [("Dyad-sessions", str(report.n_sessions)),
              ("Sessions per dyad", f"min {lo:g}, median {med:g}, max {hi:g}")]
    _facts_table(document, facts)
    lines = [f"{report.unused_heading}: {e.reason} ({len(e.rows)} rows: "
             f"{format_rows(e.rows)})" for e in report.exclusions]
    for text in lines + [f"Warning: {w}" for w in report.warnings]:
        document.add_paragraph(plain(text)).paragraph_format.space_before = Pt(6)


def fit_report_docx(result: FittedModel, path: str | os.PathLike[str], *,
                    data_report: DataReport | None = None, warnings: Sequence[str] = (),
                    title: str | None = None, digits: int = 2) -> None:
    """The fit report as a Word document: the model, the data report, the APA tables
    (effects, variance components, dyadic patterns), the rows not used and the warnings
    (the HTML report's content without the figures).

    Parameters
    ----------
    result : FittedModel
    path : path
        The ``.docx`` file to write (atomically).
    data_report : DataReport, optional
        Default: the report of the fitted data on the variables of the model.
    warnings : sequence of str
        Warnings raised while fitting.
    title : str, optional
    digits : int

    Examples
    --------
    >>> import apim, os, tempfile, docx
    >>> result = apim.fit(apim.load_alliance(), apim.APIMSpec("outcome", ("alliance",)))
    >>> path = os.path.join(tempfile.mkdtemp(), "fit.docx")
    >>> fit_report_docx(result, path)
    >>> [p.text for p in docx.Document(path).paragraphs if p.style.name == "Heading 1"]
    ['Model', 'Data', 'Tables', 'Rows not used', 'Warnings']
    """
    spec = result.spec
    if data_report is None:
        data_report = fitted_data_report(result)
    title = title or (f"{result.kind[:1].upper()}{result.kind[1:]} report: "
                      f"{getattr(spec, 'outcome', 'model')}")
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    document = new_document()
    top = document.add_paragraph()
    top.alignment = 1  # centred, bold: an APA title
    top.add_run(plain(title)).bold = True
    document.add_paragraph(f"apim {__version__}, {now}")
    document.add_heading("Model", level=1)
    document.add_paragraph(plain(result.model_line()))
    document.add_heading("Data", level=1)
    _data_section(document, data_report)
    document.add_heading("Tables", level=1)
    add_table(document, effects_table(result, digits), 1)
    document.add_paragraph()
    add_table(document, variance_table(result, max(digits, 3)), 2)
    patterns = patterns_frame(result)
    if not patterns.empty:
        document.add_paragraph()
        add_table(document, Table(
            "Dyadic patterns", "", patterns,
            ("k = partner effect / actor effect (Kenny & Ledermann, 2010), with a Monte "
             "Carlo interval.",), left=patterns.columns.get_loc("k")), 3)
    document.add_heading("Rows not used", level=1)
    dropped = result.dropped
    if dropped.empty:
        document.add_paragraph("Every row of the data was used.")
    else:
        document.add_paragraph(f"{len(dropped)} of {len(result.data.frame)} rows were not "
                               "used (row numbers are 1-based rows of the input):")
        for reason, rows in dropped.groupby("reason", sort=False)["row"]:
            document.add_paragraph(plain(f"{reason}: {len(rows)} rows "
                                         f"({format_rows(tuple(rows))})"), style="List Bullet")
    document.add_heading("Warnings", level=1)
    notes = list(warnings)
    if not result.statistics.converged:
        notes.append(f"the fit did not converge: {result.statistics.message}")
    notes += [f"boundary estimate: {b}" for b in result.boundary]
    for text in notes or ["None."]:
        document.add_paragraph(plain(text))
    save(document, path)
