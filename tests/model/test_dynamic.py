"""The dynamic APIM (issue 22): the Kalman-filter likelihood against a dense oracle (each
dyad's stacked covariance built explicitly) on unbalanced data with gaps, invariances,
constraints on Phi, the protocol, and bad input."""

from __future__ import annotations

import html
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from dynamic_oracle import assert_problem_gradient, dense_loglik
from dynamic_support import PHI, SIGMA_B, SIGMA_W, long_data, simulate_grid, stationary, with_gaps

import apim
from apim.data.session import SessionData
from apim.engine.dynamic.estimate import _Problem
from apim.engine.dynamic.kalman import evaluate, prepare_dynamic, stationary_covariance
from apim.engine.dynamic.parameters import DynamicLayout, DynamicParameters
from apim.errors import BoundaryWarning, DataError, DataWarning
from apim.inference.wald import wald_test
from apim.model.dynamic import session_grid
from apim.model.dynamic_spec import DynamicAPIMSpec
from apim.model.fitted import FittedModel

SPEC = DynamicAPIMSpec("y", ("x",))


def _random_parameters(rng: np.random.Generator, k: int, singular_between: bool = False):
    phi = rng.normal(scale=0.3, size=(k, k))
    a = rng.normal(size=(k, k))
    sw = a @ a.T / k + 0.3 * np.eye(k)
    b = rng.normal(size=(k, 2 if singular_between else k))
    sb = b @ b.T / k
    c = rng.normal(size=(k, k))
    p0 = c @ c.T / k + 0.2 * np.eye(k)
    return rng.normal(size=k), phi, sw, sb, p0


def _gappy(seed: int, n: int = 25, t: int = 7, k: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n, t, k))
    y[rng.random(y.shape) < 0.15] = np.nan          # missing ratings
    y[rng.random((n, t)) < 0.15] = np.nan           # skipped sessions
    y[0, :3] = np.nan                               # a dyad that starts late
    y[1, 4:] = np.nan                               # one that drops out
    y[2, 1:] = np.nan                               # one with a single session
    return y


@pytest.mark.parametrize("initial", ["free", "stationary"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kalman_filter_equals_dense_oracle(initial, seed):
    rng = np.random.default_rng(100 + seed)
    y = _gappy(seed)
    mu, phi, sw, sb, p0 = _random_parameters(rng, 3, singular_between=seed == 3)
    if initial == "stationary":
        phi = phi * 0.8 / max(1.0, float(np.max(np.abs(np.linalg.eigvals(phi)))))
        p0 = stationary(phi, sw)
    data = prepare_dynamic(y)
    ev = evaluate(data, phi, sw, sb, p0, mu=mu)
    assert abs(ev.loglik - dense_loglik(y, mu, phi, sw, sb, p0)) < 1e-8
    # the profiled means are the GLS estimate: the dense likelihood is maximal there
    prof = evaluate(data, phi, sw, sb, p0)
    at = dense_loglik(y, prof.mu, phi, sw, sb, p0)
    assert abs(prof.loglik - at) < 1e-8
    for j in range(3):
        step = np.zeros(3)
        step[j] = 1e-3
        assert dense_loglik(y, prof.mu + step, phi, sw, sb, p0) < at
        assert dense_loglik(y, prof.mu - step, phi, sw, sb, p0) < at


@pytest.mark.parametrize("initial", ["free", "stationary"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_analytic_gradient_equals_central_differences(initial, seed):
    """The adjoint of the filter (natural and unconstrained parameters, means given and
    profiled, constraints on Phi) against central differences of the likelihood."""
    rng = np.random.default_rng(200 + seed)
    y = _gappy(seed)
    free = np.ones((3, 3), bool)
    free[0, 2] = False
    layout = DynamicLayout(3, initial, tuple(map(tuple, free.tolist())),
                           (((0, 1), (1, 0)),) if seed == 2 else ())
    problem = _Problem(prepare_dynamic(y), layout)
    mu, phi, sw, sb, p0 = _random_parameters(rng, 3, singular_between=seed == 3)
    phi = phi * 0.6 / max(1.0, float(np.max(np.abs(np.linalg.eigvals(phi)))))
    if seed == 3:
        sb = sb + 0.05 * np.eye(3)      # log-Cholesky needs it positive definite
    params = DynamicParameters(mu, phi, sw, sb, p0)
    assert_problem_gradient(problem, layout.pack(layout.unpack(layout.pack(params))))


def test_stationary_covariance_closed_form():
    phi, sw = np.array([[0.5]]), np.array([[0.75]])
    assert stationary_covariance(phi, sw)[0, 0] == pytest.approx(1.0, abs=1e-14)
    assert np.allclose(stationary_covariance(PHI, SIGMA_W), stationary(PHI, SIGMA_W),
                       atol=1e-12)


_FITS: dict = {}


def _fit(y: np.ndarray, spec: DynamicAPIMSpec = SPEC, **kwargs):
    """Fits are cached by data and spec: several tests read the same fit."""
    key = (y.tobytes(), spec.digest(), tuple(sorted(kwargs.items())))
    if key not in _FITS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            warnings.simplefilter("ignore", BoundaryWarning)
            _FITS[key] = apim.fit(long_data(y, **kwargs), spec)
    return _FITS[key]


@pytest.fixture(scope="module")
def unbalanced() -> np.ndarray:
    return with_gaps(simulate_grid(60, 5, seed=5), seed=6)


@pytest.mark.parametrize("initial", ["free", "stationary"])
def test_fitted_loglik_equals_dense_oracle(unbalanced, initial):
    result = _fit(unbalanced, DynamicAPIMSpec("y", ("x",), initial=initial))
    fit = result.fit
    assert result.statistics.converged
    dense = dense_loglik(unbalanced, fit.mu, fit.phi, fit.sigma_w, fit.sigma_b, fit.p0)
    assert abs(result.statistics.loglik - dense) < 1e-8
    if initial == "stationary":
        assert np.allclose(fit.p0, stationary(fit.phi, fit.sigma_w), atol=1e-10)
    # an optimum: no small move of Phi raises the dense likelihood
    for i, j in [(2, 0), (3, 1), (0, 2)]:
        for step in (1e-3, -1e-3):
            phi = fit.phi.copy()
            phi[i, j] += step
            p0 = stationary(phi, fit.sigma_w) if initial == "stationary" else fit.p0
            assert dense_loglik(unbalanced, fit.mu, phi, fit.sigma_w, fit.sigma_b,
                                p0) < dense
    # the free initial condition nests the stationary one
    if initial == "free":
        other = _fit(unbalanced, DynamicAPIMSpec("y", ("x",), initial="stationary"))
        assert other.statistics.loglik <= result.statistics.loglik + 1e-6


def test_invariant_to_row_order_dyad_labels_and_role_order(unbalanced):
    base = _fit(unbalanced)
    frame = long_data(unbalanced).to_long()
    frame = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    frame["dyad"] = "z" + frame["dyad"].str[::-1]
    shuffled = SessionData.from_long(frame, dyad="dyad", session="session", role="role",
                                     roles=("patient", "therapist"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        again = apim.fit(shuffled, SPEC)
        swapped = apim.fit(SessionData.from_long(frame, dyad="dyad", session="session",
                                                 role="role",
                                                 roles=("therapist", "patient")), SPEC)
    assert again.statistics.loglik == pytest.approx(base.statistics.loglik, abs=1e-7)
    assert np.allclose(again.fit.phi, base.fit.phi, atol=1e-5)
    assert swapped.statistics.loglik == pytest.approx(base.statistics.loglik, abs=1e-7)
    order = [1, 0, 3, 2]
    assert np.allclose(swapped.fit.phi, base.fit.phi[np.ix_(order, order)], atol=1e-5)
    assert swapped.coef["patient.actor.lagged.x"] == pytest.approx(
        base.coef["patient.actor.lagged.x"], abs=1e-5)


def test_sessions_start_at_the_studys_first_session(unbalanced):
    """Shifting every session number changes nothing; a dyad whose first rated session
    is late still starts its process at the study's first session."""
    base = _fit(unbalanced)
    shifted = _fit(unbalanced, first_session=11)
    assert shifted.statistics.loglik == pytest.approx(base.statistics.loglik, abs=1e-7)
    assert list(shifted.sessions[[0, -1]]) == [11, 15]
    late = unbalanced.copy()
    late[:, 0] = np.nan  # nobody rated session 1: the grid starts at session 2
    assert _fit(late).sessions[0] == 2


def test_no_reverse_paths_and_equal_roles(unbalanced):
    full = _fit(unbalanced)
    forward = _fit(unbalanced, DynamicAPIMSpec("y", ("x",), reverse_paths=False))
    table = forward.lagged
    reverse = (table["to_variable"] == "x") & (table["from_variable"] == "y")
    assert (table.loc[reverse, "estimate"] == 0).all() and table.loc[reverse, "fixed"].all()
    assert not table.loc[~reverse, "fixed"].any()
    assert forward.statistics.n_params == full.statistics.n_params - 4
    assert forward.statistics.loglik <= full.statistics.loglik + 1e-6
    equal = _fit(unbalanced, DynamicAPIMSpec("y", ("x",), equal_roles=True))
    phi = equal.fit.phi
    order = [1, 0, 3, 2]
    assert np.allclose(phi, phi[np.ix_(order, order)], atol=1e-12)
    assert equal.statistics.loglik <= full.statistics.loglik + 1e-6
    hypothesis = wald_test(full, "patient.actor.lagged.x = therapist.actor.lagged.x")
    assert 0 <= hypothesis.p <= 1


def test_protocol_json_and_text(unbalanced):
    result = _fit(unbalanced)
    assert isinstance(result, FittedModel)
    assert result.effects.loc["patient.actor.lagged.x", "level"] == "lagged"
    assert result.effects.loc["patient.alliance.actor.lagged.y".replace("alliance", "x"),
                              "effect"] == "x.actor"
    out = json.loads(json.dumps(result.to_dict()))
    assert {"loglik", "fixed", "lagged"} <= set(out)
    assert len(out["lagged"]) == 16
    entry = out["lagged"][2 * 4 + 0]   # y[patient] <- x[patient]
    assert (entry["to_variable"], entry["to_role"], entry["from_variable"],
            entry["from_role"]) == ("y", "patient", "x", "patient")
    assert entry["estimate"] == pytest.approx(result.coef["patient.actor.lagged.x"])
    assert {"estimate", "se", "z", "p"} <= set(entry)
    assert len(out["eigenvalues"]) == 4
    assert np.allclose(sorted(abs(np.linalg.eigvals(result.fit.phi))),
                       sorted(e["modulus"] for e in out["eigenvalues"]))
    text = result.summary()
    assert "Eigenvalues of Phi" in text and "patient" in text
    std = result.standardized
    sd = np.sqrt(np.diag(stationary(result.fit.phi, result.fit.sigma_w)))
    assert std["estimate"].iloc[2 * 4] == pytest.approx(
        result.fit.phi[2, 0] * sd[0] / sd[2], rel=1e-6)


def test_recovers_the_simulated_lagged_effects():
    """One large replicate: every Phi entry within 3.5 SEs of the truth (the bias and
    coverage over many replicates are in benchmarks/dynamic_simulation.py)."""
    y = simulate_grid(250, 6, seed=77)
    result = _fit(y, DynamicAPIMSpec("y", ("x",), initial="stationary"))
    lagged = result.lagged
    z = (lagged["estimate"].to_numpy() - PHI.reshape(-1)) / lagged["se"].to_numpy()
    assert np.max(np.abs(z)) < 3.5
    assert np.allclose(result.fit.sigma_b, SIGMA_B, atol=0.25)


# bad input ------------------------------------------------------------------------

def _long(y: np.ndarray) -> pd.DataFrame:
    return long_data(y).to_long()


def test_non_integer_and_duplicated_sessions_are_refused():
    frame = _long(simulate_grid(6, 3, seed=1))
    frame["session"] = frame["session"].astype(float)
    frame.loc[4, "session"] = 1.5
    with pytest.raises(DataError, match="session"):
        SessionData.from_long(frame, dyad="dyad", session="session", role="role")
    frame = _long(simulate_grid(6, 3, seed=1))
    frame.loc[5, "session"] = frame.loc[3, "session"]
    frame.loc[5, "role"] = frame.loc[3, "role"]
    frame.loc[5, "dyad"] = frame.loc[3, "dyad"]
    with pytest.raises(DataError, match="duplicate|twice|more than once"):
        SessionData.from_long(frame, dyad="dyad", session="session", role="role")


def test_dyads_with_one_session_warn_and_no_lags_refused():
    y = simulate_grid(30, 4, seed=2)
    y[:3, 1:] = np.nan
    with pytest.warns(DataWarning, match="3 dyads have a single rated session.*d000"):
        session_grid(long_data(y), SPEC)
    y[:, 1:] = np.nan
    with pytest.raises(DataError, match="no dyad has two rated sessions"):
        session_grid(long_data(y), SPEC)


def test_variable_constant_within_dyads_is_refused():
    y = simulate_grid(20, 4, seed=3)
    y[:, :, 1] = y[:, :1, 1]   # the therapist's x never changes within a dyad
    with pytest.raises(DataError, match="'x' of role 'therapist' is constant within every "
                                        "dyad"):
        session_grid(long_data(y), SPEC)


def test_non_stationary_process_is_reported():
    """An explosive process (Phi = 1.15 I): under initial='stationary' the estimate stays
    inside the stable region but near its edge, and the warning says so and points to
    initial='free'; under 'free' the explosive Phi is estimated and reported."""
    y = simulate_grid(60, 7, seed=9, phi=1.15 * np.eye(4), p0=np.eye(4))
    with pytest.warns(BoundaryWarning, match="edge of stationarity.*initial='free'"):
        apim.fit(long_data(y), DynamicAPIMSpec("y", ("x",), initial="stationary"))
    with pytest.warns(BoundaryWarning, match="not stable.*grows"):
        result = apim.fit(long_data(y), DynamicAPIMSpec("y", ("x",)))
    assert result.eigenvalues["modulus"].max() > 1
    assert "not stationary" in " ".join(result.notes())


# impulse responses and the side-by-side comparison ------------------------------------

def test_impulse_responses_are_powers_of_phi(unbalanced, tmp_path):
    result = _fit(unbalanced, DynamicAPIMSpec("y", ("x",), initial="stationary"))
    table = result.impulse_responses("x", "patient", horizon=4)
    fit = result.fit
    sd = np.sqrt(stationary(fit.phi, fit.sigma_w)[0, 0])
    for h in range(5):
        expected = np.linalg.matrix_power(fit.phi, h)[:, 0] * sd
        got = table.loc[table["sessions_after"] == h, "response"].to_numpy()
        assert np.allclose(got, expected, atol=1e-10), h
    start = table[table["sessions_after"] == 0]
    assert (start["se"].iloc[1:] == 0).all()
    later = table[table["sessions_after"] == 1]
    assert (later["se"] > 0).all()
    assert (later["ci_low"] < later["response"]).all()
    with pytest.raises(apim.errors.SpecError, match="no variable 'z'"):
        result.impulse_responses("z", "patient")
    from apim.report.impulse import impulse_figure
    figure = impulse_figure(table, "the patient's x")
    figure.savefig(tmp_path / "irf.png")
    assert len(figure.axes[0].get_lines()) == 3  # both roles' y and the zero line
    assert (tmp_path / "irf.png").stat().st_size > 1000


def test_person_mean_centring_biases_the_autoregression_down():
    """With 5 sessions the person-mean-centred lag model's autoregression is far below the
    dynamic APIM's (Nickell bias about -(1 + phi)/(T - 1) = -.35 at phi = .4)."""
    from apim.analyses.centring_bias import compare_centring

    y = simulate_grid(150, 5, seed=21)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        comparison = compare_centring(long_data(y), DynamicAPIMSpec("y", ("x",),
                                                                    initial="stationary"))
    table = comparison.table
    auto = table.loc["patient.autoregression.lagged.y"]
    assert auto["difference"] < -0.15
    assert abs(auto["dynamic"] - PHI[2, 2]) < 3 * auto["dynamic_se"]
    assert len(table) == 8 and table["centred_se"].gt(0).all()
    assert comparison.dynamic.statistics.converged


def test_lagged_effect_names_with_two_predictors():
    from apim.model.dynamic import lagged_terms

    spec = DynamicAPIMSpec("y", ("x", "z"))
    terms = lagged_terms(spec, ("patient", "therapist"))
    assert len(terms) == 36
    names = {(i, j): t.name for i, j, t in terms}
    # engine order: x[P], x[T], z[P], z[T], y[P], y[T]
    assert names[(4, 0)] == "patient.actor.lagged.x"
    assert names[(4, 3)] == "patient.partner.lagged.z"
    assert names[(5, 5)] == "therapist.autoregression.lagged.y"
    assert names[(0, 4)] == "patient.x.actor.lagged.y"       # a reverse path
    assert names[(2, 0)] == "patient.z.actor.lagged.x"       # predictor to predictor
    assert names[(3, 2)] == "therapist.z.partner.lagged.z"
    assert len(set(names.values())) == 36


def _own_before_partner(names: list[str]) -> None:
    """In each role's equation, for each variable it comes from, the member's own
    (actor or autoregression) effect comes right before the partner's."""
    lagged = [n for n in names if ".lagged." in n]
    for position, name in enumerate(lagged):
        if ".partner.lagged." in name:
            role_and_target, source = name.split(".partner.lagged.")
            before = lagged[position - 1]
            own = {f"{role_and_target}.actor.lagged.{source}",
                   f"{role_and_target}.autoregression.lagged.{source}"}
            assert position > 0 and before in own, (name, before)


def test_effects_in_actor_partner_order_for_both_roles(unbalanced):
    from apim.model.dynamic import effect_names

    names = effect_names(DynamicAPIMSpec("y", ("x", "z")), ("patient", "therapist"))
    _own_before_partner(names)
    assert names[2:6] == ["patient.actor.lagged.x", "patient.partner.lagged.x",
                          "patient.actor.lagged.z", "patient.partner.lagged.z"]
    assert names[8:10] == ["therapist.actor.lagged.x", "therapist.partner.lagged.x"]
    result = _fit(unbalanced)
    fitted = list(result.coef.index)
    assert fitted == effect_names(SPEC, ("patient", "therapist"))
    _own_before_partner(fitted)
    table = result.effects
    rows = [(r, e, lv, p) for r, e, lv, p in zip(table["outcome_role"], table["effect"],
                                                table["level"], table["predictor"])
            if lv == "lagged"]
    assert [f"{r}.{e}.{lv}.{p}" for r, e, lv, p in rows] == [n for n in fitted
                                                             if ".lagged." in n]
    # the coefficients still sit with their entries of Phi (therapist actor: y_T <- x_T)
    assert result.coef["therapist.actor.lagged.x"] == pytest.approx(result.fit.phi[3, 1])
    assert result.coef["therapist.partner.lagged.x"] == pytest.approx(result.fit.phi[3, 0])


def test_multi_group_model_is_one_fit_per_group_and_tests_arm_differences():
    """A moderator: one model per group on the study's session grid; each group's fit is
    the fit of its dyads alone, and arm_differences compares the groups' lagged effects."""
    from apim.inference.arms import arm_differences

    first = with_gaps(simulate_grid(45, 5, seed=41), seed=42, dropout=False)
    phi = PHI.copy()
    phi[2, 0] = 0.45
    second = with_gaps(simulate_grid(45, 5, seed=43, phi=phi), seed=44, dropout=False)
    frames = []
    for arm, y in (("CBT", first), ("AFT", second)):
        frame = long_data(y).to_long()
        frame["dyad"] = arm + frame["dyad"]
        frame["treatment"] = arm
        frames.append(frame)
    data = SessionData.from_long(pd.concat(frames, ignore_index=True), dyad="dyad",
                                 session="session", role="role",
                                 roles=("patient", "therapist"))
    spec = DynamicAPIMSpec("y", ("x",), moderator="treatment", reference={"treatment": "CBT"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = apim.fit(data, spec)
    assert result.groups == ["CBT", "AFT"]
    alone = _fit(first)
    assert result.fits["CBT"].loglik == pytest.approx(alone.statistics.loglik, abs=1e-6)
    assert result.statistics.loglik == pytest.approx(
        sum(f.loglik for f in result.fits.values()))
    assert "patient.actor.lagged.x[AFT]" in result.coef.index
    assert set(result.effects["group"]) == {"CBT", "AFT"}
    table = arm_differences(result)
    row = table[table["effect"] == "patient.actor.lagged.x"].iloc[0]
    assert row["contrast"] == "AFT − CBT"
    assert row["difference"] == pytest.approx(
        result.coef["patient.actor.lagged.x[AFT]"] - result.coef["patient.actor.lagged.x[CBT]"])
    assert set(result.lagged["group"]) == {"CBT", "AFT"} and len(result.lagged) == 32
    assert "reference group treatment = CBT" in result.summary()
    with pytest.raises(apim.errors.SpecError, match="fits\\[group\\]"):
        _ = result.fit


def test_html_report_words_the_rows_the_dynamic_model_does_not_use(unbalanced, tmp_path):
    """The data section lists only rows with none of the model's variables rated (the
    rows the dynamic APIM leaves out), not the rows a dyadic fit would drop: rows with
    one of the two ratings missing are used."""
    from apim.model.dynamic_result import UNUSED_HEADING
    from apim.report.html import fit_report

    y = unbalanced.copy()
    y[0, 1, 0] = np.nan          # the patient's x missing, y rated: the row is used
    y[1, 2, [1, 3]] = np.nan     # the therapist rated nothing at a session: not used
    result = _fit(y)
    frame = result.data.frame
    x_missing = frame["row"][frame["x"].isna() & frame["y"].notna()]
    assert len(x_missing) > 0
    unused = set(result.dropped["row"])
    assert unused and not unused & set(x_missing)
    report = result.data_report()
    assert [set(e.rows) for e in report.exclusions] == [unused]
    assert report.unused_heading == UNUSED_HEADING
    assert "a dyadic fit would not use" not in str(report)
    text = fit_report(result, tmp_path / "report.html", figures=False)
    assert html.escape(UNUSED_HEADING) in text
    assert "a dyadic fit would not use" not in text
    docx = pytest.importorskip("docx")
    from apim.report.docx_report import fit_report_docx

    fit_report_docx(result, tmp_path / "report.docx")
    paragraphs = [p.text for p in docx.Document(str(tmp_path / "report.docx")).paragraphs]
    assert any(p.startswith(UNUSED_HEADING) for p in paragraphs)
    assert not any("dyadic fit" in p for p in paragraphs)
    # the plain data report keeps the dyadic wording, which lists the partly rated rows
    plain = result.data.report(["x", "y"])
    assert "a dyadic fit would not use" in plain.to_html()
    assert set(x_missing) <= {r for e in plain.exclusions for r in e.rows}
