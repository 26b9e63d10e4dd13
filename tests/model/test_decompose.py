"""Within/between decomposition against hand-computed values and published columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apim import DecompositionSpec, SessionData, decompose, load_alliance
from apim.errors import AllMissingError, ConstantVariableError, SpecError


def small() -> SessionData:
    # dyad 1: P rates 1, 3 at sessions 1, 2; T rates 2, 6. dyad 2: P 5, -, 9 (sessions 1-3),
    # T 4, 4, 10 (session 2 missing for P).
    df = pd.DataFrame({
        "d": [1, 1, 1, 1, 2, 2, 2, 2, 2, 2],
        "t": [1, 1, 2, 2, 1, 1, 2, 2, 3, 3],
        "r": ["P", "T"] * 5,
        "x": [1, 2, 3, 6, 5, 4, np.nan, 4, 9, 10.0],
    })
    return SessionData.from_long(df, dyad="d", session="t", role="r")


def test_person_split_matches_hand_computation():
    parts = decompose(small(), ["x"]).components
    # person means: P1 2, T1 4, P2 7, T2 6; role centre (mean of person means): P 4.5, T 5
    assert parts["x_between"].tolist() == [-2.5, -1, -2.5, -1, 2.5, 1, 2.5, 1, 2.5, 1]
    np.testing.assert_array_equal(parts["x_within"].to_numpy(),
                                  [-1, -2, 1, 2, -2, -2, np.nan, -2, 2, 4])
    np.testing.assert_array_equal(parts["x_within_partner"].to_numpy(),
                                  [-2, -1, 2, 1, -2, -2, -2, np.nan, 4, 2])
    assert parts["x_between_partner"].tolist() == [-1, -2.5, -1, -2.5, 1, 2.5, 1, 2.5, 1, 2.5]


def test_reference_options():
    data = small()
    obs = decompose(data, ["x"], DecompositionSpec(reference="observations")).components
    # P observations 1, 3, 5, 9 -> mean 4.5; T 2, 6, 4, 4, 10 -> 5.2
    assert obs["x_between"].iloc[1] == pytest.approx(4 - 5.2)
    grand = decompose(data, ["x"], DecompositionSpec(reference="grand")).components
    assert grand["x_between"].iloc[0] == pytest.approx(2 - 44 / 9)


def test_lag_by_session_and_by_order():
    data = small()
    by_session = decompose(data, ["x"], DecompositionSpec(lag=1)).components
    # dyad 2 patient: session 3 lags session 2, which the patient did not rate
    np.testing.assert_array_equal(by_session["x_within_lag1"].to_numpy(),
                                  [np.nan, np.nan, -1, -2, np.nan, np.nan, -2, -2, np.nan, -2])
    assert "x_between" in by_session  # between parts are not lagged
    by_order = decompose(data, ["x"], DecompositionSpec(lag=1, lag_by="order")).components
    # by order, a row lags the person's previous row: the patient's session-2 row exists
    # with a missing rating, so session 3 gets a missing lag; the therapist's is -2
    assert np.isnan(by_order["x_within_lag1"].iloc[8])
    assert by_order["x_within_lag1_partner"].iloc[8] == -2


def test_detrend_removes_person_linear_trend():
    df = pd.DataFrame({"d": 1, "t": np.repeat([1, 2, 3, 4], 2), "r": ["P", "T"] * 4,
                       "x": [1, 5, 2.5, 5, 3, 5, 4.5, 5.5]})
    df = pd.concat([df, df.assign(d=2, x=df["x"] * 2)])
    data = SessionData.from_long(df, dyad="d", session="t", role="r")
    parts = decompose(data, ["x"], DecompositionSpec(detrend=True)).components
    p = data.frame["role"] == "P"
    slope = np.polyfit([1, 2, 3, 4], [1, 2.5, 3, 4.5], 1)[0]
    assert parts.loc[p, "x_trend"].iloc[:4].tolist() == pytest.approx(
        list(slope * (np.arange(1, 5) - 2.5)))
    within = parts.loc[p, "x_within"].iloc[:4].to_numpy()
    assert np.polyfit([1, 2, 3, 4], within, 1)[0] == pytest.approx(0, abs=1e-12)
    assert within.mean() == pytest.approx(0, abs=1e-12)


def test_three_level_split():
    data = load_alliance()
    parts = decompose(data, ["alliance"], DecompositionSpec(center="therapist")).components
    frame = data.frame
    x = frame["alliance"]
    pt = frame["role"] == "patient"
    th_mean = x[pt].groupby(frame.loc[pt, "therapist"]).mean()
    centre = th_mean.mean()
    t1 = pt & (frame["therapist"] == 1)
    assert parts.loc[t1, "alliance_between_therapist"].iloc[0] == pytest.approx(
        th_mean.loc[1] - centre)
    d1 = pt & (frame["dyad"] == 1)
    assert parts.loc[d1, "alliance_between_dyad"].iloc[0] == pytest.approx(
        x[d1].mean() - th_mean.loc[1])
    total = (parts["alliance_within"] + parts["alliance_between_dyad"]
             + parts["alliance_between_therapist"])
    centres = frame["role"].map({"patient": centre,
                                 "therapist": x[~pt].groupby(frame.loc[~pt, "therapist"])
                                 .mean().mean()})
    np.testing.assert_allclose((total + centres)[x.notna()], x[x.notna()], atol=1e-12)


def test_grand_and_none():
    data = small()
    grand = decompose(data, ["x"], DecompositionSpec(center="grand")).components
    assert grand["x_centered"].iloc[0] == pytest.approx(1 - 4.5)
    raw = decompose(data, ["x"], DecompositionSpec(center="none")).components
    assert raw["x_raw_partner"].iloc[0] == 2


def test_bolger_laurenceau_columns(shared):
    wide = pd.read_csv(shared / "bolger_laurenceau_ch8_dyads" / "BLdyads_long.csv")
    data = SessionData.from_wide(wide, dyad="coupleid", session="time", roles=("f", "m"))
    parts = decompose(data, ["wrkstrs"], DecompositionSpec(reference="grand")).components
    frame = data.frame
    np.testing.assert_allclose(parts["wrkstrs_between"], frame["wrkstrsc_b"], atol=1e-6)
    np.testing.assert_allclose(parts["wrkstrs_within"], frame["wrkstrsc_w"], atol=1e-6)
    # complete data sorted by couple, day, role: the partner's value is the other row
    partner = frame["wrkstrsc_w"].to_numpy().reshape(-1, 2)[:, ::-1].ravel()
    np.testing.assert_allclose(parts["wrkstrs_within_partner"], partner, atol=1e-6)


def test_bad_predictors():
    df = pd.DataFrame({"d": [1, 1, 2, 2], "r": ["P", "T"] * 2, "x": [1.0, 2, 1, 3],
                       "y": [np.nan, 1, np.nan, 2]})
    data = SessionData.from_long(df, dyad="d", role="r")
    with pytest.raises(ConstantVariableError, match="'x' is constant for role 'P'"):
        decompose(data, ["x"])
    with pytest.raises(AllMissingError, match="'y' is missing in every row for role 'P'"):
        decompose(data, ["y"])
    with pytest.raises(SpecError, match="needs a therapist column"):
        decompose(data, ["x"], DecompositionSpec(center="therapist"))
    with pytest.raises(SpecError, match="lag=-1"):
        DecompositionSpec(lag=-1)


# ---------------------------------------------------------------- properties
@st.composite
def session_frames(draw):
    n_dyads = draw(st.integers(2, 6))
    rows = []
    for d in range(n_dyads):
        n = draw(st.integers(2, 6))
        for t in range(1, n + 1):
            for r in ("P", "T"):
                if draw(st.floats(0, 1)) < 0.9:
                    x = draw(st.floats(-5, 5, allow_nan=False).map(lambda v: round(v, 3)))
                    rows.append((f"dyad{d}", t, r, x))
    df = pd.DataFrame(rows, columns=["d", "t", "r", "x"])
    for r in ("P", "T"):
        if df.loc[df["r"] == r, "x"].nunique() < 2:
            df = pd.concat([df, pd.DataFrame([("extra", 1, r, 11.0), ("extra", 2, r, -11.0)],
                                             columns=df.columns)])
    return df


def _fit(df: pd.DataFrame, spec: DecompositionSpec | None = None) -> pd.DataFrame:
    data = SessionData.from_long(df, dyad="d", session="t", role="r", roles=("P", "T"))
    parts = decompose(data, ["x"], spec).components
    keyed = pd.concat([data.frame[["dyad", "session", "role"]], parts], axis=1)
    return keyed.set_index(["dyad", "session", "role"]).sort_index()


@settings(max_examples=40, deadline=None)
@given(session_frames())
def test_within_means_zero_and_parts_add_up(df):
    data = SessionData.from_long(df, dyad="d", session="t", role="r", roles=("P", "T"))
    dec = decompose(data, ["x"])
    parts = dec.components
    means = parts["x_within"].groupby([data.frame["dyad"], data.frame["role"]]).mean()
    np.testing.assert_allclose(means, 0, atol=1e-9)
    centre = data.frame["role"].map(dec.centres.loc["x"])
    np.testing.assert_allclose(parts["x_within"] + parts["x_between"] + centre,
                               data.frame["x"], atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(session_frames(), st.randoms(use_true_random=False))
def test_row_order_and_dyad_labels_do_not_matter(df, rnd):
    base = _fit(df)
    shuffled = df.sample(frac=1, random_state=rnd.randint(0, 10**6))
    pd.testing.assert_frame_equal(_fit(shuffled), base)
    relabel = {d: f"z{rnd.randint(0, 10**9)}_{i}" for i, d in enumerate(df["d"].unique())}
    renamed = _fit(df.assign(d=df["d"].map(relabel)))
    back = {v: k for k, v in relabel.items()}
    renamed.index = renamed.index.set_levels(
        renamed.index.levels[0].map(back), level=0)
    pd.testing.assert_frame_equal(renamed.sort_index(), base, check_exact=False)


@pytest.mark.parametrize("center", ["person", "therapist", "grand", "none"])
def test_a_fitted_decomposition_reapplies(center):
    data = load_alliance()
    spec = DecompositionSpec(center=center)
    fitted = decompose(data, ["alliance", "outcome"], spec)
    same = fitted.apply(data)
    pd.testing.assert_frame_equal(same.components, fitted.components)
    subset = data.replace(data.frame[data.frame["dyad"].isin(data.frame["dyad"].unique()[:7])])
    part = fitted.apply(subset)
    own = decompose(subset, ["alliance", "outcome"], spec)
    pd.testing.assert_frame_equal(part.centres, fitted.centres)
    for name in own.components.columns:  # within parts need no centre; the rest move by
        shift = (part.components[name] - own.components[name]).dropna()  # a constant per role
        roles = subset.frame.loc[shift.index, "role"]
        assert (shift.groupby(roles).std().fillna(0) < 1e-12).all(), name
        if "within" in name or center == "none":
            assert (shift.abs() < 1e-12).all(), name
