"""Command line: ``apim demo``, ``describe``, ``fit``, ``simulate`` and ``power``.

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
from typing import TYPE_CHECKING

from apim import __version__
from apim.data.session import SessionData
from apim.errors import DataError, OptionError

if TYPE_CHECKING:
    from apim.simulate import SimulationSpec
    from apim.spec import APIMSpec

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


def _spec(args: argparse.Namespace) -> "APIMSpec":
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


def _settings(pairs: Sequence[str] | None) -> dict[str, object]:
    """``FIELD=VALUE`` pairs for SimulationSpec, typed by the field's default."""
    from apim.simulate import SimulationSpec

    defaults = SimulationSpec().to_dict()
    out = {}
    for pair in pairs or []:
        name, _, value = pair.partition("=")
        if name not in defaults or not value:
            raise OptionError(f"--set {pair!r}: use FIELD=VALUE with a field of the "
                              f"simulation, e.g. partner_within=0.1,0.1 or residual_phi=0.3")
        default = defaults[name]
        try:
            if isinstance(default, tuple):
                items = [v.strip() for v in value.split(",")]
                out[name] = tuple(type(default[0])(v) for v in items)
            else:
                out[name] = type(default)(value)
        except ValueError:
            raise OptionError(f"--set {pair!r}: {value!r} is not a valid {name}") from None
    return out


def _truth(args: argparse.Namespace) -> "SimulationSpec":
    from apim.simulate import SimulationSpec

    return SimulationSpec(**_settings(args.set))


def _simulate(args: argparse.Namespace) -> None:
    from apim.simulate import simulate

    truth = _truth(args)
    data = simulate(truth.replace(n_dyads=args.dyads or truth.n_dyads,
                                  n_sessions=args.sessions or truth.n_sessions), args.seed)
    data.to_long().to_csv(args.out, index=False)
    print(f"wrote {args.out}: {len(data.frame)} rows, {data.n_dyads} dyads")


def _power(args: argparse.Namespace) -> None:
    from apim.power import power
    from apim.spec import APIMSpec

    def numbers(text: str | None) -> list[int] | None:
        return [int(v) for v in text.split(",")] if text else None

    grid = {}
    if args.dyads:
        grid["n_dyads"] = numbers(args.dyads)
    if args.sessions:
        grid["n_sessions"] = numbers(args.sessions)
    analysis = APIMSpec("y", ("x",), interaction=args.interaction,
                        moderators=("treatment",) if args.moderated else (),
                        random=args.random, residual=args.residual)
    result = power(_truth(args), analysis, args.hypothesis, grid=grid or None,
                   replicates=args.replicates, alpha=args.alpha, seed=args.seed,
                   n_jobs=args.n_jobs, scheduler=args.scheduler, progress=not args.quiet)
    print(result.table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"{result.hypothesis}; alpha {result.alpha}; {result.seconds:.1f} s")
    if args.csv:
        result.table.to_csv(args.csv, index=False)
    if args.figure:
        result.plot(by="n_sessions" if "n_sessions" in grid else None).figure.savefig(
            args.figure, dpi=120, bbox_inches="tight")


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

    sim = commands.add_parser("simulate", help="simulate session data under the full APIM "
                              "(columns x, the predictor, and y, the outcome)")
    sim.add_argument("out", help="CSV file to write")
    sim.add_argument("--dyads", type=int, help="number of dyads (default 241)")
    sim.add_argument("--sessions", type=int, help="sessions per dyad (default 30)")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--set", action="append", metavar="FIELD=VALUE",
                     help="a field of apim.simulate.SimulationSpec (repeatable)")
    sim.set_defaults(run=_simulate)

    pw = commands.add_parser("power", help="Monte Carlo power of an effect over designs")
    pw.add_argument("--hypothesis", required=True,
                    help="effect name (tested against 0) or Wald hypothesis, e.g. "
                    "patient.partner.within")
    pw.add_argument("--dyads", help="numbers of dyads, comma separated")
    pw.add_argument("--sessions", help="numbers of sessions, comma separated")
    pw.add_argument("--replicates", type=int, default=1000)
    pw.add_argument("--alpha", type=float, default=0.05)
    pw.add_argument("--seed", type=int, default=0)
    pw.add_argument("--n-jobs", type=int, default=1, help="parallel workers (-1: all)")
    pw.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    pw.add_argument("--set", action="append", metavar="FIELD=VALUE",
                    help="a field of the data-generating process (repeatable)")
    pw.add_argument("--interaction", action="store_true", help="analysis: actor x partner")
    pw.add_argument("--moderated", action="store_true", help="analysis: moderation by "
                    "treatment")
    pw.add_argument("--random", choices=("none", "intercepts", "slopes"),
                    default="intercepts")
    pw.add_argument("--residual", choices=("un", "cs", "diagonal", "independent", "ar1",
                                           "un-ar1"), default="un")
    pw.add_argument("--csv", help="write the power table to this CSV file")
    pw.add_argument("--figure", help="write the power curve to this image file")
    pw.add_argument("--quiet", action="store_true", help="no progress bar")
    pw.set_defaults(run=_power)
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
