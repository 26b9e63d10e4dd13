"""Writes glmm_therapist_data.csv: a simulated binary dyadic data set with dyads nested in
therapists (70 dyads in 16 therapists with unbalanced caseloads, from 1 to 9 dyads, three
therapists with one dyad; 4-10 sessions per dyad, ~15% of ratings missing), with the design
columns the R script fits: patient, therapist (role indicators), the actor and partner
columns per role, and the therapist's id ``clinician``.

Run from the repository root: ``python tests/reference/glmm_therapist_make_data.py``; then
``Rscript tests/reference/glmm_reference.R tests/reference/glmm_therapist_data.csv
tests/reference/glmm_therapist_reference.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DESIGN = ["patient", "therapist", "patient_actor", "patient_partner", "therapist_actor",
          "therapist_partner"]
CASELOADS = (1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 6, 6, 7, 8, 8, 9)


def simulate(seed: int, therapist_sd: float = 0.7, caseloads: tuple[int, ...] = CASELOADS
             ) -> pd.DataFrame:
    """One data set; ``y`` binary, ``clinician`` the therapist of each dyad."""
    rng = np.random.default_rng(seed)
    clinician_of = np.repeat(np.arange(1, len(caseloads) + 1), caseloads)
    n = len(clinician_of)
    sessions = rng.integers(4, 11, size=n)
    dyad = np.repeat(np.arange(1, n + 1), 2 * sessions)
    role = np.concatenate([np.tile([0, 1], s) for s in sessions])
    x = rng.normal(size=(len(dyad) // 2, 2))
    actor, partner = x.ravel(), x[:, ::-1].ravel()
    u = rng.normal(size=(n, 2)) @ np.array([[1.0, 0.0], [0.3, 0.8]]).T
    t = therapist_sd * rng.normal(size=len(caseloads))
    patient, therapist = (role == 0).astype(float), (role == 1).astype(float)
    eta = (-0.3 * patient + 0.4 * therapist + 0.6 * actor * patient + 0.3 * partner * patient
           + 0.5 * actor * therapist - 0.2 * partner * therapist + u[dyad - 1, role]
           + t[clinician_of[dyad - 1] - 1])
    y = (eta + rng.logistic(size=len(eta)) > 0).astype(int)
    frame = pd.DataFrame({"dyad": dyad, "clinician": clinician_of[dyad - 1],
                          "role": np.where(role == 0, "patient", "therapist"),
                          "patient": patient, "therapist": therapist,
                          "patient_actor": actor * patient, "patient_partner": partner * patient,
                          "therapist_actor": actor * therapist,
                          "therapist_partner": partner * therapist, "y": y})
    return frame[rng.random(len(frame)) > 0.15].reset_index(drop=True)


if __name__ == "__main__":
    simulate(2027).to_csv(HERE / "glmm_therapist_data.csv", index=False)
