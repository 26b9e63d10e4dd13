"""Shared by the nlme comparison tests: data generator, model builders, R runner.

The models here mirror, one for one, those in ``reference/nlme_fit.R``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from apim.engine import Diagonal, MixedModel, Residual, Unstructured

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
R_SCRIPT = REFERENCE / "nlme_fit.R"
MODELS = ("ri_reml", "ri_ml", "slopes", "indist", "therapist", "ar1", "gls_un")


def simulate(seed: int, n_therapists: int = 12, caseload: tuple[int, int] = (2, 6),
             sessions: tuple[int, int] = (4, 14)) -> pd.DataFrame:
    """Unbalanced dyadic data: therapists with several dyads, different numbers of
    sessions, skipped sessions and single missing ratings."""
    rng = np.random.default_rng(seed)
    rows = []
    dyad = 0
    for j in range(n_therapists):
        v = rng.normal(0, 0.4)
        for _ in range(rng.integers(*caseload, endpoint=True)):
            dyad += 1
            w = float(rng.integers(2))
            u = rng.multivariate_normal([0, 0], [[0.5, 0.25], [0.25, 0.4]])
            slope = rng.normal(0, 0.4, 2)
            n_s = rng.integers(*sessions, endpoint=True)
            e_prev = np.zeros(2)
            for t in range(1, n_s + 1):
                if rng.random() < 0.1:
                    continue  # skipped session
                x = rng.normal(size=2)
                e = 0.4 * e_prev + rng.multivariate_normal([0, 0], [[0.5, 0.15], [0.15, 0.3]])
                e_prev = e
                for r in (0, 1):
                    if rng.random() < 0.08:
                        continue  # one member did not rate
                    y = ([3.0, 3.5][r] + (0.4 + slope[r]) * x[r] + 0.2 * x[1 - r]
                         + 0.3 * w + v + u[r] + e[r])
                    rows.append((j + 1, dyad, t, r, x[r], x[1 - r], w, y))
    return pd.DataFrame(rows, columns=["therapist", "dyad", "session", "role", "x", "xp",
                                       "w", "y"])


def build(name: str, d: pd.DataFrame) -> tuple[MixedModel, str]:
    """The engine's version of nlme model ``name``; returns (model, method)."""
    p, t = (1 - d["role"]).to_numpy(float), d["role"].to_numpy(float)
    x, xp, w = (d[c].to_numpy(float) for c in ("x", "xp", "w"))
    X = np.column_stack([p, t, p * x, p * xp, t * x, t * xp, p * w, t * w])
    common = dict(y=d["y"].to_numpy(float), dyad=d["dyad"].to_numpy(),
                  role=d["role"].to_numpy(), session=d["session"].to_numpy())
    two = np.column_stack([p, t])
    un = Residual.named("un")
    if name in ("ri_reml", "ri_ml"):
        return MixedModel(X=X, Z=two, random=Unstructured(2), residual=un, **common), \
            "REML" if name == "ri_reml" else "ML"
    if name == "slopes":
        Z = np.column_stack([p, t, p * x, t * x])
        return MixedModel(X=X, Z=Z, random=Unstructured(4), residual=un, **common), "REML"
    if name == "indist":
        Xi = np.column_stack([np.ones(len(d)), x, xp, w])
        return MixedModel(X=Xi, Z=np.ones((len(d), 1)), random=Unstructured(1),
                          residual=Residual.named("cs"), **common), "REML"
    if name == "therapist":
        return MixedModel(X=X, Z=two, random=Unstructured(2), residual=un,
                          therapist=d["therapist"].to_numpy(), therapist_random=Diagonal(1),
                          **common), "REML"
    if name == "ar1":
        return MixedModel(X=X, Z=two, random=Unstructured(2), residual=Residual.named("ar1"),
                          **common), "REML"
    if name == "gls_un":
        return MixedModel(X=X, residual=un, **common), "REML"
    raise KeyError(name)


def natural(fitted) -> dict[str, tuple[float, float]]:  # noqa: ANN001 (MixedFit)
    """Variance parameters (estimate, SE) of an engine fit under the names the R scripts
    write, selected by the records' fields."""
    z = list(fitted.model.z_names) or [f"z{j}" for j in range(fitted.model.q)]
    out = {}
    for p in fitted.parameters:
        value = (p.estimate, p.se)
        if p.level == "residual":
            if p.kind == "sd":
                for r in p.roles:
                    out[f"sigma{r}"] = value
            else:
                out["rho" if p.kind == "cor" else "phi"] = value
        elif p.level == "therapist":
            out[f"therapist.{p.kind}.1"] = value
        elif p.kind == "sd":
            out[f"dyad.sd.{z.index(p.effects[0]) + 1}"] = value
        else:
            i, j = sorted(z.index(e) + 1 for e in p.effects)
            out[f"dyad.cor.{i}.{j}"] = value
    return out


def assert_variance_matches(fitted, ref_loglik: float,  # noqa: ANN001 (MixedFit)
                            ref: pd.DataFrame) -> None:
    """Variance parameters within 1e-3 relative; where nlme stops short of the optimum
    (our logLik is not lower), parameters in flat directions (near-zero correlations) may
    differ by a negligible part of their SE."""
    assert fitted.loglik >= ref_loglik - 1e-6
    ours = natural(fitted)
    for _, row in ref.iterrows():
        estimate, se = ours[row["name"]]
        tolerance = max(1e-3 * abs(row["value"]), 1e-5, 1e-2 * se)
        assert abs(estimate - row["value"]) <= tolerance, row["name"]


def rscript() -> str | None:
    """Path of Rscript with nlme, or skip (fail when APIM_REQUIRE_R=1)."""
    path = shutil.which("Rscript")
    ok = path is not None and subprocess.run(
        [path, "-e", "library(nlme)"], capture_output=True).returncode == 0
    if not ok:
        if os.environ.get("APIM_REQUIRE_R") == "1":
            pytest.fail("APIM_REQUIRE_R=1 but Rscript with nlme is not available")
        pytest.skip("Rscript with nlme is not installed")
    return path


def run_r(data: Path, out: Path, models: tuple[str, ...] = MODELS) -> pd.DataFrame:
    """Fit ``models`` in nlme on ``data``; return the long table the R script writes."""
    subprocess.run([rscript(), str(R_SCRIPT), str(data), str(out), *models], check=True,
                   capture_output=True, timeout=600)
    return pd.read_csv(out)
