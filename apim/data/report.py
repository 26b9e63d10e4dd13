"""The data report: what is in the data and which rows a dyadic fit would not use, and why.

Examples
--------
>>> from apim.datasets import load_alliance
>>> report = load_alliance().report(["alliance", "outcome"])
>>> report.n_dyads
240
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from apim.data.formats import partner_values
from apim.data.interface import SessionLike
from apim.data.validate import suspicious_values
from apim.errors import format_rows

FEW_DYADS = 30


@dataclass(frozen=True)
class Exclusion:
    """Rows a dyadic fit would not use, with the reason (rows are 1-based input rows)."""

    reason: str
    rows: tuple[int, ...]

    def __str__(self) -> str:
        return f"{len(self.rows)} rows: {self.reason} ({format_rows(self.rows)})"


@dataclass(frozen=True)
class DataReport:
    """Summary of session data and the rows a fit would exclude.

    Attributes
    ----------
    source : str
    roles : tuple of str
        The two roles, the reference first.
    n_rows, n_dyads, n_persons, n_therapists : int
    n_sessions : int
        Distinct dyad x session pairs.
    sessions_per_dyad : tuple of float
        Minimum, median and maximum number of sessions per dyad.
    rows_per_role : dict
    missing : pandas.DataFrame
        Missing values per variable (rows) and role (columns).
    exclusions : tuple of Exclusion
    warnings : tuple of str
    unused_heading : str
        What the exclusions are (a model that uses partly rated rows words its own).
    """

    source: str
    roles: tuple[str, str]
    n_rows: int
    n_dyads: int
    n_persons: int
    n_therapists: int
    n_sessions: int
    sessions_per_dyad: tuple[float, float, float]
    rows_per_role: dict[str, int]
    missing: pd.DataFrame
    exclusions: tuple[Exclusion, ...]
    warnings: tuple[str, ...]
    notes: tuple[str, ...] = ()
    unused_heading: str = "Rows a dyadic fit would not use"

    @classmethod
    def of(cls, data: SessionLike, variables: Sequence[str] | None = None,
           predictors: Sequence[str] = ()) -> DataReport:
        """Build the report; ``variables`` are the ratings a fit would use (default: all
        numeric variables); ``predictors`` also need the partner's rating at the session.

        For the exact rows a given model drops use the exclusions of its design
        (``apim describe --outcome ... --predictor ...`` does that).
        """
        frame = data.frame
        if variables is None:
            variables = [v for v in data.variables
                         if pd.api.types.is_numeric_dtype(frame[v])
                         and not pd.api.types.is_bool_dtype(frame[v])]
        variables = list(dict.fromkeys([*variables, *predictors]))
        values = pd.DataFrame({v: data.numeric(v) for v in variables}, index=frame.index)
        per_dyad = frame.groupby("dyad")["session"].nunique()
        missing = values.isna().groupby(frame["role"]).sum().T.reindex(
            columns=list(data.roles)) if variables else pd.DataFrame(columns=list(data.roles))
        exclusions = []
        rated = values.notna().any(axis=1) if variables else pd.Series(True, index=frame.index)
        raters = frame.loc[rated].groupby("dyad")["role"].nunique()
        lone = frame["dyad"].map(raters).fillna(0).to_numpy() < 2
        if lone.any():
            exclusions.append(Exclusion(
                "dyad in which only one member ever rated: excluded from dyadic fits",
                tuple(frame.loc[lone, "row"].tolist())))
        remaining = ~lone
        for v in variables:
            gone = values[v].isna().to_numpy() & remaining
            if gone.any():
                exclusions.append(Exclusion(f"missing {v}",
                                            tuple(frame.loc[gone, "row"].tolist())))
                remaining &= ~gone
        if predictors:
            partner = partner_values(data.replace(frame.assign(**values[list(predictors)])),
                                     list(predictors))
            for x in predictors:
                gone = partner[x].isna().to_numpy() & remaining
                if gone.any():
                    exclusions.append(Exclusion(
                        f"missing the partner's {x} at this session (partner effects "
                        "need it)",
                        tuple(frame.loc[gone, "row"].tolist())))
                    remaining &= ~gone
        warnings = []
        for v in variables:
            message = suspicious_values(values[v], frame["row"], v)
            if message:
                warnings.append(message)
        n_dyads = int(frame["dyad"].nunique())
        if n_dyads < FEW_DYADS:
            warnings.append(f"only {n_dyads} dyads: variance components and dyad-level "
                            "effects will be imprecise")
        return cls(
            source=data.source,
            roles=data.roles,
            n_rows=len(frame),
            n_dyads=n_dyads,
            n_persons=int(frame.groupby(["dyad", "role"]).ngroups),
            n_therapists=int(frame["therapist"].nunique()) if data.has_therapist else 0,
            n_sessions=int(frame.groupby(["dyad", "session"]).ngroups),
            sessions_per_dyad=(float(per_dyad.min()), float(per_dyad.median()),
                               float(per_dyad.max())),
            rows_per_role={r: int((frame["role"] == r).sum()) for r in data.roles},
            missing=missing.astype(int),
            exclusions=tuple(exclusions),
            warnings=tuple(warnings),
            notes=tuple(data.notes),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return {
            "source": self.source, "roles": list(self.roles), "n_rows": self.n_rows,
            "n_dyads": self.n_dyads, "n_persons": self.n_persons,
            "n_therapists": self.n_therapists, "n_sessions": self.n_sessions,
            "sessions_per_dyad": dict(zip(("min", "median", "max"), self.sessions_per_dyad)),
            "rows_per_role": self.rows_per_role,
            "missing": {v: {r: int(n) for r, n in row.items()}
                        for v, row in self.missing.iterrows()},
            "exclusions": [{"reason": e.reason, "n_rows": len(e.rows), "rows": list(e.rows)}
                           for e in self.exclusions],
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }

    def __repr__(self) -> str:
        dropped = sum(len(e.rows) for e in self.exclusions)
        return (f"<DataReport: {self.source}; {self.n_rows} rows, {self.n_dyads} dyads, "
                f"roles {self.roles[0]} (reference) and {self.roles[1]}; {dropped} row "
                f"exclusions in {len(self.exclusions)} groups; {len(self.warnings)} warnings>")

    def to_html(self) -> str:
        """The data report as HTML: counts, missing ratings per role, excluded rows,
        warnings (every text escaped)."""
        lo, med, hi = self.sessions_per_dyad
        facts = [("Source", self.source),
                 ("Roles", f"{self.roles[0]} (reference), {self.roles[1]}"),
                 ("Rows", f"{self.n_rows} (" + ", ".join(
                     f"{r} {n}" for r, n in self.rows_per_role.items()) + ")"),
                 ("Dyads", self.n_dyads), ("Persons", self.n_persons)]
        if self.n_therapists:
            facts.append(("Therapists", self.n_therapists))
        facts += [("Dyad-sessions", self.n_sessions),
                  ("Sessions per dyad", f"min {lo:g}, median {med:g}, max {hi:g}")]
        parts = ['<table class="apim-kv">' + "".join(
            f"<tr><td>{_escape(k)}</td><td>{_escape(v)}</td></tr>" for k, v in facts)
            + "</table>"]
        if len(self.missing):
            missing = self.missing.reset_index().rename(columns={"index": "variable"})
            missing.columns = ["variable", *[f"missing ({r})" for r in self.missing.columns]]
            parts.append(_plain_table(missing))
        if self.exclusions:
            rows = pd.DataFrame({"reason": [e.reason for e in self.exclusions],
                                 "rows": [len(e.rows) for e in self.exclusions],
                                 "first rows": [format_rows(e.rows) for e in self.exclusions]})
            parts.append(f"<p>{_escape(self.unused_heading)}:</p>" + _plain_table(rows))
        else:
            parts.append(f"<p>{_escape(self.unused_heading)}: none.</p>")
        parts += [f'<p class="warning">Warning: {_escape(w)}</p>' for w in self.warnings]
        return '<div class="apim-data-report">' + "\n".join(parts) + "</div>"

    @property
    def _heading_lower(self) -> str:
        return self.unused_heading[:1].lower() + self.unused_heading[1:]

    def _repr_html_(self) -> str:
        """The report as HTML tables (Jupyter)."""
        return self.to_html()

    def __str__(self) -> str:
        lo, med, hi = self.sessions_per_dyad
        lines = [
            f"Data report: {self.source}",
            f"  roles                {self.roles[0]} (reference), {self.roles[1]}",
            f"  rows                 {self.n_rows}  ("
            + ", ".join(f"{r} {n}" for r, n in self.rows_per_role.items()) + ")",
            f"  dyads                {self.n_dyads}",
            f"  persons              {self.n_persons}",
        ]
        if self.n_therapists:
            lines.append(f"  therapists           {self.n_therapists}")
        lines += [
            f"  dyad-sessions        {self.n_sessions}",
            f"  sessions per dyad    min {lo:g}, median {med:g}, max {hi:g}",
        ]
        if len(self.missing):
            lines.append("  missing ratings      " + "  ".join(
                f"{v}: " + ", ".join(f"{r} {int(n)}" for r, n in row.items())
                for v, row in self.missing.iterrows()))
        if self.exclusions:
            lines.append(f"  {self._heading_lower}:")
            lines += [f"    - {e}" for e in self.exclusions]
        else:
            lines.append(f"  {self._heading_lower}: none")
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _escape(value: Any) -> str:
    return html.escape(str(value))


def _plain_table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, classes="apim-plain", border=0, escape=True,
                         na_rep="—")
