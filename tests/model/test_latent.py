"""The multivariate engine and the latent APIM: dense oracle, analytic gradients, closed
forms, API (effects, multi-group, Wald, JSON, reliability), invariances, bad input."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from latent_support import long_from_wide
from multivariate_oracle import dense_loglik

import apim
from apim import report
from apim.data.validate import ROW
from apim.engine.multivariate.estimate import fit_multivariate
from apim.engine.multivariate.likelihood import evaluate, prepare
from apim.engine.multivariate.parameters import natural_gradient
from apim.errors import DataError, SmallSampleWarning, SpecError
from apim.inference.arms import arm_differences, compare_between
from apim.inference.wald import wald_test
from apim.model.fitted import EFFECT_COLUMNS
from apim.model.latent import (
    LatentAPIMResult,
    LatentAPIMSpec,
    person_mean_reliability,
    warn_if_unreliable,
)
from apim.simulation.simulate import SimulationSpec, simulate

REFERENCE = Path(__file__).resolve().parents[1] / "reference"

K = 4


def unbalanced(seed: int, n_clusters: int = 12, missing: float = 0.2):
    """Clusters with 1-5 occasions at irregular occasion numbers, ratings missing."""
    rng = np.random.default_rng(seed)
    cluster, occasion = [], []
    for d in range(n_clusters):
        n = rng.integers(1, 6)
        for o in np.sort(rng.choice(np.arange(1, 9), n, replace=False)):
            cluster.append(d)
            occasion.append(o)
    cl, oc = np.array(cluster), np.array(occasion)
    y = rng.normal(size=(len(cl), K)) + rng.normal(size=(n_clusters, K))[cl]
    y[rng.random(y.shape) < missing] = np.nan
    a, b = rng.normal(size=(K, K)), rng.normal(size=(K, K))
    sw, sb = a @ a.T / K + 0.5 * np.eye(K), b @ b.T / K
    return y, cl, oc, sw, sb, rng.normal(size=K)


@pytest.mark.parametrize("phi", [None, 0.4, -0.3])
@pytest.mark.parametrize("reml", [False, True])
@pytest.mark.parametrize("seed", [1, 2])
def test_likelihood_equals_dense_oracle(phi, reml, seed):
    y, cl, oc, sw, sb, mu = unbalanced(seed)
    data = prepare(y, cl, oc)
    got = evaluate(data, sw, sb, phi, reml=reml).loglik
    assert got == pytest.approx(dense_loglik(y, cl, oc, sw, sb, phi, reml=reml), abs=1e-9)
    if not reml:
        got = evaluate(data, sw, sb, phi, mu=mu).loglik
        assert got == pytest.approx(dense_loglik(y, cl, oc, sw, sb, phi, mu=mu), abs=1e-9)


def test_singular_between_covariance_is_allowed():
    y, cl, oc, sw, _, _ = unbalanced(3)
    v = np.array([1.0, 0.5, -0.2, 0.3])
    sb = np.outer(v, v)  # rank one
    got = evaluate(prepare(y, cl, oc), sw, sb).loglik
    assert got == pytest.approx(dense_loglik(y, cl, oc, sw, sb), abs=1e-9)


@pytest.mark.parametrize("phi", [None, 0.4])
@pytest.mark.parametrize("reml", [False, True])
def test_analytic_gradient_equals_finite_differences(phi, reml):
    y, cl, oc, sw, sb, mu = unbalanced(4)
    data = prepare(y, cl, oc)
    ar1 = phi is not None
    idx = np.tril_indices(K)
    point = np.concatenate(([] if reml else [mu]) + [sw[idx], sb[idx]]
                           + ([[phi]] if ar1 else []))
    analytic = natural_gradient(data, point, ar1, reml)

    def loglik(x):
        off = 0 if reml else K
        h = K * (K + 1) // 2
        w, b = np.zeros((K, K)), np.zeros((K, K))
        w[idx], b[idx] = x[off:off + h], x[off + h:off + 2 * h]
        w, b = w + np.tril(w, -1).T, b + np.tril(b, -1).T
        return evaluate(data, w, b, x[-1] if ar1 else None, mu=None if reml else x[:K],
                        reml=reml).loglik

    numeric = np.array([(loglik(point + e) - loglik(point - e)) / 2e-6
                        for e in 1e-6 * np.eye(len(point))])
    assert np.allclose(analytic, numeric, atol=1e-6)


def balanced(seed: int = 5, d: int = 60, n: int = 6):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(K, K))
    cl, oc = np.repeat(np.arange(d), n), np.tile(np.arange(1, n + 1), d)
    y = 1.5 * rng.normal(size=(d, K))[cl] @ a + rng.normal(size=(d * n, K)) @ a.T
    return y, cl, oc


@pytest.mark.parametrize("method", ["ML", "REML"])
def test_balanced_closed_form(method):
    y, cl, oc = balanced()
    d, n = 60, 6
    fit = fit_multivariate(y, cl, oc, method=method)
    cube = y.reshape(d, n, K)
    means = cube.mean(axis=1)
    dev = cube - means[:, None]
    pooled = np.einsum("dtk,dtl->kl", dev, dev) / (d * (n - 1))
    between = np.cov(means.T, bias=method == "ML") - pooled / n
    assert np.linalg.eigvalsh(between).min() > 0  # interior solution
    assert fit.converged
    assert np.allclose(fit.sigma_w, pooled, atol=1e-8)
    assert np.allclose(fit.sigma_b, between, atol=1e-8)
    assert np.allclose(fit.mu, y.mean(axis=0))


def test_fit_with_missing_ratings_maximises_the_dense_likelihood():
    y, cl, oc, *_ = unbalanced(6, n_clusters=40, missing=0.15)
    fit = fit_multivariate(y, cl, oc, method="ML")
    assert fit.converged
    best = dense_loglik(y, cl, oc, fit.sigma_w, fit.sigma_b)
    assert fit.loglik == pytest.approx(best, abs=1e-8)
    # a nudge in any direction lowers the dense likelihood
    rng = np.random.default_rng(0)
    for _ in range(3):
        e = rng.normal(size=(K, K)) * 1e-3
        assert dense_loglik(y, cl, oc, fit.sigma_w + e @ e.T, fit.sigma_b) < best


def test_ar1_fit_recovers_phi():
    spec = SimulationSpec(n_dyads=150, n_sessions=8, caseload=0, x_phi=0.5,
                          residual_phi=0.5, outcome_from="latent")
    result = apim.fit(simulate(spec, seed=3), LatentAPIMSpec("y", ("x",), ar1=True))
    fit = result.fits["all"]
    se = np.sqrt(fit.cov[-1, -1])
    assert abs(fit.phi - 0.5) < 3 * se and se < 0.05


# ---------------------------------------------------------------------------- API
@pytest.fixture(scope="module")
def sim_data():
    spec = SimulationSpec(n_dyads=120, n_sessions=6, caseload=0, x_phi=0.0, missing=0.05,
                          treatment_share=0.5, outcome_from="latent")
    return simulate(spec, seed=21)


@pytest.fixture(scope="module")
def sim_fit(sim_data):
    return apim.fit(sim_data, LatentAPIMSpec("y", ("x",)))


def test_effects_table_has_apim_columns_and_names(sim_fit):
    eff = sim_fit.effects
    assert list(eff.columns) == EFFECT_COLUMNS
    assert isinstance(sim_fit, LatentAPIMResult)
    expected = {f"{r}.{e}.{lv}.x" for r in ("patient", "therapist")
                for e in ("actor", "partner") for lv in ("within", "between")}
    assert expected | {"patient.intercept", "therapist.intercept"} == set(eff.index)
    assert (eff["df"] == np.inf).all()
    assert np.allclose(eff["t"], eff["estimate"] / eff["se"])


def test_coefficients_are_the_implied_regressions(sim_fit):
    fit = sim_fit.fits["all"]
    for level, s in (("within", fit.sigma_w), ("between", fit.sigma_b)):
        b = s[2:, :2] @ np.linalg.inv(s[:2, :2])
        eff = sim_fit.effects
        assert eff.loc[f"patient.actor.{level}.x", "estimate"] == pytest.approx(b[0, 0])
        assert eff.loc[f"patient.partner.{level}.x", "estimate"] == pytest.approx(b[0, 1])
        assert eff.loc[f"therapist.actor.{level}.x", "estimate"] == pytest.approx(b[1, 1])
        assert eff.loc[f"therapist.partner.{level}.x", "estimate"] == pytest.approx(b[1, 0])


def test_every_rating_enters(sim_data, sim_fit):
    frame = sim_data.frame
    assert sim_fit.statistics.n_obs == int(frame[["x", "y"]].notna().sum().sum())


def test_invariant_to_row_order_and_dyad_labels(sim_data, sim_fit):
    frame = sim_data.frame.sample(frac=1.0, random_state=2)
    frame = frame.assign(dyad=frame["dyad"].map(lambda d: f"couple-{1000 - d}"))
    data = apim.SessionData.from_long(frame.drop(columns=ROW, errors="ignore"),
                                      dyad="dyad", session="session", role="role",
                                      roles=sim_data.roles)
    other = apim.fit(data, LatentAPIMSpec("y", ("x",)))
    assert np.allclose(other.coef, sim_fit.coef, atol=1e-7)
    assert other.statistics.loglik == pytest.approx(sim_fit.statistics.loglik, abs=1e-7)


def test_rescaled_outcome_scales_effects(sim_data, sim_fit):
    frame = sim_data.frame.assign(y=sim_data.frame["y"] * 10)
    other = apim.fit(sim_data.replace(frame), LatentAPIMSpec("y", ("x",)))
    slopes = [n for n in sim_fit.coef.index if ".intercept" not in n]
    assert np.allclose(other.coef[slopes], 10 * sim_fit.coef[slopes], rtol=1e-5)


def test_reml_fit_and_reliability(sim_data, sim_fit):
    reml = apim.fit(sim_data, LatentAPIMSpec("y", ("x",), method="REML"))
    assert reml.statistics.converged
    rel = sim_fit.reliability
    row = rel[(rel["variable"] == "x") & (rel["role"] == "patient")].iloc[0]
    fit = sim_fit.fits["all"]
    n = sim_fit.counts["all"][:, 0]
    expected = np.mean(fit.sigma_b[0, 0] / (fit.sigma_b[0, 0] + fit.sigma_w[0, 0] / n))
    assert row["reliability"] == pytest.approx(expected)


def test_multigroup_equals_separate_fits_and_arm_tests(sim_data):
    result = apim.fit(sim_data, LatentAPIMSpec("y", ("x",), moderator="treatment"))
    assert set(result.fits) == {"0", "1"}
    for arm in ("0", "1"):
        frame = sim_data.frame[sim_data.frame["treatment"] == float(arm)]
        alone = apim.fit(sim_data.replace(frame.reset_index(drop=True)),
                         LatentAPIMSpec("y", ("x",)))
        for name, value in alone.coef.items():
            assert result.coef[f"{name}[{arm}]"] == pytest.approx(value, abs=1e-6)
        assert result.effects.loc[f"patient.actor.between.x[{arm}]", "group"] == arm
        assert result.effects.loc[f"patient.actor.between.x[{arm}]", "by"] == ""
    assert result.statistics.loglik == pytest.approx(sum(f.loglik for f in result.fits.values()))
    table = arm_differences(result)
    row = table[table["effect"] == "patient.actor.within.x"].iloc[0]
    diff = result.coef["patient.actor.within.x[1]"] - result.coef["patient.actor.within.x[0]"]
    se = np.hypot(result.effects.loc["patient.actor.within.x[1]", "se"],
                  result.effects.loc["patient.actor.within.x[0]", "se"])
    assert row["difference"] == pytest.approx(diff) and row["se"] == pytest.approx(se)
    joint = table[table["effect"] == "all actor and partner effects"].iloc[0]
    assert 0 <= joint["p"] <= 1


def test_wald_tests(sim_fit):
    test = wald_test(sim_fit, "patient.actor.between = patient.actor.within")
    row_b = sim_fit.effects.loc["patient.actor.between.x"]
    row_w = sim_fit.effects.loc["patient.actor.within.x"]
    cov = sim_fit.cov_coef.loc["patient.actor.between.x", "patient.actor.within.x"]
    se = np.sqrt(row_b["se"] ** 2 + row_w["se"] ** 2 - 2 * cov)
    assert test.estimate[0] == pytest.approx(row_b["estimate"] - row_w["estimate"])
    assert test.se[0] == pytest.approx(se)
    single = wald_test(sim_fit, "patient.actor.within = 0")
    assert single.p == pytest.approx(sim_fit.effects.loc["patient.actor.within.x", "p"])
    joint = wald_test(sim_fit, "patient.actor.within = 0; therapist.actor.within = 0")
    assert joint.df_num == 2 and joint.chi2 > single.chi2
    with pytest.raises(SpecError, match="unknown effect"):
        wald_test(sim_fit, "patient.actor.sideways = 0")


def test_exports(sim_fit):
    data = json.loads(report.to_json(sim_fit))
    assert data["model"] == "latent APIM" and data["converged"]
    assert {r["term"] for r in data["fixed"]} == set(sim_fit.coef.index)
    assert np.allclose(data["groups"]["all"]["sigma_between"], sim_fit.fits["all"].sigma_b)
    assert LatentAPIMSpec.from_dict(report.to_dict(sim_fit)["specification"]) == sim_fit.spec
    markdown = report.to_markdown(sim_fit)
    assert markdown.startswith("**Fixed effects**")
    effects_part = markdown.split("**Variance components**")[0]
    assert effects_part.count("\n| ") == len(sim_fit.effects) + 2  # header, rule, effects
    assert "| z |" in effects_part and "| df |" not in effects_part
    assert "\\begin{table}" in report.to_latex(sim_fit) and "<table" in report.to_html(sim_fit)
    assert "Reliability of person means" in sim_fit.summary()


def test_side_by_side_between_table(sim_data, sim_fit):
    observed = apim.fit(sim_data, apim.APIMSpec("y", ("x",)))
    table = compare_between(observed, sim_fit)
    assert len(table) == 4
    assert table.loc["patient.actor.between.x", "observed"] == pytest.approx(
        observed.effects.loc["patient.actor.between.x", "estimate"])
    assert table.loc["patient.actor.between.x", "latent"] == pytest.approx(
        sim_fit.effects.loc["patient.actor.between.x", "estimate"])


def test_moment_reliability_and_warning():
    few = simulate(SimulationSpec(n_dyads=800, n_sessions=3, caseload=0, x_phi=0.0,
                                  x_between_sd=(0.5, 0.5), x_within_sd=(0.8, 0.8)), seed=4)
    table = person_mean_reliability(few, "x")
    # true lambda = .25 / (.25 + .64 / 3) = .54
    assert np.allclose(table["reliability"], 0.25 / (0.25 + 0.64 / 3), atol=0.05)
    with pytest.warns(SmallSampleWarning, match="LatentAPIMSpec"):
        warn_if_unreliable(few, ["x"])
    from apim.data.hints import interface

    with interface("cli"), pytest.warns(SmallSampleWarning) as caught:  # the user's terms
        warn_if_unreliable(few, ["x"])
    assert "add --centring latent" in str(caught[0].message)
    assert "LatentAPIMSpec" not in str(caught[0].message)
    many = simulate(SimulationSpec(n_dyads=50, n_sessions=30, caseload=0), seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_unreliable(many, ["x"])


def test_simulate_default_reproduces_earlier_data():
    # the values this design's data had at commit 20a73fe (tests/reference/
    # simulate_default.py): layout and ids exactly, ratings to 1e-10 (the
    # observed split is now computed with numpy on the session grid, which moves the outcome
    # by up to 5e-15). Values, not a hash of bytes: those depend on library versions.
    spec = SimulationSpec(n_dyads=30, n_sessions=8, missing=0.1, dropout=0.1, skipped=0.1,
                          residual_phi=0.3)
    frame = simulate(spec, seed=3).frame
    earlier = pd.read_csv(REFERENCE / "simulate_default.csv")
    assert list(frame.columns) == list(earlier.columns)
    for column in ("row", "dyad", "session", "therapist"):
        assert frame[column].tolist() == earlier[column].tolist(), column
    assert frame["role"].astype(str).tolist() == earlier["role"].astype(str).tolist()
    for column in ("x", "treatment", "y"):
        np.testing.assert_allclose(frame[column].to_numpy(float),
                                   earlier[column].to_numpy(float), rtol=0, atol=1e-10,
                                   err_msg=column)


def test_latent_outcome_recovers_latent_effects():
    spec = SimulationSpec(n_dyads=2000, n_sessions=4, caseload=0, x_phi=0.0,
                          outcome_from="latent")
    eff = apim.fit(simulate(spec, seed=8), LatentAPIMSpec("y", ("x",))).effects
    for name, truth in (("patient.actor.between.x", 0.5), ("therapist.partner.between.x", 0.2),
                        ("patient.actor.within.x", 0.4)):
        assert abs(eff.loc[name, "estimate"] - truth) < 3 * eff.loc[name, "se"]


def test_bad_input(sim_data):
    with pytest.raises(SpecError, match="at least one predictor"):
        LatentAPIMSpec("y", ())
    with pytest.raises(SpecError, match="used twice"):
        LatentAPIMSpec("y", ("y",))
    frame = sim_data.frame.copy()
    frame.loc[frame.index[0], "treatment"] = 1 - frame.loc[frame.index[0], "treatment"]
    with pytest.raises(DataError, match="changes within dyads"):
        apim.fit(sim_data.replace(frame), LatentAPIMSpec("y", ("x",), moderator="treatment"))
    with pytest.raises(Exception, match="nothere"):
        apim.fit(sim_data, LatentAPIMSpec("y", ("nothere",)))
    one = sim_data.frame.assign(treatment=1.0)
    with pytest.raises(SpecError, match="single value"):
        apim.fit(sim_data.replace(one), LatentAPIMSpec("y", ("x",), moderator="treatment"))


def test_wide_round_trip_helper():
    table = pd.DataFrame({"dyad": [1, 1, 2], "session": [1, 2, 1], "xP": [1.0, 2.0, 3.0],
                          "xT": [2.0, 1.0, 0.0], "yP": [0.5, 0.1, 0.2],
                          "yT": [0.3, 0.2, 0.9]})
    data = long_from_wide(table)
    assert len(data.frame) == 6 and data.roles == ("patient", "therapist")


def test_boundary_fit_stays_positive_semidefinite():
    rng = np.random.default_rng(1)
    d, n = 30, 4
    cl, oc = np.repeat(np.arange(d), n), np.tile(np.arange(1, n + 1), d)
    y = rng.normal(size=(d * n, K))
    y[:, :2] += rng.normal(size=(d, 2))[cl]  # variables 2 and 3 vary within dyads only
    fit = fit_multivariate(y, cl, oc, method="ML")
    assert fit.converged and "the between covariance matrix is singular" in fit.boundary
    assert np.linalg.eigvalsh(fit.sigma_b).min() > -1e-8
    best = dense_loglik(y, cl, oc, fit.sigma_w, fit.sigma_b)
    assert fit.loglik == pytest.approx(best, abs=1e-8)
    for _ in range(5):  # admissible nudges do not improve the likelihood
        e = rng.normal(size=(K, K)) * 1e-2
        assert dense_loglik(y, cl, oc, fit.sigma_w, fit.sigma_b + e @ e.T) < best + 1e-6
    frame = pd.DataFrame({"dyad": np.repeat(cl, 2), "session": np.repeat(oc, 2),
                          "role": np.tile(["patient", "therapist"], d * n),
                          "x": y[:, :2].ravel(), "y": y[:, 2:].ravel()})
    data = apim.SessionData.from_long(frame, dyad="dyad", session="session", role="role",
                                      roles=("patient", "therapist"))
    from apim.errors import BoundaryWarning

    with pytest.warns(BoundaryWarning, match="singular"):
        apim.fit(data, LatentAPIMSpec("y", ("x",)))


def test_cli_fits_the_latent_model(tmp_path, capsys):
    from apim.cli import main
    from apim.datasets import alliance_path

    common = [alliance_path(), "--dyad", "dyad", "--session", "session", "--role", "role",
              "--roles", "patient,therapist", "--outcome", "outcome", "--predictor",
              "alliance"]
    out = tmp_path / "latent.json"
    assert main(["fit", *common, "--centring", "latent", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    api = apim.fit(apim.load_alliance(),
                   apim.LatentAPIMSpec("outcome", ("alliance",)))  # ML, the latent default
    fixed = {row["term"]: row for row in payload["fixed"]}
    assert fixed["patient.actor.between.alliance"]["estimate"] == pytest.approx(
        api.effects.loc["patient.actor.between.alliance", "estimate"], rel=1e-12)
    capsys.readouterr()
    assert main(["fit", *common, "--centring", "latent", "--lag", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--lag 1 does not apply to --centring latent" in err[0]


def test_wald_tests_by_arm_in_a_multigroup_model(sim_data):
    result = apim.fit(sim_data, LatentAPIMSpec("y", ("x",), moderator="treatment"))
    short = wald_test(result, "patient.actor.between[1] = patient.actor.within[1]")
    full = wald_test(result, "patient.actor.between.x[1] = patient.actor.within.x[1]")
    assert short.estimate == full.estimate and short.p == full.p
    with pytest.raises(SpecError, match=r"'patient.actor.between' in .* names 2 effects "
                                        r"\('patient.actor.between.x\[0\]'"):
        wald_test(result, "patient.actor.between = 0")


def test_wald_test_of_a_latent_fit_reads_as_z(sim_fit):
    one = wald_test(sim_fit, "patient.actor.within = 0")
    assert str(one).startswith("Wald test of patient.actor.within = 0: z = ")
    assert f"{one.statistic:.3f}" in str(one)
    two = wald_test(sim_fit, "patient.actor.within = 0; therapist.actor.within = 0")
    assert f"chi2(2) = {two.chi2:.3f}" in str(two) and "F(" not in str(two)
