"""Dyad-level covariates of the dynamic APIM's means (``mu_i = B' x_i``, ``B`` profiled by
GLS) against the dense oracle with each dyad's own means: logLik to 1e-8 on unbalanced
data with gaps, late starts, dropout and a single-session dyad, both initial conditions,
with and without the therapist level; the profiled ``B`` against the GLS written densely;
the analytic gradient at the profiled ``B`` against central differences; relabelled and
shuffled dyads. The fitted model: logLik against the dense oracle, ``B`` and its SEs
against the GLS closed form, lavaan's RI-CLPM with the random intercepts regressed on the
covariates (committed output and a live refit; logLik 1e-6, estimates and SEs 1e-4),
simulation truth, refusals (time-varying, missing, collinear covariates)."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dynamic_oracle import (
    assert_problem_gradient,
    central_gradient,
    dense_loglik,
    dense_therapist_loglik,
    within_covariance,
)
from dynamic_support import (
    REFERENCE,
    ROLES,
    grid_from_wide,
    long_data,
    run_riclpm,
    simulate_grid,
    with_gaps,
)

import apim
from apim.data.session import SessionData
from apim.engine.dynamic.estimate import _Problem
from apim.engine.dynamic.gradient import loglik_gradient
from apim.engine.dynamic.kalman import evaluate, prepare_dynamic, therapist_level
from apim.engine.dynamic.parameters import DynamicLayout, DynamicParameters
from apim.errors import BoundaryWarning, DataError, DataWarning, SpecError
from apim.model.dynamic_spec import DynamicAPIMSpec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from test_dynamic_therapist import THERAPISTS, _gappy, _parameters  # noqa: E402


def _design(n: int, seed: int) -> np.ndarray:
    """Intercept, a numeric covariate (baseline severity) and a 0/1 one (arm)."""
    rng = np.random.default_rng(seed)
    return np.column_stack([np.ones(n), rng.normal(20, 5, size=n), rng.integers(0, 2, n)])


def _dense_gls(y, x, phi, sw, sb, p0, therapist=None, st=None):
    """The GLS of ``B`` written densely: every observation's row of ``I_K (x) x_i'``,
    each unit's (dyad's, or therapist's) stacked covariance."""
    n, n_t, k = y.shape
    q = x.shape[1]
    cov_w = within_covariance(phi, sw, p0, n_t)
    ones = np.tile(np.eye(k), (n_t, 1))
    dyad_cov = cov_w + ones @ sb @ ones.T
    units = [np.array([i]) for i in range(n)] if therapist is None else \
        [np.flatnonzero(therapist == t) for t in np.unique(therapist)]
    lhs, rhs = np.zeros((k * q, k * q)), np.zeros(k * q)
    for members in units:
        cov = np.kron(np.eye(len(members)), dyad_cov)
        if therapist is not None:
            cov += np.kron(np.ones((len(members),) * 2), ones @ st @ ones.T)
        rows = np.vstack([np.kron(ones, x[i][None, :]) for i in members])
        flat = y[members].reshape(-1)
        seen = ~np.isnan(flat)
        inv = np.linalg.inv(cov[np.ix_(seen, seen)])
        lhs += rows[seen].T @ inv @ rows[seen]
        rhs += rows[seen].T @ inv @ flat[seen]
    return np.linalg.solve(lhs, rhs)


@pytest.mark.parametrize("initial", ["free", "stationary"])
@pytest.mark.parametrize("seed", [1, 2])
def test_loglik_and_profiled_coefficients_equal_dense_oracle(initial, seed):
    rng = np.random.default_rng(40 + seed)
    y = _gappy(seed)
    n, _, k = y.shape
    x = _design(n, seed)
    beta = rng.normal(size=(k, 3))
    _, phi, sw, sb, p0, st = _parameters(rng, k, initial, singular=seed == 2)
    for share in (True, False):
        data = prepare_dynamic(y, share=share, design=x)
        level = therapist_level(data, THERAPISTS)
        given = evaluate(data, phi, sw, sb, p0, mu=beta.reshape(-1))
        assert abs(given.loglik - dense_loglik(y, x @ beta.T, phi, sw, sb, p0)) < 1e-8
        nested = evaluate(data, phi, sw, sb, p0, mu=beta.reshape(-1), level=level,
                          sigma_t=st)
        dense = dense_therapist_loglik(y, THERAPISTS, x @ beta.T, phi, sw, sb, p0, st)
        assert abs(nested.loglik - dense) < 1e-8
        for lev, sigma_t, therapist in ((None, None, None), (level, st, THERAPISTS)):
            prof = evaluate(data, phi, sw, sb, p0, level=lev, sigma_t=sigma_t)
            gls = _dense_gls(y, x, phi, sw, sb, p0, therapist, sigma_t)
            assert np.max(np.abs(prof.mu - gls)) < 1e-8 * max(1.0, np.max(np.abs(gls)))
            means = x @ prof.mu.reshape(k, 3).T
            at = (dense_loglik(y, means, phi, sw, sb, p0) if lev is None else
                  dense_therapist_loglik(y, THERAPISTS, means, phi, sw, sb, p0, st))
            assert abs(prof.loglik - at) < 1e-8


def test_one_column_design_is_the_model_without_covariates():
    rng = np.random.default_rng(3)
    y = _gappy(3)
    _, phi, sw, sb, p0, st = _parameters(rng, 3, "free", singular=False)
    plain = prepare_dynamic(y)
    ones = prepare_dynamic(y, design=np.ones((len(y), 1)))
    for kw in ({}, {"sigma_t": st}):
        a = evaluate(plain, phi, sw, sb, p0, level=therapist_level(plain, THERAPISTS)
                     if kw else None, **kw)
        b = evaluate(ones, phi, sw, sb, p0, level=therapist_level(ones, THERAPISTS)
                     if kw else None, **kw)
        assert abs(a.loglik - b.loglik) < 1e-9
        np.testing.assert_allclose(a.mu, b.mu, atol=1e-10)


def _symmetric_gradient(data, mats, name, kw):
    """Central differences of the profiled logLik in the upper triangle of a
    symmetric matrix (both entries moved)."""
    k = len(mats["phi"])
    upper = np.triu_indices(k)

    def value(v):
        m = np.zeros((k, k))
        m[upper] = v
        moved = dict(mats, **{name: m + np.triu(m, 1).T})
        extra = {} if "level" not in kw else {"level": kw["level"], "sigma_t": moved["st"]}
        return evaluate(data, moved["phi"], moved["sw"], moved["sb"], moved["p0"],
                        **extra).loglik
    return central_gradient(value, mats[name][upper]), upper


@pytest.mark.parametrize("initial", ["free", "stationary"])
@pytest.mark.parametrize("nested", [False, True])
def test_gradient_at_profiled_coefficients_equals_central_differences(initial, nested):
    """The envelope theorem: the adjoint with the profiled residuals is the gradient of
    the profiled likelihood."""
    rng = np.random.default_rng(11)
    y = _gappy(4)
    x = _design(len(y), 4)
    _, phi, sw, sb, p0, st = _parameters(rng, 3, initial, singular=False)
    data = prepare_dynamic(y, design=x)
    kw = {"level": therapist_level(data, THERAPISTS), "sigma_t": st} if nested else {}
    grad = loglik_gradient(data, phi, sw, sb, p0, None, **kw)
    mats = {"phi": phi, "sw": sw, "sb": sb, "p0": p0, "st": st}
    numeric = central_gradient(
        lambda v: evaluate(data, v.reshape(3, 3), sw, sb, p0, **kw).loglik, phi.reshape(-1))
    assert np.max(np.abs(grad.phi.reshape(-1) - numeric)) < 1e-6 * np.max(np.abs(numeric))
    names = {"sw": grad.sigma_w, "sb": grad.sigma_b}
    if initial == "free":
        names["p0"] = grad.p0
    if nested:
        names["st"] = grad.sigma_t
    for name, analytic in names.items():
        numeric, upper = _symmetric_gradient(data, mats, name, kw)
        folded = (analytic + analytic.T - np.diag(np.diag(analytic)))[upper]
        assert np.max(np.abs(folded - numeric)) < 1e-6 * np.max(np.abs(numeric))
    # the coefficients given: their own derivative
    beta = grad.means * 1.1
    at = loglik_gradient(data, phi, sw, sb, p0, beta, **kw)
    numeric = central_gradient(lambda b: evaluate(data, phi, sw, sb, p0, mu=b, **kw).loglik,
                               beta)
    assert np.max(np.abs(at.mu - numeric)) < 1e-6 * np.max(np.abs(numeric))


def test_shuffled_dyads_give_the_same_profile():
    rng = np.random.default_rng(5)
    y = _gappy(5)
    x = _design(len(y), 5)
    _, phi, sw, sb, p0, st = _parameters(rng, 3, "free", singular=False)
    order = rng.permutation(len(y))
    relabelled = np.array([f"t{t}" for t in THERAPISTS])[order]
    for lev_of in (None, THERAPISTS):
        a_data = prepare_dynamic(y, design=x)
        b_data = prepare_dynamic(y[order], design=x[order])
        kw_a = {} if lev_of is None else {"level": therapist_level(a_data, THERAPISTS),
                                           "sigma_t": st}
        kw_b = {} if lev_of is None else {"level": therapist_level(b_data, relabelled),
                                           "sigma_t": st}
        a = evaluate(a_data, phi, sw, sb, p0, **kw_a)
        b = evaluate(b_data, phi, sw, sb, p0, **kw_b)
        assert abs(a.loglik - b.loglik) < 1e-8
        np.testing.assert_allclose(a.mu, b.mu, rtol=1e-9, atol=1e-10)


# ---------------------------------------------------------------- the model's fit
#: covariate effects on the means of x[patient], x[therapist], y[patient], y[therapist]
SEVERITY = np.array([0.0, 0.05, -0.08, -0.04])
ARM = np.array([0.4, 0.0, 0.5, 0.3])


def _simulated(n: int = 80, t: int = 7, seed: int = 21, therapists: int = 0):
    """Ratings with means shifted by baseline severity and arm, gaps and dropout; the
    dyads' covariates (and therapists, unequal caseloads, when asked)."""
    rng = np.random.default_rng(seed)
    severity = rng.normal(20, 5, size=n)
    arm = rng.integers(0, 2, size=n)
    y = simulate_grid(n, t, seed=seed + 1000)      # a stream of its own
    y = y + (np.outer(severity, SEVERITY) + np.outer(arm, ARM))[:, None, :]
    therapist = np.arange(n) % therapists if therapists else None
    if therapists:
        v = rng.multivariate_normal(np.zeros(4), 0.2 * np.eye(4), size=therapists)
        y = y + v[therapist][:, None, :]
    return with_gaps(y, seed=seed + 1), severity, arm, therapist


def _long_frame(y, severity, arm, therapist=None, shuffle=False) -> pd.DataFrame:
    frame = long_data(y).to_long()
    index = frame["dyad"].str[1:].astype(int)
    frame["severity"] = severity[index]
    frame["arm"] = np.array(["CBT", "PDT"])[arm[index]]
    frame["ther"] = "" if therapist is None else [f"T{t:02d}" for t in therapist[index]]
    if shuffle:
        frame = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
        frame["dyad"] = "z" + frame["dyad"].str[::-1]
        frame["ther"] = "th-" + frame["ther"].str[::-1]
    return frame


def _data(frame: pd.DataFrame, therapist: bool = False) -> SessionData:
    return SessionData.from_long(frame, dyad="dyad", session="session", role="role",
                                 roles=ROLES, **({"therapist": "ther"} if therapist else {}))


def _fit(data: SessionData, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        warnings.simplefilter("ignore", BoundaryWarning)
        return apim.fit(data, DynamicAPIMSpec("y", ("x",), covariates=("severity", "arm"),
                                              **options))


def _per_dyad_means(result, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The grid of the fit's dyads and each dyad's fitted means ``B' (1, c_i)``."""
    fit = result.fit
    dyads = result.dyads["all"]
    per_dyad = frame.groupby("dyad").first().loc[dyads]
    x = np.column_stack([np.ones(len(dyads)), per_dyad["severity"],
                         per_dyad["arm"] == "PDT"]).astype(float)
    return x @ fit.mu.reshape(4, 3).T, per_dyad


@pytest.mark.parametrize("initial", ["free", "stationary"])
@pytest.mark.parametrize("therapists", [0, 9])
def test_fitted_loglik_equals_dense_oracle_and_is_its_maximum(initial, therapists):
    y, severity, arm, therapist = _simulated(n=45, t=6, seed=30 + therapists,
                                             therapists=therapists)
    frame = _long_frame(y, severity, arm, therapist)
    result = _fit(_data(frame, bool(therapists)), initial=initial,
                  therapist_level=bool(therapists))
    fit = result.fit
    assert fit.converged
    grid, _ = session_grid_of(result, frame)
    means, per_dyad = _per_dyad_means(result, frame)
    if therapists:
        labels = per_dyad["ther"].to_numpy()
        dense = dense_therapist_loglik(grid, labels, means, fit.phi, fit.sigma_w,
                                       fit.sigma_b, fit.p0, fit.sigma_t)
    else:
        dense = dense_loglik(grid, means, fit.phi, fit.sigma_w, fit.sigma_b, fit.p0)
    assert abs(fit.loglik - dense) < 1e-8 * max(1.0, abs(dense))
    # the coefficients are the GLS at the fitted covariances (the dense maximiser)
    x = np.column_stack([np.ones(len(per_dyad)), per_dyad["severity"],
                         per_dyad["arm"] == "PDT"]).astype(float)
    gls = _dense_gls(grid, x, fit.phi, fit.sigma_w, fit.sigma_b, fit.p0,
                     per_dyad["ther"].to_numpy() if therapists else None, fit.sigma_t)
    assert np.max(np.abs(fit.mu - gls)) < 1e-6 * max(1.0, float(np.max(np.abs(gls))))


def session_grid_of(result, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The fit's dyads' ratings on the session grid (engine variable order)."""
    dyads = result.dyads["all"]
    sessions = result.sessions
    grid = np.full((len(dyads), len(sessions), 4), np.nan)
    where = {d: i for i, d in enumerate(dyads)}
    for row in frame.itertuples():
        r = ROLES.index(row.role)
        grid[where[row.dyad], row.session - sessions[0], [r, 2 + r]] = [row.x, row.y]
    return grid, sessions


def test_simulated_covariate_effects_recovered_within_3_se():
    y, severity, arm, _ = _simulated(n=150, t=7, seed=21)
    frame = _long_frame(y, severity, arm)
    result = _fit(_data(frame))
    effects = result.effects
    # the SEs of B (observed information of all parameters) against the GLS covariance
    # of B given the fitted covariances (the expected information's block, as nlme's):
    # close in a sample this size
    fit = result.fit
    grid, _ = session_grid_of(result, frame)
    _, per_dyad = _per_dyad_means(result, frame)
    x = np.column_stack([np.ones(len(per_dyad)), per_dyad["severity"],
                         per_dyad["arm"] == "PDT"]).astype(float)
    gls = evaluate(prepare_dynamic(grid, design=x), fit.phi, fit.sigma_w, fit.sigma_b,
                   fit.p0)
    np.testing.assert_allclose(gls.mu, fit.mu, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov)[:12]),
                               np.sqrt(np.diag(np.linalg.inv(gls.information))), rtol=0.05)
    truth = {("patient", ""): 2, ("therapist", ""): 3, ("patient", "x."): 0,
             ("therapist", "x."): 1}
    for (role, prefix), v in truth.items():
        for column, values in (("severity", SEVERITY), ("arm[PDT]", ARM)):
            row = effects.loc[f"{role}.{prefix}covariate.none.{column}"]
            assert abs(row["estimate"] - values[v]) < 3 * row["se"], (role, prefix, column)
    # a real effect is found: the arm's shift of the patient's outcome (0.5)
    assert effects.loc["patient.covariate.none.arm[PDT]", "p"] < 0.05


def test_shuffled_rows_and_relabelled_dyads_give_the_same_fit():
    y, severity, arm, therapist = _simulated(n=40, t=6, seed=8, therapists=7)
    a = _fit(_data(_long_frame(y, severity, arm, therapist), True), therapist_level=True)
    b = _fit(_data(_long_frame(y, severity, arm, therapist, shuffle=True), True),
             therapist_level=True)
    assert abs(a.fit.loglik - b.fit.loglik) < 1e-6
    pd.testing.assert_series_equal(a.coef, b.coef, rtol=1e-4, atol=1e-6)


def test_results_effects_json_and_summary():
    y, severity, arm, _ = _simulated(n=40, t=6, seed=9)
    result = _fit(_data(_long_frame(y, severity, arm)))
    names = list(result.effects.index)
    expected = [f"{r}.{v}covariate.none.{c}" for c in ("severity", "arm[PDT]")
                for v in ("", "x.") for r in ROLES]
    assert set(expected) <= set(names)
    assert names[:2] == ["patient.intercept", "therapist.intercept"]
    payload = json.loads(json.dumps(result.to_dict()))
    group = payload["groups"]["all"]
    assert group["covariates"] == ["severity", "arm[PDT]"]
    coef = result.fit.mu.reshape(4, 3)
    np.testing.assert_allclose(group["covariate_coefficients"], coef[:, 1:])
    np.testing.assert_allclose(group["means"], coef[:, 0])
    assert result.coef["patient.covariate.none.severity"] == pytest.approx(coef[2, 1])
    assert result.coef["therapist.x.covariate.none.arm[PDT]"] == pytest.approx(coef[1, 2])
    text = result.summary()
    assert "severity" in text and "arm[PDT]" in text
    assert any("covariates of the means (severity, arm" in n for n in result.notes())


def test_collinear_covariates_refused_naming_the_columns():
    y, severity, arm, _ = _simulated(n=30, t=5, seed=10)
    frame = _long_frame(y, severity, arm)
    frame["doubled"] = 2 * frame["severity"] + 1
    with pytest.raises(DataError, match="'doubled' is a linear function of 'severity'"):
        apim.fit(_data(frame), DynamicAPIMSpec("y", ("x",),
                                               covariates=("severity", "doubled")))
    frame["site"] = 3.0
    with pytest.raises(DataError, match="'site' is constant"):
        apim.fit(_data(frame), DynamicAPIMSpec("y", ("x",), covariates=("site",)))


def test_time_varying_and_missing_covariates_refused():
    y, severity, arm, _ = _simulated(n=30, t=5, seed=11)
    frame = _long_frame(y, severity, arm)
    with pytest.raises(DataError, match=r"'session' varies within dyad 'd000' \(values "
                                        r"\[1(\.0)?, 2.*constant within a dyad.*time-varying"):
        apim.fit(_data(frame), DynamicAPIMSpec("y", ("x",), covariates=("session",)))
    frame.loc[3, "severity"] = np.nan
    with pytest.raises(DataError, match=r"'severity' is missing in 1 rated rows \(rows "
                                        r"\[4\], dyads \['d000'\]\)"):
        apim.fit(_data(frame), DynamicAPIMSpec("y", ("x",), covariates=("severity",)))


def test_spec_round_trip_and_checks():
    spec = DynamicAPIMSpec("y", ("x",), covariates=("severity", "arm"),
                           reference=(("arm", "PDT"),))
    assert DynamicAPIMSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(SpecError, match="used twice"):
        DynamicAPIMSpec("y", ("x",), covariates=("x",))


def test_text_covariate_reference_level():
    y, severity, arm, _ = _simulated(n=30, t=5, seed=12)
    data = _data(_long_frame(y, severity, arm))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        warnings.simplefilter("ignore", BoundaryWarning)
        a = apim.fit(data, DynamicAPIMSpec("y", ("x",), covariates=("arm",)))
        b = apim.fit(data, DynamicAPIMSpec("y", ("x",), covariates=("arm",),
                                           reference=(("arm", "PDT"),)))
    assert a.coef["patient.covariate.none.arm[PDT]"] == pytest.approx(
        -b.coef["patient.covariate.none.arm[CBT]"], rel=1e-4)
    assert abs(a.fit.loglik - b.fit.loglik) < 1e-6


@pytest.mark.parametrize("initial", ["free", "stationary"])
@pytest.mark.parametrize("nested", [False, True])
def test_estimation_gradients_with_covariates(initial, nested):
    """The estimation's natural gradient (the coefficients given) and its search gradient
    (the coefficients profiled) against central differences."""
    rng = np.random.default_rng(12)
    y = _gappy(6)
    x = _design(len(y), 6)
    _, phi, sw, sb, p0, st = _parameters(rng, 3, initial, singular=False)
    data = prepare_dynamic(y, design=x)
    layout = DynamicLayout(3, initial, therapist="unstructured" if nested else None,
                           covariates=2)
    level = therapist_level(data, THERAPISTS) if nested else None
    problem = _Problem(data, layout, level)
    params = DynamicParameters(rng.normal(size=9), phi, sw, sb, p0, st if nested else None)
    assert layout.names(("a", "b", "c"))[:3] == ["mean(a)", "mean(a|covariate 1)",
                                                 "mean(a|covariate 2)"]
    assert_problem_gradient(problem, layout.pack(params))


def test_with_a_moderator_each_arm_has_its_own_coefficients():
    y, severity, arm, _ = _simulated(n=60, t=6, seed=14)
    frame = _long_frame(y, severity, arm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        warnings.simplefilter("ignore", BoundaryWarning)
        result = apim.fit(_data(frame), DynamicAPIMSpec("y", ("x",), moderator="arm",
                                                        covariates=("severity",)))
        for group in ("CBT", "PDT"):
            part = frame[frame["arm"] == group]
            alone = apim.fit(_data(part), DynamicAPIMSpec("y", ("x",),
                                                          covariates=("severity",)))
            assert result.coef[f"patient.covariate.none.severity[{group}]"] == \
                pytest.approx(alone.coef["patient.covariate.none.severity"], rel=1e-5)
    # constant within an arm: refused, naming the arm
    frame["pdt"] = (frame["arm"] == "PDT").astype(float)
    with pytest.raises(DataError, match="'pdt' is constant across the dyads of group 'CBT'"):
        apim.fit(_data(frame), DynamicAPIMSpec("y", ("x",), moderator="arm",
                                               covariates=("severity", "pdt")))


def test_single_valued_text_covariate_refused():
    y, severity, arm, _ = _simulated(n=20, t=5, seed=15)
    frame = _long_frame(y, severity, np.zeros(len(y), int))
    with pytest.raises(DataError, match="'arm' takes a single value \\('CBT'\\)"):
        apim.fit(_data(frame), DynamicAPIMSpec("y", ("x",), covariates=("arm",)))


# ---------------------------------------------------------------- lavaan's RI-CLPM
def _from_wide(table: pd.DataFrame) -> SessionData:
    """lavaan's wide table (with covariates c1, c2) as long data."""
    frame = long_data(grid_from_wide(table.drop(columns=["c1", "c2"]))).to_long()
    index = frame["dyad"].str[1:].astype(int)
    frame["c1"] = table["c1"].to_numpy()[index]
    frame["c2"] = table["c2"].to_numpy()[index]
    return _data(frame)


def _check_lavaan(result, reference: pd.DataFrame) -> None:
    """logLik within 1e-6; B (``m<k>``, ``g<k>_<a>``), Phi, Sigma_B and their SEs
    within 1e-4 relative of the larger of the value and its SE."""
    fit = result.fit
    assert fit.converged
    assert abs(fit.loglik - reference.loc["logLik", "est"]) < 1e-6
    se = np.sqrt(np.diag(fit.cov))
    names = fit.parameter_names
    for v in range(4):
        for a in range(3):
            ref = reference.loc[f"m{v + 1}" if a == 0 else f"g{v + 1}_{a}"]
            at = v * 3 + a
            floor = max(abs(ref["est"]), ref["se"])
            assert abs(fit.estimate[at] - ref["est"]) <= 1e-4 * floor, names[at]
            assert abs(se[at] - ref["se"]) <= 1e-4 * ref["se"], names[at]
    for i in range(4):
        for j in range(4):
            ref = reference.loc[f"p{i + 1}_{j + 1}"]
            floor = max(abs(ref["est"]), ref["se"])
            assert abs(fit.phi[i, j] - ref["est"]) <= 1e-4 * floor
        for j in range(i, 4):
            ref = reference.loc[f"b{i + 1}_{j + 1}"]
            assert abs(fit.sigma_b[i, j] - ref["est"]) <= 1e-4 * max(abs(ref["est"]),
                                                                    ref["se"])


def _lavaan_fit(table: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return apim.fit(_from_wide(table), DynamicAPIMSpec("y", ("x",), initial="free",
                                                           covariates=("c1", "c2")))


def test_committed_riclpm_reference_with_covariates():
    """lavaan's RI-CLPM with the random intercepts regressed on the covariates
    (tests/reference/lavaan_riclpm.R) is the same model."""
    table = pd.read_csv(REFERENCE / "dynamic_covariates.csv")
    reference = pd.read_csv(REFERENCE / "dynamic_covariates_lavaan.csv").set_index("label")
    _check_lavaan(_lavaan_fit(table), reference)


@pytest.mark.r
def test_live_riclpm_refit_with_covariates(tmp_path):
    sys.path.insert(0, str(REFERENCE))
    from dynamic_make_data import covariate_table
    table = covariate_table(80, 5, seed=77)
    _check_lavaan(_lavaan_fit(table), run_riclpm(table, tmp_path))
