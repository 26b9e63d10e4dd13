"""Rupture episodes of every member, per-session flags and per-dyad summaries.

:func:`detect_ruptures` runs :mod:`apim.analyses.ruptures.detect` on both members of every
dyad and returns a :class:`RuptureResult`; :func:`add_rupture_flags` puts the per-session flags
(optionally lagged, and the partner's) into the session data, where an APIM uses them like
any other column (as ``covariates`` or ``predictors`` of an :class:`~apim.APIMSpec`).

Flags at a session number (``rupture_onset``, ``in_rupture``, ``rupture_repair``) are 0/1
from the member's first to last rated session, also at sessions the member did not rate
(no onset or repair can happen there; ``in_rupture`` follows the episode), and missing (NaN)
before the first and after the last rated session, and for a member whose reference SD is
undefined.

The per-dyad ``pattern`` has the precedence **repair > rupture > none**: ``repair`` when at
least one episode of either member was repaired; ``rupture`` when there were episodes but
none was repaired (unrepaired or censored); ``none`` when neither assessable member had an
episode; missing when no member could be assessed.

Examples
--------
>>> import pandas as pd
>>> from apim import SessionData
>>> raw = pd.DataFrame({"dyad": 1, "session": [1, 1, 2, 2, 3, 3, 4, 4],
...                     "role": ["P", "T"] * 4,
...                     "wai": [5.0, 6.0, 3.0, 6.0, 5.0, 5.9, 5.0, 6.0]})
>>> data = SessionData.from_long(raw, dyad="dyad", session="session", role="role")
>>> result = detect_ruptures(data, "wai", RuptureSpec(sd="points", k=1.0))
>>> result.episodes[["role", "onset", "repair_session"]].to_dict("records")
[{'role': 'P', 'onset': 2, 'repair_session': 3}]
>>> result.dyads["pattern"].tolist()
['repair']
>>> with_flags = add_rupture_flags(data, result, lags=(1,))
>>> with_flags.frame["rupture_onset_lag1"].tolist()
[nan, nan, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from apim.analyses.ruptures.detect import member_episodes
from apim.analyses.ruptures.plot import plot_ruptures
from apim.analyses.ruptures.rules import (
    RuptureSpec,
    check_scale_min,
    reference_sds,
    warn_tolerance,
)
from apim.data.session import SessionData
from apim.errors import AllMissingError, SpecError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["RuptureResult", "detect_ruptures", "add_rupture_flags", "flags_at",
           "EPISODE_COLUMNS", "FLAGS"]

EPISODE_COLUMNS = ["dyad", "role", "onset", "pre_level", "trough", "depth_sd", "length",
                   "repaired", "repair_session", "censored"]
FLAGS = ("rupture_onset", "in_rupture", "rupture_repair")


@dataclass(frozen=True)
class RuptureResult:
    """Rupture-repair episodes of both members of every dyad.

    Attributes
    ----------
    variable : str
        The rated variable (e.g. alliance).
    spec : RuptureSpec
    roles : tuple of str
    episodes : DataFrame
        One row per episode: ``dyad, role, onset, pre_level, trough, depth_sd, length,
        repaired, repair_session, censored`` (sessions are the data's session numbers;
        ``repair_session`` is missing unless repaired).
    flags : DataFrame
        One row per row of the data: ``dyad, session, role, rupture_onset, in_rupture,
        rupture_repair`` (0/1, NaN where unknown).
    dyads : DataFrame
        One row per dyad: ``episodes``, ``episodes_<role>`` for each role, ``repaired``,
        ``unrepaired``, ``censored`` (counts), ``any_repaired``, ``any_unrepaired``
        (window closed without repair; censored episodes are neither), ``pattern``
        (repair / rupture / none, precedence in that order), ``assessed`` (members with a
        defined reference SD), ``both_dropped`` (sessions where both members had a rupture
        onset) and ``both_dropped_sessions`` (those sessions, ``;``-separated).
    members : DataFrame
        One row per member with ratings: ``dyad, role, n_rated, first_session,
        last_session, sd_ref, threshold``.
    series : DataFrame
        The rated sessions used: ``dyad, role, session, value``.
    """

    variable: str
    spec: RuptureSpec
    roles: tuple[str, str]
    episodes: pd.DataFrame = field(repr=False)
    flags: pd.DataFrame = field(repr=False)
    dyads: pd.DataFrame = field(repr=False)
    members: pd.DataFrame = field(repr=False)
    series: pd.DataFrame = field(repr=False)

    def describe(self) -> str:
        """A few lines: the rule, the members assessed, the episodes and the dyad patterns."""
        spec, eps = self.spec, self.episodes
        assessed = int(self.members["threshold"].notna().sum())
        rule = spec.label
        patterns = self.dyads["pattern"].value_counts()
        pattern = ", ".join(f"{name} {int(patterns.get(name, 0))}"
                            for name in ("repair", "rupture", "none"))
        return "\n".join([
            f"Ruptures in {self.variable!r}: {rule}",
            f"members assessed: {assessed} of {len(self.members)}",
            f"episodes: {len(eps)} ({int(eps['repaired'].sum())} repaired, "
            f"{int((~eps['repaired'] & ~eps['censored']).sum())} unrepaired, "
            f"{int(eps['censored'].sum())} censored)",
            f"dyads ({len(self.dyads)}): {pattern}",
            f"sessions where both members dropped: {int(self.dyads['both_dropped'].sum())}"])

    def __str__(self) -> str:
        return self.describe()

    def plot(self, dyad: object, ax: Axes | None = None) -> Figure:
        """The dyad's trajectories with its episodes marked (see
        :mod:`apim.analyses.ruptures.plot`)."""
        return plot_ruptures(self, dyad, ax=ax)


def flags_at(keys: pd.DataFrame, members: pd.DataFrame, episodes: pd.DataFrame) -> pd.DataFrame:
    """The flags of the members in ``keys`` (``dyad, role, session``) at those sessions.

    Returns a frame aligned with ``keys`` (same index) with the columns of :data:`FLAGS`.
    """
    k = keys[["dyad", "role", "session"]].reset_index(drop=True)
    span = k.merge(members[["dyad", "role", "first_session", "last_session", "threshold"]],
                   on=["dyad", "role"], how="left")
    known = (span["threshold"].notna() & (span["session"] >= span["first_session"])
             & (span["session"] <= span["last_session"])).to_numpy()
    hits = np.zeros((len(k), 3), dtype=bool)
    if len(episodes):
        e = episodes[["dyad", "role", "onset", "length", "repair_session"]]
        j = k.assign(_key=np.arange(len(k))).merge(e, on=["dyad", "role"])
        if len(j):
            session = j["session"].to_numpy()
            onset = j["onset"].to_numpy()
            last = onset + j["length"].to_numpy() - 1
            repair = j["repair_session"].astype("float64").to_numpy()
            found = pd.DataFrame({"_key": j["_key"], "onset": session == onset,
                                  "in": (session >= onset) & (session <= last),
                                  "repair": session == repair}).groupby("_key").any()
            hits[found.index.to_numpy()] = found.to_numpy()
    values = np.where(known[:, None], hits.astype(float), np.nan)
    return pd.DataFrame(values, columns=list(FLAGS), index=keys.index)


def _episode_frame(rows: list[dict[str, Any]], dyad_dtype: Any) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=EPISODE_COLUMNS)
    return frame.astype({"dyad": dyad_dtype, "role": str, "onset": "int64",
                         "pre_level": float, "trough": float, "depth_sd": float,
                         "length": "int64", "repaired": bool, "repair_session": "Int64",
                         "censored": bool})


def _dyad_summary(dyads: Sequence[object], roles: tuple[str, str], episodes: pd.DataFrame,
                  members: pd.DataFrame) -> pd.DataFrame:
    rows = []
    by_dyad = dict(tuple(episodes.groupby("dyad", sort=False)))
    assessed = members.assign(ok=members["threshold"].notna()).groupby("dyad")["ok"].sum()
    for dyad in dyads:
        e = by_dyad.get(dyad, episodes.iloc[:0])
        repaired = int(e["repaired"].sum())
        censored = int(e["censored"].sum())
        unrepaired = len(e) - repaired - censored
        n_assessed = int(assessed.get(dyad, 0))
        if n_assessed == 0:
            pattern: object = pd.NA
        elif repaired:
            pattern = "repair"
        else:
            pattern = "rupture" if len(e) else "none"
        onsets = [set(e.loc[e["role"] == r, "onset"]) for r in roles]
        both = sorted(onsets[0] & onsets[1])
        row = {"dyad": dyad, "episodes": len(e)}
        row.update({f"episodes_{r}": int((e["role"] == r).sum()) for r in roles})
        row.update({"repaired": repaired, "unrepaired": unrepaired, "censored": censored,
                    "any_repaired": repaired > 0, "any_unrepaired": unrepaired > 0,
                    "pattern": pattern, "assessed": n_assessed, "both_dropped": len(both),
                    "both_dropped_sessions": ";".join(str(s) for s in both)})
        rows.append(row)
    out = pd.DataFrame(rows)
    out["pattern"] = out["pattern"].astype("string")
    return out


def detect_ruptures(data: SessionData, variable: str,
                    spec: RuptureSpec | None = None) -> RuptureResult:
    """Find rupture-repair episodes in both members' series of ``variable``.

    Parameters
    ----------
    data : SessionData
    variable : str
        The rating to follow (e.g. each member's alliance); higher is better.
    spec : RuptureSpec, optional
        The rule and its options (default ``RuptureSpec()``: drops of 2 own SDs, repair
        within 3 sessions).

    Returns
    -------
    RuptureResult

    Raises
    ------
    MissingColumnError, NonNumericError, AllMissingError
        When ``variable`` is not a numeric column with ratings.
    DataError
        When a rating lies below ``spec.scale_min``.

    Warns
    -----
    DataWarning
        When ``spec.tolerance`` is not below some members' drop threshold.
    """
    spec = spec or RuptureSpec()
    if not isinstance(spec, RuptureSpec):
        raise SpecError(f"spec must be a RuptureSpec, not {type(spec).__name__}")
    frame = data.frame
    values = data.numeric(variable)
    rated = values.notna()
    if not rated.any():
        raise AllMissingError(variable)
    check_scale_min(frame, values, variable, spec)
    order = {r: i for i, r in enumerate(data.roles)}
    series = (frame.loc[rated, ["dyad", "role", "session"]].assign(value=values[rated])
              .assign(_order=lambda f: f["role"].map(order))
              .sort_values(["dyad", "_order", "session"], kind="stable")
              .drop(columns="_order").reset_index(drop=True))
    members = reference_sds(series, spec)
    warn_tolerance(members, spec)
    rows: list[dict[str, Any]] = []
    sd_of = {(m.dyad, m.role): m.sd_ref for m in members.itertuples(index=False)}
    for (dyad, role), member in series.groupby(["dyad", "role"], sort=False):
        for ep in member_episodes(member["session"].to_numpy(), member["value"].to_numpy(),
                                  sd_of[(dyad, role)], spec):
            rows.append({"dyad": dyad, "role": role, "onset": ep.onset,
                         "pre_level": ep.pre_level, "trough": ep.trough,
                         "depth_sd": ep.depth_sd, "length": ep.length,
                         "repaired": ep.repaired, "repair_session": ep.repair_session,
                         "censored": ep.censored})
    episodes = _episode_frame(rows, frame["dyad"].dtype)
    keys = frame[["dyad", "session", "role"]]
    flags = pd.concat([keys, flags_at(keys, members, episodes)], axis=1).reset_index(drop=True)
    dyads = _dyad_summary(list(pd.unique(frame["dyad"])), data.roles, episodes, members)
    return RuptureResult(variable=variable, spec=spec, roles=data.roles, episodes=episodes,
                         flags=flags, dyads=dyads, members=members, series=series)


def add_rupture_flags(data: SessionData, result: RuptureResult, lags: Sequence[int] = (1,),
                      partner: bool = True) -> SessionData:
    """The data with the rupture flags as columns, ready for an APIM.

    Adds ``rupture_onset``, ``in_rupture`` and ``rupture_repair`` at the same session, and
    for each lag k the member's flags at session number ``t - k`` (``rupture_onset_lag1``
    ...; lags count session numbers, as :class:`~apim.DecompositionSpec` does). With
    ``partner=True`` also the partner's flags (``rupture_onset_partner``,
    ``rupture_onset_lag1_partner`` ...). Unknown flags are NaN, so an APIM leaves those rows
    out and lists them in its data report.

    Parameters
    ----------
    data : SessionData
        The data the result was computed from (or data with the same dyads and roles).
    result : RuptureResult
    lags : sequence of int
        Lags (>= 1) to add besides the same-session flags.
    partner : bool
        Add the partner's flags too.

    Returns
    -------
    SessionData
        A new SessionData; ``data`` is not changed.
    """
    if tuple(result.roles) != tuple(data.roles):
        raise SpecError(f"the rupture result has roles {result.roles!r} but the data has "
                        f"{data.roles!r}; detect the ruptures on these data")
    bad = [lag for lag in lags if isinstance(lag, bool) or not isinstance(lag, (int, np.integer))
           or lag < 1]
    if bad:
        raise SpecError(f"lags={tuple(lags)!r}: every lag must be a whole number >= 1 "
                        "(the same-session flags are always added)")
    frame = data.frame
    keys = frame[["dyad", "role", "session"]]
    swap = {data.roles[0]: data.roles[1], data.roles[1]: data.roles[0]}
    new: dict[str, pd.Series] = {}
    for lag in (0, *sorted(set(int(v) for v in lags))):
        suffix = f"_lag{lag}" if lag else ""
        shifted = keys.assign(session=keys["session"] - lag)
        own = flags_at(shifted, result.members, result.episodes)
        for name in FLAGS:
            new[f"{name}{suffix}"] = own[name]
        if partner:
            other = flags_at(shifted.assign(role=shifted["role"].map(swap)), result.members,
                             result.episodes)
            for name in FLAGS:
                new[f"{name}{suffix}_partner"] = other[name]
    clashes = [c for c in new if c in frame.columns]
    if clashes:
        raise SpecError(f"the data already has a column {clashes[0]!r}; rename it or drop the "
                        "flags added before")
    return data.replace(pd.concat([frame, pd.DataFrame(new, index=frame.index)], axis=1))
