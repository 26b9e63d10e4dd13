"""Simulated three-level multivariate data (therapists > dyads > sessions) with known
``Sigma_T``, ``Sigma_B``, ``Sigma_W``, for the therapist-level latent APIM tests and
``benchmarks/latent_therapist.py``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from apim.data.session import SessionData

K = 4  # x[patient], x[therapist], y[patient], y[therapist]


def covariances() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Sigma_T, Sigma_B, Sigma_W) in the order x_P, x_T, y_P, y_T: at each level the
    outcomes are regressions on the predictors (therapist level: actor .3, partner .2;
    dyad level: actor .5, partner .2; session level: actor .4, partner .1)."""
    def level(var_x: float, cor_x: float, actor: float, partner: float,
              resid: float) -> np.ndarray:
        sxx = var_x * np.array([[1.0, cor_x], [cor_x, 1.0]])
        b = np.array([[actor, partner], [partner, actor]])  # rows y_P, y_T; cols x_P, x_T
        syy = b @ sxx @ b.T + resid * np.array([[1.0, 0.3], [0.3, 1.0]])
        sxy = sxx @ b.T
        return np.block([[sxx, sxy], [sxy.T, syy]])
    return (level(0.15, 0.5, 0.3, 0.2, 0.10), level(0.35, 0.3, 0.5, 0.2, 0.30),
            level(0.50, 0.2, 0.4, 0.1, 0.50))


def simulate_three_level(n_therapists: int,
                         dyads: int | tuple[int, int] | list[int], sessions: int,
                         seed: int, sigma_t: np.ndarray | None = None,
                         missing: float = 0.0, phi: float = 0.0
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``y`` (rows dyad x session, K columns, NaN missing), dyad, session, therapist.

    ``dyads`` is the number of dyads per therapist, a (low, high) range drawn per
    therapist, or a list of each therapist's number; every dyad has ``sessions``
    sessions (before ``missing`` single ratings are deleted at random); the within part
    is AR(1) with ``phi``.
    """
    rng = np.random.default_rng(seed)
    st, sb, sw = covariances()
    st = st if sigma_t is None else sigma_t
    if isinstance(dyads, list):
        sizes = np.array(dyads)
    elif isinstance(dyads, tuple):
        sizes = rng.integers(dyads[0], dyads[1] + 1, n_therapists)
    else:
        sizes = np.full(n_therapists, dyads)
    ther_of = np.repeat(np.arange(n_therapists), sizes)
    d = len(ther_of)
    dyad = np.repeat(np.arange(d), sessions)
    session = np.tile(np.arange(1, sessions + 1), d)
    mu = np.array([5.0, 5.2, 3.0, 3.1])
    lt = np.linalg.cholesky(st + 1e-12 * np.eye(K))
    v = rng.normal(size=(n_therapists, K)) @ lt.T
    b = rng.normal(size=(d, K)) @ np.linalg.cholesky(sb).T
    e = rng.normal(size=(d, sessions, K)) @ np.linalg.cholesky(sw).T
    w = np.empty_like(e)
    w[:, 0] = e[:, 0]
    for t in range(1, sessions):
        w[:, t] = phi * w[:, t - 1] + np.sqrt(1 - phi ** 2) * e[:, t]
    y = mu + v[ther_of][dyad] + b[dyad] + w.reshape(d * sessions, K)
    if missing:
        y[rng.random(y.shape) < missing] = np.nan
    return y, dyad, session, ther_of[dyad]


def to_session_data(y: np.ndarray, dyad: np.ndarray, session: np.ndarray,
                    therapist: np.ndarray | None) -> SessionData:
    """Long SessionData with roles patient, therapist, variables x, y and a therapist
    column (``None``: not mapped)."""
    parts = []
    for j, role in enumerate(("patient", "therapist")):
        part = pd.DataFrame({"dyad": dyad, "session": session, "role": role,
                             "x": y[:, j], "y": y[:, 2 + j]})
        if therapist is not None:
            part.insert(1, "therapist", [f"T{t:03d}" for t in therapist])
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    frame = frame[frame[["x", "y"]].notna().any(axis=1)].reset_index(drop=True)
    return SessionData.from_long(frame, dyad="dyad", session="session", role="role",
                                 roles=("patient", "therapist"),
                                 therapist="therapist" if therapist is not None else None)
