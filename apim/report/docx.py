"""APA tables as Word documents (``.docx``; python-docx, the ``docx`` extra, imported only
when writing; the fit report: :mod:`apim.report.docx_report`).

Each display table (:class:`~apim.report.tables.Table`) becomes a real Word table in APA 7
layout: the table number in bold and the title in italics above it; horizontal rules only
(above and below the column heads and below the last row, no vertical rules); a spanner
over two-level heads (``95% CI`` over LL and UL) with its own short rule; label columns
left-aligned, numbers right-aligned; *Note.* in italics under the table with the model line
and the notes. Text from the data is written verbatim as plain text.

Examples
--------
>>> import apim, os, tempfile
>>> result = apim.fit(apim.load_alliance(), apim.APIMSpec("outcome", ("alliance",)))
>>> path = os.path.join(tempfile.mkdtemp(), "tables.docx")
>>> to_docx(result, path)
>>> import docx
>>> document = docx.Document(path)
>>> len(document.tables), document.tables[0].cell(1, 2).text
(2, 'b')
"""

from __future__ import annotations

import io
import os
import re
from typing import Any

import pandas as pd

from apim.errors import SpecError
from apim.files import write_atomic
from apim.model.fitted import FittedModel
from apim.report.tables import Table, effects_table, variance_table

__all__ = ["to_docx", "add_table", "new_document", "plain", "write_cell", "set_widths",
           "save", "borders", "FONT", "TEXT_PT", "TABLE_PT"]

FONT = "Times New Roman"
TEXT_PT = 12
TABLE_PT = 10  # APA 7 allows 8-14 pt in tables; 10 keeps the 10-column effects table on a page
_RULE = {"val": "single", "sz": "8", "space": "0", "color": "000000"}  # 1 pt
_NONE = {"val": "nil"}
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _docx() -> Any:
    try:
        import docx
    except ImportError:
        raise SpecError("Word output (.docx) needs python-docx: pip install "
                        "python-docx") from None
    return docx


def require_docx() -> None:
    """Refuse Word output before any work when python-docx is missing
    (:class:`~apim.errors.SpecError` with the install command)."""
    _docx()


def plain(value: object) -> str:
    """``value`` as text Word can hold: verbatim, except characters XML forbids (control
    characters), which become U+FFFD.

    Examples
    --------
    >>> plain("=1+1"), plain("<script>"), plain("a\\x00b")
    ('=1+1', '<script>', 'a\\ufffdb')
    """
    return _NOT_XML.sub("\ufffd", str(value))


def new_document() -> Any:
    """An empty Word document in APA style: Times New Roman 12, one-inch margins."""
    docx = _docx()
    from docx.shared import Inches, Pt, RGBColor

    document = docx.Document()
    for name in ("Normal", "Heading 1"):
        style = document.styles[name]
        style.font.name = FONT
        style.font.color.rgb = RGBColor(0, 0, 0)
        fonts = style.element.get_or_add_rPr().get_or_add_rFonts()
        for key in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
            fonts.attrib.pop(_qn(key), None)
        for key in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
            fonts.set(_qn(key), FONT)
    document.styles["Normal"].font.size = Pt(TEXT_PT)
    heading = document.styles["Heading 1"]  # APA level 1: bold, text size
    heading.font.size, heading.font.bold = Pt(TEXT_PT), True
    for section in document.sections:
        section.left_margin = section.right_margin = Inches(1)
        section.top_margin = section.bottom_margin = Inches(1)
    return document


def _qn(tag: str) -> str:
    from docx.oxml.ns import qn

    return str(qn(tag))


def borders(parent: Any, tag: str, sides: dict[str, dict[str, str]]) -> None:
    """Set ``sides`` (``top`` -> attributes) in the ``tag`` border element of ``parent``
    (``w:tblPr`` or ``w:tcPr``)."""
    from docx.oxml import OxmlElement

    element = parent.find(_qn(tag))
    if element is None:
        element = OxmlElement(tag)
        parent.append(element)
    for side, attributes in sides.items():
        edge = element.find(_qn(f"w:{side}"))
        if edge is None:
            edge = OxmlElement(f"w:{side}")
            element.append(edge)
        for key, value in attributes.items():
            edge.set(_qn(f"w:{key}"), value)


def _cell_rule(cell: Any, side: str, rule: dict[str, str] = _RULE) -> None:
    borders(cell._tc.get_or_add_tcPr(), "w:tcBorders", {side: rule})


def write_cell(cell: Any, text: str, align: str, *, italic: bool = False,
               head: bool = False, size: int = TABLE_PT) -> None:
    """Write ``text`` (verbatim, :func:`plain`) into an empty table cell: ``align``
    ``"left"``, ``"right"`` or ``"center"``; a head cell sits at the bottom of its row, a
    body cell at the top; Times New Roman ``size`` pt, also for an empty cell's line."""
    from docx.enum.table import WD_ALIGN_VERTICAL
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml import OxmlElement
    from docx.shared import Pt

    paragraph = cell.paragraphs[0]
    paragraph.alignment = {"left": WD_ALIGN_PARAGRAPH.LEFT, "right": WD_ALIGN_PARAGRAPH.RIGHT,
                           "center": WD_ALIGN_PARAGRAPH.CENTER}[align]
    fmt = paragraph.paragraph_format
    fmt.space_before = fmt.space_after = Pt(1)
    fmt.line_spacing = 1.0
    cell.vertical_alignment = WD_ALIGN_VERTICAL.BOTTOM if head else WD_ALIGN_VERTICAL.TOP
    mark = OxmlElement("w:rPr")  # the paragraph mark's size sets an empty cell's height
    mark.append(OxmlElement("w:sz"))
    mark[0].set(_qn("w:val"), str(2 * size))
    paragraph._p.get_or_add_pPr().append(mark)
    if text:
        run = paragraph.add_run(plain(text))
        run.font.size = Pt(size)
        run.font.name = FONT
        run.italic = italic


def _heads(frame: pd.DataFrame) -> list[list[str]]:
    """The rows of column heads: one, or two for two-level columns (the spanner row
    first, blank above a single-level head, which sits in the lower row)."""
    columns = frame.columns
    if not isinstance(columns, pd.MultiIndex):
        return [[str(c) for c in columns]]
    top = [str(c[0]) if str(c[1]) else "" for c in columns]
    bottom = [str(c[1]) if str(c[1]) else str(c[0]) for c in columns]
    return [top, bottom]


_STATISTICS = {"b", "SE", "t", "z", "p", "df", "k", "LL", "UL", "M", "SD", "n", "r", "F"}


def add_table(document: Any, table: Table, number: int | None = None) -> Any:
    """Append ``table`` to ``document`` in APA layout and return the Word table.

    Parameters
    ----------
    document : docx.Document
    table : Table
        A display table (:func:`~apim.report.tables.effects_table`, ...).
    number : int, optional
        The table number ("Table 1"); omitted when ``None``.

    Examples
    --------
    >>> import apim
    >>> from apim.report.tables import Table
    >>> frame = pd.DataFrame({"Term": ["<script>"], "b": ["=1+1"]})
    >>> document = new_document()
    >>> word = add_table(document, Table("Demo", "a model", frame, ("A note.",), left=1))
    >>> [c.text for c in word.rows[1].cells], document.paragraphs[-1].text
    (['<script>', '=1+1'], 'Note. a model. A note.')
    """
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.oxml import OxmlElement
    from docx.shared import Pt

    if number is not None:
        head = document.add_paragraph()
        head.add_run(f"Table {number}").bold = True
        head.paragraph_format.space_after = Pt(0)
        head.paragraph_format.keep_with_next = True
    caption = document.add_paragraph()
    caption.add_run(plain(table.title)).italic = True
    caption.paragraph_format.keep_with_next = True
    caption.paragraph_format.space_after = Pt(4)

    frame = table.frame
    heads = _heads(frame)
    ncol = frame.shape[1]
    word = document.add_table(rows=len(heads) + len(frame), cols=ncol)
    word.alignment = WD_TABLE_ALIGNMENT.CENTER
    set_widths(word, _column_widths(frame, heads, table.left))
    tbl_pr = word._tbl.tblPr
    borders(tbl_pr, "w:tblBorders", {"top": _RULE, "bottom": _RULE, "left": _NONE,
                                      "right": _NONE, "insideH": _NONE, "insideV": _NONE})
    # column heads: a spanner merges the cells of its columns and gets a short rule
    for r, names in enumerate(heads):
        c = 0
        while c < ncol:
            end = c + 1
            if r < len(heads) - 1 and names[c]:
                while end < ncol and names[end] == names[c]:
                    end += 1
            cell = word.cell(r, c) if end == c + 1 else word.cell(r, c).merge(
                word.cell(r, end - 1))
            align = "left" if c < table.left else "center"
            write_cell(cell, names[c], align, italic=names[c] in _STATISTICS, head=True)
            if r < len(heads) - 1 and names[c] and end > c + 1:
                _cell_rule(cell, "bottom")
            c = end
    for cell in word.rows[len(heads) - 1].cells:
        _cell_rule(cell, "bottom")
    for i, row in enumerate(frame.itertuples(index=False)):
        cells = word.rows[len(heads) + i].cells
        for c, value in enumerate(row):
            write_cell(cells[c], str(value), "left" if c < table.left else "right")
            if c >= table.left:
                cells[c]._tc.get_or_add_tcPr().append(OxmlElement("w:noWrap"))
    for row in word.rows[: len(heads)]:  # repeat the heads on a new page
        row._tr.get_or_add_trPr().append(OxmlElement("w:tblHeader"))

    note = document.add_paragraph()
    note.paragraph_format.space_before = Pt(4)
    note.add_run("Note.").italic = True
    text = " ".join(t for t in (_sentence(table.header), *table.notes) if t)
    note.add_run(" " + plain(text))
    for part in note.runs:
        part.font.size = Pt(TABLE_PT)
    return word


def _column_widths(frame: pd.DataFrame, heads: list[list[str]], left: int,
                   total: float = 6.5) -> list[float]:
    """Column widths in inches over the text width: number columns as wide as their
    longest text (they never wrap), label columns share the rest in proportion to their
    longest text (and wrap)."""
    inch_per_char, padding = 0.062, 0.18  # Times 10 pt; the cells' left and right margins
    longest = []
    for c in range(frame.shape[1]):
        texts = [str(v) for v in frame.iloc[:, c]] + [heads[-1][c]]
        longest.append(max((len(t) for t in texts), default=1))
    numbers = {c: max(longest[c], 3) * inch_per_char + padding
               for c in range(left, len(longest))}
    short = {c: (longest[c] + 2) * inch_per_char + padding for c in range(left)
             if longest[c] <= 20}  # short labels kept on one line
    fixed = {**numbers, **short}
    rest = max(total - sum(fixed.values()), 1.0)
    labels = {c: min(longest[c], 40) + 2 for c in range(left) if c not in short}
    widths = [fixed[c] if c in fixed else rest * labels[c] / sum(labels.values())
              for c in range(len(longest))]
    scale = min(1.0, total / sum(widths))
    return [w * scale for w in widths]


def set_widths(word: Any, inches: list[float]) -> None:
    """Fixed column widths (Word reads the cells', LibreOffice the grid's)."""
    from docx.shared import Inches

    word.autofit = False
    for column, width in zip(word.columns, inches):
        column.width = Inches(width)
        for cell in column.cells:
            cell.width = Inches(width)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text.endswith((".", "!", "?")) else text + "."


def save(document: Any, path: str | os.PathLike[str]) -> None:
    """Write ``document`` to ``path`` atomically (:func:`apim.files.write_atomic`)."""
    buffer = io.BytesIO()
    document.save(buffer)
    write_atomic(path, buffer.getvalue())


def to_docx(result: FittedModel, path: str | os.PathLike[str], digits: int = 2) -> None:
    """Write the effects and variance-component tables of any fitted model to a Word
    document (two APA tables; written atomically: check an existing file with
    :func:`apim.files.check_new_output` first).

    Parameters
    ----------
    result : FittedModel
    path : path
        The ``.docx`` file to write.
    digits : int
        Decimals of the effects (the variance components get at least 3).
    """
    document = new_document()
    add_table(document, effects_table(result, digits), 1)
    document.add_paragraph()
    add_table(document, variance_table(result, max(digits, 3)), 2)
    save(document, path)
