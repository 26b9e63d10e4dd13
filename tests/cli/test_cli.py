"""Every subcommand: --help with defaults and an example, bad input in one line with exit 2,
conversions that come back unchanged, and a demo that says what it is."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import apim
from apim.cli import SUBCOMMANDS, build_parser, main
from apim.cli.convert import write_table
from apim.data.io import read_table

PATH = apim.datasets.alliance_path()
COLUMNS = ["--dyad", "dyad", "--session", "session", "--role", "role", "--roles",
           "patient,therapist", "--therapist", "therapist"]
NAMES = [m.__name__.rsplit(".", 1)[1] for m in SUBCOMMANDS]


def test_every_subcommand_is_registered():
    assert {"demo", "describe", "convert", "fit", "report", "batch", "simulate",
            "power"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_help(name, capsys):
    assert main([name, "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: apim {name}")
    assert "example" in text  # an example command line in every epilog (issue 23)
    assert f"apim {name}" in text.split("example")[-1]
    if name != "demo":  # demo has no options
        assert "(default: " in text


def _error_output(capsys, argv) -> tuple[int, str]:
    """The exit code and what went to stderr."""
    code = main(argv)
    return code, capsys.readouterr().err


def _one_line_error(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("apim: error: ")


@pytest.mark.parametrize("argv, fragments", [
    (["describe", "missing.csv", "--dyad", "d", "--role", "r"], ["does not exist"]),
    (["fit", PATH, *COLUMNS, "--outcome", "outcom", "--predictor", "alliance"], ["outcom"]),
    (["report", PATH, *COLUMNS, "--outcome", "outcome", "--predictor", "aliance",
      "--out", "never.html"], ["aliance"]),
    (["convert", PATH, "out.json", *COLUMNS], ["unknown file type '.json'"]),
    (["convert", PATH, "out.csv", "--dyad", "pair", "--role", "role"], ["pair"]),
    (["batch"], ["give a plan file"]),
    (["batch", "no-plan.toml"], ["does not exist"]),
    (["simulate", "out.csv", "--set", "bogus=1"], ["bogus"]),
    (["power", "--hypothesis", "patient.actor.within", "--set", "bogus=1"], ["bogus"]),
])
def test_bad_input_one_line_exit_2(argv, fragments, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = _error_output(capsys, argv)
    assert code == 2 and _one_line_error(err), err
    assert all(fragment in err for fragment in fragments), err


def test_bad_plan_one_line(tmp_path, capsys):
    plan = tmp_path / "plan.toml"
    plan.write_text('[data.d]\nfile = "x.csv"\ndyad = "d"\nrole = "r"\n'
                    '[[analysis]]\noutcome = "y"\nresidal = "un"\n')
    code, err = _error_output(capsys, ["batch", str(plan)])
    assert code == 2 and _one_line_error(err), err
    assert "unknown setting 'residal'" in err


def test_demo_rejects_arguments(capsys):
    assert main(["demo", "extra"]) == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments" in err and len(err.strip().splitlines()) == 1


def test_demo_says_simulated_names_references_and_counts_rows(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "SIMULATED" in out.splitlines()[0]
    assert "Moderator treatment: reference category CBT" in out
    assert "patient is the reference role" in out
    data = apim.load_alliance()
    report = data.report(["alliance", "outcome"])
    listed = {r for e in report.exclusions for r in e.rows}
    result = apim.fit(data, apim.APIMSpec("outcome", ("alliance",),
                                          moderators=("treatment",)))
    dropped = result.dropped
    partner = dropped["reason"].str.contains("partner")
    assert set(dropped["row"]) == listed | set(dropped.loc[partner, "row"])
    match = re.search(r"Rows not used by the fit: (\d+) of (\d+)", out)
    assert int(match.group(1)) == len(dropped) and int(match.group(2)) == len(data.frame)
    match = re.search(r"That is the (\d+) rows the data report lists .* plus (\d+) rows", out)
    assert int(match.group(1)) == len(listed) and int(match.group(2)) == partner.sum()
    for e in report.exclusions:  # the data report printed is the one counted
        assert f"{len(e.rows)} rows: {e.reason}" in out


# ---------------------------------------------------------------- convert
def _long(path, layout, extra=()):
    if layout == "wide":
        return apim.SessionData.from_wide(path, dyad="dyad", session="session",
                                          roles=("patient", "therapist"),
                                          therapist="therapist")
    read = apim.SessionData.from_pairwise if layout == "pairwise" else \
        apim.SessionData.from_long
    return read(path, dyad="dyad", session="session", role="role",
                roles=("patient", "therapist"), therapist="therapist")


def _same(a: apim.SessionData, b: apim.SessionData) -> None:
    left, right = a.frame.drop(columns="row"), b.frame.drop(columns="row")
    right = right[left.columns]
    for c in left.columns:
        x, y = left[c], right[c]
        if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
            np.testing.assert_allclose(x.to_numpy(float), y.to_numpy(float), equal_nan=True)
        else:
            assert x.astype(str).tolist() == y.astype(str).tolist(), c


@pytest.mark.parametrize("layout", ["wide", "pairwise"])
def test_convert_layouts_round_trip(layout, tmp_path, capsys):
    there = tmp_path / f"{layout}.csv"
    back = tmp_path / "back.csv"
    assert main(["convert", PATH, str(there), *COLUMNS, "--to", layout]) == 0
    assert f"({layout} layout)" in capsys.readouterr().out
    columns = ([c for c in COLUMNS if c not in ("--role", "role")] if layout == "wide"
               else COLUMNS)
    assert main(["convert", str(there), str(back), *columns, "--layout", layout,
                 "--to", "long"]) == 0
    _same(_long(PATH, "long"), _long(back, "long"))


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".xlsx", ".sav", ".dta", ".parquet"])
def test_convert_formats_round_trip(suffix, tmp_path):
    data = apim.load_alliance()
    small = data.replace(data.frame[data.frame["dyad"] <= 15].reset_index(drop=True))
    source = tmp_path / "small.csv"
    small.to_long().to_csv(source, index=False)
    target = tmp_path / f"small-converted{suffix}"
    assert main(["convert", str(source), str(target), *COLUMNS]) == 0
    _same(_long(source, "long"), _long(target, "long"))


def test_write_table_refuses_invalid_stata_names(tmp_path):
    with pytest.raises(apim.errors.SpecError, match="not a valid Stata name"):
        write_table(pd.DataFrame({"my column": [1]}), tmp_path / "x.dta")
    frame = pd.DataFrame({"a": pd.Categorical(["x", "y"]), "b": [1.5, np.nan]})
    write_table(frame, tmp_path / "x.sav")
    back = read_table(tmp_path / "x.sav")
    assert back["a"].tolist() == ["x", "y"] and np.isnan(back["b"][1])


def test_parser_builds():
    assert build_parser().prog == "apim"
