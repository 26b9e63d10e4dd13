"""The cluster-by-cluster likelihood (``evaluate(..., grouped=False)``) against the
per-cluster code it replaced (tests/oracles/engine_reference.py, verbatim from before) where
tests/engine/test_engine_grouped.py leaves gaps: the closed-form inverse of a 1 x 1 ``K`` (one
random effect) and of a 2 x 2 ``K`` far from the identity (large, almost collinear
random effects), and the small-matrix inverse against numpy's LU."""

from __future__ import annotations

import numpy as np
import pytest
from test_engine_grouped import assert_same_as_reference, model_of, parameters, sessions

from apim.engine.mixed.likelihood import _inverse_logdet
from apim.engine.mixed.model import Prepared


@pytest.mark.parametrize("residual", ["independent", "ar1-equal", "diagonal"])
def test_one_random_effect(residual):
    model = model_of(sessions(20, 5, "unbalanced", seed=11, single_role=True), residual)
    assert Prepared.of(model).width == 1
    assert_same_as_reference(model, parameters(model, 8), grouped=False)


@pytest.mark.parametrize("residual", ["un", "un-ar1"])
def test_large_almost_collinear_random_effects(residual):
    """SDs 20 and 20, correlation 0.99999: ``K = I + G A`` has entries in the thousands and
    a determinant far below their products (the closed form's cancellation)."""
    model = model_of(sessions(20, 8, "singles", seed=12), residual)
    theta = parameters(model, 9)
    theta[:3] = [np.log(20.0), 19.9999, np.log(0.1)]  # log-Cholesky rows of L
    assert model.random is not None
    g = model.random.matrix(theta[:3])
    assert g[0, 1] / np.sqrt(g[0, 0] * g[1, 1]) > 0.9999
    assert_same_as_reference(model, theta, grouped=False)


@pytest.mark.parametrize("width", [1, 2, 3])
def test_inverse_logdet_against_lu(width):
    """``K = I + G A`` with positive semi-definite ``G`` (one of them singular) and ``A``."""
    rng = np.random.default_rng(width)
    c = rng.normal(size=(5, width, width))
    g = c @ np.swapaxes(c, 1, 2)
    g[0] = np.outer(c[0, :, 0], c[0, :, 0])  # rank one
    z = rng.normal(size=(5, 7, width))
    k = np.eye(width) + g @ (np.swapaxes(z, 1, 2) @ z)
    inverse, logdet = _inverse_logdet(k)
    np.testing.assert_allclose(inverse, np.linalg.inv(k), rtol=1e-12, atol=1e-14)
    assert logdet == pytest.approx(np.linalg.slogdet(k)[1].sum(), rel=1e-13)
