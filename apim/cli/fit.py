"""``apim fit``: fit an APIM and print its tables (optionally an HTML report)."""

from __future__ import annotations

import argparse
import warnings
from typing import Any

from apim import report
from apim.cli.common import add_columns, load
from apim.cli.help import HelpFormatter, examples
from apim.engine.residual import RESIDUAL_NAMES
from apim.errors import SpecError
from apim.files import check_new_output, write_atomic
from apim.model.centring import DecompositionSpec
from apim.model.fit import fit
from apim.model.latent import LatentAPIMResult, LatentAPIMSpec
from apim.model.result import APIMResult
from apim.model.spec import APIMSpec, CovarianceSpec

__all__ = ["register", "run", "add_model_arguments", "fit_with_warnings"]

EXAMPLES = examples(
    "apim fit sessions.csv --dyad dyad --session session --role role "
    "--roles patient,therapist --outcome outcome --predictor alliance",
    "apim fit sessions.csv --dyad dyad --session session --role role --therapist therapist "
    "--outcome outcome --predictor alliance --moderator treatment --residual un-ar1 "
    "--format latex --report fit.html",
    "apim fit sessions.csv --dyad dyad --session session --role role --therapist therapist "
    "--outcome outcome --predictor alliance --centring latent --therapist-level")


def _spec(args: argparse.Namespace) -> APIMSpec | LatentAPIMSpec:
    if getattr(args, "centring", "observed") == "latent":
        return _latent_spec(args)
    if getattr(args, "therapist_covariance", None) is not None:
        raise SpecError("--therapist-covariance belongs to the latent model: add "
                        "--centring latent, or drop it (the observed-mean model has one "
                        "therapist random intercept)")
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


def _latent_spec(args: argparse.Namespace) -> LatentAPIMSpec:
    moderators = args.moderator or []
    if len(moderators) > 1:
        raise SpecError("--centring latent takes one --moderator (a grouping: one model per "
                        "group)")
    unused = [flag for flag, value in (("--covariate", args.covariate),
                                       ("--interaction", args.interaction),
                                       ("--indistinguishable", args.indistinguishable),
                                       ("--lag", args.lag), ("--detrend", args.detrend),
                                       ("--center", args.center)) if value]
    if unused:
        raise SpecError(f"--centring latent does not take {unused[0]}: the latent model "
                        "splits the predictors itself; drop the option or use the default "
                        "observed-mean centring")
    covariance = getattr(args, "therapist_covariance", None)
    if covariance is not None and not args.therapist_level:
        raise SpecError("--therapist-covariance applies to the therapist level: add "
                        "--therapist-level (and --therapist COL)")
    return LatentAPIMSpec(outcome=args.outcome, predictors=tuple(args.predictor),
                          moderator=moderators[0] if moderators else None,
                          ar1=args.residual in ("ar1", "un-ar1"), method=args.method.upper(),
                          therapist_level=args.therapist_level,
                          therapist_covariance=covariance or "unstructured")


def fit_with_warnings(args: argparse.Namespace
                      ) -> tuple[APIMResult | LatentAPIMResult, list[str]]:
    """Fit the model of ``args``; warnings are shown as usual and also returned."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit(load(args), _spec(args), df=args.df)
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return result, list(dict.fromkeys(str(w.message) for w in caught))


def run(args: argparse.Namespace) -> None:
    """Fit and print in the chosen format."""
    for option, path in (("--json", args.json), ("--report", args.report)):  # issue 20
        if path:
            check_new_output(path, option, force=args.force, inputs=[args.data])
    result, caught = fit_with_warnings(args)
    text = {"table": lambda r: r.summary(), "markdown": report.to_markdown,
            "latex": report.to_latex, "html": report.to_html,
            "json": report.to_json}[args.format](result)
    print(text)
    if args.json:
        write_atomic(args.json, report.to_json(result))
    if args.report:
        if isinstance(result, LatentAPIMResult):
            raise SpecError("--report covers observed-mean fits; for --centring latent use "
                            "--format markdown/latex/html or --json")
        report.fit_report(result, args.report, warnings=caught)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The data and model options shared by ``apim fit`` and ``apim report``."""
    add_columns(parser)
    parser.add_argument("--outcome", required=True, help="each member's outcome column")
    parser.add_argument("--predictor", action="append", required=True,
                        help="predictor rated by both members (repeatable)")
    parser.add_argument("--center", choices=("person", "therapist", "grand", "none"),
                        help="decomposition (default person, or none for cross-sectional "
                        "data; therapist with --therapist-level)")
    parser.add_argument("--lag", type=int, default=0,
                        help="lag of the predictors in sessions")
    parser.add_argument("--detrend", action="store_true",
                        help="remove each person's linear trend before the split")
    parser.add_argument("--indistinguishable", action="store_true",
                        help="one intercept and effects pooled over roles")
    parser.add_argument("--interaction", action="store_true",
                        help="add actor x partner terms")
    parser.add_argument("--moderator", action="append",
                        help="dyad-level moderator (repeatable)")
    parser.add_argument("--covariate", action="append", help="covariate (repeatable)")
    parser.add_argument("--random", choices=("none", "intercepts", "slopes"),
                        help="random effects per dyad (default intercepts, or none for "
                        "cross-sectional data)")
    parser.add_argument("--residual", choices=tuple(RESIDUAL_NAMES),
                        help="residual structure (default un; cs with --indistinguishable)")
    parser.add_argument("--therapist-level", action="store_true",
                        help="random intercept per therapist (needs --therapist)")
    parser.add_argument("--method", choices=("reml", "ml"), default="reml",
                        help="estimation method")
    parser.add_argument("--df", choices=("satterthwaite", "containment"),
                        default="satterthwaite", help="denominator df of the t tests")


def register(commands: Any) -> None:
    """Add the subcommand to the ``apim`` parser."""
    parser = commands.add_parser(
        "fit", help="fit an APIM and print its tables",
        description="Fit an actor-partner interdependence model and print APA-style "
        "tables (or JSON); optionally write a self-contained HTML report.",
        formatter_class=HelpFormatter, epilog=EXAMPLES)
    add_model_arguments(parser)
    parser.add_argument("--format", choices=("table", "markdown", "latex", "html", "json"),
                        default="table", help="what to print")
    parser.add_argument("--json", metavar="FILE", help="also write the full result as JSON")
    parser.add_argument("--centring", choices=("observed", "latent"), default="observed",
                        help="between effects from observed person means, or from latent "
                        "means (the multivariate model that uses every rating; AR(1) with "
                        "--residual ar1/un-ar1; one --moderator fits one model per group; "
                        "--therapist-level adds a therapist level)")
    parser.add_argument("--therapist-covariance", choices=("unstructured", "diagonal"),
                        help="with --centring latent --therapist-level: the therapist-level "
                        "covariance of the variables (default unstructured)")
    parser.add_argument("--report", metavar="FILE.html",
                        help="also write an HTML report (tables, figures, data report)")
    parser.add_argument("--force", action="store_true", help="replace the --json or "
                        "--report file if it exists (never the data file)")
    parser.set_defaults(run=run)
