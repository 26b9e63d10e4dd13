"""APA tables: numbers equal the effects table, labels, notes, escaping, reprs."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import apim
from apim import report
from apim.report import labels as lab
from apim.report.tables import compare_table, effects_table, variance_table


@pytest.fixture(scope="module")
def data():
    return apim.load_alliance()


@pytest.fixture(scope="module")
def moderated(data):
    return apim.fit(data, apim.APIMSpec("outcome", ("alliance",), moderators=("treatment",)))


@pytest.fixture(scope="module")
def ml_fit(data):
    return apim.fit(data, apim.APIMSpec("outcome", ("alliance",), method="ML"),
                    df="containment")


def _number(text: str) -> float:
    return float(text.replace("−", "-"))


def test_apa_number_formats():
    assert lab.p_value(0.00099) == "< .001"
    assert lab.p_value(0.001) == ".001"
    assert lab.p_value(0.04951) == ".050"
    assert lab.p_value(float("nan")) == "—"
    assert lab.number(-1.234, 2) == "−1.23"
    assert lab.number(-0.001, 2) == "−0.00"  # a CI bound just below zero keeps its sign
    assert lab.stars(0.0004) == "***" and lab.stars(0.2) == ""


def test_effects_table_numbers_equal_the_effects(moderated):
    table = effects_table(moderated, digits=3)
    eff = moderated.effects
    frame = table.frame
    assert len(frame) == len(eff)
    for col, source, digits in (("b", "estimate", 3), ("SE", "se", 3), ("df", "df", 1),
                                ("t", "t", 2)):
        shown = frame[(col, "")].map(_number).to_numpy()
        np.testing.assert_allclose(shown, eff[source].to_numpy(), atol=0.5 * 10 ** -digits)
    crit = stats.t.ppf(0.975, eff["df"])
    np.testing.assert_allclose(frame[("95% CI", "LL")].map(_number),
                               eff["estimate"] - crit * eff["se"], atol=5e-4)
    for shown, p in zip(frame[("p", "")], eff["p"]):
        assert shown == ("< .001" if p < 0.001 else f"{p:.3f}".lstrip("0"))
    assert all(re.fullmatch(r"−?\d+\.\d", v) for v in frame[("df", "")])


def test_effects_table_labels_and_notes(moderated):
    table = effects_table(moderated)
    effects = list(table.frame[("Effect", "")])
    assert "Actor alliance (within-person)" in effects
    assert "Partner alliance (between-person) × treatment AFT" in effects
    assert "treatment AFT (vs CBT)" in effects
    outcomes = [v for v in table.frame[("Outcome", "")] if v]
    assert outcomes == ["Patient's outcome", "Therapist's outcome"]
    notes = " ".join(table.notes)
    assert "reference category CBT" in notes
    assert "Satterthwaite" in notes
    assert table.header.startswith(moderated.model_line())
    assert f"{moderated.engine.n_obs} observations" in table.header


def test_ml_note_and_containment(ml_fit):
    notes = " ".join(effects_table(ml_fit).notes)
    assert "ML standard errors" in notes and "√(N/(N − p))" in notes
    assert "containment" in notes


def test_three_level_and_pooled_labels(data):
    three = apim.fit(data, apim.APIMSpec(
        "outcome", ("alliance",), decomposition=apim.DecompositionSpec(center="therapist"),
        covariance=apim.CovarianceSpec(therapist_level=True)))
    effects = list(effects_table(three).frame[("Effect", "")])
    assert "Actor alliance (between-therapist)" in effects
    assert "Actor alliance (between-dyad, within therapist)" in effects
    assert "Therapist" in set(variance_table(three).frame["Level"])
    pooled = apim.fit(data, apim.APIMSpec("outcome", ("alliance",), distinguishable=False))
    table = effects_table(pooled)
    assert "Both members' outcome" in set(table.frame[("Outcome", "")])
    assert "Indistinguishable" in " ".join(table.notes)


def test_variance_table_follows_result_variance(data):
    small = data.replace(data.frame[data.frame["dyad"] <= 40].reset_index(drop=True))
    result = apim.fit(small, apim.APIMSpec(
        "outcome", ("alliance",), covariance=apim.CovarianceSpec(random="slopes",
                                                                 residual="ar1")))
    table = variance_table(result)
    var = result.variance
    assert len(table.frame) == len(var)
    np.testing.assert_allclose(table.frame["Estimate"].map(_number), var["estimate"],
                               atol=5e-4)
    components = list(table.frame["Component"])
    assert "SD of patient intercepts" in components
    assert "SD of patient actor alliance slope (within-person)" in components
    assert any("φ" in c for c in components)
    assert "AR(1)" in " ".join(table.notes)


def test_latex_is_booktabs_and_escaped(data):
    frame = data.frame.rename(columns={"alliance": "wai_total"})
    renamed = data.replace(frame)
    result = apim.fit(renamed, apim.APIMSpec("outcome", ("wai_total",)))
    latex = report.to_latex(result)
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert rule in latex
    assert r"wai\_total" in latex and "wai_total" not in latex.replace(r"wai\_total", "")
    assert r"95\% CI" in latex
    assert "−" not in latex and "×" not in latex  # unicode replaced by LaTeX
    assert latex.count(r"\begin{table}") == 2


def test_markdown_and_html(moderated):
    md = report.to_markdown(moderated)
    assert md.splitlines()[0] == "**Fixed effects**"
    assert "| Outcome | Effect | b | SE | df | t | p | 95% CI LL | 95% CI UL |" in md
    assert "**Variance components**" in md
    text = report.to_html(moderated)
    assert text.count("<table") == 2
    assert "&lt; .001" in text and "reference category CBT" in text


def test_compare_table(data, ml_fit):
    wider = apim.fit(data, apim.APIMSpec("outcome", ("alliance",), method="ML",
                                         interaction=True))
    table = compare_table({"APIM": ml_fit, "interaction": wider})
    frame = table.frame
    assert list(frame.columns) == ["Term", "APIM", "interaction"]
    row = frame.index[frame["Term"] == "Patient's outcome: Actor alliance (within-person)"][0]
    est = ml_fit.effects.loc["patient.actor.within.alliance"]
    assert frame.at[row, "APIM"] == lab.number(est["estimate"], 2) + lab.stars(est["p"])
    assert frame.at[row + 1, "APIM"] == f"({lab.number(est['se'], 2)})"
    inter = frame.index[frame["Term"].str.contains("Actor × partner")][0]
    assert frame.at[inter, "APIM"] == "" and frame.at[inter, "interaction"] != ""
    stats_rows = frame.set_index("Term")
    assert stats_rows.at["logLik", "APIM"] == lab.number(ml_fit.engine.loglik, 2)
    assert stats_rows.at["Observations", "interaction"] == str(wider.engine.n_obs)


def test_json_keys_unchanged(moderated):
    payload = json.loads(report.to_json(moderated))
    assert {"specification", "fixed", "variance", "dropped", "loglik"} <= set(payload)
    assert set(payload["variance"]) >= {"random_effects", "G", "residual_sd", "table"}


def test_reprs(moderated, data):
    text = repr(moderated)
    assert text.startswith("<APIMResult: APIM of 'outcome'") and "240 dyads" in text
    assert moderated._repr_html_().count("<table") == 2
    rep = data.report(["alliance", "outcome"])
    assert "240 dyads" in repr(rep) and "patient (reference)" in repr(rep)
    html = rep._repr_html_()
    assert "missing alliance" in html and "<table" in html


def test_tables_do_not_change_the_result(moderated):
    before = moderated.effects.copy()
    effects_table(moderated)
    variance_table(moderated)
    pd.testing.assert_frame_equal(before, moderated.effects)
