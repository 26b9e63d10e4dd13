"""Indistinguishable dyads over time: the exchangeable structure, label-swap invariance,
the test of distinguishability against nlme (committed and live) and its size."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest
from nlme_support import REFERENCE, rscript

import apim
from apim import APIMSpec, CovarianceSpec, DecompositionSpec, SessionData
from apim.errors import SpecError
from apim.inference.compare import distinguishability_test

KASHY_SCRIPT = REFERENCE / "kashy_distinguishability.R"
KASHY_REFERENCE = REFERENCE / "kashy_distinguishability.csv"
SPEC = APIMSpec("satisf", ("conflict",))


@pytest.fixture(scope="module")
def kashy_path(shared):
    return shared / "kashy_diary" / "kashy_person_period_pairwise.csv"


@pytest.fixture(scope="module")
def kashy(kashy_path):
    return SessionData.from_pairwise(kashy_path, dyad="dyadid", session="Day", role="person",
                                     roles=(1, 2))


def assert_kashy_matches(kashy: SessionData, ref: pd.DataFrame) -> None:
    """apim's distinguishability test and indistinguishable fit against nlme's."""
    get = dict(zip(ref["kind"] + ":" + ref["name"].fillna(""), ref["value"]))
    test = distinguishability_test(kashy, SPEC)
    assert test.df == get["df:"] == 7
    assert test.loglik_full == pytest.approx(get["loglik_full:"], abs=1e-3)
    assert test.loglik_reduced == pytest.approx(get["loglik_reduced:"], abs=1e-3)
    assert test.chi2 == pytest.approx(get["chi2:"], abs=1e-3)
    assert test.p == pytest.approx(get["p:"], rel=1e-3)
    assert len(test.constraints) == 7  # five fixed effects, the G and the residual variances
    assert "1.actor.between.conflict = 2.actor.between.conflict" in test.constraints
    reduced = apim.fit(kashy, SPEC.replace(distinguishable=False, method="ML"))
    assert reduced.engine.n_obs == get["n_obs:"]
    eff = reduced.effects
    names = {"(Intercept)": "both.intercept", "aW": "both.actor.within.conflict",
             "pW": "both.partner.within.conflict", "aB": "both.actor.between.conflict",
             "pB": "both.partner.between.conflict"}
    for r_name, term in names.items():  # ML SEs from vcov() (DESIGN.md §8.0)
        se = get[f"se_reduced:{r_name}"]
        assert abs(eff.loc[term, "estimate"] - get[f"fixed_reduced:{r_name}"]) < 1e-4 * se
        assert abs(eff.loc[term, "se"] - se) < 1e-4 * se
    var = reduced.variance["estimate"]
    for label, r_name in (("dyad sd(intercept)", "dyad_sd"),
                          ("dyad cor(intercept) between members", "dyad_cor"),
                          ("residual sd", "residual_sd"), ("residual cor(1,2)", "residual_cor")):
        assert var[label] == pytest.approx(get[f"var_reduced:{r_name}"], rel=1e-3)


def test_kashy_distinguishability_against_committed_nlme(kashy):
    assert_kashy_matches(kashy, pd.read_csv(KASHY_REFERENCE))


@pytest.mark.r
def test_kashy_distinguishability_against_live_nlme(kashy, kashy_path, tmp_path):
    out = tmp_path / "kashy.csv"
    subprocess.run([rscript(), str(KASHY_SCRIPT), str(kashy_path), str(out)], check=True,
                   capture_output=True, timeout=600)
    assert_kashy_matches(kashy, pd.read_csv(out))


def swap_roles(data: SessionData, dyads) -> SessionData:
    """The same data with the members' labels exchanged in ``dyads``."""
    frame = data.to_long()
    role = data.columns.role
    a, b = data.roles
    hit = frame[data.columns.dyad].isin(dyads)
    original = frame[role].astype(str)
    frame[role] = np.where(hit & (original == a), b, np.where(hit & (original == b), a,
                                                               original))
    return SessionData.from_long(frame, dyad=data.columns.dyad, session=data.columns.session,
                                 role=role, roles=data.roles)


def assert_same_result(first, second, tol=1e-8):
    """Equal to ``tol`` (absolute, and relative for large values). Satterthwaite df come
    from a Hessian by central differences of the analytic gradient, whose round-off (the
    gradient sums the rows in another order) is about 1e-8 of its value: df within 1e-7
    relative."""
    assert second.engine.loglik == pytest.approx(first.engine.loglik, abs=tol, rel=tol)
    columns = ["estimate", "se", "t", "p", "ci_low", "ci_high"]
    np.testing.assert_allclose(second.effects[columns].to_numpy(),
                               first.effects[columns].to_numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(second.effects["df"], first.effects["df"], rtol=1e-7)
    pd.testing.assert_index_equal(second.variance.index, first.variance.index)
    np.testing.assert_allclose(second.variance[["estimate", "se"]].to_numpy(),
                               first.variance[["estimate", "se"]].to_numpy(), rtol=tol,
                               atol=tol)


@pytest.mark.parametrize("covariance", [CovarianceSpec(), CovarianceSpec(residual="cs-ar1"),
                                        CovarianceSpec(residual="ar1-equal")])
def test_label_swaps_within_dyads_change_nothing(kashy, covariance):
    spec = SPEC.replace(distinguishable=False, covariance=covariance)
    first = apim.fit(kashy, spec)
    assert first.engine.converged and not first.engine.boundary
    labels = kashy.frame["dyad"].unique()
    rng = np.random.default_rng(9)
    for subset in (labels[::2], rng.choice(labels, size=7, replace=False)):
        assert_same_result(first, apim.fit(swap_roles(kashy, subset), spec))


def test_label_swaps_with_random_slopes():
    """Exchangeable random intercepts and actor and partner slopes (k = 3 per member)."""
    data = interchangeable(np.random.default_rng(4), n=60, sessions=8, slope_sd=0.3)
    spec = APIMSpec("y", ("x",), distinguishable=False,
                    covariance=CovarianceSpec(random="slopes"))
    first = apim.fit(data, spec)
    assert first.engine.converged and not first.engine.boundary
    assert first.engine.model.random.n_params == 12  # k (k + 1): A + B and A - B
    labels = data.frame["dyad"].unique()
    assert_same_result(first, apim.fit(swap_roles(data, labels[::3]), spec))


def test_indistinguishable_needs_equal_residual_variances(kashy):
    with pytest.raises(SpecError, match="residual='cs'"):
        apim.fit(kashy, SPEC.replace(distinguishable=False,
                                     covariance=CovarianceSpec(residual="un")))


def test_pooled_centring_ignores_labels(kashy):
    parts = apim.decompose(kashy, ["conflict"], pooled=True)
    centres = parts.centres.loc["conflict"]
    assert centres.iloc[0] == centres.iloc[1]
    frame = kashy.frame
    first = ~frame.duplicated(["dyad", "role"])
    person_means = frame["conflict"].groupby([frame["dyad"], frame["role"]]).transform("mean")
    assert centres.iloc[0] == pytest.approx(person_means[first].mean())


# ------------------------------------------------------------------ size of the test
def interchangeable(rng: np.random.Generator, n: int = 40, sessions: int = 6,
                    slope_sd: float = 0.0) -> SessionData:
    """Dyads whose members are exchangeable: equal intercept variances with correlation
    .5, equal effects (random actor and partner slopes with ``slope_sd``), equal residual
    variances with same-session correlation .3."""
    u = rng.multivariate_normal([0, 0], [[0.5, 0.25], [0.25, 0.5]], size=n)
    x = rng.normal(size=(n, sessions, 2))
    e = rng.multivariate_normal([0, 0], [[1, 0.3], [0.3, 1]], size=(n, sessions))
    actor = 0.4 + slope_sd * rng.normal(size=(n, 1, 2))
    partner = 0.2 + slope_sd * rng.normal(size=(n, 1, 2))
    y = 2 + actor * x + partner * x[..., ::-1] + u[:, None, :] + e
    frame = pd.DataFrame({"couple": np.repeat(np.arange(n), 2 * sessions),
                          "day": np.tile(np.repeat(np.arange(1, sessions + 1), 2), n),
                          "member": np.tile(["a", "b"], n * sessions),
                          "x": x.ravel(), "y": y.ravel()})
    return SessionData.from_long(frame, dyad="couple", session="day", role="member")


def test_distinguishability_test_size_with_interchangeable_partners():
    rng = np.random.default_rng(20261125)
    spec = APIMSpec("y", ("x",))
    p = np.array([distinguishability_test(interchangeable(rng), spec).p
                  for _ in range(200)])
    rate = float(np.mean(p < 0.05))
    assert 0.02 <= rate <= 0.09, rate  # nominal .05; Monte Carlo SE .015


def test_cross_sectional_indistinguishable_default_is_gls(acitelli_csv):
    """Cross-sectional data without options: raw predictors, no random effects, the
    pooled residual covariance: the published indistinguishable gls (PROVENANCE B2)."""
    data = SessionData.from_long(acitelli_csv,
                                 dyad="cuplid", role="gender", roles=(1, -1))
    result = apim.fit(data, APIMSpec("satisfaction", ("other_pos",), distinguishable=False))
    assert result.spec.covariance.random == "none"
    assert result.spec.decomposition.center == "none"
    assert abs(result.engine.loglik - -148.3591) <= 5e-5
    assert abs(result.effects.loc["both.actor.none.other_pos", "estimate"] - 0.4004231) < 5e-8
    with pytest.raises(SpecError, match="random='none'"):
        apim.fit(data, APIMSpec("satisfaction", ("other_pos",),
                                decomposition=DecompositionSpec(center="none"),
                                covariance=CovarianceSpec(random="intercepts",
                                                          residual="cs"),
                                distinguishable=False))


def test_exchangeable_growth_curve_reproduces_published_tables(kashy_path):
    """Kashy B3 (PROVENANCE): growth curve for indistinguishable dyads, fitted in nlme with
    Woody & Sadler's sum/difference blocks (``pdBlocked``), which is the exchangeable G
    with k = 2 (intercept and time per member): logLik, fixed effects and SEs (nlme) and
    the variance components printed by SAS PROC MIXED."""
    from apim.engine import MixedModel, Residual
    from apim.engine.mixed.estimate import estimate_mixed as fit
    from apim.engine.mixed.random_effects import Exchangeable

    d = pd.read_csv(kashy_path)
    d["satisf_A"] = pd.to_numeric(d["satisf_A"], errors="coerce")
    d = d[d["satisf_A"].notna()]
    man = (d["person"] == 1).to_numpy(float)
    woman, time = 1 - man, d["time"].to_numpy(float)
    model = MixedModel(y=d["satisf_A"].to_numpy(float),
                       X=np.column_stack([np.ones(len(d)), time]),
                       dyad=d["dyadid"].to_numpy(), role=(d["person"] - 1).to_numpy(),
                       session=d["Day"].to_numpy(),
                       Z=np.column_stack([man, man * time, woman, woman * time]),
                       random=Exchangeable(2), residual=Residual.named("cs"),
                       z_names=("man", "man_time", "woman", "woman_time"))
    result = fit(model)
    assert result.converged and result.n_obs == 2866
    assert abs(result.loglik - -2836.599) <= 5e-4
    for j, (b, se) in enumerate([(6.323719, 0.05993177), (0.014515, 0.00532303)]):
        assert abs(result.coef.iloc[j] - b) <= 5e-7 + 1e-4 * se
        assert abs(result.se.iloc[j] - se) <= 1e-4 * se  # DESIGN.md §8 tolerance
    g = result.G
    for value, printed in ((g[0, 0], 0.3955), (g[1, 1], 0.002401), (g[0, 2], 0.3066),
                           (g[1, 3], 0.001094)):
        assert abs(value - printed) <= 0.5 * 10 ** np.floor(np.log10(printed) - 3)
    var = result.variance["estimate"]
    assert var["sigma"] == pytest.approx(0.60640733, rel=1e-4)
    assert var["rho"] == pytest.approx(0.4304972, rel=1e-4)
