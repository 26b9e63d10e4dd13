"""Issue 20, input side: careless and hostile inputs are read right or refused clearly.

Each case runs the command line in-process on files it writes into a fresh folder and
asserts the exit code; on a refusal exactly one ``apim: error:`` line naming the problem;
on success the warning or output that shows the data were read right; and that no input
file changed (SHA-256 of every file before and after).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import time
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import apim
from apim.cli import main
from apim.data import io
from apim.data import workbook as workbook_limits
from apim.data.io import read_utf8
from apim.data.spss import check_spss_names
from apim.errors import DataError

LONG = ("--dyad", "dyad", "--session", "session", "--role", "role")
DESCRIBE = ("describe", "{data}", *LONG)
FIT = ("fit", "{data}", *LONG, "--outcome", "y", "--predictor", "x")
QUALITY_NFD = unicodedata.normalize("NFD", "Qualität")
QUALITY_NFC = unicodedata.normalize("NFC", "Qualität")


# ---------------------------------------------------------------------------- data
def rows(n_dyads: int = 12, n_sessions: int = 4, seed: int = 1) -> pd.DataFrame:
    """Long data: dyad, session, role, x, y, treatment (a text variable)."""
    rng = np.random.default_rng(seed)
    grid = pd.MultiIndex.from_product(
        [range(1, n_dyads + 1), range(1, n_sessions + 1), ["P", "T"]],
        names=["dyad", "session", "role"]).to_frame(index=False)
    grid["x"] = rng.normal(4, 1, len(grid)).round(2)
    grid["y"] = (0.4 * grid["x"] + rng.normal(0, 1, len(grid))).round(2)
    grid["treatment"] = np.where(grid["dyad"] % 2 == 0, "CBT", "AFT")
    return grid


def csv_text(frame: pd.DataFrame, sep: str = ",") -> str:
    return frame.to_csv(index=False, sep=sep, lineterminator="\n")


def header_and_lines(extra: dict[int, str] | None = None, end: str = "") -> str:
    """A small CSV; ``extra`` adds a field to data lines (by 0-based data line)."""
    lines = csv_text(rows(4, 2)).splitlines()
    out = [lines[0]]
    for i, line in enumerate(lines[1:]):
        out.append(line + (f",{extra[i]}" if extra and i in extra else "") + end)
    return "\n".join(out) + "\n"


def shifted_all() -> str:
    """Every data line has one more field at the front: the columns shift right."""
    lines = csv_text(rows(4, 2)).splitlines()
    return "\n".join([lines[0], *[f"7,{line}" for line in lines[1:]]]) + "\n"


def one_session_x() -> str:
    """x rated at session 1 only (a baseline measure), y at every session."""
    frame = rows(12, 4)
    frame.loc[frame["session"] > 1, "x"] = np.nan
    return csv_text(frame)


def date_sessions() -> str:
    frame = rows(12, 4)
    start = pd.Timestamp("2024-01-08")
    frame["session"] = [(start + pd.Timedelta(days=7 * (s - 1) + d)).strftime("%Y-%m-%d")
                        for s, d in zip(frame["session"], frame["dyad"])]
    return csv_text(frame)


def big_session(value: str) -> str:
    frame = rows(4, 2).astype({"session": object})
    frame.loc[frame["session"] == 2, "session"] = value
    return csv_text(frame)


def wide_header(n: int) -> str:
    return ",".join(f"c{i}" for i in range(n)) + "\n" + ",".join("1" for _ in range(n)) + "\n"


def workbook(sheets: dict[str, pd.DataFrame]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with pd.ExcelWriter(path) as writer:
            for name, frame in sheets.items():
                frame.to_excel(writer, sheet_name=name, index=False)
    return write


def patched_sheet(xml: Callable[[], bytes]) -> Callable[[Path], None]:
    """A real workbook whose first worksheet part is replaced by ``xml()``."""
    def write(path: Path) -> None:
        plain = path.with_suffix(".plain.xlsx")
        workbook({"data": rows(2, 1)})(plain)
        with zipfile.ZipFile(plain) as src, \
                zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
            for item in src.infolist():
                data = xml() if item.filename == "xl/worksheets/sheet1.xml" \
                    else src.read(item.filename)
                dst.writestr(item.filename, data)
        plain.unlink()
    return write


SHEET_HEAD = (b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.'
              b'openxmlformats.org/spreadsheetml/2006/main">')


def declared(ref: str) -> bytes:
    """A sheet that declares ``ref`` as its extent but holds two rows."""
    return (SHEET_HEAD + f'<dimension ref="{ref}"/>'.encode() + b"<sheetData>"
            + b'<row r="1"><c r="A1" t="inlineStr"><is><t>dyad</t></is></c></row>'
            + b'<row r="2"><c r="A2"><v>1</v></c></row></sheetData></worksheet>')


def bomb() -> bytes:
    """One cell of 60 MB of the same letter: unpacks about 1,000 times."""
    return (SHEET_HEAD + b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>'
            + b"a" * (60 << 20) + b"</t></is></c></row></sheetData></worksheet>")


def many_rows() -> bytes:
    """More rows than the (patched) row limit and no dimension element."""
    body = b"".join(b'<row r="%d"><c r="A%d"><v>1</v></c></row>' % (i, i)
                    for i in range(1, 40))
    return SHEET_HEAD + b"<sheetData>" + body + b"</sheetData></worksheet>"


PLAN = '''[data.d]
file = "data.csv"
dyad = "dyad"
session = "session"
role = "role"
roles = ["P", "T"]
# Qualität der Allianz
[[analysis]]
id = {id}
outcome = "y"
predictors = ["x"]
{extra}'''


def plan(id_: str = '"main"', extra: str = "") -> str:
    return PLAN.format(id=id_, extra=extra)


# ---------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    """One command on files written into a fresh folder.

    ``files`` maps a file name to its text, bytes, or a function writing it; ``argv`` may
    use ``{data}`` and ``{folder}``; ``err`` fragments must all be in the one error line
    (exit 2), or in stderr's warnings (exit 0); ``out`` fragments in stdout.
    """

    name: str
    files: dict[str, object]
    argv: tuple[str, ...]
    code: int
    err: tuple[str, ...] = ()
    out: tuple[str, ...] = ()
    data: str = "data.csv"
    limit: dict[str, int] = field(default_factory=dict)


def refused(name: str, files: dict[str, object], argv: tuple[str, ...], *err: str,
            data: str = "data.csv", **limit: int) -> Case:
    return Case(name, files, argv, 2, err, data=data, limit=limit)


def read(name: str, files: dict[str, object], argv: tuple[str, ...], *,
         err: tuple[str, ...] = (), out: tuple[str, ...] = (), data: str = "data.csv") -> Case:
    return Case(name, files, argv, 0, err, out, data=data)


BASE = csv_text(rows())
NFD_DATA = BASE.replace("treatment", QUALITY_NFD, 1)
TWO_QUALITY = BASE.replace("treatment", QUALITY_NFD, 1).replace(
    "dyad,session,role,x,y", f"dyad,session,role,x,{QUALITY_NFC}", 1)
SHEETS_README = workbook({"Readme": pd.DataFrame({"About": ["alliance study"]}),
                          "data": rows(), "codes": pd.DataFrame({"code": [1, 2]})})
SHEETS_NONE = workbook({"Readme": pd.DataFrame({"About": ["alliance study"]}),
                        "codes": pd.DataFrame({"code": [1, 2]})})
BATCH = ("batch", "plan.toml", "--dry-run")

CASES = [
    # encodings of plans and data
    refused("plan in Latin-1", {"data.csv": BASE, "plan.toml": plan().encode("latin-1")},
            BATCH, "plan.toml is not UTF-8 (byte 0xE4 at position", "line 7",
            "save it as UTF-8"),
    read("plan in UTF-8 with BOM",
         {"data.csv": BASE, "plan.toml": codecs.BOM_UTF8 + plan().encode()}, BATCH,
         out=("main",)),
    refused("plan in UTF-16", {"data.csv": BASE, "plan.toml": plan().encode("utf-16")},
            BATCH, "plan.toml is UTF-16 text, not UTF-8: save it as UTF-8"),
    refused("plan in cp1252 with a curly quote",
            {"data.csv": BASE, "plan.toml": plan().replace("Qualität", "“Q”").encode("cp1252")},
            BATCH, "is not UTF-8 (byte 0x93"),
    refused("data in cp1252", {"data.csv": NFD_DATA.replace(QUALITY_NFD, "Qualität")
                               .encode("cp1252")}, DESCRIBE,
            "is not UTF-8 (byte 0xe4 on line 1)", "--encoding cp1252"),
    read("data in cp1252 with --encoding",
         {"data.csv": BASE.replace("treatment", "Qualität").encode("cp1252")},
         (*DESCRIBE, "--encoding", "cp1252", "--variable", "Qualität"),
         out=("levels of Qualität", "CBT 48")),
    read("data in UTF-8 with BOM", {"data.csv": codecs.BOM_UTF8 + BASE.encode()},
         (*DESCRIBE, "--variable", "x"), out=("dyads                12",)),
    # one more delimiter than the header
    refused("every data line has an extra field", {"data.csv": shifted_all()}, DESCRIBE,
            "lines 2, 3, 4, 5, 6 and 11 more have more fields than the header's 6",
            "columns would shift"),
    refused("one data line has an extra value",
            {"data.csv": header_and_lines({2: "9"})}, DESCRIBE,
            "line 4 has more fields than the header's 6", "remove the extra delimiter"),
    refused("extra values with a semicolon delimiter",
            {"data.csv": header_and_lines({0: "1", 5: "2"}).replace(",", ";")}, DESCRIBE,
            "lines 2 and 7 have more fields", "(delimiter ';')"),
    read("a trailing delimiter on every line is only an empty field",
         {"data.csv": header_and_lines(end=",")}, (*DESCRIBE, "--variable", "x"),
         out=("rows                 16",)),
    # Unicode normalisation of names
    read("NFD column, NFC name given",
         {"data.csv": NFD_DATA}, (*DESCRIBE, "--variable", QUALITY_NFC),
         out=(f"levels of {QUALITY_NFC}",)),
    read("NFD column, NFD name given",
         {"data.csv": NFD_DATA}, (*DESCRIBE, "--variable", QUALITY_NFD),
         out=("CBT 48",)),
    read("NFD column as a moderator in a fit",
         {"data.csv": NFD_DATA}, (*FIT, "--moderator", QUALITY_NFC),
         out=("moderator",)),
    refused("NFC and NFD twins", {"data.csv": TWO_QUALITY},
            (*FIT, "--moderator", QUALITY_NFC), "has two columns named",
            "differ only in Unicode normalisation"),
    # session numbers beyond what int64 / float can hold
    refused("session beyond int64", {"data.csv": big_session("99999999999999999999")},
            DESCRIBE, "holds 99999999999999999999 (rows", "beyond the largest session number"),
    refused("session int64 max + 1", {"data.csv": big_session("9223372036854775808")},
            DESCRIBE, "beyond the largest session number", "2^53"),
    refused("negative session beyond int64",
            {"data.csv": big_session("-99999999999999999999")}, DESCRIBE,
            "holds -99999999999999999999"),
    refused("session 1e20 as a number", {"data.csv": big_session("1e20")}, DESCRIBE,
            "beyond the largest session number"),
    # dates as sessions
    read("dates as sessions warn with the numbering rule", {"data.csv": date_sessions()},
         (*DESCRIBE, "--variable", "x"),
         err=("session column 'session' holds dates (2024-01-09 to",
              "the earliest date of a dyad is session 1",
              "a lag counts sessions held, not days")),
    # one rated session per person
    refused("within split of a baseline-only predictor", {"data.csv": one_session_x()},
            (*DESCRIBE, "--predictor", "x"),
            "predictor 'x' is rated at one session per person",
            "--center grand"),
    refused("describe of that model", {"data.csv": one_session_x()},
            (*DESCRIBE, "--outcome", "y", "--predictor", "x"),
            "no within-person variation"),
    refused("fit of a baseline-only predictor", {"data.csv": one_session_x()},
            (*FIT, "--center", "person"), "predictor 'x' is rated at one session per person"),
    refused("latent centring of a baseline-only predictor", {"data.csv": one_session_x()},
            (*FIT, "--centring", "latent"), "predictor 'x' is rated at one session per person",
            "(and latent centring) are not identified"),
    refused("rupture figure with an unknown suffix", {"data.csv": BASE},
            ("ruptures", "{data}", "--dyad", "dyad", "--session", "session", "--role", "role",
             "--variable", "x", "--episodes", "episodes.csv", "--figure", "f.xyz"),
            "--figure", ".xyz"),
    refused("person-mean split of one session per person",
            {"data.csv": csv_text(rows(40, 1))}, (*FIT, "--center", "person"),
            "every member has one observation"),
    # the session column as a covariate
    read("session column under its own name as a time trend",
         {"data.csv": BASE.replace("session", "week", 1)},
         ("fit", "{data}", "--dyad", "dyad", "--session", "week", "--role", "role",
          "--outcome", "y", "--predictor", "x", "--covariate", "week"),
         out=("covariate", "week")),
    # text variables in describe
    read("describe lists a text variable's levels", {"data.csv": BASE},
         (*DESCRIBE, "--variable", "treatment"), out=("levels of treatment", "AFT 48",
                                                      "CBT 48")),
    read("describe --json lists the levels", {"data.csv": BASE},
         (*DESCRIBE, "--variable", "treatment", "--variable", "x", "--json"),
         out=('"levels"', '"CBT": 48')),
    # workbooks
    refused("first sheet is not the data", {"data.xlsx": SHEETS_README}, DESCRIBE,
            "its first sheet 'Readme' has no column 'dyad'",
            "sheets are 'Readme', 'data', 'codes'", "--sheet data", data="data.xlsx"),
    refused("no sheet has the columns", {"data.xlsx": SHEETS_NONE}, DESCRIBE,
            "sheets are 'Readme', 'codes'", "no sheet has all of them", data="data.xlsx"),
    read("the data sheet chosen", {"data.xlsx": SHEETS_README},
         (*DESCRIBE, "--sheet", "data", "--variable", "x"), out=("dyads                12",),
         data="data.xlsx"),
    refused("sheet declares rows beyond Excel's limit",
            {"data.xlsx": patched_sheet(lambda: declared("A1:A2000000"))}, DESCRIBE,
            "sheet 'data' holds more than Excel's 1,048,576 rows", data="data.xlsx"),
    refused("sheet declares columns beyond Excel's limit",
            {"data.xlsx": patched_sheet(lambda: declared("A1:XFE2"))}, DESCRIBE,
            "sheet 'data' declares 16,385 columns", data="data.xlsx"),
    refused("rows counted beyond the limit without a dimension",
            {"data.xlsx": patched_sheet(many_rows)}, DESCRIBE,
            "holds more than Excel's 20 rows", data="data.xlsx", MAX_ROWS=20),
    refused("zip bomb", {"data.xlsx": patched_sheet(bomb)}, DESCRIBE,
            "unpacks its part 'xl/worksheets/sheet1.xml' from", "it is not read",
            data="data.xlsx"),
    # absurdly wide text files
    refused("a million header columns", {"data.csv": wide_header(1_000_000)}, DESCRIBE,
            "or more columns in its header line", "more than the 16,384"),
    refused("20,000 header columns", {"data.csv": wide_header(20_000)}, DESCRIBE,
            "has 20,000 columns in its header line"),
    # plans: subsets and ids
    refused("subset naming a missing column", {"data.csv": BASE,
                                               "plan.toml": plan(extra='subset = "arm == 1"')},
            BATCH, "subset 'arm == 1': no column 'arm'"),
    refused("subset that keeps no rows", {"data.csv": BASE,
                                          "plan.toml": plan(extra='subset = "x > 99"')},
            BATCH, "subset 'x > 99' keeps no rows"),
]


def _write(folder: Path, files: dict[str, object]) -> None:
    for name, content in files.items():
        path = folder / name
        if callable(content):
            content(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(str(content), encoding="utf-8")


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_case(case: Case, folder: Path, capsys, monkeypatch) -> tuple[int, str, str]:
    """Write the files, run the command in ``folder``; inputs must be unchanged after."""
    _write(folder, case.files)
    for name, value in case.limit.items():
        for module in (io, workbook_limits):  # a limit lives where it is checked
            if hasattr(module, name):
                monkeypatch.setattr(module, name, value)
    monkeypatch.chdir(folder)
    before = _hashes(folder)
    argv = [a.format(data=case.data, folder=folder) for a in case.argv]
    code = main(argv)
    out, err = capsys.readouterr()
    after = _hashes(folder)
    assert {k: after.get(k) for k in before} == before, "an input file changed"
    return code, out, err


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_input(case: Case, tmp_path: Path, capsys, monkeypatch) -> None:
    started = time.perf_counter()
    code, out, err = run_case(case, tmp_path, capsys, monkeypatch)
    assert code == case.code, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    if case.code:
        assert len(lines) == 1 and lines[0].startswith("apim: error: "), err
    else:
        assert all(line.startswith("apim: warning: ") for line in lines), err
    for fragment in case.err:
        assert fragment in err, (fragment, err)
    for fragment in case.out:
        assert fragment in out, (fragment, out)
    assert time.perf_counter() - started < 30, "refused too slowly"


# ---------------------------------------------------------------------------- stored results
def test_corrupt_stored_analysis_is_refitted(tmp_path: Path, capsys, monkeypatch) -> None:
    files = {"data.csv": BASE, "plan.toml": plan()}
    run = Case("first run", files, ("batch", "plan.toml", "--out", "out", "--quiet"), 0)
    assert run_case(run, tmp_path, capsys, monkeypatch)[0] == 0
    stored = tmp_path / "out" / "analyses" / "main.json"
    first = json.loads(stored.read_text())
    key = first["key"]
    for corrupt in ([1, 2, 3], "main", {"key": key, "status": "ok", "result": [1]},
                    {"key": key, "status": "ok", "result": {}}):
        stored.write_text(json.dumps(corrupt))
        code = main(["batch", "plan.toml", "--out", "out", "--quiet"])
        err = capsys.readouterr().err
        assert code == 0, err
        again = json.loads(stored.read_text())
        assert again["status"] == "ok"
        assert [r["estimate"] for r in again["result"]["fixed"]] == pytest.approx(
            [r["estimate"] for r in first["result"]["fixed"]], rel=1e-9)
    assert (tmp_path / "data.csv").read_text() == BASE


# ---------------------------------------------------------------------------- plan ids
@pytest.mark.parametrize("id_", ['"main\\n"', '"' + "a" * 300 + '"'],
                         ids=["trailing newline", "300 characters"])
def test_plan_ids_refused_before_any_fit(id_: str, tmp_path: Path, capsys, monkeypatch):
    case = refused("id", {"data.csv": BASE, "plan.toml": plan(id_)}, BATCH, "id")
    code, _, err = run_case(case, tmp_path, capsys, monkeypatch)
    assert code == 2 and err.count("\n") == 1 and "apim: error:" in err and " id " in err


# ---------------------------------------------------------------------------- library level
@pytest.mark.parametrize("name, problem", [
    ("my score", "it holds a space"), ("1st", "begins with '1', not a letter"),
    ("_x", "begins with '_'"), ("=1+1", "begins with '='"), ("a-b", "it holds '-'"),
    ("x.", "ends with a period"), ("BY", "reserved word"), ("with", "reserved word"),
    ("x" * 65, "65 bytes long"), ("ä" * 33, "66 bytes long"), ("", "it is empty"),
])
def test_spss_names_refused(name: str, problem: str) -> None:
    with pytest.raises(DataError, match="is not a valid SPSS variable name") as caught:
        check_spss_names(["dyad", name], "out.sav")
    assert problem in str(caught.value) and "rename the column" in str(caught.value)


def test_spss_names_accepted_and_case_twins_refused() -> None:
    check_spss_names(["dyad", "alliance.t1", "Qualität", "x_1", "a$", "b#", "c@", "x" * 64],
                     "out.sav")
    with pytest.raises(DataError, match="does not tell it from 'Alliance'"):
        check_spss_names(["Alliance", "alliance"], "out.sav")


def test_convert_to_sav_refuses_a_bad_name_up_front(tmp_path: Path, capsys, monkeypatch):
    case = refused("sav", {"data.csv": BASE.replace("treatment", "my arm")},
                   ("convert", "data.csv", "out.sav", *LONG), "is not a valid SPSS")
    code, _, err = run_case(case, tmp_path, capsys, monkeypatch)
    assert code == 2 and err.count("\n") == 1 and "'my arm'" in err
    assert not (tmp_path / "out.sav").exists()


def test_read_utf8_accepts_a_bom_and_names_other_encodings(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_bytes(codecs.BOM_UTF8 + "name = 'Qualität'\n".encode())
    assert read_utf8(path) == "name = 'Qualität'\n"
    path.write_bytes("a = 1\nname = 'Qualität'\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"not UTF-8 \(byte 0xE4 at position 20, line 2\)"):
        read_utf8(path)


def test_nfc_names_from_every_reader(tmp_path: Path) -> None:
    frame = rows(2, 1).rename(columns={"treatment": QUALITY_NFD})
    for suffix in (".csv", ".xlsx", ".parquet", ".dta"):
        path = tmp_path / f"d{suffix}"
        if suffix == ".csv":
            frame.to_csv(path, index=False)
        elif suffix == ".xlsx":
            frame.to_excel(path, index=False)
        elif suffix == ".parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.rename(columns={QUALITY_NFD: "arm"}).to_stata(path, write_index=False)
            continue
        names = io.read_table(path, columns=[QUALITY_NFC], identifiers=["dyad"]).columns
        assert QUALITY_NFC in names and QUALITY_NFD not in names, (suffix, list(names))


def test_one_session_check_passes_when_some_persons_have_two() -> None:
    from apim.data.validate import within_variation

    frame = pd.DataFrame({"dyad": [1, 1, 1, 2, 2], "role": ["P", "P", "T", "P", "T"],
                          "session": [1, 2, 1, 1, 1]})
    within_variation(frame, pd.Series([1.0, 2.0, 3.0, 4.0, 5.0]), "x")
    with pytest.raises(DataError, match="outcome 'y' is rated at one session per person"):
        within_variation(frame, pd.Series([1.0, np.nan, 3.0, 4.0, 5.0]), "y", "outcome")


def test_bundled_data_still_reads_the_same() -> None:
    data = apim.load_alliance() if hasattr(apim, "load_alliance") else \
        apim.datasets.load_alliance()
    assert data.n_dyads == 240 and len(data.frame) == 10616


@pytest.mark.parametrize("suffix", [".sav", ".dta"])
def test_a_text_column_of_single_letters_stays_text(suffix: str, tmp_path: Path) -> None:
    """Letters in a text column are values, not Stata's extended missing codes (.a-.z)."""
    import pyreadstat

    path = tmp_path / f"d{suffix}"
    frame = pd.DataFrame({"dyad": [1, 1], "arm": ["a", "b"], "x": [1.5, 2.5]})
    (pyreadstat.write_sav if suffix == ".sav" else pyreadstat.write_dta)(frame, str(path))
    assert io.read_table(path)["arm"].tolist() == ["a", "b"]


@pytest.mark.parametrize("suffix", [".parquet", ".dta"])
def test_binary_files_wider_than_a_spreadsheet_refused_unread(suffix: str, tmp_path: Path,
                                                              monkeypatch) -> None:
    path = tmp_path / f"wide{suffix}"
    frame = pd.DataFrame(np.ones((2, 30)), columns=[f"c{i}" for i in range(30)])
    if suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_stata(path, write_index=False)
    monkeypatch.setattr(io, "MAX_COLUMNS", 20)
    with pytest.raises(DataError, match="has 30 columns, more than the 20 a spreadsheet"):
        io.read_table(path)
