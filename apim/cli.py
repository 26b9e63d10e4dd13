"""Command line: ``apim demo``, ``apim describe`` and ``apim fit``.

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
    from apim.results import fit
    from apim.spec import APIMSpec
    from apim.wald import wald_test

    data = load_alliance()
    print(data.report(["alliance", "outcome"]))
    spec = APIMSpec(outcome="outcome", predictors=("alliance",), moderators=("treatment",))
    result = fit(data, spec)
    print()
    print(result.summary())
    print()
    print(wald_test(result, "patient.actor.within = therapist.actor.within"))


def _spec(args: argparse.Namespace):  # noqa: ANN202
    from apim.decompose import DecompositionSpec
    from apim.spec import APIMSpec

    center = args.center or ("therapist" if args.therapist_level else "person")
    decomposition = DecompositionSpec(center=center, lag=args.lag, detrend=args.detrend)
    return APIMSpec(outcome=args.outcome, predictors=tuple(args.predictor),
                    decomposition=decomposition, distinguishable=not args.indistinguishable,
                    interaction=args.interaction, moderators=tuple(args.moderator or ()),
                    covariates=tuple(args.covariate or ()), random=args.random,
                    residual=args.residual, therapist_level=args.therapist_level,
                    method=args.method.upper())


def _fit(args: argparse.Namespace) -> None:
    from apim.results import fit

    result = fit(_load(args), _spec(args), df=args.df)
    text = {"table": result.summary, "markdown": result.to_markdown,
            "latex": result.to_latex, "json": result.to_json}[args.format]()
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            handle.write(result.to_json())


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

    fit = commands.add_parser("fit", help="fit an APIM and print its effects table")
    _add_columns(fit)
    fit.add_argument("--outcome", required=True, help="each member's outcome column")
    fit.add_argument("--predictor", action="append", required=True,
                     help="predictor rated by both members (repeatable)")
    fit.add_argument("--center", choices=("person", "therapist", "grand", "none"),
                     help="decomposition (default person; therapist with --therapist-level)")
    fit.add_argument("--lag", type=int, default=0, help="lag of the predictors in sessions")
    fit.add_argument("--detrend", action="store_true",
                     help="remove each person's linear trend before the split")
    fit.add_argument("--indistinguishable", action="store_true",
                     help="one intercept and effects pooled over roles")
    fit.add_argument("--interaction", action="store_true", help="add actor x partner terms")
    fit.add_argument("--moderator", action="append", help="dyad-level moderator (repeatable)")
    fit.add_argument("--covariate", action="append", help="covariate (repeatable)")
    fit.add_argument("--random", choices=("none", "intercepts", "slopes"),
                     default="intercepts", help="random effects per dyad")
    fit.add_argument("--residual", choices=("un", "cs", "diagonal", "independent", "ar1",
                                            "un-ar1"), help="residual structure (default un; "
                     "cs with --indistinguishable)")
    fit.add_argument("--therapist-level", action="store_true",
                     help="random intercept per therapist (needs --therapist)")
    fit.add_argument("--method", choices=("reml", "ml"), default="reml")
    fit.add_argument("--df", choices=("satterthwaite", "containment"), default="satterthwaite")
    fit.add_argument("--format", choices=("table", "markdown", "latex", "json"),
                     default="table")
    fit.add_argument("--json", metavar="FILE", help="also write the full result as JSON")
    fit.set_defaults(run=_fit)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except BrokenPipeError:  # output piped into head and the like
        return 0
    except (DataError, OSError) as error:
        message = " ".join(str(error).split())
        print(f"apim: error: {message}", file=sys.stderr)
        return EXIT_DATA
    return 0


if __name__ == "__main__":
    sys.exit(main())
