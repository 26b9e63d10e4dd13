"""Off the happy path: units, singular fits, cross-sectional data, identification, effect
sizes that mean something, J-N regions beside the data, the ML SE convention."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import apim
from apim import APIMSpec, CovarianceSpec, DecompositionSpec, SessionData, report
from apim.cli import main
from apim.engine.control import FitControl
from apim.errors import BoundaryWarning, DataError, FitError, SpecError
from apim.inference.effect_sizes import effect_sizes
from apim.inference.slopes import johnson_neyman, simple_slopes

BASE = APIMSpec("outcome", ("alliance",))


@pytest.fixture(scope="module")
def alliance():
    return apim.load_alliance()


@pytest.fixture(scope="module")
def base(alliance):
    return apim.fit(alliance, BASE)


def rescaled(data: SessionData, column: str, factor: float) -> SessionData:
    frame = data.frame.copy()
    frame[column] = frame[column] * factor
    return data.replace(frame)


@pytest.mark.parametrize("column, factor", [("outcome", 1e-9), ("outcome", 1e9),
                                            ("alliance", 1e-12), ("outcome", 1e-12)])
def test_units_change_no_t_value(alliance, base, column, factor):
    result = apim.fit(rescaled(alliance, column, factor), BASE)
    assert result.engine.converged
    np.testing.assert_allclose(result.effects["t"], base.effects["t"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(result.effects["p"], base.effects["p"], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(result.effects["df"], base.effects["df"], rtol=1e-6)
    scale = factor if column == "outcome" else 1.0
    # estimates in the new units: times the outcome's factor, divided by the predictor's
    slope = (base.effects["effect"] != "intercept").to_numpy() & (column == "alliance")
    expected = base.effects["estimate"] * scale / np.where(slope, factor, 1.0)
    np.testing.assert_allclose(result.effects["estimate"], expected, rtol=1e-6)
    sd = result.variance.loc["residual sd(patient)", "estimate"]
    assert sd == pytest.approx(base.variance.loc["residual sd(patient)", "estimate"] * scale,
                               rel=1e-6)
    # REML logLik in nlme's convention moves by -(N - p) log(factor) for the outcome and
    # by -log(factor) per rescaled design column
    n, p = result.engine.n_obs, len(result.effects)
    k = int((result.effects["predictor"] == "alliance").sum()) if column == "alliance" else 0
    shift = -(n - p) * np.log(factor) if column == "outcome" else -k * np.log(factor)
    assert result.engine.loglik == pytest.approx(base.engine.loglik + shift, abs=1e-6)


def test_unscaled_fit_agrees_where_units_are_tame(alliance, base):
    plain = apim.model.design.build_design(alliance, BASE)
    from apim.engine.mixed.estimate import estimate_mixed as fit

    raw = fit(plain.model, "REML", FitControl(standardize=False))
    np.testing.assert_allclose(raw.coef, base.engine.coef, rtol=1e-7)
    np.testing.assert_allclose(raw.se, base.engine.se, rtol=1e-6)
    assert raw.loglik == pytest.approx(base.engine.loglik, abs=1e-7)


def test_constant_outcome_is_a_data_error(alliance):
    frame = alliance.frame.assign(outcome=3.0)
    with pytest.raises(DataError, match="'outcome' is constant"):
        apim.fit(alliance.replace(frame), BASE)


def test_linear_algebra_failure_becomes_fit_error(alliance, monkeypatch):
    import apim.engine.mixed.estimate as engine_fit

    def broken(*args, **kwargs):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(engine_fit, "evaluate", broken)
    with pytest.raises(FitError, match="simpler random part"):
        apim.fit(alliance, BASE)


def test_fit_control_is_checked_and_used(alliance):
    with pytest.raises(SpecError, match="max_newton=-1"):
        FitControl(max_newton=-1)
    design = apim.model.design.build_design(alliance, BASE)
    from apim.engine.mixed.estimate import estimate_mixed as fit

    rough = fit(design.model, "REML", FitControl(optimizer="L-BFGS-B", max_newton=0))
    assert rough.control.optimizer == "L-BFGS-B" and rough.message.startswith("L-BFGS-B")


# ------------------------------------------------------------------ singular fits
@pytest.fixture(scope="module")
def bolger_path(shared):
    return shared / "bolger_laurenceau_ch8_dyads" / "BLdyads_long.csv"


def test_bolger_laurenceau_singular_g_is_reported(bolger_path, tmp_path, capsys):
    """Random actor and partner slopes with independent residuals: G is singular
    (lme4: "singular fit"); apim says so in boundary, in the JSON and on stderr."""
    data = SessionData.from_wide(bolger_path, dyad="coupleid", session="time",
                                 roles=("f", "m"))
    spec = APIMSpec("reldis", ("wrkstrs",),
                    covariance=CovarianceSpec(random="slopes", residual="independent"))
    with pytest.warns(BoundaryWarning, match="singular") as caught:
        result = apim.fit(data, spec)
    boundary = [w for w in caught if issubclass(w.category, BoundaryWarning)]
    assert len(boundary) == 1
    assert "Satterthwaite df" in str(boundary[0].message)
    assert any("dyad-level random-effect covariance matrix is singular" in line
               for line in result.engine.boundary)
    values = np.linalg.eigvalsh(result.engine.G)
    assert values[0] < 1e-6 * values[-1]
    assert result.variance.loc[result.variance.index.str.startswith("dyad"),
                               "at_boundary"].all()
    payload = json.loads(report.to_json(result))
    assert payload["boundary"] == list(result.engine.boundary)
    assert "Satterthwaite" in payload["boundary_note"]
    assert all(p["at_boundary"] for p in payload["variance"]["parameters"]
               if p["level"] == "dyad")
    assert "boundary:" in result.summary()
    code = main(["fit", str(bolger_path), "--layout", "wide", "--dyad", "coupleid",
                 "--session", "time", "--roles", "f,m", "--outcome", "reldis",
                 "--predictor", "wrkstrs", "--random", "slopes", "--residual",
                 "independent"])
    err = capsys.readouterr().err
    assert code == 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert all(line.startswith("apim: warning: ") for line in lines)
    boundary = [line for line in lines if line.startswith("apim: warning: boundary estimate")]
    assert len(boundary) == 1 and "singular" in boundary[0]
    # the other line: work stress has almost no between-couple variance in these data
    # (person-mean variance 0.047 against 1.06/21 expected from the days alone), so its
    # person means are unreliable, and apim says so
    assert len(lines) == 2 and "person means of 'wrkstrs' are unreliable" in err


def test_regular_fit_has_no_boundary(base):
    assert base.engine.boundary == ()
    assert not base.variance["at_boundary"].any()


# ------------------------------------------------------------------ cross-sectional data
PUBLISHED_B4 = {"1.intercept": (0.6904589, 0.3429034), "-1.intercept": (0.6112485, 0.4128195),
                "1.actor.none.other_pos": (0.4243866, 0.0677157),
                "-1.actor.none.other_pos": (0.3777000, 0.0739222),
                "1.partner.none.other_pos": (0.2616498, 0.0614025),
                "-1.partner.none.other_pos": (0.3214782, 0.0815225)}


def test_cli_defaults_on_cross_sectional_data_reproduce_published_gls(acitelli_csv, tmp_path,
                                                                      capsys):
    """Only --dyad --role --roles --outcome --predictor: raw predictors, no random
    effects, role-specific residual variances and correlation (gls, PROVENANCE B4)."""
    out = tmp_path / "fit.json"
    code = main(["fit", str(acitelli_csv), "--dyad",
                 "cuplid", "--role", "gender", "--roles", "1,-1", "--outcome",
                 "satisfaction", "--predictor", "other_pos", "--json", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""
    payload = json.loads(out.read_text())
    assert payload["specification"]["covariance"]["random"] == "none"
    assert payload["specification"]["decomposition"]["center"] == "none"
    assert abs(payload["loglik"] - -150.1108) <= 5e-5
    fixed = {row["term"]: row for row in payload["fixed"]}
    for term, (b, se) in PUBLISHED_B4.items():
        assert abs(fixed[term]["estimate"] - b) <= 5e-8, term
        assert abs(fixed[term]["se"] - se) <= 5e-8, term
    assert abs(payload["variance"]["residual_sd"]["1"] - 0.3783372) <= 5e-8
    assert abs(payload["variance"]["residual_correlation"] - 0.4751092) <= 5e-7


def test_random_intercepts_with_one_observation_per_member_are_refused(acitelli_csv):
    data = SessionData.from_long(acitelli_csv,
                                 dyad="cuplid", role="gender", roles=(1, -1))
    spec = APIMSpec("satisfaction", ("other_pos",),
                    decomposition=DecompositionSpec(center="none"),
                    covariance=CovarianceSpec(random="intercepts", residual="cs"))
    with pytest.raises(SpecError, match="not identified.*use random='none'"):
        apim.fit(data, spec)
    code = main(["fit", str(acitelli_csv), "--dyad",
                 "cuplid", "--role", "gender", "--roles", "1,-1", "--outcome",
                 "satisfaction", "--predictor", "other_pos", "--random", "intercepts"])
    assert code == 2


def test_ml_standard_errors_follow_vcov(acitelli_csv):
    """Published nlme ML table (PROVENANCE B5, indistinguishable): nlme's summary() prints
    SEs times sqrt(N / (N - p)); apim's (like vcov(), SAS and lme4) are without it."""
    data = SessionData.from_long(acitelli_csv,
                                 dyad="cuplid", role="gender", roles=(1, -1))
    result = apim.fit(data, APIMSpec("satisfaction", ("other_pos",), distinguishable=False,
                                     method="ML"))
    n, p = result.engine.n_obs, len(result.effects)
    summary_se = result.effects["se"] * np.sqrt(n / (n - p))
    for term, printed in {"both.intercept": 0.3218874, "both.actor.none.other_pos": 0.0472926,
                          "both.partner.none.other_pos": 0.0472926}.items():
        assert abs(summary_se[term] - printed) <= 5e-7, term
    assert "vcov()" in result.summary()


# ------------------------------------------------------------------ effect sizes, J-N
def test_effect_sizes_d_only_for_dichotomous_predictors(alliance):
    result = apim.fit(alliance, BASE.replace(moderators=("treatment",)))
    sizes = effect_sizes(result)
    assert not (sizes["effect"] == "intercept").any()
    moderator = sizes[sizes["effect"] == "moderator"]
    assert len(moderator) == 2 and moderator["dichotomous"].all()
    eff = result.effects.loc[moderator.index]
    np.testing.assert_allclose(moderator["d"], 2 * eff["t"] / np.sqrt(eff["df"]))
    assert moderator["standardised"].isna().all()
    continuous = sizes[sizes["effect"].isin(["actor", "partner"]) & (sizes["by"] == "")]
    assert continuous["d"].isna().all() and continuous["standardised"].notna().all()
    eff = result.effects.loc[sizes.index]
    np.testing.assert_allclose(sizes["partial_r"], eff["t"] / np.sqrt(eff["t"] ** 2
                                                                       + eff["df"]))


def test_johnson_neyman_reports_the_observed_range(alliance):
    result = apim.fit(alliance, BASE.replace(interaction=True))
    jn = johnson_neyman(result, "patient.actor.within", "partner")
    partner = result.design.components.components.loc[result.design.used,
                                                      "alliance_within_partner"]
    patient = (alliance.frame.loc[result.design.used, "role"] == "patient").to_numpy()
    low, high = jn.observed_range
    assert low == pytest.approx(partner[patient].min())
    assert high == pytest.approx(partner[patient].max())
    assert jn.outside_range == tuple(not low <= b <= high for b in jn.bounds)
    text = str(jn)
    assert "observed" in text
    if any(jn.outside_range):
        assert "outside the observed range" in text
    at = simple_slopes(result, "patient.actor.within", "partner", at=[low, high])
    assert len(at) == 2


def test_no_warnings_on_a_regular_fit(alliance):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = apim.fit(alliance, BASE)
    assert [str(w.message) for w in caught] == []
    assert result.engine.converged and not result.engine.boundary


def test_person_centring_of_cross_sectional_data_is_refused(acitelli_csv):
    data = SessionData.from_long(acitelli_csv,
                                 dyad="cuplid", role="gender", roles=(1, -1))
    spec = APIMSpec("satisfaction", ("other_pos",),
                    decomposition=DecompositionSpec(center="person"))
    with pytest.raises(SpecError, match="within part is zero; use center='none'"):
        apim.fit(data, spec)
