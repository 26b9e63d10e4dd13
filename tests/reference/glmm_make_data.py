"""Writes glmm_sim_data.csv: a simulated dyadic binary and ordinal data set (100 dyads, 6
sessions, ~20% of ratings missing) with the columns of the design matrix the R script
fits: patient, therapist (role indicators) and the actor and partner columns per role.

Run from the repository root: ``python tests/reference/glmm_make_data.py``; then
``Rscript tests/reference/glmm_reference.R``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DESIGN = ["patient", "therapist", "patient_actor", "patient_partner", "therapist_actor",
          "therapist_partner"]


def simulate(seed: int, n: int = 100, sessions: int = 6) -> pd.DataFrame:
    """One data set; ``y`` binary, ``k`` ordinal (0..3)."""
    rng = np.random.default_rng(seed)
    dyad = np.repeat(np.arange(1, n + 1), 2 * sessions)
    role = np.tile([0, 1], n * sessions)
    x = rng.normal(size=(n * sessions, 2))
    actor = x.ravel()
    partner = x[:, ::-1].ravel()
    u = rng.normal(size=(n, 2)) @ np.array([[1.2, 0.0], [0.4, 1.0]]).T
    patient, therapist = (role == 0).astype(float), (role == 1).astype(float)
    eta = (-0.4 * patient + 0.3 * therapist + 0.7 * actor * patient + 0.3 * partner * patient
           + 0.5 * actor * therapist - 0.2 * partner * therapist + u[dyad - 1, role])
    y = (eta + rng.logistic(size=len(eta)) > 0).astype(int)
    k = np.digitize(eta + rng.logistic(size=len(eta)), [-1.0, 0.2, 1.5])
    frame = pd.DataFrame({"dyad": dyad, "role": np.where(role == 0, "patient", "therapist"),
                          "patient": patient, "therapist": therapist,
                          "patient_actor": actor * patient, "patient_partner": partner * patient,
                          "therapist_actor": actor * therapist,
                          "therapist_partner": partner * therapist, "y": y, "k": k})
    return frame[rng.random(len(frame)) > 0.2].reset_index(drop=True)


if __name__ == "__main__":
    simulate(2026).to_csv(HERE / "glmm_sim_data.csv", index=False)
