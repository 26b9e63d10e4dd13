"""APIM specifications checked against nlme on the bundled data (see test_apim_nlme.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
from nlme_support import REFERENCE, rscript

from apim import APIMSpec, CovarianceSpec, load_alliance
from apim.model.design import build_design

SCRIPT = REFERENCE / "nlme_design.R"
BASE = APIMSpec(outcome="outcome", predictors=("alliance",))
SPECS = {
    "within_between": (BASE, "un", False),
    "interaction": (BASE.replace(interaction=True), "un", False),
    "moderation": (BASE.replace(moderators=("treatment",)), "un", False),
    "slopes": (BASE.replace(covariance=CovarianceSpec(random="slopes")), "un", False),
    "ar1_therapist": (BASE.replace(covariance=CovarianceSpec(residual="ar1",
                                                             therapist_level=True)),
                      "ar1", True),
}


def design_table(name: str) -> pd.DataFrame:
    """The design of ``SPECS[name]`` on the bundled data, as columns nlme can read."""
    spec = SPECS[name][0]
    design = build_design(load_alliance(), spec)
    m = design.model
    table = pd.DataFrame(m.X, columns=[f"x_{j}" for j in range(m.X.shape[1])])
    for j in range(m.Z.shape[1]):
        table[f"z_{j}"] = m.Z[:, j]
    frame = design.data.frame.loc[design.used]
    table["y"], table["dyad"], table["session"] = m.y, m.dyad, m.session
    table["role"], table["therapist"] = m.role, frame["therapist"].to_numpy()
    return table


def run_nlme(name: str, folder: Path) -> pd.DataFrame:
    spec, residual, therapist = SPECS[name]
    data, out = folder / f"{name}.csv", folder / f"{name}_out.csv"
    design_table(name).to_csv(data, index=False)
    subprocess.run([rscript(), str(SCRIPT), str(data), str(out), name, residual,
                    "1" if therapist else "0", spec.method], check=True,
                   capture_output=True, timeout=1200)
    return pd.read_csv(out)
