"""Trajectory figure of one dyad with its rupture episodes marked.

Each member's ratings are a line over session numbers (a gap where a session was not
rated). Each episode is drawn in its member's colour: a shaded band over the sessions in
rupture, a dotted line at the pre-drop level, a downward triangle at the onset, and a star
at the repair session; an unrepaired episode ends in a cross at its last rating within the
window, and a censored one in a ring around the member's last rating.

Examples
--------
>>> import apim
>>> from apim.analyses.ruptures import RuptureSpec, detect_ruptures
>>> result = detect_ruptures(apim.load_alliance(), "alliance", RuptureSpec(k=1.5))
>>> fig = plot_ruptures(result, result.episodes["dyad"].iloc[0])
>>> len(fig.axes)
1
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

import numpy as np
import pandas as pd

from apim.errors import SpecError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_ruptures", "Episodes"]

COLOURS = ("#1f77b4", "#d62728")


class _Labelled(Protocol):
    @property
    def label(self) -> str: ...


class Episodes(Protocol):
    """What the figure draws: the tables of a
    :class:`~apim.analyses.ruptures.summaries.RuptureResult` (this module does not import
    it, so the result can draw itself without an import cycle)."""

    @property
    def variable(self) -> str: ...
    @property
    def spec(self) -> _Labelled: ...
    @property
    def roles(self) -> tuple[str, str]: ...
    @property
    def episodes(self) -> pd.DataFrame: ...
    @property
    def dyads(self) -> pd.DataFrame: ...
    @property
    def series(self) -> pd.DataFrame: ...


def plot_ruptures(result: Episodes, dyad: object, ax: Axes | None = None) -> Figure:
    """Plot both members' series of one dyad with the episodes marked.

    Parameters
    ----------
    result : RuptureResult
    dyad : object
        The dyad id as in the data.
    ax : matplotlib Axes, optional
        Draw into this axes (default: a new figure).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    series = result.series[result.series["dyad"] == dyad]
    if series.empty:
        known = ", ".join(repr(d) for d in result.dyads["dyad"].head(5))
        raise SpecError(f"dyad {dyad!r} has no ratings of {result.variable!r}; dyads are e.g. "
                        f"{known}")
    own_figure = ax is None
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 4.2))
    else:
        fig = cast("Figure", ax.figure)
    episodes = result.episodes[result.episodes["dyad"] == dyad]
    lo, hi = series["session"].min(), series["session"].max()
    for colour, role in zip(COLOURS, result.roles):
        own = series[series["role"] == role].set_index("session")["value"]
        if own.empty:
            continue
        grid = own.reindex(np.arange(own.index.min(), own.index.max() + 1))
        ax.plot(grid.index, grid.to_numpy(), color=colour, lw=1.6, label=str(role))
        ax.plot(own.index, own.to_numpy(), "o", color=colour, ms=3.5)
        for ep in episodes[episodes["role"] == role].itertuples(index=False):
            last = ep.onset + ep.length - 1
            ax.axvspan(ep.onset - 0.45, last + 0.45, color=colour, alpha=0.12, lw=0)
            pre = own.index[own.index < ep.onset].max()
            end = ep.repair_session if ep.repaired else last
            ax.hlines(ep.pre_level, pre, end, colors=colour, linestyles=":", lw=1.2)
            ax.plot(ep.onset, own[ep.onset], "v", color=colour, ms=10, mec="black", mew=0.6)
            if ep.repaired:
                ax.plot(ep.repair_session, own[ep.repair_session], "*", color=colour, ms=14,
                        mec="black", mew=0.6)
            else:
                at = own.index[own.index <= last].max()
                if ep.censored:  # a ring around the last rating
                    ax.plot(at, own[at], ls="none", marker="o", mfc="none", ms=17,
                            mec=colour, mew=1.6)
                else:
                    ax.plot(at, own[at], ls="none", marker="X", color=colour, ms=10,
                            mec="black", mew=0.8)
    from matplotlib.lines import Line2D

    keys = [Line2D([], [], color="grey", marker="v", ls="none", mec="black", label="onset"),
            Line2D([], [], color="grey", marker="*", ms=11, ls="none", mec="black",
                   label="repair"),
            Line2D([], [], color="grey", marker="X", ls="none", mec="black",
                   label="unrepaired"),
            Line2D([], [], marker="o", mfc="none", ms=11, ls="none", mec="grey", mew=1.6,
                   label="censored (series ends)"),
            Line2D([], [], color="grey", ls=":", label="pre-drop level")]
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=handles + keys, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              fontsize=8, frameon=False)
    ax.set_title(f"Dyad {dyad}: ruptures in {result.variable} ({result.spec.label})",
                 fontsize=10)
    ax.set_xlabel("session")
    ax.set_ylabel(result.variable)
    ax.set_xlim(lo - 0.7, hi + 0.7)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if own_figure:
        fig.tight_layout()
    return fig
