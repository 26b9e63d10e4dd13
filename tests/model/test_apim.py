"""APIM layer: design, results, exports, tests and derived quantities, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import apim
from apim import APIMSpec, CovarianceSpec, DecompositionSpec, SessionData, report
from apim.cli import main
from apim.errors import SpecError
from apim.inference.compare import distinguishability_test
from apim.inference.effect_sizes import effect_sizes
from apim.inference.patterns import dyadic_patterns
from apim.inference.robustness import mixedlm_counterpart, within_dyad_fixed_effects
from apim.inference.slopes import johnson_neyman, simple_slopes
from apim.inference.surface import surface_parameters
from apim.inference.wald import contrast_matrix, wald_test
from apim.model.formula import response_surface

BASE = APIMSpec("outcome", ("alliance",))


@pytest.fixture(scope="module")
def data():
    return apim.load_alliance()


@pytest.fixture(scope="module")
def moderated(data):
    return apim.fit(data, BASE.replace(moderators=("treatment",), interaction=True))


def test_effects_table_columns_and_row_accounting(data, moderated):
    eff = moderated.effects
    assert list(eff.columns) == apim.model.fitted.EFFECT_COLUMNS
    assert set(eff["effect"]) == {"intercept", "actor", "partner", "actor_x_partner",
                                  "moderator"}
    assert set(eff["level"]) == {"none", "within", "between"}
    assert set(eff.loc[eff["by"] != "", "by"]) == {"treatment[AFT]"}
    assert moderated.engine.n_obs + len(moderated.dropped) == len(data.frame)
    assert moderated.dropped["reason"].str.startswith("missing").all()
    crit = stats.t.ppf(0.975, eff["df"])
    np.testing.assert_allclose(eff["ci_high"] - eff["estimate"], crit * eff["se"])
    np.testing.assert_allclose(eff["t"], eff["estimate"] / eff["se"])


def test_exports(moderated):
    md = report.to_markdown(moderated)  # APA tables: tests/report/test_report_tables.py
    assert md.splitlines()[0] == "**Fixed effects**"
    body = [line for line in md.split("**Variance components**")[0].splitlines()
            if line.startswith("| ")]
    assert len(body) == len(moderated.effects) + 2  # header, alignment, one row per effect
    assert report.to_latex(moderated).startswith(r"\begin{table}")
    assert "<table" in report.to_html(moderated)
    payload = json.loads(report.to_json(moderated))
    for key in ("specification", "n_obs", "n_dyads", "method", "loglik", "aic", "bic",
                "converged", "fit_seconds", "fixed", "variance", "dropped", "version"):
        assert key in payload
    assert payload["fixed"][1]["term"] == "patient.actor.within.alliance"
    assert set(payload["variance"]["residual_sd"]) == {"patient", "therapist"}
    assert "Fixed effects" in moderated.summary() and "Variance components" in str(moderated)


def test_wald_single_equation_equals_table_t(moderated):
    test = wald_test(moderated, "patient.actor.within = 0")
    row = moderated.effects.loc["patient.actor.within.alliance"]
    assert test.statistic == pytest.approx(row["t"])
    assert test.df_den == pytest.approx(row["df"], rel=1e-6)
    two = wald_test(moderated, "patient.actor.within = 0; therapist.actor.within = 0")
    assert two.df_num == 2 and two.statistic == pytest.approx(two.chi2 / 2)
    L, c = contrast_matrix("2*patient.actor.within - therapist.partner.between = 0.5",
                           list(moderated.engine.coef.index))
    assert c[0] == pytest.approx(0.5) and sorted(L[0][L[0] != 0]) == [-1.0, 2.0]
    with pytest.raises(SpecError, match="unknown effect"):
        wald_test(moderated, "patient.actr.within = 0")
    with pytest.raises(SpecError, match="linear"):
        wald_test(moderated, "patient.actor.within * therapist.actor.within = 0")


def test_simple_slopes_and_johnson_neyman(moderated):
    eff = moderated.effects
    table = simple_slopes(moderated, "patient.actor.within", "treatment[AFT]")
    assert table["at"].tolist() == [0.0, 1.0]
    base = eff.loc["patient.actor.within.alliance", "estimate"]
    extra = eff.loc["patient.actor.within.alliance|treatment[AFT]", "estimate"]
    assert table["slope"].tolist() == pytest.approx([base, base + extra])
    jn = johnson_neyman(moderated, "patient.actor.within", "partner")
    at = simple_slopes(moderated, "patient.actor.within", "partner", at=list(jn.bounds))
    crit = stats.t.ppf(0.975, at["df"].iloc[0])
    np.testing.assert_allclose(np.abs(at["t"]), crit, rtol=1e-8)
    # the hint lists what does moderate the effect (never the failing name again)
    with pytest.raises(SpecError, match=r"'session' does not moderate "
                       r"'patient.actor.within.alliance' in this model; what does: "
                       r"'treatment\[AFT\]', 'partner'$"):
        simple_slopes(moderated, "patient.actor.within", "session")


def test_effect_sizes_and_patterns(data):
    result = apim.fit(data, BASE)
    sizes = effect_sizes(result)
    # no effect sizes for intercepts; d only for dichotomous predictors (issue 9), so for
    # these continuous actor and partner effects it is missing
    assert list(sizes.index) == [n for n in result.effects.index if "intercept" not in n]
    t, df = result.effects.loc[sizes.index, "t"], result.effects.loc[sizes.index, "df"]
    np.testing.assert_allclose(sizes["partial_r"], t / np.sqrt(t ** 2 + df))
    assert sizes["d"].isna().all()
    frame = data.frame.loc[result.design.used]
    patient = frame["role"] == "patient"
    x = result.design.components.components.loc[result.design.used, "alliance_within"]
    y = frame["outcome"]
    ydev = y - y.groupby([frame["dyad"], frame["role"]]).transform("mean")
    xdev = x - x.groupby([frame["dyad"], frame["role"]]).transform("mean")
    expected = (result.effects.loc["patient.actor.within.alliance", "estimate"]
                * xdev[patient].std() / ydev[patient].std())
    assert sizes.loc["patient.actor.within.alliance", "standardised"] == pytest.approx(expected)
    patterns = dyadic_patterns(result, draws=4000)
    assert len(patterns) == 4  # two roles x two levels
    assert (patterns["ci_low"] <= patterns["k"]).all()
    assert (patterns["k"] <= patterns["ci_high"]).all()


def test_robustness_companions(data):
    result = apim.fit(data, BASE)
    fe = within_dyad_fixed_effects(result).set_index(["outcome_role", "effect"])
    # by hand: demean within dyad for the patient rows and regress
    frame = data.frame.loc[result.design.used]
    X = pd.DataFrame(result.design.model.X, index=frame.index,
                     columns=list(result.engine.coef.index))
    rows = frame["role"] == "patient"
    cols = ["patient.actor.within.alliance", "patient.partner.within.alliance"]
    xs = X.loc[rows, cols]
    ys = pd.Series(result.design.model.y, index=frame.index)[rows]
    g = frame.loc[rows, "dyad"]
    xd = xs - xs.groupby(g).transform("mean")
    yd = ys - ys.groupby(g).transform("mean")
    beta = np.linalg.lstsq(xd.to_numpy(), yd.to_numpy(), rcond=None)[0]
    assert fe.loc[("patient", "actor"), "estimate"] == pytest.approx(beta[0])
    assert fe.loc[("patient", "partner"), "estimate"] == pytest.approx(beta[1])
    with pytest.raises(SpecError, match="MixedLM"):
        mixedlm_counterpart(result)
    simple = apim.fit(data, BASE.replace(covariance=CovarianceSpec(residual="independent")))
    both = mixedlm_counterpart(simple)
    np.testing.assert_allclose(both["apim"], both["mixedlm"], atol=1e-4)


def test_response_surface_parameters(data):
    result = response_surface(data, "outcome", "alliance")
    table = surface_parameters(result).set_index(["outcome_role", "parameter"])
    b = result.engine.coef
    p = "patient.surface.none."
    assert table.loc[("patient", "a1"), "estimate"] == pytest.approx(b[p + "P"] + b[p + "T"])
    assert table.loc[("patient", "a4"), "estimate"] == pytest.approx(
        b[p + "P2"] - b[p + "PxT"] + b[p + "T2"])
    cov = result.engine.cov_coef
    se_a3 = np.sqrt(cov.loc[p + "P", p + "P"] + cov.loc[p + "T", p + "T"]
                    - 2 * cov.loc[p + "P", p + "T"])
    assert table.loc[("patient", "a3"), "se"] == pytest.approx(se_a3)


def test_specification_errors(data):
    with pytest.raises(SpecError, match="at least one predictor"):
        APIMSpec("outcome", ())
    with pytest.raises(SpecError, match="used twice"):
        APIMSpec("outcome", ("alliance", "alliance"))
    with pytest.raises(SpecError, match="residual='ar2'"):
        APIMSpec("outcome", ("alliance",), covariance=CovarianceSpec(residual="ar2"))
    bare = data.replace(data.frame)
    no_therapist = SessionData.from_long(bare.to_long().drop(columns="therapist"),
                                         dyad="dyad", session="session", role="role")
    with pytest.raises(SpecError, match="needs a therapist column"):
        apim.fit(no_therapist, BASE.replace(covariance=CovarianceSpec(therapist_level=True)))


def test_three_level_lag_and_detrend_designs_fit(data):
    three = apim.fit(data, BASE.replace(covariance=CovarianceSpec(therapist_level=True),
                                        decomposition=DecompositionSpec(center="therapist")))
    assert set(three.effects["level"]) == {"none", "within", "between", "therapist"}
    assert "therapist sd(intercept)" in three.variance.index
    lagged = apim.fit(data, BASE.replace(decomposition=DecompositionSpec(lag=1, detrend=True),
                                         covariates=("session",)))
    assert "patient.actor.within.alliance" in lagged.effects.index
    assert lagged.engine.n_obs < three.engine.n_obs  # first sessions have no lag
    assert any("lagged by 1 session" in reason for reason in lagged.dropped["reason"])


def test_cli_fit_json_and_errors(tmp_path, capsys):
    path = apim.datasets.alliance_path()
    out = tmp_path / "fit.json"
    code = main(["fit", path, "--dyad", "dyad", "--session", "session", "--role", "role",
                 "--therapist", "therapist", "--outcome", "outcome", "--predictor", "alliance",
                 "--moderator", "treatment", "--format", "markdown", "--json", str(out)])
    assert code == 0
    assert capsys.readouterr().out.startswith("**Fixed effects**")  # APA markdown
    payload = json.loads(out.read_text())
    assert payload["n_dyads"] == 240 and payload["converged"] is True
    assert payload["specification"]["moderators"] == ["treatment"]
    code = main(["fit", path, "--dyad", "dyad", "--session", "session", "--role", "role",
                 "--therapist", "therapist", "--outcome", "outcme", "--predictor",
                 "alliance"])
    err = capsys.readouterr().err
    assert code == 2 and "did you mean 'outcome'" in err and len(err.strip().splitlines()) == 1
    code = main(["fit", path, "--dyad", "dyad", "--session", "session", "--role", "role",
                 "--outcome", "outcome", "--predictor", "alliance", "--therapist-level"])
    assert code == 2


# ------------------------------------------------------------------ small simulations
def _indistinguishable_couples(rng: np.random.Generator, n: int = 80) -> SessionData:
    x = rng.normal(size=(n, 2))
    shared = rng.normal(scale=0.6, size=n)
    e = rng.normal(size=(n, 2)) * 0.7 + shared[:, None]
    y = 1 + 0.5 * x + 0.25 * x[:, ::-1] + e
    frame = pd.DataFrame({"couple": np.repeat(np.arange(n), 2), "member": np.tile(["a", "b"], n),
                          "x": x.ravel(), "y": y.ravel()})
    return SessionData.from_long(frame, dyad="couple", role="member")


def test_distinguishability_test_holds_its_size():
    rng = np.random.default_rng(2016)
    spec = APIMSpec("y", ("x",), decomposition=DecompositionSpec(center="none"),
                    covariance=CovarianceSpec(random="none"))
    p = np.array([distinguishability_test(_indistinguishable_couples(rng), spec).p
                  for _ in range(200)])
    rate = np.mean(p < 0.05)
    assert 0.015 <= rate <= 0.095, rate  # nominal 0.05; Monte Carlo SE 0.015


def test_k_interval_covers_the_true_k():
    rng = np.random.default_rng(7)
    spec = APIMSpec("y", ("x",), decomposition=DecompositionSpec(center="none"),
                    covariance=CovarianceSpec(random="none"), distinguishable=False)
    hits = []
    for _ in range(200):
        result = apim.fit(_indistinguishable_couples(rng), spec)
        row = dyadic_patterns(result, draws=2000, seed=1).iloc[0]
        hits.append(row["ci_low"] <= 0.5 <= row["ci_high"])
    assert 0.90 <= np.mean(hits) <= 0.99, np.mean(hits)


def test_p_values_print_in_one_apa_style(moderated):
    from apim.apa import p_value
    from apim.inference.wald import wald_test

    text = moderated.summary()
    assert "<.001" not in text  # the old summary style
    for p in moderated.effects["p"]:
        assert p_value(p) in text
    test = wald_test(moderated, "patient.actor.within = therapist.actor.within")
    assert f"p = {p_value(test.p)}" in str(test) or "p < .001" in str(test)
    assert "p = 0." not in str(test) and "e-" not in str(test)
