"""Every row of the APIM effects table on the bundled data against nlme fits of the same
model: committed reference values and, when R is installed, live refits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from apim_support import SPECS, run_nlme
from nlme_support import REFERENCE, assert_variance_matches

import apim
from apim import CovarianceSpec


def assert_matches_nlme(name: str, ref: pd.DataFrame) -> None:
    spec = SPECS[name][0]
    result = apim.fit(apim.load_alliance(), spec, df="containment")
    assert result.engine.converged
    r = ref[ref["model"] == name]
    get = lambda kind: r.loc[r["kind"] == kind, "value"].to_numpy()  # noqa: E731
    effects = result.effects
    se = get("se")
    assert len(effects) == len(se)
    np.testing.assert_array_less(np.abs(effects["estimate"].to_numpy() - get("fixed")),
                                 1e-4 * se)
    np.testing.assert_array_less(np.abs(effects["se"].to_numpy() - se), 1e-4 * se)
    np.testing.assert_array_equal(effects["df"].to_numpy(), get("df"))
    assert result.engine.loglik == pytest.approx(get("loglik")[0], abs=1e-3)
    assert_variance_matches(result.engine, get("loglik")[0], r[r["kind"] == "var"])


@pytest.mark.parametrize("name", list(SPECS))
def test_bundled_data_against_committed_nlme(name):
    assert_matches_nlme(name, pd.read_csv(REFERENCE / "nlme_bundled.csv"))


@pytest.mark.r
@pytest.mark.parametrize("name", list(SPECS))
def test_bundled_data_against_live_nlme(name, tmp_path):
    assert_matches_nlme(name, run_nlme(name, tmp_path))


def test_un_ar1_apim_against_dense_oracle():
    """UN x AR(1) residuals (nlme cannot fit them) on 25 bundled dyads: the APIM's
    log-likelihood and fixed effects at the optimum against the dense oracle."""
    from dense_oracle import dense_covariance, dense_loglik

    data = apim.load_alliance()
    small = data.replace(data.frame[data.frame["dyad"] <= 25].reset_index(drop=True))
    spec = SPECS["within_between"][0].replace(covariance=CovarianceSpec(residual="un-ar1"))
    result = apim.fit(small, spec)
    model = result.design.model
    assert result.engine.loglik == pytest.approx(dense_loglik(model, result.engine.theta),
                                                 abs=1e-8)
    v = dense_covariance(model, result.engine.theta)
    X = model.X
    cov = np.linalg.inv(X.T @ np.linalg.solve(v, X))
    beta = cov @ X.T @ np.linalg.solve(v, model.y)
    np.testing.assert_allclose(result.effects["estimate"], beta, atol=1e-9)
    np.testing.assert_allclose(result.effects["se"], np.sqrt(np.diag(cov)), rtol=1e-8)
    step = 1e-5
    for k in range(len(result.engine.theta)):
        e = np.eye(len(result.engine.theta))[k] * step
        slope = (dense_loglik(model, result.engine.theta + e)
                 - dense_loglik(model, result.engine.theta - e)) / (2 * step)
        assert abs(slope) < 1e-3  # the optimum of the oracle's likelihood too
