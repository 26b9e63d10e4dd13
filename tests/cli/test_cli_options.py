"""Every model option of ``apim fit`` x every model kind (observed-mean, latent, formula,
generalized, dynamic):
the option either shows in the JSON result or exits 2 with one line naming it -- never
ignored (issue 19). Refusals come before the data are read. ``apim report`` shares the
options and the refusals."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import apim
from apim.cli import build_parser, main
from apim.cli.fit import KINDS, LATENT_RESIDUALS, OPTIONS
from apim.engine import RESIDUAL_NAMES

FORMULA = "outcome ~ alliance + alliance_partner"
BASE = {
    "observed": ["--outcome", "outcome", "--predictor", "alliance"],
    "latent": ["--outcome", "outcome", "--predictor", "alliance", "--centring", "latent"],
    "formula": ["--formula", FORMULA],
    "generalized": ["--outcome", "event", "--predictor", "alliance", "--family", "binomial",
                    "--nagq", "1"],
    "dynamic": ["--outcome", "outcome", "--predictor", "alliance", "--dynamic"],
}
COLUMNS = ["--dyad", "dyad", "--session", "session", "--role", "role", "--roles",
           "patient,therapist", "--therapist", "therapist"]
OUTPUT = ("--format", "--json", "--report", "--docx", "--test")


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """The bundled alliance data cut to 4 therapists per arm (6 dyads each) and 8 sessions,
    so that the ~60 fits take seconds."""
    frame = apim.load_alliance().frame.drop(columns="row")
    arms = frame.groupby("treatment")["therapist"].unique()
    therapists = [t for arm in arms for t in sorted(arm)[:4]]
    frame = frame[frame["therapist"].isin(therapists) & (frame["session"] <= 8)].copy()
    frame["event"] = (frame["outcome"] < frame["outcome"].median()).astype(float).where(
        frame["outcome"].notna())  # a binary outcome for --family binomial
    path = tmp_path_factory.mktemp("options") / "small.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def small_dynamic(small) -> Path:
    """The same therapists' dyads at sessions 1-5, for the dynamic APIM's fits."""
    frame = pd.read_csv(small)
    path = small.parent / "small_dynamic.csv"
    frame[frame["session"] <= 5].to_csv(path, index=False)
    return path


@dataclass
class Run:
    """What one command printed (``payload``: the JSON result, when printed)."""

    code: int
    out: str
    err: str
    tmp: Path

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.out)

    @property
    def spec(self) -> dict[str, Any]:
        return self.payload["specification"]


Check = Callable[[Run], bool]


@dataclass(frozen=True)
class Cell:
    """An option, its arguments per kind (default ``argv``) and, for each kind it applies
    to, how it shows in the result; the other kinds must refuse it."""

    flag: str
    argv: tuple[str, ...]
    shows: dict[str, Check]
    per_kind: dict[str, tuple[str, ...]] | None = None

    def arguments(self, kind: str) -> list[str]:
        argv = list((self.per_kind or {}).get(kind, self.argv))
        base = BASE[kind]
        if self.flag in base:  # the kind's own arguments already give it
            return base
        return [*base, *argv]


def _decomposition(key: str, value: Any) -> Check:
    return lambda r: r.spec["decomposition"][key] == value


def _json_file(r: Run) -> bool:
    return json.loads((r.tmp / "fit.json").read_text())["specification"] == r.spec


APIM_TEST = "patient.actor.within = therapist.actor.within"
DYNAMIC_TEST = "patient.actor.lagged.alliance = therapist.actor.lagged.alliance"
FORMULA_TEST = "alliance = alliance_partner"


def _report_file(r: Run) -> bool:
    return "<html" in (r.tmp / "fit.html").read_text(encoding="utf-8").lower()


def _docx_file(r: Run) -> bool:
    docx = pytest.importorskip("docx")
    tables = docx.Document(str(r.tmp / "fit.docx")).tables
    return len(tables) == 2 and tables[0].rows[1].cells[2].text == "b"


CELLS = [
    Cell("--outcome", ("--outcome", "outcome"), {
        "observed": lambda r: r.spec["outcome"] == "outcome",
        "latent": lambda r: r.spec["outcome"] == "outcome",
        "generalized": lambda r: r.spec["outcome"] == "event",
        "dynamic": lambda r: r.spec["outcome"] == "outcome"}),
    Cell("--predictor", ("--predictor", "alliance"), {
        "observed": lambda r: r.spec["predictors"] == ["alliance"],
        "latent": lambda r: r.spec["predictors"] == ["alliance"],
        "generalized": lambda r: r.spec["predictors"] == ["alliance"],
        "dynamic": lambda r: r.spec["predictors"] == ["alliance"]}),
    # --family turns the observed-mean APIM into the generalized one (as --formula and
    # --centring latent choose theirs); the latent, formula and dynamic kinds refuse it
    Cell("--family", ("--family", "binomial"), {
        "observed": lambda r: r.payload["model"] == "generalized APIM",
        "generalized": lambda r: r.payload["family"] == "binomial"
        and r.payload["model"] == "generalized APIM"},
        per_kind={"observed": ("--family", "binomial", "--outcome", "event", "--nagq", "1")}),
    Cell("--link", ("--link", "probit"), {
        "generalized": lambda r: r.payload["link"] == "probit"
        and r.spec["link"] == "probit"}),
    Cell("--nagq", ("--nagq", "3"), {
        "generalized": lambda r: r.payload["nagq"] == 1 and r.spec["nagq"] == 1}),
    Cell("--thresholds", ("--thresholds", "shared"), {
        "generalized": lambda r: r.spec["thresholds"] == "shared"
        and {t["role"] for t in r.payload["thresholds"]} == {"both"}},
        per_kind={"generalized": ("--family", "ordinal", "--thresholds", "shared")}),
    Cell("--dynamic", ("--dynamic",), {  # it selects the dynamic kind
        "observed": lambda r: r.payload["model"] == "dynamic APIM",
        "dynamic": lambda r: r.payload["model"] == "dynamic APIM"
        and len(r.payload["lagged"]) == 16}),
    Cell("--initial", ("--initial", "stationary"), {
        "dynamic": lambda r: r.spec["initial"] == "stationary"}),
    Cell("--no-reverse-paths", ("--no-reverse-paths",), {
        "dynamic": lambda r: r.spec["reverse_paths"] is False
        and sum(e["fixed"] for e in r.payload["lagged"]) == 4}),
    Cell("--formula", ("--formula", FORMULA), {
        "formula": lambda r: r.spec["formula"] == FORMULA}),
    Cell("--random-formula", ("--random-formula", "0 + role"), {
        "formula": lambda r: r.spec["random"] == "0 + role"}),
    Cell("--centring", ("--centring", "observed"), {
        "observed": lambda r: "decomposition" in r.spec
        and r.payload["model"] == "observed-mean APIM",
        "latent": lambda r: r.payload["model"] == "latent APIM",
        "generalized": lambda r: r.payload["model"] == "generalized APIM"}),
    Cell("--center", ("--center", "grand"), {"observed": _decomposition("center", "grand"),
                                             "generalized": _decomposition("center", "grand")}),
    Cell("--lag", ("--lag", "1"), {"observed": _decomposition("lag", 1),
                                   "generalized": _decomposition("lag", 1)}),
    Cell("--detrend", ("--detrend",), {"observed": _decomposition("detrend", True),
                                       "generalized": _decomposition("detrend", True)}),
    Cell("--indistinguishable", ("--indistinguishable",), {
        "observed": lambda r: r.spec["distinguishable"] is False,
        "generalized": lambda r: r.spec["distinguishable"] is False,
        "dynamic": lambda r: r.spec["equal_roles"] is True}),
    Cell("--interaction", ("--interaction",), {
        "observed": lambda r: r.spec["interaction"] is True,
        "generalized": lambda r: r.spec["interaction"] is True}),
    Cell("--moderator", ("--moderator", "treatment"), {
        "observed": lambda r: r.spec["moderators"] == ["treatment"],
        "generalized": lambda r: r.spec["moderators"] == ["treatment"],
        "latent": lambda r: r.spec["moderator"] == "treatment",
        "dynamic": lambda r: r.spec["moderator"] == "treatment"
        and len(r.payload["arm_differences"]) > 0}),
    Cell("--reference", ("--moderator", "treatment", "--reference", "treatment=CBT"), {
        "observed": lambda r: r.spec["reference"] == [["treatment", "CBT"]]
        and any(f["term"].endswith("treatment[AFT]") for f in r.payload["fixed"]),
        "latent": lambda r: r.spec["reference"] == [["treatment", "CBT"]],
        "generalized": lambda r: r.spec["reference"] == [["treatment", "CBT"]]
        and any(f["term"].endswith("treatment[AFT]") for f in r.payload["fixed"]),
        "dynamic": lambda r: r.spec["reference"] == [["treatment", "AFT"]]
        and r.payload["arm_differences"][0]["contrast"] == "CBT − AFT"},
        per_kind={"formula": ("--reference", "treatment=CBT"),
                  "dynamic": ("--moderator", "treatment", "--reference", "treatment=AFT")}),
    Cell("--covariate", ("--covariate", "session"), {
        "observed": lambda r: r.spec["covariates"] == ["session"],
        "generalized": lambda r: r.spec["covariates"] == ["session"],
        "dynamic": lambda r: r.spec["covariates"] == ["treatment"]
        and any(".covariate.none.treatment[" in f["term"] for f in r.payload["fixed"])},
        per_kind={"dynamic": ("--covariate", "treatment")}),
    Cell("--random", ("--random", "slopes"), {
        "observed": lambda r: r.spec["covariance"]["random"] == "slopes"}),
    Cell("--residual", (), {
        "observed": lambda r: r.spec["covariance"]["residual"] == "cs-ar1",
        "latent": lambda r: r.spec["ar1"] is True,
        "formula": lambda r: r.spec["residual"] == "cs"},
        per_kind={"observed": ("--residual", "cs-ar1"), "latent": ("--residual", "un-ar1"),
                  "formula": ("--residual", "cs"), "generalized": ("--residual", "un"),
                  "dynamic": ("--residual", "un")}),
    Cell("--therapist-level", ("--therapist-level",), {
        "observed": lambda r: r.spec["covariance"]["therapist_level"] is True,
        "latent": lambda r: r.spec["therapist_level"] is True,
        "formula": lambda r: r.spec["therapist_level"] is True,
        "generalized": lambda r: r.spec["therapist_level"] is True
        and r.payload["integration"] == "Laplace throughout (therapist level)"
        and r.payload["variance"]["therapist_sd"] is not None,
        "dynamic": lambda r: r.spec["therapist_level"] is True
        and r.payload["groups"]["all"]["n_therapists"] > 0}),
    Cell("--therapist-covariance", ("--therapist-level", "--therapist-covariance", "diagonal"),
         {"latent": lambda r: r.spec["therapist_covariance"] == "diagonal",
          "dynamic": lambda r: r.spec["therapist_covariance"] == "diagonal"
          and r.payload["groups"]["all"]["therapist_covariance"] == "diagonal"},
         per_kind={"generalized": ("--therapist-covariance", "diagonal")}),
    Cell("--method", ("--method", "ml"), {
        "observed": lambda r: r.spec["method"] == "ML",
        "latent": lambda r: r.spec["method"] == "REML",
        "formula": lambda r: r.spec["method"] == "ML",
        "generalized": lambda r: r.spec["method"] == "ML"},
        per_kind={"latent": ("--method", "reml")}),
    Cell("--df", ("--df", "containment"), {
        "observed": lambda r: r.payload["df"] == "containment",
        "formula": lambda r: r.payload["df"] == "containment"}),
    Cell("--format", ("--format", "markdown"), dict.fromkeys(
        KINDS, lambda r: r.out.startswith("**"))),
    Cell("--json", ("--json", "fit.json"), dict.fromkeys(KINDS, _json_file)),
    Cell("--report", ("--report", "fit.html"), dict.fromkeys(KINDS, _report_file)),
    Cell("--docx", ("--docx", "fit.docx"), dict.fromkeys(KINDS, _docx_file)),
    Cell("--test", (), {
        "observed": lambda r: r.payload["tests"][0]["hypothesis"] == APIM_TEST
        and r.payload["tests"][0]["df_den"] is not None,
        "latent": lambda r: r.payload["tests"][0]["hypothesis"] == APIM_TEST
        and r.payload["tests"][0]["df_den"] is None,  # z test: infinite df
        "formula": lambda r: r.payload["tests"][0]["hypothesis"] == FORMULA_TEST,
        "generalized": lambda r: r.payload["tests"][0]["hypothesis"] == APIM_TEST
        and r.payload["tests"][0]["df_den"] is None,  # z test: infinite df
        "dynamic": lambda r: r.payload["tests"][0]["hypothesis"] == DYNAMIC_TEST
        and r.payload["tests"][0]["df_den"] is None},
        per_kind={"observed": ("--test", APIM_TEST), "latent": ("--test", APIM_TEST),
                  "generalized": ("--test", APIM_TEST),
                  "formula": ("--test", FORMULA_TEST), "dynamic": ("--test", DYNAMIC_TEST)}),
]


def _params() -> list[Any]:
    return [pytest.param(cell, kind, id=f"{cell.flag}-{kind}") for cell in CELLS
            for kind in KINDS]


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _refused(code: int, err: str, flag: str) -> None:
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("apim: error: "), err
    assert flag in lines[0], err


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("cell, kind", _params())
def test_option_applies_or_is_refused(cell, kind, small, small_dynamic, tmp_path,
                                      monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = cell.arguments(kind)
    if kind not in cell.shows:  # refused before the data are read: the file need not exist
        code, _, err = _run(capsys, ["fit", "no-such-file.csv", *COLUMNS, *argv])
        _refused(code, err, cell.flag)
        return
    if "--format" not in argv:
        argv = [*argv, "--format", "json"]
    data = small_dynamic if "--dynamic" in argv else small
    code, out, err = _run(capsys, ["fit", str(data), *COLUMNS, *argv])
    assert code == 0, err
    assert cell.shows[kind](Run(code, out, err, tmp_path))


def test_the_matrix_covers_every_option():
    assert {c.flag for c in CELLS} == {o.flag for o in OPTIONS} | set(OUTPUT)
    fit = build_parser()._subparsers._group_actions[0].choices["fit"]  # type: ignore
    flags = {s for a in fit._actions for s in a.option_strings}
    assert {o.flag for o in OPTIONS} | set(OUTPUT) <= flags


def test_the_table_says_why_for_every_refusal():
    for option in OPTIONS:
        if option.flag in ("--formula", "--dynamic"):  # they select their kind
            continue
        assert set(option.refused) == set(KINDS) - set(option.kinds), option.flag


@pytest.mark.parametrize("residual", [r for r in RESIDUAL_NAMES if r not in LATENT_RESIDUALS])
def test_latent_refuses_other_residual_structures(residual, capsys):
    code, _, err = _run(capsys, ["fit", "no-such-file.csv", *COLUMNS, *BASE["latent"],
                                 "--residual", residual])
    _refused(code, err, f"--residual {residual} does not apply to --centring latent")
    assert "un-ar1" in err


@pytest.mark.parametrize("argv, message", [
    ([*BASE["latent"], "--df", "containment"],
     "apim: error: --df containment does not apply to --centring latent: its tests are z "
     "tests (normal theory, as lavaan); drop --df"),
    ([*BASE["latent"], "--moderator", "treatment", "--moderator", "x"],
     "--centring latent takes one --moderator"),
    ([*BASE["latent"], "--therapist-covariance", "diagonal"],
     "--therapist-covariance applies to the therapist level: add --therapist-level"),
    (["--outcome", "outcome"], "the model needs --predictor COL"),
    (["--predictor", "alliance"], "the model needs --outcome COL"),
    ([], "--formula 'outcome ~ alliance + alliance_partner'"),
    ([*BASE["formula"], "--predictor", "alliance"], "--predictor alliance does not apply to "
                                                    "--formula"),
])
def test_refusal_messages(argv, message, capsys):
    code, _, err = _run(capsys, ["fit", "no-such-file.csv", *COLUMNS, *argv])
    _refused(code, err, message)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("kind, method, df", [("observed", "REML", "satterthwaite"),
                                              ("latent", "ML", "normal"),
                                              ("formula", "REML", "satterthwaite"),
                                              ("generalized", "ML", "normal")])
def test_defaults_per_kind(kind, method, df, small, capsys):
    code, out, err = _run(capsys, ["fit", str(small), *COLUMNS, *BASE[kind],
                                   "--format", "json"])
    assert code == 0, err
    payload = json.loads(out)
    assert payload["specification"]["method"] == method and payload["df"] == df


@pytest.mark.parametrize("given", [[], ["--df", "containment"]])
def test_df_is_passed_only_when_given(given, small, monkeypatch, capsys):
    import apim.cli.fit as command

    calls = []

    def recording(data, spec, **options):
        calls.append(options)
        raise apim.errors.SpecError("stop")

    monkeypatch.setattr(command, "fit", recording)
    assert main(["fit", str(small), *COLUMNS, *BASE["observed"], *given]) == 2
    assert calls == [{"df": "containment"} if given else {}]


def test_help_shows_each_kind_and_the_defaults(capsys):
    assert main(["fit", "--help"]) == 0
    text = capsys.readouterr().out
    epilog = text.split("examples:")[1]
    assert "--centring latent" in epilog and "--formula '" in epilog
    assert "--random-formula '0 + role'" in epilog
    assert "ml with --centring latent" in text and "default satterthwaite" in text
    assert "[observed-mean only]" in text and "[latent, dynamic]" in text
    assert "[dynamic only]" in text and "--dynamic --initial stationary" in epilog


# ------------------------------------------------------------------ apim report
REPORT_CELLS = [pytest.param(c, k, id=f"{c.flag}-{k}") for c in CELLS
                if c.flag not in OUTPUT for k in KINDS if k not in c.shows]


@pytest.mark.parametrize("cell, kind", REPORT_CELLS)
def test_report_refuses_what_fit_refuses(cell, kind, capsys):
    code, _, err = _run(capsys, ["report", "no-such-file.csv", *COLUMNS,
                                 *cell.arguments(kind), "--out", "never.html"])
    _refused(code, err, cell.flag)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("kind", ["observed", "latent", "formula", "generalized"])
def test_report_writes_every_kind(kind, small, tmp_path, capsys):
    out = tmp_path / "r.html"
    code, _, err = _run(capsys, ["report", str(small), *COLUMNS, *BASE[kind],
                                 "--no-figures", "--out", str(out)])
    assert code == 0, err
    assert "<html" in out.read_text(encoding="utf-8").lower()
