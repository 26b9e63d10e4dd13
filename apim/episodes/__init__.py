"""Rupture-repair episodes in session-by-session alliance ratings of both members.

- :class:`RuptureSpec` (:mod:`apim.episodes.rules`): the rule and its options.
- :func:`detect_ruptures` (:mod:`apim.episodes.summaries`): episodes, per-session flags and
  per-dyad summaries in a :class:`RuptureResult`; the rules are spelled out in
  :mod:`apim.episodes.detect`.
- :func:`add_rupture_flags`: the flags (lagged, partner's) as columns for an APIM.
- :func:`plot_ruptures` (:mod:`apim.episodes.plot`): trajectories with episodes marked.

Examples
--------
>>> import apim
>>> from apim.episodes import RuptureSpec, detect_ruptures
>>> result = detect_ruptures(apim.load_alliance(), "alliance", RuptureSpec(k=1.5))
>>> list(result.episodes.columns)[:4]
['dyad', 'role', 'onset', 'pre_level']
"""

from __future__ import annotations

from typing import Any

from apim.episodes.rules import RuptureSpec, reliable_change_cutoff
from apim.episodes.summaries import RuptureResult, add_rupture_flags, detect_ruptures

__all__ = ["RuptureSpec", "RuptureResult", "detect_ruptures", "add_rupture_flags",
           "reliable_change_cutoff", "plot_ruptures"]


def __getattr__(name: str) -> Any:
    if name == "plot_ruptures":  # matplotlib only when plotting
        from apim.episodes.plot import plot_ruptures

        return plot_ruptures
    raise AttributeError(f"module 'apim.episodes' has no attribute {name!r}")
