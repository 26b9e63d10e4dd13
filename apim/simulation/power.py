"""Monte Carlo power of an APIM effect or Wald hypothesis over a grid of designs.

Every replicate simulates a data set (:func:`apim.simulation.simulate.simulate`), fits the analysis
model and tests the hypothesis. Each (grid point, replicate) gets its own seed from one
``numpy.random.SeedSequence``, so results are identical whatever the number of workers.
Replicates run in parallel with joblib (``n_jobs``), or on a Dask cluster when a scheduler
address is given; a progress bar (tqdm) shows how far it is. Failed fits are counted, not
hidden.

Examples
--------
>>> from apim import APIMSpec
>>> from apim.simulation.simulate import SimulationSpec
>>> result = power(SimulationSpec(n_dyads=30, n_sessions=5), APIMSpec("y", ("x",)),
...                "patient.actor.within", replicates=4, progress=False)
>>> list(result.table.columns)[:3]
['n_dyads', 'n_sessions', 'power']
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import numpy as np
import pandas as pd

from apim.errors import SpecError
from apim.model.spec import APIMSpec
from apim.simulation.simulate import SimulationSpec, simulate

__all__ = ["PowerResult", "power", "run_replicates"]


@dataclass(frozen=True)
class PowerResult:
    """Power per grid point: ``table`` has the grid columns, ``power``, its Monte Carlo
    SE ``mcse``, ``mean_estimate``, ``replicates``, ``failed`` and ``seconds``."""

    table: pd.DataFrame = field(repr=False)
    hypothesis: str
    alpha: float
    seconds: float

    def plot(self, x: str = "n_dyads", by: str | None = "n_sessions", ax: Any = None) -> Any:
        """Power curve(s) with +-2 MCSE bands (needs matplotlib: ``apim[plot]``)."""
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise SpecError("plotting needs matplotlib: pip install 'apim[plot]'") from None
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        groups = self.table.groupby(by) if by else [(None, self.table)]
        for key, part in groups:
            part = part.sort_values(x)
            ax.plot(part[x], part["power"], marker="o", label=f"{by} = {key}" if by else None)
            ax.fill_between(part[x], part["power"] - 2 * part["mcse"],
                            part["power"] + 2 * part["mcse"], alpha=0.2)
        ax.axhline(0.8, color="grey", linestyle=":")
        ax.set(xlabel=x, ylabel="power", ylim=(0, 1.02), title=self.hypothesis)
        if by:
            ax.legend()
        return ax


def _one(truth: SimulationSpec, analysis: APIMSpec, hypothesis: str,
         seed: np.random.SeedSequence) -> tuple[float, float, bool]:
    """(p value, estimate, failed) of one replicate."""
    from apim.inference.wald import wald_test
    from apim.model.fit import fit

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = fit(simulate(truth, seed), analysis)
            test = wald_test(result, hypothesis)
        if not result.engine.converged:
            return np.nan, np.nan, True
        return test.p, test.estimate[0], False
    except (np.linalg.LinAlgError, ValueError):
        return np.nan, np.nan, True


def _chunk(jobs: list[tuple[SimulationSpec, np.random.SeedSequence]], analysis: APIMSpec,
           hypothesis: str) -> list[tuple[float, float, bool]]:
    return [_one(truth, analysis, hypothesis, seed) for truth, seed in jobs]


def run_replicates(jobs: list[tuple[SimulationSpec, np.random.SeedSequence]],
                   analysis: APIMSpec, hypothesis: str, n_jobs: int = 1,
                   scheduler: str | None = None, progress: bool = True,
                   chunk_size: int = 10) -> list[tuple[float, float, bool]]:
    """(p value, estimate, failed) of each replicate (truth, seed), run serially, with
    joblib, or on a Dask cluster."""
    chunks = [jobs[k:k + chunk_size] for k in range(0, len(jobs), chunk_size)]
    bar = _progress(len(jobs), progress)
    out: list[tuple[float, float, bool]] = []
    if n_jobs == 1 and scheduler is None:
        for c in chunks:
            out += _chunk(c, analysis, hypothesis)
            bar.update(len(c))
        bar.close()
        return out
    try:
        from joblib import Parallel, delayed, parallel_backend
    except ImportError:
        raise SpecError("parallel runs need joblib: pip install 'apim[parallel]'") from None
    client = None
    if scheduler is not None:
        try:
            from dask.distributed import Client
        except ImportError:
            raise SpecError("a Dask scheduler needs dask.distributed: "
                              "pip install 'apim[dask]'") from None
        client = Client(scheduler)
    try:
        backend = parallel_backend("dask") if client is not None else nullcontext()
        with backend:
            runner = Parallel(n_jobs=n_jobs if client is None else -1,
                              return_as="generator")
            for c, part in zip(chunks, runner(delayed(_chunk)(c, analysis, hypothesis)
                                              for c in chunks)):
                out += part
                bar.update(len(c))
    finally:
        bar.close()
        if client is not None:
            client.close()
    return out


class _Silent:
    def update(self, n: int) -> None:
        return None

    def close(self) -> None:
        return None


def _progress(total: int, show: bool) -> Any:
    if not show:
        return _Silent()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _Silent()
    return tqdm(total=total, desc="replicates", unit="fit")


def power(truth: SimulationSpec, analysis: APIMSpec, hypothesis: str,
          grid: dict[str, Iterable[Any]] | None = None, replicates: int = 1000,
          alpha: float = 0.05, seed: int = 0, n_jobs: int = 1, scheduler: str | None = None,
          progress: bool = True) -> PowerResult:
    """Monte Carlo power of ``hypothesis`` in ``analysis`` for data simulated from ``truth``.

    Parameters
    ----------
    truth : SimulationSpec
        The data-generating process; the simulated columns are ``x`` and ``y``.
    analysis : APIMSpec
        The model fitted to every replicate (e.g. ``APIMSpec("y", ("x",))``).
    hypothesis : str
        An effect name (tested against 0) or a Wald hypothesis with ``=``.
    grid : dict, optional
        Fields of ``truth`` and the values to try, e.g. ``{"n_dyads": [60, 120, 240],
        "n_sessions": [10, 30], "partner_within": [(0.1, 0.1), (0.2, 0.2)]}``.
    replicates : int
        Replicates per grid point.
    alpha : float
    seed : int
    n_jobs : int
        joblib workers (-1: all cores).
    scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://host:8786``).
    progress : bool
        Show a progress bar.
    """
    if replicates < 1:
        raise SpecError("replicates must be at least 1")
    test = hypothesis if "=" in hypothesis else f"{hypothesis} = 0"
    grid = dict(grid or {})
    names = list(grid) or ["n_dyads", "n_sessions"]
    values = [list(grid[n]) for n in grid] or [[truth.n_dyads], [truth.n_sessions]]
    points = [dict(zip(names, combo)) for combo in product(*values)]
    seeds = np.random.SeedSequence(seed).spawn(len(points) * replicates)
    jobs = [(truth.replace(**point), seeds[k * replicates + j])
            for k, point in enumerate(points) for j in range(replicates)]
    clock = time.perf_counter()
    results = run_replicates(jobs, analysis, test, n_jobs, scheduler, progress)
    seconds = time.perf_counter() - clock
    rows = []
    for k, point in enumerate(points):
        part = results[k * replicates:(k + 1) * replicates]
        p = np.array([r[0] for r in part if not r[2]])
        est = np.array([r[1] for r in part if not r[2]])
        n_ok = len(p)
        rate = float(np.mean(p < alpha)) if n_ok else np.nan
        rows.append({**{n: _label(point[n]) for n in names}, "power": rate,
                     "mcse": float(np.sqrt(rate * (1 - rate) / n_ok)) if n_ok else np.nan,
                     "mean_estimate": float(est.mean()) if n_ok else np.nan,
                     "replicates": n_ok, "failed": replicates - n_ok})
    table = pd.DataFrame(rows)
    for fixed in ("n_dyads", "n_sessions"):
        if fixed not in table:
            table.insert(0, fixed, getattr(truth, fixed))
    order = ["n_dyads", "n_sessions"] + [c for c in table.columns
                                         if c not in ("n_dyads", "n_sessions")]
    return PowerResult(table=table[order], hypothesis=test, alpha=alpha, seconds=seconds)


def _label(value: Any) -> Any:
    return str(tuple(value)) if isinstance(value, Sequence) and not isinstance(value, str) \
        else value
