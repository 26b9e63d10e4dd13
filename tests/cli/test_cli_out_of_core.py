"""``apim fit --out-of-core``: the same tables as the in-memory fit, from CSV and Parquet;
options it cannot honour and files it cannot read in blocks refused in one line, exit 2."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import apim
from apim.cli import main

COLUMNS = ["--dyad", "dyad", "--session", "session", "--role", "role", "--roles",
           "patient,therapist", "--outcome", "outcome", "--predictor", "alliance"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_ooc")
    long = apim.load_alliance().to_long()
    csv, parquet = folder / "alliance.csv", folder / "alliance.parquet"
    long.to_csv(csv, index=False)
    long.to_parquet(parquet, index=False)
    return csv, parquet


def _json(capsys, argv):
    code = main(argv)
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


@pytest.mark.parametrize("which", [0, 1])
def test_same_numbers_as_in_memory(files, which, capsys):
    path = str(files[which])
    ours = _json(capsys, ["fit", path, *COLUMNS, "--out-of-core", "800", "--format", "json",
                          "--test", "patient.actor.within.alliance = "
                          "therapist.actor.within.alliance"])
    whole = _json(capsys, ["fit", str(files[0]), *COLUMNS, "--format", "json",
                           "--test", "patient.actor.within.alliance = "
                           "therapist.actor.within.alliance"])
    assert abs(ours["loglik"] - whole["loglik"]) < 1e-8
    a = pd.DataFrame(ours["fixed"]).set_index("term")
    b = pd.DataFrame(whole["fixed"]).set_index("term")
    np.testing.assert_allclose(a["estimate"], b["estimate"], atol=1e-8, rtol=0)
    np.testing.assert_allclose(a["se"], b["se"], rtol=1e-6)
    assert ours["out_of_core"]["blocks"] > 1
    assert ours["dropped"] == whole["dropped"]  # the same rows, with the same reasons
    assert sum(ours["dropped_counts"].values()) == sum(len(d["rows"]) for d in whole["dropped"])
    assert np.isclose(ours["tests"][0]["statistic"], whole["tests"][0]["statistic"],
                      rtol=1e-6)


def test_random_slopes(files, capsys):
    """``--random slopes --out-of-core``: the per-dyad store's fit, the same numbers as
    the in-memory fit."""
    argv = ["fit", str(files[1]), *COLUMNS, "--random", "slopes", "--format", "json"]
    ours = _json(capsys, [*argv, "--out-of-core", "800"])
    whole = _json(capsys, argv)
    assert ours["out_of_core"]["blocks"] > 1
    assert abs(ours["loglik"] - whole["loglik"]) < 1e-8
    a = pd.DataFrame(ours["fixed"]).set_index("term")
    b = pd.DataFrame(whole["fixed"]).set_index("term")
    np.testing.assert_allclose(a["estimate"], b["estimate"], atol=1e-8, rtol=0)
    np.testing.assert_allclose(a["se"], b["se"], atol=1e-8, rtol=0)


def test_table_names_rows_not_used(files, capsys):
    assert main(["fit", str(files[0]), *COLUMNS, "--out-of-core"]) == 0
    out = capsys.readouterr().out
    assert "out of core: 1 block of" in out and "rows not used:" in out


@pytest.mark.parametrize("extra, fragment", [
    (["--report", "r.html"], "--report does not apply to --out-of-core"),
    (["--format", "html"], "--format html does not apply to --out-of-core"),
    (["--moderator", "treatment"], "does not take moderators"),
    (["--df", "containment"], "--df containment does not apply"),
    (["--centring", "latent"], "--out-of-core does not apply to --centring latent"),
    (["--family", "binomial"], "--out-of-core does not apply to --family binomial"),
    (["--dynamic"], "--out-of-core does not apply to --dynamic"),
])
def test_refusals_one_line(files, extra, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["fit", str(files[0]), *COLUMNS, "--out-of-core", *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("apim: error:") and err.count("\n") == 1 and fragment in err


def test_file_errors_one_line(files, tmp_path, capsys):
    long = pd.read_csv(files[0])
    first = long["dyad"] == long["dyad"].iloc[0]
    path = tmp_path / "unsorted.csv"
    pd.concat([long[first].iloc[:4], long[~first], long[first].iloc[4:]]).to_csv(path,
                                                                                index=False)
    for argv, fragment in (([str(path), "--out-of-core", "500"], "sort the file"),
                           ([str(tmp_path / "none.parquet"), "--out-of-core"],
                            "does not exist")):
        assert main(["fit", *argv, *COLUMNS]) == 2
        err = capsys.readouterr().err
        assert err.startswith("apim: error:") and err.count("\n") == 1 and fragment in err


def test_in_memory_fit_too_large_names_out_of_core(files, capsys, monkeypatch):
    """A file the machine cannot hold in memory: exit 2, one line, naming --out-of-core
    (and the out-of-core fit of the same file is not refused)."""
    import apim.limits
    from apim.cli.out_of_core import estimated_rows

    rows = len(pd.read_csv(files[0]))
    assert estimated_rows(str(files[1])) == rows
    assert abs(estimated_rows(str(files[0])) - rows) < 0.05 * rows
    monkeypatch.setattr(apim.limits, "available_memory", lambda: 1_000_000)
    for path in files:
        assert main(["fit", str(path), *COLUMNS]) == 2
        err = capsys.readouterr().err
        assert err.startswith("apim: error:") and err.count("\n") == 1
        assert "in memory" in err and "--out-of-core" in err
    assert main(["fit", str(files[1]), *COLUMNS, "--out-of-core"]) == 0


def test_workers(files, capsys):
    """--workers N: the same numbers from N processes; refused where it does not apply."""
    argv = ["fit", str(files[1]), *COLUMNS, "--out-of-core", "800", "--format", "json"]
    one = _json(capsys, [*argv, "--workers", "1"])
    two = _json(capsys, [*argv, "--workers", "2"])
    assert abs(one["loglik"] - two["loglik"]) < 1e-9
    a, b = (pd.DataFrame(r["fixed"]).set_index("term") for r in (one, two))
    np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=1e-12, atol=1e-12)
    for extra, fragment in ((["--workers", "2"], "--workers applies to --out-of-core"),
                            (["--out-of-core", "--workers", "0"], "workers=0"),
                            (["--scheduler", "tcp://127.0.0.1:1", "--workers", "2"],
                             "--workers does not apply to --scheduler")):
        assert main(["fit", str(files[0]), *COLUMNS, *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("apim: error:") and err.count("\n") == 1 and fragment in err


def test_fit_imports_only_what_it_uses():
    """`apim fit` builds only its own subcommand's parser: the other subcommands' modules
    (and the analyses, simulation and heavy optional libraries behind them) are not
    imported, nor the other model families' fitters; `apim --help` still lists every
    subcommand."""
    import subprocess
    import sys

    code = ("import sys; from apim.cli import build_parser, _command; "
            "build_parser(_command(['fit', 'data.csv'])); "
            "print(' '.join(sorted(sys.modules)))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                text=True, check=True).stdout.split())
    assert "apim.cli.fit" in loaded
    heavy = {"apim.cli.therapist", "apim.cli.demo", "apim.cli.power", "apim.cli.simulate",
             "apim.cli.ruptures", "apim.cli.batch", "apim.analyses", "apim.simulation.power",
             "apim.plan", "scipy", "scipy.optimize", "statsmodels", "dask", "matplotlib",
             "joblib", "tqdm",
             # the registry loads a model family's module when a spec of it is fitted
             "apim.model.dynamic", "apim.model.generalized", "apim.model.formula",
             "apim.engine.dynamic", "apim.engine.glmm", "patsy",
             # `import apim` does not simulate the example data set
             "apim.datasets", "apim.simulation"}
    assert not heavy & loaded, heavy & loaded
    out = subprocess.run([sys.executable, "-m", "apim", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert all(name in out for name in ("fit", "describe", "therapist", "power", "batch"))


def test_a_plain_fit_loads_only_what_it_runs(files):
    """The whole `apim fit DATA ...` of an observed-mean APIM printed as a table loads
    neither the exports, reports, Wald tests nor arm differences, nor the latent model
    and its multivariate engine, nor scipy; with BLAS held to one thread by the
    environment (as Dask's workers are), not threadpoolctl either. It prints the same
    table as the in-process command, and --json still writes the JSON."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    argv = ["fit", str(files[0]), *COLUMNS]
    code = ("import sys; from apim.cli import main; code = main(sys.argv[1:]); "
            "print('MODULES', ' '.join(sorted(sys.modules))); sys.exit(code)")
    root = str(Path(apim.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root, "OMP_NUM_THREADS": "1"}
    env.pop("OPENBLAS_NUM_THREADS", None)
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True,
                         text=True, env=env, check=True).stdout
    table, modules = out.split("MODULES ")
    loaded = set(modules.split())
    unused = {"apim.report", "apim.report.export", "apim.report.html", "apim.report.tables",
              "apim.report.docx", "apim.inference", "apim.inference.wald",
              "apim.inference.arms", "apim.files", "apim.model.latent",
              "apim.model.latent_result", "apim.engine.multivariate", "scipy",
              "scipy.special", "scipy.stats", "threadpoolctl"}
    assert not unused & loaded, unused & loaded
    assert {"apim.model.reliability", "apim.engine.mixed.estimate"} <= loaded
    assert "Fixed effects" in table and "satterthwaite" in table
    assert table.strip() == _text(argv)
    # BLAS held to one thread by the environment, threadpoolctl not loaded: the same
    # estimates to the last bit as under threadpoolctl's limit (this process)
    code = ("import sys; from apim.cli import main; sys.exit(main(sys.argv[1:]))")
    there = json.loads(subprocess.run([sys.executable, "-c", code, *argv, "--format", "json"],
                                      capture_output=True, text=True, env=env,
                                      check=True).stdout)
    here = json.loads(_text([*argv, "--format", "json"]))
    for payload in (there, here):
        payload.pop("fit_seconds")
    assert there == here


def _text(argv: list[str]) -> str:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(argv) == 0
    return buffer.getvalue().strip()
