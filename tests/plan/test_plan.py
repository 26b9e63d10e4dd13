"""Batch plans: parsing, safe subsets, the example plan end to end, resumption, Dask."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import apim
from apim.cli import main
from apim.errors import SpecError
from apim.plan import Filter, Plan, check_plan, example_plan, run_plan

ROOT = Path(__file__).resolve().parents[2]
DATA = f'''
[data.alliance]
file = "{apim.datasets.alliance_path()}"
dyad = "dyad"
session = "session"
role = "role"
roles = ["patient", "therapist"]
therapist = "therapist"
'''


# ---------------------------------------------------------------- subsets
FRAME = pd.DataFrame({"arm": ["CBT", "AFT", "CBT", None], "session": [1, 5, 12, 3],
                      "x": [0.5, np.nan, 2.0, 1.0]})


@pytest.mark.parametrize("expr, expected", [
    ("arm == 'CBT'", [1, 0, 1, 0]),
    ("session <= 5 and arm != 'AFT'", [1, 0, 0, 0]),
    ("not (session > 3)", [1, 0, 0, 1]),
    ("session in [1, 12]", [1, 0, 1, 0]),
    ("arm not in ['CBT']", [0, 1, 0, 0]),
    ("1 < session <= 12", [0, 1, 1, 1]),
    ("x > 0.7 or session == 5", [0, 1, 1, 1]),
    ("session >= -1", [1, 1, 1, 1]),
    ("dyad_arm == true", [0, 0, 0, 0])])
def test_filter_values(expr, expected):
    frame = FRAME.assign(dyad_arm=False)
    assert Filter.parse(expr).mask(frame).astype(int).tolist() == expected


def test_filter_missing_values_are_false():
    assert Filter.parse("x > 0").mask(FRAME).tolist() == [True, False, True, True]
    assert Filter.parse("arm == 'CBT'").mask(FRAME).tolist() == [True, False, True, False]


@pytest.mark.parametrize("expr, why", [
    ("__import__('os').system('true')", "a call"), ("arm.upper() == 'CBT'", "a call"),
    ("session + 1 > 2", "arithmetic"), ("arm[0] == 'C'", "a subscript"),
    ("(lambda: 1)()", "a call"), ("session = 3", "not a valid expression"),
    ("session is None", "IsNot|Is"), ("", "non-empty")])
def test_filter_refuses_anything_else(expr, why):
    with pytest.raises(SpecError, match=why):
        Filter.parse(expr)


def test_filter_unknown_column_named():
    with pytest.raises(SpecError, match="no column 'sesion'"):
        Filter.parse("sesion < 3").mask(FRAME)


# ---------------------------------------------------------------- parse and expand
def test_products_and_list_fields():
    plan = Plan.from_text(DATA + '''
[defaults]
outcome = "outcome"
predictors = "alliance"
[[analysis]]
id = "grid"
residual = ["un", "diagonal", "cs"]
moderators = [[], ["treatment"]]
[[analysis]]
centring = "grand"
predictors = ["alliance", "outcome2"]
''')
    ids = [a.id for a in plan.analyses]
    assert ids == [f"grid-{i:02d}" for i in range(1, 7)] + ["a2"]
    assert [a.settings["residual"] for a in plan.analyses[:6]] == \
        ["un", "un", "diagonal", "diagonal", "cs", "cs"]
    assert plan.analyses[1].spec().moderators == ("treatment",)
    assert plan.analyses[6].spec().predictors == ("alliance", "outcome2")
    assert plan.analyses[6].spec().decomposition.center == "grand"
    assert plan.analyses[0].row()["residual"] == "un"


@pytest.mark.parametrize("text, message", [
    ("[[analysis]]\noutcome='y'\n", "no data set"),
    (DATA + "[[analysis]]\noutcome='y'\npredictors=['x']\nresidal='un'\n",
     "unknown setting 'residal'"),
    (DATA + "[[analysis]]\nid='a'\noutcome='y'\n[[analysis]]\nid='a'\noutcome='z'\n",
     "used twice"),
    (DATA + "[[analysis]]\nid='a/b'\n", "names a file"),
    (DATA + "[[analysis]]\nresidual=[]\n", "empty list"),
    (DATA + "[[analysis]]\ndata='other'\n", "not one of alliance"),
    ("[data.d]\nfile='x.csv'\n", "needs dyad"),
    (DATA + "[analysis\n", "not valid TOML"),
])
def test_plan_errors_are_specific(text, message):
    with pytest.raises(SpecError, match=message):
        Plan.from_text(text)


# ---------------------------------------------------------------- the example, end to end
@pytest.fixture(scope="module")
def example(tmp_path_factory):
    folder = tmp_path_factory.mktemp("example")
    plan_file = folder / "plan.toml"
    plan_file.write_text(example_plan(), encoding="utf-8")
    assert main(["batch", str(plan_file), "--quiet"]) == 0
    return plan_file, folder / "plan.results"


def test_example_plan_runs_as_printed(example, capsys):
    assert main(["batch", "--example"]) == 0
    printed = capsys.readouterr().out
    assert printed == example_plan()
    plan = Plan.from_text(printed)
    assert len(plan.analyses) >= 12
    _, out = example
    for name in ("effects.csv", "effects.parquet", "models.csv", "manifest.json",
                 "index.html"):
        assert (out / name).is_file()
    effects = pd.read_csv(out / "effects.csv", keep_default_na=False, na_values=[""])
    assert effects.columns[0] == "analysis"
    parquet = pd.read_parquet(out / "effects.parquet")
    assert parquet.columns[0] == "analysis"
    np.testing.assert_allclose(parquet["estimate"], effects["estimate"])
    models = pd.read_csv(out / "models.csv")
    assert list(models["analysis"]) == [a.id for a in plan.analyses]
    assert (models["status"] == "ok").all()
    assert {"loglik", "aic", "bic", "n_params", "converged", "boundary"} <= set(models)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"analyses": len(plan.analyses), "ok": len(plan.analyses),
                                  "failed": 0, "fitted": len(plan.analyses), "skipped": 0}
    assert {"versions", "platform", "data", "seed", "started", "finished"} <= set(manifest)
    assert manifest["data"]["alliance"]["sha256"]
    for a in plan.analyses:
        record = json.loads((out / "analyses" / f"{a.id}.json").read_text())
        assert record["status"] == "ok" and record["key"]


def test_plan_table_equals_individual_fits(example):
    plan_file, out = example
    plan = Plan.from_file(plan_file)
    effects = pd.read_csv(out / "effects.csv")
    data = apim.load_alliance()
    for a in plan.analyses:
        result = apim.fit(a.select(data), a.spec(), df=a.df)
        rows = effects[effects["analysis"] == a.id].set_index("term")
        alone = result.effects
        assert list(rows.index) == list(alone.index)
        np.testing.assert_allclose(rows["estimate"], alone["estimate"], rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(rows["se"], alone["se"], rtol=1e-5)
        np.testing.assert_allclose(rows["df"], alone["df"], rtol=1e-4)


def test_second_run_skips_everything(example, capsys):
    plan_file, out = example
    before = {p.name: p.stat().st_mtime_ns for p in (out / "analyses").glob("*.json")}
    assert main(["batch", str(plan_file), "--quiet"]) == 0
    assert "0 fitted, 14 reused" in capsys.readouterr().out
    after = {p.name: p.stat().st_mtime_ns for p in (out / "analyses").glob("*.json")}
    assert before == after


def test_same_table_through_a_local_dask_cluster(example, tmp_path):
    distributed = pytest.importorskip("distributed")
    plan_file, out = example
    with distributed.LocalCluster(n_workers=2, processes=False, dashboard_address=None) \
            as cluster:
        result = run_plan(plan_file, tmp_path / "dask", scheduler=cluster.scheduler_address,
                          progress=False)
    local = pd.read_csv(out / "effects.csv", keep_default_na=False, na_values=[""])
    remote = pd.read_csv(tmp_path / "dask" / "effects.csv", keep_default_na=False,
                         na_values=[""])
    assert result.manifest["counts"]["ok"] == len(local["analysis"].unique())
    numeric = ["estimate", "se", "df", "t", "ci_low", "ci_high"]
    pd.testing.assert_frame_equal(local.drop(columns=numeric + ["p"]),
                                  remote.drop(columns=numeric + ["p"]))
    np.testing.assert_allclose(remote[numeric], local[numeric], rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------- failures and dry runs
SMALL = DATA + '''
[defaults]
outcome = "outcome"
predictors = ["alliance"]
subset = "dyad <= 40"
'''


def test_failing_analysis_is_recorded_and_others_complete(tmp_path, capsys):
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(SMALL + '''
[[analysis]]
id = "good"
residual = ["un", "diagonal"]
[[analysis]]
id = "broken"
outcome = "outcom"
[[analysis]]
id = "also-good"
method = "ML"
''')
    assert main(["batch", str(plan_file), "--quiet"]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "1 of 4 analyses failed" in captured.err
    models = pd.read_csv(tmp_path / "plan.results" / "models.csv").set_index("analysis")
    assert list(models["status"]) == ["ok", "ok", "error", "ok"]
    assert models.at["broken", "error_type"] == "MissingColumnError"
    assert "outcom" in models.at["broken", "error"]
    effects = pd.read_csv(tmp_path / "plan.results" / "effects.csv")
    assert set(effects["analysis"]) == {"good-01", "good-02", "also-good"}
    # the failure is stored too: a second run does not refit it, --retry-failed does
    result = run_plan(plan_file, progress=False)
    assert result.manifest["counts"]["fitted"] == 0
    result = run_plan(plan_file, progress=False, retry_failed=True)
    assert result.manifest["counts"]["fitted"] == 1
    result = run_plan(plan_file, progress=False, force=True)
    assert result.manifest["counts"]["fitted"] == 4


def test_dry_run_catches_a_misspelt_column_in_analysis_11(tmp_path, capsys, monkeypatch):
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(SMALL + '''
[[analysis]]
id = "grid"
lag = [0, 1]
residual = ["un", "diagonal", "cs", "independent", "ar1"]
[[analysis]]
id = "eleventh"
moderators = ["treatmnet"]
[[analysis]]
id = "twelfth"
interaction = true
''')

    def no_fitting(*args, **kwargs):
        raise AssertionError("a dry run must not fit")

    monkeypatch.setattr("apim.plan.run.fit", no_fitting)
    assert main(["batch", str(plan_file), "--dry-run"]) == 2
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 13  # header and 12 analyses
    assert "eleventh" in lines[11] and "MissingColumnError" in lines[11]
    assert all(line.rstrip().endswith("ok") for line in lines[1:11] + lines[12:])
    assert captured.err.count("\n") == 1 and "first eleventh" in captured.err
    assert not (tmp_path / "plan.results").exists()
    table = check_plan(Plan.from_file(plan_file))
    assert list(table["check"] != "ok") == [False] * 10 + [True, False]


def test_resumes_after_sigkill_with_one_row_set_per_analysis(tmp_path):
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(example_plan(), encoding="utf-8")
    out = tmp_path / "plan.results"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "apim", "batch", str(plan_file),
                                "--quiet"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while not list((out / "analyses").glob("*.json")):
            assert process.poll() is None, "the batch ended before any result appeared"
            assert time.monotonic() < deadline, "no result within 120 s"
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    done = list((out / "analyses").glob("*.json"))
    for path in done:  # every stored result is complete
        json.loads(path.read_text())
    assert not (out / "effects.csv").exists()  # killed before the tables
    plan = Plan.from_file(plan_file)
    assert 0 < len(done) < len(plan.analyses)
    result = run_plan(plan_file, progress=False)
    counts = result.manifest["counts"]
    assert counts["skipped"] == len(done) and counts["fitted"] == len(plan.analyses) - len(done)
    effects = pd.read_csv(out / "effects.csv")
    assert set(effects["analysis"]) == {a.id for a in plan.analyses}
    assert not effects.duplicated(["analysis", "term"]).any()
    assert not list(out.rglob("*.tmp"))
