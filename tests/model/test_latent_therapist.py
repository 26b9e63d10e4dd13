"""The therapist level of the latent (multivariate) APIM: dense oracle of the three-level
likelihood and gradient, nesting, identification, simulation truth, invariances, API, CLI,
bad input."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from latent_therapist_support import covariances, simulate_three_level, to_session_data
from multivariate_oracle import dense_gradient, dense_loglik

import apim
from apim import report
from apim.engine.multivariate.estimate import fit_multivariate
from apim.engine.multivariate.likelihood import evaluate, prepare
from apim.engine.multivariate.nested import evaluate_nested
from apim.engine.multivariate.parameters import natural_gradient
from apim.errors import DataError, SmallSampleWarning, SpecError
from apim.inference.arms import arm_differences
from apim.model.latent import LatentAPIMSpec

K = 4
SPEC = LatentAPIMSpec("y", ("x",), therapist_level=True)


def unbalanced(seed: int, n_therapists: int = 5, missing: float = 0.2):
    """1-3 dyads per therapist, 1-5 sessions per dyad at irregular session numbers,
    single ratings missing; random covariances and means."""
    rng = np.random.default_rng(seed)
    cl, oc, th = [], [], []
    d = 0
    for t in range(n_therapists):
        for _ in range(rng.integers(1, 4)):
            for o in np.sort(rng.choice(np.arange(1, 9), rng.integers(1, 6), replace=False)):
                cl.append(d)
                oc.append(o)
                th.append(t)
            d += 1
    cl, oc, th = np.array(cl), np.array(oc), np.array(th)
    y = (rng.normal(size=(len(cl), K)) + rng.normal(size=(d, K))[cl]
         + rng.normal(size=(n_therapists, K))[th])
    y[rng.random(y.shape) < missing] = np.nan
    a, b, c = (rng.normal(size=(K, K)) for _ in range(3))
    return (y, cl, oc, th, a @ a.T / K + 0.5 * np.eye(K), b @ b.T / K, c @ c.T / K,
            rng.normal(size=K))


# ------------------------------------------------------------------------ dense oracle
@pytest.mark.parametrize("phi", [None, 0.4, -0.3])
@pytest.mark.parametrize("reml", [False, True])
@pytest.mark.parametrize("seed", [1, 2])
def test_likelihood_and_gradient_equal_dense_oracle(phi, reml, seed):
    y, cl, oc, th, sw, sb, st, mu = unbalanced(seed)
    data = prepare(y, cl, oc, therapist=th)
    assert np.isnan(y).any() and data.n_therapists == 5
    for means in ([None] if reml else [None, mu]):
        ev = evaluate_nested(data, sw, sb, st, phi, mu=means, reml=reml)
        ref = dense_loglik(y, cl, oc, sw, sb, phi, mu=means, reml=reml, therapist=th,
                           sigma_t=st)
        assert ev.loglik == pytest.approx(ref, abs=1e-9)
        grad = dense_gradient(y, cl, oc, sw, sb, phi, mu=means, reml=reml, therapist=th,
                              sigma_t=st)
        assert np.allclose(ev.grad_w, grad["within"], atol=1e-9, rtol=0)
        assert np.allclose(ev.grad_b, grad["between"], atol=1e-9, rtol=0)
        assert np.allclose(ev.grad_t, grad["therapist"], atol=1e-9, rtol=0)
        if phi is not None:
            assert ev.grad_phi == pytest.approx(float(grad["phi"]), abs=1e-9)
        if not reml:
            assert np.allclose(ev.grad_mu, grad["mu"], atol=1e-9, rtol=0)


def test_dense_gradient_is_the_derivative_of_the_dense_likelihood():
    """The oracle's two constructions (entrywise V for the likelihood, indicator products
    for the gradient) agree: central differences of one equal the other."""
    y, cl, oc, th, sw, sb, st, mu = unbalanced(3, n_therapists=3)
    grad = dense_gradient(y, cl, oc, sw, sb, 0.3, mu=mu, therapist=th, sigma_t=st)
    for i, j in ((0, 0), (1, 2), (3, 1)):
        e = np.zeros((K, K))
        e[i, j] = 1e-6
        up = dense_loglik(y, cl, oc, sw, sb, 0.3, mu=mu, therapist=th, sigma_t=st + e)
        down = dense_loglik(y, cl, oc, sw, sb, 0.3, mu=mu, therapist=th, sigma_t=st - e)
        assert (up - down) / 2e-6 == pytest.approx(grad["therapist"][i, j], abs=1e-6)


def test_singular_therapist_covariance_and_reduction_to_two_levels():
    y, cl, oc, th, sw, sb, _, _ = unbalanced(4)
    data = prepare(y, cl, oc, therapist=th)
    v = np.array([1.0, 0.5, -0.2, 0.3])
    st = np.outer(v, v)  # rank one
    got = evaluate_nested(data, sw, sb, st).loglik
    assert got == pytest.approx(dense_loglik(y, cl, oc, sw, sb, therapist=th, sigma_t=st),
                                abs=1e-9)
    for phi in (None, 0.5):
        for reml in (False, True):
            two = evaluate(data, sw, sb, phi, reml=reml)
            three = evaluate_nested(data, sw, sb, np.zeros((K, K)), phi, reml=reml)
            assert three.loglik == pytest.approx(two.loglik, abs=1e-10)
            assert np.allclose(three.grad_w, two.grad_w, atol=1e-10)
            assert np.allclose(three.grad_b, two.grad_b, atol=1e-10)


@pytest.mark.parametrize("structure", ["unstructured", "diagonal"])
@pytest.mark.parametrize("phi", [None, 0.4])
@pytest.mark.parametrize("reml", [False, True])
def test_natural_gradient_equals_finite_differences(structure, phi, reml):
    y, cl, oc, th, sw, sb, st, mu = unbalanced(5)
    if structure == "diagonal":
        st = np.diag(np.diag(st))
    data = prepare(y, cl, oc, therapist=th)
    idx = np.tril_indices(K)
    t_part = st[idx] if structure == "unstructured" else np.diag(st)
    point = np.concatenate(([] if reml else [mu]) + [sw[idx], sb[idx], t_part]
                           + ([[phi]] if phi is not None else []))
    ar1 = phi is not None
    analytic = natural_gradient(data, point, ar1, reml, therapist=structure)

    def loglik(x):
        from apim.engine.multivariate.parameters import Layout

        p = Layout(K, ar1, reml, structure).unpack(x)
        return evaluate_nested(data, p.sigma_w, p.sigma_b, p.sigma_t, p.phi, mu=p.mu,
                               reml=reml).loglik

    numeric = np.array([(loglik(point + e) - loglik(point - e)) / 2e-6
                        for e in 1e-6 * np.eye(len(point))])
    assert np.allclose(analytic, numeric, atol=1e-6)


def test_fit_maximises_the_dense_likelihood():
    y, cl, oc, th = simulate_three_level(12, (1, 4), 4, seed=7, missing=0.15)
    fit = fit_multivariate(y, cl, oc, therapist=th, ar1=True)
    assert fit.converged and fit.n_therapists == 12
    best = dense_loglik(y, cl, oc, fit.sigma_w, fit.sigma_b, fit.phi, therapist=th,
                        sigma_t=fit.sigma_t)
    assert fit.loglik == pytest.approx(best, abs=1e-8)
    rng = np.random.default_rng(0)
    for _ in range(3):
        e = rng.normal(size=(K, K)) * 1e-2
        assert dense_loglik(y, cl, oc, fit.sigma_w, fit.sigma_b, fit.phi, therapist=th,
                            sigma_t=fit.sigma_t + e @ e.T) < best
    assert fit.parameter_names[K + 20] == "therapist(v0,v0)" and len(fit.estimate) == 35


# ------------------------------------------------------------- nesting and identification
def test_without_therapist_effects_three_levels_nest_two():
    y, cl, oc, th = simulate_three_level(40, 4, 6, seed=11, sigma_t=np.zeros((K, K)),
                                         missing=0.1)
    data = to_session_data(y, cl, oc, th)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Sigma_T at (or near) its boundary
        three = apim.fit(data, SPEC)
    two = apim.fit(data, LatentAPIMSpec("y", ("x",)))
    assert three.statistics.loglik >= two.statistics.loglik - 1e-8
    assert three.statistics.loglik - two.statistics.loglik < 6  # no significant therapist level
    # within effects: the same to a small fraction of an SE; between effects: within one
    # SE (the ML Sigma_T of 40 therapists is small but not zero: sampling noise)
    eff2, eff3 = two.effects, three.effects
    for level, share in (("within", 0.05), ("between", 1.0)):
        rows = eff2.index[eff2["level"] == level]
        diff = (eff3.loc[rows, "estimate"] - eff2.loc[rows, "estimate"]).abs()
        assert (diff < share * eff2.loc[rows, "se"]).all(), level
        assert (eff3.loc[rows, "se"] >= eff2.loc[rows, "se"] * 0.99).all()
    assert np.allclose(three.fits["all"].sigma_w, two.fits["all"].sigma_w, atol=0.01)


def test_one_dyad_per_therapist_is_not_identified():
    y, cl, oc, th = simulate_three_level(30, 1, 5, seed=2)
    with pytest.raises(SpecError, match="single dyad.*not identified"):
        apim.fit(to_session_data(y, cl, oc, th), SPEC)
    with pytest.raises(SpecError, match="not identified"):
        fit_multivariate(y, cl, oc, therapist=th)


@pytest.mark.filterwarnings("ignore::apim.errors.BoundaryWarning")
def test_few_therapists():
    y, cl, oc, th = simulate_three_level(2, 5, 5, seed=2)
    with pytest.raises(SpecError, match="at least 3 therapists.*have 2"):
        apim.fit(to_session_data(y, cl, oc, th), SPEC)
    y, cl, oc, th = simulate_three_level(4, 6, 5, seed=2)
    with pytest.warns(SmallSampleWarning, match="only 4 therapists.*diagonal"):
        apim.fit(to_session_data(y, cl, oc, th), SPEC)


# ----------------------------------------------------------------------- simulation truth
@pytest.fixture(scope="module")
def truth_fit():
    y, cl, oc, th = simulate_three_level(60, 4, 10, seed=3, missing=0.1)
    return to_session_data(y, cl, oc, th), apim.fit(to_session_data(y, cl, oc, th), SPEC)


def test_simulation_recovers_the_three_covariances(truth_fit):
    _, result = truth_fit
    fit = result.fits["all"]
    assert fit.converged and not fit.boundary
    st, sb, sw = covariances()
    se = np.sqrt(np.diag(fit.cov))
    names = fit.parameter_names
    idx = np.tril_indices(K)
    z = []
    for level, truth in (("within", sw), ("between", sb), ("therapist", st)):
        for r, c in zip(*idx):
            j = names.index(f"{level}({fit.names[c]},{fit.names[r]})")
            z.append((fit.estimate[j] - truth[r, c]) / se[j])
    z = np.array(z)
    assert np.abs(z).max() < 3.5
    assert np.mean(z ** 2) < 2.0  # the SEs are of the right size, not only large
    eff = result.effects
    for name, value in (("patient.actor.within.x", 0.4), ("therapist.partner.within.x", 0.1),
                        ("patient.actor.between.x", 0.5), ("therapist.partner.between.x", 0.2),
                        ("patient.actor.therapist.x", 0.3)):
        assert abs(eff.loc[name, "estimate"] - value) < 3 * eff.loc[name, "se"], name


def test_every_rating_enters_and_reml(truth_fit):
    data, result = truth_fit
    assert result.statistics.n_obs == int(data.frame[["x", "y"]].notna().sum().sum())
    assert result.statistics.n_therapists == 60
    reml = apim.fit(data, SPEC.replace(method="REML"))
    assert reml.statistics.converged
    # REML variances are larger than ML's at the therapist level (fewer units)
    assert np.trace(reml.fits["all"].sigma_t) > np.trace(result.fits["all"].sigma_t)


def test_diagonal_therapist_covariance(truth_fit):
    data, result = truth_fit
    diag = apim.fit(data, SPEC.replace(therapist_covariance="diagonal"))
    fit = diag.fits["all"]
    assert np.allclose(fit.sigma_t, np.diag(np.diag(fit.sigma_t)))
    assert diag.statistics.loglik <= result.statistics.loglik + 1e-8
    assert not any(".therapist." in n for n in diag.coef.index)
    assert sum(p.startswith("therapist var(") for p in diag.variance.index) == K


# ------------------------------------------------------------------------- invariances
def test_relabelled_and_shuffled_give_the_same_fit(truth_fit):
    data, result = truth_fit
    frame = data.frame.drop(columns="row").sample(frac=1.0, random_state=4)
    frame = frame.assign(dyad=frame["dyad"].map(lambda d: f"d{997 - d}"),
                         therapist=frame["therapist"].map(lambda t: f"Dr {t[::-1]}"))
    other = apim.fit(apim.SessionData.from_long(frame, dyad="dyad", session="session",
                                                role="role", roles=data.roles,
                                                therapist="therapist"), SPEC)
    assert other.statistics.loglik == pytest.approx(result.statistics.loglik, abs=1e-7)
    assert np.allclose(other.coef, result.coef, atol=1e-7)
    assert np.allclose(other.fits["all"].sigma_t, result.fits["all"].sigma_t, atol=1e-8)


def test_changed_units_scale_the_estimates(truth_fit):
    data, result = truth_fit
    frame = data.frame.assign(y=data.frame["y"] * 10)
    other = apim.fit(data.replace(frame), SPEC)
    slopes = [n for n in result.coef.index if ".intercept" not in n]
    assert np.allclose(other.coef[slopes], 10 * result.coef[slopes], rtol=1e-5)
    assert other.effects.loc[slopes, "se"].to_numpy() == pytest.approx(
        10 * result.effects.loc[slopes, "se"].to_numpy(), rel=1e-4)
    y_p = 2  # y[patient]
    assert other.fits["all"].sigma_t[y_p, y_p] == pytest.approx(
        100 * result.fits["all"].sigma_t[y_p, y_p], rel=1e-5)


# ----------------------------------------------------------------------- API and exports
def test_exports_show_the_therapist_level(truth_fit):
    _, result = truth_fit
    payload = json.loads(report.to_json(result))
    group = payload["groups"]["all"]
    assert np.allclose(group["sigma_therapist"], result.fits["all"].sigma_t)
    assert group["n_therapists"] == 60 and payload["n_therapists"] == 60
    assert LatentAPIMSpec.from_dict(report.to_dict(result)["specification"]) == result.spec
    markdown = report.to_markdown(result)
    assert "(between-therapist)" in markdown and "within therapist" in markdown
    assert "60 therapists" in markdown
    text = result.summary()
    assert "Therapist-level covariance (Sigma_T)" in text
    assert "therapist cov(x[patient],y[patient])" in text
    eff = result.effects
    assert set(eff.loc[eff["level"] == "therapist"].index) == {
        f"{r}.{e}.therapist.x" for r in ("patient", "therapist") for e in ("actor", "partner")}


def test_therapist_effects_are_the_implied_regressions(truth_fit):
    _, result = truth_fit
    st = result.fits["all"].sigma_t
    b = st[2:, :2] @ np.linalg.inv(st[:2, :2])
    eff = result.effects
    assert eff.loc["patient.actor.therapist.x", "estimate"] == pytest.approx(b[0, 0])
    assert eff.loc["therapist.partner.therapist.x", "estimate"] == pytest.approx(b[1, 0])


def _arms(y, cl, oc, th, arm_of_therapist):
    data = to_session_data(y, cl, oc, th)
    frame = data.frame.copy()
    codes = frame["therapist"].str[1:].astype(int)
    frame["arm"] = codes.map(lambda t: arm_of_therapist(t)).astype(float)
    return data.replace(frame)


@pytest.mark.filterwarnings("ignore::apim.errors.BoundaryWarning")
def test_multigroup_with_nested_therapists(truth_fit):
    y, cl, oc, th = simulate_three_level(50, 4, 6, seed=8)
    data = _arms(y, cl, oc, th, lambda t: t % 2)
    spec = SPEC.replace(moderator="arm")
    result = apim.fit(data, spec)
    assert {g: f.n_therapists for g, f in result.fits.items()} == {"0": 25, "1": 25}
    frame = data.frame[data.frame["arm"] == 1.0].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = apim.fit(data.replace(frame), SPEC)
    for name, value in alone.coef.items():
        assert result.coef[f"{name}[1]"] == pytest.approx(value, abs=1e-6)
    table = arm_differences(result)
    assert "patient.actor.therapist.x" in set(table["effect"])


def test_therapist_in_two_arms_is_an_error():
    y, cl, oc, th = simulate_three_level(30, 4, 4, seed=9)
    data = _arms(y, cl, oc, th, lambda t: 0)
    frame = data.frame.copy()
    frame.loc[frame["dyad"] % 4 == 0, "arm"] = 1.0  # one dyad of every therapist
    with pytest.raises(DataError, match="more than one group of 'arm'.*'T000' in 0, 1"):
        apim.fit(data.replace(frame), SPEC.replace(moderator="arm"))


# ------------------------------------------------------------------------------ bad input
def test_bad_input():
    y, cl, oc, th = simulate_three_level(20, 3, 4, seed=10)
    without = to_session_data(y, cl, oc, None)
    with pytest.raises(SpecError, match="therapist_level=True needs a therapist column.*"
                                        "therapist='COL'"):
        apim.fit(without, SPEC)
    with pytest.raises(SpecError, match="set therapist_level=True"):
        LatentAPIMSpec("y", ("x",), therapist_covariance="diagonal")
    with pytest.raises(SpecError, match="therapist_covariance='banded'"):
        LatentAPIMSpec("y", ("x",), therapist_level=True, therapist_covariance="banded")
    two = th.copy()
    two[(cl == 5) & (oc == 2)] = 7  # dyad 5 moves to therapist 7 at session 2
    with pytest.raises(DataError, match="dyad 5 has more than one therapist .*1, 7"):
        fit_multivariate(y, cl, oc, therapist=two)
    frame = to_session_data(y, cl, oc, th).frame.drop(columns="row")
    frame.loc[(frame["dyad"] == 5) & (frame["session"] == 2), "therapist"] = "T007"
    with pytest.raises(DataError, match="T001.*T007|T007.*T001"):
        apim.SessionData.from_long(frame, dyad="dyad", session="session", role="role",
                                   roles=("patient", "therapist"), therapist="therapist")


@pytest.mark.filterwarnings("ignore::apim.errors.BoundaryWarning")
def test_cli_fits_the_therapist_level(tmp_path, capsys):
    from apim.cli import main
    from apim.datasets import alliance_path

    common = [alliance_path(), "--dyad", "dyad", "--session", "session", "--role", "role",
              "--roles", "patient,therapist", "--outcome", "outcome", "--predictor",
              "alliance", "--centring", "latent", "--method", "ml"]
    out = tmp_path / "latent.json"
    assert main(["fit", *common, "--therapist", "therapist", "--therapist-level",
                 "--json", str(out), "--format", "markdown"]) == 0
    printed = capsys.readouterr().out
    assert "(between-therapist)" in printed
    payload = json.loads(out.read_text())
    api = apim.fit(apim.load_alliance(), LatentAPIMSpec("outcome", ("alliance",),
                                                        therapist_level=True))
    assert np.allclose(payload["groups"]["all"]["sigma_therapist"],
                       api.fits["all"].sigma_t, rtol=1e-10)
    for argv, message in (
            (["--therapist-level"], "--therapist-level needs a therapist column: map the "
                                    "therapist ids with --therapist COL"),
            (["--therapist", "therapist", "--therapist-covariance", "diagonal"],
             "--therapist-covariance applies to the therapist level")):
        assert main(["fit", *common, *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert main(["fit", *common, "--therapist", "therapist", "--therapist-level",
                 "--therapist-covariance", "diagonal", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["groups"]["all"]["therapist_covariance"] \
        == "diagonal"


def test_person_table_is_unchanged_by_the_level(truth_fit):
    data, result = truth_fit
    rel = result.reliability
    fit = result.fits["all"]
    row = rel[(rel["variable"] == "x") & (rel["role"] == "patient")].iloc[0]
    tau2 = fit.sigma_b[0, 0] + fit.sigma_t[0, 0]
    n = result.counts["all"][:, 0]
    assert row["tau2"] == pytest.approx(tau2)
    assert row["reliability"] == pytest.approx(np.mean(tau2 / (tau2 + fit.sigma_w[0, 0] / n)))
    assert isinstance(pd.DataFrame(result.variance), pd.DataFrame)
