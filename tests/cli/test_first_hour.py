"""What a researcher meets in the first hour (issue 23): progress on a terminal and
nowhere else, the same flag names in every subcommand (old spellings warn), options that
cannot act refused before any work, outputs listed only when written, and messages in the
user's terms."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pandas as pd
import pytest

import apim
from apim.cli import main
from apim.cli import report as report_cli

ROOT = Path(__file__).resolve().parents[2]
PATH = apim.datasets.alliance_path()
COLUMNS = ["--dyad", "dyad", "--session", "session", "--role", "role", "--roles",
           "patient,therapist", "--therapist", "therapist"]
POWER = ["power", "--hypothesis", "patient.actor.within", "--dyads", "30", "--sessions",
         "4", "--replicates", "6", "--seed", "1"]


def _run_with_stderr_on_a_terminal(argv: list[str]) -> tuple[int, str, str]:
    """Run ``python -m apim ARGV`` with stderr on a pseudo-terminal (stdout a pipe);
    return the exit code, stdout and what the terminal showed."""
    leader, follower = pty.openpty()
    # a terminal of 24 rows x 100 columns (a new pseudo-terminal has none, and a bar fits
    # itself to the width)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    process = subprocess.Popen([sys.executable, "-m", "apim", *argv], stdout=subprocess.PIPE,
                               stderr=follower, env=env, cwd=ROOT)
    os.close(follower)
    shown = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: the process has ended
                break
            if not chunk:
                break
            shown += chunk
        elif process.poll() is not None:
            break
    out = process.communicate(timeout=120)[0].decode()
    os.close(leader)
    return process.returncode, out, shown.decode(errors="replace")


def test_progress_is_shown_on_a_terminal_and_not_with_quiet():
    code, out, shown = _run_with_stderr_on_a_terminal(POWER)
    assert code == 0, shown
    assert "replicates" in shown and "6/6" in shown  # the bar, finished
    assert "power" in out and "6/6" not in out  # stdout (the table) stays clean
    code, _, shown = _run_with_stderr_on_a_terminal([*POWER, "--quiet"])
    assert code == 0 and "6/6" not in shown and "replicates:" not in shown


def test_no_progress_when_stderr_is_not_a_terminal():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "apim", *POWER], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and done.stderr == ""


@pytest.mark.parametrize("name", ["therapist", "power", "batch"])
def test_the_same_flag_names_in_every_subcommand_that_runs_many_jobs(name, capsys):
    assert main([name, "--help"]) == 0
    text = capsys.readouterr().out
    assert "--n-jobs N" in text and "--quiet" in text
    assert "--jobs" not in text.replace("--n-jobs", "")  # the old spelling is hidden
    assert "--progress" not in text


@pytest.mark.parametrize("argv", [
    ["therapist", PATH, *COLUMNS, "--variable", "alliance", "--n-jobs", "0"],
    ["batch", "plan.toml", "--n-jobs", "two"],
    [*POWER, "--n-jobs", "-2"]])
def test_n_jobs_is_checked_the_same_way_everywhere(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "apim: error: --n-jobs" in err
    assert "e.g. --n-jobs 2" in err


def test_old_spelling_still_works_and_warns(monkeypatch, capsys):
    from apim.cli import therapist as therapist_cli

    seen = {}

    def record(data, spec, **kwargs):
        seen.update(kwargs)
        return apim.analyses.therapist.TherapistEffects(spec, None, None, None)

    monkeypatch.setattr(therapist_cli, "therapist_effects", record)
    code = main(["therapist", PATH, *COLUMNS, "--variable", "alliance", "--jobs", "2"])
    err = capsys.readouterr().err
    assert code == 0 and seen["n_jobs"] == 2
    assert "apim: warning: --jobs is deprecated: use --n-jobs 2" in err


def _no_fit(*args, **kwargs):
    raise AssertionError("the fit ran although an option could be refused before it")


@pytest.mark.parametrize("options, words", [
    (["--figure", "surface"], "--figure surface does not apply here: it draws a "
                              "response-surface model"),
    (["--figure", "slopes"], "add --moderator COL or --interaction"),
    (["--centring", "latent", "--figure", "diagnostics"], "no residuals per row"),
    (["--figure", "path", "--no-figures"], "contradict"),
])
def test_report_refuses_figures_it_cannot_draw_before_fitting(options, words, monkeypatch,
                                                              tmp_path, capsys):
    monkeypatch.setattr(report_cli, "fit_with_warnings", _no_fit)
    out = tmp_path / "r.html"
    code = main(["report", PATH, *COLUMNS, "--outcome", "outcome", "--predictor",
                 "alliance", "--out", str(out), *options])
    err = capsys.readouterr().err
    assert code == 2 and words in err and err.count("\n") == 1
    assert not out.exists()


def test_fit_report_refuses_a_named_figure_it_cannot_draw(tmp_path):
    result = apim.fit(apim.load_alliance(), apim.APIMSpec("outcome", ("alliance",)))
    with pytest.raises(apim.errors.SpecError, match="figure 'slopes' cannot be drawn"):
        apim.fit_report(result, tmp_path / "r.html", figures=["path", "slopes"])
    assert not (tmp_path / "r.html").exists()


def test_report_draws_each_figure_asked_for(tmp_path, capsys):
    out = tmp_path / "r.html"
    code = main(["report", PATH, *COLUMNS, "--outcome", "outcome", "--predictor",
                 "alliance", "--moderator", "treatment", "--out", str(out),
                 "--figure", "path", "--figure", "slopes"])
    assert code == 0, capsys.readouterr().err
    text = out.read_text()
    assert text.count("<figure>") == 3  # the path diagram and a slopes plot per role
    assert "Path diagram" in text and "Simple slopes" in text and "Residual" not in text


def test_index_lists_effects_parquet_only_when_written(monkeypatch, tmp_path, capsys):
    plan = tmp_path / "plan.toml"
    plan.write_text(f'''
[data.alliance]
file = "{PATH}"
dyad = "dyad"
session = "session"
role = "role"
roles = ["patient", "therapist"]
[[analysis]]
id = "main"
outcome = "outcome"
predictors = ["alliance"]
''')
    def no_pyarrow(*args, **kwargs):  # as on an install without pyarrow
        raise ImportError("Unable to find a usable engine; tried using: 'pyarrow'")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", no_pyarrow)
    out = tmp_path / "results"
    assert main(["batch", str(plan), "--out", str(out)]) == 0, capsys.readouterr().err
    index = (out / "index.html").read_text()
    assert not (out / "effects.parquet").exists()
    assert "<code>effects.parquet</code>" not in index
    assert "effects.parquet not written: pyarrow is not installed" in index
    assert "<code>effects.csv</code>" in index


def test_dropped_rows_are_named_in_the_users_terms(capsys):
    assert main(["describe", PATH, *COLUMNS, "--outcome", "outcome", "--predictor",
                 "alliance", "--lag", "1"]) == 0
    out = capsys.readouterr().out
    assert "missing alliance lagged by 1 session" in out
    assert "missing the partner's alliance lagged by 1 session" in out
    assert "_within" not in out and "_lag1" not in out


def test_therapist_text_covariate_is_coded_and_said_so(capsys):
    code = main(["therapist", PATH, *COLUMNS, "--variable", "alliance", "--covariate",
                 "treatment", "--ci", "none", "--predictor", "alliance", "--outcome",
                 "outcome", "--no-session-split"])
    out = capsys.readouterr().out
    assert code == 0
    assert "covariate 'treatment' is text: dummy coded against its first level 'AFT'" in out
    assert "< .001" in out and " 0.000 " not in out  # p values in APA style


def test_therapist_refuses_a_bad_covariate_before_the_bootstrap(monkeypatch, capsys):
    from apim.analyses.therapist import bootstrap

    monkeypatch.setattr(bootstrap, "run_jobs", _no_fit)
    code = main(["therapist", PATH, *COLUMNS, "--variable", "alliance", "--covariate",
                 "treatmnt", "--bootstrap", "100"])
    err = capsys.readouterr().err
    assert code == 2 and "treatmnt" in err and "treatment" in err  # did you mean


def test_install_hints_name_a_package_pip_finds_from_a_checkout_too(monkeypatch, tmp_path,
                                                                   capsys):
    """'pip install apim[io]' fails from a clone (apim is not on the index under that
    name): hints name the missing package itself."""
    path = tmp_path / "sessions.xlsx"
    pd.DataFrame({"dyad": [1, 1], "role": ["p", "t"], "x": [1.0, 2.0]}).to_excel(
        path, index=False)
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # as on an install without it
    assert main(["describe", str(path), "--dyad", "dyad", "--role", "role"]) == 2
    err = capsys.readouterr().err
    assert "install it with: pip install openpyxl" in err and "apim[" not in err


@pytest.mark.parametrize("argv", [
    ["fit", PATH, *COLUMNS, "--outcome", "outcome", "--predictor", "alliance", "--docx",
     "{tmp}/t.docx", "--report", "{tmp}/r.html"],
    ["report", PATH, *COLUMNS, "--outcome", "outcome", "--predictor", "alliance", "--out",
     "{tmp}/t.docx"]])
def test_word_output_without_python_docx_is_refused_before_the_fit(argv, monkeypatch,
                                                                    tmp_path, capsys):
    from apim.cli import fit as fit_cli

    monkeypatch.setitem(sys.modules, "docx", None)  # as on the base install
    monkeypatch.setattr(fit_cli, "fit_with_warnings", _no_fit)
    monkeypatch.setattr(report_cli, "fit_with_warnings", _no_fit)
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert "needs python-docx: pip install python-docx" in err
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("argv, words", [
    (["fit", PATH, "--dyad", "dyad", "--role", "role", "--outcome", "outcome",
      "--predictor", "alliance", "--figure", "path"],
     "apim fit: unrecognized arguments: --figure path (--figure is an option of apim "
     "report, apim power, apim ruptures) (see apim fit --help)"),
    (["fit", PATH, "--dyad", "dyad", "--moderater", "treatment"],
     "(did you mean --moderator?) (see apim fit --help)"),
    (["power", "--hypothesis", "x", "--jobs", "2"], "(did you mean --n-jobs?)")])
def test_unknown_options_point_to_the_subcommands_help(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


ACITELLI = ["fit", apim.datasets.acitelli_path(), "--layout", "pairwise", "--dyad",
            "CoupleID", "--role", "Gender", "--outcome", "Satisfaction", "--predictor",
            "OtherPos"]


@pytest.mark.parametrize("argv, words, python", [
    ([*ACITELLI, "--random", "intercepts"],
     "--random intercepts with --residual un is not identified", "random="),
    ([*ACITELLI, "--center", "person"], "use --center none or --center grand (omitting "
                                        "--center chooses raw predictors", "center="),
    (["fit", PATH, *COLUMNS, "--outcome", "outcome", "--predictor", "alliance",
      "--detrend", "--center", "grand"], "--detrend needs --center person or --center "
                                         "therapist", "detrend="),
    (["therapist", PATH, *COLUMNS, "--variable", "alliance", "--ci", "exact"],
     "--ci exact needs every dyad to have the same number", "ci=")])
def test_messages_name_the_flags_the_user_typed(argv, words, python, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and python not in err  # no Python syntax on the command line
