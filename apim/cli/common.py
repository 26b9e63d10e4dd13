"""What the subcommands share: the column-mapping options and loading the data."""

from __future__ import annotations

import argparse

from apim.data.session import SessionData
from apim.errors import SpecError

__all__ = ["add_columns", "load"]


def add_columns(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="CSV, TSV, Excel, SPSS .sav, Stata .dta or Parquet file")
    parser.add_argument("--dyad", required=True, help="column identifying the dyad")
    parser.add_argument("--session", help="column with the session number "
                        "(omit for cross-sectional data)")
    parser.add_argument("--role", help="column telling the two members apart "
                        "(long and pairwise layouts)")
    parser.add_argument("--roles", help="the two role values, reference first: A,B")
    parser.add_argument("--therapist", help="column identifying the therapist")
    parser.add_argument("--layout", choices=("long", "wide", "pairwise"), default="long",
                        help="long: a row per member and session (default); wide: a row per "
                        "dyad and session with ROLE_x columns; pairwise: x_A/x_P columns")


def _load(args: argparse.Namespace) -> SessionData:
    roles = tuple(r.strip() for r in args.roles.split(",")) if args.roles else None
    common = {"dyad": args.dyad, "session": args.session, "therapist": args.therapist}
    if args.layout == "wide":
        if roles is None:
            raise SpecError("--layout wide needs --roles A,B (the column prefixes)")
        return SessionData.from_wide(args.data, roles=roles, **common)
    if args.role is None:
        raise SpecError(f"--layout {args.layout} needs --role COL")
    read = SessionData.from_pairwise if args.layout == "pairwise" else SessionData.from_long
    return read(args.data, role=args.role, roles=roles, **common)


def load(args: argparse.Namespace) -> SessionData:
    roles = tuple(r.strip() for r in args.roles.split(",")) if args.roles else None
    common = {"dyad": args.dyad, "session": args.session, "therapist": args.therapist}
    if args.layout == "wide":
        if roles is None:
            raise SpecError("--layout wide needs --roles A,B (the column prefixes)")
        return SessionData.from_wide(args.data, roles=roles, **common)
    if args.role is None:
        raise SpecError(f"--layout {args.layout} needs --role COL")
    read = SessionData.from_pairwise if args.layout == "pairwise" else SessionData.from_long
    return read(args.data, role=args.role, roles=roles, **common)
