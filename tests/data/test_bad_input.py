"""Every bad-input case raises a specific error, through the API and through the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from apim import SessionData, decompose
from apim import errors as E
from apim.cli import main


def good() -> pd.DataFrame:
    return pd.DataFrame({
        "dyad": [1, 1, 1, 1, 2, 2, 2, 2],
        "session": [1, 1, 2, 2, 1, 1, 2, 2],
        "role": ["patient", "therapist"] * 4,
        "therapist": ["A", "A", "A", "A", "B", "B", "B", "B"],
        "alliance": [5.0, 6.0, 5.5, 6.5, 4.0, 4.5, 3.5, 5.0],
    })


@dataclass(frozen=True)
class Case:
    name: str
    frame: pd.DataFrame | str | None  # a DataFrame, raw file text, or None for no file
    error: type
    message: str
    options: dict = field(default_factory=dict)
    predictor: str | None = None
    layout: str = "long"
    suffix: str = ".csv"


def _set(column: str, rows: list[int], value) -> pd.DataFrame:
    df = good().astype({column: object})
    df.loc[rows, column] = value
    return df


CASES = [
    Case("misspelt column", good(), E.MissingColumnError,
         r"dyad column 'dyda' is not in the data; did you mean 'dyad'\?", {"dyad": "dyda"}),
    Case("missing column", good(), E.MissingColumnError,
         r"therapist column 'clinician' is not in the data; the data has columns",
         {"therapist": "clinician"}),
    Case("one role", good().assign(role="patient"), E.RoleCountError,
         r"column 'role' must hold exactly two roles but holds 1: 'patient'"),
    Case("three roles", _set("role", [7], "supervisor"), E.RoleCountError,
         r"column 'role' must hold exactly two roles but holds 3"),
    Case("role not in roles", _set("role", [1, 3], "Therapist"), E.UnknownRoleError,
         r"column 'role' holds role 'Therapist' \(rows 2, 4\) which is not one of "
         r"roles=\('patient', 'therapist'\)", {"roles": ("patient", "therapist")}),
    Case("roles argument", good(), E.RolesArgumentError,
         r"(roles=\('patient', 'patient'\)|--roles 'patient,patient') must name two distinct "
         r"roles",
         {"roles": ("patient", "patient")}),
    Case("duplicate rows", pd.concat([good(), good().iloc[[2]]], ignore_index=True),
         E.DuplicateRowError, r"rows 3, 9 repeat dyad=1, session=2, role='patient'"),
    Case("therapist changes", _set("therapist", [2, 3], "C"), E.TherapistChangeError,
         r"column 'therapist' changes within dyad 1 \('A', 'C'; rows 1, 3\)"),
    Case("non-numeric rating", _set("alliance", [4], "high"), E.NonNumericError,
         r"column 'alliance' holds the non-numeric value 'high' \(row 5\)",
         predictor="alliance"),
    Case("infinite rating", _set("alliance", [5], np.inf), E.NonFiniteError,
         r"column 'alliance' holds inf \(row 6\)", predictor="alliance"),
    Case("fractional session", _set("session", [3], 2.5), E.SessionNotIntegerError,
         r"session column 'session' holds 2.5 \(row 4\); session numbers must be whole"),
    Case("text session", _set("session", [0], "first"), E.SessionNotIntegerError,
         r"session column 'session' holds 'first' \(row 1\)"),
    Case("missing dyad id", _set("dyad", [6], np.nan), E.MissingKeyError,
         r"identifying column 'dyad' is empty in row 7"),
    Case("header only", "dyad,session,role,therapist,alliance\n", E.EmptyDataError,
         r"holds no data rows"),
    Case("empty file", "", E.EmptyDataError, r"holds no data rows"),
    Case("constant predictor", good().assign(alliance=4.0), E.ConstantVariableError,
         r"predictor 'alliance' is constant for role 'patient' \(every non-missing value "
         r"is 4.0\)", predictor="alliance"),
    Case("all-missing predictor", _set("alliance", [0, 2, 4, 6], np.nan), E.AllMissingError,
         r"column 'alliance' is missing in every row for role 'patient'",
         predictor="alliance"),
    Case("unknown file type", good(), E.UnsupportedFileError,
         r"unknown file type '.json'", suffix=".json"),
    Case("file does not exist", None, E.UnsupportedFileError, r"does not exist"),
    Case("reserved name", good().assign(row=1), E.SpecError,
         r"column 'row' clashes with a name apim reserves"),
    Case("inconsistent pairwise",
         pd.DataFrame({"dyad": [1, 1, 2, 2], "session": 1, "role": ["p", "t"] * 2,
                       "x_A": [1.0, 2, 3, 4], "x_P": [2.0, 1, 4, 9]}),
         E.PartnerMismatchError,
         r"partner column 'x_P' holds 9.0 but the partner's own row holds 3.0 \(row 4\)",
         layout="pairwise"),
]


def _write(case: Case, tmp_path: Path) -> Path:
    path = tmp_path / f"data{case.suffix}"
    if isinstance(case.frame, pd.DataFrame):
        case.frame.to_csv(path, index=False)
    elif isinstance(case.frame, str):
        path.write_text(case.frame)
    return path


def _api(case: Case, path: Path) -> None:
    kwargs = {"dyad": "dyad", "session": "session", "role": "role", "therapist": "therapist"}
    if case.layout == "pairwise":
        kwargs.pop("therapist")
    kwargs.update(case.options)
    reader = SessionData.from_pairwise if case.layout == "pairwise" else SessionData.from_long
    data = reader(path, **kwargs)
    if case.predictor:
        decompose(data, [case.predictor])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_api_error(case, tmp_path):
    path = _write(case, tmp_path)
    with pytest.raises(case.error, match=case.message):
        _api(case, path)
    assert issubclass(case.error, ValueError)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cli_error(case, tmp_path, capsys):
    path = _write(case, tmp_path)
    argv = ["describe", str(path), "--layout", case.layout]
    columns = {"dyad": "dyad", "session": "session", "role": "role", "therapist": "therapist"}
    if case.layout == "pairwise":
        columns.pop("therapist")
    columns.update({k: v for k, v in case.options.items() if k != "roles"})
    for option, column in columns.items():
        argv += [f"--{option}", column]
    if "roles" in case.options:
        argv += ["--roles", ",".join(case.options["roles"])]
    if case.predictor:
        argv += ["--predictor", case.predictor]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("apim: error: ")
    assert pytest.importorskip("re").search(case.message, lines[0])


def test_rank_deficient_message():
    error = E.RankDeficientError(["patient_x2"])
    assert isinstance(error, ValueError)
    assert "column(s) 'patient_x2' are linear combinations" in str(error)


def test_good_data_passes_cli(tmp_path, capsys):
    path = tmp_path / "ok.csv"
    good().to_csv(path, index=False)
    assert main(["describe", str(path), "--dyad", "dyad", "--session", "session",
                 "--role", "role", "--therapist", "therapist", "--predictor", "alliance"]) == 0
    out = capsys.readouterr().out
    assert "dyads                2" in out and "therapists           2" in out


def test_demo_runs(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "dyads                240" in out
    assert "Fixed effects" in out and "Wald test of patient.actor.within" in out
