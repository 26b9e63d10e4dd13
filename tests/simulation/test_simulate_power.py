"""Simulation and power: truth recovered, power near 1 and near alpha, seeds, parallel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import apim
from apim import APIMSpec, CovarianceSpec
from apim.cli import main
from apim.errors import SpecError
from apim.simulation.power import power
from apim.simulation.simulate import SimulationSpec, simulate, true_effects

ANALYSIS = APIMSpec("y", ("x",), moderators=("treatment",), interaction=True)


def test_truth_is_recovered_within_monte_carlo_error():
    truth = SimulationSpec(n_dyads=300, n_sessions=12, interaction_within=(0.1, -0.05),
                           treatment=(0.3, 0.1), treatment_actor_within=(0.15, 0.0),
                           treatment_partner_between=(0.0, 0.2), therapist_sd=0.0,
                           residual_phi=0.0, dropout=0.02, skipped=0.05, missing=0.03)
    result = apim.fit(simulate(truth, seed=11), ANALYSIS)
    expected = true_effects(truth)
    eff = result.effects
    z = []
    for name, row in eff.iterrows():
        key = name.replace("[1.0]", "")
        z.append((row["estimate"] - expected[key]) / row["se"])
    z = np.array(z)
    assert np.all(np.abs(z) < 4), z
    assert abs(z.mean()) < 4 / np.sqrt(len(z))  # no systematic bias
    var = result.variance
    for name, value in (("residual sd(patient)", 0.6), ("residual sd(therapist)", 0.45),
                        ("residual cor(patient,therapist)", 0.3),
                        ("dyad sd(patient)", 0.45), ("dyad sd(therapist)", 0.35)):
        assert abs(var.loc[name, "estimate"] - value) < 4 * var.loc[name, "se"], name


def test_ar1_truth_is_recovered():
    truth = SimulationSpec(n_dyads=150, n_sessions=15, residual_phi=0.4, caseload=0,
                           treatment_share=0.0)
    spec = APIMSpec("y", ("x",), covariance=CovarianceSpec(residual="un-ar1"))
    result = apim.fit(simulate(truth, seed=3), spec)
    var = result.variance
    assert abs(var.loc["residual AR(1) phi", "estimate"] - 0.4) < \
        4 * var.loc["residual AR(1) phi", "se"]


def test_same_seed_same_data_and_results():
    spec = SimulationSpec(n_dyads=25, n_sessions=6, dropout=0.1, skipped=0.1, missing=0.1)
    a, b = simulate(spec, seed=5), simulate(spec, seed=5)
    sessions = a.frame.groupby("dyad")["session"].agg(["nunique", "max"])
    assert (sessions["nunique"] < sessions["max"]).any()  # some dyads skipped a session
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert not simulate(spec, seed=6).frame["y"].equals(a.frame["y"])
    ra, rb = apim.fit(a, APIMSpec("y", ("x",))), apim.fit(b, APIMSpec("y", ("x",)))
    pd.testing.assert_frame_equal(ra.effects, rb.effects)


def test_power_near_one_for_strong_and_near_alpha_for_null_effects():
    truth = SimulationSpec(n_dyads=40, n_sessions=8, partner_within=(0.0, 0.15))
    result = power(truth, APIMSpec("y", ("x",)), "patient.partner.within",
                   grid={"actor_within": [(0.4, 0.4)]}, replicates=150, seed=1,
                   progress=False)
    null = result.table["power"].iloc[0]
    assert 0.01 <= null <= 0.10, null  # nominal 0.05, MCSE 0.018
    strong = power(truth, APIMSpec("y", ("x",)), "patient.actor.within", replicates=40,
                   seed=2, progress=False)
    assert strong.table["power"].iloc[0] >= 0.95
    assert strong.table["mean_estimate"].iloc[0] == pytest.approx(0.4, abs=0.03)


def test_parallel_runs_equal_serial_runs():
    truth = SimulationSpec(n_dyads=30, n_sessions=5)
    args = dict(truth=truth, analysis=APIMSpec("y", ("x",)),
                hypothesis="patient.partner.within = therapist.partner.within",
                grid={"n_dyads": [20, 30]}, replicates=6, seed=9, progress=False)
    serial = power(**args, n_jobs=1).table
    parallel = power(**args, n_jobs=2).table
    pd.testing.assert_frame_equal(serial, parallel)


def test_dask_cluster_gives_the_same_numbers():
    distributed = pytest.importorskip("dask.distributed")
    truth = SimulationSpec(n_dyads=20, n_sessions=4)
    args = dict(truth=truth, analysis=APIMSpec("y", ("x",)), hypothesis="patient.actor.within",
                replicates=4, seed=3, progress=False)
    serial = power(**args).table
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        on_dask = power(**args, scheduler=cluster.scheduler_address).table
    pd.testing.assert_frame_equal(serial, on_dask)


def test_cli_simulate_and_power(tmp_path, capsys):
    out = tmp_path / "sim.csv"
    assert main(["simulate", str(out), "--dyads", "12", "--sessions", "4", "--seed", "1",
                 "--set", "partner_within=0.3,0.1"]) == 0
    frame = pd.read_csv(out)
    assert frame["dyad"].nunique() == 12 and {"x", "y", "treatment"} <= set(frame.columns)
    figure = tmp_path / "power.png"
    csv = tmp_path / "power.csv"
    assert main(["power", "--hypothesis", "patient.actor.within", "--dyads", "15,25",
                 "--sessions", "4", "--replicates", "3", "--quiet", "--csv", str(csv),
                 "--figure", str(figure)]) == 0
    assert figure.stat().st_size > 1000
    assert list(pd.read_csv(csv)["n_dyads"]) == [15, 25]
    assert main(["simulate", str(out), "--set", "residual_phi=high"]) == 2
    assert "not a valid residual_phi" in capsys.readouterr().err


# ------------------------------------------------------------------ checks before any work
SMALL = SimulationSpec(n_dyads=20, n_sessions=4)


@pytest.fixture
def count_fits(monkeypatch):
    """Count the fits the power module makes (the one that reads the effect names from a
    small data set, and the replicates')."""
    import apim.simulation.power as power_module

    calls = []
    real = power_module.fit

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(power_module, "fit", counting)
    return calls


def test_misspelt_hypothesis_is_a_spec_error_before_any_fit(count_fits):
    with pytest.raises(SpecError) as info:
        power(SMALL, APIMSpec("y", ("x",)), "patient.actor.witin", replicates=50,
              progress=False)
    message = str(info.value)
    assert "unknown effect 'patient.actor.witin'" in message
    assert "did you mean 'patient.actor.within'" in message
    from apim.model.design import build_design

    names = [t.name for t in build_design(simulate(SMALL, 1), APIMSpec("y", ("x",))).terms]
    assert len(names) == 10 and all(name in message for name in names)
    assert count_fits == [1]  # the fit that reads the effect names; no replicate
    with pytest.raises(SpecError, match="unknown effect 'therapist.partner.betwen'"):
        power(SMALL, APIMSpec("y", ("x",)), "patient.partner.within = therapist.partner.betwen",
              replicates=50, progress=False)
    with pytest.raises(SpecError, match="linear"):
        power(SMALL, APIMSpec("y", ("x",)), "patient.actor.within * therapist.actor.within = 0",
              replicates=50, progress=False)
    assert count_fits == [1, 1, 1]  # one effect-name fit per call; no replicate


@pytest.mark.parametrize("kwargs, words", [
    ({"replicates": 0}, "replicates=0 must be a whole number >= 1"),
    ({"alpha": 5}, "alpha=5 must lie strictly between 0 and 1"),
    ({"alpha": 0.0}, "alpha=0.0 must lie strictly between 0 and 1"),
    ({"seed": -1}, "seed=-1 must be a whole number >= 0"),
    ({"n_jobs": 0}, "n_jobs=0 must be a positive whole number or -1"),
    ({"scheduler": "localhost"}, "not a Dask scheduler address"),
    ({"grid": {"n_dyad": [20]}}, "did you mean 'n_dyads'"),
    ({"grid": {"n_dyads": [0, 20]}}, "grid point {'n_dyads': 0}"),
    ({"grid": {"n_dyads": 20}}, "must be a list of values"),
    ({"grid": {"residual_phi": [0.2, 1.5]}}, "residual_phi=1.5 must lie in (-1, 1)"),
])
def test_power_options_are_checked_before_any_fit(count_fits, kwargs, words):
    args = dict(truth=SMALL, analysis=APIMSpec("y", ("x",)),
                hypothesis="patient.actor.within", replicates=3, progress=False)
    with pytest.raises(SpecError) as info:
        power(**{**args, **kwargs})
    assert words in str(info.value)
    assert count_fits == []


def test_a_design_the_data_cannot_carry_fails_at_once(count_fits):
    # every replicate has one treatment arm only: the moderator cannot moderate
    with pytest.raises(SpecError, match="moderator 'treatment' takes a single value"):
        power(SMALL.replace(treatment_share=0.0), APIMSpec("y", ("x",), moderators=("treatment",)),
              "patient.actor.within", replicates=3, progress=False)
    assert len(count_fits) <= 2  # the effect-name fits (small, then full size); no replicate


def test_failed_and_non_converged_replicates_are_counted(monkeypatch):
    import dataclasses

    import apim.simulation.power as power_module
    from apim.errors import FitError

    real_simulate, real_fit = power_module.simulate, power_module.fit

    def failing_simulate(truth, seed):
        key = getattr(seed, "spawn_key", ())
        if key and key[-1] in (1, 4):
            raise FitError(f"replicate {key[-1]} broke")
        if key and key[-1] == 2:
            raise np.linalg.LinAlgError("Singular matrix")
        return real_simulate(truth, seed)

    def sometimes_unconverged(data, spec, **kwargs):
        result = real_fit(data, spec, **kwargs)
        if data.frame["y"].iloc[0] > 5.0:
            return dataclasses.replace(result, engine=dataclasses.replace(result.engine,
                                                                          converged=False))
        return result

    monkeypatch.setattr(power_module, "simulate", failing_simulate)
    monkeypatch.setattr(power_module, "fit", sometimes_unconverged)
    result = power(SMALL, APIMSpec("y", ("x",)), "patient.actor.within", replicates=8,
                   seed=4, progress=False)
    row = result.table.iloc[0]
    assert row["failed"] == 3
    failures = result.failures.set_index("error_type")
    assert failures.loc["FitError", "count"] == 2
    assert failures.loc["FitError", "message"] == "replicate 1 broke"
    assert failures.loc["LinAlgError", "count"] == 1
    seeds = np.random.SeedSequence(4).spawn(8)
    expected_unconverged = sum(real_simulate(SMALL, seeds[j]).frame["y"].iloc[0] > 5.0
                               for j in (0, 3, 5, 6, 7))
    assert row["not_converged"] == expected_unconverged
    assert row["replicates"] == 5 - expected_unconverged


# ------------------------------------------------------------------ checkpoints
def _checkpoint_args(folder):
    return dict(truth=SMALL, analysis=APIMSpec("y", ("x",)), hypothesis="patient.partner.within",
                grid={"n_dyads": [16, 20]}, replicates=5, seed=12, progress=False,
                checkpoint=folder)


def test_checkpoint_resume_gives_the_identical_table(tmp_path, monkeypatch):
    import apim.simulation.power as power_module

    monkeypatch.setattr(power_module, "BLOCK", 4)  # 10 replicates in blocks of 4, 4, 2
    plain = power(**{**_checkpoint_args(None)}).table
    folder = tmp_path / "runs"
    first = power(**_checkpoint_args(folder))
    pd.testing.assert_frame_equal(first.table, plain)
    blocks = sorted(folder.glob("jobs-*.json"))
    assert len(blocks) == 3 and first.resumed == 0
    blocks[1].unlink()
    again = power(**_checkpoint_args(folder))
    assert again.resumed == 6
    pd.testing.assert_frame_equal(again.table, plain)
    full = power(**{**_checkpoint_args(folder), "alpha": 0.2})  # p values are stored
    assert full.resumed == 10
    assert (full.table["power"] >= plain["power"]).all()
    with pytest.raises(SpecError, match="holds a run with other settings"):
        power(**{**_checkpoint_args(folder), "seed": 13})


def test_interrupted_run_resumes(tmp_path, monkeypatch):
    import apim.simulation.power as power_module

    monkeypatch.setattr(power_module, "BLOCK", 4)
    plain = power(**_checkpoint_args(None)).table
    real = power_module._replicate
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(power_module, "_replicate", interrupted)
    folder = tmp_path / "runs"
    with pytest.raises(KeyboardInterrupt):
        power(**_checkpoint_args(folder))
    assert len(list(folder.glob("jobs-*.json"))) == 1  # the first block of 4
    assert not list(folder.glob("*.tmp"))
    monkeypatch.setattr(power_module, "_replicate", real)
    resumed = power(**_checkpoint_args(folder))
    assert resumed.resumed == 4
    pd.testing.assert_frame_equal(resumed.table, plain)


def test_parallel_checkpoint_run_equals_serial(tmp_path, monkeypatch):
    import apim.simulation.power as power_module

    monkeypatch.setattr(power_module, "BLOCK", 4)
    serial = power(**_checkpoint_args(None)).table
    parallel = power(**{**_checkpoint_args(tmp_path / "p"), "n_jobs": 2}).table
    pd.testing.assert_frame_equal(serial, parallel)


# ------------------------------------------------------------------ command line
def test_cli_misspelt_hypothesis_exits_2_listing_names(capsys, count_fits):
    code = main(["power", "--hypothesis", "patient.actor.witin", "--replicates", "100",
                 "--dyads", "20", "--sessions", "4"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "did you mean 'patient.actor.within'" in err
    assert "therapist.partner.between.x" in err and "Traceback" not in err
    assert count_fits == [1]  # the fit that reads the effect names; no replicate


@pytest.mark.parametrize("argv, words", [
    (["simulate", "{tmp}/s.csv", "--dyads", "0"], "--dyads 0: give the number of dyads"),
    (["simulate", "{tmp}/s.csv", "--dyads", "ten"], "--dyads ten"),
    (["simulate", "{tmp}/s.csv", "--sessions", "0"], "--sessions 0"),
    (["simulate", "{tmp}/s.csv", "--seed", "-3"], "--seed -3"),
    (["simulate", "{tmp}/s.txt"], "must end in .csv"),
    (["simulate", "{tmp}/missing/s.csv"], "does not exist"),
    (["simulate", "{tmp}/s.csv", "--set", "actr_within=0.3,0.3"], "did you mean 'actor_within'"),
    (["simulate", "{tmp}/s.csv", "--set", "actor_within=0.3"], "2 values separated by a comma"),
    (["simulate", "{tmp}/s.csv", "--set", "residual_phi=1.5"], "--set residual_phi=1.5: "
     "residual_phi=1.5 must lie in (-1, 1)"),
    (["simulate", "{tmp}/s.csv", "--set", "residual_sd=0.5,-1"], "must not be negative"),
    (["simulate", "{tmp}/s.csv", "--set", "caseload=2.5"], "'2.5' is not a valid caseload"),
    (["simulate", "{tmp}/s.csv", "--set", "missing=nan"], "'nan' is not a valid missing"),
    (["simulate", "{tmp}/s.csv", "--set", "missing=0.1", "--set", "missing=0.2"], "set twice"),
    (["simulate", "{tmp}/s.csv", "--set", "n_dyads=30", "--dyads", "40"], "give it once"),
    (["simulate", "{tmp}/s.csv", "--set", "dropout"], "use FIELD=VALUE"),
    (["power", "--hypothesis", "patient.actor.within", "--alpha", "5"], "--alpha 5: the level"),
    (["power", "--hypothesis", "patient.actor.within", "--alpha", "0"], "--alpha 0"),
    (["power", "--hypothesis", "patient.actor.within", "--replicates", "0"], "--replicates 0"),
    (["power", "--hypothesis", "patient.actor.within", "--dyads", "0,20"], "--dyads 0,20"),
    (["power", "--hypothesis", "patient.actor.within", "--dyads", "20,x"], "--dyads 20,x"),
    (["power", "--hypothesis", "patient.actor.within", "--sessions", "0"], "--sessions 0"),
    (["power", "--hypothesis", "patient.actor.within", "--n-jobs", "0"], "--n-jobs 0"),
    (["power", "--hypothesis", "patient.actor.within", "--n-jobs", "two"], "--n-jobs two"),
    (["power", "--hypothesis", "patient.actor.within", "--scheduler", "my cluster"],
     "--scheduler my cluster: not a Dask scheduler address"),
    (["power", "--hypothesis", "patient.actor.within", "--csv", "{tmp}/p.txt"],
     "--csv {tmp}/p.txt: the power table must end in .csv"),
    (["power", "--hypothesis", "patient.actor.within", "--figure", "{tmp}/p.jpg"],
     "must end in .png or .pdf or .svg"),
    (["power", "--hypothesis", "patient.actor.within", "--figure", "{tmp}/no/p.png"],
     "does not exist"),
    (["power", "--hypothesis", "patient.actor.within", "--checkpoint", "{tmp}/file.csv"],
     "is a file"),
    (["power", "--hypothesis", "patient.actor.within", "--random", "wiggly"],
     "--random wiggly: choose one of none, intercepts, slopes"),
    (["power", "--hypothesis", "patient.actor.within", "--residual", "ar2"], "--residual ar2"),
    (["power", "--hypothesis", "patient.actor.within", "--set", "x_phi=1"], "x_phi=1.0 must lie"),
])
def test_cli_option_misuse_exits_2_with_one_line(tmp_path, capsys, count_fits, argv, words):
    (tmp_path / "file.csv").write_text("x\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert words.replace("{tmp}", str(tmp_path)) in err, err
    assert "Traceback" not in err
    assert count_fits == []
    assert not (tmp_path / "s.csv").exists()


def test_cli_power_checkpoint_resumes(tmp_path, capsys):
    argv = ["power", "--hypothesis", "patient.actor.within", "--dyads", "15", "--sessions",
            "4", "--replicates", "3", "--quiet", "--checkpoint", str(tmp_path / "ck")]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert main(argv) == 0
    second = capsys.readouterr().out
    assert "3 replicates read from" in second
    assert first.splitlines()[:2] == second.splitlines()[:2]  # the same table


# ------------------------------------------------------------------ realistic options
def test_bundled_data_come_from_simulate():
    from apim.datasets import ALLIANCE_SPEC, simulate_alliance

    bundled = pd.read_csv(apim.datasets.alliance_path())
    pd.testing.assert_frame_equal(simulate_alliance().reset_index(drop=True), bundled,
                                  check_dtype=False)
    data = apim.load_alliance()
    assert data.n_dyads == ALLIANCE_SPEC.n_dyads == 240
    frame = data.frame
    arms = frame.drop_duplicates("therapist").groupby("treatment", observed=True).size()
    assert arms.to_dict() == {"CBT": 20, "AFT": 20}
    assert frame.groupby("therapist")["dyad"].nunique().eq(6).all()
    last = frame.groupby("dyad")["session"].max()
    assert last.min() >= 3 and last.max() == 30


def test_realistic_options():
    spec = SimulationSpec(n_dyads=40, n_sessions=6, caseload=4, balanced_arms=True,
                          treatment_share=0.3, treatment_labels=("TAU", "new"),
                          predictor_name="alliance", outcome_name="outcome", decimals=1,
                          bounds=(1.0, 7.0), x_mean=(6.5, 6.5), questionnaire_missing=0.3)
    frame = simulate(spec, seed=2).frame
    assert {"alliance", "outcome"} <= set(frame.columns) and "x" not in frame.columns
    per_therapist = frame.drop_duplicates("therapist")["treatment"]
    assert (per_therapist == "new").sum() == 3  # round(0.3 * 10 therapists)
    values = frame[["alliance", "outcome"]].stack().dropna()
    assert values.between(1, 7).all() and values.max() == 7.0
    np.testing.assert_allclose(values, values.round(1))
    both_missing = frame["alliance"].isna() & frame["outcome"].isna()
    assert both_missing.mean() > 0.1  # a member's whole questionnaire is missing
    # the defaults keep their random streams: new options are drawn only when asked
    base = SimulationSpec(n_dyads=10, n_sessions=4)
    renamed = simulate(base.replace(predictor_name="a", outcome_name="b"), seed=3).frame
    plain = simulate(base, seed=3).frame
    np.testing.assert_array_equal(renamed["b"], plain["y"])
    with pytest.raises(SpecError, match="must be two different"):
        SimulationSpec(predictor_name="y")
    with pytest.raises(SpecError, match="bounds"):
        SimulationSpec(bounds=(7.0, 1.0))


def test_partner_slopes_and_trend_are_recovered():
    truth = SimulationSpec(n_dyads=200, n_sessions=12, caseload=0, treatment_share=0.0,
                           slope_sd=(0.0, 0.0), partner_slope_sd=(0.3, 0.0),
                           x_session_slope=0.05, intercept_sd=(0.4, 0.4))
    spec = APIMSpec("y", ("x",), covariance=CovarianceSpec(random="slopes"))
    result = apim.fit(simulate(truth, seed=8), spec)
    var = result.variance
    name = "dyad sd(patient.partner.within.x)"
    assert abs(var.loc[name, "estimate"] - 0.3) < 4 * var.loc[name, "se"]
    eff = result.effects
    for term, value in true_effects(truth).items():
        if term in eff.index:
            assert abs(eff.loc[term, "estimate"] - value) < 4 * eff.loc[term, "se"], term
