"""The latent APIM against lavaan's two-level SEM (ML, complete data; committed output of
tests/reference/lavaan_latent.R, and live refits when Rscript with lavaan is present)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from latent_support import kashy, lavaan_effects, lavaan_stat, long_from_wide, run_lavaan, wide

import apim
from apim.model.latent import LatentAPIMSpec
from apim.simulation.simulate import SimulationSpec, simulate

REF = Path(__file__).resolve().parents[1] / "reference"
SPEC = LatentAPIMSpec("y", ("x",))


def check_against(result, reference: pd.DataFrame, predictor: str = "x") -> None:
    ours = result.effects
    for stem, (est, se) in lavaan_effects(reference).iterrows():
        row = ours.loc[f"{stem}.{predictor}"]
        assert abs(row["estimate"] - est) <= 1e-4 * abs(est), stem
        assert abs(row["se"] - se) <= 1e-4 * se, stem
    assert abs(result.statistics.loglik - lavaan_stat(reference, "logLik")) < 1e-3
    means = reference[reference["op"] == "mean"].set_index("lhs")["est"]
    mu = result.fits["all"].mu
    assert np.allclose(mu, means[["xP", "xT", "yP", "yT"]].to_numpy(), rtol=1e-5)


def test_simulated_data_equals_lavaan():
    table = pd.read_csv(REF / "lavaan_sim_data.csv")
    result = apim.fit(long_from_wide(table), SPEC)
    check_against(result, pd.read_csv(REF / "lavaan_sim_reference.csv"))


def test_kashy_listwise_complete_days_equal_lavaan(shared):
    table = wide(kashy(shared), "conflict", "satisf")
    result = apim.fit(long_from_wide(table), SPEC)
    check_against(result, pd.read_csv(REF / "lavaan_kashy_reference.csv"))
    assert result.statistics.n_dyads == 103


def _has_lavaan() -> bool:
    if shutil.which("Rscript") is None:
        return False
    probe = subprocess.run(["Rscript", "-e", "library(lavaan)"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.r
@pytest.mark.parametrize("seed", [101, 202])
def test_live_refit_equals_lavaan(seed, tmp_path):
    if not _has_lavaan():
        pytest.skip("Rscript with lavaan not available")
    spec = SimulationSpec(n_dyads=60, n_sessions=int(4 + seed % 5), caseload=0,
                          dropout=0.1, x_phi=0.0, outcome_from="latent")
    table = wide(simulate(spec, seed=seed))
    reference = run_lavaan(table, tmp_path / "out.csv")
    check_against(apim.fit(long_from_wide(table), SPEC), reference)
