"""``apim convert``: between layouts (long, wide, pairwise) and file formats."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

from apim.cli.common import add_columns, load
from apim.cli.help import HelpFormatter, examples
from apim.data.spss import check_spss_names
from apim.errors import SpecError, UnsupportedFileError
from apim.files import atomic_path, check_new_output, neutral_frame, write_csv

__all__ = ["register", "run", "write_table", "WRITABLE"]

WRITABLE = (".csv", ".tsv", ".xlsx", ".sav", ".dta", ".parquet")


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Categories as their values (SPSS, Stata and Excel writers take plain columns)."""
    out = frame.copy()
    for c in out.columns:
        if isinstance(out[c].dtype, pd.CategoricalDtype):
            out[c] = out[c].astype(object)
        elif pd.api.types.is_string_dtype(out[c]) and out[c].dtype != object:
            out[c] = out[c].astype(object)
    return out


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    """Write ``frame`` to ``path`` in the format its suffix names (:data:`WRITABLE`),
    atomically (a temporary file beside it, then a rename).

    CSV, TSV and Excel cells whose text a spreadsheet would run as a formula get a leading
    ``'`` (:func:`apim.files.neutral_frame`, with a warning); Excel text is written as text.

    Examples
    --------
    >>> import os, tempfile
    >>> from apim.data.io import read_table
    >>> path = os.path.join(tempfile.mkdtemp(), "d.dta")
    >>> write_table(pd.DataFrame({"dyad": [1, 1], "x": [2.0, 3.0]}), path)
    >>> read_table(path)["x"].tolist()
    [2.0, 3.0]
    """
    path = Path(path)
    suffix = path.suffix.lower()
    frame = _plain(frame)
    if suffix not in WRITABLE:
        raise UnsupportedFileError(f"cannot write {str(path)!r}: unknown file type "
                                   f"{path.suffix!r}; use one of {', '.join(WRITABLE)}")
    if suffix == ".dta":
        bad = [c for c in frame.columns if not str(c).isidentifier() or len(str(c)) > 32]
        if bad:
            raise SpecError(f"column {bad[0]!r} is not a valid Stata name (letters, "
                            "digits and _, at most 32 characters); write CSV or rename it")
    try:
        if suffix in (".csv", ".tsv"):
            write_csv(frame, path, sep="\t" if suffix == ".tsv" else ",", what=path.name)
            return
        if suffix == ".xlsx":
            frame = neutral_frame(frame, path.name)
        if suffix == ".sav":
            check_spss_names(frame.columns, path)
        with atomic_path(path) as tmp:
            if suffix == ".xlsx":
                frame.to_excel(tmp, index=False, engine="openpyxl")
            elif suffix == ".sav":
                import pyreadstat

                pyreadstat.write_sav(frame, str(tmp))
            elif suffix == ".dta":
                frame.to_stata(tmp, write_index=False, version=118)
            else:
                frame.to_parquet(tmp, index=False)
    except ImportError as error:
        name = {"docx": "python-docx"}.get(str(error.name), str(error.name))
        raise UnsupportedFileError(f"writing {suffix} files needs the package "
                                   f"{name!r}; install it with: pip install {name}") from None


def run(args: argparse.Namespace) -> None:
    """Read, validate, convert and write."""
    check_new_output(args.out, "convert OUT", force=args.force, inputs=[args.data])
    if Path(args.out).suffix.lower() not in WRITABLE:
        raise UnsupportedFileError(f"cannot write {args.out!r}: unknown file type "
                                   f"{Path(args.out).suffix!r}; use one of {', '.join(WRITABLE)}")
    data = load(args)
    if args.to == "long":
        frame = data.to_long()
    elif args.to == "wide":
        frame = data.to_wide(separator=args.separator)
    else:
        frame = data.to_pairwise(args.actor_suffix, args.partner_suffix)
    write_table(frame, args.out)
    print(f"wrote {args.out}: {len(frame)} rows, {frame.shape[1]} columns ({args.to} layout)")


def register(commands: Any) -> None:
    """Add the subcommand to the ``apim`` parser."""
    parser = commands.add_parser(
        "convert", help="convert between layouts and file formats",
        description="Read and validate session data, then write it in another layout "
        "(long: a row per member and session; wide: a row per dyad and session; pairwise: "
        "each member's row with the partner's values) and/or format "
        f"({', '.join(WRITABLE)}, chosen by the output file's suffix).",
        formatter_class=HelpFormatter,
        epilog=examples("apim convert sessions.csv wide.xlsx --dyad dyad --session session "
                        "--role role --roles patient,therapist --to wide",
                        "apim convert wide.xlsx long.sav --layout wide --dyad dyad "
                        "--session session --roles patient,therapist --to long"))
    add_columns(parser)
    parser.add_argument("out", help="file to write (its suffix gives the format)")
    parser.add_argument("--force", action="store_true",
                        help="replace OUT if it exists (never the input file)")
    parser.add_argument("--to", choices=("long", "wide", "pairwise"), default="long",
                        help="layout to write")
    parser.add_argument("--separator", default="_",
                        help="between role and variable in wide column names")
    parser.add_argument("--actor-suffix", default="_A", help="own values (pairwise)")
    parser.add_argument("--partner-suffix", default="_P", help="partner's values (pairwise)")
    parser.set_defaults(run=run)
