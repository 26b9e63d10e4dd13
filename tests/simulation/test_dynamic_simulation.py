"""Simulation and power for the dynamic APIM: the simulated process has the moments of its
definition (closed forms), missing ratings and dropout as asked, bad designs are refused,
and the power is reproducible from its seeds."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import apim
from apim.errors import SpecError
from apim.inference.wald import wald_test
from apim.simulation.dynamic import DynamicSimulationSpec, dynamic_power, simulate_dynamic


def _grid(data: apim.SessionData, sessions: int) -> np.ndarray:
    frame = data.frame
    n = frame["dyad"].nunique()
    y = np.full((n, sessions, 4), np.nan)
    dyad = frame["dyad"].to_numpy() - 1
    session = frame["session"].to_numpy() - 1
    role = (frame["role"] == "therapist").to_numpy().astype(int)
    y[dyad, session, role] = frame["x"].to_numpy()
    y[dyad, session, 2 + role] = frame["y"].to_numpy()
    return y


def test_simulated_moments_follow_the_definition():
    spec = DynamicSimulationSpec(n_dyads=20000, n_sessions=2)
    y = _grid(simulate_dynamic(spec, seed=3), 2)
    phi, sw, sb = (np.array(m) for m in (spec.phi, spec.sigma_w, spec.sigma_b))
    gamma = sw.copy()
    for _ in range(500):  # the stationary covariance by iteration (closed form's fixed point)
        gamma = phi @ gamma @ phi.T + sw
    first, second = y[:, 0], y[:, 1]
    assert np.allclose(first.mean(axis=0), spec.means, atol=0.05)
    assert np.allclose(np.cov(first, rowvar=False), sb + gamma, atol=0.08)
    lag = (second - second.mean(0)).T @ (first - first.mean(0)) / (len(first) - 1)
    assert np.allclose(lag, sb + phi @ gamma, atol=0.08)


def test_same_seed_same_data_and_missingness():
    spec = DynamicSimulationSpec(n_dyads=300, n_sessions=6, p_missing=0.2, dropout=0.5)
    a, b = simulate_dynamic(spec, seed=5), simulate_dynamic(spec, seed=5)
    assert a.frame.equals(b.frame)
    assert not a.frame["y"].equals(simulate_dynamic(spec, seed=6).frame["y"])
    rated = a.frame[["x", "y"]].notna().to_numpy().mean()
    assert 0.77 < rated < 0.83
    last = a.frame.groupby("dyad")["session"].max()
    assert 0.35 < (last < 6).mean() < 0.6 and last.min() >= 1


@pytest.mark.parametrize("kwargs, message", [
    ({"phi": ((1.1, 0, 0, 0), (0, 0.4, 0, 0), (0, 0, 0.4, 0), (0, 0, 0, 0.4))},
     "phi is not stable"),
    ({"sigma_w": ((1, 2, 0, 0), (2, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1))},
     "sigma_w must be a symmetric positive semi-definite"),
    ({"phi": ((0.4, 0), (0, 0.4))}, "phi must be a 4 x 4 matrix"),
    ({"p_missing": 1.0}, r"p_missing=1.0 must be in \[0, 1\)"),
])
def test_bad_designs_are_refused(kwargs, message):
    with pytest.raises(SpecError, match=message):
        DynamicSimulationSpec(**kwargs)


def test_power_is_reproducible_from_its_seeds():
    truth = DynamicSimulationSpec(n_dyads=40, n_sessions=5)
    result = dynamic_power(truth, "patient.partner.lagged.x", replicates=2, seed=11)
    assert result.replicates == 2 and result.hypothesis.startswith("patient.partner")
    seeds = np.random.SeedSequence(11).spawn(2)
    for j, seed in enumerate(seeds):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = apim.fit(simulate_dynamic(truth, seed), apim.DynamicAPIMSpec("y", ("x",)))
        test = wald_test(fitted, "patient.partner.lagged.x")
        assert result.table["p"].iloc[j] == pytest.approx(test.p, rel=1e-9)
    assert result.power == pytest.approx(float((result.table["p"] < 0.05).mean()))
    with pytest.raises(SpecError, match="patient.partner.lagged.xx"):
        dynamic_power(truth, "patient.partner.lagged.xx", replicates=1)
