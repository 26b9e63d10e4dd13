"""The figure of a generalized APIM's predicted probabilities over a predictor: one panel
per member (outcome role), the actor and the partner effect of one level side by side.

Examples
--------
>>> import warnings
>>> import numpy as np, pandas as pd
>>> import apim
>>> from apim.model.generalized_spec import GeneralizedAPIMSpec
>>> frame = apim.load_alliance().frame.drop(columns="row")
>>> frame = frame[frame["dyad"] <= 40]
>>> frame["low"] = (frame["outcome"] < 2.8).astype(float).where(frame["outcome"].notna())
>>> data = apim.SessionData.from_long(frame, dyad="dyad", session="session", role="role")
>>> with warnings.catch_warnings():
...     warnings.simplefilter("ignore")
...     result = apim.fit(data, GeneralizedAPIMSpec("low", ("alliance",), nagq=1))
>>> fig = probability_plot(result)
>>> len(fig.axes)
2
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from apim.errors import SpecError
from apim.model.generalized_result import GeneralizedAPIMResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["probability_plot"]


def probability_plot(result: GeneralizedAPIMResult, predictor: str | None = None,
                     level: str = "within") -> Figure:
    """Predicted P(event) (binary) or P(top category) (ordinal) against the actor's and
    the partner's ``level`` part of ``predictor`` (default: the first), one panel per
    member, other columns at their means and random intercepts 0
    (:meth:`GeneralizedAPIMResult.predicted_probabilities`)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise SpecError("figures need matplotlib, a dependency of apim that is missing "
                        "here: pip install matplotlib") from None
    predictor = predictor or result.spec.predictors[0]
    owners = list(dict.fromkeys(t.outcome_role for t in result.terms))
    top = f"{result.categories[-1]:g}"
    what = "P(event)" if result.spec.family == "binomial" else f"P(Y = {top})"
    fig = Figure(figsize=(4.2 * len(owners), 3.4), layout="constrained")
    highest = 0.0
    axes: list[Axes] = []
    for i, owner in enumerate(owners):
        ax = fig.add_subplot(1, len(owners), i + 1, sharey=axes[0] if axes else None)
        axes.append(ax)
        for effect, style in (("actor", "-"), ("partner", "--")):
            term = f"{owner}.{effect}.{level}.{predictor}"
            if term not in result.names:
                continue
            table = result.predicted_probabilities(term)
            table = table[table["category"] == top]
            ax.plot(table["value"], table["probability"], style, label=f"{effect} ({level})")
            highest = max(highest, float(table["probability"].max()))
        ax.set_title(f"outcome of {owner}")
        ax.set_xlabel(f"{predictor}, {level} part")
        ax.set_ylabel(what)
        ax.legend(frameon=False)
    # rare events stay visible: the axis ends just above the highest prediction
    axes[0].set_ylim(0, min(1.0, 1.15 * highest) or 1.0)
    return fig
