"""Monte Carlo power of an APIM effect or Wald hypothesis over a grid of designs.

Every replicate simulates a data set (:func:`apim.simulation.simulate.simulate`), fits the
analysis model and tests the hypothesis. Before anything is simulated in earnest, every
option is checked, one design of the analysis is built on one simulated data set and the
hypothesis is read against its effect names, so a misspelt effect is a
:class:`~apim.errors.SpecError` that lists the valid names at once.

Replicates run on :func:`apim.parallel.run_jobs`: each (grid point, replicate) has its own
``numpy.random.SeedSequence`` spawned from one seed, so results are identical serially,
with joblib workers (``n_jobs``) or on a Dask cluster (``scheduler``). A replicate that
raises is counted by error type (``PowerResult.failures``), a fit that did not converge
is counted in ``not_converged``; neither enters the power. With a ``checkpoint`` folder,
finished blocks of replicates are stored as they complete and a rerun with the same
settings skips them and gives the identical table (alpha may differ: p values are
stored).

Any analysis :func:`apim.fit` takes works the same way: the generalized APIM
(:class:`~apim.model.generalized_spec.GeneralizedAPIMSpec`) of a binary or ordinal outcome
simulated with the same ``family`` (``SimulationSpec(family="binomial", ...)``) is tested
with its z tests (a Wald test reads the result's reference distribution), and
``mean_estimate`` is then on the link scale.

Examples
--------
>>> from apim import APIMSpec
>>> from apim.simulation.simulate import SimulationSpec
>>> result = power(SimulationSpec(n_dyads=30, n_sessions=5), APIMSpec("y", ("x",)),
...                "patient.actor.within", replicates=4, progress=False)
>>> list(result.table.columns)[:3]
['n_dyads', 'n_sessions', 'power']
>>> power(SimulationSpec(n_dyads=30, n_sessions=5), APIMSpec("y", ("x",)),
...       "patient.actor.witin", replicates=4)
Traceback (most recent call last):
...
apim.errors.SpecError: hypothesis 'patient.actor.witin': unknown effect ... valid effects: ...
"""

from __future__ import annotations

import difflib
import os
import re
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import partial
from itertools import product
from typing import Any

import numpy as np
import pandas as pd

from apim.errors import ApimError, SpecError, TooLargeError
from apim.inference.wald import effect_aliases, wald_test
from apim.model.generalized_spec import GeneralizedAPIMSpec
from apim.model.registry import FITTERS, fit
from apim.parallel import JobOutcome, progress_bar, run_jobs
from apim.simulation.checkpoint import Checkpoint
from apim.simulation.simulate import SimulationSpec, simulate
from apim.specbase import Spec

__all__ = ["PowerResult", "power", "check_hypothesis", "check_scheduler", "check_family"]

BLOCK = 100  # replicates per checkpoint block
MAX_REPLICATES = 1_000_000
"""Most replicates per design: the Monte Carlo SE of a power is then at most 0.0005, so
more replicates cannot change a power reported to three decimals; they only cost time."""
JOB_BYTES = 1500  # memory per replicate kept until the end (seed, job, outcome; ~900 measured)
FIT_BYTES_PER_ROW = 2000  # a replicate's simulation and fit (~1,000 measured per row)
_SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")


@dataclass(frozen=True)
class PowerResult:
    """Power per grid point.

    Attributes
    ----------
    table : DataFrame
        The grid columns, ``power`` (share of usable replicates with p < alpha), its Monte
        Carlo SE ``mcse``, ``mean_estimate`` (of the first equation), ``replicates``
        (usable), ``failed`` (raised an error) and ``not_converged``.
    failures : DataFrame
        One row per grid point and error type: ``count`` and the first ``message``.
    hypothesis, alpha, seconds
    resumed : int
        Replicates read from the checkpoint instead of run.
    """

    table: pd.DataFrame = field(repr=False)
    failures: pd.DataFrame = field(repr=False)
    hypothesis: str
    alpha: float
    seconds: float
    resumed: int = 0

    def plot(self, x: str = "n_dyads", by: str | None = "n_sessions", ax: Any = None) -> Any:
        """Power curve(s) with +-2 MCSE bands (matplotlib)."""
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise SpecError("plotting needs matplotlib, a dependency of apim that is "
                              "missing here: pip install matplotlib") from None
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


def _replicate(job: tuple[SimulationSpec, np.random.SeedSequence], analysis: Spec,
               hypothesis: str) -> list[Any]:
    """[p value, estimate, converged] of one replicate."""
    truth, seed = job
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit(simulate(truth, seed), analysis)
        test = wald_test(result, hypothesis)
    return [float(test.p), float(test.estimate[0]), bool(result.statistics.converged)]


def check_scheduler(scheduler: str | None) -> None:
    """A Dask scheduler address must look like ``tcp://host:8786`` (or ``host:8786``).

    Examples
    --------
    >>> check_scheduler("tcp://10.0.0.5:8786")
    >>> check_scheduler("localhost")
    Traceback (most recent call last):
    ...
    apim.errors.SpecError: scheduler='localhost' is not a Dask scheduler address; give one like tcp://host:8786
    """
    if scheduler is None:
        return
    text = scheduler if isinstance(scheduler, str) else ""
    scheme, sep, rest = text.partition("://")
    ok = (scheme in _SCHEMES and bool(rest) and not re.search(r"\s", rest)) if sep else \
        bool(re.fullmatch(r"[\w.-]+:\d{1,5}", text))
    if not ok:
        raise SpecError(f"scheduler={scheduler!r} is not a Dask scheduler address; give one "
                        "like tcp://host:8786")


def _valid_names(names: list[str]) -> list[str]:
    """Full effect names and the shorter forms that name one effect (as Wald tests read)."""
    return list(effect_aliases(names))


def check_hypothesis(hypothesis: str, names: list[str]) -> str:
    """The hypothesis as a Wald test (``effect`` becomes ``effect = 0``), checked against
    the effect ``names`` of a design; a :class:`SpecError` lists the valid names.

    Examples
    --------
    >>> check_hypothesis("patient.actor.within", ["patient.intercept",
    ...                  "patient.actor.within.x"])
    'patient.actor.within = 0'
    """
    from apim.inference.wald import contrast_matrix

    if not isinstance(hypothesis, str) or not hypothesis.strip():
        raise SpecError(f"hypothesis={hypothesis!r} must name an effect, e.g. "
                        f"{names[min(1, len(names) - 1)]!r}")
    test = hypothesis if "=" in hypothesis else f"{hypothesis} = 0"
    try:
        contrast_matrix(test, names)
    except SpecError as error:
        valid = _valid_names(names)
        tokens = re.findall(r"[A-Za-z_][\w.\[\]|-]*", test)
        unknown = [t for t in tokens if t not in valid]
        if not unknown:
            raise SpecError(f"hypothesis {hypothesis!r}: {error}") from None
        close = difflib.get_close_matches(unknown[0], valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SpecError(f"hypothesis {hypothesis!r}: unknown effect {unknown[0]!r}{hint}; "
                        f"valid effects: {', '.join(names)} (or a shorter form that names "
                        "one of them, e.g. patient.actor.within)") from None
    return test


def _points(truth: SimulationSpec, grid: Mapping[str, Iterable[Any]] | None
            ) -> tuple[list[str], list[dict[str, Any]], list[SimulationSpec]]:
    if not isinstance(truth, SimulationSpec):
        raise SpecError(f"truth must be a SimulationSpec, not {type(truth).__name__}")
    if grid is not None and not isinstance(grid, Mapping):
        raise SpecError(f"grid must be a dict of field: values, not {type(grid).__name__}")
    grid = dict(grid or {})
    valid = [f.name for f in fields(SimulationSpec)]
    for name, values in grid.items():
        if name not in valid:
            close = difflib.get_close_matches(str(name), valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SpecError(f"grid field {name!r} is not a field of SimulationSpec{hint}; "
                            f"fields: {', '.join(valid)}")
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise SpecError(f"grid {name}={values!r} must be a list of values to try")
        grid[name] = list(values)
        if not grid[name]:
            raise SpecError(f"grid {name} has no values to try")
    names = list(grid) or ["n_dyads", "n_sessions"]
    values = [grid[n] for n in grid] or [[truth.n_dyads], [truth.n_sessions]]
    points = [dict(zip(names, combo)) for combo in product(*values)]
    truths = []
    for point in points:
        try:
            truths.append(truth.replace(**point))
        except SpecError as error:
            raise SpecError(f"grid point {point}: {error}") from None
    return names, points, truths


def _check_options(replicates: int, alpha: float, seed: int, n_jobs: int,
                   scheduler: str | None) -> None:
    if not isinstance(replicates, (int, np.integer)) or isinstance(replicates, bool) \
            or replicates < 1:
        raise SpecError(f"replicates={replicates!r} must be a whole number >= 1")
    if replicates > MAX_REPLICATES:
        raise TooLargeError(f"replicates={replicates:,} is more than {MAX_REPLICATES:,} per "
                            "design: at that number the Monte Carlo SE of a power is at "
                            "most 0.0005, so more replicates cannot change the result, "
                            "only the time it takes (give at most "
                            f"{MAX_REPLICATES:,})")
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0 < alpha < 1:
        raise SpecError(f"alpha={alpha!r} must lie strictly between 0 and 1, e.g. 0.05")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise SpecError(f"seed={seed!r} must be a whole number >= 0")
    if not isinstance(n_jobs, int) or isinstance(n_jobs, bool) or n_jobs == 0 or n_jobs < -1:
        raise SpecError(f"n_jobs={n_jobs!r} must be a positive whole number or -1 (all cores)")
    check_scheduler(scheduler)


def _check_size(truths: list[SimulationSpec], replicates: int, n_jobs: int,
                scheduler: str | None = None) -> None:
    """Refuse a run whose replicates cannot fit in memory: the kept results of every
    replicate, and the largest design simulated and fitted by each local worker at once
    (a Dask cluster's workers use their own machines' memory)."""
    from apim.limits import check_memory

    workers = 0 if scheduler else (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
    largest = max(truths, key=lambda t: t.n_dyads * t.n_sessions)
    rows = 2 * largest.n_dyads * largest.n_sessions
    total = len(truths) * replicates
    check_memory(total * JOB_BYTES + workers * rows * FIT_BYTES_PER_ROW,
                 f"a power run of {total:,} replicates ({len(truths)} design(s) x "
                 f"{replicates:,}), {max(workers, 1)} at a time, the largest with "
                 f"{largest.n_dyads:,} dyads x {largest.n_sessions:,} sessions "
                 f"({rows:,} rows)",
                 "give fewer replicates, smaller designs or fewer workers")


def check_family(truths: Sequence[SimulationSpec], analysis: Spec) -> None:
    """A generalized analysis needs data of its own family (a binary outcome for
    ``family="binomial"``, ordered categories for ``"ordinal"``); a Gaussian analysis may
    fit any outcome (e.g. a linear probability model of a binary one).

    Examples
    --------
    >>> check_family([SimulationSpec()], GeneralizedAPIMSpec("y", ("x",)))
    Traceback (most recent call last):
    ...
    apim.errors.SpecError: the analysis is a binomial APIM, but the simulated ...
    """
    if not isinstance(analysis, GeneralizedAPIMSpec):
        return
    other = sorted({t.family for t in truths if t.family != analysis.family})
    if not other:
        return
    fix = (f"simulate with family={analysis.family!r} (and its intercept or thresholds)"
           if other[0] == "gaussian" else
           f"simulate with family={analysis.family!r} or fit "
           f"GeneralizedAPIMSpec(family={other[0]!r})")
    raise SpecError(f"the analysis is a {analysis.family} APIM, but the simulated outcome "
                    f"is {other[0]} (SimulationSpec family={other[0]!r}); {fix}")


def _effect_names(truth: SimulationSpec, analysis: Spec, seed: int) -> list[str]:
    """Effect names of the analysis, from one fit to a small simulated data set; if the
    small data set cannot carry the model (e.g. one treatment arm only), to one of the
    full size."""
    small = truth.replace(n_dyads=min(truth.n_dyads, 60),
                          n_sessions=min(truth.n_sessions, 6))
    for k, sample in enumerate((small, truth)):
        data = simulate(sample, np.random.SeedSequence([seed, 2 ** 31]))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                names = list(fit(data, analysis).coef.index)
        except ApimError:
            if k == 1 or sample == truth:
                raise
            continue
        break
    return names


def _summarise(names: list[str], points: list[dict[str, Any]], truth: SimulationSpec,
               outcomes: list[JobOutcome[Any]], replicates: int,
               alpha: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, failures = [], []
    for k, point in enumerate(points):
        part = outcomes[k * replicates:(k + 1) * replicates]
        fitted: list[list[Any]] = [o.value for o in part if o.ok and o.value is not None]
        usable = [v for v in fitted if v[2]]
        p = np.array([float(v[0]) for v in usable])
        est = np.array([float(v[1]) for v in usable])
        n_ok = len(p)
        rate = float(np.mean(p < alpha)) if n_ok else np.nan
        label = {n: _label(point[n]) for n in names}
        rows.append({**label, "power": rate,
                     "mcse": float(np.sqrt(rate * (1 - rate) / n_ok)) if n_ok else np.nan,
                     "mean_estimate": float(est.mean()) if n_ok else np.nan,
                     "replicates": n_ok, "failed": len(part) - len(fitted),
                     "not_converged": len(fitted) - n_ok})
        errors: dict[str, list[str]] = {}
        for o in part:
            if not o.ok:
                errors.setdefault(str(o.error_type), []).append(str(o.error))
        for kind, messages in errors.items():
            failures.append({**label, "error_type": kind, "count": len(messages),
                             "message": messages[0]})
    table = pd.DataFrame(rows)
    for fixed in ("n_dyads", "n_sessions"):
        if fixed not in table:
            table.insert(0, fixed, getattr(truth, fixed))
    order = ["n_dyads", "n_sessions"] + [c for c in table.columns
                                         if c not in ("n_dyads", "n_sessions")]
    failed = pd.DataFrame(failures, columns=[*names, "error_type", "count", "message"])
    return table[order], failed


def power(truth: SimulationSpec, analysis: Spec, hypothesis: str,
          grid: Mapping[str, Iterable[Any]] | None = None, replicates: int = 1000,
          alpha: float = 0.05, seed: int = 0, n_jobs: int = 1, scheduler: str | None = None,
          progress: bool = True, checkpoint: str | os.PathLike[str] | None = None
          ) -> PowerResult:
    """Monte Carlo power of ``hypothesis`` in ``analysis`` for data simulated from ``truth``.

    Parameters
    ----------
    truth : SimulationSpec
        The data-generating process; the simulated columns are ``truth.predictor_name``
        and ``truth.outcome_name`` (``x`` and ``y`` by default).
    analysis : APIMSpec, FormulaSpec, LatentAPIMSpec, GeneralizedAPIMSpec (any spec
        :func:`apim.fit` takes)
        The model fitted to every replicate (e.g. ``APIMSpec("y", ("x",))``, or
        ``GeneralizedAPIMSpec("y", ("x",), family="binomial")`` for data simulated with
        ``family="binomial"``).
    hypothesis : str
        An effect name (tested against 0) or a Wald hypothesis with ``=``.
    grid : dict, optional
        Fields of ``truth`` and the values to try, e.g. ``{"n_dyads": [60, 120, 240],
        "n_sessions": [10, 30], "partner_within": [(0.1, 0.1), (0.2, 0.2)]}``.
    replicates : int
        Replicates per grid point.
    alpha : float
        Level of the test, in (0, 1).
    seed : int
        One seed for the whole run (each replicate gets its own spawned seed).
    n_jobs : int
        joblib workers (-1: all cores).
    scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://host:8786``).
    progress : bool
        Show a progress bar.
    checkpoint : path, optional
        Folder where finished blocks of replicates are stored; a rerun with the same
        settings reads them instead of running them again.

    Returns
    -------
    PowerResult

    Raises
    ------
    SpecError
        For any option out of range, a grid field or value that is not valid, and a
        hypothesis that names no effect of the analysis -- before any replicate is fitted.
    """
    _check_options(replicates, alpha, seed, n_jobs, scheduler)
    names, points, truths = _points(truth, grid)
    _check_size(truths, int(replicates), n_jobs, scheduler)
    if type(analysis) not in FITTERS:
        kinds = ", ".join(t.__name__ for t in FITTERS)
        raise SpecError(f"analysis must be one of {kinds}, not {type(analysis).__name__}")
    check_family(truths, analysis)
    smallest = min(truths, key=lambda t: (t.n_dyads * t.n_sessions, t.n_dyads))
    test = check_hypothesis(hypothesis, _effect_names(smallest, analysis, int(seed)))
    seeds = np.random.SeedSequence(int(seed)).spawn(len(points) * replicates)
    jobs = [(t, seeds[k * replicates + j]) for k, t in enumerate(truths)
            for j in range(replicates)]
    func = partial(_replicate, analysis=analysis, hypothesis=test)
    clock = time.perf_counter()
    resumed = 0
    if checkpoint is None:
        outcomes = run_jobs(func, jobs, n_jobs=n_jobs, scheduler=scheduler,
                            progress=progress, desc="replicates")
    else:
        store = Checkpoint(checkpoint, {
            "truths": [t.to_dict() for t in truths], "analysis": analysis.to_dict(),
            "analysis_type": type(analysis).__name__, "hypothesis": test,
            "replicates": int(replicates), "seed": int(seed)})
        done = store.load()
        resumed = len(done)
        outcomes = _run_blocks(func, jobs, done, store, n_jobs, scheduler, progress)
    seconds = time.perf_counter() - clock
    table, failures = _summarise(names, points, truth, outcomes, replicates, alpha)
    return PowerResult(table=table, failures=failures, hypothesis=test, alpha=float(alpha),
                       seconds=seconds, resumed=resumed)


def _run_blocks(func: Any, jobs: list[Any], done: dict[int, JobOutcome[Any]],
                store: Checkpoint, n_jobs: int, scheduler: str | None,
                progress: bool) -> list[JobOutcome[Any]]:
    """Run the jobs not ``done`` in blocks, storing each block as it finishes."""
    todo = [i for i in range(len(jobs)) if i not in done]
    bar = progress_bar(len(jobs), progress, "replicates")
    bar.update(len(jobs) - len(todo))
    results = dict(done)
    try:
        for start in range(0, len(todo), BLOCK):
            block = todo[start:start + BLOCK]
            part = run_jobs(func, [jobs[i] for i in block], n_jobs=n_jobs,
                            scheduler=scheduler, progress=False)
            renumbered = [JobOutcome(i, o.value, o.error_type, o.error, o.seconds)
                          for i, o in zip(block, part)]
            store.save(renumbered)
            results.update((o.index, o) for o in renumbered)
            bar.update(len(block))
    finally:
        bar.close()
    return [results[i] for i in range(len(jobs))]


def _label(value: Any) -> Any:
    return str(tuple(value)) if isinstance(value, Sequence) and not isinstance(value, str) \
        else value
