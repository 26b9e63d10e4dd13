"""Run a plan: check, fit in parallel, store each result under its key, collect the tables.

Every analysis is fitted by a worker that writes ``analyses/ID.json`` itself, through a
temporary file and a rename, as soon as it is done: a run killed at any moment leaves
only complete result files, and the next run fits only what is missing. A result is
reused when its key (hash of the spec, the subset, the df method, the data file's bytes and
column mapping, and the apim version) matches; ``force`` refits everything. The tables
(``effects.csv``/``.parquet``, ``models.csv``), ``manifest.json`` and ``index.html`` are
then rebuilt from the stored results, one row set per analysis of the plan.

Examples
--------
>>> import tempfile
>>> from apim.datasets import alliance_path
>>> text = f'''
... [data.alliance]
... file = "{alliance_path()}"
... dyad = "dyad"
... session = "session"
... role = "role"
... roles = ["patient", "therapist"]
... therapist = "therapist"
... [[analysis]]
... id = "main"
... outcome = "outcome"
... predictors = ["alliance"]
... residual = ["un", "diagonal"]
... '''
>>> plan = Plan.from_text(text)
>>> out = run_plan(plan, tempfile.mkdtemp(), progress=False)
>>> list(out.models["status"])
['ok', 'ok']
>>> out.effects.columns[0]
'analysis'
>>> run_plan(plan, out.out, progress=False).manifest["counts"]["skipped"]
2
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import html
import json
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from apim.data.session import SessionData
from apim.errors import SpecError
from apim.files import FolderLock, remove_temporary, write_atomic, write_csv
from apim.model.design import build_design
from apim.model.dynamic_spec import DynamicAPIMSpec
from apim.model.fitted import FittedModel
from apim.model.fitted import jsonable as _jsonable
from apim.model.generalized_spec import GeneralizedAPIMSpec
from apim.model.out_of_core import OutOfCoreResult, fit_out_of_core
from apim.model.registry import fit
from apim.model.spec import APIMSpec, LatentAPIMSpec
from apim.parallel import run_jobs
from apim.plan.kinds import OutOfCore
from apim.plan.output import OUTPUTS, check_out, mark, starting_manifest
from apim.plan.spec import COLUMNS, Analysis, DataSource, Plan
from apim.specbase import Spec

__all__ = ["run_plan", "check_plan", "PlanResult", "default_out", "fit_analysis"]

_DATA_CACHE: dict[str, SessionData] = {}
MODEL_COLUMNS = ["status", "error_type", "error", "n_obs", "n_dyads", "loglik",
                 "aic", "bic", "n_params", "converged", "boundary", "warnings", "seconds",
                 "key"]


def default_out(plan: Plan) -> Path:
    """``PLAN.results/`` beside the plan file (or in the working directory)."""
    base = Path(plan.path).parent if plan.path else Path(".")
    return base / f"{Path(plan.path).stem if plan.path else plan.name}.results"


def _load(source: DataSource, digest: str) -> SessionData:
    data = _DATA_CACHE.get(digest)
    if data is None:
        data = source.load()
        _DATA_CACHE.clear()  # one data set at a time per worker keeps memory flat
        _DATA_CACHE[digest] = data
    return data


@dataclass(frozen=True)
class _Job:
    analysis: Analysis
    key: str
    digest: str
    out: str
    report: bool
    run: str = ""


def _fit_one(job: _Job) -> str:
    """Fit one analysis and store its record (in the worker); returns its status."""
    a = job.analysis
    clock = time.perf_counter()
    record: dict[str, Any] = {"id": a.id, "key": job.key, "settings": a.row()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = fit_analysis(a, lambda: _load(a.data, job.digest))
            record.update(status="ok", n_params=int(result.statistics.n_params),
                          result=result.to_dict())
            if job.report:
                from apim.report.html import fit_report

                caught_now = [str(w.message) for w in caught]
                title = f"Analysis {a.id}"
                text = (_tables_report(result, caught_now, title)
                        if isinstance(result, OutOfCoreResult)
                        else fit_report(result, warnings=caught_now, title=title))
                write_atomic(Path(job.out) / "analyses" / f"{a.id}.html", text,
                             run=job.run or None)
        except Exception as error:  # noqa: BLE001 - recorded, the plan goes on
            record.update(status="error", error_type=type(error).__name__,
                          error=" ".join(str(error).split()))
    record["warnings"] = list(dict.fromkeys(str(w.message) for w in caught))
    record["seconds"] = time.perf_counter() - clock
    write_atomic(Path(job.out) / "analyses" / f"{a.id}.json",
                 json.dumps(record, default=_jsonable, allow_nan=False), run=job.run or None)
    return str(record["status"])


def fit_analysis(a: Analysis, load: Callable[[], SessionData]
                 ) -> FittedModel | OutOfCoreResult:
    """Fit one analysis: its spec by :func:`apim.fit` on the rows of its subset (``load``
    gives the data set), or, for an observed-mean APIM fitted out of core,
    :func:`~apim.model.out_of_core.fit_out_of_core` of its file (never read whole)."""
    spec, out_of_core = a.build()
    if out_of_core is None:
        return fit(a.select(load()), spec, **a.fit_options(spec))
    source = a.data
    assert isinstance(spec, APIMSpec) and source.role is not None  # checked by a.build()
    roles = None if source.roles is None else (source.roles[0], source.roles[1])
    return fit_out_of_core(source.file, spec, dyad=source.dyad, role=source.role,
                           session=source.session, roles=roles,
                           block_rows=out_of_core.block_rows,
                           scheduler=out_of_core.scheduler)


def _tables_report(result: OutOfCoreResult, caught: list[str], title: str) -> str:
    """The HTML report of a fit out of core, which keeps no rows: its model, tables and
    warnings (no data report or figures, which need the rows; for the others
    :func:`apim.report.html.fit_report`)."""
    from apim.report.html import page, result_html

    notes = list(caught)
    if not result.statistics.converged:
        notes.append(f"the fit did not converge: {result.statistics.message}")
    notes += [f"boundary estimate: {b}" for b in result.boundary]
    body = [f"<h1>{html.escape(title)}</h1>",
            "<h2>Model</h2>", f"<p>{html.escape(result.model_line())}</p>",
            "<p>Fitted from the file read in blocks: the rows are not kept, so this report "
            "has no data report, figures or list of rows not used (their counts are in "
            "the JSON).</p>",
            "<h2>Tables</h2>",
            result_html(result),  # type: ignore[arg-type]  # tables need no rows
            "<h2>Warnings</h2>",
            *([f'<p class="warning">{html.escape(w)}</p>' for w in notes] or
              ["<p>None.</p>"])]
    return page(title, "\n".join(body))


def _key(a: Analysis, digest: str, version: str) -> str:
    """The analysis's key; for invalid settings (the fit will record the error) a hash of
    the settings instead."""
    try:
        return a.key(digest, version)
    except SpecError:
        text = json.dumps({"settings": a.row(), "data": digest, "version": version},
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def _own_scheduler(a: Analysis) -> bool:
    """Whether the analysis is fitted out of core on a Dask cluster of its own."""
    try:
        out_of_core = a.out_of_core
    except SpecError:
        return False
    return out_of_core is not None and out_of_core.scheduler is not None


def check_plan(plan: Plan) -> pd.DataFrame:
    """Check every analysis without fitting: data readable, subset valid, columns present,
    options valid and the data prepared as the kind's fit prepares them (the design, the
    latent model's values, the dynamic model's session grid; for a fit out of core, the
    file's first block). One row per analysis, ``check`` is ``ok`` or the error (type and
    message)."""
    rows = []
    loaded: dict[str, SessionData | Exception] = {}
    for a in plan.analyses:
        row = a.row()
        try:
            spec, out_of_core = a.build()
            if out_of_core is not None:
                _check_blocks(a, spec, out_of_core)
            else:
                if a.data.name not in loaded:  # read once, and only for fits in memory
                    try:
                        loaded[a.data.name] = a.data.load()
                    except Exception as error:  # noqa: BLE001 - reported per analysis
                        loaded[a.data.name] = error
                data = loaded[a.data.name]
                if isinstance(data, Exception):
                    raise data
                _prepare(a.select(data), spec)
            row["check"] = "ok"
        except Exception as error:  # noqa: BLE001 - every problem is listed
            row["check"] = f"{type(error).__name__}: {' '.join(str(error).split())}"
        rows.append(row)
    return _tidy_types(pd.DataFrame(rows).dropna(axis=1, how="all"), list(COLUMNS))


def _prepare(data: SessionData, spec: Spec) -> None:
    """Prepare ``data`` as the fit of ``spec`` would, without fitting (raises what the fit
    would raise for the data)."""
    from apim.model.dynamic import session_grid
    from apim.model.generalized_checks import outcome_categories
    from apim.model.latent import latent_values

    if isinstance(spec, GeneralizedAPIMSpec):
        outcome_categories(data, spec.outcome, spec.family,
                           per_role=spec.family == "ordinal" and spec.threshold_sets == "role")
        build_design(data, spec.design_spec())
    elif isinstance(spec, LatentAPIMSpec):
        latent_values(data, spec)
    elif isinstance(spec, DynamicAPIMSpec):
        session_grid(data, spec)
    elif isinstance(spec, APIMSpec):
        build_design(data, spec)


def _check_blocks(a: Analysis, spec: Spec, out_of_core: OutOfCore) -> None:
    """For a fit out of core: the file readable in blocks (a Parquet file with a
    scheduler), and the design built on its first block."""
    from apim.data.blocks import parquet_partitions
    from apim.model.out_of_core import BlockSource

    assert isinstance(spec, APIMSpec) and a.data.role is not None  # checked by a.build()
    roles = a.data.roles
    source = BlockSource(a.data.file, a.data.dyad, a.data.session, a.data.role,
                         None if roles is None else (roles[0], roles[1]),
                         out_of_core.block_rows)
    if out_of_core.scheduler is not None:
        parquet_partitions(a.data.file, out_of_core.block_rows)
    first = next(iter(source.blocks([spec.outcome, *spec.predictors, *spec.covariates])))
    build_design(first, spec)


def _read(path: Path) -> dict[str, Any] | None:
    """A stored analysis, or None when it is absent or corrupt (then it is refitted)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    result = record.get("result")
    if record.get("status") == "ok" and not (
            isinstance(result, dict) and all(k in result for k in _STORED)):
        return None
    return record


_STORED = ("n_obs", "n_dyads", "loglik", "aic", "bic", "converged", "boundary", "fixed")


def _tidy_types(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Settings columns with values of several types (e.g. lag 0 and None are fine; True
    and "un" are not) become text, so the table can be written to Parquet; whole numbers
    missing for some analyses (``nagq`` of the generalized APIM only) stay whole
    numbers."""
    for c in columns:
        if c in frame and frame[c].dtype == object:
            kinds = {type(v) for v in frame[c] if v is not None and v == v}
            if len(kinds) > 1:
                frame[c] = frame[c].map(lambda v: None if v is None else str(v))
        elif c in frame and frame[c].dtype.kind == "f":
            present = frame[c].dropna()
            if len(present) and bool((present == present.round()).all()):
                frame[c] = frame[c].astype("Int64")
    return frame


def _collect(plan: Plan, out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    effects, models = [], []
    for a in plan.analyses:
        record = _read(out / "analyses" / f"{a.id}.json") or {}
        settings = a.row()
        model = {**settings, **{c: record.get(c) for c in MODEL_COLUMNS}}
        result = record.get("result")
        if record.get("status") == "ok" and result:
            model.update({k: result[k] for k in ("n_obs", "n_dyads", "loglik", "aic", "bic",
                                                 "converged")})
            model["boundary"] = "; ".join(result["boundary"])
            effects += [{**settings, **row} for row in result["fixed"]]
        model["warnings"] = "; ".join(record.get("warnings") or [])
        models.append(model)
    keep = [c for c in ["analysis", *COLUMNS]
            if any(m.get(c) is not None for m in models)]
    model_frame = pd.DataFrame(models)[keep + MODEL_COLUMNS]
    effect_frame = pd.DataFrame(effects)
    if len(effect_frame):
        rest = [c for c in effect_frame.columns if c not in ["analysis", *COLUMNS]]
        effect_frame = effect_frame[keep + rest]
    return (_tidy_types(effect_frame, keep), _tidy_types(model_frame, keep))


@dataclass(frozen=True)
class PlanResult:
    """What a plan run left in ``out``: the effects and models tables and the manifest."""

    out: Path
    effects: pd.DataFrame = field(repr=False)
    models: pd.DataFrame = field(repr=False)
    manifest: dict[str, Any] = field(repr=False)

    def __repr__(self) -> str:
        c = self.manifest["counts"]
        return (f"<PlanResult {self.manifest['plan']!r}: {c['ok']} ok, {c['failed']} failed "
                f"({c['skipped']} reused from earlier runs), in {str(self.out)!r}>")

    def _repr_html_(self) -> str:
        return (f"<p>{html.escape(repr(self)[1:-1])}</p>"
                + self.models.drop(columns=["key"]).to_html(index=False, na_rep=""))


def _versions() -> dict[str, str]:
    import scipy

    from apim._version import __version__

    return {"apim": __version__, "python": platform.python_version(),
            "numpy": np.__version__, "scipy": scipy.__version__, "pandas": pd.__version__}


def run_plan(plan: Plan | str | Path, out: str | Path | None = None, *, force: bool = False,
             retry_failed: bool = False, n_jobs: int = 1, scheduler: str | None = None,
             progress: bool = True, reports: bool = False) -> PlanResult:
    """Fit every analysis of ``plan`` that has no stored result and collect the tables.

    The run writes only into a new or empty ``out``, or one an earlier plan run made (see
    :mod:`apim.plan.output`); it holds a lock on ``out`` while it runs (a second run into
    the same folder is refused) and removes only its own temporary files.

    Parameters
    ----------
    plan : Plan or path of a plan file
    out : path, optional
        Output directory (default :func:`default_out`).
    force : bool
        Refit everything, stored results or not, and write into an ``out`` apim did not
        make (never over the plan's inputs).
    retry_failed : bool
        Refit analyses whose stored result is a failure.
    n_jobs, scheduler, progress
        As for :func:`apim.parallel.run_jobs` (joblib workers or a Dask scheduler).
    reports : bool
        Also write ``analyses/ID.html`` (a report with figures) per analysis.

    Returns
    -------
    PlanResult

    Raises
    ------
    OutputExistsError
        ``out`` holds files apim did not write and ``force`` is false.
    FolderInUseError
        Another run is writing into ``out``.
    """
    if not isinstance(plan, Plan):
        plan = Plan.from_file(plan)
    out = Path(out) if out is not None else default_out(plan)
    check_out(plan, out, force)
    out.mkdir(parents=True, exist_ok=True)
    with FolderLock(out) as lock:
        try:
            check_out(plan, out, force)  # again, now that no other run can write here
            if not (out / "manifest.json").exists():
                write_atomic(out / "manifest.json", starting_manifest(plan), run=lock.run)
            (out / "analyses").mkdir(exist_ok=True)
            return _run(plan, out, lock.run, force=force, retry_failed=retry_failed,
                        n_jobs=n_jobs, scheduler=scheduler, progress=progress,
                        reports=reports)
        finally:
            remove_temporary(out, lock.run)
            remove_temporary(out / "analyses", lock.run)


def _run(plan: Plan, out: Path, run: str, *, force: bool, retry_failed: bool, n_jobs: int,
         scheduler: str | None, progress: bool, reports: bool) -> PlanResult:
    """:func:`run_plan` in a checked and locked folder; ``run`` tags temporary files."""
    from apim._version import __version__
    from apim.plan.index import write_index

    started = _dt.datetime.now(_dt.timezone.utc)
    clock = time.perf_counter()
    used = {a.data.name: a.data for a in plan.analyses}
    digests = {name: source.digest() for name, source in used.items()}
    jobs, status = [], {}
    for a in plan.analyses:
        key = _key(a, digests[a.data.name], __version__)
        stored = None if force else _read(out / "analyses" / f"{a.id}.json")
        if stored is not None and stored.get("key") == key and (
                stored.get("status") == "ok" or not retry_failed):
            status[a.id] = (key, "skipped")
            continue
        status[a.id] = (key, "fitted")
        jobs.append(_Job(a, key, digests[a.data.name], str(out), reports, run))
    # an analysis with its own scheduler is fitted here (its blocks are read on that
    # cluster's workers), never inside a worker of the plan's own jobs
    here = [j for j in jobs if _own_scheduler(j.analysis)]
    there = [j for j in jobs if not _own_scheduler(j.analysis)]
    jobs = there + here
    outcomes = run_jobs(_fit_one, there, n_jobs=n_jobs, scheduler=scheduler,
                        progress=progress, desc=f"plan {plan.name}")
    outcomes += run_jobs(_fit_one, here, progress=progress and bool(here),
                         desc=f"plan {plan.name} (on Dask clusters)")
    for job, outcome in zip(jobs, outcomes):
        if not outcome.ok:  # the worker itself failed (e.g. it could not be started)
            record: dict[str, Any] = {
                "id": job.analysis.id, "key": job.key, "settings": job.analysis.row(),
                "status": "error", "error_type": outcome.error_type, "error": outcome.error,
                "warnings": [], "seconds": outcome.seconds}
            write_atomic(out / "analyses" / f"{job.analysis.id}.json",
                         json.dumps(record, default=_jsonable), run=run)
    effects, models = _collect(plan, out)
    write_csv(effects, out / "effects.csv", run=run, what="effects.csv")
    write_csv(models, out / "models.csv", run=run, what="models.csv")
    parquet = "effects.parquet"
    try:
        import pyarrow  # noqa: F401

        buffer = effects.to_parquet(index=False)
        write_atomic(out / "effects.parquet", buffer, run=run)  # type: ignore[arg-type]
    except ImportError:
        parquet = "not written: pyarrow is not installed (pip install pyarrow)"
    finished = _dt.datetime.now(_dt.timezone.utc)
    by_id = models.set_index("analysis")
    manifest = {
        "apim": "batch", "status": "finished",
        "plan": plan.name, "plan_file": plan.path,
        "plan_sha256": (hashlib.sha256(Path(plan.path).read_bytes()).hexdigest()
                        if plan.path else None),
        "versions": _versions(), "platform": platform.platform(),
        "machine": platform.machine(), "seed": plan.seed,
        "data": {name: {"file": s.file, "sha256": s.file_hash(), "key": digests[name]}
                 for name, s in used.items()},
        "started": started.isoformat(), "finished": finished.isoformat(),
        "seconds": time.perf_counter() - clock, "n_jobs": n_jobs, "scheduler": scheduler,
        "outputs": {"effects": ["effects.csv", parquet], "models": "models.csv",
                    "analyses": "analyses/ID.json", "index": "index.html"},
        "counts": {"analyses": len(plan.analyses),
                   "ok": int((models["status"] == "ok").sum()),
                   "failed": int((models["status"] != "ok").sum()),
                   "fitted": sum(v[1] == "fitted" for v in status.values()),
                   "skipped": sum(v[1] == "skipped" for v in status.values())},
        "analyses": [{"id": a.id, "key": status[a.id][0], "run": status[a.id][1],
                      "status": by_id.at[a.id, "status"],
                      "seconds": _jsonable(by_id.at[a.id, "seconds"])}
                     for a in plan.analyses],
    }
    write_index(plan, out, models, effects, manifest, run=run)
    manifest["files"] = mark(out, list(OUTPUTS[:-1]))
    write_atomic(out / "manifest.json", json.dumps(manifest, indent=2, default=_jsonable),
                 run=run)
    return PlanResult(out=out, effects=effects, models=models, manifest=manifest)
