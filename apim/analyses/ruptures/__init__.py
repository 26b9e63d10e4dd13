"""Rupture-repair episodes in session-by-session alliance ratings of both members.

- :class:`RuptureSpec` (:mod:`apim.analyses.ruptures.rules`): the rule and its options.
- :func:`detect_ruptures` (:mod:`apim.analyses.ruptures.summaries`): episodes, per-session
  flags and per-dyad summaries in a :class:`RuptureResult`; the rules are spelled out in
  :mod:`apim.analyses.ruptures.detect`.
- :func:`add_rupture_flags`: the flags (lagged, partner's) as columns for an APIM.
- :func:`plot_ruptures` (:mod:`apim.analyses.ruptures.plot`): trajectories with episodes
  marked (matplotlib loads only when a figure is drawn).

Examples
--------
>>> import apim
>>> from apim.analyses.ruptures import RuptureSpec, detect_ruptures
>>> result = detect_ruptures(apim.load_alliance(), "alliance", RuptureSpec(k=1.5))
>>> list(result.episodes.columns)[:4]
['dyad', 'role', 'onset', 'pre_level']
"""

from __future__ import annotations

from apim.analyses.ruptures.plot import plot_ruptures
from apim.analyses.ruptures.rules import RuptureSpec, reliable_change_cutoff
from apim.analyses.ruptures.summaries import RuptureResult, add_rupture_flags, detect_ruptures

__all__ = ["RuptureSpec", "RuptureResult", "detect_ruptures", "add_rupture_flags",
           "reliable_change_cutoff", "plot_ruptures"]

