"""The engine's likelihood and analytic gradient against the dense oracle, REML and ML."""

from __future__ import annotations

import numpy as np
import pytest
from dense_oracle import dense_loglik

from apim.engine.mixed.likelihood import evaluate
from apim.engine.mixed.model import MixedModel, Prepared


def assert_matches_dense_oracle(model: MixedModel, theta: np.ndarray, tol: float) -> None:
    """logLik equal to the full-V oracle within ``tol``; gradient equal to central
    differences of the logLik (step 1e-6) within 1e-5."""
    prep = Prepared.of(model)
    for reml in (True, False):
        ev = evaluate(model, prep, theta, reml)
        assert ev.loglik == pytest.approx(dense_loglik(model, theta, reml), abs=tol)
        step = 1e-6
        fd = [(evaluate(model, prep, theta + e, reml, False).loglik
               - evaluate(model, prep, theta - e, reml, False).loglik) / (2 * step)
              for e in np.eye(len(theta)) * step]
        np.testing.assert_allclose(ev.gradient, fd, rtol=1e-5, atol=1e-5)
