"""Simulation and Monte Carlo power for the dynamic APIM (:mod:`apim.model.dynamic`).

:class:`DynamicSimulationSpec` is the data-generating process of the dynamic APIM with one
predictor ``x`` and outcome ``y`` per member (K = 4, in the order x[patient],
x[therapist], y[patient], y[therapist]): latent person means ``u ~ N(0, Sigma_B)``, the
within part ``w_t = Phi w_t-1 + e_t``, ``e ~ N(0, Sigma_W)``, starting from its stationary
distribution, plus optional missing ratings and dropout. :func:`simulate_dynamic` draws
long session data from it; :func:`dynamic_power` estimates the power of a lagged effect
(or any Wald hypothesis) of a :class:`~apim.model.dynamic_spec.DynamicAPIMSpec` fit.

Examples
--------
>>> spec = DynamicSimulationSpec(n_dyads=4, n_sessions=3)
>>> data = simulate_dynamic(spec, seed=1)
>>> data.n_dyads, sorted(data.frame["session"].unique().tolist())
(4, [1, 2, 3])
>>> bool(simulate_dynamic(spec, seed=1).frame["y"].equals(data.frame["y"]))
True
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from apim.data.session import SessionData
from apim.engine.dynamic.kalman import spectral_radius, stationary_covariance
from apim.errors import SpecError
from apim.inference.wald import wald_test
from apim.model.dynamic import effect_names
from apim.model.dynamic_spec import DynamicAPIMSpec
from apim.model.registry import fit
from apim.parallel import run_jobs
from apim.simulation.power import check_hypothesis
from apim.specbase import Spec

__all__ = ["DynamicSimulationSpec", "simulate_dynamic", "dynamic_power",
           "DynamicPowerResult"]

Matrix = tuple[tuple[float, ...], ...]
ROLES = ("patient", "therapist")


def _matrix(value: Matrix, name: str) -> np.ndarray:
    m = np.array(value, float)
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        raise SpecError(f"{name} must be a 4 x 4 matrix of numbers (rows and columns in the "
                        "order x[patient], x[therapist], y[patient], y[therapist])")
    return m


@dataclass(frozen=True)
class DynamicSimulationSpec(Spec):
    """The dynamic APIM's data-generating process (see the module docstring).

    Parameters
    ----------
    n_dyads, n_sessions : int
    phi : 4 x 4 rows
        Lagged effects ``Phi[to, from]``; default: autoregressions .4, actor effects of x
        on y .2, partner effects .1, no reverse paths. Must be stable.
    sigma_w, sigma_b : 4 x 4 rows
        Innovation and person-level covariances (positive definite; ``sigma_b`` may be
        semi-definite).
    means : 4 numbers
    p_missing : float
        Share of single ratings missing at random.
    dropout : float
        Share of dyads that end early (after a uniformly drawn session, at least 2).
    """

    n_dyads: int = 100
    n_sessions: int = 10
    phi: Matrix = ((0.4, 0.0, 0.0, 0.0), (0.0, 0.4, 0.0, 0.0),
                   (0.2, 0.1, 0.4, 0.0), (0.1, 0.2, 0.0, 0.4))
    sigma_w: Matrix = ((1.0, 0.3, 0.3, 0.1), (0.3, 1.0, 0.1, 0.3),
                       (0.3, 0.1, 1.0, 0.3), (0.1, 0.3, 0.3, 1.0))
    sigma_b: Matrix = ((0.5, 0.2, 0.2, 0.1), (0.2, 0.5, 0.1, 0.2),
                       (0.2, 0.1, 0.5, 0.2), (0.1, 0.2, 0.2, 0.5))
    means: tuple[float, ...] = (4.5, 4.5, 3.0, 3.0)
    p_missing: float = 0.0
    dropout: float = 0.0

    def check(self) -> None:
        if self.n_dyads < 2 or self.n_sessions < 2:
            raise SpecError(f"n_dyads={self.n_dyads} and n_sessions={self.n_sessions} must "
                            "be at least 2")
        phi = _matrix(self.phi, "phi")
        if spectral_radius(phi) >= 1:
            raise SpecError(f"phi is not stable (largest |eigenvalue| "
                            f"{spectral_radius(phi):.3f} >= 1): the process has no "
                            "stationary distribution to start from")
        for name in ("sigma_w", "sigma_b"):
            m = _matrix(getattr(self, name), name)
            if not np.allclose(m, m.T) or np.linalg.eigvalsh(m).min() < -1e-12:
                raise SpecError(f"{name} must be a symmetric positive semi-definite matrix")
        if np.linalg.eigvalsh(_matrix(self.sigma_w, "sigma_w")).min() <= 0:
            raise SpecError("sigma_w must be positive definite")
        if len(self.means) != 4:
            raise SpecError("means must hold 4 numbers")
        for name in ("p_missing", "dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise SpecError(f"{name}={getattr(self, name)!r} must be in [0, 1)")


def simulate_dynamic(spec: DynamicSimulationSpec,
                     seed: int | np.random.SeedSequence = 0) -> SessionData:
    """Long session data (``dyad, session, role, x, y``) drawn from ``spec``; the same
    seed gives identical data. Sessions without any rating (after a dropout) have no
    rows."""
    rng = np.random.default_rng(seed)
    n, t = spec.n_dyads, spec.n_sessions
    phi = np.array(spec.phi, float)
    sigma_w, sigma_b = np.array(spec.sigma_w, float), np.array(spec.sigma_b, float)
    u = rng.multivariate_normal(np.zeros(4), sigma_b, size=n)
    w = np.zeros((n, t, 4))
    w[:, 0] = rng.multivariate_normal(np.zeros(4), stationary_covariance(phi, sigma_w),
                                      size=n)
    for s in range(1, t):
        w[:, s] = w[:, s - 1] @ phi.T + rng.multivariate_normal(np.zeros(4), sigma_w,
                                                                 size=n)
    y = np.array(spec.means, float) + u[:, None, :] + w
    y[rng.random(y.shape) < spec.p_missing] = np.nan
    last = np.full(n, t)
    leaving = rng.random(n) < spec.dropout
    last[leaving] = rng.integers(2, t + 1, size=int(leaving.sum()))
    dyad, session = np.meshgrid(np.arange(n), np.arange(t), indexing="ij")
    keep = (session < last[:, None]) & ~np.isnan(y).all(axis=2)
    parts = []
    for r, role in enumerate(ROLES):
        parts.append(pd.DataFrame({"dyad": dyad[keep] + 1, "session": session[keep] + 1,
                                   "role": role, "x": y[..., r][keep],
                                   "y": y[..., 2 + r][keep]}))
    frame = pd.concat(parts, ignore_index=True).sort_values(["dyad", "session", "role"],
                                                            ignore_index=True)
    return SessionData.from_long(frame, dyad="dyad", session="session", role="role",
                                 roles=ROLES)


@dataclass(frozen=True)
class DynamicPowerResult:
    """Power of one hypothesis: ``power`` (share of converged replicates with p <
    alpha), its Monte Carlo SE ``mcse``, the mean estimate, and per replicate ``table``
    (``p``, ``estimate``, ``converged``; failures with their error)."""

    power: float
    mcse: float
    mean_estimate: float
    replicates: int
    table: pd.DataFrame
    hypothesis: str
    alpha: float
    seconds: float


def _replicate(seed: np.random.SeedSequence, truth: DynamicSimulationSpec,
               analysis: DynamicAPIMSpec, hypothesis: str) -> list[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit(simulate_dynamic(truth, seed), analysis)
        test = wald_test(result, hypothesis)
    return [float(test.p), float(test.estimate[0]), bool(result.statistics.converged)]


def dynamic_power(truth: DynamicSimulationSpec, hypothesis: str,
                  analysis: DynamicAPIMSpec | None = None, replicates: int = 200,
                  alpha: float = 0.05, seed: int = 0, n_jobs: int = 1,
                  progress: bool = False) -> DynamicPowerResult:
    """Monte Carlo power of ``hypothesis`` (an effect name, tested against 0, or a Wald
    hypothesis) in ``analysis`` (default ``DynamicAPIMSpec("y", ("x",))``) for data from
    ``truth``; replicate ``j`` uses the ``j``-th seed spawned from ``seed``, so results
    are the same serially and in parallel (``n_jobs``)."""
    analysis = analysis if analysis is not None else DynamicAPIMSpec("y", ("x",))
    if not isinstance(analysis, DynamicAPIMSpec):
        raise SpecError(f"analysis must be a DynamicAPIMSpec, not {type(analysis).__name__}")
    if replicates < 1 or not 0 < alpha < 1:
        raise SpecError(f"replicates={replicates} must be >= 1 and alpha={alpha} in (0, 1)")
    hypothesis = check_hypothesis(hypothesis, effect_names(analysis, ROLES))
    clock = time.perf_counter()
    seeds = np.random.SeedSequence(int(seed)).spawn(int(replicates))
    outcomes = run_jobs(partial(_replicate, truth=truth, analysis=analysis,
                                hypothesis=hypothesis), seeds, n_jobs=n_jobs,
                        progress=progress, desc="replicates")
    rows = [(o.index, *(o.value if o.ok and o.value is not None else
                        (np.nan, np.nan, False)), o.error) for o in outcomes]
    table = pd.DataFrame(rows, columns=["replicate", "p", "estimate", "converged", "error"])
    usable = table[table["converged"].astype(bool)]
    k = len(usable)
    rate = float((usable["p"] < alpha).mean()) if k else float("nan")
    return DynamicPowerResult(
        power=rate, mcse=float(np.sqrt(rate * (1 - rate) / k)) if k else float("nan"),
        mean_estimate=float(usable["estimate"].mean()) if k else float("nan"),
        replicates=k, table=table, hypothesis=hypothesis, alpha=float(alpha),
        seconds=time.perf_counter() - clock)
