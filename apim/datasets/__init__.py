"""Bundled example data.

``alliance_sessions.csv`` is simulated, not real: it mimics the design of Zilcha-Mano et
al. (2016) -- patient-therapist dyads seen for up to 30 sessions in two treatment arms
(``CBT``, the reference, and alliance-focused therapy ``AFT``); after every session both
members rate the working alliance and the session's outcome (1-7, two decimals). It is
made by the one generator of the package, :func:`apim.simulation.simulate.simulate`,
with :data:`ALLIANCE_SPEC` and seed :data:`ALLIANCE_SEED` (:func:`write_alliance` rewrites
it; the seed makes it identical):

- 40 therapists each treating 6 patients (240 dyads); 20 therapists with their whole
  caseloads in each arm (``balanced_arms``).
- Attendance: from session 4 a dyad drops out before each session with probability 0.03
  (3 to 30 sessions); at a session one member gives no ratings with probability 0.02 (the
  row stays, both ratings empty); each single rating is missing with probability 0.03.
- Alliance ``x``: role means 5.0 and 4.8, therapist SD 0.25, person levels (SDs 0.70 and
  0.50, correlation 0.40), within-person AR(1) fluctuations (phi 0.40, SDs 0.50 and 0.40,
  same-session correlation 0.30), a rise of 0.015 per session and 0.15 higher in AFT.
- Session outcome: intercepts 4.6 and 4.4; actor and partner effects 0.40 and 0.15 within
  and 0.50 and 0.20 between persons (both roles), person-specific actor and partner
  within slopes (SDs 0.15 and 0.10); AFT adds 0.10 to the outcome and 0.10 to the actor
  within effect; therapist SD 0.20, dyad intercepts (SDs 0.45 and 0.35, correlation 0.50),
  residuals (SDs 0.60 and 0.45, same-session correlation 0.30).
- Ratings rounded to two decimals and kept within 1-7 (the alliance before it is split
  into within and between parts, so the outcome follows the model in the observed
  ratings).

Examples
--------
>>> data = load_alliance()
>>> data.roles
('patient', 'therapist')
>>> data.n_dyads
240
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

from apim.data.session import SessionData
from apim.datasets.couples import acitelli_path
from apim.simulation.simulate import SimulationSpec, simulate

__all__ = ["load_alliance", "alliance_path", "acitelli_path", "ALLIANCE_SPEC",
           "ALLIANCE_SEED", "simulate_alliance", "write_alliance"]

ALLIANCE_SEED = 20160484
ALLIANCE_SPEC = SimulationSpec(
    n_dyads=240, n_sessions=30, caseload=6, treatment_share=0.5, balanced_arms=True,
    treatment_labels=("CBT", "AFT"), predictor_name="alliance", outcome_name="outcome",
    x_mean=(5.0, 4.8), x_therapist_sd=0.25, x_between_sd=(0.70, 0.50), x_between_cor=0.40,
    x_within_sd=(0.50, 0.40), x_within_cor=0.30, x_phi=0.40, x_session_slope=0.015,
    x_treatment=(0.15, 0.15),
    intercept=(4.6, 4.4), actor_within=(0.40, 0.40), partner_within=(0.15, 0.15),
    actor_between=(0.50, 0.50), partner_between=(0.20, 0.20), treatment=(0.10, 0.10),
    treatment_actor_within=(0.10, 0.10), slope_sd=(0.15, 0.15),
    partner_slope_sd=(0.10, 0.10), therapist_sd=0.20, intercept_sd=(0.45, 0.35),
    intercept_cor=0.50, residual_sd=(0.60, 0.45), residual_cor=0.30,
    dropout=0.03, questionnaire_missing=0.02, missing=0.03, decimals=2, bounds=(1.0, 7.0))
COLUMNS = ["dyad", "therapist", "treatment", "session", "role", "alliance", "outcome"]


def alliance_path() -> str:
    """Path of the bundled ``alliance_sessions.csv``."""
    return str(resources.files("apim.datasets").joinpath("alliance_sessions.csv"))


def simulate_alliance() -> pd.DataFrame:
    """The bundled data as :func:`~apim.simulation.simulate.simulate` makes them (long
    table with the CSV's columns)."""
    return simulate(ALLIANCE_SPEC, ALLIANCE_SEED).to_long()[COLUMNS]


def write_alliance(path: str | None = None) -> str:
    """Write the bundled CSV (default: beside this module); returns the path."""
    target = path or str(Path(__file__).with_name("alliance_sessions.csv"))
    simulate_alliance().to_csv(target, index=False)
    return target


def load_alliance() -> SessionData:
    """The simulated alliance study: 240 dyads, 40 therapists, up to 30 sessions.

    Columns: ``dyad, therapist, treatment`` (CBT or AFT), ``session``, ``role``
    (patient/therapist), ``alliance`` and ``outcome`` (1-7). See the module docstring for
    how they were made.

    ``treatment`` is declared a categorical with CBT first, so CBT is the default
    reference here (the data's declared order). The CSV itself declares no order: read
    by ``apim fit`` or :meth:`SessionData.from_long`, the default reference is the first
    level in sorted order (AFT); ``reference={"treatment": "CBT"}`` /
    ``--reference treatment=CBT`` gives CBT everywhere (as ``apim demo`` and the example
    plan do).
    """
    data = SessionData.from_long(alliance_path(), dyad="dyad",
                                 session="session", role="role",
                                 roles=("patient", "therapist"), therapist="therapist")
    arm = pd.Categorical(data.frame["treatment"], categories=["CBT", "AFT"])
    return data.replace(data.frame.assign(treatment=arm))
