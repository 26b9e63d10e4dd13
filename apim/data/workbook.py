"""Workbooks checked before they are parsed: Excel's row and column limits, and parts that
unpack far beyond their packed size (a "zip bomb"), read from the zip's directory and the
sheets' XML without building a table.

Examples
--------
>>> MAX_ROWS, MAX_COLUMNS
(1048576, 16384)
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from apim.errors import DataError

__all__ = ["check_workbook", "MAX_ROWS", "MAX_COLUMNS", "MAX_RATIO", "MAX_UNZIPPED"]

MAX_ROWS = 1_048_576  # Excel's row limit
MAX_RATIO = 100  # uncompressed / compressed size of a workbook part (real ones: 2-15)
MAX_UNZIPPED = 1 << 31  # bytes of XML a workbook may unpack to (2 GiB)
MAX_COLUMNS = 16_384  # Excel's limit: a wider table is not session data


_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\s+ref="\$?([A-Z]*)\$?(\d*)'
                        rb'(?::\$?([A-Z]+)\$?(\d+))?"')
_SHEET = re.compile(rb"<(?:\w+:)?sheet\s[^>]*>")
_RELATION = re.compile(rb"<(?:\w+:)?Relationship\s[^>]*>")


def _attribute(tag: bytes, name: bytes) -> str:
    found = re.search(rb'\s' + name + rb'="([^"]*)"', tag)
    return found.group(1).decode("utf-8", "replace") if found else ""


def _size(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} GB"  # pragma: no cover


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters.decode():
        number = number * 26 + ord(letter) - ord("A") + 1
    return number


def _sheet_names(book: zipfile.ZipFile) -> dict[str, str]:
    """Worksheet parts (``xl/worksheets/sheet1.xml``) by the sheet names users see."""
    try:
        workbook = book.read("xl/workbook.xml")
        rels = book.read("xl/_rels/workbook.xml.rels")
    except KeyError:
        return {}
    targets = {_attribute(tag, b"Id"): _attribute(tag, b"Target").lstrip("/")
               for tag in _RELATION.findall(rels)}
    names = {}
    for tag in _SHEET.findall(workbook):
        target = targets.get(_attribute(tag, b"r:id"), "")
        names[target if target.startswith("xl/") else f"xl/{target}"] = \
            _attribute(tag, b"name")
    return names


def _count_rows(book: zipfile.ZipFile, part: zipfile.ZipInfo) -> int:
    """Rows of a worksheet part, counted in its unpacked XML without parsing it (stops
    past :data:`MAX_ROWS`)."""
    rows, tail = 0, b""
    with book.open(part) as stream:
        while rows <= MAX_ROWS:
            chunk = stream.read(1 << 22)
            if not chunk:
                break
            text = tail + chunk
            cut = max(text.rfind(b"<"), 0)
            rows += _rows_in(text, cut)
            tail = text[cut:]
    return rows + _rows_in(tail, len(tail))


def _rows_in(xml: bytes, end: int) -> int:
    """Row elements (``<row ...>``, or with a namespace prefix ``<x:row ...>``) before
    ``end``."""
    return sum(xml.count(tag, 0, end) for tag in (b"<row ", b"<row>", b":row ", b":row>"))


def _check_sheet(book: zipfile.ZipFile, part: zipfile.ZipInfo, sheet: str,
                 source: str) -> None:
    """A worksheet within Excel's limits: by its declared dimension, then by its rows."""
    with book.open(part) as stream:
        head = stream.read(1 << 12)
    found = _DIMENSION.search(head)
    rows = 0
    if found and (found.group(4) or found.group(2)):
        rows = int(found.group(4) or found.group(2))
        columns = _column_number(found.group(3) or found.group(1) or b"A")
        if columns > MAX_COLUMNS:
            raise DataError(
                f"{source}: sheet {sheet!r} declares {columns:,} columns, more than Excel's "
                f"{MAX_COLUMNS:,}; it was not written by a spreadsheet: re-save it in one, "
                "or export the data as CSV")
    if rows <= MAX_ROWS:
        rows = _count_rows(book, part)
    if rows > MAX_ROWS:
        raise DataError(
            f"{source}: sheet {sheet!r} holds more than Excel's {MAX_ROWS:,} rows; a "
            "spreadsheet cannot hold these data: export them as CSV or Parquet")


def check_workbook(path: Path) -> None:
    """Refuse, before parsing, an ``.xlsx`` that would take minutes or gigabytes to read:
    a part that unpacks to more than :data:`MAX_RATIO` times its packed size (a "zip
    bomb"; real workbooks unpack 2-15 times), more than :data:`MAX_UNZIPPED` bytes in all,
    or a sheet beyond Excel's 1,048,576 rows or 16,384 columns.

    A file that is not a zip archive is left to the reader (which names the damage).

    Raises
    ------
    DataError
        Naming the part or sheet, its sizes and the limit.
    """
    source = f"file {str(path)!r}"
    try:
        book = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return
    with book:
        parts = book.infolist()
        for part in parts:
            if part.file_size > 10 * (1 << 20) and \
                    part.file_size > MAX_RATIO * max(part.compress_size, 1):
                raise DataError(
                    f"{source} unpacks its part {part.filename!r} from "
                    f"{_size(part.compress_size)} to {_size(part.file_size)} (ratio "
                    f"{part.file_size / max(part.compress_size, 1):,.0f}; workbooks saved "
                    f"by a spreadsheet unpack 2 to 15 times): it is not read; re-save it in a "
                    "spreadsheet, or export the data as CSV")
        total = sum(part.file_size for part in parts)
        if total > MAX_UNZIPPED:
            raise DataError(f"{source} unpacks to {_size(total)}, more than the "
                            f"{_size(MAX_UNZIPPED)} apim reads from a workbook; export the "
                            "data as CSV or Parquet")
        names = _sheet_names(book)
        for part in parts:
            if part.filename.startswith("xl/worksheets/") and \
                    part.filename.endswith(".xml"):
                _check_sheet(book, part, names.get(part.filename, part.filename), source)
