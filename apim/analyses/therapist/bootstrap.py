"""Parametric bootstrap of the variance shares: simulate outcomes from the fitted model,
refit, take percentiles of the replicates' shares.

The replicates refit the model that :func:`apim.fit` built, with the simulated outcome in
place of the observed one, starting from the estimate: :func:`refit_outcome` is the one
call of the engine in :mod:`apim.analyses.therapist`. (Through :func:`apim.fit` every
replicate would rebuild the same design from a new data set, three times the work of the
refit itself, and start from moments rather than from the estimate.)

Examples
--------
>>> import apim
>>> from apim.analyses.therapist.levels import fit_level
>>> unit = fit_level(apim.load_alliance(), "outcome", "patient", ())
>>> table = bootstrap_shares([unit], n_boot=20, level=0.95, seed=1)
>>> table.limits[0].shape, table.n_ok
((3, 2), (20,))
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from apim.analyses.therapist.levels import LevelFit, components
from apim.engine.mixed.estimate import MixedFit
from apim.engine.mixed.estimate import estimate_mixed as engine_fit
from apim.engine.mixed.model import MixedModel
from apim.errors import FitError
from apim.model.spec import Method
from apim.parallel import run_jobs

__all__ = ["refit_outcome", "replicate", "BootstrapShares", "bootstrap_shares"]

Estimate = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]


def refit_outcome(model: MixedModel, y: np.ndarray, method: Method,
                  start: np.ndarray | None) -> MixedFit:
    """The fitted model refitted to the outcome ``y`` (same rows, design and covariance),
    from ``start`` (default: the engine's moment start values); warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refit = engine_fit(dataclasses.replace(model, y=y), method, start=start)
    if not np.isfinite(refit.loglik):
        raise FitError(f"the refit of {model.x_names} did not reach a finite likelihood")
    return refit


def replicate(job: int, seed: np.random.SeedSequence, models: tuple[MixedModel, ...],
              estimates: tuple[Estimate, ...], method: Method, per_model: int) -> np.ndarray:
    """One replicate of model ``job // per_model``: simulate from the estimate, refit,
    return the shares."""
    k = job // per_model
    model = models[k]
    beta, variances, theta = estimates[k]
    rng = np.random.default_rng(seed)
    y = model.X @ beta
    sd = np.sqrt(variances)
    i = 0
    if model.therapist is not None:
        codes = np.unique(model.therapist, return_inverse=True)[1].ravel()
        y = y + rng.normal(0, sd[i], codes.max() + 1)[codes]
        i += 1
    if model.random is not None:
        codes = np.unique(model.dyad, return_inverse=True)[1].ravel()
        y = y + rng.normal(0, sd[i], codes.max() + 1)[codes]
    y = y + rng.normal(0, sd[-1], len(y))
    parts = components(model, refit_outcome(model, y, method, theta))
    return parts / parts.sum()


@dataclass(frozen=True)
class BootstrapShares:
    """Percentile limits per unit (levels x 2, NaN with fewer than 20 successful
    replicates), the successful replicates and the failures' texts."""

    limits: tuple[np.ndarray, ...]
    n_ok: tuple[int, ...]
    failures: tuple[tuple[str, ...], ...]


def bootstrap_shares(units: Sequence[LevelFit], *, n_boot: int, level: float,
                     seed: int | None = None, n_jobs: int = 1,
                     progress: bool = False) -> BootstrapShares:
    """Parametric-bootstrap percentile intervals of the shares of every unit.

    Refits start from the estimate, or from moments when it is on the boundary (a
    variance at zero would hold every refit there). Replicates run with
    :func:`apim.parallel.run_jobs` (``seed``: the same results however they are spread
    over workers); ``progress`` shows a bar.
    """
    models = tuple(u.model for u in units)
    estimates = tuple((u.result.engine.coef.to_numpy(), u.variances,
                       None if u.result.engine.boundary else u.result.engine.theta)
                      for u in units)
    jobs = list(range(len(units) * n_boot))
    func = functools.partial(replicate, models=models, estimates=estimates,
                             method=units[0].result.spec.method, per_model=n_boot)
    chunk = max(1, len(jobs) // (8 * max(n_jobs, 1)))
    outcomes = run_jobs(func, jobs, seed=seed, n_jobs=n_jobs, progress=progress,
                        desc="bootstrap", chunk_size=chunk)
    alpha = 1 - level
    limits, n_ok, failures = [], [], []
    for k, unit in enumerate(units):
        mine = outcomes[k * n_boot:(k + 1) * n_boot]
        values = np.array([o.value for o in mine if o.ok])
        failures.append(tuple(f"{o.error_type}: {o.error}" for o in mine if not o.ok))
        n_ok.append(len(values))
        limits.append(np.quantile(values, [alpha / 2, 1 - alpha / 2], axis=0).T
                      if len(values) >= 20 else np.full((len(unit.levels), 2), np.nan))
    return BootstrapShares(tuple(limits), tuple(n_ok), tuple(failures))
