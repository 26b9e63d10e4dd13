"""An APIM fitted from a file read in blocks of whole dyads: never all rows in memory.

Two passes over the file (:func:`apim.data.blocks.dyad_blocks`):

1. each block is validated as session data (:class:`~apim.data.session.SessionData`)
   and gives the sums behind the centres of the between parts (per role: the sum and
   number of person means, or of observations); summed over blocks they give the
   centres the in-memory split would use (person means need one pass over each dyad
   only, since a dyad's rows stay together);
2. each block is split and built with those centres (:func:`~apim.model.design.build_design`)
   and gives its :class:`~apim.engine.mixed.statistics.DyadStatistics`; they add up, and
   the model is fitted from their sum (:func:`~apim.engine.mixed.statistics.fit_statistics`),
   from start values of an in-memory fit of the first dyads.

In practice the file is read once: each block is built with provisional centres (the
first block's own) and its statistics are mapped to the whole file's centres at the end
(:meth:`~apim.engine.mixed.statistics.DyadStatistics.transformed`: centring moves a
between part by a constant per role, which the role's intercept absorbs, so the centred
columns are ``X(provisional) A``; ``A`` is solved on the first dyads and checked, else the file is
read a second time with the centres). The blocks' passes run in ``workers`` processes
while this one reads the file; their sums are added in the order of the blocks.

The result equals the in-memory fit (logLik and estimates to 1e-8,
``tests/model/test_out_of_core.py``). Memory: a block of rows per process and the statistics, whose
size depends on the number of distinct patterns of rows per dyad, not on the number of
dyads. Rows not used are counted per reason (not listed one by one).

Random slopes: a slope's column holds the dyad's own values, so no two dyads share their
random-effect blocks and the grouped sums would be kept per dyad (larger than the data);
each block gives instead the per-dyad store of the stencil moments' random-effect rows
(:class:`~apim.engine.mixed.dyad_store.DyadStore`, about 3.3 kB a dyad for actor and
partner slopes), kept in block order and fitted by the engine's per-dyad path. Grand-mean
centring moves the slopes' columns too (``Z B``, found and checked as ``A``). The store
grows with the number of dyads: it is sized from the first block and the file's rows and
refused beyond the memory available (:func:`check_store`).

What it fits: the observed-mean APIM with random intercepts or random slopes
(``random="intercepts"``, ``"slopes"``), person-mean, grand-mean or no centring, lags
and detrending, actor x partner interactions and numeric covariates, every residual
structure whose stencil holds on the rows present. Refused (fit in memory instead): a
therapist level or therapist centring (their sums run over a therapist's dyads, which
may lie in different blocks), no random effects, moderators (their levels and reference
are a property of the whole file), and ``UN x AR(1)`` with single ratings missing.

Examples
--------
>>> import tempfile, os
>>> import apim
>>> from apim.model.out_of_core import fit_out_of_core
>>> data = apim.load_alliance()
>>> path = os.path.join(tempfile.mkdtemp(), "alliance.csv")
>>> data.to_long().to_csv(path, index=False)
>>> spec = apim.APIMSpec("outcome", ("alliance",))
>>> blocks = fit_out_of_core(path, spec, dyad="dyad", session="session", role="role",
...                          roles=("patient", "therapist"), block_rows=2000)
>>> whole = apim.fit(data, spec)
>>> bool(abs(blocks.statistics.loglik - whole.statistics.loglik) < 1e-8)
True
>>> blocks.n_blocks > 1, blocks.dropped_counts == whole.dropped["reason"].value_counts().to_dict()
(True, True)
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from apim.data.blocks import (
    BLOCK_ROWS,
    Partition,
    check_together,
    dyad_blocks,
    parquet_partitions,
    partition_frame,
)
from apim.data.session import SessionData
from apim.engine.control import FitControl
from apim.engine.mixed.dyad_store import PIECE_DYADS, DyadStore
from apim.engine.mixed.estimate import estimate_mixed
from apim.engine.mixed.model import MixedModel
from apim.engine.mixed.statistics import DyadStatistics, fit_statistics
from apim.engine.threads import one_blas_thread
from apim.errors import (
    ApimError,
    DataError,
    SpecError,
    TooLargeError,
)
from apim.limits import check_memory, estimated_rows, human_bytes
from apim.model.centring import is_cross_sectional
from apim.model.design import Term, build_design, resolve_spec
from apim.model.out_of_core_centres import (
    centre_frame,
    centre_sums,
    check_informative,
    informative_sums,
    merge_informative,
    provisional_centres,
    solved,
)
from apim.model.out_of_core_result import OutOfCoreResult
from apim.model.spec import APIMSpec

__all__ = ["fit_out_of_core", "OutOfCoreResult", "BlockSource", "check_out_of_core",
           "check_store"]

START_ROWS = 200_000
"""Rows of the first dyads fitted in memory for start values."""

MAX_WORKERS = 4
"""Most processes :func:`fit_out_of_core` starts by default."""


def default_workers() -> int:
    """One process per core this process may use, at most :data:`MAX_WORKERS`."""
    import os

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


@dataclass(frozen=True)
class BlockSource:
    """How to read a long file in blocks of whole dyads.

    Attributes
    ----------
    path : the ``.parquet``, ``.csv`` or ``.tsv`` file
    dyad, session, role : column names
    roles : the two role values, reference first (default: those of the first block,
        sorted)
    block_rows : rows read at a time
    sep, decimal, encoding : for text files
    missing : codes meaning missing in numeric columns
    """

    path: str
    dyad: str
    session: str | None
    role: str
    roles: tuple[str, str] | None = None
    block_rows: int = BLOCK_ROWS
    sep: str | None = None
    decimal: str | None = None
    encoding: str | None = None
    missing: tuple[float, ...] = ()

    @property
    def ids(self) -> list[str]:
        return [c for c in (self.dyad, self.session, self.role) if c is not None]

    def wanted(self, columns: Sequence[str]) -> list[str]:
        return list(dict.fromkeys([*self.ids, *columns]))

    def session_data(self, frame: pd.DataFrame, first_row: int,
                     roles: tuple[str, str] | None = None) -> SessionData:
        """A block's rows as validated session data (file row numbers kept)."""
        for c in frame.columns:
            if self.missing and c not in self.ids and pd.api.types.is_numeric_dtype(frame[c]):
                frame[c] = frame[c].mask(frame[c].isin(self.missing))
        return SessionData.from_long(frame, dyad=self.dyad, session=self.session,
                                     role=self.role, roles=roles or self.roles,
                                     first_row=first_row)

    def blocks(self, columns: Sequence[str]) -> Iterator[SessionData]:
        """The file's blocks as validated session data, read in turn."""
        roles = self.roles
        for frame, start in dyad_blocks(self.path, self.dyad, self.wanted(columns),
                                        self.block_rows, self.sep, self.decimal,
                                        self.encoding):
            data = self.session_data(frame, start, roles)
            roles = data.roles  # every block in the first block's order
            yield data


def check_out_of_core(spec: APIMSpec) -> None:
    """Refuse what the out-of-core fit cannot do (see the module docstring).

    Raises
    ------
    SpecError
        Naming the option and what to do instead.
    """
    why = None
    cov, dec = spec.covariance, spec.decomposition
    if cov.therapist_level:
        why = "a therapist level (its likelihood couples the dyads of a therapist)"
    elif dec.center == "therapist":
        why = "center='therapist' (therapist means run over dyads in different blocks)"
    elif cov.random == "none":
        why = "random='none' (fit a model without random effects in memory)"
    elif spec.moderators:
        why = ("moderators (their levels and reference level are properties of the whole "
               "file)")
    if why is not None:
        raise SpecError(f"the out-of-core fit does not take {why}; fit in memory (without "
                        "--out-of-core), or drop the option")


def _cut(model: MixedModel, rows: int) -> MixedModel:
    """The first whole dyads of ``model`` up to about ``rows`` rows."""
    if len(model.y) <= rows:
        return model
    dyad = np.asarray(model.dyad)
    edges = np.flatnonzero(dyad[1:] != dyad[:-1]) + 1  # where a new dyad starts
    later = edges[edges >= rows]
    if not len(later):
        return model
    keep = slice(0, int(later[0]))
    return replace(model, y=model.y[keep], X=model.X[keep], dyad=model.dyad[keep],
                   role=model.role[keep], session=model.session[keep],
                   Z=None if model.Z is None else model.Z[keep])


def _start_values(models: Sequence[MixedModel], control: FitControl | None
                  ) -> np.ndarray | None:
    """Start values from an in-memory fit of the first dyads (the first blocks' models,
    up to :data:`START_ROWS` rows and whole dyads), or None when that fit fails (e.g. a
    between part constant among those dyads): the statistics' own start values then."""
    first = models[0]
    stacked: dict[str, Any] = {name: np.concatenate([np.asarray(getattr(m, name))
                                                     for m in models])
                               for name in ("y", "X", "dyad", "role", "session", "Z")}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a boundary in the subset is no finding
            subset = _cut(replace(first, **stacked), START_ROWS)
            return estimate_mixed(subset, "REML", control).theta
    except ApimError:
        return None


@dataclass(frozen=True, eq=False)
class _Summary:
    """What pass 1 takes from a block."""

    centre: dict[str, np.ndarray]
    informative: dict[str, np.ndarray]
    ids: np.ndarray
    first_row: int
    n_rows: int
    cross_sectional: bool
    roles: tuple[str, str]


@dataclass(frozen=True, eq=False)
class _Part:
    """What pass 2 takes from a block."""

    statistics: DyadStatistics | DyadStore
    dropped: dict[str, np.ndarray]
    terms: tuple[Term, ...]
    random_effects: dict[str, str]
    start_model: MixedModel | None
    n_rows: int


def _summary(data: SessionData, spec: APIMSpec, first_row: int) -> _Summary:
    resolved = resolve_spec(data, spec)
    return _Summary(centre_sums(data, resolved), informative_sums(data, spec.predictors),
                    pd.unique(data.frame["dyad"].to_numpy()), first_row, len(data.frame),
                    is_cross_sectional(data), data.roles)


def _part(data: SessionData, spec: APIMSpec, centres: pd.DataFrame, keep_model: bool
          ) -> _Part:
    design = build_design(data, spec, centres)
    dropped = {e.reason: np.array(e.rows, np.int64) for e in design.dropped}
    return _Part(_statistics(design.model, spec), dropped, design.terms,
                 dict(design.random_effects),
                 _cut(design.model, START_ROWS) if keep_model else None, len(data.frame))


def _statistics(model: MixedModel, spec: APIMSpec) -> DyadStatistics | DyadStore:
    """A block's statistics: summed over its dyads (random intercepts), or the per-dyad
    store of the stencil moments' random-effect rows (random slopes, whose blocks differ
    from dyad to dyad: :mod:`apim.engine.mixed.dyad_store`)."""
    if spec.covariance.random == "slopes":
        return DyadStore.of(model)
    return DyadStatistics.of(model)


@one_blas_thread
def _part_of_partition(source: BlockSource, part: Partition, spec: APIMSpec,
                       columns: Sequence[str], centres: pd.DataFrame, keep_model: bool
                       ) -> _Part:
    """Pass 2 on a worker: one partition of a Parquet file."""
    frame, first_row = partition_frame(part, source.dyad, source.wanted(columns))
    return _part(source.session_data(frame, first_row), spec, centres, keep_model)


@one_blas_thread
def _pass_of_partition(source: BlockSource, part: Partition, spec: APIMSpec,
                       columns: Sequence[str], provisional: pd.DataFrame,
                       keep_model: bool
                       ) -> tuple[_Summary, _Part]:
    """The one pass on a worker: one partition of a Parquet file, its sums and its
    statistics with provisional centres (:func:`_centring_map`)."""
    frame, first_row = partition_frame(part, source.dyad, source.wanted(columns))
    return _block_pass(source, frame, spec, provisional, keep_model, first_row)


def _centres(summaries: Sequence[_Summary], spec: APIMSpec) -> pd.DataFrame:
    """The whole file's centres from the blocks' sums (and its predictor checks)."""
    roles = summaries[0].roles
    sums: dict[str, np.ndarray] = {}
    seen: dict[str, np.ndarray] = {}
    for s in summaries:
        for v, c in s.centre.items():
            sums[v] = sums[v] + c if v in sums else c
        for v, c in s.informative.items():
            seen[v] = merge_informative(seen[v], c) if v in seen else c
    check_informative(seen, roles, spec.decomposition.center == "person")
    return centre_frame(sums, spec, roles)


def _resolved(spec: APIMSpec, data: SessionData) -> APIMSpec:
    """``spec`` with the defaults resolved as for the first block's data."""
    if is_cross_sectional(data):
        raise SpecError("the data are cross-sectional (one row per member): they have no "
                        "within-person part; fit them in memory")
    resolved = resolve_spec(data, spec)
    check_out_of_core(resolved)
    return resolved


def _merged(total: DyadStatistics | DyadStore, other: DyadStatistics | DyadStore
            ) -> DyadStatistics | DyadStore:
    if isinstance(total, DyadStore) and isinstance(other, DyadStore):
        return total.merge(other)
    if isinstance(total, DyadStatistics) and isinstance(other, DyadStatistics):
        return total.merge(other)
    raise SpecError("the blocks were built with different random parts; build every "
                    "block with the same spec")


def _combine(parts: Sequence[_Part]
             ) -> tuple[DyadStatistics | DyadStore, dict[str, np.ndarray], int]:
    """The summed statistics (or the per-dyad store, in block order), the rows not used
    by reason, the rows read."""
    names = tuple(t.name for t in parts[0].terms)
    total = parts[0].statistics
    dropped: dict[str, list[np.ndarray]] = {}
    for k, part in enumerate(parts):
        if tuple(t.name for t in part.terms) != names:
            raise SpecError("a block of the file gives other terms than the first one; "
                            "fit in memory")
        if k:
            total = _merged(total, part.statistics)
        for why, rows in part.dropped.items():
            dropped.setdefault(why, []).append(rows)
    return (total, {why: np.sort(np.concatenate(r)) for why, r in dropped.items()},
            sum(p.n_rows for p in parts))


@one_blas_thread
def fit_out_of_core(path: str, spec: APIMSpec, *, dyad: str, role: str,
                    session: str | None = None, roles: Sequence[str] | None = None,
                    block_rows: int = BLOCK_ROWS, control: FitControl | None = None,
                    sep: str | None = None, decimal: str | None = None,
                    encoding: str | None = None, missing: Sequence[float] = (),
                    scheduler: str | None = None, workers: int | None = None
                    ) -> OutOfCoreResult:
    """Fit ``spec`` to the long file ``path`` read in blocks of whole dyads (see the
    module docstring), here or on the workers of a Dask cluster.

    Parameters
    ----------
    path : str
        A ``.parquet``, ``.csv`` or ``.tsv`` file whose rows of a dyad are together (a
        Parquet file with a Dask ``scheduler``: each worker reads row groups of it, so
        every worker must see the file at ``path``).
    spec : APIMSpec
    dyad, role, session : str
        Column names (as :meth:`SessionData.from_long`).
    roles : pair of str, optional
        The role values, reference first.
    block_rows : int
        Rows read at a time (with a scheduler: rows per partition, whole row groups).
    control : FitControl, optional
    sep, decimal, encoding, missing : optional
        How to read a text file; missing-value codes.
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://host:8786``): the blocks' passes run on its
        workers, which send back only the blocks' sums and statistics; the fit runs here.
    workers : int or None
        Processes that work on the blocks while this one reads the file (1: this process
        alone; None: one per core, at most :data:`MAX_WORKERS`). Each holds a block
        at a time; the result does not depend on their number.

    Returns
    -------
    OutOfCoreResult

    Raises
    ------
    SpecError
        For what the out-of-core fit cannot do (:func:`check_out_of_core`).
    DataError
        For bad data in a block (named by file row), or a dyad whose rows are not
        together in the file.
    """
    check_out_of_core(spec)
    source = BlockSource(str(path), dyad, session, role,
                         None if roles is None else (str(roles[0]), str(roles[1])),
                         block_rows, sep, decimal, encoding, tuple(float(m) for m in missing))
    columns = [spec.outcome, *spec.predictors, *spec.covariates]
    if scheduler is not None:
        if workers is not None:
            raise SpecError("workers= does not apply with a scheduler: the cluster's "
                            "workers do the work; leave workers unset")
        return _fit_on_cluster(source, spec, columns, control, scheduler)
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise SpecError(f"workers={workers} must be a positive number of processes")
    # one pass: validation, the sums behind the centres, and the statistics of each
    # block built with provisional centres (the first block's), mapped to the whole
    # file's at the end
    summaries: list[_Summary] = []
    parts: list[_Part] = []
    head: list[tuple[pd.DataFrame, int]] = []  # the first rows, to find the map
    models: list[MixedModel] = []  # the first blocks' models, for start values
    resolved: APIMSpec | None = None
    provisional = pd.DataFrame()
    with _Runner(workers) as runner:
        for k, (frame, first_row) in enumerate(dyad_blocks(
                source.path, source.dyad, source.wanted(columns), source.block_rows,
                source.sep, source.decimal, source.encoding)):
            keep = k == 0 or sum(len(f) for f, _ in head) < START_ROWS
            if keep:
                head.append((frame, first_row))
            if resolved is None:  # the first block, here: the roles and the resolved spec
                data = source.session_data(frame, first_row)
                source = replace(source, roles=data.roles)
                resolved = _resolved(spec, data)
                provisional = provisional_centres(data, resolved)
                if runner.pool is None:  # validated already: not again
                    runner.done(_block_pass(source, data, resolved, provisional, keep))
                    continue
                del data
            runner.submit(_block_pass, source, frame, resolved, provisional, keep,
                          first_row)
            del frame
            for summary, part in runner.ready():
                _add(source.path, summaries, parts, summary, part)
        for summary, part in runner.ready(wait=True):
            _add(source.path, summaries, parts, summary, part)
    assert resolved is not None  # dyad_blocks yields at least one block
    models = [p.start_model for p in parts if p.start_model is not None]
    parts = [replace(p, start_model=None) for p in parts]
    centres = _centres(summaries, resolved)
    mapping = _centring_map(source, head, resolved, provisional, centres)
    del head
    if mapping is not None:
        _mapped(parts, mapping)
        return _finish(source, resolved, parts, models, control)
    # a design not linear in the centres: a second pass with the whole file's centres
    parts, models = [], []
    for data in source.blocks(columns):
        part = _part(data, resolved, centres, sum(len(m.y) for m in models) < START_ROWS)
        if part.start_model is not None:
            models.append(part.start_model)
        parts.append(replace(part, start_model=None))
    return _finish(source, resolved, parts, models, control)


@one_blas_thread
def _block_pass(source: BlockSource, block: pd.DataFrame | SessionData, spec: APIMSpec,
                provisional: pd.DataFrame, keep_model: bool, first_row: int = 1
                ) -> tuple[_Summary, _Part]:
    """The one pass over a block (its rows, or its validated data): its sums and its
    statistics with the provisional centres (:func:`_centring_map`)."""
    data = block if isinstance(block, SessionData) else source.session_data(block,
                                                                             first_row)
    start = int(data.frame["row"].iloc[0])
    return _summary(data, spec, start), _part(data, spec, provisional, keep_model)


class _Runner:
    """Runs the blocks' passes in ``workers`` processes (1: here), at most two blocks
    waiting per worker, and gives their results in the order of the blocks."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool: Any = None
        self.pending: deque[Any] = deque()

    def __enter__(self) -> _Runner:
        if self.workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # fork where there is one, before anything is read (so before the threads of
            # the file readers exist): no new interpreter, no re-import of a script
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            self.pool = ProcessPoolExecutor(self.workers, mp_context=context)
            for started in [self.pool.submit(int) for _ in range(self.workers)]:
                started.result()  # every worker running now
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def done(self, result: Any) -> None:
        """A result computed here, in its place among the blocks."""
        self.pending.append(result)

    def submit(self, function: Any, *args: Any) -> None:
        if self.pool is None:
            self.pending.append(function(*args))
            return
        self.pending.append(self.pool.submit(_portable_errors, function, *args))

    def ready(self, wait: bool = False) -> Iterator[Any]:
        """The results at the front that are done (all of them with ``wait``; and
        while more than two blocks per worker are waiting, which bounds the blocks held
        in memory)."""
        while self.pending:
            first = self.pending[0]
            busy = wait or len(self.pending) > 2 * self.workers
            if hasattr(first, "done") and not (busy or first.done()):
                return
            self.pending.popleft()
            yield _result(first)


def _result(item: Any) -> Any:
    if not hasattr(item, "result"):
        return item
    from concurrent.futures.process import BrokenProcessPool

    try:
        out = item.result()
    except BrokenProcessPool:
        raise TooLargeError("a worker process working on a block of the file ended "
                            "abruptly (most often: out of memory); use fewer workers "
                            "(--workers 1) or smaller blocks (--out-of-core ROWS)") from None
    if isinstance(out, ApimError):
        raise out
    return out


def _portable_errors(function: Any, *args: Any) -> Any:
    """``function(*args)`` in a worker process, an :class:`ApimError` returned as one of
    the root classes with the same message (the subclasses' arguments do not pickle)."""
    try:
        return function(*args)
    except ApimError as error:
        root = next(c for c in (DataError, SpecError, ApimError) if isinstance(error, c))
        return root(str(error))


def _centring_map(source: BlockSource, head: Sequence[tuple[pd.DataFrame, int]],
                  spec: APIMSpec, provisional: pd.DataFrame, centres: pd.DataFrame
                  ) -> tuple[np.ndarray, np.ndarray | None] | None:
    """The ``A`` with ``X(centres) = X(provisional) A``: the fixed-effect columns centred
    on the whole file's centres from those built with the provisional ones, found on the
    first dyads of the file (``head``: the first blocks' rows and first row numbers);
    and the ``B`` with ``Z(centres) = Z(provisional) B`` (None when ``Z`` is the same).

    Centring subtracts a constant per role from a between part, which the role's
    intercept column absorbs (and a product of two centred parts expands into the
    products, the parts and the intercept), so the columns are a linear map of the
    provisional ones; ``A`` is solved by least squares on the first dyads and used only
    when it reproduces their columns to round-off and they have full column rank (else
    None: the caller reads the file again with the centres). ``Z``: random intercepts
    are role indicators, and a random slope's column is a time-varying part (no between
    part has a random slope): with person-mean centring the within part, which no
    centre moves; with grand-mean centring (``center="grand"``) the part minus the
    role's centre, which the role's random intercept absorbs (``B``, found and checked
    as ``A`` is).
    """
    data = _head_data(source, head)
    built = build_design(data, spec, provisional).model
    wanted = build_design(data, spec, centres).model
    A = solved(built.X, wanted.X)
    if A is None or built.Z is None or wanted.Z is None:
        return None
    z_built, z_wanted = np.asarray(built.Z, float), np.asarray(wanted.Z, float)
    if z_built.shape == z_wanted.shape and np.array_equal(z_built, z_wanted):
        return A, None
    B = solved(z_built, z_wanted)
    return None if B is None else (A, B)


def _head_data(source: BlockSource, head: Sequence[tuple[pd.DataFrame, int]]
               ) -> SessionData:
    """The first whole dyads of about :data:`START_ROWS` rows of the first blocks
    (``head``: their rows and first row numbers), as session data."""
    frames = [f for f, _ in head]
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    ids = frame[source.dyad].to_numpy()
    edges = np.flatnonzero(ids[1:] != ids[:-1]) + 1  # where a new dyad starts
    later = edges[edges >= START_ROWS]
    if len(later):  # the first whole dyads of about START_ROWS rows
        frame = frame.iloc[:int(later[0])]
    return source.session_data(frame, head[0][1])


def _add(path: str, summaries: list[_Summary], parts: list[_Part], summary: _Summary,
         part: _Part) -> None:
    """Keep a block's results; with the first, refuse a per-dyad store that the
    machine could not hold (:func:`check_store`)."""
    summaries.append(summary)
    parts.append(part)
    if len(parts) == 1:
        check_store(path, part.statistics, part.n_rows)


def check_store(path: str, statistics: DyadStatistics | DyadStore, rows_read: int) -> None:
    """Refuse (:class:`~apim.errors.TooLargeError`) a per-dyad store (random slopes)
    larger than the memory available (:func:`apim.limits.check_memory`): the bytes a row
    of the first block (``rows_read`` rows, giving ``statistics``) took, times the rows
    of the file (Parquet metadata, or a text file's size: :func:`apim.limits.estimated_rows`),
    twice (the Hessian's exact random-effect block takes all the dyads' products at
    once), plus an evaluation's temporaries (:data:`~apim.engine.mixed.dyad_store.PIECE_DYADS`
    dyads at a time). Summed statistics (random intercepts) do not grow with the file.
    """
    rows = estimated_rows(path)
    if not isinstance(statistics, DyadStore) or rows is None or not rows_read \
            or not statistics.n_dyads:
        return
    per_dyad = statistics.nbytes / statistics.n_dyads
    dyads = rows * statistics.n_dyads / rows_read
    need = per_dyad * (2 * dyads + 16 * PIECE_DYADS)
    check_memory(need, f"the out-of-core fit's per-dyad store of the random slopes "
                 f"({human_bytes(per_dyad)} a dyad, about {dyads:,.0f} dyads in {path})",
                 "fit random intercepts out of core (random='intercepts', --random "
                 "intercepts), or on a machine with more memory")


def _mapped(parts: list[_Part], mapping: tuple[np.ndarray, np.ndarray | None]) -> None:
    """Map every block's statistics to the whole file's centres (:func:`_centring_map`),
    in place, one block at a time (a per-dyad store is not held twice)."""
    A, B = mapping
    for k, part in enumerate(parts):
        stats = part.statistics
        mapped: DyadStatistics | DyadStore
        if isinstance(stats, DyadStore):
            mapped = stats.transformed(A, B)
        elif B is None:  # random intercepts: Z, the role indicators, never moves
            mapped = stats.transformed(A)
        else:
            raise SpecError("the centring moved the random intercepts' columns, which "
                            "summed statistics cannot follow; fit in memory")
        parts[k] = replace(part, statistics=mapped)
        del stats, mapped


def _finish(source: BlockSource, resolved: APIMSpec, parts: Sequence[_Part],
            models: Sequence[MixedModel], control: FitControl | None) -> OutOfCoreResult:
    total, dropped, n_rows = _combine(parts)
    start = _start_values(models, control)
    engine = fit_statistics(total, models[0], resolved.method, control, start)
    roles = source.roles
    assert roles is not None
    return OutOfCoreResult(spec=resolved, roles=roles, terms=parts[0].terms, engine=engine,
                           dropped_rows=dropped, random_effects=parts[0].random_effects,
                           source=source.path, n_blocks=len(parts), n_rows_read=n_rows)


def _fit_on_cluster(source: BlockSource, spec: APIMSpec, columns: list[str],
                    control: FitControl | None, scheduler: str) -> OutOfCoreResult:
    """The pass on the workers of the Dask cluster at ``scheduler``, one task per
    partition of the Parquet file; only sums and statistics travel back."""
    from apim.parallel import dask_client  # dask: only with a scheduler

    parts = parquet_partitions(source.path, source.block_rows)
    with dask_client(scheduler) as client:
        frame, first_row = partition_frame(parts[0], source.dyad, source.wanted(columns))
        data = source.session_data(frame, first_row)
        source = replace(source, roles=data.roles)  # as the first partition has them
        resolved = _resolved(spec, data)
        provisional = provisional_centres(data, resolved)
        if resolved.covariance.random == "slopes":  # the store of the first dyads
            head = _head_data(source, [(frame, first_row)])
            check_store(source.path, _statistics(build_design(head, resolved, provisional)
                                                 .model, resolved), len(head.frame))
            del head
        del data
        # start values from the first dyads, as the local fit takes them: the models of
        # the partitions within the first START_ROWS rows (each has about block_rows)
        keep = [k == 0 or k * source.block_rows < START_ROWS for k in range(len(parts))]
        futures = client.map(_pass_of_partition, [source] * len(parts), parts,
                             [resolved] * len(parts), [columns] * len(parts),
                             [provisional] * len(parts),
                             keep, pure=False)
        passes = client.gather(futures)
        summaries = [s for s, _ in passes]
        check_together([s.ids for s in summaries], [s.first_row for s in summaries],
                       source.dyad, source.path)
        centres = _centres(summaries, resolved)
        mapping = _centring_map(source, [(frame, first_row)], resolved, provisional,
                                centres)
        del frame
        if mapping is not None:
            results = [p for _, p in passes]
            del passes
            _mapped(results, mapping)
        else:  # a second pass with the whole file's centres
            futures = client.map(_part_of_partition, [source] * len(parts), parts,
                                 [resolved] * len(parts), [columns] * len(parts),
                                 [centres] * len(parts), keep,
                                 pure=False)
            results = client.gather(futures)
    models = [r.start_model for r in results if r.start_model is not None]
    return _finish(source, resolved, results, models, control)
