"""Read tables from files: CSV, Excel, SPSS, Stata and Parquet.

Delimited text is sniffed on a sample (encoding, delimiter, decimal comma) and then read
with pandas' C reader. Identifier columns (dyad, session, role, therapist) are read as
text, so ``1.10`` and ``1.1`` stay two ids and ``NA`` stays a value; blank cells are the
only missing identifiers. Other columns follow the usual conventions (``NA``, ``NaN``,
``null`` ... are missing in numeric columns; a text column keeps its words as values).
What the reader decided (encoding, delimiter, codes declared missing, value labels used)
comes back as notes for the data report.

Examples
--------
>>> import pandas as pd, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "d.csv")
>>> pd.DataFrame({"dyad": [1, 1], "x": [2.0, 3.0]}).to_csv(path, index=False)
>>> read_table(path).shape
(2, 2)
"""

from __future__ import annotations

import codecs
import csv
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from apim.data.hints import option
from apim.data.validate import nfc, unique_names
from apim.data.workbook import MAX_COLUMNS, check_workbook
from apim.errors import DataError, EmptyDataError, UnsupportedFileError

__all__ = ["read_table", "ReadOptions", "SUPPORTED_SUFFIXES", "read_with_notes", "read_utf8",
           "check_workbook"]

SAMPLE_BYTES = 1 << 16
MAX_HEADER_CHARS = 1 << 22  # a header line longer than this is refused unread
DELIMITERS = (",", ";", "\t", "|")
NA_WORDS = frozenset({"NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "null", "NULL",
                      "#N/A", "#NA", "#N/A N/A", "<NA>", "None", "."})


@dataclass(frozen=True)
class ReadOptions:
    """How to read a file.

    Parameters
    ----------
    sep, decimal, encoding : str, optional
        Delimiter, decimal mark and text encoding of delimited files (default: sniffed;
        decimal ``.`` unless the file plainly uses commas; UTF-8 with or without BOM).
    sheet : str or int, optional
        Excel sheet (name or 0-based position; default the first).
    identifiers : tuple of str
        Columns read as text ids (dyad, session, role, therapist).
    labelled : tuple of str
        Columns whose SPSS/Stata value labels replace the codes (the role column).
    missing : tuple of float
        Codes that mean "missing" in numeric columns (e.g. -99, 999).
    columns : tuple of str, optional
        Read only these columns (when the others are not needed).
    """

    sep: str | None = None
    decimal: str | None = None
    encoding: str | None = None
    sheet: str | int | None = None
    identifiers: tuple[str, ...] = ()
    labelled: tuple[str, ...] = ()
    missing: tuple[float, ...] = ()
    columns: tuple[str, ...] | None = None


# ---------------------------------------------------------------------------- helpers
def _canonical_ids(values: pd.Series) -> pd.Series:
    """Text ids; if every id is a plain integer ("1", "23", not "007" or "1.10"), integers."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if len(uniques) == 0:
        return values
    text = pd.Series(np.asarray(uniques, dtype=object)).astype(str)
    blank = text.str.strip().eq("").to_numpy()
    if blank.any():  # cells holding only spaces are missing ids
        codes = np.where(np.isin(codes, np.flatnonzero(blank)), -1, codes)
        values = values.where(codes >= 0)
    if text[~blank].str.fullmatch(r"-?[1-9]\d{0,17}|0").all() and not blank.all():
        numbers = pd.to_numeric(text).to_numpy(dtype="int64")
        if (codes >= 0).all():
            return pd.Series(numbers[codes], index=values.index)
        out = pd.array(numbers[np.where(codes < 0, 0, codes)], dtype="Int64")
        out[codes < 0] = pd.NA
        return pd.Series(out, index=values.index)
    return values.astype(object).where(values.notna())


def _numeric_or_text(values: pd.Series, decimal: str) -> pd.Series:
    """A non-identifier text column: numbers if every cell is a number or an NA word."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    distinct = pd.Series(np.asarray(uniques, dtype=object)).astype(str).str.strip()
    words = distinct.isin(NA_WORDS) | distinct.eq("")
    candidate = distinct[~words]
    if decimal == ",":
        candidate = candidate.str.replace(",", ".", regex=False)
    numbers = pd.to_numeric(candidate, errors="coerce")
    if len(candidate) and numbers.notna().all():
        table = np.full(len(distinct), np.nan)
        table[numbers.index.to_numpy()] = numbers.to_numpy(dtype=float)
        out = np.where(codes < 0, np.nan, table[np.where(codes < 0, 0, codes)])
        return pd.Series(out, index=values.index)
    blank = distinct.eq("").to_numpy()
    if blank.any():
        hit = np.isin(codes, np.flatnonzero(blank))
        return values.mask(hit)
    return values


def _needed(options: ReadOptions) -> list[str]:
    return [*options.identifiers, *(options.columns or ())]


def _subset(names: Sequence[str], options: ReadOptions) -> list[str] | None:
    """The columns to read when only some are needed and all of them are present (else
    every column, so that validation can name what is missing)."""
    if options.columns is None:
        return None
    wanted = {nfc(c) for c in [*options.identifiers, *options.columns]}
    if not wanted <= {nfc(str(c)) for c in names}:
        return None
    return [c for c in names if nfc(str(c)) in wanted]


def _repeated(names: Sequence[object]) -> bool:
    """Whether two names are the same after NFC normalisation and stripping spaces."""
    return len({nfc(str(n)).strip() for n in names}) < len(names)


def _identifier_names(names: Sequence[str], options: ReadOptions) -> list[str]:
    """The file's own spelling of the identifier columns (matched in NFC form)."""
    wanted = {nfc(c) for c in options.identifiers}
    return [c for c in names if nfc(c) in wanted]


def _missing_codes(frame: pd.DataFrame, codes: Sequence[float], skip: Sequence[str],
                   notes: list[str]) -> pd.DataFrame:
    """Declared missing codes become missing in numeric columns; counted in ``notes``."""
    if not codes:
        return frame
    for column in frame.columns:
        if column in skip or not pd.api.types.is_numeric_dtype(frame[column]) \
                or pd.api.types.is_bool_dtype(frame[column]):
            continue
        hit = frame[column].isin(list(codes)).to_numpy()
        if hit.any():
            counts = frame.loc[hit, column].value_counts()
            frame[column] = frame[column].astype(float).mask(hit)
            notes.append(f"column {column!r}: " + ", ".join(
                f"{n} value(s) {v:g}" for v, n in counts.items()) + " declared missing")
    return frame


# ---------------------------------------------------------------------------- text
def _encoding(path: Path, sample: bytes, given: str | None) -> str:
    if given:
        try:
            codecs.lookup(given)
        except LookupError:
            raise DataError(f"encoding {given!r} is not known; use e.g. utf-8, cp1252, "
                            "latin-1 or utf-16") from None
        return given
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(sample) - 4:  # not a character cut by the sample's end
            _not_utf8(path, sample, error.start)
    return "utf-8"


def read_utf8(path: str | Path) -> str:
    """The text of a UTF-8 file (a plan), with or without a byte-order mark; a file in any
    other encoding is refused naming the first byte that is not UTF-8.

    Raises
    ------
    DataError
        ``plan.toml is not UTF-8 (byte 0xE4 at position 37, line 3): save it as UTF-8``.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "plan.toml")
    >>> _ = open(path, "wb").write(b"\\xef\\xbb\\xbfname = 'x'\\n")
    >>> read_utf8(path)
    "name = 'x'\\n"
    """
    path = Path(path)
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(f"{str(path)} is UTF-16 text, not UTF-8: save it as UTF-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise DataError(
            f"{str(path)} is not UTF-8 (byte 0x{data[error.start]:02X} at position "
            f"{error.start}, line {line}): save it as UTF-8") from None


def _not_utf8(path: Path, data: bytes, position: int) -> None:
    line = data[:position].count(b"\n") + 1
    raise DataError(
        f"file {str(path)!r} is not UTF-8 (byte 0x{data[position]:02x} on line {line}); "
        "it was probably saved as Windows-1252/Latin-1: give the encoding with "
        f"{option('encoding', 'cp1252')}, or save the file as CSV UTF-8")


def _sniff_sep(lines: list[str]) -> str | None:
    """The candidate delimiter found the same number of times (> 0) on every sample line."""
    best, best_count = None, 0
    for sep in DELIMITERS:
        try:
            counts = [len(next(csv.reader([line], delimiter=sep))) - 1 for line in lines
                      if line]
        except csv.Error:  # a field beyond csv's limit: not this delimiter
            continue
        if not counts or counts[0] == 0:
            continue
        # a trailing delimiter may add one field on data lines
        consistent = all(c in (counts[0], counts[0] + 1) for c in counts)
        if consistent and counts[0] > best_count:
            best, best_count = sep, counts[0]
    return best


_COMMA = re.compile(r"-?\d+,\d+")
_POINT = re.compile(r"-?\d+\.\d+")


def _sniff_decimal(lines: list[str], sep: str) -> str:
    if sep == ",":
        return "."
    cells = [c.strip().strip('"') for line in lines[1:] for c in line.split(sep)]
    comma = sum(bool(_COMMA.fullmatch(c)) for c in cells)
    point = sum(bool(_POINT.fullmatch(c)) for c in cells)
    return "," if comma > 0 and point == 0 else "."


def _header_line(path: Path, encoding: str) -> str:
    """The first non-blank line of a text file, read whole (a header wider than the sample)
    but never more than :data:`MAX_HEADER_CHARS` characters."""
    with open(path, encoding=encoding, errors="replace", newline="") as handle:
        while True:
            line = handle.readline(MAX_HEADER_CHARS + 1)
            if not line or line.strip():
                return line.rstrip("\r\n")


def _header_fields(line: str, sep: str, source: str) -> list[str]:
    """The names in the header line."""
    try:
        return next(csv.reader([line], delimiter=sep))
    except csv.Error as error:
        raise DataError(f"{source}: its header line cannot be read with the delimiter {sep!r} "
                        f"({error}); give the delimiter with {option('sep', ';')}") from None


def _check_width(header: list[str], cut: bool, sep: str, source: str) -> None:
    """Refuse a header with more columns than a spreadsheet holds, before pandas reads it."""
    if len(header) > MAX_COLUMNS or cut:
        found = f"{len(header):,}" + (" or more" if cut else "")
        raise DataError(
            f"{source} has {found} columns in its header line (delimiter {sep!r}), more than "
            f"the {MAX_COLUMNS:,} a spreadsheet can hold; check the delimiter "
            f"({option('sep', ';')}), or keep only the columns the analysis needs")


def _shifted_lines(path: Path, encoding: str, sep: str, width: int) -> list[int]:
    """Lines (1-based, of the file) with more fields than the header whose extra fields
    hold values: read as they stand, their columns would shift."""
    found = []
    with open(path, encoding=encoding, errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter=sep)
        for fields in reader:
            if len(fields) > width and any(f.strip() for f in fields[width:]):
                found.append(reader.line_num)
    return found


def _refuse_shifted(lines: list[int], width: int, sep: str, source: str) -> None:
    listed = [str(n) for n in lines[:5]]
    shown = ", ".join(listed) + f" and {len(lines) - 5} more" if len(lines) > 5 else \
        " and ".join([", ".join(listed[:-1]), listed[-1]] if len(listed) > 1 else listed)
    raise DataError(
        f"{source}: line{'s' if len(lines) > 1 else ''} {shown} "
        f"{'have' if len(lines) > 1 else 'has'} more fields than the header's {width} "
        f"(delimiter {sep!r}), so its columns would shift; remove the extra delimiter from "
        "those lines, or name the extra column in the header line")


def _read_csv(path: Path, source: str, sep: str, decimal: str, encoding: str,
              ids: list[str], usecols: list[str] | None, width: int) -> pd.DataFrame:
    """pandas' C reader; lines with values beyond the header's fields are refused (pandas
    would drop those values, or take the first column for the index)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        frame = pd.read_csv(
            path, sep=sep, decimal=decimal, encoding=encoding, engine="c",
            dtype={c: object for c in ids}, keep_default_na=False, na_values=[""],
            index_col=False, usecols=usecols, skipinitialspace=False, low_memory=False)
    for warning in caught:
        if issubclass(warning.category, pd.errors.ParserWarning):
            lines = _shifted_lines(path, encoding, sep, width)
            if lines:
                _refuse_shifted(lines, width, sep, source)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
    return frame


def _read_delimited(path: Path, options: ReadOptions, notes: list[str],
                    fixed_sep: str | None = None) -> pd.DataFrame:
    with open(path, "rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
    if not sample.strip():
        raise EmptyDataError(f"file {str(path)!r}")
    if b"\x00" in sample and not sample.startswith((codecs.BOM_UTF16_LE,
                                                    codecs.BOM_UTF16_BE)) \
            and options.encoding is None:
        raise UnsupportedFileError(
            f"file {str(path)!r} is not a text file (it holds binary data); check that "
            "the file is a CSV and that its suffix matches its type")
    encoding = _encoding(path, sample, options.encoding)
    text = sample.decode(encoding, errors="ignore")
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    if len(sample) == SAMPLE_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last sampled line may be cut
    first = _header_line(path, encoding)
    cut = len(first) > MAX_HEADER_CHARS
    if lines:
        lines[0] = first[:MAX_HEADER_CHARS]
    sep = options.sep or fixed_sep or _sniff_sep(lines) or ","
    if sep in ("\\t", "tab", "TAB"):
        sep = "\t"
    decimal = options.decimal or _sniff_decimal(lines, sep)
    if decimal == sep:
        raise DataError(f"the decimal mark {decimal!r} cannot also be the delimiter; set "
                        f"{option('sep', ';')} with {option('decimal', ',')}")
    if options.decimal is None and decimal == ",":
        notes.append(f"decimal commas read as decimal marks (delimiter {sep!r})")
    source = f"file {str(path)!r}"
    header = _header_fields(lines[0], sep, source) if lines else []
    _check_width(header, cut, sep, source)
    trailing = [i for i, name in enumerate(header) if not name.strip()]
    named = [h for h in header if h.strip()]
    renamed = unique_names(named, source, _needed(options))
    repeated = _repeated(named)
    usecols = None if repeated else _subset(named, options)
    try:
        frame = _read_csv(path, source, sep, decimal, encoding,
                          _identifier_names(named, options), usecols, len(header))
    except pd.errors.EmptyDataError:
        raise EmptyDataError(source) from None
    except DataError:
        raise
    except UnicodeDecodeError as error:
        with open(path, "rb") as handle:
            data = handle.read()
        start = data.find(error.object[error.start:error.start + 8]) \
            if isinstance(error.object, bytes) else -1
        _not_utf8(path, data, max(start, 0))
        raise
    except (csv.Error, pd.errors.ParserError, ValueError) as error:
        if isinstance(error, pd.errors.ParserError):
            shifted = _shifted_lines(path, encoding, sep, len(header))
            if shifted:
                _refuse_shifted(shifted, len(header), sep, source)
        detail = " ".join(str(error).split())
        raise UnsupportedFileError(
            f"cannot read {source} as delimited text (delimiter {sep!r}): {detail}; check "
            f"the delimiter ({option('sep', ';')}) and that every line has the same "
            "number of fields") from None
    if trailing:
        empty = [c for c in frame.columns if str(c).startswith("Unnamed:")]
        full = [c for c in empty if frame[c].notna().any()]
        if full:
            raise DataError(f"{source} has values in a column without a name "
                            f"(column {frame.columns.get_loc(full[0]) + 1}); give it a name "
                            "in the header line")
        frame = frame.drop(columns=empty)
    frame.columns = renamed if repeated else [nfc(str(c)) for c in frame.columns]
    ids = {nfc(c) for c in options.identifiers}
    for column in frame.columns:
        if column in ids:
            frame[column] = _canonical_ids(frame[column])
        elif frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column]):
            frame[column] = _numeric_or_text(frame[column], decimal)
    return frame


# ---------------------------------------------------------------------------- binary
def _data_sheet(book: pd.ExcelFile, sheets: list[str], first: pd.DataFrame,
                options: ReadOptions, source: str) -> None:
    """When no sheet was chosen and the first lacks the identifying columns, name the
    sheets (and the one that has them)."""
    wanted = [nfc(c) for c in options.identifiers]
    header = {nfc(str(h)).strip() for h in (first.iloc[0] if len(first) else [])}
    missing = [c for c in wanted if c not in header]
    if not missing or len(sheets) < 2:
        return
    having = []
    for other in sheets[1:]:
        top = pd.read_excel(book, sheet_name=other, header=None, nrows=1, dtype=object)
        names = {nfc(str(h)).strip() for h in (top.iloc[0] if len(top) else [])}
        if all(c in names for c in wanted):
            having.append(other)
    listed = ", ".join(repr(s) for s in sheets)
    hint = (f"sheet {having[0]!r} has the columns {', '.join(repr(c) for c in wanted)}: "
            f"choose it with {option('sheet', having[0])}"
            if having else f"no sheet has all of them: choose the data's sheet with "
            f"{option('sheet', 'NAME')}, or check the column names")
    raise DataError(
        f"{source}: its first sheet {sheets[0]!r} has no column {missing[0]!r} (it is "
        f"probably not the data); the workbook's sheets are {listed}; {hint}")


def _read_excel(path: Path, options: ReadOptions, notes: list[str]) -> pd.DataFrame:
    source = f"file {str(path)!r}"
    check_workbook(path)
    try:
        book = pd.ExcelFile(path)
    except ImportError:
        raise
    except Exception as error:  # zip, xml and format errors of a damaged workbook
        raise UnsupportedFileError(
            f"{source} is not a readable Excel workbook ({type(error).__name__}: "
            f"{' '.join(str(error).split())[:120]}); open and re-save it, or export it as "
            "CSV") from None
    with book:  # closed on every path, the errors below included
        sheets = book.sheet_names
        sheet = options.sheet if options.sheet is not None else 0
        if isinstance(sheet, str) and sheet.isdigit() and sheet not in sheets:
            sheet = int(sheet)
        if (isinstance(sheet, int) and not 0 <= sheet < len(sheets)) or \
                (isinstance(sheet, str) and sheet not in sheets):
            raise DataError(f"{source} has no sheet {sheet!r}; its sheets are "
                            f"{', '.join(repr(s) for s in sheets)}: choose one with "
                            f"{option('sheet', 'NAME')}")
        name = sheets[sheet] if isinstance(sheet, int) else sheet
        if options.sheet is None and len(sheets) > 1:
            notes.append(f"read sheet {name!r} of {len(sheets)} "
                         f"({', '.join(repr(s) for s in sheets)}); choose another with "
                         f"{option('sheet', 'NAME')}")
        raw = pd.read_excel(book, sheet_name=name, header=None, dtype=object,
                            keep_default_na=False, na_values=[""])
        if options.sheet is None:
            _data_sheet(book, sheets, raw, options, source)
    if raw.empty:
        raise EmptyDataError(f"sheet {name!r} of {source}")
    header = [str(h) if not (isinstance(h, float) and np.isnan(h)) else "" for h in raw.iloc[0]]
    named = unique_names([h for h in header if h], source, _needed(options))
    given = iter(named)
    frame = raw.iloc[1:].reset_index(drop=True)
    frame.columns = [next(given) if h else "" for h in header]
    keep = [c for c in frame.columns if c or frame[c].notna().any()]
    if "" in keep:
        raise DataError(f"{source} has values in a column without a name; give it a name "
                        "in the header row")
    frame = frame[keep]
    for column in frame.columns:
        values = frame[column]
        dates = values.dropna().map(lambda v: isinstance(v, (pd.Timestamp, datetime)))
        if len(dates) and dates.all():
            frame[column] = pd.to_datetime(values)
        elif column in options.identifiers:
            frame[column] = _canonical_ids(values.map(_cell_text))
        else:
            frame[column] = _numeric_or_text(values.astype(object), ".")
    return frame


def _cell_text(value: object) -> object:
    """An Excel cell as id text: whole numbers without ``.0``; missing stays missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return np.nan
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _labels_note(column: str, labels: dict) -> str:
    shown = ", ".join(f"{k:g} = {v!r}" if isinstance(k, float) else f"{k} = {v!r}"
                      for k, v in list(labels.items())[:4])
    return f"value labels of {column!r} used as its values ({shown})"


def _too_many_columns(n: int, source: str) -> None:
    """Refuse, before reading any data, a file wider than a spreadsheet."""
    if n > MAX_COLUMNS:
        raise DataError(f"{source} has {n:,} columns, more than the {MAX_COLUMNS:,} a "
                        "spreadsheet can hold; keep only the columns the analysis needs")


def _read_stat(path: Path, options: ReadOptions, notes: list[str]) -> pd.DataFrame:
    import pyreadstat

    source = f"file {str(path)!r}"
    read = pyreadstat.read_sav if path.suffix.lower() == ".sav" else pyreadstat.read_dta
    kind = "SPSS" if path.suffix.lower() == ".sav" else "Stata"
    try:
        _, head = read(str(path), metadataonly=True)
        names = list(head.column_names)
        _too_many_columns(len(names), source)
        usecols = None if options.columns is None else _subset(names, options)
        frame, meta = read(str(path), user_missing=True, usecols=usecols)
    except DataError:
        raise
    except Exception as error:  # pyreadstat.ReadstatError and friends
        raise UnsupportedFileError(
            f"{source} is not a readable {kind} file ({' '.join(str(error).split())[:120]});"
            f" re-save it from {kind}, or export it as CSV") from None
    frame.columns = unique_names(list(frame.columns), source, _needed(options))
    labels = {nfc(k): v for k, v in (getattr(meta, "variable_value_labels", {}) or {}).items()}
    # declared user-missing values (SPSS ranges and values; Stata .a-.z) become missing
    ranges = {nfc(k): v for k, v in (getattr(meta, "missing_ranges", None) or {}).items()}
    for column, spans in ranges.items():
        if column not in frame.columns:
            continue
        values = frame[column]
        hit = np.zeros(len(values), dtype=bool)
        for span in spans:
            lo, hi = span["lo"], span["hi"]
            if pd.api.types.is_numeric_dtype(values):
                hit |= ((values >= lo) & (values <= hi)).to_numpy()
            else:
                hit |= values.isin([lo, hi]).to_numpy()
        if hit.any():
            frame[column] = values.mask(hit)
            notes.append(f"column {column!r}: {int(hit.sum())} value(s) declared missing in "
                         f"the {kind} file set to missing")
    for column in frame.columns:  # Stata extended missing values (.a ... .z)
        values = frame[column]
        if kind == "Stata" and values.dtype == object and column not in labels:
            letters = values.map(lambda v: isinstance(v, str) and len(v) == 1
                                 and v.isalpha() and v.islower())
            numeric = pd.to_numeric(values.mask(letters.astype(bool)), errors="coerce")
            # numbers with letters among them; a text column of letters stays text
            if letters.any() and numeric.notna().any() and (
                    numeric.notna() | values.isna() | letters.astype(bool)).all():
                frame[column] = numeric
                notes.append(f"column {column!r}: {int(letters.sum())} Stata extended "
                             "missing value(s) set to missing")
    for column in options.labelled:
        if column in labels and column in frame.columns:
            mapping = labels[column]
            frame[column] = frame[column].map(lambda v, m=mapping: m.get(v, v))
            notes.append(_labels_note(column, mapping))
    for column in options.identifiers:
        if column in frame.columns and column not in options.labelled:
            frame[column] = _canonical_ids(frame[column].map(
                lambda v: int(v) if isinstance(v, float) and v.is_integer() else v))
    return frame


def _read_parquet(path: Path, options: ReadOptions, notes: list[str]) -> pd.DataFrame:
    import pyarrow.parquet as pq

    source = f"file {str(path)!r}"
    try:
        names = pq.read_schema(path).names
        _too_many_columns(len(names), source)
        renamed = unique_names(names, source, _needed(options))
        table = pq.read_table(path, columns=_subset(names, options) if renamed == names
                              else None)
        frame = table.rename_columns(renamed if renamed != names else table.column_names
                                     ).to_pandas()
    except DataError:
        raise
    except Exception as error:  # ArrowInvalid and friends
        raise UnsupportedFileError(
            f"{source} is not a readable Parquet file ({' '.join(str(error).split())[:120]})"
            "; re-write it, or export it as CSV") from None
    return frame


def _optional(reader: Callable[[Path, ReadOptions, list[str]], pd.DataFrame],
              package: str) -> Callable[[Path, ReadOptions, list[str]], pd.DataFrame]:
    def read(path: Path, options: ReadOptions, notes: list[str]) -> pd.DataFrame:
        try:
            return reader(path, options, notes)
        except ImportError:
            raise UnsupportedFileError(
                f"reading {path.suffix} files needs the package {package!r}; "
                f"install it with: pip install {package}") from None
    return read


def _tsv(path: Path, options: ReadOptions, notes: list[str]) -> pd.DataFrame:
    return _read_delimited(path, options, notes, fixed_sep="\t")


_READERS: dict[str, Callable[[Path, ReadOptions, list[str]], pd.DataFrame]] = {
    ".csv": _read_delimited,
    ".txt": _read_delimited,
    ".tsv": _tsv,
    ".xlsx": _optional(_read_excel, "openpyxl"),
    ".xlsm": _optional(_read_excel, "openpyxl"),
    ".xls": _optional(_read_excel, "xlrd"),
    ".sav": _optional(_read_stat, "pyreadstat"),
    ".dta": _optional(_read_stat, "pyreadstat"),
    ".parquet": _optional(_read_parquet, "pyarrow"),
}

SUPPORTED_SUFFIXES = tuple(_READERS)


def read_with_notes(path: str | Path,
                    options: ReadOptions | None = None) -> tuple[pd.DataFrame, list[str]]:
    """:func:`read_table`, also returning what the reader decided (for the data report)."""
    options = options or ReadOptions()
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise UnsupportedFileError(
            f"cannot read {str(path)!r}: unknown file type {path.suffix!r}; use one of "
            f"{', '.join(SUPPORTED_SUFFIXES)}")
    if path.is_dir():
        raise UnsupportedFileError(f"{str(path)!r} is a folder, not a data file")
    if not path.is_file():
        raise UnsupportedFileError(f"file {str(path)!r} does not exist")
    if path.suffix.lower() not in (".csv", ".txt", ".tsv") and path.stat().st_size == 0:
        raise EmptyDataError(f"file {str(path)!r}")
    notes: list[str] = []
    try:
        frame = reader(path, options, notes)
    except PermissionError:
        raise UnsupportedFileError(f"file {str(path)!r} cannot be opened: permission "
                                   "denied") from None
    except OSError as error:
        raise UnsupportedFileError(f"file {str(path)!r} cannot be read: "
                                   f"{error.strerror or error}") from None
    if len(frame) == 0:
        raise EmptyDataError(f"file {str(path)!r}")
    frame = _missing_codes(frame, options.missing, options.identifiers, notes)
    return frame, notes


def read_table(path: str | Path, *, sep: str | None = None, decimal: str | None = None,
               encoding: str | None = None, sheet: str | int | None = None,
               missing: Sequence[float] = (), columns: Sequence[str] | None = None,
               identifiers: Sequence[str] = ()) -> pd.DataFrame:
    """Read one data file into a DataFrame, choosing the reader by the file's suffix.

    Parameters
    ----------
    path : str or Path
        A ``.csv``/``.txt`` (delimiter sniffed), ``.tsv``, ``.xlsx``/``.xls``, ``.sav``
        (SPSS), ``.dta`` (Stata) or ``.parquet`` file.
    sep, decimal, encoding : str, optional
        For delimited text; default: sniffed (UTF-8 with or without BOM).
    sheet : str or int, optional
        Excel sheet; default the first.
    missing : sequence of float
        Codes meaning "missing" in numeric columns (e.g. ``(-99, 999)``).
    columns : sequence of str, optional
        Read only these columns.
    identifiers : sequence of str
        Columns to read as text ids.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    UnsupportedFileError
        For an unknown suffix, a missing, unreadable or damaged file, or a missing optional
        reader.
    EmptyDataError
        When the file holds no data rows.
    DataError
        For an undeclared non-UTF-8 encoding or repeated column names.
    """
    options = ReadOptions(sep=sep, decimal=decimal, encoding=encoding, sheet=sheet,
                          missing=tuple(float(m) for m in missing),
                          columns=None if columns is None else tuple(nfc(c) for c in columns),
                          identifiers=tuple(nfc(c) for c in identifiers))
    return read_with_notes(path, options)[0]
