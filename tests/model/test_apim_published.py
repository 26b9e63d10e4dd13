"""APIM results against published tables (Acitelli couples, Kashy diary couples).

The Acitelli tests read the copy bundled with apim; the Kashy tests need the shared data.

Standard errors of ML fits follow ``vcov()`` (as SAS and lme4 do): nlme's printed
``summary()`` of an ML fit multiplies them by sqrt(N / (N - p)) (``adjustSigma``), so a
published nlme ML table shows SEs 0.2-0.5% larger; the tests below compare ML fits by
logLik only, and ``test_apim_trust.py::test_ml_standard_errors_follow_vcov`` checks the
factor against the published ML table.
"""

from __future__ import annotations

import pytest

import apim
from apim import APIMSpec, CovarianceSpec, DecompositionSpec, FormulaSpec, SessionData
from apim.datasets.couples import acitelli_path
from apim.errors import SpecError
from apim.inference.compare import distinguishability_test, likelihood_ratio_test
from apim.inference.effect_sizes import pseudo_r2
from apim.inference.wald import wald_test

NO_RANDOM = CovarianceSpec(random="none")
RAW = DecompositionSpec(center="none")


@pytest.fixture(scope="module")
def acitelli(acitelli_csv):
    """The bundled copy (no skip without the shared data; see conftest.acitelli_csv)."""
    return SessionData.from_long(acitelli_csv,
                                 dyad="cuplid", role="gender", roles=(1, -1))


@pytest.fixture(scope="module")
def kashy(shared):
    return SessionData.from_pairwise(shared / "kashy_diary" / "kashy_person_period_pairwise.csv",
                                     dyad="dyadid", session="Day", role="person", roles=(1, 2))


def near(value, printed, decimals):
    return abs(value - printed) <= 0.5 * 10 ** -decimals + 1e-12


def test_acitelli_indistinguishable_apim(acitelli):
    spec = APIMSpec("satisfaction", ("other_pos",), decomposition=RAW,
                    covariance=NO_RANDOM,
                    distinguishable=False)
    result = apim.fit(acitelli, spec)
    eff = result.effects
    assert near(eff.loc["both.actor.none.other_pos", "estimate"], 0.4004231, 7)
    assert near(eff.loc["both.partner.none.other_pos", "estimate"], 0.2879705, 7)
    assert near(eff.loc["both.actor.none.other_pos", "se"], 0.0473141, 7)
    assert near(eff.loc["both.intercept", "estimate"], 0.6697541, 7)
    assert near(result.engine.loglik, -148.3591, 4)
    assert near(result.engine.aic, 306.7183, 4) and near(result.engine.bic, 325.1191, 4)
    assert near(result.variance.loc["residual cor(1,-1)", "estimate"], 0.4693414, 7)
    assert near(result.variance.loc["residual sd", "estimate"], 0.4173659, 7)
    r2 = pseudo_r2(result)
    assert near(r2["pseudo_r2"].iloc[0], 0.29462, 5)


def test_acitelli_distinguishable_apim_and_pseudo_r2(acitelli):
    spec = APIMSpec("satisfaction", ("other_pos",), decomposition=RAW,
                    covariance=NO_RANDOM)
    result = apim.fit(acitelli, spec)
    eff = result.effects
    printed = {"1.intercept": (0.6904589, 0.3429034), "-1.intercept": (0.6112485, 0.4128195),
               "1.actor.none.other_pos": (0.4243866, 0.0677157),
               "-1.actor.none.other_pos": (0.3777000, 0.0739222),
               "1.partner.none.other_pos": (0.2616498, 0.0614025),
               "-1.partner.none.other_pos": (0.3214782, 0.0815225)}
    for term, (b, se) in printed.items():
        assert near(eff.loc[term, "estimate"], b, 7) and near(eff.loc[term, "se"], se, 7)
    assert near(result.engine.loglik, -150.1108, 4)
    var = result.variance["estimate"]
    assert near(var["residual sd(1)"], 0.3783372, 7)
    assert near(var["residual sd(-1)"] / var["residual sd(1)"], 1.203894, 5)  # nlme: 1e-6
    assert near(var["residual sd(1)"] ** 2, 0.143139, 6)
    r2 = pseudo_r2(result).set_index("outcome_role")["pseudo_r2"]
    assert near(r2["-1"], 0.2615, 4) and near(r2["1"], 0.3288, 4)


def test_acitelli_distinguishability_test(acitelli):
    spec = APIMSpec("satisfaction", ("other_pos",), decomposition=RAW,
                    covariance=NO_RANDOM)
    test = distinguishability_test(acitelli, spec)
    assert test.df == 4
    assert near(test.chi2, 7.277053, 6)
    assert near(test.p, 0.122, 3)
    assert near(test.loglik_full, -137.8035, 4) and near(test.loglik_reduced, -141.4420, 4)


def test_dyadr_model_through_the_formula_interface():
    data = SessionData.from_pairwise(acitelli_path(),
                                     dyad="CoupleID", role="Gender_A",
                                     roles=("Husband", "Wife"))
    result = apim.fit(data, FormulaSpec("Satisfaction ~ Tension + SelfPos_partner",
                                        residual="cs"))
    eff = result.effects
    for term, (b, se) in {"Intercept": (4.7190, 0.2366), "Tension": (-0.3454, 0.0329),
                          "SelfPos_partner": (-0.0656, 0.0516)}.items():
        assert near(eff.loc[term, "estimate"], b, 4) and near(eff.loc[term, "se"], se, 4)
    assert near(result.variance.loc["residual cor(Husband,Wife)", "estimate"], 0.4715039, 7)
    assert near(result.engine.loglik, -139.7464, 4)


def test_acitelli_moderation_table(acitelli):
    formula = ("satisfaction ~ Ct * Co + Ct * Cop + Ctp * Co + Ctp * Cop")
    frame = acitelli.frame.assign(Ct=acitelli.frame["tension"] - 2.4307,
                                  Co=acitelli.frame["other_pos"] - 4.2635)
    data = acitelli.replace(frame)
    result = apim.fit(data, FormulaSpec(formula.replace("Ctp", "Ct_partner")
                                        .replace("Cop", "Co_partner"), residual="cs"))
    eff = result.effects
    printed = {"Intercept": (3.66219519, 0.02521459), "Ct": (-0.27673060, 0.03161413),
               "Co": (0.23543956, 0.04305102), "Co_partner": (0.16605698, 0.04305102),
               "Ct_partner": (-0.09822890, 0.03161413),
               "Ct:Co": (0.18506735, 0.05961508), "Ct:Co_partner": (0.19373113, 0.06258840),
               "Ct_partner:Co": (0.13293798, 0.06258840),
               "Ct_partner:Co_partner": (0.03151737, 0.05961508)}
    for term, (b, se) in printed.items():
        assert near(eff.loc[term, "estimate"], b, 6), term
        assert near(eff.loc[term, "se"], se, 6), term


def test_kashy_a1_interaction_approach(kashy):
    result = apim.fit(kashy, FormulaSpec("satisf ~ genderE * (conflict + conflict_partner)",
                                         random="0 + man + woman + conflict + conflict_partner"))
    eff = result.effects
    printed = {"Intercept": (6.793863, 0.05703066), "genderE": (-0.105341, 0.02716656),
               "conflict": (-0.162913, 0.01535975), "conflict_partner": (-0.067184, 0.01275868),
               "genderE:conflict": (0.023139, 0.01104504),
               "genderE:conflict_partner": (-0.005632, 0.01091235)}
    for term, (b, se) in printed.items():  # SEs: printed to 8 digits, nlme's own
        assert near(eff.loc[term, "estimate"], b, 6)  # convergence gives ~6: 1e-4 of an SE
        assert abs(eff.loc[term, "se"] - se) <= 1e-4 * se
    fit = result.engine
    assert fit.n_obs == 2833 and fit.n_dyads == 103
    assert near(fit.loglik, -2548.449, 3)
    assert near(fit.aic, 5134.899, 3) and near(fit.bic, 5247.891, 3)
    assert (result.df_values() > 0).all()
    containment = apim.model.result.APIMResult(result.design, fit, df="containment")
    assert (containment.effects["df"] == 2725).all()
    var = fit.variance["estimate"]
    # variance parameters: within 1e-4 relative (DESIGN.md asks 1e-3), not all printed
    # digits, which are beyond nlme's own convergence
    printed = {"sd(man)": 0.60782469, "sd(woman)": 0.48142010, "rho": 0.2570029,
               "sigma(0)": 0.52654298, "cor(man,woman)": 0.756}
    for name, value in printed.items():
        assert var[name] == pytest.approx(value, rel=1e-4 if name != "cor(man,woman)" else 1e-3)
    assert var["sigma(1)"] / var["sigma(0)"] == pytest.approx(1.041919, rel=1e-4)
    assert len(result.dropped) == 2884 - 2833


def kashy_b1(kashy, center: str):
    reference = "grand" if center == "person" else "means"
    spec = APIMSpec("satisf", ("Cconflict",), covariance=CovarianceSpec(random="slopes"),
                    decomposition=DecompositionSpec(center=center, reference=reference))
    return apim.fit(kashy, spec)


def test_kashy_b1_two_intercept_random_slopes(kashy):
    result = kashy_b1(kashy, "none")
    eff = result.effects
    printed = {"1.intercept": (6.2642, 0.0663), "2.intercept": (6.4078, 0.0517),
               "1.actor.none.Cconflict": (-0.1493, 0.0220),
               "2.actor.none.Cconflict": (-0.1935, 0.0219),
               "1.partner.none.Cconflict": (-0.0676, 0.0199),
               "2.partner.none.Cconflict": (-0.0596, 0.0181)}
    for term, (b, se) in printed.items():
        assert near(eff.loc[term, "estimate"], b, 4) and near(eff.loc[term, "se"], se, 4)
    assert near(result.engine.loglik, -2482.983, 3)
    var = result.variance["estimate"]
    for name, printed_sd in {"dyad sd(1)": 0.65278194, "dyad sd(2)": 0.49750818,
                             "dyad sd(1.actor.none.Cconflict)": 0.15064922,
                             "dyad sd(2.actor.none.Cconflict)": 0.15907621,
                             "dyad sd(1.partner.none.Cconflict)": 0.13787629,
                             "dyad sd(2.partner.none.Cconflict)": 0.09493208,
                             "residual sd(1)": 0.50108605}.items():
        assert var[name] == pytest.approx(printed_sd, rel=1e-3), name
    assert var["residual cor(1,2)"] == pytest.approx(0.2979139, rel=1e-4)
    assert var["residual sd(2)"] / var["residual sd(1)"] == pytest.approx(1.062079, rel=1e-4)
    assert near(var["dyad cor(1,2)"], 0.792, 3)
    # dyadr::lincomb: Actor_M - Actor_W = 0.04427 (SE 0.03115, p .155)
    test = wald_test(result, "1.actor = 2.actor")
    assert near(test.estimate[0], 0.04427, 5) and near(test.se[0], 0.03115, 5)
    assert near(test.p_chi2, 0.155, 3)


def test_kashy_b1_person_centred(kashy):
    result = kashy_b1(kashy, "person")
    eff = result.effects
    printed = {"1.actor.within.Cconflict": (-0.1489, 0.0221),
               "2.actor.within.Cconflict": (-0.1940, 0.0216),
               "1.partner.within.Cconflict": (-0.0626, 0.0199),
               "2.partner.within.Cconflict": (-0.0591, 0.0180),
               "1.actor.between.Cconflict": (-0.3305, 0.1018),
               "2.actor.between.Cconflict": (-0.2310, 0.0816),
               "1.partner.between.Cconflict": (-0.2313, 0.0998),
               "2.partner.between.Cconflict": (-0.2215, 0.0829)}
    for term, (b, se) in printed.items():
        assert near(eff.loc[term, "estimate"], b, 4), term
        assert near(eff.loc[term, "se"], se, 4), term
    assert near(result.engine.loglik, -2490.239, 3)


def test_likelihood_ratio_rules(acitelli):
    spec = APIMSpec("satisfaction", ("other_pos",), decomposition=RAW,
                    covariance=NO_RANDOM)
    reml_a = apim.fit(acitelli, spec)
    reml_b = apim.fit(acitelli, spec.replace(covariates=("Yearsmar",)))
    with pytest.raises(SpecError, match="refit both with method='ML'"):
        likelihood_ratio_test(reml_a, reml_b)
    ml = spec.replace(method="ML")
    test = likelihood_ratio_test(apim.fit(acitelli, ml),
                                 apim.fit(acitelli, ml.replace(covariates=("Yearsmar",))))
    assert test.df == 2 and test.chi2 >= 0
    with pytest.raises(SpecError, match="pass the smaller model first"):
        likelihood_ratio_test(apim.fit(acitelli, ml.replace(covariates=("Yearsmar",))),
                              apim.fit(acitelli, ml))
