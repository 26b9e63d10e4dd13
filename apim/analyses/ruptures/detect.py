"""Finding rupture episodes and their repair in one member's series.

A member's series is their rated sessions in session order (unrated sessions are simply
absent). The rules, exactly:

- **Drop** (``rule="drop"``): a candidate onset is a rated session t whose score is below the
  score at the member's previous rated session p (the pre-drop level ``a[p]``; a skipped
  session in between does not matter). The decline runs from t over the rated sessions up to
  session number ``t + L - 1`` (``decline=L``) while the score stays below
  ``a[p] - tolerance``; the drop is ``a[p]`` minus the lowest score of the decline. A
  rupture when the drop is at least the threshold ``k * SD_ref`` (ties count, see
  :func:`~apim.analyses.ruptures.rules.at_least`).
- **Sudden** (``rule="sudden"``, Tang & DeRubeis, 1999, adapted to drops): a rupture at t
  when (1) ``a[p] - a[t] >= k * SD_ref``; (2) ``a[p] - a[t] >= 0.25 * (a[p] - scale_min)``;
  (3) the rated sessions numbered ``p-2 .. p`` (before) and ``t .. t+2`` (after), at least 2
  of each, have means differing by more than ``t_crit * s_pooled``, with ``t_crit`` the
  two-sided 5% critical t on ``n_before + n_after - 2`` df and ``s_pooled`` their pooled SD.
- **Repair**: the first rated session s with ``t < s <= t + W`` (session numbers) and
  ``a[s] >= a[p] - tolerance``. Without one the episode is *censored* when the member's last
  rated session comes before ``t + W`` (the series ended first), else *unrepaired*.
- The member is **in rupture** from the onset through the session before the repair, through
  ``t + W`` when unrepaired, through the last rated session when censored; ``length`` counts
  these session numbers. ``trough`` is the lowest rated score in that span and
  ``depth_sd = (pre_level - trough) / SD_ref``.
- The search for the next onset resumes after the episode: at the repair session (which
  becomes the next pre-drop session), or with the first rated session after ``t + W``.

Examples
--------
>>> from apim.analyses.ruptures.rules import RuptureSpec
>>> eps = member_episodes([1, 2, 3, 4], [5.0, 3.0, 5.0, 5.0], 1.0, RuptureSpec())
>>> [(e.onset, e.repair_session, e.length) for e in eps]
[(2, 3, 1)]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from apim.analyses.ruptures.rules import RuptureSpec, at_least
from apim.engine.distributions import stats

__all__ = ["Episode", "member_episodes", "sudden_drop"]


@dataclass(frozen=True)
class Episode:
    """One rupture of one member (sessions are the user's session numbers)."""

    onset: int
    pre_session: int
    pre_level: float
    trough: float
    depth_sd: float
    last_session: int  # last session number in rupture
    repaired: bool
    repair_session: int | None
    censored: bool

    @property
    def length(self) -> int:
        """Number of session numbers in rupture (onset through ``last_session``)."""
        return self.last_session - self.onset + 1


def sudden_drop(sessions: np.ndarray, values: np.ndarray, p: int, t: int, threshold: float,
                scale_min: float) -> bool:
    """Whether the drop from position ``p`` to position ``t`` meets the three criteria.

    Examples
    --------
    >>> s = np.array([1, 2, 3, 4, 5, 6]); a = np.array([5.0, 5.0, 5.0, 4.0, 4.0, 4.0])
    >>> sudden_drop(s, a, 2, 3, 0.5, scale_min=1.0)  # 1 point = 25% of 5 - 1: a tie counts
    True
    >>> sudden_drop(s, a, 2, 3, 0.5, scale_min=0.0)  # 1 point < 25% of 5 - 0
    False
    >>> sudden_drop(s, np.array([6.0, 3.0, 6.1, 3.0, 6.2, 3.1]), 2, 3, 1.0, 1.0)  # unstable
    False
    """
    drop = values[p] - values[t]
    if not (drop > 0 and at_least(drop, threshold)):
        return False
    if not at_least(drop, 0.25 * (values[p] - scale_min)):
        return False
    before = values[(sessions >= sessions[p] - 2) & (sessions <= sessions[p])]
    after = values[(sessions >= sessions[t]) & (sessions <= sessions[t] + 2)]
    if len(before) < 2 or len(after) < 2:
        return False
    df = len(before) + len(after) - 2
    pooled = math.sqrt(((len(before) - 1) * np.var(before, ddof=1)
                        + (len(after) - 1) * np.var(after, ddof=1)) / df)
    critical = float(stats.t.ppf(0.975, df))
    return bool(before.mean() - after.mean() > critical * pooled)


def member_episodes(sessions: Sequence[int], values: Sequence[float], sd_ref: float,
                    spec: RuptureSpec) -> list[Episode]:
    """The rupture episodes of one member.

    Parameters
    ----------
    sessions : sequence of int
        Session numbers of the rated sessions, increasing.
    values : sequence of float
        The ratings at those sessions (no missing values).
    sd_ref : float
        The member's reference SD (NaN: not assessable, no episodes).
    spec : RuptureSpec

    Returns
    -------
    list of Episode
    """
    s = np.asarray(sessions, dtype=np.int64)
    a = np.asarray(values, dtype=float)
    n, W, tol = len(s), spec.window, spec.tolerance
    threshold = spec.multiplier * sd_ref
    if not math.isfinite(threshold):
        return []
    episodes: list[Episode] = []
    i = 1
    while i < n:
        p = i - 1
        pre = a[p]
        if not a[i] < pre:
            i += 1
            continue
        if spec.rule == "sudden":
            hit = sudden_drop(s, a, p, i, threshold, float(spec.scale_min or 0.0))
        else:
            j, lowest = i, a[i]
            while (j + 1 < n and s[j + 1] <= s[i] + spec.decline - 1
                   and not at_least(a[j + 1], pre - tol)):
                j += 1
                lowest = min(lowest, a[j])
            hit = at_least(pre - lowest, threshold)
        if not hit:
            i += 1
            continue
        onset = int(s[i])
        repair = next((m for m in range(i + 1, n)
                       if s[m] <= onset + W and at_least(a[m], pre - tol)), None)
        if repair is not None:
            last, span_end, next_i = int(s[repair]) - 1, repair, repair + 1
            repaired, censored = True, False
        elif s[-1] < onset + W:
            last, span_end, next_i = int(s[-1]), n, n
            repaired, censored = False, True
        else:
            last = onset + W
            span_end = int(np.searchsorted(s, onset + W, side="right"))
            next_i = span_end
            repaired, censored = False, False
        trough = float(a[i:span_end].min())
        depth = (pre - trough) / sd_ref if sd_ref > 0 else math.inf
        episodes.append(Episode(
            onset=onset, pre_session=int(s[p]), pre_level=float(pre), trough=trough,
            depth_sd=float(depth), last_session=last, repaired=repaired,
            repair_session=int(s[repair]) if repair is not None else None, censored=censored))
        i = next_i
    return episodes
