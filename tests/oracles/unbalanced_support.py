"""Unbalanced session-by-session data for the tests of the engine's preparation
(``test_memory.py``, ``test_bigdata.py``): dropout and single missing ratings."""

from __future__ import annotations

import numpy as np
import pandas as pd


def unbalanced(n_dyads: int, n_sessions: int, seed: int, missing: float
               ) -> tuple[pd.DataFrame, np.random.Generator]:
    """Dyads that stop after 2 to ``n_sessions`` sessions, a share ``missing`` of single
    ratings dropped, ``y = 3 + 0.4 x + u + e`` with role intercepts ``u``; also the
    generator, for the caller's further columns."""
    rng = np.random.default_rng(seed)
    dyad, session, role = np.meshgrid(np.arange(n_dyads), np.arange(1, n_sessions + 1),
                                      [0, 1], indexing="ij")
    frame = pd.DataFrame({"dyad": dyad.ravel(), "session": session.ravel(),
                          "role": role.ravel()})
    last = rng.integers(2, n_sessions + 1, n_dyads)
    frame = frame[(frame["session"] <= last[frame["dyad"]])
                  & (rng.random(len(frame)) >= missing)].reset_index(drop=True)
    u = rng.normal(0, 0.6, (n_dyads, 2))[frame["dyad"], frame["role"]]
    frame["x"] = rng.normal(size=len(frame))
    frame["y"] = 3 + 0.4 * frame["x"] + u + rng.normal(0, 0.5, len(frame))
    return frame, rng
