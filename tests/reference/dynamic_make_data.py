"""Writes the data of the committed RI-CLPM references (run from the repository root):

    python tests/reference/dynamic_make_data.py

dynamic_balanced.csv: 120 dyads x 5 sessions, complete (lavaan's wide format);
dynamic_missing.csv: 120 dyads x 5 sessions with missing ratings and skipped sessions.
Both are then fitted by lavaan_riclpm.R (see README.md)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "oracles"))

from dynamic_support import lavaan_wide, simulate_grid, with_gaps  # noqa: E402

if __name__ == "__main__":
    y = simulate_grid(120, 5, seed=2212)
    lavaan_wide(y).to_csv(HERE / "dynamic_balanced.csv", index=False)
    gaps = with_gaps(simulate_grid(120, 5, seed=2213), seed=2214, dropout=False)
    lavaan_wide(gaps).to_csv(HERE / "dynamic_missing.csv", index=False)
