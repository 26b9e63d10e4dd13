"""What the subcommands share: the column-mapping and file-reading options, and loading."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from apim.data.session import SessionData
from apim.errors import SpecError

__all__ = ["add_columns", "load", "missing_codes", "output_path"]


def add_columns(parser: argparse.ArgumentParser) -> None:
    """The data file, its column mapping and how to read it."""
    parser.add_argument("data", help="CSV, TSV, Excel, SPSS .sav, Stata .dta or Parquet file")
    parser.add_argument("--dyad", required=True, help="column identifying the dyad")
    parser.add_argument("--session", help="column with the session number or date "
                        "(omit for cross-sectional data)")
    parser.add_argument("--role", help="column telling the two members apart "
                        "(long and pairwise layouts)")
    parser.add_argument("--roles", help="the two role values, reference first: A,B")
    parser.add_argument("--therapist", help="column identifying the therapist")
    parser.add_argument("--layout", choices=("long", "wide", "pairwise"), default="long",
                        help="long: a row per member and session (default); wide: a row per "
                        "dyad and session with ROLE_x columns; pairwise: x_A/x_P columns")
    read = parser.add_argument_group("reading the file")
    read.add_argument("--sep", help="delimiter of a text file (default: sniffed); "
                      "e.g. ';' or tab")
    read.add_argument("--decimal", help="decimal mark of a text file (default '.', or ',' "
                      "when the file plainly uses decimal commas)")
    read.add_argument("--encoding", help="text encoding (default UTF-8 with or without "
                      "BOM), e.g. cp1252")
    read.add_argument("--sheet", help="Excel sheet name or 0-based position (default: the "
                      "first)")
    read.add_argument("--missing", metavar="CODES",
                      help="codes meaning missing in numeric columns, comma separated: "
                      "-99,999")


def missing_codes(text: str | None) -> tuple[float, ...]:
    """``--missing -99,999`` as numbers."""
    if not text:
        return ()
    codes = []
    for item in text.split(","):
        try:
            codes.append(float(item.strip()))
        except ValueError:
            raise SpecError(f"--missing {text!r}: {item.strip()!r} is not a number; give the "
                            "codes as numbers separated by commas, e.g. --missing -99,999") \
                from None
    return tuple(codes)


def _roles(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    roles = tuple(r.strip() for r in text.split(","))
    if len(roles) != 2 or not all(roles) or roles[0] == roles[1]:
        raise SpecError(f"--roles {text!r} must name two distinct roles, the reference "
                        "first, e.g. --roles patient,therapist")
    return roles


def load(args: argparse.Namespace, columns: Sequence[str] | None = None) -> SessionData:
    """The session data the options describe; ``columns``: read only these variables
    (default: those of the model the options name, if any; else all)."""
    roles = _roles(args.roles)
    if columns is None and getattr(args, "outcome", None) and getattr(args, "predictor", None):
        columns = [args.outcome, *args.predictor, *(getattr(args, "moderator", None) or ()),
                   *(getattr(args, "covariate", None) or ()),
                   *(getattr(args, "variable", None) or ())]
    common: dict[str, Any] = {"dyad": args.dyad, "session": args.session,
                              "therapist": args.therapist}
    sheet: str | int | None = args.sheet
    if isinstance(sheet, str) and sheet.isdigit():
        sheet = int(sheet)
    read: dict[str, Any] = {"sep": args.sep, "decimal": args.decimal,
                            "encoding": args.encoding, "sheet": sheet,
                            "missing": missing_codes(args.missing)}
    if columns is not None and args.layout == "long":
        read["columns"] = tuple(columns)
    if args.layout == "wide":
        if roles is None:
            raise SpecError("--layout wide needs --roles A,B (the column prefixes)")
        return SessionData.from_wide(args.data, roles=roles, **common, **read)
    if args.role is None:
        raise SpecError(f"--layout {args.layout} needs --role COL")
    reader = SessionData.from_pairwise if args.layout == "pairwise" else SessionData.from_long
    return reader(args.data, role=args.role, roles=roles, **common, **read)


def output_path(option: str, text: str | None, suffixes: Sequence[str], what: str) -> None:
    """Check an output file name: its suffix and that its folder exists."""
    if text is None:
        return
    path = Path(text)
    if path.suffix.lower() not in suffixes:
        raise SpecError(f"{option} {text}: {what} must end in {' or '.join(suffixes)}")
    if not path.parent.is_dir():
        raise SpecError(f"{option} {text}: the folder {str(path.parent)!r} does not exist; "
                        "create it or write elsewhere")
    if path.is_dir():
        raise SpecError(f"{option} {text}: is a folder; give a file name")
