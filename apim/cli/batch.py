"""``apim batch``: run a plan of analyses (see :mod:`apim.plan`)."""

from __future__ import annotations

import argparse
from typing import Any

from apim.cli.help import HelpFormatter, examples
from apim.cli.options import add_jobs, add_quiet, n_jobs, show_progress
from apim.errors import ApimError, SpecError

__all__ = ["register", "run"]

SHOWN = ["analysis", "model", "data", "subset", "outcome", "predictors", "moderators", "center",
         "lag", "random", "residual", "method", "family", "nagq", "initial", "block_rows",
         "scheduler", "check"]


def run(args: argparse.Namespace) -> None:
    """Print the example, check the plan, or run it."""
    from apim.plan import Plan, check_plan, default_out, example_plan, run_plan

    if args.example:
        print(example_plan(), end="")
        return
    if args.plan is None:
        raise SpecError("give a plan file (apim batch PLAN.toml) or --example to print one")
    workers = n_jobs(args.n_jobs)
    plan = Plan.from_file(args.plan)
    if args.dry_run:
        table = check_plan(plan)
        columns = [c for c in SHOWN if c in table]
        shown = table[columns].astype(object)
        print(shown.where(shown.notna(), "").to_string(index=False, max_colwidth=60))
        bad = table[table["check"] != "ok"]
        if len(bad):
            first = bad.iloc[0]
            raise SpecError(f"{len(bad)} of {len(table)} analyses would fail; first "
                            f"{first['analysis']}: {first['check']}")
        print(f"{len(table)} analyses checked: all ok (nothing fitted)")
        return
    out = args.out or default_out(plan)
    result = run_plan(plan, out, force=args.force, retry_failed=args.retry_failed,
                      n_jobs=workers, scheduler=args.scheduler, progress=show_progress(args),
                      reports=args.reports)
    counts = result.manifest["counts"]
    print(f"plan {plan.name}: {counts['analyses']} analyses, {counts['ok']} ok, "
          f"{counts['failed']} failed; {counts['fitted']} fitted, {counts['skipped']} "
          f"reused -> {result.out}")
    failed = result.models[result.models["status"] != "ok"]
    for row in failed.itertuples():
        print(f"  failed {row.analysis}: {row.error_type}: {row.error}")
    if len(failed):
        raise ApimError(f"{len(failed)} of {counts['analyses']} analyses failed (the others "
                        f"completed); see {result.out / 'models.csv'}")


def register(commands: Any) -> None:
    """Add the subcommand to the ``apim`` parser."""
    parser = commands.add_parser(
        "batch", help="run a plan of many analyses (TOML)",
        description="Run every analysis of a plan file: lists expand as products, results "
        "are stored per analysis under a key of spec, data and version (a second run "
        "reuses them; a killed run resumes), and one tidy table is written.",
        formatter_class=HelpFormatter,
        epilog=examples("apim batch --example > plan.toml", "apim batch plan.toml --dry-run",
                        "apim batch plan.toml --n-jobs 2",
                        "apim batch plan.toml --out results --scheduler tcp://host:8786"))
    parser.add_argument("plan", nargs="?", help="the plan file (TOML)")
    parser.add_argument("--out", help="output directory: new, empty or one apim batch "
                        "made (default: PLAN.results beside the plan)")
    parser.add_argument("--force", action="store_true",
                        help="refit stored results too, and write into an --out folder "
                        "apim did not make (never over the plan's own files)")
    parser.add_argument("--retry-failed", action="store_true",
                        help="refit analyses whose stored result is a failure")
    parser.add_argument("--dry-run", action="store_true",
                        help="list and check every analysis without fitting")
    add_jobs(parser)
    parser.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    parser.add_argument("--reports", action="store_true",
                        help="also write an HTML report per analysis (slower)")
    add_quiet(parser)
    parser.add_argument("--example", action="store_true",
                        help="print a commented example plan (bundled data) and exit")
    parser.set_defaults(run=run)
