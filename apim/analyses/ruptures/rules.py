"""The options of rupture detection and the reference SDs they use.

:class:`RuptureSpec` holds every option of :func:`apim.analyses.ruptures.detect_ruptures`;
:func:`reliable_change_cutoff` is the reliable-change cut-off of Jacobson & Truax (1991) and
:func:`reference_sds` gives each member's reference SD and drop threshold.

Sources (what each option follows):

- A drop of ``k`` reference SDs between consecutive rated sessions. Gumz, Brähler, Geyer &
  Erices (2012, *BMC Medical Research Methodology* 12:10) compare the criteria of Stiles et
  al. (2004) and Strauss et al. (2006), which used a stricter (2 SD) and a less strict
  (1 SD) threshold, and propose
  combining intra- and interindividual variability by taking the stricter of the two
  (``sd="larger"``). Gumz et al. also describe declines over more than one session
  (``decline`` > 1).
- The reliable-change cut-off ``1.96 * sqrt(2) * SD * sqrt(1 - r_xx)`` (Jacobson & Truax,
  1991), with ``SD`` the role's sample SD.
- The sudden-change rule of Tang & DeRubeis (1999, *J Consult Clin Psychol* 67:894-904),
  adapted to drops (see :mod:`apim.analyses.ruptures.detect`).

Examples
--------
>>> spec = RuptureSpec()
>>> spec.reference, spec.multiplier, spec.window
('own', 2.0, 3)
>>> RuptureSpec(rule="sudden", reliability=0.9, scale_min=1.0).reference
'rci'
>>> round(reliable_change_cutoff(0.8, 0.9), 6)
0.701231
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from apim.data.hints import option
from apim.errors import DataError, DataWarning, SpecError, format_rows
from apim.specbase import Spec

__all__ = ["RuptureSpec", "reliable_change_cutoff", "reference_sds", "at_least", "Z_95",
           "check_scale_min", "warn_tolerance"]

Z_95 = 1.96
Rule = Literal["drop", "sudden"]
Reference = Literal["points", "own", "changes", "sample", "larger", "rci"]


def at_least(value: float, bound: float) -> bool:
    """``value >= bound`` allowing for decimal round-off (1e-9 relative).

    Ties count: a drop of exactly the threshold is a drop, also when decimal ratings such as
    ``4.3 - 2.3`` come out as ``1.9999999999999996`` in binary floating point.

    Examples
    --------
    >>> at_least(4.3 - 2.3, 2.0), at_least(1.99, 2.0)
    (True, False)
    """
    return bool(value >= bound - 1e-9 * max(1.0, abs(bound)))


def reliable_change_cutoff(sd: float, reliability: float, z: float = Z_95) -> float:
    """Smallest change that is reliable: ``z * sqrt(2) * sd * sqrt(1 - reliability)``.

    Jacobson & Truax (1991): the standard error of a difference between two measurements is
    ``sqrt(2) * SD * sqrt(1 - r_xx)``; a change beyond ``1.96`` of these standard errors
    happens by measurement error alone less than 5% of the time.

    Examples
    --------
    >>> round(reliable_change_cutoff(1.0, 0.75), 6)  # 1.96 * sqrt(2) * 0.5
    1.385929
    """
    if not 0 <= reliability < 1:
        raise SpecError(f"{_as_typed('reliability', reliability)} must be at least 0 and "
                        "below 1")
    return float(z * math.sqrt(2.0) * sd * math.sqrt(1.0 - reliability))


def _as_typed(name: str, value: object) -> str:
    """An option as the user types it: ``--reliability 0.9`` on the command line,
    ``reliability=0.9`` in Python."""
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return option(name, shown, python=repr(value))


@dataclass(frozen=True)
class RuptureSpec(Spec):
    """How ruptures and repairs are found in each member's session-by-session series.

    Parameters
    ----------
    rule : {"drop", "sudden"}
        ``drop``: a rupture at session t when the drop from the member's previous rated
        session reaches ``k * SD_ref``. ``sudden``: the three criteria of Tang & DeRubeis
        (1999) adapted to drops (the drop reaches ``k * SD_ref``, by default the
        reliable-change cut-off; it is at least 25% of the pre-drop level above
        ``scale_min``; the mean of up to three sessions before exceeds the mean of up to
        three sessions from t on by more than the critical t times their pooled SD).
    k : float, optional
        Multiplier of the reference SD; default 1 with ``sd="rci"``, else 2.
    sd : {"points", "own", "changes", "sample", "larger", "rci"}, optional
        Reference SD: 1 (``k`` in scale points); the member's own SD of their scores; the SD
        of the member's changes between consecutive rated sessions; the sample SD of the
        role's scores; the larger of own and sample (Gumz et al., 2012); the reliable-change
        cut-off from the role's sample SD and ``reliability``. Default ``rci`` for
        ``rule="sudden"``, else ``own``.
    reliability : float, optional
        Reliability ``r_xx`` of the scale; needed by (and only used with) ``sd="rci"``.
    window : int
        Repair window W in session numbers: a repair is the first rated session s with
        ``onset < s <= onset + W`` and ``a[s] >= pre_level - tolerance``.
    tolerance : float
        How far below the pre-drop level still counts as repaired (scale points).
    decline : int
        L, the longest decline in session numbers: the drop is measured from the pre-drop
        level to the minimum of the sessions ``onset .. onset + L - 1`` (1: single-session
        drops only). ``rule="drop"`` only.
    scale_min : float, optional
        Lowest possible score, for the 25% criterion of ``rule="sudden"`` (needed there,
        not allowed with ``rule="drop"``).
    """

    rule: Rule = "drop"
    k: float | None = None
    sd: Reference | None = None
    reliability: float | None = None
    window: int = 3
    tolerance: float = 0.0
    decline: int = 1
    scale_min: float | None = None

    def check(self) -> None:
        o = _as_typed
        if self.k is not None and not (math.isfinite(self.k) and self.k > 0):
            raise SpecError(f"{o('k', self.k)} must be a positive number, e.g. {o('k', 2.0)}")
        if self.reference == "rci":
            if self.reliability is None:
                which = o("sd", "rci") if self.sd is not None else \
                    f"{o('rule', 'sudden')} (whose reference SD is {o('sd', 'rci')})"
                raise SpecError(f"{which} needs the scale's reliability, e.g. "
                                f"{o('reliability', 0.9)}")
            if not 0 <= self.reliability < 1:
                raise SpecError(f"{o('reliability', self.reliability)} must be at least 0 "
                                "and below 1")
        elif self.reliability is not None:
            raise SpecError(f"{o('reliability', self.reliability)} is used only with "
                            f"{o('sd', 'rci')}; drop it or choose {o('sd', 'rci')} (the "
                            f"reference SD is {self.reference!r})")
        if self.window < 1:
            raise SpecError(f"{o('window', self.window)} must be at least 1 session")
        if not (math.isfinite(self.tolerance) and self.tolerance >= 0):
            raise SpecError(f"{o('tolerance', self.tolerance)} must be a number >= 0")
        if self.decline < 1:
            raise SpecError(f"{o('decline', self.decline)} must be at least 1 session")
        if self.decline > self.window:
            raise SpecError(
                f"{o('decline', self.decline)} is longer than the repair window "
                f"{o('window', self.window)}: the decline would be measured past the end of "
                "the window, where no repair can count; use a decline no longer than the "
                "window (or a longer window)")
        if self.reference == "points" and at_least(self.tolerance, self.multiplier):
            raise SpecError(
                f"{o('tolerance', self.tolerance)} is not below the drop threshold "
                f"{o('k', self.multiplier)} scale points: a drop of the threshold would stay "
                "within the tolerance and count as repaired at its onset; use a tolerance "
                "below k")
        if self.rule == "sudden":
            if self.scale_min is None:
                raise SpecError(f"{o('rule', 'sudden')} needs the lowest possible score for "
                                f"its 25% criterion, e.g. {o('scale_min', 1.0)}")
            if self.decline != 1:
                raise SpecError(f"{o('decline', self.decline)} works with "
                                f"{o('rule', 'drop')} only; the sudden rule compares "
                                "consecutive rated sessions")
        elif self.scale_min is not None:
            raise SpecError(f"{o('scale_min', self.scale_min)} is used only with "
                            f"{o('rule', 'sudden')}")

    @property
    def reference(self) -> str:
        """The reference SD in effect (``sd``, or its default for the rule)."""
        if self.sd is not None:
            return self.sd
        return "rci" if self.rule == "sudden" else "own"

    @property
    def multiplier(self) -> float:
        """The ``k`` in effect (``k``, or 1 with the reliable-change cut-off, else 2)."""
        if self.k is not None:
            return float(self.k)
        return 1.0 if self.reference == "rci" else 2.0

    @property
    def label(self) -> str:
        """The rule in a few words, e.g. ``drops >= 2 x own SD, repair window 3``."""
        k, ref = self.multiplier, self.reference
        size = {"points": f"{k:g} points",
                "rci": f"{k:g} x reliable-change cut-off"}.get(ref, f"{k:g} x {ref} SD")
        text = f"{'sudden drops' if self.rule == 'sudden' else 'drops'} >= {size}"
        if self.decline > 1:
            text += f" over up to {self.decline} sessions"
        text += f", repair window {self.window}"
        return text + (f", tolerance {self.tolerance:g}" if self.tolerance else "")


def check_scale_min(frame: pd.DataFrame, values: pd.Series, variable: str,
                    spec: RuptureSpec) -> None:
    """Refuse ``scale_min`` above a rating: it is the lowest possible score.

    Raises
    ------
    DataError
        Naming the column, the lowest rating and its rows.
    """
    if spec.scale_min is None:
        return
    below = (values < spec.scale_min).to_numpy()
    if below.any():
        lowest = float(values[below].min())
        raise DataError(
            f"column {variable!r} holds {lowest:g} ({format_rows(frame.loc[below, 'row'])}), "
            f"below {_as_typed('scale_min', spec.scale_min)}, the lowest possible score of "
            "the 25% "
            "criterion; give the scale's real minimum (or correct the ratings)")


def warn_tolerance(members: pd.DataFrame, spec: RuptureSpec) -> None:
    """Warn when the tolerance is not below some members' drop threshold: their drops can
    stay within the tolerance and count as repaired at once (a
    :class:`~apim.errors.DataWarning`)."""
    if not spec.tolerance:
        return
    hit = members[members["threshold"].notna()
                  & (members["threshold"] <= spec.tolerance + 1e-9)]
    if len(hit):
        first = hit.iloc[0]
        dyad = first["dyad"].item() if hasattr(first["dyad"], "item") else first["dyad"]
        warnings.warn(
            f"{_as_typed('tolerance', spec.tolerance)} is not below the drop threshold of "
            f"{len(hit)} of "
            f"{int(members['threshold'].notna().sum())} members (e.g. dyad "
            f"{dyad!r}, {first['role']}: threshold {first['threshold']:.3g}): "
            "their drops can stay within the tolerance and count as repaired at once; "
            "lower the tolerance or raise k", DataWarning, stacklevel=3)


def _sd(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if len(values) >= 2 else math.nan


def reference_sds(series: pd.DataFrame, spec: RuptureSpec) -> pd.DataFrame:
    """Each member's reference SD and drop threshold.

    Parameters
    ----------
    series : DataFrame
        Rated sessions only: ``dyad, role, session, value``, sorted by dyad, role, session.
    spec : RuptureSpec

    Returns
    -------
    DataFrame
        One row per member: ``dyad, role, n_rated, first_session, last_session, sd_ref,
        threshold``. ``sd_ref`` is NaN when it is undefined (``own`` with fewer than 2
        ratings, ``changes`` with fewer than 3); such a member cannot be assessed.

    Examples
    --------
    >>> s = pd.DataFrame({"dyad": 1, "role": "p", "session": [1, 2, 3],
    ...                   "value": [5.0, 3.0, 4.0]})
    >>> reference_sds(s, RuptureSpec())[["sd_ref", "threshold"]].round(4).values.tolist()
    [[1.0, 2.0]]
    """
    sample = series.groupby("role", sort=False)["value"].agg(lambda v: _sd(v.to_numpy()))
    rows = []
    for (dyad, role), member in series.groupby(["dyad", "role"], sort=False):
        values = member["value"].to_numpy(float)
        own, role_sd = _sd(values), float(sample[role])
        ref = spec.reference
        if ref == "points":
            sd_ref = 1.0
        elif ref == "own":
            sd_ref = own
        elif ref == "changes":
            sd_ref = _sd(np.diff(values))
        elif ref == "sample":
            sd_ref = role_sd
        elif ref == "larger":
            sd_ref = float(np.fmax(own, role_sd))
        else:
            sd_ref = reliable_change_cutoff(role_sd, float(spec.reliability or 0.0))
        sessions = member["session"]
        rows.append({"dyad": dyad, "role": role, "n_rated": len(values),
                     "first_session": int(sessions.min()), "last_session": int(sessions.max()),
                     "sd_ref": sd_ref, "threshold": spec.multiplier * sd_ref})
    return pd.DataFrame(rows, columns=["dyad", "role", "n_rated", "first_session",
                                       "last_session", "sd_ref", "threshold"])
