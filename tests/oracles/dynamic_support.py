"""Helpers for the dynamic-APIM tests: simulate the model on a session grid, and move the
ratings between the grid, long SessionData and lavaan's wide format (v<k>_<t>)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from apim.data.session import SessionData

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
ROLES = ("patient", "therapist")
# engine order: x[patient], x[therapist], y[patient], y[therapist]
PHI = np.array([[0.40, 0.10, 0.05, 0.00],
                [0.05, 0.30, 0.00, 0.10],
                [0.20, 0.05, 0.40, 0.10],
                [0.00, 0.15, 0.10, 0.30]])
SIGMA_W = 0.5 * np.eye(4) + 0.2
SIGMA_B = 0.6 * np.eye(4) + 0.3


def stationary(phi: np.ndarray, sigma_w: np.ndarray) -> np.ndarray:
    """Stationary covariance by iterating the recursion (independent of the engine's
    Kronecker solve)."""
    p = sigma_w.copy()
    for _ in range(2000):
        p = phi @ p @ phi.T + sigma_w
    return p


def simulate_grid(n: int, t: int, seed: int, phi: np.ndarray = PHI,
                  sigma_w: np.ndarray = SIGMA_W, sigma_b: np.ndarray = SIGMA_B,
                  p0: np.ndarray | None = None, mean: float = 3.0) -> np.ndarray:
    """Ratings (n, t, K) of the model, complete; the first session's within part from
    ``p0`` (default: stationary)."""
    rng = np.random.default_rng(seed)
    k = len(phi)
    p0 = stationary(phi, sigma_w) if p0 is None else p0
    u = rng.multivariate_normal(np.zeros(k), sigma_b, size=n)
    w = np.zeros((n, t, k))
    w[:, 0] = rng.multivariate_normal(np.zeros(k), p0, size=n)
    for s in range(1, t):
        w[:, s] = w[:, s - 1] @ phi.T + rng.multivariate_normal(np.zeros(k), sigma_w, size=n)
    return mean + u[:, None, :] + w


def with_gaps(y: np.ndarray, seed: int, p_rating: float = 0.08, p_session: float = 0.08,
              dropout: bool = True) -> np.ndarray:
    """Missing ratings, skipped sessions (all K missing) and dropout (sessions after a
    dyad's last one missing; dyads keep at least two sessions)."""
    rng = np.random.default_rng(seed)
    y = y.copy()
    n, t, _ = y.shape
    y[rng.random(y.shape) < p_rating] = np.nan
    skipped = rng.random((n, t)) < p_session
    skipped[:, :2] = False
    y[skipped] = np.nan
    if dropout:
        for i in range(n):
            last = int(rng.integers(2, t + 1))
            y[i, last:] = np.nan
    return y


def long_data(y: np.ndarray, first_session: int = 1) -> SessionData:
    """Grid ratings -> long SessionData (dyad, session, role, x, y); sessions without
    any rating have no rows."""
    n, t, _ = y.shape
    rows = []
    for i in range(n):
        for s in range(t):
            for r, role in enumerate(ROLES):
                x_val, y_val = y[i, s, r], y[i, s, 2 + r]
                if np.isnan(y[i, s]).all():
                    continue
                rows.append((f"d{i:03d}", s + first_session, role, x_val, y_val))
    frame = pd.DataFrame(rows, columns=["dyad", "session", "role", "x", "y"])
    return SessionData.from_long(frame, dyad="dyad", session="session", role="role",
                                 roles=ROLES)


def lavaan_wide(y: np.ndarray) -> pd.DataFrame:
    """Grid ratings -> lavaan's wide format: dyad, v<k>_<t> (k in engine order)."""
    n, t, k = y.shape
    out = pd.DataFrame({"dyad": np.arange(n)})
    for j in range(k):
        for s in range(t):
            out[f"v{j + 1}_{s + 1}"] = y[:, s, j]
    return out


def grid_from_wide(table: pd.DataFrame) -> np.ndarray:
    cols = [c for c in table.columns if c != "dyad"]
    k = max(int(c[1:].split("_")[0]) for c in cols)
    t = max(int(c.split("_")[1]) for c in cols)
    y = np.full((len(table), t, k), np.nan)
    for j in range(k):
        for s in range(t):
            y[:, s, j] = table[f"v{j + 1}_{s + 1}"].to_numpy(float)
    return y


def rscript_lavaan() -> str:
    """Path of Rscript with lavaan, or skip (fail when APIM_REQUIRE_R=1)."""
    path = shutil.which("Rscript")
    ok = path is not None and subprocess.run(
        [path, "-e", "library(lavaan)"], capture_output=True).returncode == 0
    if not ok:
        if os.environ.get("APIM_REQUIRE_R") == "1":
            pytest.fail("APIM_REQUIRE_R=1 but Rscript with lavaan is not available")
        pytest.skip("Rscript with lavaan is not installed")
    return str(path)


def run_riclpm(table: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """Fit tests/reference/lavaan_riclpm.R to ``table``; its output indexed by label."""
    source, out = folder / "wide.csv", folder / "riclpm.csv"
    table.to_csv(source, index=False)
    subprocess.run([rscript_lavaan(), str(REFERENCE / "lavaan_riclpm.R"), str(source),
                    str(out)], check=True, capture_output=True, timeout=900)
    return pd.read_csv(out).set_index("label")
