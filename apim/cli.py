"""Command line: ``apim demo`` and ``apim describe``.

Data problems print one line on stderr and exit with code 2, never a traceback.

Examples
--------
>>> main(["describe", "no-such-file.csv", "--dyad", "d", "--role", "r"])
2
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from apim import __version__
from apim.data.session import SessionData
from apim.errors import DataError, OptionError

EXIT_DATA = 2


def _add_columns(parser: argparse.ArgumentParser) -> None:
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
            raise OptionError("--layout wide needs --roles A,B (the column prefixes)")
        return SessionData.from_wide(args.data, roles=roles, **common)
    if args.role is None:
        raise OptionError(f"--layout {args.layout} needs --role COL")
    read = SessionData.from_pairwise if args.layout == "pairwise" else SessionData.from_long
    return read(args.data, role=args.role, roles=roles, **common)


def _demo(args: argparse.Namespace) -> None:
    from apim.datasets import load_alliance
    from apim.decompose import decompose

    data = load_alliance()
    print(data.report(["alliance", "outcome"]))
    parts = decompose(data, ["alliance"])
    print("\nWithin/between decomposition of alliance (person-mean centring):")
    summary = parts.components.groupby(data.frame["role"]).agg(["mean", "std"])
    print(summary.round(3).T.to_string())


def _describe(args: argparse.Namespace) -> None:
    from apim.decompose import decompose

    data = _load(args)
    predictors = args.predictor or []
    if predictors:
        decompose(data, predictors)  # checks each predictor can be split
    variables = (args.variable or []) + predictors
    report = data.report(variables or None)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report)


def build_parser() -> argparse.ArgumentParser:
    """The ``apim`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="apim", description="Actor-partner interdependence models for "
        "session-by-session dyadic data")
    parser.add_argument("--version", action="version", version=f"apim {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the main analysis on the bundled example")
    demo.set_defaults(run=_demo)
    describe = commands.add_parser("describe", help="validate a data file and print its report")
    _add_columns(describe)
    describe.add_argument("--variable", action="append",
                          help="rating used in the analysis (repeatable; default: all numeric)")
    describe.add_argument("--predictor", action="append",
                          help="predictor to be split into within and between parts; "
                          "checked for that (repeatable)")
    describe.add_argument("--json", action="store_true", help="print the report as JSON")
    describe.set_defaults(run=_describe)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (DataError, OSError) as error:
        message = " ".join(str(error).split())
        print(f"apim: error: {message}", file=sys.stderr)
        return EXIT_DATA
    return 0


if __name__ == "__main__":
    sys.exit(main())
