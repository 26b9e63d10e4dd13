"""Rupture-repair episodes on constructed series with known episodes (apim.analyses.ruptures)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import apim
from apim import APIMSpec, SessionData
from apim.analyses.ruptures import (
    RuptureSpec,
    add_rupture_flags,
    detect_ruptures,
    reliable_change_cutoff,
)
from apim.analyses.ruptures.summaries import EPISODE_COLUMNS
from apim.errors import AllMissingError, MissingColumnError, SpecError

POINTS = RuptureSpec(sd="points", k=1.0)


def make(series: dict, filler: str = "absent") -> SessionData:
    """Long data from {(dyad, role): (sessions, values)}; the other member of a dyad gets a
    flat series unless given."""
    rows = []
    for (dyad, role), (sessions, values) in series.items():
        for s, v in zip(sessions, values):
            rows.append({"dyad": dyad, "session": s, "role": role, "wai": v})
    frame = pd.DataFrame(rows)
    return SessionData.from_long(frame, dyad="dyad", session="session", role="role",
                                 roles=("P", "T"))


def one(values, sessions=None, spec=POINTS, other=None):
    sessions = list(range(1, len(values) + 1)) if sessions is None else sessions
    other = other or (sessions, [6.0] * len(sessions))
    data = make({(1, "P"): (sessions, values), (1, "T"): other})
    return detect_ruptures(data, "wai", spec)


def episodes_of(result, role="P"):
    e = result.episodes[result.episodes["role"] == role]
    return [tuple(row) for row in e[["onset", "length", "repaired", "repair_session",
                                     "censored"]].astype(object).itertuples(index=False)]


def flags_of(result, role="P", column="in_rupture"):
    f = result.flags[result.flags["role"] == role]
    return dict(zip(f["session"], f[column]))


# ---------------------------------------------------------------- the basic episodes
def test_v_repaired_within_the_window():
    r = one([5.0, 5.0, 3.0, 5.0, 5.0, 5.0])
    assert list(r.episodes.columns) == EPISODE_COLUMNS
    e = r.episodes.iloc[0]
    assert (e["dyad"], e["role"], e["onset"], e["pre_level"], e["trough"]) == (1, "P", 3, 5, 3)
    assert e["depth_sd"] == 2.0 and e["length"] == 1
    assert e["repaired"] and e["repair_session"] == 3 + 1 and not e["censored"]
    assert flags_of(r, column="rupture_onset") == {1: 0, 2: 0, 3: 1, 4: 0, 5: 0, 6: 0}
    assert flags_of(r) == {1: 0, 2: 0, 3: 1, 4: 0, 5: 0, 6: 0}
    assert flags_of(r, column="rupture_repair") == {1: 0, 2: 0, 3: 0, 4: 1, 5: 0, 6: 0}
    assert r.dyads.loc[0, "pattern"] == "repair"


def test_repair_outside_the_window_is_unrepaired():
    values = [5.0, 5.0, 3.0, 3.0, 3.0, 3.0, 5.0, 5.0]
    r = one(values, spec=POINTS.replace(window=3))
    assert episodes_of(r) == [(3, 4, False, pd.NA, False)]   # in rupture 3..6
    assert flags_of(r) == {1: 0, 2: 0, 3: 1, 4: 1, 5: 1, 6: 1, 7: 0, 8: 0}
    assert flags_of(r, column="rupture_repair")[7] == 0
    assert r.dyads.loc[0, "pattern"] == "rupture"
    assert r.dyads.loc[0, "any_unrepaired"] and not r.dyads.loc[0, "any_repaired"]
    # a window one session longer reaches the recovery
    assert episodes_of(one(values, spec=POINTS.replace(window=4))) == [(3, 4, True, 7, False)]


def test_unrepaired_and_censored_drops():
    r = one([5.0, 5.0, 3.0, 3.0, 3.0, 3.0, 3.0])
    assert episodes_of(r) == [(3, 4, False, pd.NA, False)]
    r = one([5.0, 5.0, 5.0, 3.0, 3.5])    # series ends at 5 < 4 + 3
    assert episodes_of(r) == [(4, 2, False, pd.NA, True)]
    assert r.episodes.loc[0, "trough"] == 3.0
    assert r.dyads.loc[0, ["repaired", "unrepaired", "censored"]].tolist() == [0, 0, 1]
    assert r.dyads.loc[0, "pattern"] == "rupture" and not r.dyads.loc[0, "any_unrepaired"]
    # ending exactly at onset + W is not censored: the window was seen in full
    assert episodes_of(one([5.0, 5.0, 5.0, 3.0, 3.5, 3.5, 3.5])) == [(4, 4, False, pd.NA,
                                                                        False)]


def test_trough_and_depth_follow_the_whole_episode():
    r = one([5.0, 3.0, 2.0, 4.0, 5.0])
    e = r.episodes.iloc[0]
    assert (e["onset"], e["trough"], e["depth_sd"], e["repair_session"]) == (2, 2.0, 3.0, 5)
    r = one([5.0, 3.0, 2.0, 4.0, 5.0], spec=RuptureSpec(sd="points", k=2.0, tolerance=1.0))
    assert episodes_of(r) == [(2, 2, True, 4, False)]   # 4 >= 5 - 1


def test_several_episodes_and_restart_after_repair():
    # repair at 3 becomes the next pre-drop session; after an unrepaired episode the
    # search resumes after the window
    values = [5.0, 3.0, 5.0, 3.5, 3.5, 3.5, 3.5, 1.0, 3.5]
    r = one(values)
    assert episodes_of(r) == [(2, 1, True, 3, False), (4, 4, False, pd.NA, False),
                              (8, 1, True, 9, False)]
    assert r.episodes["pre_level"].tolist() == [5.0, 5.0, 3.5]


# ---------------------------------------------------------------- gaps in sessions
def test_drop_is_against_the_previous_rated_session():
    r = one([5.0, 3.0], sessions=[1, 4])
    assert episodes_of(r) == [(4, 1, False, pd.NA, True)]
    assert r.episodes.loc[0, "pre_level"] == 5.0
    # sessions 2-3 were not rated: no onset there, not in rupture; flags known (0)
    assert flags_of(r, column="rupture_onset") == {1: 0, 4: 1}


def test_repair_window_counts_session_numbers_not_positions():
    # by position the repair at session 11 would be 2 ratings after the onset
    r = one([5.0, 3.0, 3.0, 5.0], sessions=[1, 2, 10, 11])
    assert episodes_of(r) == [(2, 4, False, pd.NA, False)]   # in rupture 2..5
    # a skipped session inside the window still counts: onset 4, window 5..7
    r = one([5.0, 5.0, 3.0, 4.0, 5.0], sessions=[1, 2, 4, 5, 7])
    assert episodes_of(r) == [(4, 3, True, 7, False)]
    # the patient's rows at 3 and 6 exist with the rating missing
    data = make({(1, "P"): (range(1, 8), [5.0, 5.0, np.nan, 3.0, 4.0, np.nan, 5.0]),
                 (1, "T"): (range(1, 8), [6.0] * 7)})
    r = detect_ruptures(data, "wai", POINTS)
    assert flags_of(r) == {1: 0, 2: 0, 3: 0, 4: 1, 5: 1, 6: 1, 7: 0}
    assert flags_of(r, column="rupture_repair") == {1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 7: 1}
    flagged = add_rupture_flags(data, r, lags=(1, 2)).frame
    p = flagged[flagged["role"] == "P"].set_index("session")
    assert p["in_rupture_lag1"].tolist()[1:] == [0, 0, 0, 1, 1, 1]
    assert np.isnan(p.loc[1, "in_rupture_lag1"])                  # session 0: before the span
    assert p["rupture_onset_lag2"].isna().tolist() == [True, True] + [False] * 5
    assert p.loc[6, "rupture_onset_lag2"] == 1.0                  # session 4
    assert p.loc[5, "rupture_repair_lag2"] == 0.0                 # session 3: unrated, in span
    assert p.loc[7, "in_rupture_lag1_partner"] == 0.0


def test_missing_rating_row_equals_absent_row():
    absent = make({(1, "P"): ([1, 2, 4, 5], [5.0, 5.0, 3.0, 5.0]),
                   (1, "T"): ([1, 2, 3, 4, 5], [6.0, 6.0, 6.0, 6.0, 6.0])})
    nan = make({(1, "P"): ([1, 2, 3, 4, 5], [5.0, 5.0, np.nan, 3.0, 5.0]),
                (1, "T"): ([1, 2, 3, 4, 5], [6.0, 6.0, 6.0, 6.0, 6.0])})
    a, b = detect_ruptures(absent, "wai", POINTS), detect_ruptures(nan, "wai", POINTS)
    pd.testing.assert_frame_equal(a.episodes, b.episodes)
    assert flags_of(b) == {1: 0, 2: 0, 3: 0, 4: 1, 5: 0}


# ---------------------------------------------------------------- flat and short series
@pytest.mark.parametrize("sd", ["points", "own", "changes", "sample", "larger"])
def test_flat_series_has_no_episode(sd):
    r = one([4.0] * 6, spec=RuptureSpec(sd=sd), other=([1, 2, 3, 4, 5, 6], [4.0] * 6))
    assert r.episodes.empty
    assert r.dyads.loc[0, "pattern"] == "none" and r.dyads.loc[0, "assessed"] == 2
    assert (r.members["sd_ref"] == (1.0 if sd == "points" else 0.0)).all()
    assert (r.flags["in_rupture"] == 0).all()


def test_short_series():
    # one rating: own SD undefined, the member cannot be assessed
    r = one([5.0], spec=RuptureSpec(sd="own"), other=([1], [6.0]))
    assert r.episodes.empty and r.members["sd_ref"].isna().all()
    assert r.flags[["rupture_onset", "in_rupture", "rupture_repair"]].isna().all().all()
    assert r.dyads.loc[0, "assessed"] == 0 and pd.isna(r.dyads.loc[0, "pattern"])
    # two ratings: SD of changes undefined, own SD defined
    r = one([5.0, 1.0], spec=RuptureSpec(sd="changes"), other=([1, 2], [6.0, 5.0]))
    assert r.episodes.empty and r.members["sd_ref"].isna().all()
    r = one([5.0, 1.0], spec=RuptureSpec(sd="own", k=1.0), other=([1, 2], [6.0, 6.0]))
    assert episodes_of(r) == [(2, 1, False, pd.NA, True)]
    assert r.dyads.loc[0, "assessed"] == 2   # the flat partner has SD 0: assessable


# ---------------------------------------------------------------- ties at the threshold
def test_ties_at_the_threshold_count():
    k2 = RuptureSpec(sd="points", k=2.0)
    assert len(one([5.0, 3.0, 5.0], spec=k2).episodes) == 1            # exactly 2
    assert len(one([4.3, 2.3, 4.3], spec=k2).episodes) == 1            # 1.9999999999999996
    assert one([5.0, 3.01, 5.0], spec=k2).episodes.empty               # 1.99
    # repair: back exactly at pre-level - tolerance counts
    tol = RuptureSpec(sd="points", k=2.0, tolerance=0.5)
    assert episodes_of(one([5.0, 3.0, 4.5], spec=tol)) == [(2, 1, True, 3, False)]
    assert episodes_of(one([5.0, 3.0, 4.49, 4.49, 4.49], spec=tol)) == [
        (2, 4, False, pd.NA, False)]


# ---------------------------------------------------------------- reference SDs
def test_reference_sds_by_hand():
    p = [5.0, 4.0, 6.0, 3.0, 5.0]
    t = [6.0, 6.5, 6.0, 6.0, 6.5]
    p2 = [4.0, 4.0, 2.0, 4.0, 4.0]
    data = make({(1, "P"): (range(1, 6), p), (1, "T"): (range(1, 6), t),
                 (2, "P"): (range(1, 6), p2), (2, "T"): (range(1, 6), t)})
    sample_p = np.std(p + p2, ddof=1)
    expected = {
        "points": 1.0,
        "own": np.std(p, ddof=1),
        "changes": np.std(np.diff(p), ddof=1),
        "sample": sample_p,
        "larger": max(np.std(p, ddof=1), sample_p),
    }
    for sd, value in expected.items():
        m = detect_ruptures(data, "wai", RuptureSpec(sd=sd, k=1.5)).members
        row = m[(m["dyad"] == 1) & (m["role"] == "P")].iloc[0]
        assert row["sd_ref"] == pytest.approx(value, rel=1e-12)
        assert row["threshold"] == pytest.approx(1.5 * value, rel=1e-12)
    m = detect_ruptures(data, "wai", RuptureSpec(sd="rci", reliability=0.84)).members
    row = m[(m["dyad"] == 2) & (m["role"] == "P")].iloc[0]
    assert row["sd_ref"] == pytest.approx(1.96 * math.sqrt(2) * sample_p * 0.4, rel=1e-12)
    assert row["threshold"] == row["sd_ref"]   # k = 1 with the cut-off
    # the larger SD is the sample's for dyad 2 (own SD 0.894 < sample 1.20)
    m = detect_ruptures(data, "wai", RuptureSpec(sd="larger")).members
    assert m.loc[(m["dyad"] == 2) & (m["role"] == "P"), "sd_ref"].item() == pytest.approx(
        sample_p)


def test_own_and_larger_disagree_on_a_calm_member():
    # dyad 2's patient is calm (own SD small) among a variable sample
    p2 = [5.0, 5.2, 5.0, 4.2, 5.0, 5.1]
    data = make({(1, "P"): (range(1, 7), [2.0, 6.0, 1.0, 7.0, 2.0, 6.0]),
                 (1, "T"): (range(1, 7), [6.0] * 6),
                 (2, "P"): (range(1, 7), p2), (2, "T"): (range(1, 7), [6.0] * 6)})
    own = detect_ruptures(data, "wai", RuptureSpec(sd="own", k=2.0)).episodes
    larger = detect_ruptures(data, "wai", RuptureSpec(sd="larger", k=2.0)).episodes
    assert 2 in set(own["dyad"]) and 2 not in set(larger["dyad"])


@pytest.mark.parametrize("sd, r, expected", [(10.0, 0.84, 11.087434), (1.0, 0.75, 1.385929),
                                             (7.5, 0.9, 6.574040), (0.8, 0.0, 2.217487)])
def test_reliable_change_cutoff_worked_values(sd, r, expected):
    value = reliable_change_cutoff(sd, r)
    assert value == pytest.approx(1.96 * math.sqrt(2) * sd * math.sqrt(1 - r), rel=1e-14)
    assert round(value, 6) == pytest.approx(expected, abs=1e-6)


# ---------------------------------------------------------------- multi-session decline
def test_multi_session_decline():
    values = [5.0, 4.5, 4.0, 3.5, 5.0]
    assert one(values).episodes.empty                              # steps of 0.5
    r = one(values, spec=POINTS.replace(decline=3))
    e = r.episodes.iloc[0]
    assert (e["onset"], e["pre_level"], e["trough"], e["repair_session"], e["length"]) == (
        2, 5.0, 3.5, 5, 3)
    r = one(values, spec=POINTS.replace(decline=2))                # 5 -> min(4.5, 4.0)
    assert r.episodes.loc[0, "onset"] == 2 and r.episodes.loc[0, "trough"] == 3.5
    # the decline counts session numbers: session 5 is outside 2..3
    r = one([5.0, 4.5, 3.5, 3.5], sessions=[1, 2, 5, 6], spec=POINTS.replace(decline=2))
    assert r.episodes[["onset", "pre_level"]].values.tolist() == [[5, 4.5]]
    # a decline stops when the series is back at the pre-drop level
    assert one([5.0, 4.5, 5.0, 3.9], spec=POINTS.replace(decline=3)).episodes[
        "onset"].tolist() == [4]


# ---------------------------------------------------------------- the sudden rule
def sudden(values, k=1.0, scale_min=1.0, sessions=None):
    spec = RuptureSpec(rule="sudden", sd="points", k=k, scale_min=scale_min)
    return one(values, sessions=sessions, spec=spec)


def test_sudden_rule_each_criterion():
    base = [6.0, 6.0, 6.0, 4.0, 4.0, 4.0]
    assert sudden(base).episodes["onset"].tolist() == [4]
    assert sudden(base, k=2.5).episodes.empty                  # 1: drop 2 < 2.5
    assert sudden(base, scale_min=-3.0).episodes.empty         # 2: 2 < 25% of 6 + 3
    assert len(sudden(base, scale_min=-2.0).episodes) == 1     # 2: 2 = 25% of 8 (tie)
    assert sudden([6.0, 3.0, 6.0, 4.0, 6.0, 4.0]).episodes.empty   # 3: unstable


def test_sudden_rule_critical_t_and_pooled_sd():
    # the pre-drop session is 3: before = sessions 1..3, after = 4..6
    before, after_low, after_high = [6.0, 7.0, 5.0], [2.0, 3.0, 1.0], [4.0, 5.0, 3.0]
    pooled = math.sqrt((2 * 1.0 + 2 * 1.0) / 4)
    critical = stats.t.ppf(0.975, 4)
    assert abs(np.mean(before) - np.mean(after_high)) < critical * pooled   # 2 < 2.776
    assert abs(np.mean(before) - np.mean(after_low)) > critical * pooled    # 4 > 2.776
    assert sudden(before + after_high).episodes.empty
    assert sudden(before + after_low).episodes["onset"].tolist() == [4]


def test_sudden_rule_truncated_windows_need_two_values():
    assert sudden([6.0, 6.0, 4.0, 4.0]).episodes["onset"].tolist() == [3]   # 2 + 2, df 2
    assert sudden([6.0, 4.0, 4.0, 4.0]).episodes.empty                      # 1 before
    assert sudden([6.0, 6.0, 6.0, 4.0]).episodes.empty                      # 1 after
    # windows count session numbers: sessions 1 and 3 are both within p-2..p
    assert sudden([6.0, 6.0, 4.0, 4.0], sessions=[1, 3, 4, 6]).episodes[
        "onset"].tolist() == [4]
    assert sudden([6.0, 6.0, 4.0, 4.0], sessions=[1, 4, 5, 8]).episodes.empty


def test_sudden_rule_defaults_to_the_reliable_change_cutoff():
    spec = RuptureSpec(rule="sudden", reliability=0.8, scale_min=1.0)
    assert (spec.reference, spec.multiplier) == ("rci", 1.0)
    p = [6.0, 6.0, 6.0, 3.0, 3.0, 3.0]
    r = one(p, spec=spec)
    sample = np.std(p, ddof=1)
    assert r.members.loc[0, "threshold"] == pytest.approx(
        1.96 * math.sqrt(2) * sample * math.sqrt(0.2))
    assert r.episodes["onset"].tolist() == [4]          # 3 points > 2.03


# ---------------------------------------------------------------- both members, summaries
def test_both_members_and_dyad_summary():
    data = make({(1, "P"): (range(1, 7), [5.0, 3.0, 5.0, 5.0, 3.0, 3.0]),
                 (1, "T"): (range(1, 7), [6.0, 4.0, 4.0, 4.0, 4.0, 6.0]),
                 (2, "P"): (range(1, 5), [5.0, 5.0, 5.0, 5.0]),
                 (2, "T"): (range(1, 5), [6.0, 6.0, 6.0, 4.0])})
    r = detect_ruptures(data, "wai", POINTS)
    got = r.episodes[["dyad", "role", "onset", "repaired", "censored"]].values.tolist()
    assert got == [[1, "P", 2, True, False], [1, "P", 5, False, True],
                   [1, "T", 2, False, False], [2, "T", 4, False, True]]
    d = r.dyads.set_index("dyad")
    assert d.loc[1, ["episodes", "episodes_P", "episodes_T", "repaired", "unrepaired",
                     "censored"]].tolist() == [3, 2, 1, 1, 1, 1]
    assert d.loc[1, "pattern"] == "repair"                  # repair takes precedence
    assert d.loc[2, "pattern"] == "rupture"                 # censored only
    assert d.loc[1, "both_dropped"] == 1 and d.loc[1, "both_dropped_sessions"] == "2"
    assert d.loc[2, "both_dropped"] == 0 and d.loc[2, "both_dropped_sessions"] == ""
    assert "episodes: 4 (1 repaired, 1 unrepaired, 2 censored)" in str(r)


def test_relabelled_dyads_and_shuffled_rows_give_the_same_episodes():
    data = apim.load_alliance()
    frame = data.to_long()
    base = detect_ruptures(data, "alliance", RuptureSpec(k=1.5))
    rng = np.random.default_rng(7)
    ids = rng.permutation(frame["dyad"].unique())
    relabel = dict(zip(frame["dyad"].unique(), [f"case-{i}" for i in ids]))
    shuffled = frame.assign(dyad=frame["dyad"].map(relabel)).sample(frac=1, random_state=3)
    other = SessionData.from_long(shuffled, dyad="dyad", session="session", role="role",
                                  roles=("patient", "therapist"), therapist="therapist")
    again = detect_ruptures(other, "alliance", RuptureSpec(k=1.5))
    back = {v: k for k, v in relabel.items()}
    for name in ("episodes", "dyads", "members"):
        x = getattr(base, name)
        y = getattr(again, name).assign(dyad=lambda f: f["dyad"].map(back).astype("int64"))
        y = y.sort_values(["dyad"] + (["role", "onset"] if name == "episodes" else
                                      ["role"] if name == "members" else []),
                          kind="stable").reset_index(drop=True)
        pd.testing.assert_frame_equal(x, y[x.columns], check_dtype=False)
    assert len(base.episodes) > 100


# ---------------------------------------------------------------- flags in an APIM
def brute_force_flag(episodes, members, dyad, role, session, name):
    m = members[(members["dyad"] == dyad) & (members["role"] == role)]
    if m.empty or pd.isna(m["threshold"].item()):
        return np.nan
    if not m["first_session"].item() <= session <= m["last_session"].item():
        return np.nan
    for e in episodes[(episodes["dyad"] == dyad) & (episodes["role"] == role)].itertuples():
        if name == "rupture_onset" and session == e.onset:
            return 1.0
        if name == "in_rupture" and e.onset <= session < e.onset + e.length:
            return 1.0
        if name == "rupture_repair" and e.repaired and session == e.repair_session:
            return 1.0
    return 0.0


def test_flags_enter_an_apim_as_covariates_and_predictors():
    data = apim.load_alliance()
    keep = data.frame["dyad"] <= 80
    data = data.replace(data.frame[keep].reset_index(drop=True))
    before = data.frame.copy()
    result = detect_ruptures(data, "alliance", RuptureSpec(k=1.5))
    flagged = add_rupture_flags(data, result, lags=(1,))
    pd.testing.assert_frame_equal(data.frame, before)            # input unchanged
    f = flagged.frame
    other = {"patient": "therapist", "therapist": "patient"}
    for i in np.random.default_rng(1).choice(len(f), 300, replace=False):
        row = f.iloc[i]
        for name in ("rupture_onset", "in_rupture", "rupture_repair"):
            want = brute_force_flag(result.episodes, result.members, row["dyad"], row["role"],
                                    row["session"] - 1, name)
            got = row[f"{name}_lag1"]
            assert (np.isnan(want) and np.isnan(got)) or want == got
            want = brute_force_flag(result.episodes, result.members, row["dyad"],
                                    other[row["role"]], row["session"], name)
            got = row[f"{name}_partner"]
            assert (np.isnan(want) and np.isnan(got)) or want == got
    fit = apim.fit(flagged, APIMSpec("outcome", ("alliance",),
                                     covariates=("in_rupture_lag1", "in_rupture_lag1_partner")))
    names = list(fit.effects.index)
    assert "patient.covariate.none.in_rupture_lag1" in names
    assert "therapist.covariate.none.in_rupture_lag1_partner" in names
    assert np.isfinite(fit.effects["se"]).all()
    n_unknown = int(f[["outcome", "alliance", "in_rupture_lag1",
                       "in_rupture_lag1_partner"]].isna().any(axis=1).sum())
    assert len(fit.design.used) <= len(f) - n_unknown
    # as a predictor: actor and partner effects of a rupture at the previous session
    fit = apim.fit(flagged, APIMSpec("outcome", ("alliance", "rupture_onset_lag1")))
    assert "patient.partner.within.rupture_onset_lag1" in fit.effects.index


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("options, words", [
    ({"sd": "rci"}, "reliability"),
    ({"sd": "own", "reliability": 0.8}, "only with sd='rci'"),
    ({"sd": "rci", "reliability": 1.0}, "below 1"),
    ({"rule": "sudden", "reliability": 0.9}, "scale_min"),
    ({"rule": "sudden", "scale_min": 1.0, "reliability": 0.9, "decline": 2}, "decline"),
    ({"scale_min": 1.0}, "only with rule='sudden'"),
    ({"window": 0}, "window"),
    ({"k": 0.0}, "k=0.0"),
    ({"k": -1}, "positive"),
    ({"tolerance": -0.1}, "tolerance"),
    ({"decline": 0}, "decline"),
    ({"sd": "mad"}, "sd='mad'"),
    ({"rule": "gain"}, "rule='gain'"),
    ({"window": 2.5}, "whole number"),
])
def test_bad_options(options, words):
    with pytest.raises(SpecError, match=words.replace("(", r"\(").replace(".", r"\.")):
        RuptureSpec(**options)


def test_bad_data_and_flags():
    data = make({(1, "P"): ([1, 2], [5.0, 3.0]), (1, "T"): ([1, 2], [6.0, 6.0])})
    with pytest.raises(MissingColumnError, match="'wia'.*did you mean 'wai'"):
        detect_ruptures(data, "wia")
    empty = data.replace(data.frame.assign(wai=np.nan))
    with pytest.raises(AllMissingError, match="'wai'"):
        detect_ruptures(empty, "wai")
    r = detect_ruptures(data, "wai", POINTS)
    with pytest.raises(SpecError, match="lags"):
        add_rupture_flags(data, r, lags=(0,))
    flagged = add_rupture_flags(data, r)
    with pytest.raises(SpecError, match="already has a column 'rupture_onset'"):
        add_rupture_flags(flagged, r)
    with pytest.raises(SpecError, match="RuptureSpec"):
        detect_ruptures(data, "wai", {"k": 2})


def test_spec_round_trip():
    spec = RuptureSpec(rule="sudden", k=1.0, sd="rci", reliability=0.9, window=4,
                       tolerance=0.25, scale_min=1.0)
    assert RuptureSpec.from_dict(spec.to_dict()) == spec
    assert spec.digest() == RuptureSpec.from_dict(spec.to_dict()).digest()


# ---------------------------------------------------------------- figure
def test_trajectory_figure(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = make({(1, "P"): (range(1, 13), [5.0, 5.2, 3.0, 5.1, 5.0, 5.0, 3.2, 3.1, 3.3, 3.2,
                                           5.0, 3.0]),
                 (1, "T"): ([1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12],
                            [6.0, 6.0, 4.5, 4.6, 6.0, 6.1, 6.0, 6.0, 6.0, 6.0, 6.0])})
    r = detect_ruptures(data, "wai", RuptureSpec(sd="points", k=1.5))
    assert r.episodes[["role", "onset"]].values.tolist() == [["P", 3], ["P", 7], ["P", 12],
                                                             ["T", 3]]
    fig = r.plot(1)
    fig.savefig(tmp_path / "ruptures.png", dpi=80)
    assert (tmp_path / "ruptures.png").stat().st_size > 5000
    fig2, ax = plt.subplots()
    assert r.plot(1, ax=ax) is fig2
    with pytest.raises(SpecError, match="dyad 99"):
        r.plot(99)
    plt.close("all")


# ---------------------------------------------------------------- command line
@pytest.fixture()
def sessions_csv(tmp_path):
    data = make({(1, "P"): (range(1, 7), [5.0, 5.0, 3.0, 5.0, 5.0, 5.0]),
                 (1, "T"): (range(1, 7), [6.0, 6.0, 6.0, 6.0, 4.0, 4.0]),
                 (2, "P"): (range(1, 4), [5.0, 5.0, 5.0]),
                 (2, "T"): (range(1, 4), [6.0, 6.0, 6.0])})
    path = tmp_path / "sessions.csv"
    data.to_long().rename(columns={"dyad": "pair", "session": "week", "role": "who"}).to_csv(
        path, index=False)
    return path


def test_cli_writes_the_three_tables(sessions_csv, tmp_path, capsys):
    from apim.cli import main

    out = {name: tmp_path / f"{name}.csv" for name in ("episodes", "flags", "dyads")}
    code = main(["ruptures", str(sessions_csv), "--dyad", "pair", "--session", "week",
                 "--role", "who", "--roles", "P,T", "--variable", "wai", "--sd", "points",
                 "--k", "1", "--figure", str(tmp_path / "fig.png"),
                 *[a for name, path in out.items() for a in (f"--{name}", str(path))]])
    assert code == 0
    printed = capsys.readouterr().out
    assert "episodes: 2 (1 repaired, 0 unrepaired, 1 censored)" in printed
    episodes = pd.read_csv(out["episodes"])
    assert list(episodes.columns) == ["pair", "who", "onset", "pre_level", "trough",
                                      "depth_sd", "length", "repaired", "repair_session",
                                      "censored"]
    assert episodes[["onset", "repaired", "censored"]].values.tolist() == [[3, True, False],
                                                                          [5, False, True]]
    flags = pd.read_csv(out["flags"])
    assert list(flags.columns) == ["pair", "week", "who", "rupture_onset", "in_rupture",
                                   "rupture_repair"]
    assert pd.read_csv(out["dyads"])["pattern"].tolist() == ["repair", "none"]
    assert (tmp_path / "fig.png").stat().st_size > 5000


def test_cli_help_and_bad_input(sessions_csv, capsys):
    from apim.cli import main

    assert main(["ruptures", "--help"]) == 0
    text = capsys.readouterr().out
    assert "(default: 3)" in text and "example:" in text and "--episodes" in text
    base = ["ruptures", str(sessions_csv), "--dyad", "pair", "--session", "week", "--role",
            "who", "--variable"]
    for argv, words in [(base + ["wia"], "'wia' is not in the data"),
                        (base + ["wai", "--sd", "rci"], "reliability"),
                        (base + ["wai", "--rule", "sudden", "--reliability", "0.9"],
                         "e.g. --scale-min 1"),
                        (base + ["wai", "--figure-dyad", "1"], "--figure"),
                        (base + ["wai", "--window", "0"], "--window 0 must be")]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1
