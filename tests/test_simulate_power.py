"""Simulation and power: truth recovered, power near 1 and near alpha, seeds, parallel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import apim
from apim import APIMSpec, CovarianceSpec
from apim.cli import main
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
