"""``apim report``: fit a model and write its self-contained HTML report (or, for an
``--out`` ending in ``.docx``, a Word report without figures)."""

from __future__ import annotations

import argparse
from typing import Any

from apim.cli.fit import add_model_arguments, fit_with_warnings
from apim.cli.help import HelpFormatter, examples
from apim.files import check_new_output
from apim.report.docx_report import fit_report_docx
from apim.report.html import FIGURES, fit_report

__all__ = ["register", "run"]


def run(args: argparse.Namespace) -> None:
    """Check the output, fit (any model kind), then write the report."""
    check_new_output(args.out, "--out", force=args.force, inputs=[args.data])
    result, caught = fit_with_warnings(args)
    if str(args.out).lower().endswith(".docx"):  # Word: tables without figures
        fit_report_docx(result, args.out, warnings=caught, title=args.title)
        print(f"wrote {args.out}")
        return
    figures = [] if args.no_figures else (args.figure or list(FIGURES))
    fit_report(result, args.out, figures=figures, warnings=caught,
               title=args.title)
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
                        help="figure to include (repeatable; default: all that apply)")
    parser.add_argument("--no-figures", action="store_true", help="tables only (faster)")
    parser.add_argument("--title", help="title of the report")
    parser.add_argument("--force", action="store_true",
                        help="replace the --out file if it exists (never the data file)")
    parser.set_defaults(run=run)
