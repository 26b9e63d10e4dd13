"""Reference levels of categorical moderators (issue 23 item 1): one rule, decided in
``moderator_levels`` -- ``reference`` when given, else the data's declared order, else
sorted order -- and relabelling the reference only flips the moderator terms' signs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import apim
from apim.errors import DataError, SpecError
from apim.inference.arms import arm_differences
from apim.model.design import moderator_levels
from apim.model.spec import APIMSpec, LatentAPIMSpec


@pytest.fixture(scope="module")
def plain() -> apim.SessionData:
    """The bundled data as the CSV reads them: treatment is text (no declared order)."""
    data = apim.load_alliance()
    return data.replace(data.frame.assign(treatment=data.frame["treatment"].astype(str)))


@pytest.fixture(scope="module")
def small(plain) -> apim.SessionData:
    """Three therapists per arm and eight sessions, for the latent model."""
    frame = plain.frame
    arms = frame.groupby("treatment")["therapist"].unique()
    keep = [t for arm in arms for t in sorted(arm)[:3]]
    return plain.replace(frame[frame["therapist"].isin(keep) & (frame["session"] <= 8)]
                         .reset_index(drop=True))


def _spec(**kw) -> APIMSpec:
    return APIMSpec("outcome", ("alliance",), moderators=("treatment",), **kw)


def test_the_rule():
    text = pd.Series(["CBT", "AFT", None, "CBT"])
    assert moderator_levels(text) == ["AFT", "CBT"]  # sorted: no declared order
    declared = pd.Series(pd.Categorical(text, categories=["CBT", "AFT"]))
    assert moderator_levels(declared) == ["CBT", "AFT"]  # the data's declared order
    assert moderator_levels(declared, "AFT", "treatment") == ["AFT", "CBT"]  # chosen
    assert moderator_levels(pd.Series([0, 1, 1]), "1", "arm") == [1, 0]  # by its text
    assert moderator_levels(pd.Series([1.0, 2.0, 3.0])) is None  # numeric: as it is


def test_spec_takes_a_mapping_or_pairs_and_round_trips():
    spec = _spec(reference={"treatment": "CBT"})
    assert spec.reference == (("treatment", "CBT"),)
    assert _spec(reference=[["treatment", "CBT"]]) == spec
    assert spec.to_dict()["reference"] == [["treatment", "CBT"]]
    assert APIMSpec.from_dict(spec.to_dict()) == spec
    assert spec.digest() != _spec().digest()
    latent = LatentAPIMSpec("outcome", ("alliance",), moderator="treatment",
                            reference={"treatment": "AFT"})
    assert LatentAPIMSpec.from_dict(latent.to_dict()) == latent


@pytest.mark.parametrize("build, message", [
    (lambda: APIMSpec("outcome", ("alliance",), reference={"treatment": "CBT"}),
     "reference treatment=...: 'treatment' is not a moderator of the model (its "
     "moderators: none)"),
    (lambda: _spec(reference={"arm": "CBT"}),
     "'arm' is not a moderator of the model (its moderators: 'treatment')"),
    (lambda: _spec(reference=[("treatment", "CBT"), ("treatment", "AFT")]),
     "reference names column 'treatment' twice"),
    (lambda: LatentAPIMSpec("outcome", ("alliance",), reference={"treatment": "CBT"}),
     "'treatment' is not a moderator of the model"),
    (lambda: _spec(reference={"treatment": 1}), "must be text"),
])
def test_spec_refuses(build, message):
    with pytest.raises(SpecError) as info:
        build()
    assert message in str(info.value)


def test_a_level_not_in_the_data_is_refused(plain):
    with pytest.raises(DataError) as info:
        apim.fit(plain, _spec(reference={"treatment": "DBT"}))
    assert str(info.value) == ("reference treatment=DBT: column 'treatment' has no level "
                               "'DBT'; its levels are AFT, CBT")


def test_a_numeric_moderator_has_no_reference(plain):
    frame = plain.frame
    data = plain.replace(frame.assign(severity=frame["dyad"].astype(float) % 7))
    spec = APIMSpec("outcome", ("alliance",), moderators=("severity",),
                    reference={"severity": "1"})
    with pytest.raises(DataError, match="column 'severity' is numeric"):
        apim.fit(data, spec)


@pytest.mark.filterwarnings("ignore")
def test_relabelling_the_reference_flips_only_the_moderator_terms(plain):
    aft = apim.fit(plain, _spec())  # sorted order: AFT
    cbt = apim.fit(plain, _spec(reference={"treatment": "CBT"}))
    assert aft.reference_levels() == {"treatment": "AFT"}
    assert cbt.reference_levels() == {"treatment": "CBT"}
    assert abs(aft.statistics.loglik - cbt.statistics.loglik) < 1e-8
    flipped = {n.replace("[CBT]", "[AFT]"): v for n, v in aft.coef.items() if "[CBT]" in n}
    assert len(flipped) == 10  # main effect and four interactions, per role
    for name, value in flipped.items():
        assert cbt.coef[name] == pytest.approx(-value, abs=1e-6)
    assert cbt.coef["patient.moderator.none.treatment[AFT]"] == pytest.approx(0.177, abs=5e-4)
    # the declared order of load_alliance (CBT first) is the same fit as reference=CBT
    declared = apim.fit(apim.load_alliance(), _spec())
    np.testing.assert_allclose(declared.coef, cbt.coef.loc[declared.coef.index], atol=1e-8)


def test_every_note_states_the_reference(plain):
    notes = " ".join(apim.fit(plain, _spec()).notes())
    assert ("Moderator treatment: reference category AFT (first in sorted order, as the "
            "data declare no order") in notes
    result = apim.fit(plain, _spec(reference={"treatment": "CBT"}))
    assert "reference category CBT (set with reference / --reference)" in " ".join(
        result.notes())
    assert "reference treatment = CBT" in result.summary()
    declared = apim.fit(apim.load_alliance(), _spec())
    assert "reference category CBT (the data's declared order)" in " ".join(declared.notes())


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("reference, contrast", [(None, "CBT − AFT"),
                                                 ({"treatment": "CBT"}, "AFT − CBT")])
def test_latent_arm_differences_follow_the_reference(small, reference, contrast):
    spec = LatentAPIMSpec("outcome", ("alliance",), moderator="treatment",
                          reference=reference or ())
    result = apim.fit(small, spec)
    first = contrast.split(" − ")[1]
    assert result.reference_levels() == {"treatment": first}
    assert set(arm_differences(result)["contrast"]) == {contrast}
    assert f"minus the reference group {first}" in " ".join(result.notes())
    assert f"reference group treatment = {first}" in result.summary()


@pytest.mark.filterwarnings("ignore")
def test_latent_relabelling_flips_the_arm_differences(small):
    spec = LatentAPIMSpec("outcome", ("alliance",), moderator="treatment")
    a = apim.fit(small, spec)
    b = apim.fit(small, spec.replace(reference={"treatment": "CBT"}))
    assert abs(a.statistics.loglik - b.statistics.loglik) < 1e-8
    da, db = arm_differences(a), arm_differences(b)
    np.testing.assert_allclose(da["difference"].dropna(), -db["difference"].dropna(),
                               atol=1e-8)
