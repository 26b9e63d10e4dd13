"""Specifications: typed fields, round trips through dictionaries and JSON, stable digests."""

from __future__ import annotations

import json

import pytest

from apim import APIMSpec, CovarianceSpec, DecompositionSpec, FormulaSpec, SimulationSpec
from apim.errors import SpecError

SPECS = [
    APIMSpec("outcome", ("alliance",)),
    APIMSpec("outcome", ("alliance", "bond"), moderators=("treatment",), interaction=True,
             decomposition=DecompositionSpec(center="therapist", lag=1, detrend=True),
             covariance=CovarianceSpec(random="slopes", residual="un-ar1",
                                       therapist_level=True), method="ML"),
    FormulaSpec("y ~ x + x_partner", random="0 + a + b", residual="cs"),
    SimulationSpec(n_dyads=20, partner_within=(0.1, 0.3)),
    DecompositionSpec(reference="grand", lag_by="order"),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: type(s).__name__)
def test_round_trip_through_json(spec):
    text = json.dumps(spec.to_dict())
    again = type(spec).from_dict(json.loads(text))
    assert again == spec
    assert again.digest() == spec.digest()


def test_digests_tell_specs_apart_and_ignore_construction_details():
    a = APIMSpec("outcome", ["alliance"])
    assert a == APIMSpec("outcome", ("alliance",)) and a.digest() == SPECS[0].digest()
    assert a.digest() != a.replace(interaction=True).digest()
    assert len({s.digest() for s in SPECS}) == len(SPECS)


@pytest.mark.parametrize("build, words", [
    (lambda: APIMSpec("y", ("x",), interaction="False"), "interaction='False' must be true"),
    (lambda: APIMSpec("y", ("x",), distinguishable=1), "distinguishable=1 must be true"),
    (lambda: DecompositionSpec(lag=True), "lag=True must be a whole number"),
    (lambda: DecompositionSpec(lag=1.5), "lag=1.5 must be a whole number"),
    (lambda: APIMSpec("y", ("x",), method="reml"), "method='reml' is not one of"),
    (lambda: CovarianceSpec(random="slope"), "random='slope' is not one of"),
    (lambda: CovarianceSpec(residual="ar2"), "residual='ar2' is not one of"),
    (lambda: APIMSpec("y", (1,)), "predictors=1 must be text"),
    (lambda: SimulationSpec(partner_within=(0.1,)), "must have 2 values"),
    (lambda: SimulationSpec(n_dyads="10"), "n_dyads='10' must be a whole number"),
    (lambda: APIMSpec.from_dict({"outcome": "y", "predictors": ["x"], "centring": "latent"}),
     "APIMSpec has no field 'centring'"),
    (lambda: APIMSpec("y", ("x",), covariance={"random": "sloped"}), "random='sloped'"),
])
def test_wrong_types_are_errors(build, words):
    with pytest.raises(SpecError, match=words.replace("(", r"\(")):
        build()


def test_lists_become_tuples_and_nested_dicts_become_specs():
    spec = APIMSpec("y", ["x"], moderators=["m"], covariance={"residual": "cs"})
    assert spec.predictors == ("x",) and spec.moderators == ("m",)
    assert spec.covariance == CovarianceSpec(residual="cs")
    assert SimulationSpec(actor_within=[0.2, 0.3]).actor_within == (0.2, 0.3)
