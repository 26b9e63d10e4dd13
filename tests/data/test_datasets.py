"""Data set loaders: the bundled Acitelli couples and the pinned public files (offline)."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import apim
from apim import APIMSpec, CovarianceSpec, DecompositionSpec
from apim.datasets import couples
from apim.datasets.couples import (
    BOLGER_LAURENCEAU,
    KASHY,
    load_acitelli,
    load_bolger_laurenceau,
    load_kashy,
    sha256,
)
from apim.errors import DataError, DataWarning, UnsupportedFileError

KASHY_FILE = ("kashy_diary", "kashy_person_period_pairwise.csv")
BL_FILE = ("bolger_laurenceau_ch8_dyads", "BLdyads_long.csv")


# ---------------------------------------------------------------- Acitelli (bundled)
def test_bundled_acitelli_is_the_shared_copy(shared):
    assert sha256(couples.acitelli_path()) == sha256(shared / "acitelli" / "acipair_dyadr.csv")
    assert sha256(couples.acitelli_path()) == (
        "23b8a4bad6f270b61ebe9cef346bb8a57ac9d9e6d5516558cbe1672df2d20cbe")


def test_acitelli_is_cross_sectional_and_matches_the_workshop_file(shared):
    data = load_acitelli()
    assert data.columns.session is None and (data.frame["session"] == 1).all()
    assert "session" not in data.to_long().columns
    assert data.n_dyads == 148 and len(data.frame) == 296
    assert data.roles == ("Husband", "Wife")
    # independent source: the workshop's individual file (gender 1 husband, -1 wife)
    ind = pd.read_csv(shared / "acitelli" / "acitelli_individual.csv")
    ind = ind.assign(role=ind["gender"].map({1: "Husband", -1: "Wife"}))
    ours = data.frame.rename(columns={"dyad": "cuplid"})
    merged = ours.merge(ind.rename(columns={"Yearsmar": "years"}), on=["cuplid", "role"],
                        validate="one_to_one")
    assert len(merged) == 296
    for mine, theirs in [("SelfPos", "self_pos"), ("OtherPos", "other_pos"),
                         ("Satisfaction", "satisfaction"), ("Tension", "tension"),
                         ("SimHob", "simhob"), ("Yearsmar", "years")]:
        assert np.abs(merged[mine] - merged[theirs]).max() < 1e-8, mine
    assert np.allclose(merged["COtherPos"], merged["other_pos"] - 4.2635)
    assert np.allclose(merged["CTension"], merged["tension"] - 2.4307)


def test_the_tests_copy_of_acitelli_is_the_workshop_file(acitelli_csv, shared):
    """The published-table tests read the bundled file in the workshop's individual layout
    (conftest.acitelli_csv); here it is checked value by value against the workshop's own
    file."""
    ours = pd.read_csv(acitelli_csv).sort_values(["cuplid", "gender"]).reset_index(drop=True)
    theirs = pd.read_csv(shared / "acitelli" / "acitelli_individual.csv")
    theirs = theirs.sort_values(["cuplid", "gender"]).reset_index(drop=True)
    assert list(ours.columns) == list(theirs.columns)
    pd.testing.assert_frame_equal(ours, theirs, check_exact=False, atol=1e-8, rtol=0)


def test_bundled_acitelli_works_from_the_command_line(capsys):
    """The bundled pairwise file as a user reads it (role column Gender; Gender_A and
    Gender_P name the roles in labels of their own): the published distinguishable APIM
    (PROVENANCE B4)."""
    from apim.cli import main

    code = main(["fit", couples.acitelli_path(), "--layout", "pairwise", "--dyad",
                 "CoupleID", "--role", "Gender", "--roles", "Husband,Wife", "--outcome",
                 "Satisfaction", "--predictor", "OtherPos", "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    fixed = {row["term"]: row for row in __import__("json").loads(captured.out)["fixed"]}
    assert abs(fixed["Husband.actor.none.OtherPos"]["estimate"] - 0.4243866) < 5e-8
    assert abs(fixed["Wife.partner.none.OtherPos"]["se"] - 0.0815225) < 5e-8


def _no_random(**fields):
    """An APIM without random effects."""
    return APIMSpec(**fields, covariance=CovarianceSpec(random="none"))


def test_acitelli_reproduces_the_published_indistinguishable_apim():
    # Garcia's 2-day workshop, Day 1 APIM (nlme gls, CS): see shared PROVENANCE.md, B2
    spec = _no_random(outcome="Satisfaction", predictors=("OtherPos",),
                      decomposition=DecompositionSpec(center="none"), distinguishable=False)
    result = apim.fit(load_acitelli(), spec)
    eff = result.effects
    assert abs(eff.loc["both.actor.none.OtherPos", "estimate"] - 0.4004231) < 5e-8
    assert abs(eff.loc["both.partner.none.OtherPos", "estimate"] - 0.2879705) < 5e-8
    assert abs(eff.loc["both.actor.none.OtherPos", "se"] - 0.0473141) < 5e-8
    assert abs(result.engine.loglik - -148.3591) < 5e-5


# ---------------------------------------------------------------- pinned public files
@pytest.mark.parametrize("public, parts", [(KASHY, KASHY_FILE), (BOLGER_LAURENCEAU, BL_FILE)])
def test_pinned_checksums_match_the_shared_copies(shared, public, parts):
    assert sha256(shared.joinpath(*parts)) == public.sha256
    assert public.url.startswith("https://raw.githubusercontent.com/")
    assert len(public.url.split("/")[5]) == 40   # a commit, not a branch


def test_kashy_from_a_local_copy(shared):
    path = shared.joinpath(*KASHY_FILE)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        data = load_kashy(path)
    assert data.n_dyads == 103 and len(data.frame) == 2884 and data.roles == ("1", "2")
    raw = pd.read_csv(path, na_values=[" "])    # missing ratings are blanks in the file
    ours = data.frame.set_index(["dyad", "role", "session"]).sort_index()
    raw = raw.assign(person=raw["person"].astype(str)).set_index(
        ["dyadid", "person", "Day"]).sort_index()
    for mine, theirs in [("satisf", "satisf_A"), ("conflict", "conflict_A"),
                         ("Cavoid", "Cavoid_A"), ("Csatisf", "Csatisf_A")]:
        pd.testing.assert_series_equal(ours[mine], raw[theirs], check_names=False,
                                       check_index=False)
    # the partner columns of the source were checked against the partner's own rows
    assert "Cavoid_A.1" not in data.frame.columns and "Csatis_P" not in data.frame.columns


def test_bolger_laurenceau_from_a_local_copy(shared):
    path = shared.joinpath(*BL_FILE)
    data = load_bolger_laurenceau(path)
    assert data.n_dyads == 100 and len(data.frame) == 4200 and data.roles == ("f", "m")
    assert data.frame["session"].min() == 0 and data.frame["session"].max() == 20
    wide = pd.read_csv(path)
    f = data.frame[data.frame["role"] == "f"].sort_values(["dyad", "session"])
    assert np.array_equal(f["reldis"].to_numpy(),
                          wide.sort_values(["coupleid", "time"])["f_reldis"].to_numpy())


def test_download_uses_the_pinned_address_and_checksum(shared, monkeypatch):
    pooch = pytest.importorskip("pooch")
    calls = []

    def fake_retrieve(url, known_hash, fname, path, progressbar):
        calls.append((url, known_hash, fname))
        return str(shared.joinpath(*BL_FILE))

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    data = load_bolger_laurenceau()
    assert data.n_dyads == 100
    assert calls == [(BOLGER_LAURENCEAU.url, f"sha256:{BOLGER_LAURENCEAU.sha256}",
                      "BLdyads_long.csv")]


def test_download_failure_is_one_clear_error(monkeypatch):
    pooch = pytest.importorskip("pooch")

    def offline(*args, **kwargs):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(pooch, "retrieve", offline)
    with pytest.raises(DataError, match="could not download the Kashy.*ConnectionError.*path="):
        load_kashy()


def test_missing_pooch_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pooch", None)   # import pooch -> ImportError
    with pytest.raises(UnsupportedFileError, match=r"needs the optional package pooch.*path="):
        load_kashy()


def test_local_copy_errors_and_warnings(tmp_path, shared):
    with pytest.raises(UnsupportedFileError, match="does not exist"):
        load_kashy(tmp_path / "nope.csv")
    changed = tmp_path / "bl.csv"
    text = shared.joinpath(*BL_FILE).read_text()
    changed.write_text(text + "\n")   # one more byte
    with pytest.warns(DataWarning, match="differs from the published file"):
        load_bolger_laurenceau(changed)
