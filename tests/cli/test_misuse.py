"""Awkward real-world files and option misuse, through the command line (issue 10).

Every case asserts the exit code, the number of lines on stderr, that no traceback was
printed and the specific words of the message; valid-but-awkward files must fit, with every
row accounted for (rows in = rows used + rows reported dropped).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apim import APIMSpec, SessionData, load_alliance
from apim import errors as E
from apim.cli import main

MAP = ["--dyad", "dyad", "--session", "session", "--role", "role"]
MODEL = ["--outcome", "outcome", "--predictor", "alliance"]


def base() -> pd.DataFrame:
    """40 dyads of the bundled data (long), with missing ratings."""
    long = load_alliance().to_long()
    long = long.assign(treatment=long["treatment"].astype(str))
    return long[long["dyad"] <= 40].reset_index(drop=True)


def small() -> pd.DataFrame:
    """12 dyads x 6 sessions, for cases that edit ids."""
    long = base()
    return long[(long["dyad"] <= 12) & (long["session"] <= 6)].reset_index(drop=True)


# ------------------------------------------------------------------ file writers
def csv(frame: pd.DataFrame, **kw) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        path = folder / kw.pop("name", "data.csv")
        frame.to_csv(path, index=False, **kw)
        return path
    return write


def text(content: str | bytes, name: str = "data.csv") -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path
    return write


def transformed(fn: Callable[[str], str | bytes],
                name: str = "data.csv") -> Callable[[Path], Path]:
    """The base CSV's text, changed by ``fn``."""
    def write(folder: Path) -> Path:
        path = folder / name
        content = fn(base().to_csv(index=False))
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path
    return write


def excel(sheets: dict[str, pd.DataFrame], name: str = "data.xlsx") -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        path = folder / name
        with pd.ExcelWriter(path) as writer:
            for sheet, frame in sheets.items():
                frame.to_excel(writer, sheet_name=sheet, index=False)
        return path
    return write


def sav(frame: pd.DataFrame, **meta) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        import pyreadstat

        path = folder / "data.sav"
        pyreadstat.write_sav(frame, str(path), **meta)
        return path
    return write


def dta(frame: pd.DataFrame, **meta) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        import pyreadstat

        path = folder / "data.dta"
        pyreadstat.write_dta(frame, str(path), **meta)
        return path
    return write


def parquet(frame: pd.DataFrame) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        path = folder / "data.parquet"
        frame.to_parquet(path, index=False)
        return path
    return write


def with_values(frame: pd.DataFrame, column: str, rows: list[int], value) -> pd.DataFrame:
    text = isinstance(value, str) or isinstance(frame[column].dtype, pd.CategoricalDtype)
    out = frame.astype({column: object if text else float})
    out.loc[rows, column] = value
    return out


def wide(frame: pd.DataFrame) -> pd.DataFrame:
    data = SessionData.from_long(frame, dyad="dyad", session="session", role="role",
                                 therapist="therapist")
    return data.to_wide()


def stat_frame() -> pd.DataFrame:
    """Numeric role codes and Likert-like ratings, as a questionnaire export holds them."""
    frame = base().drop(columns=["therapist", "treatment"])
    frame["role"] = frame["role"].map({"patient": 1, "therapist": 2})
    frame["alliance"] = frame["alliance"].round()
    frame["outcome"] = frame["outcome"].round()
    return frame


LIKERT = {float(k): ("no conflict" if k == 1 else "a lot" if k == 7 else str(k))
          for k in range(1, 8)}


# ------------------------------------------------------------------ cases
@dataclass(frozen=True)
class Case:
    name: str
    write: Callable[[Path], Path] | None
    args: tuple[str, ...]
    code: int
    words: tuple[str, ...] = ()
    stderr_lines: int | None = None  # default: 1 for errors, 0 for successes
    command: str = "fit"
    rows_in: int | None = None  # long rows the data holds (successful fits)


def ok(name, write, args=(), words=(), warnings=0, rows_in=None, command="fit"):
    return Case(name, write, tuple(args), 0, tuple(words), warnings, command, rows_in)


def fail(name, write, args=(), words=(), command="fit", code=2):
    return Case(name, write, tuple(args), code, tuple(words), 1, command)


N = len(base())
S = len(small())
FIT = (*MAP, *MODEL)


def _latin1(t: str) -> bytes:
    return t.replace("CBT", "Thérapie").encode("latin-1")


def _utf16_tabs(t: str) -> bytes:
    return t.replace(",", "\t").encode("utf-16")


def _semicolon_commas(t: str) -> str:
    return base().to_csv(index=False, sep=";", decimal=",")


def _no_header_trailing(t: str) -> str:
    lines = t.splitlines()
    return "\n".join([lines[0]] + [line + "," for line in lines[1:]]) + "\n"


def _duplicate_column(t: str) -> str:
    lines = t.splitlines()
    return "\n".join([lines[0] + ",alliance"] + [line + ",1" for line in lines[1:]]) + "\n"


def _nfd_column(t: str) -> str:
    lines = t.splitlines()
    first, second = unicodedata.normalize("NFC", "é"), unicodedata.normalize("NFD", "é")
    return "\n".join([lines[0] + f",r{first}ponse,r{second}ponse"]
                     + [line + ",1,2" for line in lines[1:]]) + "\n"


def _na_words(t: str) -> str:
    return t.replace(",,", ",NA,", 40).replace(",,", ",N/A,", 40)


def _ids_110() -> pd.DataFrame:
    frame = small().copy()
    frame["dyad"] = frame["dyad"].map(lambda d: f"1.{d}" if d != 10 else "1.10")
    return frame


def _case_ids() -> pd.DataFrame:
    frame = small().copy()
    frame["dyad"] = "D" + frame["dyad"].astype(str)
    frame.loc[frame["dyad"] == "D3", "dyad"] = "d3 "
    frame.loc[frame["dyad"] == "D4", "dyad"] = "D3"
    return frame


def _dates() -> pd.DataFrame:
    frame = small().copy()
    start = pd.Timestamp("2023-01-02") + pd.to_timedelta(frame["dyad"] * 3, unit="D")
    frame["session"] = (start + pd.to_timedelta(frame["session"] * 7, unit="D")).dt.strftime(
        "%Y-%m-%d")
    return frame


def _excel_dates() -> pd.DataFrame:
    frame = _dates()
    frame["session"] = pd.to_datetime(frame["session"])
    return frame


def _therapist_na() -> pd.DataFrame:
    frame = small().copy()
    frame["therapist"] = frame["therapist"].map(lambda t: "NA" if t == 1 else f"T{t}")
    return frame


def _arm_none() -> pd.DataFrame:
    frame = base().copy()
    frame["treatment"] = np.where(frame["dyad"] % 2 == 0, "None", "AFT")
    return frame


def _moderator_changes() -> pd.DataFrame:
    frame = small().copy()
    frame.loc[(frame["dyad"] == 2) & (frame["session"] >= 4), "treatment"] = "other"
    frame.loc[frame["dyad"] >= 8, "treatment"] = "AFT"
    return frame


def _user_missing_sav(folder: Path) -> Path:
    import pyreadstat

    frame = stat_frame()
    frame.loc[[0, 5, 9], "outcome"] = 99.0
    path = folder / "data.sav"
    pyreadstat.write_sav(frame, str(path), missing_ranges={"outcome": [99.0]},
                         variable_value_labels={"role": {1: "patient", 2: "therapist"},
                                                "outcome": LIKERT})
    return path


def _stata_extended(folder: Path) -> Path:
    import pyreadstat

    frame = stat_frame().astype({"outcome": object})
    frame.loc[[0, 5, 9], "outcome"] = "a"
    path = folder / "data.dta"
    pyreadstat.write_dta(frame, str(path), missing_user_values={"outcome": ["a"]})
    return path


def _excel_csv_inside(folder: Path) -> Path:
    path = folder / "data.xlsx"
    path.write_text(base().to_csv(index=False))
    return path


def _xlsx_as_csv(folder: Path) -> Path:
    path = folder / "data.xlsx"
    base().to_excel(path, index=False)
    target = folder / "data.csv"
    path.rename(target)
    return target


def _folder(folder: Path) -> Path:
    path = folder / "adir.csv"
    path.mkdir()
    return path


def _wide_text_value(folder: Path) -> Path:
    frame = wide(small())
    frame = frame.astype({"patient_alliance": object})
    frame.loc[2, "patient_alliance"] = "high"  # data row 3 of the file (long rows 5, 6)
    path = folder / "wide.csv"
    frame.to_csv(path, index=False)
    return path


def _wide_duplicate(folder: Path) -> Path:
    frame = wide(small())
    frame = pd.concat([frame, frame.iloc[[4]]], ignore_index=True)  # file rows 5 and 73
    path = folder / "wide.csv"
    frame.to_csv(path, index=False)
    return path


def _wide_ok(folder: Path) -> Path:
    path = folder / "wide.csv"
    wide(base()).to_csv(path, index=False)
    return path


def _pairwise_ok(folder: Path) -> Path:
    data = SessionData.from_long(base(), dyad="dyad", session="session", role="role")
    path = folder / "pair.csv"
    data.to_pairwise(variables=["alliance", "outcome"]).to_csv(path, index=False)
    return path


WIDE = ("--dyad", "dyad", "--session", "session", "--layout", "wide",
        "--roles", "patient,therapist", "--therapist", "therapist")
WIDE_N = 2 * len(wide(base()))

CASES = [
    # encodings
    ok("utf-8 with BOM", transformed(lambda t: "\ufeff" + t), FIT, rows_in=N),
    fail("latin-1 refused", transformed(_latin1), FIT,
         ("is not UTF-8", "byte 0xe9", "--encoding cp1252")),
    ok("latin-1 declared", transformed(_latin1), (*FIT, "--encoding", "cp1252"), rows_in=N),
    fail("unknown encoding", transformed(_latin1), (*FIT, "--encoding", "klingon"),
         ("encoding 'klingon' is not known",)),
    ok("utf-16 tab text", transformed(_utf16_tabs, "data.txt"), FIT, rows_in=N),
    # delimiters, decimal commas, trailing delimiters
    ok("semicolons and decimal commas", transformed(_semicolon_commas), FIT, rows_in=N),
    ok("semicolons declared", transformed(_semicolon_commas),
       (*FIT, "--sep", ";", "--decimal", ","), rows_in=N),
    ok("tab-separated txt", transformed(lambda t: t.replace(",", "\t"), "data.txt"), FIT,
       rows_in=N),
    ok("tsv", transformed(lambda t: t.replace(",", "\t"), "data.tsv"), FIT, rows_in=N),
    ok("trailing delimiters", transformed(
        lambda t: "\n".join(line + "," for line in t.splitlines()) + "\n"), FIT, rows_in=N),
    ok("trailing delimiters, header without", transformed(_no_header_trailing), FIT,
       rows_in=N),
    ok("windows line ends", transformed(lambda t: t.replace("\n", "\r\n")), FIT, rows_in=N),
    fail("wrong delimiter given", transformed(lambda t: t), (*FIT, "--sep", ";"),
         ("read as a single column", "--sep ,")),
    fail("decimal equals delimiter", transformed(lambda t: t), (*FIT, "--decimal", ","),
         ("cannot also be the delimiter", "--sep ;")),
    ok("NA words in ratings", transformed(_na_words), FIT, rows_in=N),
    ok("blank-space cells", transformed(lambda t: t.replace(",,", ", ,", 30)), FIT,
       rows_in=N),
    # wrong-type and corrupt files
    fail("corrupt xlsx", text(b"PK\x03\x04 not really a zip", "data.xlsx"), FIT,
         ("is not a readable Excel workbook",)),
    fail("csv saved as xlsx", _excel_csv_inside, FIT, ("is not a readable Excel workbook",)),
    fail("xlsx saved as csv", _xlsx_as_csv, FIT, ("is not a text file", "binary data")),
    fail("corrupt parquet", text(b"PAR1 garbage garbage", "data.parquet"), FIT,
         ("is not a readable Parquet file",)),
    fail("corrupt sav", text(b"$FL2 garbage", "data.sav"), FIT,
         ("is not a readable SPSS file",)),
    fail("corrupt dta", text(b"<stata_dta> garbage", "data.dta"), FIT,
         ("is not a readable Stata file",)),
    fail("empty xlsx file", text(b"", "data.xlsx"), FIT, ("holds no data rows",)),
    fail("unknown suffix", text("{}", "data.json"), FIT, ("unknown file type '.json'",)),
    fail("no such file", None, FIT, ("does not exist",)),
    fail("a folder", _folder, FIT, ("is a folder",)),
    fail("empty csv", text(""), FIT, ("holds no data rows",)),
    fail("whitespace only", text("  \n\n \n"), FIT, ("holds no data rows",)),
    fail("header only", text("dyad,session,role,alliance,outcome\n"), FIT,
         ("holds no data rows",)),
    # Excel sheets
    fail("missing sheet", excel({"first": base()}), (*FIT, "--sheet", "alliance"),
         ("has no sheet 'alliance'", "'first'", "--sheet")),
    fail("sheet out of range", excel({"first": base()}), (*FIT, "--sheet", "3"),
         ("has no sheet 3",)),
    ok("second sheet by name", excel({"notes": pd.DataFrame({"a": [1]}), "data": base()}),
       (*FIT, "--sheet", "data"), rows_in=N),
    ok("second sheet by position", excel({"notes": pd.DataFrame({"a": [1]}),
                                          "data": base()}), (*FIT, "--sheet", "1"),
       rows_in=N),
    ok("excel with therapist NA", excel({"data": _therapist_na()}),
       (*FIT, "--therapist", "therapist"), rows_in=S, warnings=1),
    ok("excel date sessions", excel({"data": _excel_dates()}), FIT, rows_in=S, warnings=2),
    # column names
    fail("duplicated column", transformed(_duplicate_column), FIT,
         ("two columns named 'alliance' and 'alliance'", "rename one")),
    fail("unicode-normalisation twins", transformed(_nfd_column),
         (*FIT, "--covariate", unicodedata.normalize("NFC", "réponse")),
         ("two columns named", "Unicode normalisation")),
    ok("unused duplicated column kept apart", transformed(_nfd_column), FIT,
       ("two columns named", "(column 8)", "(column 9)"), warnings=1, rows_in=N),
    fail("duplicated column in excel", excel({"d": base().assign(x=1).rename(
        columns={"x": "outcome "})}), FIT, ("two columns named 'outcome' and 'outcome '",)),
    fail("misspelt column", csv(base()), (*MAP, "--outcome", "outcom", "--predictor",
                                          "alliance"), ("'outcom'", "did you mean 'outcome'")),
    # identifiers as text
    ok("ids 1.10 and 1.1 distinct", csv(_ids_110()), FIT, rows_in=S, warnings=1),
    ok("control arm None", csv(_arm_none()), (*FIT, "--moderator", "treatment"), rows_in=N),
    ok("therapist initials NA", csv(_therapist_na()), (*FIT, "--therapist", "therapist"),
       rows_in=S, warnings=1),
    ok("leading-zero dyad ids", csv(small().assign(dyad=lambda f: f["dyad"].map("{:03d}".format))),
       FIT, rows_in=S, warnings=1),
    fail("empty dyad id", csv(with_values(base(), "dyad", [6], np.nan)), FIT,
         ("identifying column 'dyad' is empty in row 7",)),
    # SPSS and Stata
    ok("spss labelled likert", sav(stat_frame(), variable_value_labels={
        "role": {1: "patient", 2: "therapist"}, "alliance": LIKERT, "outcome": LIKERT}),
       (*FIT, "--roles", "patient,therapist"), rows_in=N),
    ok("stata labelled likert", dta(stat_frame(), variable_value_labels={
        "role": {1: "patient", 2: "therapist"}, "alliance": LIKERT}),
       (*FIT, "--roles", "patient,therapist"), rows_in=N),
    ok("spss user-missing", _user_missing_sav, (*FIT, "--roles", "patient,therapist"),
       rows_in=N),
    ok("stata extended missing", _stata_extended, (*FIT, "--roles", "1,2"), rows_in=N),
    fail("spss role codes without labels", sav(stat_frame()),
         (*FIT, "--roles", "patient,therapist"), ("holds role '1'", "not one of roles")),
    ok("parquet", parquet(base()), FIT, rows_in=N),
    # suspicious values and missing codes
    ok("-99 outcome warns", csv(with_values(base(), "outcome", [0, 1, 2, 3, 4, 5], -99.0)),
       FIT, ("column 'outcome' holds -99", "rows 1, 2, 3, 4, 5", "--missing -99"),
       warnings=1, rows_in=N),
    ok("999 alliance warns", csv(with_values(base(), "alliance", [10, 20, 30], 999.0)), FIT,
       ("column 'alliance' holds 999", "rows 11, 21, 31", "person means of 'alliance' are "
        "unreliable"), warnings=2, rows_in=N),  # 999s inflate the within variance
    ok("--missing declared", csv(with_values(base(), "outcome", [0, 1, 2], -99.0)),
       (*FIT, "--missing", "-99,999"), rows_in=N),
    fail("--missing not numbers", csv(base()), (*FIT, "--missing", "-99,none"),
         ("'none' is not a number",)),
    # sessions
    ok("ISO date sessions", csv(_dates()), FIT, rows_in=S, warnings=2),
    ok("sessions written 1.0", transformed(lambda t: t), FIT, rows_in=N),
    fail("text sessions", csv(with_values(base(), "session", [3], "week 2")), FIT,
         ("session column 'session' holds 'week 2'", "row 4")),
    fail("fractional sessions", csv(with_values(base(), "session", [8], 2.5)), FIT,
         ("session column 'session' holds 2.5", "row 9")),
    fail("malformed dates", csv(with_values(_dates(), "session", [2], "2023-02-31")), FIT,
         ("session column 'session' holds '2023-02-31'", "row 3")),
    # ids, therapist, design checks
    ok("dyad ids differing in case and spaces", csv(_case_ids()), FIT,
       ("ids 'd3 ', 'D3'", "differ only in case or surrounding spaces"), warnings=2,
       rows_in=S),
    ok("unmapped therapist column", csv(base()), FIT, rows_in=N),
    ok("unmapped therapist noted", csv(base()), MAP, ("map it with --therapist therapist",),
       command="describe"),
    fail("therapist level without therapist", csv(base()), (*FIT, "--therapist-level"),
         ("--therapist-level needs a therapist column", "--therapist COL")),
    fail("moderator changes within dyad", csv(_moderator_changes()),
         (*FIT, "--moderator", "treatment"),
         ("moderator 'treatment' changes within dyad 2", "--covariate treatment")),
    fail("lag leaves nothing", csv(small()), (*FIT, "--lag", "8"),
         ("lag=8 leaves nothing to fit",)),
    ok("few dyads", csv(small()), FIT, ("only 12 dyads",), warnings=1, rows_in=S),
    ok("more covariance parameters than dyads",
       csv(small()[small()["dyad"] <= 5]), (*FIT, "--random", "slopes"),
       ("covariance parameters", "only 5 dyads"), warnings=None,
       rows_in=int((small()["dyad"] <= 5).sum())),
    fail("constant outcome", csv(base().assign(outcome=4.0)), FIT,
         ("outcome 'outcome' is constant",)),
    ok("outcome on a 1e-12 scale (the engine standardises)",
       csv(base().assign(outcome=base()["outcome"] * 1e-12)), FIT, rows_in=N),
    fail("constant predictor", csv(base().assign(alliance=3.0)), FIT,
         ("predictor 'alliance' is constant",)),
    fail("infinite rating", csv(with_values(base(), "outcome", [7], np.inf)), FIT,
         ("column 'outcome' holds inf", "row 8")),
    fail("text rating", csv(with_values(base(), "outcome", [7], "high")), FIT,
         ("non-numeric value 'high'", "row 8")),
    # layouts: row numbers are the file's
    fail("wide text value", _wide_text_value, (*WIDE, *MODEL),
         ("'alliance'", "non-numeric value 'high'", "row 3")),
    fail("wide duplicate", _wide_duplicate, (*WIDE, *MODEL),
         (f"rows 5, {len(wide(small())) + 1} repeat dyad=1, session=5",)),
    ok("wide file", _wide_ok, (*WIDE, *MODEL), rows_in=WIDE_N),
    ok("pairwise file", _pairwise_ok, (*MAP, "--layout", "pairwise", *MODEL), rows_in=N),
    # option misuse
    fail("missing --dyad", csv(base()), ("--role", "role", *MODEL),
         ("required", "--dyad")),
    fail("unknown option", csv(base()), (*FIT, "--colour", "red"),
         ("unrecognized arguments: --colour red",)),
    fail("bad choice", csv(base()), (*FIT, "--method", "bayes"),
         ("invalid choice: 'bayes'",)),
    fail("lag not a number", csv(base()), (*FIT, "--lag", "two"),
         ("invalid int value: 'two'",)),
    fail("negative lag", csv(base()), (*FIT, "--lag", "-1"), ("lag=-1",)),
    fail("one role given", csv(base()), (*FIT, "--roles", "patient"),
         ("--roles 'patient' must name two distinct roles",)),
    fail("wide without roles", csv(base()), ("--dyad", "dyad", "--layout", "wide", *MODEL),
         ("--layout wide needs --roles",)),
    fail("pairwise without role", csv(base()),
         ("--dyad", "dyad", "--layout", "pairwise", *MODEL), ("needs --role COL",)),
    fail("outcome without predictor in describe", csv(base()), (*MAP, "--outcome", "outcome"),
         ("--outcome needs at least one --predictor",), command="describe"),
    fail("unwritable json", csv(base()), (*FIT, "--json", "/no/such/folder/out.json"),
         ("cannot use '/no/such/folder/out.json'",)),
    fail("no subcommand", None, (), ("required: command",), command=""),
]


def _argv(case: Case, folder: Path) -> list[str]:
    path = case.write(folder) if case.write is not None else folder / "missing.csv"
    if not case.command:
        return list(case.args)
    return [case.command, str(path), *case.args]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_misuse(case: Case, tmp_path: Path, capsys) -> None:
    argv = _argv(case, tmp_path)
    if case.code == 0 and case.command == "fit":
        argv += ["--format", "json"]
    code = main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == case.code, err
    assert "Traceback" not in err and "Traceback" not in out
    if case.stderr_lines is not None:
        assert len(lines) == case.stderr_lines, err
    prefix = "apim: error: " if case.code else "apim: warning: "
    assert all(line.startswith(prefix) for line in lines), err
    for words in case.words:
        assert words in (err if (case.code or case.command == "fit") else out), (words, err, out)
    if case.code == 0 and case.command == "fit":
        result = json.loads(out)
        dropped = sum(len(d["rows"]) for d in result["dropped"])
        assert result["converged"]
        assert case.rows_in == result["n_obs"] + dropped


def test_battery_size() -> None:
    assert len(CASES) >= 60


def test_bug_is_one_line_and_exit_1(tmp_path, capsys, monkeypatch) -> None:
    """An unexpected exception is reported as a bug, in one line, with exit code 1."""
    import apim.cli.fit as fit_command

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(fit_command, "fit", broken)
    path = csv(base())(tmp_path)
    assert main(["fit", str(path), *FIT]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "unexpected ZeroDivisionError" in err[0] and "bug" in err[0]
    assert "--debug" in err[0]
    assert main(["--debug", "fit", str(path), *FIT]) == 1
    assert "unexpected ZeroDivisionError" in capsys.readouterr().err.strip().splitlines()[-1]


# ------------------------------------------------------------------ the Python API
def test_python_hints_use_keywords(tmp_path) -> None:
    latin = transformed(_latin1)(tmp_path)
    with pytest.raises(E.DataError, match=r"encoding='cp1252'"):
        SessionData.from_long(latin, dyad="dyad", session="session", role="role")
    data = SessionData.from_long(latin, dyad="dyad", session="session", role="role",
                                 encoding="cp1252")
    assert "Thérapie" in set(data.frame["treatment"])
    assert any("therapist='therapist'" in n for n in data.notes)
    frame = with_values(base(), "outcome", [0, 1], -99.0)
    data = SessionData.from_long(frame, dyad="dyad", session="session", role="role")
    with pytest.warns(E.DataWarning, match=r"missing=\(-99,\)"):
        __import__("apim").fit(data, APIMSpec("outcome", ("alliance",)))


@pytest.mark.parametrize("writer, error", [
    (transformed(_duplicate_column), E.DataError),
    (text(b"PK\x03\x04 garbage", "data.xlsx"), E.UnsupportedFileError),
    (csv(with_values(base(), "session", [3], "week 2")), E.SessionNotIntegerError),
    (csv(_moderator_changes()), E.DataError),
])
def test_python_api_raises_the_typed_errors(writer, error, tmp_path) -> None:
    path = writer(tmp_path)
    with pytest.raises(error):
        data = SessionData.from_long(path, dyad="dyad", session="session", role="role")
        __import__("apim").fit(data, APIMSpec("outcome", ("alliance",),
                                              moderators=("treatment",)))


def test_missing_codes_in_python(tmp_path) -> None:
    frame = with_values(base(), "outcome", [0, 1, 2], -99.0)
    data = SessionData.from_long(frame, dyad="dyad", session="session", role="role",
                                 missing=(-99,))
    was_missing = base()["outcome"].isna().to_numpy()
    now_missing = data.frame.sort_values("row")["outcome"].isna().to_numpy()
    coded = np.zeros(len(was_missing), dtype=bool)
    coded[[0, 1, 2]] = True
    assert (now_missing == (was_missing | coded)).all()
    assert any("3 value(s) -99 declared missing" in n for n in data.report().notes)


def test_frame_cannot_be_changed_behind_a_fit() -> None:
    data = SessionData.from_long(base(), dyad="dyad", session="session", role="role")
    before = data.frame["alliance"].copy()
    view = data.frame
    view.loc[:, "alliance"] = 0.0
    view["new"] = 1
    pd.testing.assert_series_equal(data.frame["alliance"], before)
    assert "new" not in data.frame
    with pytest.raises(AttributeError):
        data.roles = ("a", "b")  # type: ignore[misc]


def test_identifiers_stay_text(tmp_path) -> None:
    data = SessionData.from_long(csv(_ids_110())(tmp_path), dyad="dyad", session="session",
                                 role="role")
    assert {"1.1", "1.10"} <= set(data.frame["dyad"])
    data = SessionData.from_long(csv(_arm_none())(tmp_path), dyad="dyad", session="session",
                                 role="role")
    assert "None" in set(data.frame["treatment"])
    data = SessionData.from_long(csv(_therapist_na())(tmp_path), dyad="dyad",
                                 session="session", role="role", therapist="therapist")
    assert "NA" in set(data.frame["therapist"])


def test_dates_become_session_order(tmp_path) -> None:
    data = SessionData.from_long(csv(_dates())(tmp_path), dyad="dyad", session="session",
                                 role="role")
    expected = small().sort_values(["dyad", "session"])
    assert sorted(data.frame["session"].unique()) == sorted(expected["session"].unique())
    assert any("holds dates" in n for n in data.notes)


# ------------------------------------------------------------------ SPSS / Stata = CSV
def _fit_file(path: Path, **kw):
    import apim

    data = SessionData.from_long(path, dyad="dyad", session="session", role="role", **kw)
    return apim.fit(data, APIMSpec("outcome", ("alliance",)))


@pytest.mark.parametrize("kind", ["sav", "dta"])
def test_labelled_likert_files_fit_like_the_csv(kind, tmp_path) -> None:
    frame = stat_frame()
    labels = {"role": {1: "patient", 2: "therapist"}, "alliance": LIKERT, "outcome": LIKERT}
    writer = sav(frame, variable_value_labels=labels) if kind == "sav" else \
        dta(frame, variable_value_labels=labels)
    path = writer(tmp_path)
    text_csv = tmp_path / "same.csv"
    frame.assign(role=frame["role"].map({1: "patient", 2: "therapist"})).to_csv(
        text_csv, index=False)
    a = _fit_file(path, roles=("patient", "therapist"))
    b = _fit_file(text_csv, roles=("patient", "therapist"))
    np.testing.assert_allclose(a.engine.coef, b.engine.coef, rtol=1e-10)
    assert a.engine.loglik == pytest.approx(b.engine.loglik, rel=1e-12)
    assert a.engine.n_obs == b.engine.n_obs


def test_user_missing_is_reported(tmp_path) -> None:
    data = SessionData.from_long(_user_missing_sav(tmp_path), dyad="dyad",
                                 session="session", role="role")
    report = data.report(["outcome"])
    assert any("3 value(s) declared missing in the SPSS file" in n for n in report.notes)
    assert data.frame["outcome"].max() <= 7


# ------------------------------------------------------------------ describe = fit
@pytest.mark.filterwarnings("ignore::apim.errors.ApimWarning")
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32 - 1), st.sampled_from(["long", "wide"]),
       st.floats(0.0, 0.3), st.floats(0.0, 0.3))
def test_describe_lists_the_rows_fit_drops(tmp_path_factory, capsys, seed, layout, p_absent,
                                           p_missing):
    """For the same variables, ``describe`` reports exactly the rows ``fit`` drops, with
    the same reasons and the file's row numbers, and rows in = used + dropped."""
    import apim

    rng = np.random.default_rng(seed)
    n_dyads, n_sessions = 8, 5
    grid = pd.MultiIndex.from_product([range(1, n_dyads + 1), range(1, n_sessions + 1),
                                       ["patient", "therapist"]],
                                      names=["dyad", "session", "role"]).to_frame(index=False)
    grid["alliance"] = rng.normal(5, 1, len(grid)).round(2)
    grid["outcome"] = rng.normal(4, 1, len(grid)).round(2)
    grid.loc[rng.random(len(grid)) < p_missing, "alliance"] = np.nan
    grid.loc[rng.random(len(grid)) < p_missing, "outcome"] = np.nan
    frame = grid[rng.random(len(grid)) >= p_absent].sample(frac=1.0, random_state=seed)
    folder = tmp_path_factory.mktemp("agree")
    path = folder / "data.csv"
    if layout == "wide":
        wide_frame = frame.pivot(index=["dyad", "session"], columns="role",
                                 values=["alliance", "outcome"])
        wide_frame.columns = [f"{r}_{v}" for v, r in wide_frame.columns]
        wide_frame.reset_index().sample(frac=1.0, random_state=seed).to_csv(path, index=False)
        options = ["--dyad", "dyad", "--session", "session", "--layout", "wide",
                   "--roles", "patient,therapist"]
        data_kw = {"roles": ("patient", "therapist")}
        reader = SessionData.from_wide
    else:
        frame.to_csv(path, index=False)
        options = list(MAP)
        data_kw = {"role": "role"}
        reader = SessionData.from_long
    code = main(["describe", str(path), *options, *MODEL, "--json"])
    out, err = capsys.readouterr()
    try:
        data = reader(path, dyad="dyad", session="session", **data_kw)
        result = apim.fit(data, APIMSpec("outcome", ("alliance",)))
    except (E.RankDeficientError, E.FitError):
        assert code == 0, err  # found by the estimation, which describe does not run
        return
    except E.ApimError as error:
        assert code == 2 and " ".join(str(error).split()) in err
        return
    assert code == 0, err
    described = {e["reason"]: e["rows"] for e in json.loads(out)["exclusions"]}
    dropped = {e.reason: list(e.rows) for e in result.design.dropped}
    assert described == dropped
    n_long = len(data.frame)
    assert n_long == result.engine.n_obs + sum(len(r) for r in dropped.values())
    if layout == "long":  # every file row is either used or dropped, once
        used = set(data.frame.loc[result.design.used, "row"])
        gone = [r for rows in dropped.values() for r in rows]
        assert sorted(used | set(gone)) == list(range(1, len(frame) + 1))
        assert not used & set(gone)


def test_session_data_pickles_for_parallel_workers() -> None:
    import copy
    import pickle

    data = SessionData.from_long(base(), dyad="dyad", session="session", role="role",
                                 missing=(-99,))
    for again in (pickle.loads(pickle.dumps(data)), copy.deepcopy(data)):
        pd.testing.assert_frame_equal(again.frame, data.frame)
        assert (again.roles, again.columns, again.notes) == (data.roles, data.columns,
                                                             data.notes)


def test_last_dyad_with_one_member_fits() -> None:
    """Found by the describe/fit property test: a last dyad whose used rows are all the
    reference member's crashed the starting values (bincount lengths)."""
    import apim

    frame = base()
    last = frame["dyad"] == frame["dyad"].max()
    frame.loc[last & (frame["role"] == "therapist"), "outcome"] = np.nan
    data = SessionData.from_long(frame, dyad="dyad", session="session", role="role")
    result = apim.fit(data, APIMSpec("outcome", ("alliance",)))
    assert result.engine.converged
