"""APA-style tables of fitted APIMs in markdown, LaTeX (booktabs) and HTML.

:func:`effects_table` (fixed effects: b, SE, df, t, p, CI), :func:`variance_table`
(variance components) and :func:`compare_table` (several fits side by side, like R's
``modelsummary`` or ``fixest::etable``) each return a :class:`Table`: a frame of display
strings with a title, the model line and notes, rendered by pandas ``Styler`` (HTML,
LaTeX with ``\\toprule``/``\\midrule``/``\\bottomrule`` and escaped text) or as a markdown
pipe table.

Examples
--------
>>> import apim
>>> spec = apim.APIMSpec("outcome", ("alliance",), moderators=("treatment",))
>>> result = apim.fit(apim.load_alliance(), spec)
>>> table = effects_table(result)
>>> print(table.to_markdown().splitlines()[4])
| Outcome | Effect | b | SE | df | t | p | 95% CI LL | 95% CI UL |
>>> "reference category CBT" in table.to_markdown()
True
>>> "\\\\toprule" in table.to_latex() and "<table" in table.to_html()
True
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

import apim.report.labels as lab
from apim.engine.distributions import stats
from apim.model.fitted import FittedModel

__all__ = ["Table", "effects_table", "variance_table", "compare_table"]

_LATEX_TEXT = {"−": "$-$", "×": r"$\times$", "²": r"$^{2}$", "φ": r"$\phi$", "—": "---",
               "′": "'", "< .": "$<$ .", "⁻¹": r"$^{-1}$", "√": r"$\surd$", "–": "--"}
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$",
                  "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}"}
_CSS = ("table.apim-table{border-collapse:collapse;margin:0.5em 0;font-size:0.92em}"
        "table.apim-table caption{text-align:left;font-style:italic;padding-bottom:4px}"
        "table.apim-table thead tr:first-child th{border-top:2px solid #000}"
        "table.apim-table thead tr:last-child th{border-bottom:1px solid #000}"
        "table.apim-table tbody tr:last-child td{border-bottom:2px solid #000}"
        "table.apim-table th,table.apim-table td{padding:2px 10px;text-align:right}"
        "table.apim-table th.col_heading{text-align:center}"
        "table.apim-table th.col0,table.apim-table th.col1{text-align:left}"
        "table.apim-table td.col0,table.apim-table td.col1{text-align:left}"
        "p.apim-note{font-size:0.85em;max-width:60em}")


def _latex_text(text: str) -> str:
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)
    return _unicode_to_latex(out)


def _unicode_to_latex(text: str) -> str:
    for uni, tex in _LATEX_TEXT.items():
        text = text.replace(uni, tex)
    return text


@dataclass(frozen=True)
class Table:
    """A display table: strings in ``frame``, its title, the model line and notes.

    ``frame`` may have two-level columns (``("95% CI", "LL")``); markdown joins the levels.
    """

    title: str
    header: str
    frame: pd.DataFrame = field(repr=False)
    notes: tuple[str, ...] = ()
    left: int = 2  # columns aligned left (labels)

    def _flat_columns(self) -> list[str]:
        cols = self.frame.columns
        if isinstance(cols, pd.MultiIndex):
            return [" ".join(str(c) for c in col if c) for col in cols]
        return [str(c) for c in cols]

    def to_markdown(self) -> str:
        """Markdown: bold title, the model line, a pipe table and the notes."""
        def cell(v: object) -> str:
            return str(v).replace("|", "\\|")

        cols = self._flat_columns()
        align = [":---" if i < self.left else "---:" for i in range(len(cols))]
        lines = [f"**{self.title}**", "", self.header, "",
                 "| " + " | ".join(cols) + " |", "| " + " | ".join(align) + " |"]
        lines += ["| " + " | ".join(cell(v) for v in row) + " |"
                  for row in self.frame.itertuples(index=False)]
        if self.notes:
            lines += ["", "*Note.* " + " ".join(self.notes)]
        return "\n".join(lines)

    def _styler(self, escape: str) -> pd.io.formats.style.Styler:
        uuid = re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-") or "table"
        return (self.frame.style.hide(axis="index").format(escape=escape)
                .format_index(escape=escape, axis=1).set_uuid(uuid))

    def to_latex(self) -> str:
        """LaTeX ``table`` with booktabs rules (``\\usepackage{booktabs}``), text escaped."""
        ncol = self.frame.shape[1]
        styler = self._styler("latex")
        body = styler.to_latex(
            hrules=True, environment="table", position="htbp", position_float="centering",
            column_format="l" * self.left + "r" * (ncol - self.left),
            caption=_latex_text(self.title), multicol_align="c")
        body = _unicode_to_latex(body)
        extra = [r"\par\smallskip{\footnotesize " + _latex_text(self.header) + "}"]
        if self.notes:
            extra.append(r"\par\smallskip{\footnotesize\textit{Note.} "
                         + _latex_text(" ".join(self.notes)) + "}")
        return body.replace(r"\end{table}", "\n".join(extra) + "\n" + r"\end{table}")

    def to_html(self, css: bool = True) -> str:
        """An HTML table (class ``apim-table``) with caption and notes; ``css`` adds APA
        rules (lines above and below the header and at the bottom)."""
        styler = (self._styler("html").set_caption(html.escape(self.title))
                  .set_table_attributes('class="apim-table"'))
        parts = [f"<style>{_CSS}</style>"] if css else []
        parts += [f'<div class="apim-table-block"><p class="apim-model">'
                  f"{html.escape(self.header)}</p>", styler.to_html()]
        if self.notes:
            parts.append('<p class="apim-note"><em>Note.</em> '
                         + html.escape(" ".join(self.notes)) + "</p>")
        parts.append("</div>")
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        return self.to_html()

    def __str__(self) -> str:
        return self.to_markdown()


def _blank_repeats(values: Sequence[str]) -> list[str]:
    out, last = [], None
    for v in values:
        out.append(v if v != last else "")
        last = v
    return out


def model_header(result: FittedModel) -> str:
    """The model line with the sample: what was fitted to how much."""
    s = result.statistics
    therapists = f" of {s.n_therapists} therapists" if s.n_therapists else ""
    return (f"{result.model_line()}; {s.n_obs} observations from {s.n_dyads} dyads"
            f"{therapists}; logLik = {lab.number(s.loglik, 2)}")


def effects_table(result: FittedModel, digits: int = 2, level: float = 0.95,
                  title: str = "Fixed effects") -> Table:
    """APA table of the effects: b, SE, df (one decimal), t, p, CI; or b, SE, z, p, CI
    for a model with normal-theory tests (the latent APIM). Effects of one arm of a
    multi-group model say so ("in AFT").

    Parameters
    ----------
    result : FittedModel
    digits : int
        Decimals of b, SE and the CI (t always 2, df 1).
    level : float
        Confidence level of the interval.
    title : str
    """
    eff = result.effects
    spec = result.spec
    crit = stats.t.ppf(0.5 + level / 2, eff["df"].to_numpy())
    low = eff["estimate"] - crit * eff["se"]
    high = eff["estimate"] + crit * eff["se"]
    ci = lab.ci_label(level)
    outcome = [lab.outcome_label(r, spec) for r in eff["outcome_role"]]
    columns: dict[tuple[str, str], list[str]] = {
        ("Outcome", ""): _blank_repeats(outcome),
        ("Effect", ""): [lab.effect_label(row, result) for _, row in eff.iterrows()],
        ("b", ""): [lab.number(v, digits) for v in eff["estimate"]],
        ("SE", ""): [lab.number(v, digits) for v in eff["se"]],
    }
    if result.reference == "t":
        columns[("df", "")] = [lab.number(v, 1) for v in eff["df"]]
    columns[(result.reference, "")] = [lab.number(v, 2) for v in eff["t"]]
    columns.update({
        ("p", ""): [lab.p_value(v) for v in eff["p"]],
        (ci, "LL"): [lab.number(v, digits) for v in low],
        (ci, "UL"): [lab.number(v, digits) for v in high],
    })
    frame = pd.DataFrame(columns)
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return Table(title=title, header=model_header(result), frame=frame,
                 notes=tuple(lab.notes(result, level)))


def variance_table(result: FittedModel, digits: int = 3,
                   title: str = "Variance components") -> Table:
    """APA table of the variance components (SDs and correlations, or the variances and
    covariances of a multivariate model) with SEs.

    Built from the result's ``variance`` (one row per parameter, columns ``estimate`` and
    ``se``), so any component the model has appears here.
    """
    var = result.variance
    parts = [lab.variance_label(name) for name in var.index]
    frame = pd.DataFrame({
        "Level": _blank_repeats([p[0] for p in parts]),
        "Component": [p[1] for p in parts],
        "Estimate": [lab.number(v, digits) for v in var["estimate"]],
        "SE": [lab.number(v, digits) for v in var["se"]],
    })
    scale = ("Variances and covariances" if any(p.kind in ("var", "cov")
                                                for p in result.parameters)
             else "SDs and correlations on the natural scale")
    notes = [f"{scale}; SEs from the observed information (delta method)."]
    if any("AR(1)" in str(n) for n in var.index):
        notes.append("φ: correlation of a person's residuals one session apart "
                     "(AR(1) over session numbers).")
    if result.boundary:
        notes.append("At the boundary: " + "; ".join(result.boundary) + ".")
    return Table(title=title, header=model_header(result), frame=frame, notes=tuple(notes))


def compare_table(results: Mapping[str, FittedModel] | Sequence[FittedModel], digits: int = 2,
                  title: str = "Models compared") -> Table:
    """Several fits side by side: b with significance stars, SE in parentheses below,
    and fit statistics (observations, dyads, method, residuals, logLik, AIC, BIC).

    Examples
    --------
    >>> import apim
    >>> data = apim.load_alliance()
    >>> a = apim.fit(data, apim.APIMSpec("outcome", ("alliance",), method="ML"))
    >>> b = apim.fit(data, apim.APIMSpec("outcome", ("alliance",), method="ML",
    ...                                  interaction=True))
    >>> table = compare_table({"APIM": a, "with interaction": b})
    >>> list(table.frame.columns)
    ['Term', 'APIM', 'with interaction']
    """
    if not isinstance(results, Mapping):
        results = {f"({i + 1})": r for i, r in enumerate(results)}
    names = list(results)
    entries: list[tuple[str, str, str]] = []  # (term, label, outcome role)
    for r in results.values():
        for term, row in r.effects.iterrows():
            if any(e[0] == term for e in entries):
                continue
            label = f"{lab.outcome_label(row['outcome_role'], r.spec)}: " \
                    f"{lab.effect_label(row, r)}"
            role = str(row["outcome_role"])
            same = [i for i, e in enumerate(entries) if e[2] == role]
            at = same[-1] + 1 if same else len(entries)  # new terms join their role's block
            entries.insert(at, (str(term), label, role))
    order = {term: label for term, label, _ in entries}
    rows: list[list[str]] = []
    for term, label in order.items():
        est, se = [label], [""]
        for r in results.values():
            eff = r.effects
            if term in eff.index:
                est.append(lab.number(eff.at[term, "estimate"], digits)
                           + lab.stars(eff.at[term, "p"]))
                se.append(f"({lab.number(eff.at[term, 'se'], digits)})")
            else:
                est.append("")
                se.append("")
        rows += [est, se]

    def stat(label: str, get: object) -> list[str]:
        return [label] + [get(r) for r in results.values()]  # type: ignore[operator]

    rows += [
        stat("Model", lambda r: r.kind),
        stat("Observations", lambda r: str(r.statistics.n_obs)),
        stat("Dyads", lambda r: str(r.statistics.n_dyads)),
        stat("Method", lambda r: r.statistics.method),
        stat("logLik", lambda r: lab.number(r.statistics.loglik, 2)),
        stat("AIC", lambda r: lab.number(r.statistics.aic, 2)),
        stat("BIC", lambda r: lab.number(r.statistics.bic, 2)),
        stat("Converged", lambda r: "yes" if r.statistics.converged else "NO"),
    ]
    frame = pd.DataFrame(rows, columns=["Term", *names])
    methods = {r.statistics.method for r in results.values()}
    notes = ["Unstandardised estimates with standard errors in parentheses; "
             "* p < .05, ** p < .01, *** p < .001."]
    if methods == {"REML"} and len(results) > 1:
        notes.append("REML fits: compare logLik, AIC and BIC only between models with the "
                     "same fixed effects (refit with method='ML' otherwise).")
    header = "; ".join(f"{n}: {r.model_line()}" for n, r in results.items())
    return Table(title=title, header=header, frame=frame, notes=tuple(notes), left=1)
