"""Seeded generator of the bundled example data set ``alliance_sessions.csv``.

The data mimic the design of Zilcha-Mano et al. (2016): patient-therapist dyads seen for
up to 30 sessions in two treatment arms (``CBT`` and alliance-focused therapy ``AFT``);
after every session both members rate the working alliance (1-7, like the WAI-SR item
mean) and the session's outcome (1-7). They are simulated, not real.

Data-generating process (``i`` dyad, ``j`` therapist, ``r`` in {patient, therapist},
``t`` session):

- 40 therapists, 20 per arm, each treating 6 patients: 240 dyads.
- Attendance: every dyad starts; from session 4 on a dyad drops out before each session
  with probability 0.03, so the number of sessions ranges from 3 to 30. Each attended
  session is missed by one member's questionnaire (the row stays, the ratings are empty)
  with probability 0.02, and each single rating is missing with probability 0.03.
- Alliance: ``A_irt = mu_r + g_j + a_ir + 0.015 (t - 1) + 0.15 AFT_i + w_irt`` with
  therapist effect ``g_j ~ N(0, 0.25^2)``, person levels ``(a_iP, a_iT)`` bivariate normal
  (SDs 0.70 and 0.50, correlation 0.40), within-person fluctuations ``w_irt`` AR(1) over
  sessions (phi 0.40, innovation SDs 0.50 and 0.40, same-session correlation 0.30),
  ``mu = (5.0, 4.8)``.
- Session outcome for role ``r`` with partner ``r'``, using the within part
  ``W = A - person mean`` and between part ``B = person mean - role mean``:
  ``Y_irt = b0_r + (0.40 + c_ir) W_irt + (0.15 + d_ir) W_ir't + 0.50 B_ir + 0.20 B_ir'
  + 0.10 AFT_i + 0.10 AFT_i W_irt + h_j + u_ir + e_irt`` with ``b0 = (4.6, 4.4)``,
  therapist effects on outcome ``h_j ~ N(0, 0.20^2)`` (shared by both members), dyad effects
  ``u`` (SDs 0.45 and 0.35, correlation 0.50), person-specific actor and partner slopes
  ``c ~ N(0, 0.15^2)``, ``d ~ N(0, 0.10^2)``, and residuals ``e`` (SDs 0.60 and 0.45,
  same-session correlation 0.30).
- Ratings are rounded to two decimals and kept within 1-7.

Run ``python -m apim.datasets.generate`` to rewrite the CSV; the seed makes it identical.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20160484
ROLES = ("patient", "therapist")


def _bivariate(rng: np.random.Generator, n: int, sd: tuple[float, float], rho: float,
               size: tuple[int, ...] = ()) -> np.ndarray:
    cov = np.array([[sd[0] ** 2, rho * sd[0] * sd[1]], [rho * sd[0] * sd[1], sd[1] ** 2]])
    return rng.multivariate_normal(np.zeros(2), cov, size=(n, *size))


def generate_alliance(seed: int = SEED, n_therapists: int = 40, caseload: int = 6,
                      max_sessions: int = 30) -> pd.DataFrame:
    """Simulate the example data (see the module docstring for every equation).

    Returns
    -------
    pandas.DataFrame
        Long data: ``dyad, therapist, treatment, session, role, alliance, outcome``.

    Examples
    --------
    >>> df = generate_alliance(n_therapists=2, caseload=2)
    >>> sorted(df["role"].unique())
    ['patient', 'therapist']
    """
    rng = np.random.default_rng(seed)
    n = n_therapists * caseload
    therapist = np.repeat(np.arange(1, n_therapists + 1), caseload)
    aft = (therapist > n_therapists // 2).astype(float)
    g = rng.normal(0, 0.25, n_therapists)[therapist - 1]
    a = _bivariate(rng, n, (0.70, 0.50), 0.40)
    u = _bivariate(rng, n, (0.45, 0.35), 0.50)
    innov = _bivariate(rng, n, (0.50, 0.40), 0.30, (max_sessions,))
    resid = _bivariate(rng, n, (0.60, 0.45), 0.30, (max_sessions,))
    h = rng.normal(0, 0.20, n_therapists)[therapist - 1]
    actor_slope = rng.normal(0, 0.15, size=(n, 2))
    partner_slope = rng.normal(0, 0.10, size=(n, 2))
    w = np.zeros_like(innov)
    w[:, 0] = innov[:, 0] / np.sqrt(1 - 0.4 ** 2)
    for t in range(1, max_sessions):
        w[:, t] = 0.4 * w[:, t - 1] + innov[:, t]
    sessions = np.arange(1, max_sessions + 1)
    last = np.full(n, max_sessions)
    for i in range(n):
        drops = np.nonzero(rng.random(max_sessions - 3) < 0.03)[0]
        if drops.size:
            last[i] = 3 + drops[0]
    mu = np.array([5.0, 4.8])
    alliance = (mu[None, None, :] + (g + 0.15 * aft)[:, None, None] + a[:, None, :]
                + 0.015 * (sessions - 1)[None, :, None] + w)
    attended = sessions[None, :] <= last[:, None]
    masked = np.where(attended[:, :, None], alliance, np.nan)
    person_mean = np.nanmean(masked, axis=1)
    within = alliance - person_mean[:, None, :]
    between = person_mean - np.nanmean(person_mean, axis=0)
    partner = [1, 0]
    outcome = (np.array([4.6, 4.4])[None, None, :]
               + (0.40 + actor_slope[:, None, :]) * within
               + (0.15 + partner_slope[:, None, :]) * within[:, :, partner]
               + (0.50 * between + 0.20 * between[:, partner])[:, None, :]
               + 0.10 * aft[:, None, None] + 0.10 * aft[:, None, None] * within
               + h[:, None, None] + u[:, None, :] + resid)
    rows = []
    for i in range(n):
        for t in range(last[i]):
            silent = rng.random() < 0.02
            silent_role = rng.integers(2)
            for r in range(2):
                ratings = [alliance[i, t, r], outcome[i, t, r]]
                ratings = [np.nan if (silent and silent_role == r) or rng.random() < 0.03
                           else float(np.clip(np.round(v, 2), 1, 7)) for v in ratings]
                rows.append((i + 1, int(therapist[i]), "AFT" if aft[i] else "CBT", t + 1,
                             ROLES[r], *ratings))
    return pd.DataFrame(rows, columns=["dyad", "therapist", "treatment", "session", "role",
                                       "alliance", "outcome"])


def main() -> None:
    """Write ``alliance_sessions.csv`` beside this module."""
    path = Path(__file__).with_name("alliance_sessions.csv")
    generate_alliance().to_csv(path, index=False)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
