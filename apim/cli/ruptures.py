"""``apim ruptures``: rupture-repair episodes in both members' session-by-session ratings."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from apim.analyses.ruptures import RuptureResult, RuptureSpec, detect_ruptures
from apim.cli.common import add_columns, load, output_path
from apim.errors import SpecError
from apim.files import atomic_path, check_new_output, write_csv

__all__ = ["register", "run"]

EXAMPLE = """\
example:
  apim ruptures sessions.csv --dyad dyad --session session --role role \\
      --variable alliance --k 1.5 --window 3 \\
      --episodes episodes.csv --flags flags.csv --dyads dyads.csv

Drops are measured from each member's previous rated session; repair windows and
declines count session numbers. Without output files the episodes are printed."""


def _spec(args: argparse.Namespace) -> RuptureSpec:
    return RuptureSpec(rule=args.rule, k=args.k, sd=args.sd, reliability=args.reliability,
                       window=args.window, tolerance=args.tolerance, decline=args.decline,
                       scale_min=args.scale_min)


def run(args: argparse.Namespace) -> None:
    """Detect the episodes, print the summary and write the tables asked for."""
    if args.figure_dyad is not None and args.figure is None:
        raise SpecError("--figure-dyad needs --figure OUT.png")
    output_path("--figure", args.figure, (".png", ".pdf", ".svg"), "the figure")
    for option in ("episodes", "flags", "dyads", "figure"):
        if getattr(args, option):
            check_new_output(getattr(args, option), f"--{option}", force=args.force,
                             inputs=[args.data])
    spec = _spec(args)
    result = detect_ruptures(load(args), args.variable, spec)
    print(result.describe())
    user = {"dyad": args.dyad, "session": args.session or "session", "role": args.role or "role"}
    outputs = {"episodes": result.episodes, "flags": result.flags, "dyads": result.dyads}
    written = False
    for name, table in outputs.items():
        path = getattr(args, name)
        if path:
            write_csv(table.rename(columns=user), path, what=path)
            print(f"{name} written to {path}")
            written = True
    if not written and len(result.episodes):
        print()
        print(result.episodes.rename(columns=user).to_string(index=False))
    if args.figure:
        _figure(result, args)


def _figure(result: RuptureResult, args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    dyad: Any = args.figure_dyad
    if dyad is None:
        if result.episodes.empty:
            raise SpecError("no episodes to draw; name a dyad with --figure-dyad")
        dyad = result.episodes["dyad"].iloc[0]
    else:
        known = {str(d): d for d in result.dyads["dyad"]}
        if dyad not in known:
            raise SpecError(f"--figure-dyad {dyad!r} is not a dyad of the data")
        dyad = known[dyad]
    fig = result.plot(dyad)
    with atomic_path(args.figure) as tmp:
        fig.savefig(tmp, dpi=150, format=Path(args.figure).suffix[1:].lower())
    print(f"figure of dyad {dyad} written to {args.figure}")


def register(commands: Any) -> None:
    """Add the subcommand to the ``apim`` parser."""
    parser = commands.add_parser(
        "ruptures", help="rupture-repair episodes in both members' ratings",
        description="Find rupture-repair episodes (drops of a rating and their repair) in "
        "each member's session-by-session series, with per-session flags and per-dyad "
        "summaries.", epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_columns(parser)
    parser.add_argument("--variable", required=True,
                        help="the rating to follow, e.g. alliance (higher is better)")
    parser.add_argument("--rule", choices=("drop", "sudden"), default="drop",
                        help="drop: a drop of k reference SDs from the previous rated session;"
                        " sudden: the three criteria of Tang & DeRubeis (1999) adapted to "
                        "drops (default: drop)")
    parser.add_argument("--k", type=float, default=None,
                        help="multiplier of the reference SD (default: 1 with --sd rci, "
                        "else 2)")
    parser.add_argument("--sd", choices=("points", "own", "changes", "sample", "larger", "rci"),
                        default=None, help="reference SD: 1 scale point, the member's own "
                        "SD, SD of their session-to-session changes, the role's sample SD, the "
                        "larger of own and sample, or the reliable-change cut-off (default: "
                        "own; rci with --rule sudden)")
    parser.add_argument("--reliability", type=float, default=None,
                        help="reliability of the scale, for --sd rci (default: none)")
    parser.add_argument("--window", type=int, default=3,
                        help="repair window in sessions after the onset (default: 3)")
    parser.add_argument("--tolerance", type=float, default=0.0,
                        help="scale points below the pre-drop level that still count as "
                        "repaired (default: 0)")
    parser.add_argument("--decline", type=int, default=1,
                        help="longest decline in sessions measured as one drop (default: 1, "
                        "single-session drops)")
    parser.add_argument("--scale-min", type=float, default=None,
                        help="lowest possible score, for the 25%% criterion of --rule sudden")
    parser.add_argument("--episodes", metavar="OUT.csv", help="write one row per episode")
    parser.add_argument("--force", action="store_true",
                        help="replace output files that exist (never the data file)")
    parser.add_argument("--flags", metavar="OUT.csv",
                        help="write the per-session flags (one row per data row)")
    parser.add_argument("--dyads", metavar="OUT.csv", help="write the per-dyad summary")
    parser.add_argument("--figure", metavar="OUT.png",
                        help="draw one dyad's trajectories with the episodes marked")
    parser.add_argument("--figure-dyad", metavar="ID",
                        help="the dyad to draw (default: the first with an episode)")
    parser.set_defaults(run=run)
