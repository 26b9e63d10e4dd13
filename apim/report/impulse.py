"""The impulse-response figure of a dynamic APIM: both members' outcomes over the next
sessions after a one-SD rise in one variable (e.g. the patient's alliance), with bands.

Examples
--------
>>> import pandas as pd
>>> table = pd.DataFrame({"sessions_after": [0, 1, 0, 1], "variable": "outcome",
...                       "role": ["patient", "patient", "therapist", "therapist"],
...                       "response": [0.0, 0.2, 0.0, 0.1], "se": 0.05,
...                       "ci_low": [0.0, 0.1, 0.0, 0.0], "ci_high": [0.0, 0.3, 0.0, 0.2]})
>>> figure = impulse_figure(table, "alliance of the patient")
>>> figure.axes[0].get_xlabel()
'sessions after the rise'
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import pandas as pd

from apim.errors import SpecError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["impulse_figure"]


def impulse_figure(table: pd.DataFrame, shock: str, variable: str | None = None) -> Figure:
    """Responses of ``variable`` (default: the last variable of ``table``, the outcome)
    of both roles, from :meth:`~apim.model.dynamic_result.DynamicAPIMResult
    .impulse_responses`, with their confidence bands; ``shock`` says what rose."""
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib is a core dependency
        raise SpecError("figures need matplotlib, a dependency of apim that is missing "
                        "here: pip install matplotlib") from None
    variable = variable if variable is not None else str(table["variable"].iloc[-1])
    part = table[table["variable"] == variable]
    if part.empty:
        raise SpecError(f"no variable {variable!r} in the impulse responses")
    figure = Figure(figsize=(6.0, 3.8))
    ax = figure.add_subplot()
    for (role, rows), style in zip(part.groupby("role", sort=False), ("-o", "--s")):
        x = rows["sessions_after"].to_numpy()
        ax.fill_between(x, rows["ci_low"], rows["ci_high"], alpha=0.2)
        ax.plot(x, rows["response"], style, label=f"{role}'s {variable}")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel("sessions after the rise")
    ax.set_ylabel(f"change in {variable}")
    ax.set_title(textwrap.fill(f"Response to a one-SD within-person rise in {shock}", 56),
                 fontsize=10)
    ax.legend(frameon=False)
    figure.tight_layout()
    return figure
