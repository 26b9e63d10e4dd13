"""``apim power``: Monte Carlo power of an effect over designs."""

from __future__ import annotations

import argparse
from typing import Any

from apim.cli.simulate import truth_from
from apim.engine.residual import RESIDUAL_NAMES
from apim.model.spec import APIMSpec, CovarianceSpec
from apim.simulation.power import power

__all__ = ["register", "run"]


def run(args: argparse.Namespace) -> None:
    """Run the power analysis and print the table."""

    def numbers(text: str | None) -> list[int] | None:
        return [int(v) for v in text.split(",")] if text else None

    grid = {}
    if args.dyads:
        grid["n_dyads"] = numbers(args.dyads)
    if args.sessions:
        grid["n_sessions"] = numbers(args.sessions)
    analysis = APIMSpec("y", ("x",), interaction=args.interaction,
                        moderators=("treatment",) if args.moderated else (),
                        covariance=CovarianceSpec(random=args.random,
                                                  residual=args.residual))
    result = power(truth_from(args), analysis, args.hypothesis, grid=grid or None,
                   replicates=args.replicates, alpha=args.alpha, seed=args.seed,
                   n_jobs=args.n_jobs, scheduler=args.scheduler, progress=not args.quiet)
    print(result.table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"{result.hypothesis}; alpha {result.alpha}; {result.seconds:.1f} s")
    if args.csv:
        result.table.to_csv(args.csv, index=False)
    if args.figure:
        result.plot(by="n_sessions" if "n_sessions" in grid else None).figure.savefig(
            args.figure, dpi=120, bbox_inches="tight")


def register(commands: Any) -> None:
    """Add the subcommand to the ``apim`` parser."""
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
    pw.add_argument("--residual", choices=tuple(RESIDUAL_NAMES), default="un")
    pw.add_argument("--csv", help="write the power table to this CSV file")
    pw.add_argument("--figure", help="write the power curve to this image file")
    pw.add_argument("--quiet", action="store_true", help="no progress bar")
    pw.set_defaults(run=run)
