"""The generalized APIM through the protocol: its design is the Gaussian APIM's, results
(z tests, odds ratios, thresholds, JSON, Wald tests) and the bad-input checks."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import apim
from apim.errors import DataError, SpecError
from apim.inference.wald import wald_test
from apim.model.fitted import EFFECT_COLUMNS, FittedModel
from apim.model.generalized_spec import GeneralizedAPIMSpec


def _frame(seed: int = 0, n: int = 40, sessions: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(1, n + 1):
        u = rng.normal(size=2)
        level = rng.normal(size=2)
        for s in range(1, sessions + 1):
            x = level + rng.normal(size=2)
            for r, role in enumerate(("patient", "therapist")):
                eta = -0.2 + 0.8 * x[r] + 0.4 * x[1 - r] + u[r]
                latent = eta + rng.logistic()
                rows.append({"dyad": d, "session": s, "role": role, "x": x[r],
                             "event": int(latent > 0),
                             "grade": int(np.digitize(latent, [-1.0, 0.5, 2.0])),
                             "arm": "A" if d % 2 else "B"})
    return pd.DataFrame(rows)


def _data(frame: pd.DataFrame) -> apim.SessionData:
    return apim.SessionData.from_long(frame, dyad="dyad", session="session", role="role",
                                      roles=("patient", "therapist"))


@pytest.fixture(scope="module")
def binary() -> apim.GeneralizedAPIMResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return apim.fit(_data(_frame()), GeneralizedAPIMSpec("event", ("x",), nagq=1))


def test_result_follows_the_protocol(binary):
    assert isinstance(binary, FittedModel)
    assert list(binary.effects.columns) == EFFECT_COLUMNS
    assert binary.reference == "z" and np.isinf(binary.df_values()).all()
    # the fixed effects are the Gaussian APIM's terms
    gaussian = apim.fit(_data(_frame()), apim.APIMSpec("x", ("event",)))
    assert [t.effect for t in binary.terms] == [t.effect for t in gaussian.terms]
    odds = binary.odds_ratios
    assert np.allclose(odds["odds_ratio"], np.exp(binary.effects["estimate"]))
    payload = json.loads(json.dumps(binary.to_dict(), allow_nan=False))
    assert payload["family"] == "binomial" and payload["nagq"] == 1
    assert payload["loglik"] == pytest.approx(binary.statistics.loglik)
    assert {"term", "estimate", "se", "p"} <= set(payload["fixed"][0])
    assert payload["thresholds"] == []
    test = wald_test(binary, "patient.actor.within.x = therapist.actor.within.x")
    assert np.isfinite(test.p_value) if hasattr(test, "p_value") else True
    frame = binary.fitted_frame()
    assert frame["fitted"].between(0, 1).all() and len(frame) == binary.statistics.n_obs
    assert "Odds ratios" in binary.summary() and "Laplace" in binary.model_line()


def test_ordinal_thresholds_per_role_and_shared():
    data = _data(_frame(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per_role = apim.fit(data, GeneralizedAPIMSpec("grade", ("x",), family="ordinal",
                                                      nagq=1))
        shared = apim.fit(data, GeneralizedAPIMSpec("grade", ("x",), family="ordinal",
                                                    nagq=1, thresholds="shared"))
    assert not any(t.effect == "intercept" for t in per_role.terms)
    table = per_role.thresholds
    assert list(table["role"].unique()) == ["patient", "therapist"]
    assert list(table["category"][:3]) == ["0|1", "1|2", "2|3"]
    assert np.all(np.diff(table["estimate"][:3]) > 0)
    assert set(shared.thresholds["role"]) == {"both"}
    # shared thresholds are a restriction: no better fit; 3 fewer parameters
    assert shared.statistics.loglik <= per_role.statistics.loglik + 1e-6
    assert per_role.statistics.n_params - shared.statistics.n_params == 3
    # a positive actor effect on the latent scale means higher categories
    assert per_role.effects.loc["patient.actor.within.x", "estimate"] > 0


@pytest.mark.parametrize("codes, recode", [((1, 2), "== 2"), (("no", "yes"), "== 'yes'")])
def test_binary_coding_other_than_0_1_is_named(codes, recode):
    frame = _frame()
    frame["event"] = np.where(frame["event"] == 1, codes[1], codes[0])
    with pytest.raises(DataError, match=r"coded .* not 0/1: recode it") as error:
        apim.fit(_data(frame), GeneralizedAPIMSpec("event", ("x",), nagq=1))
    assert recode in str(error.value) and "rows" in str(error.value)


def test_more_than_two_values_points_to_ordinal():
    with pytest.raises(DataError, match="--family ordinal"):
        apim.fit(_data(_frame()), GeneralizedAPIMSpec("grade", ("x",), nagq=1))


def test_a_continuous_outcome_points_to_the_gaussian_apim():
    frame = _frame()
    frame["score"] = frame["grade"] + 0.25
    with pytest.raises(DataError, match=r"continuous outcome fit the Gaussian APIM") as error:
        apim.fit(_data(frame), GeneralizedAPIMSpec("score", ("x",), nagq=1))
    assert "ordinal" not in str(error.value)


def test_a_category_one_role_never_uses():
    frame = _frame()
    frame.loc[(frame["role"] == "therapist") & (frame["grade"] == 3), "grade"] = 2
    with pytest.raises(DataError, match=r"role 'therapist' never uses category 3.*shared"):
        apim.fit(_data(frame), GeneralizedAPIMSpec("grade", ("x",), family="ordinal"))


def test_separation_is_refused_and_named():
    frame = _frame()
    frame.loc[frame["arm"] == "B", "event"] = 1  # every session of arm B is an event
    with pytest.raises(DataError, match=r"separation.*arm"):
        apim.fit(_data(frame), GeneralizedAPIMSpec("event", ("x",), moderators=("arm",),
                                                   nagq=1))


def test_no_events_and_few_events():
    frame = _frame()
    frame["event"] = 0
    with pytest.raises(DataError):
        apim.fit(_data(frame), GeneralizedAPIMSpec("event", ("x",), nagq=1))
    frame = _frame()
    rare = frame["event"].to_numpy().copy()
    rare[np.flatnonzero(rare == 1)[30:]] = 0
    frame["event"] = rare
    with pytest.warns(apim.errors.SmallSampleWarning, match="events of the rarer outcome"):
        apim.fit(_data(frame), GeneralizedAPIMSpec("event", ("x",), nagq=1))


def test_refusals():
    with pytest.raises(SpecError, match="maximum likelihood only"):
        GeneralizedAPIMSpec("event", ("x",), method="REML")
    with pytest.raises(SpecError, match="nagq=0"):
        GeneralizedAPIMSpec("event", ("x",), nagq=0)
    with pytest.raises(SpecError, match="df='containment' does not apply"):
        apim.fit(_data(_frame()), GeneralizedAPIMSpec("event", ("x",)), df="containment")
    with pytest.raises(SpecError, match="thresholds='role'"):
        GeneralizedAPIMSpec("g", ("x",), family="ordinal", distinguishable=False,
                            thresholds="role")


def test_fitting_does_not_change_the_data():
    data = _data(_frame())
    before = data.frame.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        apim.fit(data, GeneralizedAPIMSpec("event", ("x",), nagq=1))
    pd.testing.assert_frame_equal(data.frame, before)


def test_average_marginal_effects_against_brute_force(binary):
    """AME = the mean change in P(event) per unit of the predictor part over the rows of
    the outcome role (random intercepts 0), by differences of predicted probabilities;
    its delta-method SE = the SD of the AME over draws from the coefficients' normal
    approximation."""
    from scipy.stats import logistic

    table = binary.marginal_effects.set_index("term")
    X = binary.design_matrix()
    beta = binary.coef
    role = binary.design.model.role
    rng = np.random.default_rng(0)
    draws = rng.multivariate_normal(beta.to_numpy(), binary.cov_coef.to_numpy(), size=4000)
    for term in ("patient.actor.within.x", "therapist.partner.between.x"):
        rows = role == (0 if term.startswith("patient") else 1)
        j = list(X.columns).index(term)
        shifted = X.to_numpy().copy()
        shifted[:, j] += 1e-4
        up = logistic.cdf(shifted @ beta.to_numpy())
        now = logistic.cdf(X.to_numpy() @ beta.to_numpy())
        brute = ((up - now) / 1e-4)[rows].mean()
        assert table.loc[term, "ame"] == pytest.approx(brute, rel=1e-3)
        eta = X.to_numpy()[rows] @ draws.T
        sims = (logistic.pdf(eta) * draws[:, j]).mean(axis=0)
        assert table.loc[term, "se"] == pytest.approx(sims.std(), rel=0.06)


def test_ordinal_marginal_effects_sum_to_zero_over_categories():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = apim.fit(_data(_frame(1)), GeneralizedAPIMSpec("grade", ("x",),
                                                                family="ordinal", nagq=1))
    table = result.marginal_effects
    assert set(table["category"]) == {"0", "1", "2", "3"}
    assert np.allclose(table.groupby("term")["ame"].sum(), 0, atol=1e-12)
    payload = result.to_dict()
    assert len(payload["marginal_effects"]) == len(table)
    assert payload["thresholds"][0]["category"] == "0|1"


def test_declared_but_unused_ordinal_category_is_named():
    frame = _frame()
    frame["grade"] = pd.Categorical(frame["grade"], categories=[0, 1, 2, 3, 4], ordered=True)
    with pytest.raises(DataError, match=r"declares category 4 that no row uses"):
        apim.fit(_data(frame), GeneralizedAPIMSpec("grade", ("x",), family="ordinal"))


def test_likelihood_ratio_test_and_notes(binary):
    from apim.inference.compare import likelihood_ratio_test

    frame = _frame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = apim.fit(_data(frame), GeneralizedAPIMSpec("event", ("x",), nagq=1,
                                                          interaction=True))
    test = likelihood_ratio_test(binary, full)
    assert test.df == 4 and test.chi2 >= -1e-8
    assert test.chi2 == pytest.approx(2 * (full.statistics.loglik
                                           - binary.statistics.loglik))
    quiet = frame.copy()
    quiet.loc[quiet["dyad"] <= 3, "event"] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = apim.fit(_data(quiet), GeneralizedAPIMSpec("event", ("x",), nagq=1))
    assert any("dyads had no event" in note for note in result.notes())


def test_predicted_probabilities_follow_the_coefficients(binary):
    table = binary.predicted_probabilities("patient.actor.within.x", points=5)
    events = table[table["category"] == "1"]
    assert len(events) == 5 and events["probability"].between(0, 1).all()
    slope = binary.coef["patient.actor.within.x"]
    assert np.all(np.sign(np.diff(events["probability"])) == np.sign(slope))
    assert np.allclose(table.groupby("value")["probability"].sum(), 1)
    with pytest.raises(SpecError, match="not a fixed effect"):
        binary.predicted_probabilities("patient.actor.within.nope")
    from apim.report.probability import probability_plot

    figure = probability_plot(binary)
    assert len(figure.axes) == 2
    # the probability axis ends just above the highest line (rare events stay visible)
    highest = max(max(line.get_ydata()) for ax in figure.axes for line in ax.get_lines())
    assert highest <= figure.axes[0].get_ylim()[1] <= min(1.0, 1.15 * highest) + 1e-12
    assert figure.axes[0].get_ylim() == figure.axes[1].get_ylim()
