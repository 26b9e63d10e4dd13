"""``apim describe``: validate a data file and print its report.

With ``--outcome`` and ``--predictor`` the report lists exactly the rows ``apim fit`` would
drop for that model, with the same reasons (the design is built, nothing is fitted).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

from apim.cli.common import add_columns, load
from apim.cli.help import HelpFormatter, examples
from apim.data.session import SessionData
from apim.data.validate import within_variation
from apim.errors import SpecError
from apim.model.centring import DecompositionSpec, decompose, default_center
from apim.model.checks import check_design
from apim.model.design import build_design
from apim.model.spec import APIMSpec

__all__ = ["register", "run"]


def _model(args: argparse.Namespace) -> Any:
    decomposition = DecompositionSpec(lag=args.lag)
    return APIMSpec(outcome=args.outcome, predictors=tuple(args.predictor),
                    decomposition=decomposition, moderators=tuple(args.moderator or ()),
                    covariates=tuple(args.covariate or ()))


def _is_text(data: SessionData, column: str) -> bool:
    """A variable whose values are words (a treatment arm, a site): it is described by
    its levels, not by numeric summaries."""
    name = data.resolve(column)
    frame = data.frame
    if name not in frame.columns:
        return False
    values = frame[name]
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return False
    numbers = pd.to_numeric(values, errors="coerce")
    return bool((numbers.isna() & values.notna()).any())


def levels(data: SessionData, columns: Sequence[str]) -> dict[str, dict[str, int]]:
    """The levels of text variables with their counts of rows (most frequent first;
    missing cells counted as ``"(missing)"``)."""
    frame = data.frame
    out = {}
    for column in columns:
        counts = frame[data.resolve(column)].astype(object).fillna("(missing)").astype(str)
        out[column] = {str(k): int(n) for k, n in counts.value_counts(sort=True).items()}
    return out


def _levels_text(table: dict[str, dict[str, int]], shown: int = 20) -> str:
    lines = []
    for v, counts in table.items():
        items = [f"{level} {n}" for level, n in counts.items()]
        more = f" and {len(items) - shown} more levels" if len(items) > shown else ""
        lines.append(f"  levels of {v}".ljust(23) + ", ".join(items[:shown]) + more)
    return "\n".join(lines)


def _within_identified(data: SessionData, predictors: Sequence[str]) -> None:
    """Refuse predictors that no person rated at two sessions (no within part)."""
    if default_center(data) not in ("person", "therapist"):
        return
    frame = data.frame
    for x in predictors:
        within_variation(frame, data.numeric(x), x)


def run(args: argparse.Namespace) -> None:
    """Load, check and print the data report."""
    data = load(args)
    predictors = args.predictor or []
    given = list(args.variable or [])
    text = [v for v in given if _is_text(data, v)]
    variables = [v for v in given if v not in text]
    if args.outcome and not predictors:
        raise SpecError("--outcome needs at least one --predictor (the model whose dropped "
                        "rows to list)")
    if args.outcome:
        spec = _model(args)
        _within_identified(data, predictors)
        check_design(data, spec)
        design = build_design(data, spec)
        used = [args.outcome, *predictors, *(args.moderator or ()), *(args.covariate or ())]
        numeric = [v for v in dict.fromkeys(variables + used)
                   if v not in (args.moderator or ())]
        report = dataclasses.replace(data.report(numeric), exclusions=design.dropped)
    else:
        if predictors:
            _within_identified(data, predictors)
            decompose(data, predictors)  # checks each predictor can be split
        default: list[str] | None = None if not predictors and not text else []
        report = data.report(variables or default, predictors)
    table = levels(data, text)
    if args.json:
        print(json.dumps({**report.to_dict(), "levels": table}, indent=2))
    else:
        print(report if not table else f"{report}\n{_levels_text(table)}")


def register(commands: Any) -> None:
    """Add the subcommand to the ``apim`` parser."""
    describe = commands.add_parser(
        "describe", help="validate a data file and print its report",
        description=__doc__, formatter_class=HelpFormatter,
        epilog=examples(
            "apim describe sessions.csv --dyad dyad --session session --role role "
            "--roles patient,therapist --therapist therapist",
            "apim describe sessions.csv --dyad dyad --session session --role role "
            "--variable alliance --variable treatment",
            "apim describe sessions.csv --dyad dyad --session session --role role "
            "--outcome outcome --predictor alliance --moderator treatment --json"))
    add_columns(describe)
    describe.add_argument("--variable", action="append",
                          help="rating used in the analysis (repeatable; default: all "
                          "numeric); a text variable is listed with its levels and counts")
    describe.add_argument("--predictor", action="append",
                          help="predictor to be split into within and between parts; "
                          "checked for that, and its partner's rating counted (repeatable)")
    describe.add_argument("--outcome", help="with --predictor: list exactly the rows "
                          "'apim fit' would drop for this model")
    describe.add_argument("--moderator", action="append", help="moderator of that model")
    describe.add_argument("--covariate", action="append", help="covariate of that model")
    describe.add_argument("--lag", type=int, default=0, help="lag of the predictors, in "
                          "sessions")
    describe.add_argument("--json", action="store_true", help="print the report as JSON")
    describe.set_defaults(run=run)
