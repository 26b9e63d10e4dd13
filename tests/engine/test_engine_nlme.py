"""The engine against R's nlme: committed reference values and live refits.

Tolerances (DESIGN.md §8): fixed effects and SEs within 1e-4 of an SE, variance
parameters within 1e-3 relative, logLik within 1e-3.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest
from nlme_support import (
    MODELS,
    REFERENCE,
    assert_variance_matches,
    build,
    run_r,
    simulate,
)

from apim.engine.mixed.estimate import estimate_mixed as fit


def compare(name: str, data: pd.DataFrame, ref: pd.DataFrame) -> None:
    model, method = build(name, data)
    result = fit(model, method)
    assert result.converged, result.message
    r = ref[ref["model"] == name]
    get = lambda kind: r.loc[r["kind"] == kind, "value"].to_numpy()  # noqa: E731
    assert abs(result.loglik - get("loglik")[0]) < 1e-3
    se_ref = get("se")
    np.testing.assert_array_less(np.abs(result.coef.to_numpy() - get("fixed")), 1e-4 * se_ref)
    np.testing.assert_array_less(np.abs(result.se.to_numpy() - se_ref), 1e-4 * se_ref)
    if len(get("df")):
        np.testing.assert_array_equal(result.df_containment.to_numpy(), get("df"))
    assert_variance_matches(result, get("loglik")[0], r[r["kind"] == "var"])


@pytest.mark.parametrize("name", MODELS)
def test_committed_nlme_reference(name):
    data = pd.read_csv(REFERENCE / "reference_data.csv")
    ref = pd.read_csv(REFERENCE / "nlme_reference.csv")
    compare(name, data, ref)


LIVE = ("ri_reml", "ri_ml", "therapist", "ar1", "slopes")


@pytest.mark.r
def test_live_nlme_refits(tmp_path):
    """Five fresh random unbalanced data sets per run, fitted in nlme and in apim."""
    seed = int(os.environ.get("APIM_LIVE_SEED", time.time_ns() % 2**31))
    print(f"live nlme refit seed {seed} (set APIM_LIVE_SEED to repeat)")
    for k in range(5):
        data = simulate(seed + k)
        path = tmp_path / f"live{k}.csv"
        data.to_csv(path, index=False)
        model = LIVE[k % len(LIVE)]
        names = tuple(dict.fromkeys(("ri_reml", model)))
        ref = run_r(path, tmp_path / f"out{k}.csv", names)
        for name in names:
            compare(name, data, ref)


def test_satterthwaite_df_match_lmertest():
    """Committed lmerTest output (reference/lmertest_df.R) for a model lme4 can fit."""
    from dataclasses import replace

    from apim.engine import Residual

    data = pd.read_csv(REFERENCE / "reference_data.csv")
    ref = pd.read_csv(REFERENCE / "lmertest_reference.csv")
    model, _ = build("ri_reml", data)
    result = fit(replace(model, residual=Residual.named("independent")), "REML")
    np.testing.assert_allclose(result.coef.to_numpy(), ref["estimate"], rtol=1e-6)
    np.testing.assert_allclose(result.se.to_numpy(), ref["se"], rtol=1e-5)
    np.testing.assert_allclose(result.df_satterthwaite.to_numpy(), ref["df"], rtol=1e-4)
