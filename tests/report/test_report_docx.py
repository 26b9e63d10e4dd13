"""Word output (issue 23, item 7): the APA tables read back with python-docx equal the
display tables cell by cell, with horizontal rules only, the spanner, the note; hostile
texts come back verbatim; outputs are never overwritten without --force."""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest

import apim
from apim.cli import main
from apim.errors import SpecError
from apim.report.docx import to_docx
from apim.report.docx_report import fit_report_docx
from apim.report.tables import Table, effects_table, variance_table

docx = pytest.importorskip("docx")
from docx.oxml.ns import qn  # noqa: E402

HOSTILE = ("<script>alert(1)</script>", "=1+1")


@pytest.fixture(scope="module")
def small() -> apim.SessionData:
    """The bundled data cut to 8 therapists and 8 sessions (fast fits)."""
    frame = apim.load_alliance().frame.drop(columns="row")
    arms = frame.groupby("treatment")["therapist"].unique()
    therapists = [t for arm in arms for t in sorted(arm)[:4]]
    frame = frame[frame["therapist"].isin(therapists) & (frame["session"] <= 8)]
    return apim.SessionData.from_long(frame, dyad="dyad", session="session", role="role",
                                      roles=("patient", "therapist"), therapist="therapist")


def _fits(data: apim.SessionData) -> dict[str, apim.model.fitted.FittedModel]:
    return {
        "observed": apim.fit(data, apim.APIMSpec("outcome", ("alliance",),
                                                 moderators=("treatment",))),
        "latent": apim.fit(data, apim.LatentAPIMSpec(outcome="outcome",
                                                     predictors=("alliance",),
                                                     moderator="treatment")),
        "formula": apim.fit(data, apim.FormulaSpec("outcome ~ alliance + alliance_partner")),
    }


@pytest.fixture(scope="module")
def fits(small):
    with _quiet():
        return _fits(small)


class _quiet:
    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        return self._catch.__exit__(*exc)


def _grid(word) -> list[list[str]]:
    """Cell texts per row, a merged (spanner) cell once per column it covers."""
    return [[cell.text for cell in row.cells] for row in word.rows]


def _expected(table: Table) -> list[list[str]]:
    columns = table.frame.columns
    if getattr(columns, "nlevels", 1) == 2:
        heads = [[c[0] if c[1] else "" for c in columns], [c[1] or c[0] for c in columns]]
    else:
        heads = [[str(c) for c in columns]]
    return heads + [[str(v) for v in row] for row in table.frame.itertuples(index=False)]


def _borders(element, tag: str) -> dict[str, str]:
    found = element.find(qn(tag))
    if found is None:
        return {}
    return {child.tag.split("}")[1]: child.get(qn("w:val")) for child in found}


def _check_apa(word, table: Table, paragraphs: list[str]) -> None:
    assert _grid(word) == _expected(table)
    table_borders = _borders(word._tbl.tblPr, "w:tblBorders")
    assert table_borders["top"] == table_borders["bottom"] == "single"
    for side in ("left", "right", "insideV", "insideH"):
        assert table_borders[side] == "nil", side
    for tc in word._tbl.iter(qn("w:tc")):  # no vertical rule on any cell
        cell_borders = _borders(tc.tcPr, "w:tcBorders") if tc.tcPr is not None else {}
        assert not {"left", "right", "start", "end"} & set(cell_borders)
    nhead = 2 if table.frame.columns.nlevels == 2 else 1
    for cell in word.rows[nhead - 1].cells:  # the rule below the heads
        assert _borders(cell._tc.tcPr, "w:tcBorders")["bottom"] == "single"
    note = f"Note. {table.header}. {' '.join(table.notes)}".replace(".. ", ". ")
    assert note in paragraphs


@pytest.mark.parametrize("kind", ["observed", "latent", "formula"])
def test_tables_read_back_equal_the_display_tables(kind, fits, tmp_path):
    result = fits[kind]
    path = tmp_path / "t.docx"
    to_docx(result, path)
    document = docx.Document(str(path))
    paragraphs = [p.text for p in document.paragraphs]
    assert len(document.tables) == 2
    assert paragraphs[:2] == ["Table 1", "Fixed effects"]
    assert "Table 2" in paragraphs and "Variance components" in paragraphs
    tables = (effects_table(result), variance_table(result, 3))
    for word, table in zip(document.tables, tables):
        _check_apa(word, table, paragraphs)
    # the spanner: one merged cell over LL and UL, with its own rule
    heads = document.tables[0].rows[0].cells
    assert heads[-1]._tc is heads[-2]._tc and heads[-1].text == "95% CI"
    assert _borders(heads[-1]._tc.tcPr, "w:tcBorders")["bottom"] == "single"
    assert heads[0].text == "" and document.tables[0].rows[1].cells[0].text == "Outcome"
    if kind == "latent":  # two arms, each effect once per arm
        effects = [row.cells[1].text for row in document.tables[0].rows[2:]]
        assert sum(e.endswith(" in CBT") for e in effects) == sum(
            e.endswith(" in AFT") for e in effects) > 0
        assert "z" in [c.text for c in document.tables[0].rows[1].cells]


def test_apa_formatting(fits, tmp_path):
    path = tmp_path / "t.docx"
    to_docx(fits["observed"], path)
    document = docx.Document(str(path))
    word = document.tables[0]
    title = document.paragraphs[1]
    assert title.runs[0].italic and document.paragraphs[0].runs[0].bold
    note = next(p for p in document.paragraphs if p.text.startswith("Note."))
    assert note.runs[0].text == "Note." and note.runs[0].italic
    body = word.rows[2].cells
    assert body[0].paragraphs[0].alignment == 0  # labels left
    assert all(c.paragraphs[0].alignment == 2 for c in body[2:])  # numbers right
    assert word.rows[1].cells[2].paragraphs[0].runs[0].italic  # b, SE, t, p in italics
    fonts = {r.font.name for row in word.rows for c in row.cells for p in c.paragraphs
             for r in p.runs}
    assert fonts == {"Times New Roman"}


def test_hostile_texts_come_back_verbatim(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({("Term", ""): list(HOSTILE), (HOSTILE[1], HOSTILE[0]): ["1", "2"],
                          (HOSTILE[1], "UL"): ["3", "a\x01b"]})
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    table = Table(HOSTILE[0], HOSTILE[1], frame, (HOSTILE[0],), left=1)
    from apim.report.docx import add_table, new_document

    document = new_document()
    add_table(document, table, 1)
    path = tmp_path / "h.docx"
    document.save(str(path))
    back = docx.Document(str(path))
    assert _grid(back.tables[0]) == [["", HOSTILE[1], HOSTILE[1]],
                                     ["Term", HOSTILE[0], "UL"],
                                     [HOSTILE[0], "1", "3"], [HOSTILE[1], "2", "a\ufffdb"]]
    texts = [p.text for p in back.paragraphs]
    assert HOSTILE[0] in texts and f"Note. {HOSTILE[1]}. {HOSTILE[0]}" in texts


def test_hostile_moderator_levels(small, tmp_path):
    frame = small.frame.drop(columns="row").copy()
    frame["treatment"] = frame["treatment"].map({"CBT": HOSTILE[1], "AFT": HOSTILE[0]})
    data = apim.SessionData.from_long(frame, dyad="dyad", session="session", role="role",
                                      roles=("patient", "therapist"))
    with _quiet():
        result = apim.fit(data, apim.APIMSpec("outcome", ("alliance",),
                                              moderators=("treatment",)))
    path = tmp_path / "m.docx"
    fit_report_docx(result, path)
    document = docx.Document(str(path))
    _check_apa(document.tables[1], effects_table(result), [p.text for p in
                                                          document.paragraphs])
    cells = {c.text for row in document.tables[1].rows for c in row.cells}
    assert any(HOSTILE[0] in c for c in cells)


def test_fit_report(fits, tmp_path):
    path = tmp_path / "r.docx"
    fit_report_docx(fits["observed"], path, warnings=["a warning"], title="My report")
    document = docx.Document(str(path))
    texts = [p.text for p in document.paragraphs]
    assert texts[0] == "My report" and fits["observed"].model_line() in texts
    assert [t for t, p in zip(texts, document.paragraphs) if p.style.name == "Heading 1"] == [
        "Model", "Data", "Tables", "Rows not used", "Warnings"]
    # facts, effects, variance components, dyadic patterns
    assert len(document.tables) == 4
    assert document.tables[0].cell(0, 0).text == "Source"
    assert document.tables[3].rows[0].cells[3].text == "k"
    assert texts[-1] == "a warning"


def test_missing_python_docx_is_one_clear_error(fits, tmp_path, monkeypatch):
    real = builtins.__import__

    def no_docx(name, *args, **kwargs):
        if name == "docx" or name.startswith("docx."):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_docx)
    with pytest.raises(SpecError, match=r"needs python-docx: pip install python-docx$"):
        to_docx(fits["formula"], tmp_path / "x.docx")
    assert not (tmp_path / "x.docx").exists()


# ------------------------------------------------------------------ CLI
COLUMNS = ["--dyad", "dyad", "--session", "session", "--role", "role", "--roles",
           "patient,therapist", "--therapist", "therapist"]


@pytest.fixture(scope="module")
def csv(small, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("docx") / "small.csv"
    small.frame.drop(columns="row").to_csv(path, index=False)
    return path


def test_cli_refuses_an_existing_docx_without_force(csv, tmp_path, capsys):
    target = tmp_path / "t.docx"
    target.write_bytes(b"keep")
    argv = ["fit", str(csv), *COLUMNS, "--formula", "outcome ~ alliance", "--docx",
            str(target)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--docx" in err and "--force" in err and target.read_bytes() == b"keep"
    assert main(["fit", str(csv), *COLUMNS, "--docx", str(csv), "--force",
                 "--formula", "outcome ~ alliance"]) == 2  # never the data
    capsys.readouterr()
    with _quiet():
        assert main([*argv, "--force"]) == 0
    assert len(docx.Document(str(target)).tables) == 2


def test_cli_report_writes_word(csv, tmp_path, capsys):
    target = tmp_path / "r.docx"
    with _quiet():
        code = main(["report", str(csv), *COLUMNS, "--outcome", "outcome", "--predictor",
                     "alliance", "--out", str(target)])
    assert code == 0, capsys.readouterr().err
    assert len(docx.Document(str(target)).tables) == 4
