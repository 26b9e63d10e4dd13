"""Self-contained HTML: one report per fit, fragments for Jupyter, an index per plan.

A report holds the data report, the model, the APA tables, k, the figures (PNG embedded
as base64, so the file opens offline and can be mailed), the rows the fit did not use and
the warnings. Nothing is loaded from the network.

Examples
--------
>>> import apim, os, tempfile
>>> result = apim.fit(apim.load_alliance(), apim.APIMSpec("outcome", ("alliance",)))
>>> path = os.path.join(tempfile.mkdtemp(), "fit.html")
>>> text = fit_report(result, path, figures=False)
>>> "Fixed effects" in text and os.path.exists(path)
True
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import os
import platform
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

import apim.report.figures as fg
import apim.report.labels as lab
from apim._version import __version__
from apim.data.report import DataReport
from apim.errors import SpecError, format_rows
from apim.files import write_atomic
from apim.inference.arms import arm_differences
from apim.inference.patterns import dyadic_patterns
from apim.model.fitted import FittedModel
from apim.report.tables import effects_table, variance_table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["fit_report", "fitted_data_report", "result_html", "figure_html", "page",
           "patterns_frame", "FIGURES", "missing_figures"]

FIGURES = ("path", "slopes", "surface", "trajectories", "diagnostics")

_PAGE_CSS = """
body{font-family:Georgia,'Times New Roman',serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#111;line-height:1.4}
h1{font-size:1.6em;margin-bottom:0.2em}h2{font-size:1.25em;border-bottom:1px solid #ccc;
margin-top:1.6em}p.meta{color:#555;font-size:0.9em}
table.apim-kv td{padding:1px 12px 1px 0;vertical-align:top}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:0.9em;color:#333}
pre{background:#f6f6f6;padding:0.6em;overflow-x:auto;font-size:0.85em}
.warning{color:#8a4b00}table.apim-plain{border-collapse:collapse;font-size:0.9em}
table.apim-plain th,table.apim-plain td{padding:2px 10px;border-bottom:1px solid #ddd;
text-align:left;white-space:nowrap}div.scroll{overflow-x:auto}
"""


def page(title: str, body: str) -> str:
    """A complete, self-contained HTML document."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_PAGE_CSS}</style></head>"
            f"<body>\n{body}\n</body></html>\n")


def _escape(value: Any) -> str:
    return html.escape(str(value))


def _plain_table(frame: pd.DataFrame, cls: str = "apim-plain") -> str:
    return frame.to_html(index=False, classes=cls, border=0, escape=True,
                         na_rep="—")


def figure_html(fig: Figure, caption: str, dpi: int = 100) -> str:
    """A ``<figure>`` with the PNG embedded as base64."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f'<figure><img alt="{_escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_escape(caption)}</figcaption></figure>")


def result_html(result: FittedModel, digits: int = 2) -> str:
    """The effects and variance-component tables (an HTML fragment)."""
    return (effects_table(result, digits).to_html() + "\n"
            + variance_table(result, max(digits, 3)).to_html(css=False))


def _dropped_html(result: FittedModel) -> str:
    dropped = result.dropped
    if dropped.empty:
        return "<p>Every row of the data was used.</p>"
    by_reason = dropped.groupby("reason", sort=False)["row"]
    frame = pd.DataFrame({"reason": list(by_reason.groups),
                          "rows": by_reason.size().to_numpy(),
                          "first rows": [format_rows(tuple(rows)) for _, rows in by_reason]})
    total = len(dropped)
    partner = int(dropped["reason"].str.contains("partner").sum())
    text = (f"<p>{total} of {len(result.data.frame)} rows were not used "
            "(row numbers are 1-based rows of the input):</p>" + _plain_table(frame))
    if partner:
        text += (f"<p>{partner} of them lack the partner's rating at that session (partner "
                 "effects need it); the data report above counts each member's own missing "
                 "ratings only.</p>")
    return text


def patterns_frame(result: FittedModel) -> pd.DataFrame:
    """The dyadic patterns (k with its Monte Carlo interval) as display strings; empty when
    the model has no actor effects to divide by."""
    if "actor" not in set(result.effects["effect"]):
        return pd.DataFrame()
    table = dyadic_patterns(result, draws=5000)
    if table.empty:
        return pd.DataFrame()
    return pd.DataFrame({
        "Outcome": [lab.outcome_label(r, result.spec) for r in table["outcome_role"]],
        "Level": [lab.level_label(v, result) for v in table["level"]],
        **({"Group": table["group"]} if (table["group"] != "").any() else {}),
        "Predictor": table["predictor"],
        "k": [lab.number(v, 2) for v in table["k"]],
        "95% CI": [f"[{lab.number(a, 2)}, {lab.number(b, 2)}]"
                   for a, b in zip(table["ci_low"], table["ci_high"])],
        "Pattern supported": table["pattern"].replace("none", "no standard pattern")})


def _patterns_html(result: FittedModel) -> str:
    shown = patterns_frame(result)
    if shown.empty:
        return ""
    return ("<h2>Dyadic patterns</h2><p>k = partner effect / actor effect (Kenny &amp; "
            "Ledermann, 2010), with a Monte Carlo interval.</p>" + _plain_table(shown))


def _arms_html(result: FittedModel) -> str:
    """Each effect's difference between the arms of a multi-group model, with its test."""
    if len(set(result.effects["group"]) - {""}) < 2:
        return ""
    table = arm_differences(result)
    stat = "z" if result.reference == "z" else "t"
    effects = result.effects
    first = effects[effects["group"] == effects["group"].iloc[0]].assign(group="")
    names = {name.rsplit("[", 1)[0]: f"{lab.outcome_label(row['outcome_role'], result.spec)}: "
             f"{lab.effect_label(row)}" for name, row in first.iterrows()}
    shown = pd.DataFrame({
        "Effect": [names.get(e, e) for e in table["effect"]], "Contrast": table["contrast"],
        "Difference": [lab.number(v, 2) for v in table["difference"]],
        "SE": [lab.number(v, 2) for v in table["se"]],
        stat: [lab.number(v, 2) for v in table["statistic"]],
        "p": [lab.p_value(v) for v in table["p"]]})
    return ("<h2>Differences between arms</h2><p>Each effect in one arm minus the same effect "
            "in the first; the last row per contrast tests all actor and partner effects "
            "equal (chi-square in the statistic column).</p>" + _plain_table(shown))


def missing_figures(result: FittedModel, which: Sequence[str]) -> dict[str, str]:
    """The figures of ``which`` that ``result`` cannot have, each with the reason.

    Examples
    --------
    >>> import apim
    >>> result = apim.fit(apim.load_alliance(), apim.APIMSpec("outcome", ("alliance",)))
    >>> missing_figures(result, ["path", "surface"])
    {'surface': 'it needs a response-surface model (apim.response_surface in Python)'}
    """
    eff = result.effects
    reasons = {
        "path": "it needs actor and partner effects (an APIM, not a formula model)",
        "slopes": "it needs a moderator of the actor effects or the actor x partner "
                  "interaction (--moderator COL or --interaction)",
        "surface": "it needs a response-surface model (apim.response_surface in Python)",
        "trajectories": "it needs fitted values per row, which the latent model has not",
        "diagnostics": "it needs residuals per row, which the latent model has not"}
    drawn = {
        "path": not eff[(eff["effect"] == "actor") & (eff["by"] == "")].empty,
        "slopes": not eff[((eff["effect"] == "actor") & (eff["by"] != ""))
                          | ((eff["effect"] == "actor_x_partner")
                             & (eff["level"] == "within"))].empty,
        "surface": "surface" in set(eff["effect"]),
        "trajectories": result.fitted_frame() is not None,
        "diagnostics": result.fitted_frame() is not None}
    unknown = [w for w in which if w not in drawn]
    if unknown:
        raise SpecError(f"unknown figure {unknown[0]!r}; choose from {', '.join(FIGURES)}")
    return {w: reasons[w] for w in which if not drawn[w]}


def _figures(result: FittedModel, which: Sequence[str]) -> list[str]:
    eff = result.effects
    out = []
    plain_actor = not eff[(eff["effect"] == "actor") & (eff["by"] == "")].empty
    if "path" in which and plain_actor:
        out.append(figure_html(fg.path_diagram(result), "Path diagram: actor and partner "
                               "effects per level, with k"))
    if "slopes" in which:
        moderated = eff[(eff["effect"] == "actor") & (eff["by"] != "")]
        for term, row in moderated.head(2).iterrows():
            effect = ".".join(str(term).split("|")[0].split(".")[:3])
            out.append(figure_html(fg.simple_slopes_plot(result, effect, row["by"]),
                                   f"Simple slopes: {lab.effect_label(row, result)}"))
        inter = eff[(eff["effect"] == "actor_x_partner") & (eff["level"] == "within")]
        for r in list(dict.fromkeys(inter["outcome_role"]))[:2]:
            out.append(figure_html(
                fg.simple_slopes_plot(result, f"{r}.actor.within", "partner"),
                f"{r}: actor effect at values of the partner's within-person part"))
    if "surface" in which and "surface" in set(eff["effect"]):
        out.append(figure_html(fg.surface_plot(result), "Response surface"))
    per_row = ("trajectories" in which or "diagnostics" in which) and \
        result.fitted_frame() is not None  # latent models have no fitted values per row
    if "trajectories" in which and per_row:
        out.append(figure_html(fg.trajectories(result), "Observed (points) and fitted "
                               "(lines) outcome of the dyads with the most sessions"))
    if "diagnostics" in which and per_row:
        out.append(figure_html(fg.residual_diagnostics(result), "Residual diagnostics "
                               "per role"))
    return out


def fitted_data_report(result: FittedModel) -> DataReport:
    """The data report of a fit's data on the model's variables: the result's own
    (``result.data_report()``, where a model words the rows it does not use itself, as
    the dynamic APIM does), else that of the data."""
    own = getattr(result, "data_report", None)
    if callable(own):
        return own()
    spec = result.spec
    variables = [v for v in (getattr(spec, "outcome", None),
                             *getattr(spec, "predictors", ())) if v]
    return result.data.report(variables or None)


def fit_report(result: FittedModel, path: str | os.PathLike[str] | None = None, *,
               data_report: DataReport | None = None, figures: bool | Sequence[str] = True,
               warnings: Sequence[str] = (), title: str | None = None) -> str:
    """One self-contained HTML report of a fit; written to ``path`` when given.

    Parameters
    ----------
    result : FittedModel
    path : path, optional
        Where to write the report (atomically).
    data_report : DataReport, optional
        Default: the result's own (``result.data_report()``, where a model words the rows
        it does not use itself), else the report of the fitted data on the variables of
        the model.
    figures : bool or sequence of str
        ``True`` for all that apply (:data:`FIGURES`), ``False`` for none, or a selection
        (each must apply to the model: :func:`missing_figures`).
    warnings : sequence of str
        Warnings raised while fitting (the CLI collects them).
    title : str, optional
    """
    spec = result.spec
    if data_report is None:
        data_report = fitted_data_report(result)
    which = FIGURES if figures is True else () if figures is False else tuple(figures)
    if figures is not True:  # figures asked for by name: each must be drawn
        for name, reason in missing_figures(result, which).items():
            raise SpecError(f"figure {name!r} cannot be drawn for this model: {reason}; "
                            "leave it out (figures=True draws every figure that applies)")
    title = title or (f"{result.kind[:1].upper()}{result.kind[1:]} report: "
                      f"{getattr(spec, 'outcome', 'model')}")
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    notes = list(warnings)
    if not result.statistics.converged:
        notes.append(f"the fit did not converge: {result.statistics.message}")
    notes += [f"boundary estimate: {b}" for b in result.boundary]
    body = [
        f"<h1>{_escape(title)}</h1>",
        f'<p class="meta">apim {__version__}, Python {platform.python_version()}, {now}</p>',
        "<h2>Model</h2>", f"<p>{_escape(result.model_line())}</p>",
        "<details><summary>Specification (as in a plan file)</summary>"
        f"<pre>{_escape(json.dumps(spec.to_dict(), indent=2))}</pre></details>",
        "<h2>Data</h2>", data_report.to_html(),
        "<h2>Tables</h2>", result_html(result),
        _arms_html(result),
        _patterns_html(result),
    ]
    figs = _figures(result, which) if which else []
    if figs:
        body += ["<h2>Figures</h2>", *figs]
    body += ["<h2>Rows not used</h2>", _dropped_html(result), "<h2>Warnings</h2>"]
    body += ([f'<p class="warning">{_escape(w)}</p>' for w in notes] if notes
             else ["<p>None.</p>"])
    text = page(title, "\n".join(body))
    if path is not None:
        write_atomic(path, text)
    return text
