"""``apim power``: Monte Carlo power of an effect over designs.

Every option is checked before any replicate runs (the hypothesis against the effect
names of one design of the analysis); a misuse prints one line naming the option, the
value and what to give instead, and exits with code 2.

With ``--family binomial`` or ``ordinal`` the data are simulated with a binary or
ordinal outcome (``--link``, ``--thresholds``) and every replicate is fitted by the
generalized APIM of that family (``--nagq`` quadrature points, 1 = Laplace), tested
with its z tests.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
from pathlib import Path
from typing import Any

from apim.cli.common import output_path
from apim.cli.help import HelpFormatter, examples
from apim.cli.options import add_jobs, add_quiet, n_jobs, show_progress
from apim.cli.set_fields import whole
from apim.cli.simulate import add_family, truth_from
from apim.engine.mixed.residuals import RESIDUAL_NAMES
from apim.errors import FitError, SpecError
from apim.files import atomic_path, check_new_output, same_file, write_csv
from apim.model.generalized_spec import DEFAULT_NAGQ, MAX_NAGQ, GeneralizedAPIMSpec
from apim.model.spec import APIMSpec, CovarianceSpec
from apim.specbase import Spec

__all__ = ["register", "run"]

RANDOM = ("none", "intercepts", "slopes")
FIGURES = (".png", ".pdf", ".svg")


def _counts(option: str, text: str | None, lowest: int, what: str) -> list[int] | None:
    if text is None:
        return None
    items = [v.strip() for v in text.split(",")]
    try:
        return [int(whole(option, v, lowest, what) or 0) for v in items]
    except SpecError:
        raise SpecError(f"{option} {text}: give {what} as whole numbers >= {lowest} "
                        f"separated by commas, e.g. {option} 60,120,240") from None


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise SpecError(f"--alpha {text}: the level must lie strictly between 0 and 1, "
                        "e.g. --alpha 0.05")
    return value


def _choice(option: str, text: str, choices: tuple[str, ...]) -> str:
    if text not in choices:
        raise SpecError(f"{option} {text}: choose one of {', '.join(choices)}")
    return text


def _common(args: argparse.Namespace) -> tuple[list[int] | None, list[int] | None,
                                               dict[str, Any]]:
    """The designs (--dyads, --sessions), the run's options and the output files,
    parsed and checked (the same for the dynamic APIM)."""
    from apim.simulation.power import check_scheduler

    dyads = _counts("--dyads", args.dyads, 2, "numbers of dyads")
    sessions = _counts("--sessions", args.sessions, 1, "numbers of sessions")
    options = {
        "replicates": whole("--replicates", args.replicates, 1, "the number of replicates"),
        "alpha": _alpha(args.alpha),
        "seed": whole("--seed", args.seed, 0, "the seed"),
        "n_jobs": n_jobs(args.n_jobs),
    }
    try:
        check_scheduler(args.scheduler)
    except SpecError:
        raise SpecError(f"--scheduler {args.scheduler}: not a Dask scheduler address; give "
                        "one like tcp://host:8786") from None
    output_path("--csv", args.csv, (".csv",), "the power table")
    output_path("--figure", args.figure, FIGURES, "the figure")
    for option, path in (("--csv", args.csv), ("--figure", args.figure)):
        if path is not None:
            check_new_output(path, option, force=args.force)
    if args.csv and args.figure and same_file(args.csv, args.figure):
        raise SpecError(f"--csv and --figure name the same file {args.csv}")
    return dyads, sessions, options


def _checked(args: argparse.Namespace) -> dict[str, Any]:
    """Every option, parsed and checked (no work done)."""
    dyads, sessions, options = _common(args)
    options["scheduler"] = args.scheduler
    random = _choice("--random", args.random or "intercepts", RANDOM)
    residual = _choice("--residual", args.residual or "un", tuple(RESIDUAL_NAMES))
    nagq = whole("--nagq", args.nagq, 1, f"the quadrature points (1 to {MAX_NAGQ})")
    if args.figure and importlib.util.find_spec("matplotlib") is None:
        raise SpecError(f"--figure {args.figure}: plotting needs matplotlib: "
                        "pip install matplotlib (a dependency of apim that is missing here)")
    if args.checkpoint is not None and Path(args.checkpoint).exists() \
            and not Path(args.checkpoint).is_dir():
        raise SpecError(f"--checkpoint {args.checkpoint}: is a file; give a folder for the "
                        "finished replicates")
    truth = truth_from(args, n_dyads=dyads[0] if dyads and len(dyads) == 1 else None,
                       n_sessions=sessions[0] if sessions and len(sessions) == 1 else None)
    grid = {}
    if dyads:
        grid["n_dyads"] = dyads
    if sessions:
        grid["n_sessions"] = sessions
    moderators = ("treatment",) if args.moderated else ()
    analysis: Spec
    if truth.family == "gaussian":
        if nagq is not None:
            raise SpecError(f"--nagq {args.nagq} applies to --family binomial or ordinal "
                            "(a Gaussian outcome's likelihood needs no quadrature)")
        analysis = APIMSpec(truth.outcome_name, (truth.predictor_name,),
                            interaction=args.interaction, moderators=moderators,
                            covariance=CovarianceSpec(random=random,  # type: ignore[arg-type]
                                                      residual=residual))
    else:
        _refuse_gaussian_options(args, truth.family)
        if nagq is not None and nagq > MAX_NAGQ:
            raise SpecError(f"--nagq {args.nagq}: give 1 (Laplace) to {MAX_NAGQ} quadrature "
                            "points per dimension")
        analysis = GeneralizedAPIMSpec(truth.outcome_name, (truth.predictor_name,),
                                       family=truth.family,  # type: ignore[arg-type]
                                       link=truth.link, nagq=nagq,
                                       interaction=args.interaction, moderators=moderators)
    return {"truth": truth, "analysis": analysis, "grid": grid or None, **options}


def _refuse_gaussian_options(args: argparse.Namespace, family: str) -> None:
    """--random and --residual describe a Gaussian analysis; the generalized APIM has the
    dyad's two random intercepts and no residual structure."""
    if args.random not in (None, "intercepts"):
        raise SpecError(f"--random {args.random} does not apply to --family {family}: the "
                        "generalized APIM has the dyad's two random intercepts only; drop "
                        "--random")
    if args.residual is not None:
        raise SpecError(f"--residual {args.residual} does not apply to --family {family}: "
                        "a binary or ordinal outcome has no residual structure; drop "
                        "--residual")


def run(args: argparse.Namespace) -> None:
    """Check every option, run the power analysis and print the table."""
    from apim.simulation.power import power

    if args.dynamic:
        from apim.cli.dynamic_runs import power_dynamic_run

        dyads, sessions, common = _common(args)
        table = power_dynamic_run(args, dyads, sessions, common, show_progress(args))
        failed = int(table["failed"].sum())
        if failed:
            raise FitError(f"{failed} of {len(table) * common['replicates']} replicates "
                           "failed; the power above uses only the others")
        return
    options = _checked(args)
    grid = options["grid"] or {}
    result = power(hypothesis=args.hypothesis, progress=show_progress(args),
                   checkpoint=args.checkpoint, **options)
    print(result.table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"{result.hypothesis}; alpha {result.alpha}; {result.seconds:.1f} s"
          + (f"; {result.resumed} replicates read from {args.checkpoint}"
             if result.resumed else ""))
    for _, row in result.failures.iterrows():
        print(f"failed replicates: {row['count']} x {row['error_type']} "
              f"(first: {row['message']})")
    if args.csv:
        write_csv(result.table, args.csv, what=Path(args.csv).name)
    if args.figure:
        figure = result.plot(by="n_sessions" if "n_sessions" in grid else None).figure
        with atomic_path(args.figure) as tmp:
            figure.savefig(tmp, format=Path(args.figure).suffix[1:].lower(), dpi=120,
                           bbox_inches="tight")
    if len(result.failures):
        total = int(result.table["replicates"].sum() + result.table["failed"].sum()
                    + result.table["not_converged"].sum())
        failed = int(result.failures["count"].sum())
        first = result.failures.iloc[0]
        kinds = ", ".join(f"{n} x {k}" for k, n in result.failures.groupby(
            "error_type", sort=False)["count"].sum().items())
        raise FitError(f"{failed} of {total} replicates failed ({kinds}; first: "
                       f"{first['error_type']}: {first['message']}); the power above uses "
                       "only the others")


def register(commands: Any) -> None:
    """Add the subcommand to the ``apim`` parser."""
    pw = commands.add_parser(
        "power", help="Monte Carlo power of an effect over designs",
        description=__doc__, formatter_class=HelpFormatter,
        epilog=examples(
            "apim power --hypothesis patient.partner.within --dyads 60,120,240 "
            "--sessions 10,30 --replicates 500 --n-jobs 2 --csv power.csv "
            "--figure power.png",
            "apim power --hypothesis 'patient.actor.within = therapist.actor.within' "
            "--set actor_within=0.3,0.1 --replicates 200",
            "apim power --family binomial --set intercept=-1.5,-1.5 "
            "--set partner_within=0.4,0.4 --hypothesis patient.partner.within "
            "--dyads 60,120 --sessions 10 --replicates 200 --nagq 1 --n-jobs 2",
            "apim power --dynamic --hypothesis patient.partner.lagged.x --dyads 50,100 "
            "--sessions 10 --replicates 200 --set 'phi=0.4,0,0,0;0,0.4,0,0;"
            "0.2,0.1,0.4,0;0.1,0.2,0,0.4'"))
    pw.add_argument("--hypothesis", required=True,
                    help="effect name (tested against 0) or Wald hypothesis, e.g. "
                    "patient.partner.within")
    pw.add_argument("--dyads", metavar="N[,N...]", help="numbers of dyads, comma separated")
    pw.add_argument("--sessions", metavar="N[,N...]",
                    help="numbers of sessions, comma separated")
    pw.add_argument("--replicates", metavar="N", default="1000",
                    help="replicates per design")
    pw.add_argument("--alpha", metavar="A", default="0.05", help="level, in (0, 1)")
    pw.add_argument("--seed", metavar="N", default="0", help="random seed, >= 0")
    add_jobs(pw)
    pw.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    pw.add_argument("--checkpoint", metavar="DIR", help="folder keeping finished replicates; "
                    "a rerun with the same settings skips them")
    pw.add_argument("--set", action="append", metavar="FIELD=VALUE",
                    help="a field of the data-generating process (repeatable)")
    pw.add_argument("--interaction", action="store_true", help="analysis: actor x partner")
    pw.add_argument("--moderated", action="store_true", help="analysis: moderation by "
                    "treatment")
    pw.add_argument("--random", metavar="{" + ",".join(RANDOM) + "}",
                    help="random effects of the analysis (default: intercepts)")
    pw.add_argument("--residual", metavar="{" + ",".join(RESIDUAL_NAMES) + "}",
                    help="residual structure of the analysis (default: un)")
    add_family(pw)
    pw.add_argument("--dynamic", action="store_true",
                    help="the dynamic APIM (lagged effects; apim.simulation.dynamic."
                    "dynamic_power): --set takes the fields of DynamicSimulationSpec "
                    "(phi, sigma_w, sigma_b as 4 rows separated by ';', means, p_missing, "
                    "dropout)")
    pw.add_argument("--nagq", metavar="K", help="binomial or ordinal: quadrature points "
                    f"per dimension of the analysis, 1 (Laplace) to {MAX_NAGQ} (default: "
                    f"{DEFAULT_NAGQ})")
    pw.add_argument("--csv", help="write the power table to this CSV file")
    pw.add_argument("--figure", help="write the power curve to this .png, .pdf or .svg file")
    pw.add_argument("--force", action="store_true",
                    help="replace the --csv or --figure file if it exists")
    add_quiet(pw)
    pw.set_defaults(run=run)
