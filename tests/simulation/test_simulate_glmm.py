"""Simulation and power of binary and ordinal outcomes (the generalized APIM).

References: the Gaussian draws of earlier versions (tests/reference/simulate_default.csv,
made before the families existed); closed-form category probabilities (scipy's logistic
and normal distribution functions, not the engine's links); simulation truth recovered
by the generalized APIM over replicates (mean estimate within Monte Carlo error); a
null effect rejected at about the nominal rate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import apim
from apim.errors import SpecError
from apim.model.generalized_spec import GeneralizedAPIMSpec
from apim.simulation.power import power
from apim.simulation.simulate import (
    SimulationSpec,
    simulate,
    true_effects,
    true_thresholds,
)

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
BINARY = dict(family="binomial", intercept=(-1.0, -0.5), caseload=0)
CUTS = ((-1.0, 1.0), (-0.5, 1.5))
ORDINAL = dict(family="ordinal", thresholds=CUTS, caseload=0)


def test_gaussian_family_gives_the_earlier_draws():
    # tests/reference/simulate_default.py made these values before SimulationSpec had a
    # family; family="gaussian" (the default) must give them again: ids exactly, ratings
    # to 1e-10 (the comparison of tests/model/test_latent.py)
    spec = SimulationSpec(n_dyads=30, n_sessions=8, missing=0.1, dropout=0.1, skipped=0.1,
                          residual_phi=0.3, family="gaussian")
    frame = simulate(spec, seed=3).frame
    earlier = pd.read_csv(REFERENCE / "simulate_default.csv")
    for column in ("row", "dyad", "session", "therapist"):
        assert frame[column].tolist() == earlier[column].tolist(), column
    for column in ("x", "treatment", "y"):
        np.testing.assert_allclose(frame[column].to_numpy(float),
                                   earlier[column].to_numpy(float), rtol=0, atol=1e-10)


def test_same_seed_same_events_and_the_gaussian_predictor():
    common = dict(n_dyads=25, n_sessions=6, dropout=0.1, skipped=0.1, missing=0.1)
    gaussian = simulate(SimulationSpec(**common), seed=5).frame
    for extra in (BINARY, ORDINAL):
        spec = SimulationSpec(**common, **{**extra, "caseload": 6})
        a, b = simulate(spec, seed=5).frame, simulate(spec, seed=5).frame
        pd.testing.assert_frame_equal(a, b)
        assert not simulate(spec, seed=6).frame["y"].equals(a["y"])
        # the draws before the outcome are the Gaussian simulation's
        pd.testing.assert_frame_equal(a.drop(columns="y"), gaussian.drop(columns="y"))
        assert a["y"].isna().equals(gaussian["y"].isna())
        categories = 2 if extra is BINARY else 3
        assert set(a["y"].dropna().unique()) == set(map(float, range(categories)))


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_category_rates_follow_the_link(link):
    # no predictor effects and no random intercepts: every row has P(y = 1) = F(b0_r)
    # (binary) and P(y <= k) = F(theta_rk) (ordinal), F from scipy
    cdf = stats.logistic.cdf if link == "logit" else stats.norm.cdf
    quiet = dict(n_dyads=400, n_sessions=10, link=link, intercept_sd=(0.0, 0.0),
                 actor_within=(0.0, 0.0), partner_within=(0.0, 0.0),
                 actor_between=(0.0, 0.0), partner_between=(0.0, 0.0))
    events = simulate(SimulationSpec(**quiet, **BINARY), seed=8).frame
    ranked = simulate(SimulationSpec(**quiet, **ORDINAL), seed=8).frame
    n = 400 * 10
    for k, role in enumerate(("patient", "therapist")):
        p = cdf(BINARY["intercept"][k])
        rate = events.loc[events["role"] == role, "y"].mean()
        assert abs(rate - p) < 4 * np.sqrt(p * (1 - p) / n), (role, rate, p)
        y = ranked.loc[ranked["role"] == role, "y"]
        for cut, theta in enumerate(CUTS[k]):
            p = cdf(theta)
            assert abs((y <= cut).mean() - p) < 4 * np.sqrt(p * (1 - p) / n), (role, cut)


def test_random_intercepts_spread_the_dyads_rates():
    # a random intercept shifts a member's whole series: a larger intercept SD spreads the
    # dyads' event rates (their between-dyad variance grows)
    def spread(sd):
        frame = simulate(SimulationSpec(n_dyads=300, n_sessions=20, **BINARY,
                                        intercept_sd=(sd, sd)), seed=2).frame
        return frame.groupby("dyad")["y"].mean().var()
    assert spread(1.5) > 2 * spread(0.0)


def test_gaussian_only_fields_and_family_fields_are_refused():
    cases = [
        (dict(**BINARY, residual_sd=(1.0, 1.0), residual_phi=0.2),
         ["residual_sd, residual_phi apply to a Gaussian outcome only"]),
        (dict(**ORDINAL, slope_sd=(0.1, 0.1)), ["slope_sd applies to a Gaussian"]),
        (dict(family="binomial"), ["needs its own intercept", "(4.6, 4.4)"]),
        (dict(**ORDINAL, intercept=(0.0, 0.0)), ["intercept=(0.0, 0.0) does not apply",
                                                 "thresholds take"]),
        (dict(family="ordinal"), ["thresholds=None", "cut-points per role"]),
        (dict(family="ordinal", thresholds=((-1.0, 1.0), (0.5,))), ["same number"]),
        (dict(family="ordinal", thresholds=((1.0, -1.0), (0.0, 1.0))),
         ["thresholds of patient (1.0, -1.0) must be finite and increasing"]),
        (dict(**BINARY, thresholds=CUTS), ["apply to an ordinal outcome"]),
        (dict(link="probit"), ["link='probit' applies to a binary or ordinal outcome"]),
        (dict(family="poisson"), ["family='poisson' is not one of"]),
    ]
    for kwargs, words in cases:
        with pytest.raises(SpecError) as info:
            SimulationSpec(**kwargs)
        for word in words:
            assert word in str(info.value), (kwargs, str(info.value))
    # at their defaults they are accepted; decimals and bounds round the predictor only
    spec = SimulationSpec(**BINARY, n_dyads=10, n_sessions=4, decimals=1, bounds=(4.0, 6.0))
    frame = simulate(spec, seed=1).frame
    x = frame["x"].dropna()
    assert np.allclose(x, x.round(1)) and x.between(4.0, 6.0).all()
    assert set(frame["y"].dropna().unique()) <= {0.0, 1.0}


def test_true_effects_are_named_as_the_generalized_fit_names_them():
    for extra, family in ((BINARY, "binomial"), (ORDINAL, "ordinal")):
        spec = SimulationSpec(n_dyads=40, n_sessions=6, **extra)
        result = apim.fit(simulate(spec, seed=4),
                          GeneralizedAPIMSpec("y", ("x",), family=family, nagq=1))
        truth = true_effects(spec)
        assert set(result.coef.index) <= set(truth), set(result.coef.index) - set(truth)
        if family == "ordinal":
            pd.testing.assert_frame_equal(
                result.thresholds[["role", "category"]],
                true_thresholds(spec)[["role", "category"]])
            assert "patient.intercept" not in truth


def _recovery(extra: dict, family: str, replicates: int) -> pd.DataFrame:
    spec = SimulationSpec(n_dyads=100, n_sessions=8, partner_within=(0.3, 0.15), **extra)
    analysis = GeneralizedAPIMSpec("y", ("x",), family=family, nagq=1)
    rows = []
    for seed in np.random.SeedSequence(2024).spawn(replicates):
        result = apim.fit(simulate(spec, seed), analysis)
        assert result.statistics.converged
        row = dict(result.coef)
        row.update({f"{r}|{c}": v for r, c, v in result.thresholds[
            ["role", "category", "estimate"]].itertuples(index=False)})
        row.update({f"se {k}": v for k, v in result.effects["se"].items()})
        rows.append(row)
    frame = pd.DataFrame(rows)
    truth = true_effects(spec)
    truth.update({f"{r}|{c}": v for r, c, v in true_thresholds(spec).itertuples(index=False)})
    names = [c for c in frame.columns if not c.startswith("se ")]
    mean, sd = frame[names].mean(), frame[names].std()
    return pd.DataFrame({"truth": [truth[n] for n in names], "mean": mean, "sd": sd,
                         "mean_se": [frame.get(f"se {n}", pd.Series(np.nan)).mean()
                                     for n in names]}, index=names)


@pytest.mark.parametrize("extra,family", [(BINARY, "binomial"), (ORDINAL, "ordinal")])
def test_truth_is_recovered_over_replicates(extra, family):
    # mean estimate within 4 Monte Carlo SEs of the truth for every effect (and threshold),
    # and the model SEs match the spread of the estimates
    replicates = 24
    table = _recovery(extra, family, replicates)
    z = (table["mean"] - table["truth"]) / (table["sd"] / np.sqrt(replicates))
    assert (z.abs() < 4).all(), table.assign(z=z)
    ratio = (table["sd"] / table["mean_se"]).dropna()
    assert 0.7 < ratio.mean() < 1.35, ratio


def test_power_of_a_null_partner_effect_is_near_alpha():
    # 100 replicates of a null patient partner effect on event occurrence: rejections
    # Binomial(100, 0.05) if the z test holds its level; 1..11 holds 99% of that law
    truth = SimulationSpec(n_dyads=40, n_sessions=8, partner_within=(0.0, 0.3), **BINARY)
    result = power(truth, GeneralizedAPIMSpec("y", ("x",), nagq=1),
                   "patient.partner.within", replicates=100, seed=3, progress=False)
    row = result.table.iloc[0]
    assert row["replicates"] + row["failed"] + row["not_converged"] == 100
    assert row["replicates"] >= 95, result.failures
    assert 0.01 <= row["power"] <= 0.11, row
    assert abs(row["mean_estimate"]) < 4 * 0.2 / np.sqrt(row["replicates"])


def test_ordinal_power_runs_in_parallel_and_resumes(tmp_path):
    truth = SimulationSpec(n_dyads=30, n_sessions=6, partner_within=(0.9, 0.9), **ORDINAL)
    args = dict(truth=truth, analysis=GeneralizedAPIMSpec("y", ("x",), family="ordinal",
                                                          nagq=1),
                hypothesis="therapist.partner.within", grid={"n_dyads": [30, 60]},
                replicates=4, seed=5, progress=False)
    serial = power(**args, checkpoint=tmp_path / "ck").table
    assert serial["power"].iloc[1] >= 0.75, serial  # z about 4.5 at 60 dyads
    parallel = power(**args, n_jobs=2).table
    pd.testing.assert_frame_equal(serial, parallel)
    resumed = power(**args, checkpoint=tmp_path / "ck")
    assert resumed.resumed == 8
    pd.testing.assert_frame_equal(serial, resumed.table)


def test_power_refuses_an_analysis_of_another_family():
    with pytest.raises(SpecError, match="simulated outcome is gaussian"):
        power(SimulationSpec(n_dyads=20, n_sessions=4), GeneralizedAPIMSpec("y", ("x",)),
              "patient.partner.within", replicates=2, progress=False)
    with pytest.raises(SpecError, match="binomial APIM, but the simulated outcome is ordinal"):
        power(SimulationSpec(n_dyads=20, n_sessions=4, **ORDINAL),
              GeneralizedAPIMSpec("y", ("x",)), "patient.partner.within", replicates=2,
              progress=False)
    with pytest.raises(SpecError, match="binomial APIM, but the simulated outcome is gaussian"):
        power(SimulationSpec(n_dyads=20, n_sessions=4, **BINARY),
              GeneralizedAPIMSpec("y", ("x",)), "patient.partner.within", replicates=2,
              grid={"family": ["binomial", "gaussian"]}, progress=False)
