"""``apim report``: fit a model and write its self-contained HTML report (or, for an
``--out`` ending in ``.docx``, a Word report without figures)."""

from __future__ import annotations

import argparse
from typing import Any

from apim.cli.fit import (
    FORMULA,
    LATENT,
    OBSERVED,
    add_model_arguments,
    fit_with_warnings,
    model_kind,
)
from apim.cli.help import HelpFormatter, examples
from apim.errors import SpecError
from apim.files import check_new_output
from apim.report.docx import require_docx
from apim.report.docx_report import fit_report_docx
from apim.report.html import FIGURES, fit_report, missing_figures

__all__ = ["register", "run", "check_figures"]


#: Figures the command line can never draw, and figures each model kind has not.
_NEVER = {"surface": "it draws a response-surface model, which apim fit and apim report "
                     "do not fit (apim.response_surface in Python)"}
_NOT_FOR_KIND = {
    LATENT: {"slopes": "the latent model's moderator fits one model per group (see the "
                       "differences between arms in the report)",
             "trajectories": "the latent model has no fitted values per row",
             "diagnostics": "the latent model has no residuals per row"},
    FORMULA: {"path": "a formula model has no actor and partner effects to draw",
              "slopes": "a formula model has no actor and partner effects to draw"},
}


def check_figures(args: argparse.Namespace) -> list[str] | bool:
    """The figures to draw (``True``: every one that applies), each one asked for with
    ``--figure`` checked against the model the options describe before anything is
    read or fitted (:class:`~apim.errors.SpecError` naming it otherwise)."""
    if args.no_figures and args.figure:
        raise SpecError(f"--no-figures and --figure {args.figure[0]} contradict each other; "
                        "give one")
    if str(args.out).lower().endswith(".docx") and args.figure:
        raise SpecError(f"--figure {args.figure[0]}: a Word report (--out {args.out}) has "
                        "tables only; write an .html report for figures")
    if args.no_figures:
        return []
    if not args.figure:
        return True
    kind = model_kind(args)
    for name in args.figure:
        reason = _NEVER.get(name) or _NOT_FOR_KIND.get(kind, {}).get(name)
        if kind == OBSERVED and name == "slopes" and not (args.moderator or args.interaction):
            reason = "it draws the actor effect at values of a moderator, and the model has " \
                     "none (add --moderator COL or --interaction)"
        if reason:
            raise SpecError(f"--figure {name} does not apply here: {reason}; drop it")
    return list(dict.fromkeys(args.figure))


def run(args: argparse.Namespace) -> None:
    """Check the output and the figures, fit (any model kind), then write the report."""
    check_new_output(args.out, "--out", force=args.force, inputs=[args.data])
    figures = check_figures(args)
    if str(args.out).lower().endswith(".docx"):
        require_docx()  # before the fit, not after it
    result, caught = fit_with_warnings(args)
    if str(args.out).lower().endswith(".docx"):  # Word: tables without figures
        fit_report_docx(result, args.out, warnings=caught, title=args.title)
        print(f"wrote {args.out}")
        return
    if isinstance(figures, list):
        for name, reason in missing_figures(result, figures).items():
            raise SpecError(f"--figure {name} cannot be drawn for this model: {reason}; "
                            "drop it")
    fit_report(result, args.out, figures=figures, warnings=caught, title=args.title)
    print(f"wrote {args.out}")


def register(commands: Any) -> None:
    """Add the subcommand to the ``apim`` parser."""
    parser = commands.add_parser(
        "report", help="fit a model and write an HTML report",
        description="Fit an APIM (model options as for apim fit: observed-mean, "
        "--centring latent or --formula) and write one self-contained HTML file: data "
        "report, model, APA tables, k, figures, rows not used, warnings.",
        formatter_class=HelpFormatter,
        epilog=examples("apim report sessions.csv --dyad dyad --session session --role role "
                        "--outcome outcome --predictor alliance --moderator treatment "
                        "--out alliance.html"))
    add_model_arguments(parser)
    parser.add_argument("--out", "-o", required=True, metavar="FILE.html",
                        help="the report to write (FILE.docx: a Word report, tables "
                        "without figures; needs python-docx)")
    parser.add_argument("--figure", action="append", choices=FIGURES,
                        help="figure to include (repeatable; default: all that apply): "
                        "path (observed-mean, latent), slopes (with --moderator or "
                        "--interaction), trajectories and diagnostics (observed-mean, "
                        "formula); surface only from Python (apim.response_surface)")
    parser.add_argument("--no-figures", action="store_true", help="tables only (faster)")
    parser.add_argument("--title", help="title of the report")
    parser.add_argument("--force", action="store_true",
                        help="replace the --out file if it exists (never the data file)")
    parser.set_defaults(run=run)
