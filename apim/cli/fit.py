"""``apim fit``: fit an APIM and print its effects table."""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

from apim import report
from apim.cli.common import add_columns, load
from apim.engine.residual import RESIDUAL_NAMES
from apim.errors import ApimWarning
from apim.model.centring import DecompositionSpec
from apim.model.fit import fit
from apim.model.spec import APIMSpec, CovarianceSpec

__all__ = ["register", "run"]


def _spec(args: argparse.Namespace) -> APIMSpec:
    center = args.center or ("therapist" if args.therapist_level else None)
    decomposition = DecompositionSpec.from_dict({"center": center, "lag": args.lag,
                                                 "detrend": args.detrend})
    return APIMSpec(outcome=args.outcome, predictors=tuple(args.predictor),
                    decomposition=decomposition, distinguishable=not args.indistinguishable,
                    interaction=args.interaction, moderators=tuple(args.moderator or ()),
                    covariates=tuple(args.covariate or ()),
                    covariance=CovarianceSpec(random=args.random, residual=args.residual,
                                              therapist_level=args.therapist_level),
                    method=args.method.upper())


def run(args: argparse.Namespace) -> None:
    """Fit and print in the chosen format; apim's warnings (boundary fits ...) go to
    stderr, one line each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ApimWarning)
        result = fit(load(args), _spec(args), df=args.df)
    for warning in caught:
        if issubclass(warning.category, ApimWarning):
            text = " ".join(str(warning.message).split())
            print(f"apim: warning: {text}", file=sys.stderr)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
    text = {"table": lambda r: r.summary(), "markdown": report.to_markdown,
            "latex": report.to_latex, "json": report.to_json}[args.format](result)
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            handle.write(report.to_json(result))


def register(commands: Any) -> None:
    """Add the subcommand to the ``apim`` parser."""
    fit = commands.add_parser("fit", help="fit an APIM and print its effects table")
    add_columns(fit)
    fit.add_argument("--outcome", required=True, help="each member's outcome column")
    fit.add_argument("--predictor", action="append", required=True,
                     help="predictor rated by both members (repeatable)")
    fit.add_argument("--center", choices=("person", "therapist", "grand", "none"),
                     help="decomposition (default person, or none for cross-sectional data; "
                     "therapist with --therapist-level)")
    fit.add_argument("--lag", type=int, default=0, help="lag of the predictors in sessions")
    fit.add_argument("--detrend", action="store_true",
                     help="remove each person's linear trend before the split")
    fit.add_argument("--indistinguishable", action="store_true",
                     help="one intercept and effects pooled over roles")
    fit.add_argument("--interaction", action="store_true", help="add actor x partner terms")
    fit.add_argument("--moderator", action="append", help="dyad-level moderator (repeatable)")
    fit.add_argument("--covariate", action="append", help="covariate (repeatable)")
    fit.add_argument("--random", choices=("none", "intercepts", "slopes"),
                     help="random effects per dyad (default intercepts, or none for "
                     "cross-sectional data)")
    fit.add_argument("--residual", choices=tuple(RESIDUAL_NAMES),
                     help="residual structure (default un; cs with --indistinguishable)")
    fit.add_argument("--therapist-level", action="store_true",
                     help="random intercept per therapist (needs --therapist)")
    fit.add_argument("--method", choices=("reml", "ml"), default="reml")
    fit.add_argument("--df", choices=("satterthwaite", "containment"), default="satterthwaite")
    fit.add_argument("--format", choices=("table", "markdown", "latex", "json"),
                     default="table")
    fit.add_argument("--json", metavar="FILE", help="also write the full result as JSON")
    fit.set_defaults(run=run)
