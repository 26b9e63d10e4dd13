"""``apim describe``: validate a data file and print its report."""

from __future__ import annotations

import argparse
import json
from typing import Any

from apim.cli.common import add_columns, load
from apim.model.centring import decompose

__all__ = ["register", "run"]


def run(args: argparse.Namespace) -> None:
    """Load, check and print the data report."""
    data = load(args)
    predictors = args.predictor or []
    if predictors:
        decompose(data, predictors)  # checks each predictor can be split
    variables = (args.variable or []) + predictors
    report = data.report(variables or None)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report)


def register(commands: Any) -> None:
    """Add the subcommand to the ``apim`` parser."""
    describe = commands.add_parser("describe", help="validate a data file and print its report")
    add_columns(describe)
    describe.add_argument("--variable", action="append",
                          help="rating used in the analysis (repeatable; default: all numeric)")
    describe.add_argument("--predictor", action="append",
                          help="predictor to be split into within and between parts; "
                          "checked for that (repeatable)")
    describe.add_argument("--json", action="store_true", help="print the report as JSON")
    describe.set_defaults(run=run)
