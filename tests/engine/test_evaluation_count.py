"""``n_evaluations`` counts every likelihood evaluation of a fit, the Hessian's included."""

from __future__ import annotations

import numpy as np

import apim.engine.mixed.estimate as engine_fit
from apim.engine import MixedModel, Residual, Unstructured


def test_every_evaluation_is_counted(monkeypatch):
    rng = np.random.default_rng(4)
    dyad = np.repeat(np.arange(40), 10)
    role = np.tile([0, 1], 200)
    session = np.tile(np.repeat(np.arange(1, 6), 2), 40)
    X = np.column_stack([1 - role, role, rng.normal(size=400)])
    y = X @ [1.0, 2.0, 0.3] + rng.normal(size=(40, 2))[dyad, role] + rng.normal(size=400)
    model = MixedModel(y=y, X=X, dyad=dyad, role=role, session=session, Z=X[:, :2],
                       random=Unstructured(2), residual=Residual.named("un-ar1"))
    seen = [0]
    original = engine_fit.evaluate

    def counting(*args, **kwargs):
        seen[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(engine_fit, "evaluate", counting)
    result = engine_fit.estimate_mixed(model)
    assert result.converged
    # the final evaluation for the result table is the last counted one
    assert result.n_evaluations == seen[0]
    assert result.n_evaluations >= 2 * len(result.theta) + 1
