"""``apim simulate``: simulate session data under the full APIM."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from apim.errors import SpecError
from apim.simulation.simulate import SimulationSpec, simulate

__all__ = ["register", "run", "truth_from"]


def _settings(pairs: Sequence[str] | None) -> dict[str, object]:
    """``FIELD=VALUE`` pairs for SimulationSpec, typed by the field's default."""
    defaults = SimulationSpec().to_dict()
    out = {}
    for pair in pairs or []:
        name, _, value = pair.partition("=")
        if name not in defaults or not value:
            raise SpecError(f"--set {pair!r}: use FIELD=VALUE with a field of the "
                              f"simulation, e.g. partner_within=0.1,0.1 or residual_phi=0.3")
        default = defaults[name]
        try:
            if isinstance(default, (tuple, list)):
                items = [v.strip() for v in value.split(",")]
                out[name] = tuple(type(default[0])(v) for v in items)
            else:
                out[name] = type(default)(value)
        except ValueError:
            raise SpecError(f"--set {pair!r}: {value!r} is not a valid {name}") from None
    return out


def truth_from(args: argparse.Namespace) -> SimulationSpec:
    """The data-generating process of ``--set FIELD=VALUE`` options."""
    return SimulationSpec(**_settings(args.set))


def run(args: argparse.Namespace) -> None:
    """Simulate and write the CSV."""
    truth = truth_from(args)
    data = simulate(truth.replace(n_dyads=args.dyads or truth.n_dyads,
                                  n_sessions=args.sessions or truth.n_sessions), args.seed)
    data.to_long().to_csv(args.out, index=False)
    print(f"wrote {args.out}: {len(data.frame)} rows, {data.n_dyads} dyads")


def register(commands: Any) -> None:
    """Add the subcommand to the ``apim`` parser."""
    sim = commands.add_parser("simulate", help="simulate session data under the full APIM "
                              "(columns x, the predictor, and y, the outcome)")
    sim.add_argument("out", help="CSV file to write")
    sim.add_argument("--dyads", type=int, help="number of dyads (default 241)")
    sim.add_argument("--sessions", type=int, help="sessions per dyad (default 30)")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--set", action="append", metavar="FIELD=VALUE",
                     help="a field of apim.simulation.simulate.SimulationSpec (repeatable)")
    sim.set_defaults(run=run)
