"""Write the inputs of lavaan_latent.R and run it (needs Rscript with lavaan).

    python tests/reference/lavaan_make_data.py /path/to/shared/data

Writes lavaan_sim_data.csv (simulated, committed) and, from the Kashy diary couples
(listwise-complete days), a temporary wide file; the lavaan results go to
lavaan_sim_reference.csv and lavaan_kashy_reference.csv beside this script.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from latent_support import kashy, run_lavaan, wide  # noqa: E402

from apim.simulation.simulate import SimulationSpec, simulate  # noqa: E402

SIM = SimulationSpec(n_dyads=80, n_sessions=6, caseload=0, x_phi=0.0, dropout=0.1,
                     outcome_from="latent")

if __name__ == "__main__":
    sim = wide(simulate(SIM, seed=11))
    sim.to_csv(HERE / "lavaan_sim_data.csv", index=False)
    run_lavaan(sim, HERE / "lavaan_sim_reference.csv")
    run_lavaan(wide(kashy(Path(sys.argv[1])), "conflict", "satisf"),
               HERE / "lavaan_kashy_reference.csv")
