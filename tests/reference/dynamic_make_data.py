"""Writes the data of the committed RI-CLPM references (run from the repository root):

    python tests/reference/dynamic_make_data.py

dynamic_balanced.csv: 120 dyads x 5 sessions, complete (lavaan's wide format);
dynamic_missing.csv: 120 dyads x 5 sessions with missing ratings and skipped sessions;
dynamic_covariates.csv: 90 dyads x 4 sessions with gaps and two dyad-level covariates of
the means (c1 numeric, c2 0/1).
All are then fitted by lavaan_riclpm.R (see README.md)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "oracles"))

import numpy as np  # noqa: E402
from dynamic_support import lavaan_wide, simulate_grid, with_gaps  # noqa: E402

#: the covariates' effects on the means (engine variable order; columns c1, c2)
COVARIATE_EFFECTS = np.array([[0.2, 0.4], [0.0, 0.3], [-0.3, 0.5], [0.1, 0.0]])


def covariate_table(n: int, t: int, seed: int):
    """Wide data with covariates c1 (numeric), c2 (0/1) shifting the means."""
    rng = np.random.default_rng(seed)
    c = np.column_stack([rng.normal(0, 1, n), rng.integers(0, 2, n)])
    y = simulate_grid(n, t, seed=seed + 1) + (c @ COVARIATE_EFFECTS.T)[:, None, :]
    table = lavaan_wide(with_gaps(y, seed=seed + 2, dropout=False))
    table["c1"], table["c2"] = c[:, 0], c[:, 1]
    return table

if __name__ == "__main__":
    y = simulate_grid(120, 5, seed=2212)
    lavaan_wide(y).to_csv(HERE / "dynamic_balanced.csv", index=False)
    gaps = with_gaps(simulate_grid(120, 5, seed=2213), seed=2214, dropout=False)
    lavaan_wide(gaps).to_csv(HERE / "dynamic_missing.csv", index=False)
    covariate_table(90, 4, seed=2215).to_csv(HERE / "dynamic_covariates.csv", index=False)
