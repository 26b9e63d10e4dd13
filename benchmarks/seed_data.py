"""Vectorised generator of seed-design data for the benchmarks and the optimizer tests
(complete, balanced).

``y_irt = b0_r + 0.4 aw + 0.15 pw + 0.5 ab + 0.2 pb + u_ir + e_irt`` with role-specific
intercepts ``u`` (SDs 0.7, 0.6, correlation 0.5), residuals with SDs 0.6 and 0.5 and
same-session correlation 0.3, and role-specific random actor/partner slopes (SD
``slope_sd``, default 0.15) when ``slopes=True``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def seed_design(n_dyads: int = 241, n_sessions: int = 30, seed: int = 1,
                slopes: bool = False, phi: float = 0.0, caseload: int = 0,
                slope_sd: float = 0.15) -> pd.DataFrame:
    """Seed-design data; ``phi``: AR(1) residuals over sessions (``UN x AR(1)``);
    ``caseload``: dyads per therapist, with therapist intercepts (SD 0.3). Both add no
    random draws to the default design, which stays the same bit for bit."""
    rng = np.random.default_rng(seed)
    d, s = n_dyads, n_sessions
    u = rng.multivariate_normal([0, 0], [[0.49, 0.21], [0.21, 0.36]], size=d)
    xb = rng.normal(0, 0.6, size=(d, 2))
    xw = rng.normal(0, 0.5, size=(d, s, 2))
    e = rng.multivariate_normal([0, 0], [[0.36, 0.09], [0.09, 0.25]], size=(d, s))
    ga = rng.normal(0, slope_sd, size=(d, 2)) if slopes else np.zeros((d, 2))
    gp = rng.normal(0, slope_sd, size=(d, 2)) if slopes else np.zeros((d, 2))
    for t in range(1, s if phi else 0):  # stationary AR(1) with the same marginals
        e[:, t] = phi * e[:, t - 1] + np.sqrt(1 - phi ** 2) * e[:, t]
    other = [1, 0]
    y = (np.array([4.6, 4.4]) + (0.4 + ga[:, None, :]) * xw
         + (0.15 + gp[:, None, :]) * xw[:, :, other]
         + (0.5 * xb + 0.2 * xb[:, other])[:, None, :] + u[:, None, :] + e)
    dyad, session, role = np.meshgrid(np.arange(d), np.arange(1, s + 1), [0, 1],
                                      indexing="ij")
    extra = {}
    if caseload:
        therapist = dyad // caseload
        v = np.random.default_rng([seed, 7]).normal(0, 0.3, size=therapist.max() + 1)
        y = y + v[therapist]
        extra["therapist"] = therapist.ravel()
    return pd.DataFrame({**extra,
        "dyad": dyad.ravel(), "session": session.ravel(), "role": role.ravel(),
        "aw": xw.ravel(), "pw": xw[:, :, other].ravel(),
        "ab": np.broadcast_to(xb[:, None, :], (d, s, 2)).ravel(),
        "pb": np.broadcast_to(xb[:, other][:, None, :], (d, s, 2)).ravel(),
        "y": y.ravel(),
    })
