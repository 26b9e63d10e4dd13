"""``apim simulate --dynamic`` and ``apim power --dynamic``: the dynamic APIM's
data-generating process (:class:`~apim.simulation.dynamic.DynamicSimulationSpec`, its
fields set with ``--set``, matrices as rows separated by ``;``) simulated by
:func:`~apim.simulation.dynamic.simulate_dynamic`, and the Monte Carlo power of a lagged
effect by :func:`~apim.simulation.dynamic.dynamic_power` (one row per design).

Options of the observed-mean or generalized APIM that the dynamic runs do not have are
refused with a one-line reason (exit 2).

Examples
--------
>>> import argparse
>>> args = argparse.Namespace(set=["p_missing=0.1"], family=None, link=None,
...                           thresholds=None)
>>> dynamic_truth(args, n_dyads=20, n_sessions=5).p_missing
0.1
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

from apim.errors import SpecError
from apim.files import write_csv

__all__ = ["dynamic_truth", "refuse", "simulate_dynamic_run", "power_dynamic_run"]


def refuse(args: argparse.Namespace, options: dict[str, str]) -> None:
    """Exit 2 naming the first option (``dest``: ``--flag``) given with ``--dynamic``."""
    for dest, flag in options.items():
        value = getattr(args, dest, None)
        if value not in (None, False):
            raise SpecError(f"{flag} does not apply to --dynamic: the dynamic APIM "
                            "(lagged effects of x and y of both members) has no such "
                            f"option; drop {flag} or --dynamic")


def dynamic_truth(args: argparse.Namespace, **counts: int | None) -> Any:
    """The :class:`DynamicSimulationSpec` of ``--set`` and the counts."""
    from apim.cli.set_fields import settings, with_counts
    from apim.simulation.dynamic import DynamicSimulationSpec

    refuse(args, {"family": "--family", "link": "--link", "thresholds": "--thresholds"})
    values = with_counts(settings(args.set, DynamicSimulationSpec), counts)
    try:
        return DynamicSimulationSpec(**values)
    except SpecError as error:
        raise SpecError(f"the --set options do not fit together: {error}") from None


def simulate_dynamic_run(args: argparse.Namespace, dyads: int | None,
                         sessions: int | None, seed: int) -> None:
    """Simulate the dynamic APIM's data and write the CSV (options already checked)."""
    from apim.simulation.dynamic import simulate_dynamic
    from apim.simulation.simulate import SimulationSpec, check_size

    truth = dynamic_truth(args, n_dyads=dyads, n_sessions=sessions)
    # the Gaussian simulation's memory per row is an upper bound of the dynamic one's
    check_size(SimulationSpec(n_dyads=truth.n_dyads, n_sessions=truth.n_sessions))
    data = simulate_dynamic(truth, seed)
    write_csv(data.to_long(), args.out, what=Path(args.out).name)
    print(f"wrote {args.out}: {len(data.frame)} rows, {data.n_dyads} dyads "
          "(dynamic APIM: x and y of both members, VAR(1) around person means)")


def power_dynamic_run(args: argparse.Namespace, dyads: list[int] | None,
                      sessions: list[int] | None, options: dict[str, Any],
                      progress: bool) -> pd.DataFrame:
    """Power of ``args.hypothesis`` per design (every combination of ``dyads`` and
    ``sessions``); prints and returns the table."""
    from apim.simulation.dynamic import dynamic_power

    refuse(args, {"nagq": "--nagq", "interaction": "--interaction",
                  "moderated": "--moderated", "random": "--random",
                  "residual": "--residual", "scheduler": "--scheduler",
                  "checkpoint": "--checkpoint", "figure": "--figure"})
    base = dynamic_truth(args)
    designs = [(d, s) for d in (dyads or [base.n_dyads])
               for s in (sessions or [base.n_sessions])]
    truths = []
    for d, s in designs:
        try:
            truths.append(base.replace(n_dyads=d, n_sessions=s))
        except SpecError as error:
            raise SpecError(f"--dyads {d} --sessions {s}: {error}") from None
    rows = []
    for truth in truths:
        result = dynamic_power(truth, args.hypothesis, replicates=options["replicates"],
                               alpha=options["alpha"], seed=options["seed"],
                               n_jobs=options["n_jobs"], progress=progress)
        failed = int(result.table["error"].notna().sum())
        rows.append({"n_dyads": truth.n_dyads, "n_sessions": truth.n_sessions,
                     "power": result.power, "mcse": result.mcse,
                     "mean_estimate": result.mean_estimate, "replicates": result.replicates,
                     "failed": failed,
                     "not_converged": len(result.table) - result.replicates - failed})
        hypothesis, seconds = result.hypothesis, result.seconds
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"{hypothesis}; alpha {options['alpha']}; dynamic APIM; {seconds:.1f} s "
          "(last design)")
    if args.csv:
        write_csv(table, args.csv, what=Path(args.csv).name)
    return table
