"""``apim therapist``: variance shares at the therapist, dyad and session levels, and the
association of a predictor with an outcome split into therapist- and patient-level parts."""

from __future__ import annotations

import argparse
from typing import Any

from apim.analyses.therapist import TherapistSpec, therapist_effects
from apim.cli.common import add_columns, load
from apim.cli.help import HelpFormatter
from apim.cli.options import add_jobs, add_quiet, n_jobs, show_progress
from apim.files import check_new_output, write_csv

__all__ = ["register", "run"]

EXAMPLE = """example:
  apim therapist alliance_sessions.csv --dyad dyad --session session --role role \\
      --therapist therapist --variable alliance --variable outcome \\
      --predictor alliance --outcome outcome --bootstrap 500 --seed 1 --n-jobs 2

Variance shares come from per-role three-level models (lme(y ~ 1, random = ~ 1 |
therapist/dyad) in nlme terms); the association split follows Baldwin, Wampold & Imel
(2007): patient-level (within-therapist), therapist-level and contextual effects."""


def _spec(args: argparse.Namespace) -> TherapistSpec:
    return TherapistSpec(variables=tuple(args.variable or ()), predictor=args.predictor,
                         outcome=args.outcome, covariates=tuple(args.covariate or ()),
                         ci=args.ci, n_boot=args.bootstrap, level=args.level,
                         method=args.method.upper(), session_split=not args.no_session_split)


def run(args: argparse.Namespace) -> None:
    """Compute and print the tables; optionally write them as CSV."""
    spec = _spec(args)
    workers = n_jobs(args.n_jobs)
    for option in ("shares_csv", "association_csv", "session_csv"):
        if getattr(args, option):
            check_new_output(getattr(args, option), "--" + option.replace("_", "-"),
                             force=args.force, inputs=[args.data])
    columns = [*spec.variables, *(c for c in (spec.predictor, spec.outcome) if c),
               *spec.covariates]
    data = load(args, columns=list(dict.fromkeys(columns)))
    result = therapist_effects(data, spec, seed=args.seed, n_jobs=workers,
                               progress=show_progress(args))
    print(result.summary())
    tables = {"shares": result.shares.table if result.shares is not None else None,
              "dyad": result.dyad_association, "session": result.session_association}
    for option, key in (("shares_csv", "shares"), ("association_csv", "dyad"),
                        ("session_csv", "session")):
        path, table = getattr(args, option), tables[key]
        if path and table is not None:
            write_csv(table, path, what=path)


def register(commands: Any) -> None:
    """Add the subcommand to the ``apim`` parser."""
    cmd = commands.add_parser(
        "therapist", help="therapist effects: variance shares and the therapist-level vs "
        "patient-level association", description=__doc__, epilog=EXAMPLE,
        formatter_class=HelpFormatter)
    add_columns(cmd)
    cmd.add_argument("--variable", action="append",
                     help="variable whose variance shares are wanted (repeatable)")
    cmd.add_argument("--predictor", help="predictor of the association split (e.g. alliance)")
    cmd.add_argument("--outcome", help="outcome of the association split")
    cmd.add_argument("--covariate", action="append",
                     help="fixed effect in every model, e.g. treatment (repeatable; text "
                     "columns are dummy coded against their first level in sorted order)")
    cmd.add_argument("--ci", choices=("auto", "bootstrap", "exact", "none"), default="auto",
                     help="interval for the shares: exact F-based in a balanced one-way "
                     "design, else parametric bootstrap")
    cmd.add_argument("--bootstrap", type=int, default=500, metavar="B",
                     help="parametric bootstrap replicates")
    cmd.add_argument("--level", type=float, default=0.95, help="confidence level")
    cmd.add_argument("--method", choices=("reml", "ml"), default="reml",
                     help="estimation method")
    cmd.add_argument("--seed", type=int, default=None, help="seed of the bootstrap")
    add_jobs(cmd, old=("--jobs",))
    add_quiet(cmd, old_progress=True)
    cmd.add_argument("--no-session-split", action="store_true",
                     help="skip the session-level (three-level APIM) split")
    cmd.add_argument("--shares-csv", metavar="FILE", help="write the shares table")
    cmd.add_argument("--force", action="store_true",
                     help="replace output files that exist (never the data file)")
    cmd.add_argument("--association-csv", metavar="FILE",
                     help="write the dyad-level association table")
    cmd.add_argument("--session-csv", metavar="FILE",
                     help="write the session-level association table")
    cmd.set_defaults(run=run)
