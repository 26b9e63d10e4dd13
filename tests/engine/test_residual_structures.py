"""The residual structures' protocol and registry (the likelihood of every registered
structure against the dense oracle: tests/engine/test_engine.py, parametrised by RESIDUAL_NAMES)."""

from __future__ import annotations

import numpy as np
import pytest

from apim.engine.mixed.residuals import (
    RESIDUAL_NAMES,
    Residual,
    SessionResidual,
    register,
    residual_names,
)
from apim.engine.mixed.residuals.base import registered
from apim.errors import SpecError

#: the structures of the family ``s_r s_r' c_rr' phi^|t-s|`` (the tests of the protocol
#: itself run on every registered structure)
FAMILY = [n for n in RESIDUAL_NAMES if isinstance(Residual.named(n), SessionResidual)]


def test_names_come_from_the_registered_classes():
    assert RESIDUAL_NAMES == residual_names() == tuple(c.name for c in registered())
    assert RESIDUAL_NAMES[:4] == ("independent", "diagonal", "cs", "un")
    for name in RESIDUAL_NAMES:
        assert Residual.named(name).name == name


def test_unknown_name_is_a_spec_error_listing_the_names():
    with pytest.raises(SpecError, match="un-ar1"):
        Residual.named("toeplitz")


def test_a_name_registers_once():
    with pytest.raises(ValueError, match="taken"):
        @register
        class Again(SessionResidual):
            name = "un"
            parameters = ("sigma(0)", "sigma(1)", "rho")


def test_parameters_are_checked_when_the_class_is_defined():
    with pytest.raises(TypeError, match="sigma"):
        class Bad(SessionResidual):  # rho before the SDs
            name = "bad"
            parameters = ("rho", "sigma")


@pytest.mark.parametrize("name", FAMILY)
def test_pooled_counterpart_has_equal_variances_and_the_same_correlations(name):
    structure = Residual.named(name)
    pooled = structure.pooled
    assert pooled.equal_variances
    assert (pooled.correlated, pooled.ar1) == (structure.correlated, structure.ar1)
    assert structure == Residual.named(name) and hash(structure) == hash(Residual.named(name))


@pytest.mark.parametrize("name", FAMILY)
def test_start_records_and_rescale_agree(name):
    structure = Residual.named(name)
    assert isinstance(structure, SessionResidual)
    theta = structure.start(np.array([4.0, 4.0]), 0.3, 0.5)
    assert len(theta) == structure.n_params
    records = structure.records(theta)
    sds = [p.estimate for p in records if p.kind == "sd"]
    np.testing.assert_allclose(sds, 2.0)
    doubled = [p.estimate for p in structure.records(structure.rescale(theta, 2.0))
               if p.kind == "sd"]
    np.testing.assert_allclose(doubled, 4.0)
    assert {p.kind for p in records} == ({"sd"} | ({"cor"} if structure.correlated else set())
                                         | ({"phi"} if structure.ar1 else set()))


@pytest.mark.parametrize("name", RESIDUAL_NAMES)
def test_dense_matrix_derivatives_equal_differences(name):
    structure = Residual.named(name)
    role = np.array([0, 1, 0, 1, 0])
    session = np.array([1, 1, 2, 2, 4])
    theta = np.random.default_rng(2).normal(scale=0.3, size=structure.n_params)
    r, dr = structure.dense(theta, role, session)
    assert np.all(np.linalg.eigvalsh(r) > 0)
    for j in range(structure.n_params):
        e = np.zeros(structure.n_params)
        e[j] = 1e-6
        numeric = (structure.dense(theta + e, role, session)[0]
                   - structure.dense(theta - e, role, session)[0]) / 2e-6
        np.testing.assert_allclose(dr[j], numeric, atol=1e-7)
