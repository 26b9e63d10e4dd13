"""``apim demo``: the main analysis on the bundled example data."""

from __future__ import annotations

import argparse
from typing import Any

from apim.datasets import load_alliance
from apim.inference.wald import wald_test
from apim.model.fit import fit
from apim.model.spec import APIMSpec

__all__ = ["register", "run"]


def run(args: argparse.Namespace) -> None:
    """Report, fit and test on the bundled data."""
    data = load_alliance()
    print(data.report(["alliance", "outcome"]))
    spec = APIMSpec(outcome="outcome", predictors=("alliance",), moderators=("treatment",))
    result = fit(data, spec)
    print()
    print(result.summary())
    print()
    print(wald_test(result, "patient.actor.within = therapist.actor.within"))


def register(commands: Any) -> None:
    """Add the subcommand to the ``apim`` parser."""
    demo = commands.add_parser("demo", help="run the main analysis on the bundled example")
    demo.set_defaults(run=run)
