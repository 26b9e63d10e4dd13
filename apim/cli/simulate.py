"""``apim simulate``: simulate session data under the full APIM.

Every option is checked before anything is simulated; a misuse is a
:class:`~apim.errors.SpecError` whose one-line message names the option, the value and
what to give instead (the command prints it and exits with code 2).

Examples
--------
>>> cut_points("-1,1;-0.5,1.5")
((-1.0, 1.0), (-0.5, 1.5))
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from apim.cli.common import output_path
from apim.cli.help import HelpFormatter, examples
from apim.cli.set_fields import settings, whole, with_counts
from apim.errors import SpecError
from apim.files import check_new_output, write_csv
from apim.simulation.simulate import SimulationSpec, check_size, simulate

__all__ = ["register", "run", "truth_from", "cut_points", "add_family", "FAMILIES", "LINKS"]

FAMILIES = ("gaussian", "binomial", "ordinal")
LINKS = ("logit", "probit")


def cut_points(text: str | None) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """``--thresholds``: cut-points of an ordinal outcome, ``-1,1`` for both roles or
    ``-1,1;-0.5,1.5`` per role (reference role first); None stays None."""
    if text is None:
        return None
    try:
        sets = [tuple(float(v) for v in part.split(",")) for part in text.split(";")]
    except ValueError:
        sets = []
    if not 1 <= len(sets) <= 2 or not all(math.isfinite(v) for c in sets for v in c):
        raise SpecError(f"--thresholds {text}: give the cut-points as numbers separated by "
                        "commas, one set for both roles (--thresholds=-1,1) or one per role "
                        "separated by ';' (--thresholds='-1,1;-0.5,1.5')")
    return (sets[0], sets[-1])


def _family_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--family``, ``--link`` and ``--thresholds`` options as SimulationSpec fields."""
    family = getattr(args, "family", None) or "gaussian"
    if family not in FAMILIES:
        raise SpecError(f"--family {family}: choose one of {', '.join(FAMILIES)}")
    values: dict[str, Any] = {"family": family}
    link = getattr(args, "link", None)
    if link is not None:
        if link not in LINKS:
            raise SpecError(f"--link {link}: choose one of {', '.join(LINKS)}")
        if family == "gaussian":
            raise SpecError(f"--link {link} applies to --family binomial or ordinal")
        values["link"] = link
    cuts = cut_points(getattr(args, "thresholds", None))
    if cuts is not None:
        if family != "ordinal":
            raise SpecError(f"--thresholds {args.thresholds} applies to --family ordinal")
        values["thresholds"] = cuts
    return values


def add_family(parser: argparse.ArgumentParser) -> None:
    """``--family``, ``--link`` and ``--thresholds`` (the outcome's distribution)."""
    parser.add_argument("--family", metavar="{" + ",".join(FAMILIES) + "}",
                        help="the outcome: gaussian (default), binomial (0/1 events: give "
                        "its intercept, the log-odds of an event, with --set "
                        "intercept=-1.5,-1.5) or ordinal (categories 0..K-1: give "
                        "--thresholds)")
    parser.add_argument("--link", metavar="{" + ",".join(LINKS) + "}",
                        help="binomial or ordinal: logit (default) or probit")
    parser.add_argument("--thresholds", metavar="T[,T...][;T,...]",
                        help="ordinal: K-1 increasing cut-points on the latent scale, "
                        "for both roles (--thresholds=-1,1) or per role separated by ';' "
                        "(--thresholds='-1,1;-0.5,1.5'); P(y <= k) = F(t_k - eta)")


def truth_from(args: argparse.Namespace, **counts: int | None) -> SimulationSpec:
    """The data-generating process of the ``--set FIELD=VALUE`` options, the outcome's
    family (``--family``, ``--link``, ``--thresholds``) and the counts (``n_dyads=...``)
    given by their own options."""
    family = _family_fields(args)
    values = with_counts(settings(args.set), counts)
    values.update(family)
    try:
        return SimulationSpec(**values)
    except SpecError as error:
        given = "--family and the --set options" if family["family"] != "gaussian" \
            else "the --set options"
        raise SpecError(f"{given} do not fit together: {error}") from None


def run(args: argparse.Namespace) -> None:
    """Check every option, then simulate and write the CSV."""
    output_path("simulate OUT", args.out, (".csv",), "the simulated data")
    dyads = whole("--dyads", args.dyads, 2, "the number of dyads")
    sessions = whole("--sessions", args.sessions, 1, "the number of sessions")
    seed = whole("--seed", args.seed, 0, "the seed")
    if args.dynamic:
        from apim.cli.dynamic_runs import dynamic_truth, simulate_dynamic_run

        dynamic_truth(args, n_dyads=dyads, n_sessions=sessions)  # checked before writing
        check_new_output(args.out, "simulate OUT", force=args.force)
        simulate_dynamic_run(args, dyads, sessions, seed or 0)
        return
    truth = truth_from(args, n_dyads=dyads, n_sessions=sessions)
    check_new_output(args.out, "simulate OUT", force=args.force)
    check_size(truth)
    data = simulate(truth, seed or 0)
    write_csv(data.to_long(), args.out, what=Path(args.out).name)
    print(f"wrote {args.out}: {len(data.frame)} rows, {data.n_dyads} dyads")


def register(commands: Any) -> None:
    """Add the subcommand to the ``apim`` parser."""
    defaults = SimulationSpec()
    sim = commands.add_parser(
        "simulate", help="simulate session data under the full APIM "
        "(columns x, the predictor, and y, the outcome)",
        description="Simulate session-by-session dyadic data under the full APIM "
        "(apim.simulate; every field of the data-generating process can be set with "
        "--set) and write it as a long CSV file.", formatter_class=HelpFormatter,
        epilog=examples("apim simulate sim.csv --dyads 120 --sessions 12 --seed 1",
                        "apim simulate sim.csv --set partner_within=0.1,0.2 "
                        "--set residual_phi=0.3 --force",
                        "apim simulate events.csv --family binomial "
                        "--set intercept=-1.5,-1.5 --set partner_within=0.3,0.3",
                        "apim simulate ranks.csv --family ordinal --link probit "
                        "--thresholds='-1,1;-0.5,1.5'",
                        "apim simulate lagged.csv --dynamic --dyads 100 --sessions 10 "
                        "--set p_missing=0.1"))
    sim.add_argument("out", help="CSV file to write")
    sim.add_argument("--dyads", metavar="N",
                     help=f"number of dyads, >= 2 (default: {defaults.n_dyads})")
    sim.add_argument("--sessions", metavar="N",
                     help=f"sessions per dyad, >= 1 (default: {defaults.n_sessions})")
    sim.add_argument("--seed", metavar="N", default="0", help="random seed, >= 0")
    sim.add_argument("--force", action="store_true", help="replace OUT if it exists")
    sim.add_argument("--set", action="append", metavar="FIELD=VALUE",
                     help="a field of apim.simulation.simulate.SimulationSpec, e.g. "
                     "partner_within=0.1,0.1 or residual_phi=0.3 (repeatable)")
    add_family(sim)
    sim.add_argument("--dynamic", action="store_true",
                     help="the dynamic APIM's process (apim.simulation.dynamic."
                     "simulate_dynamic): --set takes the fields of DynamicSimulationSpec "
                     "(phi, sigma_w, sigma_b as 4 rows separated by ';', means, p_missing, "
                     "dropout)")
    sim.set_defaults(run=run)
