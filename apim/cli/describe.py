"""``apim describe``: validate a data file and print its report.

With ``--outcome`` and ``--predictor`` the report lists exactly the rows ``apim fit`` would
drop for that model, with the same reasons (the design is built, nothing is fitted).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from apim.cli.common import add_columns, load
from apim.model.centring import DecompositionSpec, decompose

__all__ = ["register", "run"]


def _model(args: argparse.Namespace) -> Any:
    from apim.model.spec import APIMSpec

    decomposition = DecompositionSpec(lag=args.lag)
    return APIMSpec(outcome=args.outcome, predictors=tuple(args.predictor),
                    decomposition=decomposition, moderators=tuple(args.moderator or ()),
                    covariates=tuple(args.covariate or ()))


def run(args: argparse.Namespace) -> None:
    """Load, check and print the data report."""
    data = load(args)
    predictors = args.predictor or []
    variables = list(args.variable or [])
    if args.outcome and not predictors:
        from apim.errors import SpecError

        raise SpecError("--outcome needs at least one --predictor (the model whose dropped "
                        "rows to list)")
    if args.outcome:
        from apim.model.checks import check_design
        from apim.model.design import build_design

        spec = _model(args)
        check_design(data, spec)
        design = build_design(data, spec)
        used = [args.outcome, *predictors, *(args.moderator or ()), *(args.covariate or ())]
        numeric = [v for v in dict.fromkeys(variables + used)
                   if v not in (args.moderator or ())]
        report = dataclasses.replace(data.report(numeric), exclusions=design.dropped)
    else:
        if predictors:
            decompose(data, predictors)  # checks each predictor can be split
        report = data.report(variables or (None if not predictors else []), predictors)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report)


def register(commands: Any) -> None:
    """Add the subcommand to the ``apim`` parser."""
    describe = commands.add_parser("describe", help="validate a data file and print its report")
    add_columns(describe)
    describe.add_argument("--variable", action="append",
                          help="rating used in the analysis (repeatable; default: all numeric)")
    describe.add_argument("--predictor", action="append",
                          help="predictor to be split into within and between parts; "
                          "checked for that, and its partner's rating counted (repeatable)")
    describe.add_argument("--outcome", help="with --predictor: list exactly the rows "
                          "'apim fit' would drop for this model")
    describe.add_argument("--moderator", action="append", help="moderator of that model")
    describe.add_argument("--covariate", action="append", help="covariate of that model")
    describe.add_argument("--lag", type=int, default=0, help="lag of the predictors")
    describe.add_argument("--json", action="store_true", help="print the report as JSON")
    describe.set_defaults(run=run)
