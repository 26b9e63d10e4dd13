"""The output folder of a plan run: what ``apim batch`` may write where.

``batch`` writes only into an ``--out`` folder that is new, empty, or one it made itself:
its ``manifest.json`` says so (``"apim": "batch"``) and records the SHA-256 of every table
it wrote, so a file the user put there, or changed since, is never replaced without
``force``. Even with ``force``, no output may be one of the plan's inputs (the plan file
and its data files, also through another spelling of the path or a link).

Examples
--------
>>> import pathlib, tempfile
>>> from apim.plan.spec import Plan
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "d.csv").write_text("dyad,role\\n")
>>> plan = Plan.from_text('[data.d]\\nfile = "d.csv"\\ndyad = "dyad"\\nrole = "role"\\n'
...                       '[[analysis]]\\noutcome = "y"\\npredictors = ["x"]', base=folder)
>>> check_out(plan, folder / "new")
>>> check_out(plan, folder)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
apim.errors.OutputExistsError: --out ...: the folder is not empty and apim batch did not make it ...
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from apim.errors import OutputExistsError, SpecError
from apim.files import LOCK_NAME, same_file
from apim.plan.spec import Plan

__all__ = ["OUTPUTS", "check_out", "plan_inputs", "mark", "starting_manifest", "is_ours"]

OUTPUTS = ("effects.csv", "effects.parquet", "models.csv", "index.html", "manifest.json")
MARK = "batch"


def plan_inputs(plan: Plan) -> list[tuple[str, str]]:
    """The files a run reads: ``(what, path)`` for the plan file and each data file."""
    inputs = [("the plan file", plan.path)] if plan.path else []
    return inputs + [(f"the data file of [data.{s.name}]", s.file) for s in plan.data.values()]


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_ours(manifest: Any) -> bool:
    """Whether a parsed ``manifest.json`` is one a plan run wrote (this or an earlier
    version of apim)."""
    if not isinstance(manifest, dict):
        return False
    return manifest.get("apim") == MARK or {"plan", "outputs", "counts", "versions"} <= set(
        manifest)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def mark(out: Path, names: list[str]) -> dict[str, str]:
    """SHA-256 of the named files in ``out`` that exist (the manifest's ``files``)."""
    return {n: _sha256(out / n) for n in names if (out / n).is_file()}


def starting_manifest(plan: Plan) -> str:
    """The manifest written when a run starts in a new folder (marks the folder as a plan
    run's before any result is stored, so a killed run can be resumed)."""
    return json.dumps({"apim": MARK, "plan": plan.name, "plan_file": plan.path,
                       "status": "running", "files": {}}, indent=2)


def _refuse_inputs(plan: Plan, out: Path) -> None:
    """No output may be an input (``force`` or not)."""
    ids = {f"{a.id}.json" for a in plan.analyses} | {f"{a.id}.html" for a in plan.analyses}
    folder = os.path.normcase(out.resolve())
    analyses = os.path.normcase((out / "analyses").resolve())
    for what, source in plan_inputs(plan):
        real = Path(source).resolve()
        parent = os.path.normcase(real.parent)
        hit = None
        if parent == folder and real.name in (*OUTPUTS, LOCK_NAME):
            hit = real.name
        elif parent == analyses and real.name in ids:
            hit = f"analyses/{real.name}"
        else:
            hit = next((n for n in OUTPUTS if same_file(out / n, source)), None)
        if hit is not None:
            raise SpecError(f"--out {out}: batch would write {hit} over {what} ({source}); "
                            "apim never writes over its input: give another --out folder")


def check_out(plan: Plan, out: str | os.PathLike[str], force: bool = False) -> None:
    """Check that a run of ``plan`` into ``out`` destroys nothing.

    Raises
    ------
    SpecError
        ``out`` is a file, or an output would replace one of the plan's inputs.
    OutputExistsError
        ``out`` holds files apim batch did not write (or that changed since), and
        ``force`` is false.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SpecError(f"--out {out}: is a file; give a folder for the results")
    _refuse_inputs(plan, out)
    if not out.exists():
        return
    if (out / "analyses").exists() and not (out / "analyses").is_dir():
        raise SpecError(f"--out {out}: analyses in it is a file; give another --out folder")
    if force or not [p for p in out.iterdir() if p.name != LOCK_NAME]:
        return
    manifest = _read(out / "manifest.json")
    if not is_ours(manifest):
        raise OutputExistsError(
            f"--out {out}: the folder is not empty and apim batch did not make it (it has "
            "no manifest.json of a plan run); give a new or empty folder, or --force to "
            "write into it (the plan's inputs are never replaced)")
    marked = manifest.get("files")
    for name in OUTPUTS[:-1]:
        path = out / name
        if not path.exists():
            continue
        if isinstance(marked, dict):
            changed = name not in marked or not path.is_file() or _sha256(path) != marked[name]
        else:  # a manifest of an earlier apim: its standard outputs are its own
            changed = not path.is_file()
        if changed:
            raise OutputExistsError(
                f"--out {out}: {name} was not written by apim batch or has changed since "
                "(its SHA-256 differs from the manifest's); move it away, or give --force "
                "to replace it")
