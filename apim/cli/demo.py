"""``apim demo``: the main analysis on the bundled example data (simulated)."""

from __future__ import annotations

import argparse
from typing import Any

from apim.cli.help import HelpFormatter, examples
from apim.datasets import alliance_path, load_alliance
from apim.inference.wald import wald_test
from apim.model.registry import fit
from apim.model.result import APIMResult
from apim.model.spec import APIMSpec
from apim.report.export import to_markdown

__all__ = ["register", "run", "row_accounting", "DEMO_SPEC", "command_line"]

#: The demo's model: CBT, the usual treatment, is the reference arm, chosen explicitly so
#: that ``apim fit`` (:func:`command_line`) and plans give the same signs.
DEMO_SPEC = APIMSpec(outcome="outcome", predictors=("alliance",), moderators=("treatment",),
                     reference=(("treatment", "CBT"),))


def command_line() -> str:
    """The ``apim fit`` command that fits :data:`DEMO_SPEC` to the bundled CSV."""
    return (f"apim fit {alliance_path()} --dyad dyad --session session --role role "
            "--roles patient,therapist --therapist therapist --outcome outcome "
            "--predictor alliance --moderator treatment --reference treatment=CBT")

SIMULATED = ("The data are SIMULATED (apim.simulate with apim.datasets.ALLIANCE_SPEC): a "
             "made-up alliance study of "
             "240 patient-therapist dyads, 40 therapists, two treatment arms and up to 30 "
             "sessions; no real patient or therapist is in them.")


def row_accounting(result: APIMResult, report_rows: set[int]) -> list[str]:
    """Lines reconciling the rows the fit left out with the rows the data report lists."""
    dropped = result.dropped
    fit_rows = set(dropped["row"])
    partner = set(dropped.loc[dropped["reason"].str.contains("partner"), "row"])
    lines = [f"Rows not used by the fit: {len(fit_rows)} of {len(result.data.frame)}"]
    for reason, n in dropped.groupby("reason", sort=False).size().items():
        lines.append(f"  - {n} rows: {reason}")
    other = fit_rows - report_rows - partner
    lines.append(
        f"That is the {len(report_rows & fit_rows)} rows the data report lists (missing "
        f"alliance or outcome; a row in both lists counted once) plus {len(partner)} rows "
        "whose partner did not rate alliance at that session (partner effects need it)"
        + (f" plus {len(other)} rows for other reasons." if other else "."))
    return lines


def run(args: argparse.Namespace) -> None:
    """Report, fit and test on the bundled data."""
    print(SIMULATED)
    print()
    data = load_alliance()
    report = data.report(["alliance", "outcome"])
    print(report)
    result = fit(data, DEMO_SPEC)
    print()
    print(to_markdown(result))
    print()
    for m, ref in result.reference_levels().items():
        print(f"Moderator {m}: reference category {ref}; the terms marked |{m}[...] are "
              f"differences from {ref}, the other terms are the effects in {ref}.")
    print(f"Roles: {result.roles[0]} is the reference role; each outcome role has its own "
          "intercept and effects.")
    print(f"The same model from the command line:\n  {command_line()}")
    print()
    report_rows = {r for e in report.exclusions for r in e.rows}
    print("\n".join(row_accounting(result, report_rows)))
    print()
    print(wald_test(result, "patient.actor.within = therapist.actor.within"))


def register(commands: Any) -> None:
    """Add the subcommand to the ``apim`` parser."""
    demo = commands.add_parser(
        "demo", help="run the main analysis on the bundled (simulated) example",
        description="Data report, APIM with treatment moderation and a Wald test on the "
        "bundled simulated alliance study.", formatter_class=HelpFormatter,
        epilog=examples("apim demo", "apim demo | less"))
    demo.set_defaults(run=run)
