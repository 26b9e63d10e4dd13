"""The index page of a plan run: the manifest, the model table and every analysis's effects.

Written by :func:`apim.plan.run.run_plan` as ``index.html`` (self-contained).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pandas as pd

from apim.files import write_atomic
from apim.plan.spec import COLUMNS, Plan
from apim.report import labels as lab
from apim.report.html import page

__all__ = ["index_html", "write_index"]


def _effects_fragment(frame: pd.DataFrame) -> str:
    shown = pd.DataFrame({
        "Term": frame["term"],
        "b": [lab.number(v, 3) for v in frame["estimate"]],
        "SE": [lab.number(v, 3) for v in frame["se"]],
        "df": [lab.number(v, 1) for v in frame["df"]],
        "t": [lab.number(v, 2) for v in frame["t"]],
        "p": [lab.p_value(v) for v in frame["p"]],
        "95% CI": [f"[{lab.number(a, 3)}, {lab.number(b, 3)}]"
                   for a, b in zip(frame["ci_low"], frame["ci_high"])]})
    return shown.to_html(index=False, classes="apim-plain", border=0)


def _escaped_table(frame: pd.DataFrame, markup: tuple[str, ...] = ()) -> str:
    """``frame`` as an HTML table with every header and cell escaped, except the columns
    in ``markup`` (built here, their text already escaped)."""
    shown = pd.DataFrame({html.escape(str(c)): [
        v if c in markup else ("" if v is None or (isinstance(v, float) and v != v)
                               else html.escape(str(v))) for v in frame[c]]
        for c in frame.columns})
    return shown.to_html(index=False, classes="apim-plain", border=0, escape=False,
                         na_rep="")


def index_html(plan: Plan, out: Path, models: pd.DataFrame, effects: pd.DataFrame,
               manifest: dict[str, Any]) -> str:
    """The index page as HTML text."""
    counts = manifest["counts"]
    settings = [c for c in COLUMNS if c in models]
    varying = [c for c in settings if models[c].astype(str).nunique() > 1]
    shared = [c for c in settings if c not in varying]
    results = ["status", "n_obs", "n_dyads", "loglik", "aic", "bic", "n_params",
               "converged", "boundary", "seconds"]
    shown = models[["analysis", *varying, *results]].copy()
    shown["boundary"] = [("yes: " + str(v)[:60] + ("…" if len(str(v)) > 60 else ""))
                         if isinstance(v, str) and v else "" for v in shown["boundary"]]
    links = []
    for aid in shown["analysis"]:
        link = f'<a href="analyses/{html.escape(aid)}.json">{html.escape(aid)}</a>'
        if (out / "analyses" / f"{aid}.html").exists():
            link += f' (<a href="analyses/{html.escape(aid)}.html">report</a>)'
        links.append(link)
    shown["analysis"] = links
    for c in ("loglik", "aic", "bic", "seconds"):
        if c in shown:
            shown[c] = [lab.number(v, 2) if pd.notna(v) else "" for v in shown[c]]
    body = [f"<h1>Plan {html.escape(plan.name)}</h1>",
            f'<p class="meta">{counts["analyses"]} analyses: {counts["ok"]} ok, '
            f'{counts["failed"]} failed; {counts["fitted"]} fitted in this run, '
            f'{counts["skipped"]} reused. apim {html.escape(manifest["versions"]["apim"])}, '
            f'{html.escape(manifest["finished"])}.</p>',
            _files_html(manifest),
            "<h2>Models</h2>",
            "<p>Shared by every analysis: " + html.escape(", ".join(
                f"{c} = {models[c].iloc[0]}" for c in shared
                if str(models[c].iloc[0]) not in ("", "nan", "None"))) + ".</p>",
            '<div class="scroll">' + _escaped_table(shown, markup=("analysis",))
            + "</div>"]
    failed = models[models["status"] != "ok"]
    if len(failed):
        body.append("<h2>Failed analyses</h2>")
        body += [f'<p class="warning">{html.escape(r.analysis)}: {html.escape(str(r.error_type))}'
                 f": {html.escape(str(r.error))}</p>" for r in failed.itertuples()]
    body.append("<h2>Effects</h2>")
    for aid, part in (effects.groupby("analysis", sort=False) if len(effects) else []):
        body.append(f"<details><summary>{html.escape(str(aid))}</summary>"
                    f"{_effects_fragment(part)}</details>")
    return page(f"Plan {plan.name}", "\n".join(body))


def _files_html(manifest: dict[str, Any]) -> str:
    """The files this run wrote (from the manifest's ``outputs``), and those it did not
    write with the reason (effects.parquet without pyarrow)."""
    effects = manifest.get("outputs", {}).get("effects", ["effects.csv"])
    written = [f for f in effects if not f.startswith("not written")]
    skipped = [f for f in effects if f.startswith("not written")]
    names = [*written, "models.csv", "manifest.json", "analyses/ID.json"]
    text = "<p>Files: " + ", ".join(f"<code>{html.escape(n)}</code>" for n in names) + "."
    if skipped:
        text += " effects.parquet " + html.escape(skipped[0]) + "."
    return text + "</p>"


def write_index(plan: Plan, out: Path, models: pd.DataFrame, effects: pd.DataFrame,
                manifest: dict[str, Any], run: str | None = None) -> None:
    """Write ``index.html`` into ``out`` (atomically; ``run`` tags the temporary file)."""
    write_atomic(out / "index.html", index_html(plan, out, models, effects, manifest),
                 run=run)
