"""Analyses that are not identified, and options that make no sense together, are refused
(or warned about) before any long work; text covariates of the therapist analyses are
dummy coded, checked against the same fits with a hand-made 0/1 column."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest

import apim
from apim.analyses import therapist as therapist_analyses
from apim.analyses.ruptures import RuptureSpec, detect_ruptures
from apim.analyses.therapist import (
    TherapistSpec,
    association_split,
    session_split,
    therapist_effects,
    variance_shares,
)
from apim.analyses.therapist import effects as effects_module
from apim.cli import main
from apim.cli import options as cli_options
from apim.cli import therapist as therapist_cli
from apim.errors import DataError, DataWarning, NonNumericError, SmallSampleWarning, SpecError
from apim.simulation.simulate import SimulationSpec, simulate

COLUMNS = ["--dyad", "dyad", "--session", "session", "--role", "role",
           "--therapist", "therapist"]


def _small(seed: int = 1) -> apim.SessionData:
    """24 dyads in 6 therapists (4 each), 5 sessions, numeric x, y and a 0/1 treatment."""
    return simulate(SimulationSpec(n_dyads=24, n_sessions=5, caseload=4), seed=seed)


def _with_therapists(data: apim.SessionData, therapist: pd.Series) -> apim.SessionData:
    return data.replace(data.frame.assign(therapist=therapist))


def _csv(data: apim.SessionData, path) -> str:
    data.to_long().to_csv(path, index=False)
    return str(path)


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line_error(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("apim: error:"), err
    return err


# ---------------------------------------------------------------- therapist: identification
def test_one_therapist_is_refused_by_every_analysis():
    data = _small()
    one = _with_therapists(data, pd.Series(7, index=data.frame.index))
    for call in (lambda: variance_shares(one, ["x"], ci="none"),
                 lambda: association_split(one, "x", "y"),
                 lambda: session_split(one, "x", "y"),
                 lambda: therapist_effects(one, TherapistSpec(variables=("x",), ci="none"))):
        with pytest.raises(SpecError, match=r"column 'therapist' holds one therapist, 7 "
                                            r"\(rows 1, 2, 3, 4, 5 and \d+ more\)"):
            call()


def test_one_dyad_per_therapist_is_refused():
    data = _small()
    single = _with_therapists(data, data.frame["dyad"] + 100)
    with pytest.raises(SpecError, match="every therapist in column 'therapist' serves one "
                                        "dyad .*therapist 101.*cannot be told apart"):
        variance_shares(single, ["x"], ci="none")
    with pytest.raises(SpecError, match="serves one dyad"):
        association_split(single, "x", "y")
    with pytest.raises(SpecError, match="serves one dyad"):
        therapist_effects(single, TherapistSpec(predictor="x", outcome="y"))


def test_mostly_single_dyad_therapists_warn():
    data = _small()
    frame = data.frame
    # therapists 1-3 keep their 4 dyads; the 12 dyads of the others get one therapist each
    mixed = frame["therapist"].where(frame["therapist"] <= 3, 1000 + frame["dyad"])
    with pytest.warns(SmallSampleWarning, match="12 of 15 therapists in column 'therapist' "
                                                "serve one dyad"):
        table = variance_shares(_with_therapists(data, mixed), ["x"], ci="none").table
    assert table["level"].tolist()[:3] == ["therapist", "dyad", "session"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        variance_shares(data, ["x"], ci="none")  # 4 dyads each: no such warning
    assert not [w for w in caught if "serve one dyad" in str(w.message)]
    with warnings.catch_warnings(record=True) as caught:  # every analysis: said once
        warnings.simplefilter("always")
        therapist_effects(_with_therapists(data, mixed),
                          TherapistSpec(variables=("x",), predictor="x", outcome="y",
                                        ci="none"))
    assert len([w for w in caught if "serve one dyad" in str(w.message)]) == 1


def test_cli_one_therapist_and_one_dyad_per_therapist_exit_2(tmp_path, capsys):
    data = _small()
    for therapist, words in ((pd.Series(7, index=data.frame.index), "holds one therapist, 7"),
                             (data.frame["dyad"] + 100, "serves one dyad")):
        path = _csv(_with_therapists(data, therapist), tmp_path / "data.csv")
        code, _, err = _cli(["therapist", path, *COLUMNS, "--variable", "x", "--ci", "none"],
                            capsys)
        assert code == 2 and words in _one_line_error(err)


# ---------------------------------------------------------------- therapist: covariates
def _arm(data: apim.SessionData) -> tuple[apim.SessionData, apim.SessionData]:
    """The same data with the treatment arm as text (CBT/AFT) and as a hand-made 0/1
    column ``cbt`` (1 for CBT, the non-reference level in sorted order)."""
    frame = data.frame
    text = frame.assign(treatment=np.where(frame["treatment"] > 0, "CBT", "AFT"))
    dummy = frame.assign(cbt=(text["treatment"] == "CBT").astype(float)).drop(
        columns="treatment")
    return data.replace(text), data.replace(dummy)


def test_text_covariate_equals_a_hand_made_dummy_in_every_analysis():
    text, dummy = _arm(_small(3))
    a = variance_shares(text, ["x"], covariates=("treatment",), ci="none")
    b = variance_shares(dummy, ["x"], covariates=("cbt",), ci="none")
    numbers = ["variance", "share"]
    np.testing.assert_allclose(a.table[numbers], b.table[numbers], rtol=1e-12)
    assert list(a.fits[("x", "patient")].coef.index) == ["Intercept", "treatment[T.CBT]"]
    assert a.notes == ("covariate 'treatment' is text: dummy coded against its first level "
                       "'AFT' (column treatment[T.CBT])",)
    cols = ["estimate", "se", "df", "p"]
    np.testing.assert_allclose(
        association_split(text, "x", "y", covariates=("treatment",))[cols],
        association_split(dummy, "x", "y", covariates=("cbt",))[cols], rtol=1e-6)
    table, fitted = session_split(text, "x", "y", covariates=("treatment",))
    reference = apim.fit(dummy, apim.APIMSpec(
        "y", ("x",), decomposition=apim.DecompositionSpec(center="therapist"),
        covariates=("cbt",), covariance=apim.CovarianceSpec(therapist_level=True)))
    mine = fitted.effects.rename(index=lambda n: n.replace("treatment[T.CBT]", "cbt"))
    np.testing.assert_allclose(mine[["estimate", "se"]],
                               reference.effects.loc[mine.index, ["estimate", "se"]],
                               rtol=1e-6)
    assert "patient.covariate.none.treatment[T.CBT]" in fitted.effects.index
    assert len(table) == 16


def test_cli_text_covariate_runs_and_states_the_reference(tmp_path, capsys):
    text, _ = _arm(_small(3))
    path = _csv(text, tmp_path / "arm.csv")
    code, out, err = _cli(["therapist", path, *COLUMNS, "--variable", "x", "--predictor",
                           "x", "--outcome", "y", "--covariate", "treatment", "--ci",
                           "bootstrap", "--bootstrap", "20", "--seed", "1"], capsys)
    assert code == 0, err
    assert "dummy coded against its first level 'AFT' (column treatment[T.CBT])" in out
    assert "Association at the session level" in out


@pytest.fixture()
def no_fits(monkeypatch):
    """Fail the test if any therapist model is fitted (the refusal must come first)."""
    def refuse(*args, **kwargs):
        raise AssertionError("a model was fitted before the refusal")

    monkeypatch.setattr(effects_module, "association_split", refuse)
    monkeypatch.setattr(effects_module, "session_split", refuse)
    monkeypatch.setattr(effects_module, "variance_shares", refuse)


def test_bad_covariates_are_refused_before_any_fit(no_fits):
    data = _small()
    spec = TherapistSpec(variables=("x",), predictor="x", outcome="y", n_boot=500)
    constant = data.replace(data.frame.assign(arm="CBT"))
    with pytest.raises(SpecError, match=r"covariate 'arm' takes 'CBT' in every row "
                                        r"\(rows 1, 2, 3, 4, 5 and \d+ more\).*drop it"):
        therapist_effects(constant, spec.replace(covariates=("arm",)))
    with pytest.raises(SpecError, match="covariate 'session' changes within dyads"):
        therapist_effects(data, spec.replace(covariates=("session",)))
    stray = data.frame.assign(dose=data.frame["x"].astype(object))
    stray.loc[4, "dose"] = "n/a"
    with pytest.raises(NonNumericError, match="'dose' holds the non-numeric value 'n/a'"):
        therapist_effects(data.replace(stray), spec.replace(covariates=("dose",)))
    with pytest.raises(DataError, match="'nosuch'"):
        therapist_effects(data, spec.replace(covariates=("nosuch",)))


def test_cli_bad_covariate_fails_at_once(tmp_path, capsys):
    data = _small()
    path = _csv(data.replace(data.frame.assign(arm="CBT")), tmp_path / "arm.csv")
    clock = time.perf_counter()
    code, _, err = _cli(["therapist", path, *COLUMNS, "--variable", "x", "--covariate",
                         "arm", "--ci", "bootstrap", "--bootstrap", "2000"], capsys)
    assert code == 2 and "covariate 'arm' takes 'CBT' in every row" in _one_line_error(err)
    assert time.perf_counter() - clock < 20  # no bootstrap ran


# ---------------------------------------------------------------- therapist: progress
@pytest.mark.parametrize("terminal, options, shown", [
    (True, [], True), (True, ["--quiet"], False), (False, [], False),
    (False, ["--progress"], True)])
def test_cli_progress_on_a_terminal_off_with_quiet(monkeypatch, tmp_path, capsys, terminal,
                                                   options, shown):
    seen = {}

    def record(data, spec, **kwargs):
        seen.update(kwargs)
        return therapist_analyses.TherapistEffects(spec, None, None, None)

    monkeypatch.setattr(therapist_cli, "therapist_effects", record)
    monkeypatch.setattr(cli_options.sys.stderr, "isatty", lambda: terminal)
    path = _csv(_small(), tmp_path / "data.csv")
    code, _, err = _cli(["therapist", path, *COLUMNS, "--variable", "x", *options], capsys)
    assert code == 0 and seen["progress"] is shown
    # the old --progress still works, with a warning naming what to do instead
    assert ("--progress is deprecated" in err) is ("--progress" in options)


# ---------------------------------------------------------------- ruptures
@pytest.mark.parametrize("options, words", [
    ({"decline": 4, "window": 3}, "decline=4 is longer than the repair window window=3"),
    ({"sd": "points", "k": 1.0, "tolerance": 1.0},
     "tolerance=1.0 is not below the drop threshold k=1.0 scale points"),
    ({"sd": "points", "k": 1.0, "tolerance": 1.5}, "use a tolerance below k"),
])
def test_rupture_options_that_do_not_fit_together(options, words):
    with pytest.raises(SpecError, match=words):
        RuptureSpec(**options)
    RuptureSpec(decline=3, window=3)  # equal lengths are fine
    RuptureSpec(sd="points", k=1.0, tolerance=0.9)


def _ratings(values_p: list[float]) -> apim.SessionData:
    sessions = range(1, len(values_p) + 1)
    other = [6.0, 3.0] * len(values_p)  # the therapist varies a lot: threshold above 3
    rows = [{"dyad": 1, "session": s, "role": r, "wai": v}
            for s, vp, vt in zip(sessions, values_p, other)
            for r, v in (("P", vp), ("T", vt))]
    return apim.SessionData.from_long(pd.DataFrame(rows), dyad="dyad", session="session",
                                      role="role", roles=("P", "T"))


def test_scale_min_above_the_data_is_refused():
    data = _ratings([5.0, 0.5, 5.0, 0.5, 5.0])
    spec = RuptureSpec(rule="sudden", reliability=0.9, scale_min=1.0)
    with pytest.raises(DataError, match=r"column 'wai' holds 0\.5 \(rows 3, 7\), below "
                                        r"scale_min=1.*real minimum"):
        detect_ruptures(data, "wai", spec)
    detect_ruptures(data, "wai", spec.replace(scale_min=0.0))


def test_tolerance_not_below_a_members_threshold_warns():
    data = _ratings([5.0, 4.8, 5.1, 4.9, 5.0, 5.2])  # own SD about 0.15: threshold 0.3
    with pytest.warns(DataWarning, match=r"tolerance=0\.5 is not below the drop threshold "
                                         r"of 1 of 2 members \(e\.g\. dyad 1, P"):
        detect_ruptures(data, "wai", RuptureSpec(tolerance=0.5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        detect_ruptures(data, "wai", RuptureSpec(tolerance=0.1))


def test_cli_rupture_refusals_exit_2(tmp_path, capsys):
    path = tmp_path / "wai.csv"
    _ratings([5.0, 0.5, 5.0, 0.5, 5.0]).to_long().to_csv(path, index=False)
    base = ["ruptures", str(path), "--dyad", "dyad", "--session", "session", "--role",
            "role", "--variable", "wai"]
    # the messages name the flags as typed (--decline 5), not Python's decline=5
    for extra, words in ((["--decline", "5", "--window", "2"],
                          "--decline 5 is longer than the repair window --window 2"),
                         (["--sd", "points", "--k", "1", "--tolerance", "2"],
                          "--tolerance 2 is not below"),
                         (["--rule", "sudden", "--reliability", "0.9", "--scale-min", "1"],
                          "holds 0.5 (rows 3, 7), below --scale-min 1"),
                         (["--sd", "rci"], "--sd rci needs the scale's reliability, e.g. "
                          "--reliability 0.9")):
        code, _, err = _cli(base + extra, capsys)
        assert code == 2 and words in _one_line_error(err)
