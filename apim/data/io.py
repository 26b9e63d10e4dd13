"""Read tables from files: CSV, Excel, SPSS, Stata and Parquet.

Examples
--------
>>> import pandas as pd, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "d.csv")
>>> pd.DataFrame({"dyad": [1, 1], "x": [2.0, 3.0]}).to_csv(path, index=False)
>>> read_table(path).shape
(2, 2)
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from apim.errors import EmptyDataError, UnsupportedFileError

__all__ = ["read_table", "SUPPORTED_SUFFIXES"]


def _blank_cells_missing(frame: pd.DataFrame) -> pd.DataFrame:
    """Treat cells holding only white space as missing, as R's ``read.csv`` does."""
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            blank = values.astype(str).str.strip().eq("") & values.notna()
            if blank.any():
                values = values.mask(blank)
                numeric = pd.to_numeric(values, errors="coerce")
                frame[column] = numeric if numeric.notna().sum() == values.notna().sum() \
                    else values
    return frame


def _delimited(sep: str | None) -> Callable[[Path], pd.DataFrame]:
    def read(path: Path) -> pd.DataFrame:
        if not path.read_text(errors="replace").strip():
            raise EmptyDataError(f"file {str(path)!r}")
        try:
            frame = pd.read_csv(path, sep=sep, engine="python")
        except pd.errors.EmptyDataError:
            raise EmptyDataError(f"file {str(path)!r}") from None
        except (csv.Error, pd.errors.ParserError) as error:
            raise UnsupportedFileError(
                f"cannot parse {str(path)!r} as a delimited text file: {error}") from None
        return _blank_cells_missing(frame)
    return read


def _optional(reader: Callable[[Path], pd.DataFrame], package: str,
              extra: str) -> Callable[[Path], pd.DataFrame]:
    def read(path: Path) -> pd.DataFrame:
        try:
            return reader(path)
        except ImportError:
            raise UnsupportedFileError(
                f"reading {path.suffix} files needs the package {package!r}; "
                f"install it with: pip install 'apim[{extra}]'") from None
    return read


_READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    ".csv": _delimited(None),
    ".txt": _delimited(None),
    ".tsv": _delimited("\t"),
    ".xlsx": _optional(pd.read_excel, "openpyxl", "io"),
    ".xls": _optional(pd.read_excel, "xlrd", "io"),
    ".sav": _optional(pd.read_spss, "pyreadstat", "spss"),
    ".dta": pd.read_stata,
    ".parquet": _optional(pd.read_parquet, "pyarrow", "io"),
}

SUPPORTED_SUFFIXES = tuple(_READERS)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read one data file into a DataFrame, choosing the reader by the file's suffix.

    Parameters
    ----------
    path : str or Path
        A ``.csv``/``.txt`` (delimiter sniffed), ``.tsv``, ``.xlsx``/``.xls``, ``.sav``
        (SPSS), ``.dta`` (Stata) or ``.parquet`` file.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    UnsupportedFileError
        For an unknown suffix, a missing file or a missing optional reader.
    EmptyDataError
        When the file holds no data rows.
    """
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise UnsupportedFileError(
            f"cannot read {str(path)!r}: unknown file type {path.suffix!r}; use one of "
            f"{', '.join(SUPPORTED_SUFFIXES)}")
    if not path.is_file():
        raise UnsupportedFileError(f"file {str(path)!r} does not exist")
    frame = reader(path)
    if len(frame) == 0:
        raise EmptyDataError(f"file {str(path)!r}")
    return frame
