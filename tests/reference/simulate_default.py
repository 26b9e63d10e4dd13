"""Write ``simulate_default.csv``: the default simulation design at seed 3 (30 dyads, 8
sessions, 10% missing ratings, dropout and skipped sessions, residual AR(1) 0.3).

Run from the repository root: ``python tests/reference/simulate_default.py``. The values
were first made at commit 20a73fe (pandas 2.2.3, numpy 2.0.2) and are unchanged with
pandas 3.1 and numpy 2.4; ``tests/model/test_latent.py`` compares the values (ids exactly,
ratings to 1e-10), never bytes or hashes that depend on library versions.
"""

from __future__ import annotations

from pathlib import Path

from apim.simulation.simulate import SimulationSpec, simulate

SPEC = SimulationSpec(n_dyads=30, n_sessions=8, missing=0.1, dropout=0.1, skipped=0.1,
                      residual_phi=0.3)

if __name__ == "__main__":
    frame = simulate(SPEC, seed=3).frame
    frame.to_csv(Path(__file__).with_name("simulate_default.csv"), index=False,
                 float_format="%.15g")
