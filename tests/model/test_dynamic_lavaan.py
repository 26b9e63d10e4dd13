"""The dynamic APIM with ``initial="free"`` against lavaan's RI-CLPM written in wide format
so that it is the same model (tests/reference/lavaan_riclpm.R): committed output on a
balanced complete data set and on one with missing ratings and skipped sessions
(lavaan ``missing = "ml"``), and live refits of fresh random data when Rscript with
lavaan is present (required with APIM_REQUIRE_R=1).

Agreement: logLik within 1e-6; each entry of Phi and its SE within 1e-4 relative (of the
larger of the value and its SE, for entries near zero); means and the person-level and
innovation covariances within 1e-4 relative of the same floor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dynamic_support import (
    REFERENCE,
    grid_from_wide,
    lavaan_wide,
    long_data,
    run_riclpm,
    simulate_grid,
    with_gaps,
)

import apim
from apim.model.dynamic_spec import DynamicAPIMSpec

SPEC = DynamicAPIMSpec("y", ("x",), initial="free")


def check_against(result, reference: pd.DataFrame) -> None:
    assert result.statistics.converged
    assert abs(result.statistics.loglik - reference.loc["logLik", "est"]) < 1e-6
    lagged = result.lagged
    k = len(result.fit.names)
    for i in range(k):
        for j in range(k):
            row = lagged.iloc[i * k + j]
            ref = reference.loc[f"p{i + 1}_{j + 1}"]
            floor = max(abs(ref["est"]), ref["se"])
            assert abs(row["estimate"] - ref["est"]) <= 1e-4 * floor, (i, j)
            assert abs(row["se"] - ref["se"]) <= 1e-4 * ref["se"], (i, j)
    fit = result.fit
    for j in range(k):
        ref = reference.loc[f"m{j + 1}"]
        assert abs(fit.mu[j] - ref["est"]) <= 1e-4 * max(abs(ref["est"]), ref["se"])
    for label, matrix in (("s", fit.sigma_w), ("b", fit.sigma_b)):
        for a in range(k):
            for b in range(a, k):
                ref = reference.loc[f"{label}{a + 1}_{b + 1}"]
                floor = max(abs(ref["est"]), ref["se"])
                assert abs(matrix[a, b] - ref["est"]) <= 1e-4 * floor, (label, a, b)


@pytest.mark.parametrize("name", ["balanced", "missing"])
def test_committed_riclpm_reference(name):
    table = pd.read_csv(REFERENCE / f"dynamic_{name}.csv")
    reference = pd.read_csv(REFERENCE / f"dynamic_{name}_lavaan.csv").set_index("label")
    result = apim.fit(long_data(grid_from_wide(table)), SPEC)
    check_against(result, reference)


@pytest.mark.r
@pytest.mark.parametrize("seed, gaps", [(31, False), (32, True)])
def test_live_riclpm_refit(seed, gaps, tmp_path):
    y = simulate_grid(90, 4 + seed % 2, seed=seed)
    if gaps:
        y = with_gaps(y, seed=seed + 1, dropout=False)
    reference = run_riclpm(lavaan_wide(y), tmp_path)
    check_against(apim.fit(long_data(y), SPEC), reference)


def test_reference_data_round_trip():
    """The committed wide tables are what the support code makes of the grid."""
    table = pd.read_csv(REFERENCE / "dynamic_missing.csv")
    y = grid_from_wide(table)
    assert np.isnan(y).any() and not np.isnan(y).all(axis=(1, 2)).any()
    assert np.allclose(lavaan_wide(y).to_numpy(float), table.to_numpy(float),
                       equal_nan=True)
