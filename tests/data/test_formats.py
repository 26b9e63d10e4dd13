"""Lossless conversions between long, dyad-wide and pairwise layouts; file readers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apim import SessionData, load_alliance, read_table


def test_kashy_pairwise_to_long_and_back(shared):
    raw = pd.read_csv(shared / "kashy_diary" / "kashy_person_period_pairwise.csv",
                      na_values=[" "])
    data = SessionData.from_pairwise(raw, dyad="dyadid", session="Day", role="person",
                                     roles=(1, 2))
    long = data.to_long()
    assert len(long) == 2884
    assert "conflict_P" not in long and "conflict" in long  # partner columns checked, dropped
    back = data.to_pairwise(variables=["conflict", "Cconflict", "satisf"])
    keys = ["dyadid", "person", "Day"]
    original = raw.assign(person=raw["person"].astype(str)).sort_values(keys)
    back = back.sort_values(keys)
    for column in raw.columns:
        if column in keys:
            continue
        pd.testing.assert_series_equal(back[column].reset_index(drop=True),
                                       original[column].reset_index(drop=True),
                                       check_dtype=False, check_names=False)


def test_acitelli_individual_and_pairwise_agree(shared):
    individual = SessionData.from_long(shared / "acitelli" / "acitelli_individual.csv",
                                       dyad="cuplid", role="gender", roles=(1, -1))
    pair = individual.to_pairwise(variables=["self_pos", "other_pos", "satisfaction",
                                             "tension", "simhob"])
    dyadr = pd.read_csv(shared / "acitelli" / "acipair_dyadr.csv")
    dyadr = dyadr.assign(gender=np.where(dyadr["Gender_A"] == "Husband", "1", "-1"))
    merged = pair.merge(dyadr, left_on=["cuplid", "gender"], right_on=["CoupleID", "gender"])
    assert len(merged) == 296
    for ours, theirs in [("self_pos", "SelfPos"), ("other_pos", "OtherPos"),
                         ("satisfaction", "Satisfaction"), ("tension", "Tension"),
                         ("simhob", "SimHob")]:
        for side in ("_A", "_P"):
            np.testing.assert_allclose(merged[ours + side], merged[theirs + side], atol=1e-8)
    # and the other way: the dyadr pairwise file read as pairwise gives the individual data
    back = SessionData.from_pairwise(shared / "acitelli" / "acipair_dyadr.csv",
                                     dyad="CoupleID", role="Gender_A",
                                     roles=("Husband", "Wife"))
    assert "Gender_P" not in back.frame  # implied by the role
    mine = individual.frame.set_index(["dyad", "role"]).sort_index()
    theirs = back.frame.assign(role=back.frame["role"].map({"Husband": "1", "Wife": "-1"}))
    theirs = theirs.set_index(["dyad", "role"]).sort_index()
    np.testing.assert_allclose(theirs["OtherPos"], mine["other_pos"], atol=1e-8)
    np.testing.assert_allclose(theirs["Tension"], mine["tension"], atol=1e-8)


def _pairwise(sex_p):
    return pd.DataFrame({"couple": [1, 1, 2, 2], "Gender": ["Wife", "Husband"] * 2,
                         "Sex_A": ["Wife", "Husband"] * 2, "Sex_P": sex_p,
                         "x_A": [1.0, 2, 3, 4], "x_P": [2.0, 1, 4, 3]})


def test_pairwise_pair_that_recodes_the_roles_is_dropped():
    """dyadr's Acitelli file names the roles three ways (Gender 'Wife', Gender_A 'Wife',
    Gender_P 'MALE'): a pair with one label per role in each column repeats the role."""
    data = SessionData.from_pairwise(_pairwise(["MALE", "FEMALE"] * 2), dyad="couple",
                                     role="Gender", roles=("Husband", "Wife"))
    assert data.variables == ["x"]
    frame = data.frame.assign(dyad=data.frame["dyad"].astype(str)).set_index(["dyad", "role"])
    assert frame.loc[("2", "Husband"), "x"] == 4.0


@pytest.mark.parametrize("sex_p", [["MALE", "FEMALE", "MALE", "MALE"],  # not one per role
                                   ["MALE", "FEMALE", "MALE", None]])   # a label missing
def test_pairwise_pair_that_does_not_recode_the_roles_is_checked(sex_p):
    from apim.errors import PartnerMismatchError

    with pytest.raises(PartnerMismatchError, match="partner column 'Sex_P'"):
        SessionData.from_pairwise(_pairwise(sex_p), dyad="couple", role="Gender",
                                  roles=("Husband", "Wife"))


def test_bolger_wide_round_trip(shared):
    wide = pd.read_csv(shared / "bolger_laurenceau_ch8_dyads" / "BLdyads_long.csv")
    data = SessionData.from_wide(wide, dyad="coupleid", session="time", roles=("f", "m"))
    assert len(data.frame) == 4200
    back = data.to_wide()
    assert set(back.columns) == set(wide.columns)
    pd.testing.assert_frame_equal(back[wide.columns], wide, check_dtype=False)


def test_alliance_long_wide_pairwise_round_trips():
    data = load_alliance()
    wide = data.to_wide()
    assert {"treatment", "patient_alliance", "therapist_outcome"} <= set(wide.columns)
    again = SessionData.from_wide(wide, dyad="dyad", session="session",
                                  roles=data.roles, therapist="therapist")
    _same_long(again, data)
    pair = data.to_pairwise()
    again = SessionData.from_pairwise(pair, dyad="dyad", session="session", role="role",
                                      roles=data.roles, therapist="therapist")
    _same_long(again, data)


def _same_long(a: SessionData, b: SessionData) -> None:
    cols = ["dyad", "session", "role", "therapist", "treatment", "alliance", "outcome"]
    pd.testing.assert_frame_equal(a.frame[cols].reset_index(drop=True),
                                  b.frame[cols].reset_index(drop=True), check_dtype=False)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4), st.sampled_from("PT"),
                          st.one_of(st.none(), st.floats(-9, 9, allow_nan=False))),
                min_size=2, max_size=30, unique_by=lambda r: r[:3]))
def test_conversions_round_trip(rows):
    df = pd.DataFrame(rows, columns=["d", "t", "r", "x"]).astype({"x": float})
    if df["r"].nunique() < 2:
        return
    data = SessionData.from_long(df, dyad="d", session="t", role="r", roles=("P", "T"))
    pair = SessionData.from_pairwise(data.to_pairwise(), dyad="d", session="t", role="r",
                                     roles=("P", "T"))
    pd.testing.assert_frame_equal(pair.frame.drop(columns="row"), data.frame.drop(columns="row"))
    wide = SessionData.from_wide(data.to_wide(), dyad="d", session="t", roles=("P", "T"))
    # wide completes the dyad x session x role grid with empty rows
    merged = wide.frame.merge(data.frame, on=["dyad", "session", "role"], how="left",
                              suffixes=("", "_orig"), indicator=True)
    kept = merged["_merge"] == "both"
    assert kept.sum() == len(data.frame)
    np.testing.assert_array_equal(merged.loc[kept, "x"], merged.loc[kept, "x_orig"])
    assert merged.loc[~kept, "x"].isna().all()


@pytest.mark.parametrize("suffix, writer", [
    (".csv", lambda df, p: df.to_csv(p, index=False)),
    (".tsv", lambda df, p: df.to_csv(p, index=False, sep="\t")),
    (".xlsx", lambda df, p: df.to_excel(p, index=False)),
    (".dta", lambda df, p: df.to_stata(p, write_index=False)),
    (".parquet", lambda df, p: df.to_parquet(p, index=False)),
    (".sav", lambda df, p: __import__("pyreadstat").write_sav(df, str(p))),
])
def test_readers(tmp_path, suffix, writer):
    df = load_alliance().to_long().head(40).drop(columns="treatment")
    path = tmp_path / f"data{suffix}"
    writer(df, path)
    data = SessionData.from_long(path, dyad="dyad", session="session", role="role",
                                 therapist="therapist")
    np.testing.assert_allclose(data.frame["alliance"], df["alliance"])
    assert data.roles == ("patient", "therapist")
    assert read_table(path).shape == df.shape


def test_numeric_pair_constant_within_roles_is_a_variable_not_a_role_label():
    # found by the round trip above: x = 1 for every P row and 0 for every T row is a
    # variable (checked and kept), not a second spelling of the role (dropped)
    df = pd.DataFrame({"d": [1, 1, 2, 2], "t": [1, 1, 1, 1], "r": ["P", "T", "P", "T"],
                       "x": [1.0, 0.0, 1.0, 0.0]})
    data = SessionData.from_long(df, dyad="d", session="t", role="r", roles=("P", "T"))
    wide = data.to_pairwise()
    pair = SessionData.from_pairwise(wide, dyad="d", session="t", role="r", roles=("P", "T"))
    assert "x" in pair.frame.columns
    pd.testing.assert_frame_equal(pair.frame.drop(columns="row"),
                                  data.frame.drop(columns="row"))
    wide.loc[0, "x_P"] = 5.0
    from apim.errors import PartnerMismatchError

    with pytest.raises(PartnerMismatchError, match="x_P"):
        SessionData.from_pairwise(wide, dyad="d", session="t", role="r", roles=("P", "T"))
