"""Run many independent jobs: serially, with joblib workers, or on a Dask cluster.

:func:`run_jobs` is the one runner behind power analyses, bootstraps and batch plans. Each
job may get its own ``numpy.random.SeedSequence`` (spawned from one seed, so results are
the same however the jobs are spread over workers), a progress bar shows how far it is,
and a job that raises comes back as a failed :class:`JobOutcome` with the error's type
and text while the other jobs complete. Workers use one BLAS thread each (more threads
than cores only slow a machine full of workers).

Examples
--------
>>> def square(x):
...     if x == 3:
...         raise ValueError("three is not allowed")
...     return x * x
>>> outcomes = run_jobs(square, [1, 2, 3, 4], progress=False)
>>> [o.value for o in outcomes]
[1, 4, None, 16]
>>> outcomes[2].error_type, outcomes[2].error
('ValueError', 'three is not allowed')
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from apim.errors import ApimError, SpecError

__all__ = ["JobOutcome", "run_jobs", "progress_bar", "CONNECT_TIMEOUT"]

J = TypeVar("J")
T = TypeVar("T")
CONNECT_TIMEOUT = 5.0  # seconds to reach a Dask scheduler


@dataclass(frozen=True)
class JobOutcome(Generic[T]):
    """What one job gave: its ``value``, or the type and text of the error it raised."""

    index: int
    value: T | None
    error_type: str | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error_type is None


def _run_one(func: Callable[..., T], index: int, job: Any,
             seed: np.random.SeedSequence | None) -> JobOutcome[T]:
    clock = time.perf_counter()
    try:
        value = func(job) if seed is None else func(job, seed)
    except Exception as error:  # noqa: BLE001 - every failure is reported, none hidden
        return JobOutcome(index, None, type(error).__name__, " ".join(str(error).split()),
                          time.perf_counter() - clock)
    return JobOutcome(index, value, seconds=time.perf_counter() - clock)


def _chunk(func: Callable[..., T], items: list[tuple[int, Any, Any]]) -> list[JobOutcome[T]]:
    return [_run_one(func, i, job, seed) for i, job, seed in items]


class _Silent:
    def update(self, n: int) -> None:
        return None

    def close(self) -> None:
        return None


def progress_bar(total: int, show: bool, desc: str) -> Any:
    """A tqdm bar (``update``, ``close``), or a silent stand-in when not shown or when
    tqdm is missing."""
    if not show:
        return _Silent()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _Silent()
    return tqdm(total=total, desc=desc, unit="job")


@contextmanager
def _dask(scheduler: str) -> Iterator[Any]:
    try:
        from dask.distributed import Client
    except ImportError:
        raise SpecError("a Dask scheduler needs dask.distributed: "
                        "pip install 'dask[distributed]'") from None
    if "://" not in scheduler and ":" not in scheduler:
        raise SpecError(f"scheduler={scheduler!r} is not an address like tcp://host:8786")
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as error:
        raise ApimError(f"could not reach the Dask scheduler at {scheduler!r} within "
                        f"{CONNECT_TIMEOUT:.0f} s ({type(error).__name__}); check the "
                        "address and that the scheduler is running") from None
    try:
        yield client
    finally:
        client.close()


dask_client = _dask
"""``with dask_client(address) as client``: a client of the Dask scheduler at ``address``
(``tcp://host:8786``), closed at the end; clear errors for a missing dask.distributed, a
malformed address or a scheduler that cannot be reached."""


def run_jobs(func: Callable[..., T], jobs: Sequence[J], *, seed: int | None = None,
             n_jobs: int = 1, scheduler: str | None = None, progress: bool = True,
             desc: str = "jobs", chunk_size: int = 1) -> list[JobOutcome[T]]:
    """Run ``func`` on every job and return the outcomes in the order of ``jobs``.

    Parameters
    ----------
    func : callable
        ``func(job)``, or ``func(job, seed)`` when ``seed`` is given. It must be picklable
        (a module-level function) for parallel runs.
    jobs : sequence
    seed : int, optional
        Spawn one ``SeedSequence`` per job from this seed and pass it to ``func``.
    n_jobs : int
        joblib workers (1: run here; -1: all cores).
    scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://host:8786``); connecting times
        out after :data:`CONNECT_TIMEOUT` seconds with an :class:`~apim.errors.ApimError`.
    progress : bool
        Show a progress bar (tqdm).
    desc : str
        Label of the progress bar.
    chunk_size : int
        Jobs sent to a worker at a time (larger chunks for many short jobs).

    Returns
    -------
    list of JobOutcome
    """
    if not isinstance(n_jobs, int) or isinstance(n_jobs, bool) or n_jobs == 0 or n_jobs < -1:
        raise SpecError(f"n_jobs={n_jobs!r} must be a positive whole number or -1 (all cores)")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise SpecError(f"chunk_size={chunk_size!r} must be a whole number >= 1")
    seeds: list[Any] = (list(np.random.SeedSequence(seed).spawn(len(jobs)))
                        if seed is not None else [None] * len(jobs))
    items = [(i, job, s) for i, (job, s) in enumerate(zip(jobs, seeds))]
    chunks = [items[k:k + chunk_size] for k in range(0, len(items), chunk_size)]
    bar = progress_bar(len(items), progress, desc)
    out: list[JobOutcome[T]] = []
    try:
        if n_jobs == 1 and scheduler is None:
            for c in chunks:
                out += _chunk(func, c)
                bar.update(len(c))
            return out
        try:
            from joblib import Parallel, delayed, parallel_config
        except ImportError:
            raise SpecError("parallel runs need joblib: pip install joblib") from None
        cluster = _dask(scheduler) if scheduler is not None else nullcontext()
        with cluster:
            config = (parallel_config(backend="dask") if scheduler is not None
                      else parallel_config(backend="loky", inner_max_num_threads=1))
            with config:
                runner = Parallel(n_jobs=-1 if scheduler is not None else n_jobs,
                                  return_as="generator")
                for c, part in zip(chunks, runner(delayed(_chunk)(func, c) for c in chunks)):
                    out += part
                    bar.update(len(c))
        return out
    finally:
        bar.close()
