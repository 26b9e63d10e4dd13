"""Safe with researchers' files (issue 20, items 1-3): never overwrite, never inject,
bounded work.

Every refusal is checked the same way: exit code 2, exactly one ``apim: error:`` line on
stderr naming the problem, no traceback, and the SHA-256 of every file in the folder the
same before and after. Every HTML page is checked for raw markup; every CSV and XLSX cell
for a live formula.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import apim
from apim.cli import main
from apim.errors import FitError
from apim.files import FolderLock, neutralise, write_atomic

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ["--dyad", "dyad", "--session", "session", "--role", "role", "--roles",
           "patient,therapist", "--therapist", "therapist"]
MODEL = ["--outcome", "outcome", "--predictor", "alliance"]
SCRIPT = "<script>alert(1)</script>"
IMAGE = "<img src=x onerror=alert(2)>"
FORMULAS = ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx"]


# ------------------------------------------------------------------ helpers
def hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (links followed)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(capsys, argv, *words) -> str:
    """Run ``argv``; check exit 2 and one ``apim: error:`` line holding ``words``."""
    code = main(argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("apim: error:")]
    assert code == 2, err
    assert len(errors) == 1 and "Traceback" not in err, err
    assert err.splitlines()[-1] == errors[0], err
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def no_markup(text: str) -> None:
    """No raw hostile markup (escaped text is fine)."""
    assert SCRIPT not in text and IMAGE not in text
    assert "<script" not in text.lower()
    assert "<img src=x" not in text.lower()


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """20 dyads of the bundled data as a CSV file."""
    frame = apim.load_alliance().to_long()
    path = tmp_path_factory.mktemp("data") / "sessions.csv"
    frame[frame["dyad"].isin(sorted(frame["dyad"].unique())[:20])].to_csv(path, index=False)
    return path


def plan_text(data: str, *, name: str = "p", data_name: str = "d",
              analysis: str = 'outcome = "outcome"\npredictors = ["alliance"]') -> str:
    return (f'[plan]\nname = {json.dumps(name)}\n'
            f'[data.{json.dumps(data_name)}]\nfile = {json.dumps(data)}\ndyad = "dyad"\n'
            'session = "session"\nrole = "role"\nroles = ["patient", "therapist"]\n'
            f'therapist = "therapist"\n[[analysis]]\nid = "main"\n{analysis}\n')


def write_plan(folder: Path, data: Path | str, **kwargs) -> Path:
    path = folder / "plan.toml"
    path.write_text(plan_text(str(data), **kwargs), encoding="utf-8")
    return path


# ------------------------------------------------------------------ 1. never destroy: convert
@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".xlsx", ".parquet", ".dta"])
def test_convert_refuses_an_existing_output(suffix, small, tmp_path, capsys):
    target = tmp_path / f"mine{suffix}"
    target.write_bytes(b"the user's own file")
    before = hashes(tmp_path)
    refused(capsys, ["convert", str(small), str(target), *COLUMNS], "already exists",
            "--force")
    assert hashes(tmp_path) == before


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_convert_force_replaces_an_existing_output(suffix, small, tmp_path, capsys):
    target = tmp_path / f"mine{suffix}"
    target.write_bytes(b"old")
    assert main(["convert", str(small), str(target), *COLUMNS, "--force"]) == 0
    assert target.read_bytes() != b"old"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temp file left


@pytest.mark.parametrize("spelling", ["same", "dot", "dotdot", "symlink", "hardlink",
                                      "relative"])
@pytest.mark.parametrize("force", [False, True])
def test_convert_never_writes_onto_its_input(spelling, force, small, tmp_path, capsys,
                                             monkeypatch):
    data = tmp_path / "base.csv"
    data.write_bytes(small.read_bytes())
    (tmp_path / "sub").mkdir()
    out = {"same": str(data), "dot": str(tmp_path / "." / "base.csv"),
           "dotdot": str(tmp_path / "sub" / ".." / "base.csv"),
           "symlink": str(tmp_path / "link.csv"), "hardlink": str(tmp_path / "hard.csv"),
           "relative": "base.csv"}[spelling]
    if spelling == "symlink":
        os.symlink(data, out)
    if spelling == "hardlink":
        os.link(data, out)
    monkeypatch.chdir(tmp_path)
    before = hashes(tmp_path)
    refused(capsys, ["convert", str(data), out, *COLUMNS, *(["--force"] if force else [])],
            "same file as the input", "never writes over its input")
    assert hashes(tmp_path) == before


# ------------------------------------------------------------------ simulate, report, power
def test_simulate_refuses_an_existing_output(tmp_path, capsys):
    target = tmp_path / "sim.csv"
    target.write_text("precious\n")
    before = hashes(tmp_path)
    refused(capsys, ["simulate", str(target), "--dyads", "4", "--sessions", "2"],
            "already exists", "--force")
    assert hashes(tmp_path) == before


def test_simulate_refuses_a_link_to_an_existing_file(tmp_path, capsys):
    victim = tmp_path / "victim.csv"
    victim.write_text("precious\n")
    os.symlink(victim, tmp_path / "sim.csv")
    before = hashes(tmp_path)
    refused(capsys, ["simulate", str(tmp_path / "sim.csv"), "--dyads", "4"], "already exists")
    assert hashes(tmp_path) == before


def test_simulate_force_replaces_and_leaves_no_temp_file(tmp_path, capsys):
    target = tmp_path / "sim.csv"
    target.write_text("old\n")
    assert main(["simulate", str(target), "--dyads", "4", "--sessions", "2", "--force"]) == 0
    assert pd.read_csv(target)["dyad"].nunique() == 4
    assert [p.name for p in tmp_path.iterdir()] == ["sim.csv"]


def test_report_refuses_an_existing_output(small, tmp_path, capsys):
    target = tmp_path / "report.html"
    target.write_text("<p>my notes</p>")
    before = hashes(tmp_path)
    refused(capsys, ["report", str(small), *COLUMNS, *MODEL, "--out", str(target)],
            "already exists")
    assert hashes(tmp_path) == before


def test_report_never_writes_onto_its_data(small, tmp_path, capsys):
    data = tmp_path / "data.csv"
    data.write_bytes(small.read_bytes())
    before = hashes(tmp_path)
    refused(capsys, ["report", str(data), *COLUMNS, *MODEL, "--out",
                     str(tmp_path / "x" / ".." / "data.csv"), "--force"], "same file")
    assert hashes(tmp_path) == before


@pytest.mark.parametrize("option, name", [("--json", "fit.json"), ("--report", "fit.html")])
def test_fit_refuses_an_existing_output_before_fitting(option, name, small, tmp_path, capsys):
    target = tmp_path / name
    target.write_text("mine")
    before = hashes(tmp_path)
    refused(capsys, ["fit", str(small), *COLUMNS, *MODEL, option, str(target)],
            "already exists")
    assert hashes(tmp_path) == before


def test_fit_json_never_replaces_the_data(small, tmp_path, capsys, monkeypatch):
    data = tmp_path / "data.csv"
    data.write_bytes(small.read_bytes())
    monkeypatch.chdir(tmp_path)
    before = hashes(tmp_path)
    refused(capsys, ["fit", "data.csv", *COLUMNS, *MODEL, "--json", "./data.csv", "--force"],
            "same file as the input")
    assert hashes(tmp_path) == before


@pytest.mark.parametrize("option, name", [("--csv", "power.csv"), ("--figure", "power.png")])
def test_power_refuses_an_existing_output_before_any_replicate(option, name, tmp_path, capsys):
    target = tmp_path / name
    target.write_bytes(b"mine")
    before = hashes(tmp_path)
    clock = time.perf_counter()
    refused(capsys, ["power", "--hypothesis", "patient.actor.within", "--replicates", "500",
                     option, str(target)], "already exists")
    assert time.perf_counter() - clock < 5 and hashes(tmp_path) == before


# ------------------------------------------------------------------ batch
def test_batch_refuses_a_folder_it_did_not_make(small, tmp_path, capsys):
    plan = write_plan(tmp_path, small)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("a user's notes")
    (out / "models.csv").write_text("my,own\n1,2\n")
    before = hashes(tmp_path)
    refused(capsys, ["batch", str(plan), "--out", str(out), "--quiet"],
            "not empty and apim batch did not make it", "--force")
    assert hashes(tmp_path) == before


@pytest.mark.parametrize("force", [False, True])
def test_batch_never_replaces_its_data_even_with_force(force, small, tmp_path, capsys,
                                                        monkeypatch):
    """The issue's case: a data file called effects.csv and --out ."""
    data = tmp_path / "effects.csv"
    data.write_bytes(small.read_bytes())
    plan = write_plan(tmp_path, "effects.csv")
    monkeypatch.chdir(tmp_path)
    before = hashes(tmp_path)
    refused(capsys, ["batch", str(plan), "--out", ".", "--quiet",
                     *(["--force"] if force else [])], "effects.csv over the data file")
    assert hashes(tmp_path) == before


@pytest.mark.parametrize("name", ["models.csv", "index.html", "manifest.json"])
def test_batch_never_replaces_the_plan_or_data_through_another_spelling(name, small,
                                                                         tmp_path, capsys):
    (tmp_path / "sub").mkdir()
    target = tmp_path / name
    if name == "manifest.json":  # the plan file itself
        plan = tmp_path / "manifest.json"
        data = tmp_path / "sessions.csv"
        data.write_bytes(small.read_bytes())
        plan.write_text(plan_text(str(data)), encoding="utf-8")
    else:
        target.write_bytes(small.read_bytes())
        plan = write_plan(tmp_path / "sub", target)
    before = hashes(tmp_path)
    refused(capsys, ["batch", str(plan), "--out", str(tmp_path / "sub" / ".."), "--force",
                     "--quiet"], "never writes over its input")
    assert hashes(tmp_path) == before


def test_batch_reruns_in_its_own_folder_and_refuses_a_changed_table(small, tmp_path, capsys):
    plan = write_plan(tmp_path, small)
    out = tmp_path / "results"
    assert main(["batch", str(plan), "--out", str(out), "--quiet"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["apim"] == "batch" and "models.csv" in manifest["files"]
    assert main(["batch", str(plan), "--out", str(out), "--quiet"]) == 0  # its own: fine
    capsys.readouterr()
    (out / "models.csv").write_text("edited by hand\n")
    before = hashes(tmp_path)
    refused(capsys, ["batch", str(plan), "--out", str(out), "--quiet"],
            "models.csv was not written by apim batch or has changed")
    assert hashes(tmp_path) == before
    assert main(["batch", str(plan), "--out", str(out), "--quiet", "--force"]) == 0
    assert (out / "models.csv").read_text() != "edited by hand\n"


def test_batch_writes_into_an_empty_folder(small, tmp_path, capsys):
    plan = write_plan(tmp_path, small)
    (tmp_path / "empty").mkdir()
    assert main(["batch", str(plan), "--out", str(tmp_path / "empty"), "--quiet"]) == 0
    assert (tmp_path / "empty" / "index.html").exists()


def test_batch_out_that_is_a_file(small, tmp_path, capsys):
    plan = write_plan(tmp_path, small)
    (tmp_path / "out").write_text("x")
    before = hashes(tmp_path)
    refused(capsys, ["batch", str(plan), "--out", str(tmp_path / "out")], "is a file")
    assert hashes(tmp_path) == before


# ------------------------------------------------------------------ 2. never inject: HTML
@pytest.fixture(scope="module")
def hostile(tmp_path_factory, small) -> Path:
    """The small data with a predictor named like a script and markup as factor levels."""
    frame = pd.read_csv(small)
    frame[SCRIPT] = frame["alliance"]
    frame["arm"] = np.where(frame["dyad"] % 2 == 0, IMAGE, "=1+1")
    path = tmp_path_factory.mktemp("hostile") / "hostile.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("case", ["column", "level", "dataset", "error", "plan-name",
                                  "empty-subset"])
def test_batch_index_escapes_every_text_from_data_and_plans(case, hostile, tmp_path, capsys):
    """Two analyses that differ in the hostile setting, so it is a column of the models
    table (settings shared by all analyses are listed in a sentence)."""
    base = 'outcome = "outcome"\npredictors = ["alliance"]'
    analysis = {
        "column": f'outcome = "outcome"\npredictors = [[{json.dumps(SCRIPT)}], ["alliance"]]',
        "level": base + f"\nsubset = [{json.dumps(f'arm != {IMAGE!r}')}, \"arm != '=1+1'\"]",
        "dataset": base + f"\ndata = [{json.dumps(SCRIPT)}, \"d\"]",
        "error": f'outcome = "outcome"\npredictors = [[{json.dumps(IMAGE)}], ["alliance"]]',
        "plan-name": base + '\nresidual = ["un", "diagonal"]',
        "empty-subset": base + f"\nsubset = [{json.dumps(f'arm == {SCRIPT!r}')}, \"dyad > 0\"]",
    }[case]
    text = plan_text(str(hostile), analysis=analysis,
                     name=SCRIPT if case == "plan-name" else "p")
    if case == "dataset":  # a second data set with a hostile name
        block = text[text.index('[data."d"]'):text.index("[[analysis]]")]
        text = text.replace(block, block + block.replace('"d"', json.dumps(SCRIPT), 1))
    plan = tmp_path / "plan.toml"
    plan.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    code = main(["batch", str(plan), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == (2 if case in ("error", "empty-subset") else 0), err
    page = (out / "index.html").read_text(encoding="utf-8")
    no_markup(page)
    assert "&lt;" in page  # the text is there, escaped
    for table in ("models.csv", "effects.csv"):
        if (out / table).stat().st_size > 1:
            no_formula_cells(out / table)


def test_fit_report_escapes_column_names_levels_and_title(hostile, tmp_path, capsys):
    target = tmp_path / "r.html"
    assert main(["report", str(hostile), *COLUMNS, "--outcome", "outcome", "--predictor",
                 SCRIPT, "--moderator", "arm", "--title", IMAGE, "--out", str(target),
                 "--no-figures"]) == 0
    page = target.read_text(encoding="utf-8")
    no_markup(page)
    assert "&lt;script&gt;" in page and "&lt;img src=x onerror=alert(2)&gt;" in page


def test_repr_html_of_plan_and_result_are_escaped(small, tmp_path):
    from apim.plan import Plan, run_plan

    plan = Plan.from_text(plan_text(str(small), name=SCRIPT))
    no_markup(plan._repr_html_())
    result = run_plan(plan, tmp_path / "out", progress=False)
    no_markup(result._repr_html_())


# ------------------------------------------------------------------ CSV and XLSX cells
def no_formula_cells(path: Path) -> None:
    """Every text cell of a CSV that begins like a formula is prefixed with '."""
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            for cell in row:
                assert neutralise(cell) == cell, (path, cell)


@pytest.fixture(scope="module")
def formula_data(tmp_path_factory, small) -> Path:
    """Therapist ids and a column name that a spreadsheet would run (Parquet, so tab and
    CR survive reading)."""
    frame = pd.read_csv(small)
    frame["therapist"] = [FORMULAS[d % len(FORMULAS)] for d in frame["dyad"]]
    frame = frame.rename(columns={"outcome": "=SUM(A1)"})
    path = tmp_path_factory.mktemp("formula") / "formula.parquet"
    frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("value", FORMULAS)
def test_convert_csv_neutralises_formula_cells(value, formula_data, tmp_path, capsys):
    target = tmp_path / "out.csv"
    assert main(["convert", str(formula_data), str(target), *COLUMNS]) == 0
    err = capsys.readouterr().err
    assert "apim: warning:" in err and "prefixed with '" in err
    with open(target, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    column = rows[0].index("therapist")
    assert "'" + value in {r[column] for r in rows[1:]}
    assert "'=SUM(A1)" in rows[0]
    no_formula_cells(target)


@pytest.mark.parametrize("value", FORMULAS)
def test_convert_xlsx_writes_text_not_formulas(value, formula_data, tmp_path, capsys):
    openpyxl = pytest.importorskip("openpyxl")
    target = tmp_path / "out.xlsx"
    assert main(["convert", str(formula_data), str(target), *COLUMNS]) == 0
    sheet = openpyxl.load_workbook(target).active
    cells = [c for row in sheet.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    header = [c.value for c in sheet[1]]
    assert "'=SUM(A1)" in header
    column = header.index("therapist")
    ids = {row[column].value for row in sheet.iter_rows(min_row=2)}
    # XML keeps a carriage return as a line feed; the cell stays text that starts with '
    assert ("'" + value).replace("\r", "\n") in {v.replace("\r", "\n") for v in ids}
    assert all(str(v).startswith("'") for v in ids)


def test_numbers_stay_numbers(tmp_path):
    from apim.errors import DataWarning
    from apim.files import write_csv

    path = tmp_path / "n.csv"
    with pytest.warns(DataWarning, match="1 in column 'label'"):
        write_csv(pd.DataFrame({"x": [-0.5, 2.0], "label": ["-0.5", "-1+2"]}), path)
    assert path.read_text().splitlines() == ["x,label", "-0.5,-0.5", "2.0,'-1+2"]


def test_simulate_neutralises_role_labels(tmp_path, capsys):
    target = tmp_path / "sim.csv"
    assert main(["simulate", str(target), "--dyads", "4", "--sessions", "2", "--set",
                 "roles=@SUM(A1),-cmd"]) == 0
    no_formula_cells(target)
    assert set(pd.read_csv(target)["role"]) == {"'@SUM(A1)", "'-cmd"}


def test_batch_tables_neutralise_settings(small, tmp_path, capsys):
    frame = pd.read_csv(small).rename(columns={"alliance": "=HYPERLINK(1)"})
    data = tmp_path / "d.csv"
    frame.to_csv(data, index=False)
    plan = write_plan(tmp_path, data,
                      analysis='outcome = "outcome"\npredictors = ["=HYPERLINK(1)"]')
    assert main(["batch", str(plan), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    for table in ("models.csv", "effects.csv"):
        no_formula_cells(tmp_path / "out" / table)
    assert "'=HYPERLINK(1)" in set(pd.read_csv(tmp_path / "out" / "models.csv")["predictors"])


# ------------------------------------------------------------------ temp files and the lock
def test_batch_refuses_a_folder_locked_by_another_run(small, tmp_path, capsys):
    plan = write_plan(tmp_path, small)
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from apim.files import FolderLock; "
         f"lock = FolderLock({str(out)!r}).acquire(); print('held', flush=True); "
         "time.sleep(60)"], env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        before = hashes(tmp_path)
        refused(capsys, ["batch", str(plan), "--out", str(out), "--quiet"],
                "in use by another apim run", f"process {holder.pid}", ".apim.lock")
        assert hashes(tmp_path) == before
    finally:
        holder.kill()
        holder.wait()
    assert main(["batch", str(plan), "--out", str(out), "--quiet"]) == 0  # released


def test_lock_in_the_same_process_is_refused_too(tmp_path):
    from apim.errors import FolderInUseError

    with FolderLock(tmp_path):
        with pytest.raises(FolderInUseError, match=f"process {os.getpid()}"):
            FolderLock(tmp_path).acquire()
    with FolderLock(tmp_path):  # released
        pass
    assert not (tmp_path / ".apim.lock").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="fcntl")
def test_a_file_system_without_locks_warns_instead_of_refusing(tmp_path, monkeypatch):
    import errno
    import fcntl

    from apim.errors import DataWarning

    def no_locks(handle, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.warns(DataWarning, match="no locks"):
        FolderLock(tmp_path).acquire().release()


def test_a_run_removes_only_its_own_temp_files(small, tmp_path, capsys):
    plan = write_plan(tmp_path, small)
    out = tmp_path / "out"
    assert main(["batch", str(plan), "--out", str(out), "--quiet"]) == 0
    foreign = [out / ".effects.csv.999999-abcdef.x1.tmp", out / ".notes.tmp",
               out / "analyses" / ".main.json.424242-0a0b0c.zz.tmp"]
    for path in foreign:
        path.write_text("another run's")
    assert main(["batch", str(plan), "--out", str(out), "--quiet", "--force"]) == 0
    assert all(p.read_text() == "another run's" for p in foreign)
    mine = [p for p in out.rglob("*.tmp") if p not in foreign]
    assert mine == []


def test_a_killed_runs_temp_files_go_with_its_stale_lock(small, tmp_path, capsys):
    plan = write_plan(tmp_path, small)
    out = tmp_path / "out"
    assert main(["batch", str(plan), "--out", str(out), "--quiet"]) == 0
    (out / ".apim.lock").write_text(json.dumps({"pid": 999999, "host": "h",
                                                "run": "999999-dead00"}))
    left = out / "analyses" / ".main.json.999999-dead00.abc.tmp"
    other = out / ".models.csv.123-beef00.abc.tmp"
    left.write_text("half")
    other.write_text("someone else's")
    assert main(["batch", str(plan), "--out", str(out), "--quiet"]) == 0
    assert not left.exists() and other.exists()


def test_temp_files_are_created_exclusively_and_never_follow_a_planted_link(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = tmp_path / "out.json"
    for name in (f".{target.name}.{os.getpid()}.tmp", f".{target.name}.tmp"):
        os.symlink(victim, tmp_path / name)  # the old predictable names
    write_atomic(target, "{}")
    assert victim.read_text() == "precious" and target.read_text() == "{}"


def test_a_failed_write_leaves_no_temp_file(tmp_path, monkeypatch):
    def broken(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        write_atomic(tmp_path / "x.csv", "a\n")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ 3. bounded work
def huge_plan(folder: Path) -> Path:
    values = lambda prefix, n: ", ".join(f'"{prefix}{i}"' for i in range(n))  # noqa: E731
    lists = ", ".join(f'["x{i}"]' for i in range(100))
    return write_plan(folder, "x.csv", analysis=(
        f"outcome = [{values('y', 100)}]\npredictors = [{lists}]\n"
        f"residual = [{values('r', 77)}]\ncenter = [{values('c', 100)}]"))


@pytest.mark.parametrize("extra", [[], ["--dry-run"]])
def test_a_plan_of_77_million_analyses_is_refused_fast(extra, tmp_path, capsys):
    plan = huge_plan(tmp_path)
    before = hashes(tmp_path)
    clock = time.perf_counter()
    refused(capsys, ["batch", str(plan), *extra], "77,000,000 analyses",
            "100 x 100 x 77 x 100", "of memory", "split the plan")
    assert time.perf_counter() - clock < 10
    assert hashes(tmp_path) == before and not (tmp_path / "plan.results").exists()


def test_plan_size_is_counted_against_the_memory_available(small, tmp_path, capsys,
                                                           monkeypatch):
    import apim.limits

    monkeypatch.setattr(apim.limits, "available_memory", lambda: 20_000)  # 10 kB usable
    plan = write_plan(tmp_path, small,
                      analysis='outcome = "outcome"\npredictors = ["alliance"]\n'
                               'residual = ["un", "diagonal"]')
    refused(capsys, ["batch", str(plan), "--quiet"], "2 analyses", "20 kB available")


@pytest.mark.parametrize("argv, words", [
    (["--dyads", "1000000000"], ["1,000,000,000 dyads x 30 sessions", "of memory"]),
    (["--dyads", "1e12"], ["1,000,000,000,000 dyads"]),
    (["--dyads", "100000000", "--sessions", "1000"], ["100,000,000 dyads x 1,000 sessions"]),
    (["--set", "n_dyads=2000000000"], ["2,000,000,000 dyads"]),
])
def test_simulate_too_large_is_refused_before_any_draw(argv, words, tmp_path, capsys):
    clock = time.perf_counter()
    refused(capsys, ["simulate", str(tmp_path / "s.csv"), *argv], "needs about", *words)
    assert time.perf_counter() - clock < 5 and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, words", [
    (["--replicates", "1e12"], ["1,000,000,000,000 is more than 1,000,000", "Monte Carlo SE"]),
    (["--replicates", "1000000000000"], ["more than 1,000,000"]),
    (["--dyads", "1000000000"], ["needs about", "1,000,000,000 dyads"]),
    (["--dyads", "60,120,240,480,960", "--sessions", "10,20,30,40,50,60,70,80,90,100",
      "--replicates", "1000000"], ["50,000,000 replicates", "needs about"]),
])
def test_power_too_large_is_refused_up_front(argv, words, tmp_path, capsys, monkeypatch):
    import apim.limits

    monkeypatch.setattr(apim.limits, "available_memory", lambda: 16 * 10 ** 9)
    clock = time.perf_counter()
    refused(capsys, ["power", "--hypothesis", "patient.actor.within", "--quiet", *argv],
            *words)
    assert time.perf_counter() - clock < 5


def test_power_with_failed_replicates_exits_non_zero_naming_them(tmp_path, capsys,
                                                                monkeypatch):
    import apim.simulation.power as power_module

    real = power_module.simulate

    def failing(truth, seed):
        key = getattr(seed, "spawn_key", ())
        if key and key[-1] == 1:
            raise FitError("replicate 1 broke")
        return real(truth, seed)

    monkeypatch.setattr(power_module, "simulate", failing)
    table = tmp_path / "power.csv"
    code = main(["power", "--hypothesis", "patient.actor.within", "--dyads", "15",
                 "--sessions", "4", "--replicates", "3", "--quiet", "--csv", str(table)])
    captured = capsys.readouterr()
    assert code == 2, captured.err
    errors = [line for line in captured.err.splitlines() if line.startswith("apim: error:")]
    assert len(errors) == 1 and "1 of 3 replicates failed" in errors[0]
    assert "FitError" in errors[0] and "replicate 1 broke" in errors[0]
    assert "power" in captured.out and table.exists()  # the table is still written


# ------------------------------------------------------- therapist and ruptures outputs
RUPTURES = ["ruptures", "{data}", *COLUMNS, "--variable", "alliance"]
THERAPIST = ["therapist", "{data}", *COLUMNS, "--variable", "outcome", "--ci", "none",
             "--no-session-split"]


def _argv(template: list[str], data: Path, *extra: str) -> list[str]:
    return [str(data) if a == "{data}" else a for a in template] + list(extra)


@pytest.mark.parametrize("command, option", [(RUPTURES, "--episodes"), (RUPTURES, "--flags"),
                                             (RUPTURES, "--figure"),
                                             (THERAPIST, "--shares-csv")])
def test_analysis_outputs_refuse_an_existing_file(command, option, small, tmp_path, capsys):
    out = tmp_path / ("f.png" if option == "--figure" else "out.csv")
    out.write_text("mine\n", encoding="utf-8")
    before = hashes(tmp_path)
    refused(capsys, _argv(command, small, option, str(out)), option, "already exists",
            "--force")
    assert hashes(tmp_path) == before


@pytest.mark.parametrize("command, option", [(RUPTURES, "--dyads"),
                                             (THERAPIST, "--shares-csv")])
def test_analysis_outputs_never_replace_the_data(command, option, small, tmp_path, capsys):
    before = hashes(small.parent)
    refused(capsys, _argv(command, small, option, str(small), "--force"), "same file")
    assert hashes(small.parent) == before


def test_rupture_tables_neutralise_formula_cells(small, tmp_path, capsys):
    frame = pd.read_csv(small)
    frame["dyad"] = "=" + frame["dyad"].astype(str) + "+1"  # dyad ids a spreadsheet would run
    data = tmp_path / "formula_ids.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "flags.csv"
    assert main(_argv(RUPTURES, data, "--flags", str(out))) == 0
    assert "was prefixed with '" in capsys.readouterr().err
    cells = pd.read_csv(out, dtype=str)
    assert cells.iloc[:, 0].str.startswith("'=").all()
    no_formula_cells(out)


def test_written_files_have_the_permissions_of_the_users_umask(tmp_path):
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o640  # not mkstemp's 0600
