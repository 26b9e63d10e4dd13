"""Reference levels from the command line (issue 23 item 1): the bundled CSV declares no
order, so AFT (sorted) is the default reference; ``--reference treatment=CBT`` gives the
numbers of ``apim demo``, of Python's ``reference=`` and of a plan's ``reference``."""

from __future__ import annotations

import json
import shlex

import pytest

import apim
from apim.cli import main
from apim.cli.demo import DEMO_SPEC, command_line
from apim.model.spec import APIMSpec
from apim.plan.run import run_plan
from apim.plan.spec import Plan

PATH = apim.datasets.alliance_path()
COLUMNS = ["--dyad", "dyad", "--session", "session", "--role", "role", "--roles",
           "patient,therapist", "--therapist", "therapist"]
MODEL = ["--outcome", "outcome", "--predictor", "alliance", "--moderator", "treatment"]
MAIN = "patient.moderator.none.treatment"


def _fit_json(capsys, *extra: str) -> dict:
    code = main(["fit", PATH, *COLUMNS, *MODEL, *extra, "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def _estimates(payload: dict) -> dict[str, float]:
    return {row["term"]: row["estimate"] for row in payload["fixed"]}


def _refused(capsys, argv: list[str]) -> str:
    code = main(argv)
    lines = capsys.readouterr().err.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("apim: error: "), lines
    return lines[0]


@pytest.fixture(scope="module")
def python_cbt() -> dict[str, float]:
    data = apim.SessionData.from_long(PATH, dyad="dyad", session="session", role="role",
                                      roles=("patient", "therapist"), therapist="therapist")
    spec = APIMSpec("outcome", ("alliance",), moderators=("treatment",),
                    reference={"treatment": "CBT"})
    return dict(apim.fit(data, spec).coef)


def test_default_and_chosen_reference_on_the_bundled_csv(capsys, python_cbt):
    default = _fit_json(capsys)
    assert default["specification"]["reference"] == []
    aft = _estimates(default)[f"{MAIN}[CBT]"]  # AFT is the reference: sorted order
    assert aft == pytest.approx(-0.177, abs=5e-4)
    chosen = _fit_json(capsys, "--reference", "treatment=CBT")
    assert chosen["specification"]["reference"] == [["treatment", "CBT"]]
    cbt = _estimates(chosen)
    assert f"{MAIN}[CBT]" not in cbt
    assert cbt[f"{MAIN}[AFT]"] == pytest.approx(-aft, abs=1e-6)
    assert abs(chosen["loglik"] - default["loglik"]) < 1e-8
    for term, value in python_cbt.items():  # the same numbers as reference= in Python
        assert cbt[term] == pytest.approx(value, abs=1e-8)


def test_the_table_note_states_the_reference(capsys):
    main(["fit", PATH, *COLUMNS, *MODEL])
    assert "reference treatment = AFT" in capsys.readouterr().out
    main(["fit", PATH, *COLUMNS, *MODEL, "--reference", "treatment=CBT", "--format",
          "markdown"])
    assert "reference category CBT (set with reference / --reference)" in \
        capsys.readouterr().out


def test_demo_cli_and_plan_agree(capsys, tmp_path, python_cbt):
    assert main(["demo"]) == 0
    demo = capsys.readouterr().out
    assert "treatment AFT (vs CBT) | 0.18 |" in demo
    assert "Moderator treatment: reference category CBT" in demo
    assert command_line() in demo
    argv = shlex.split(command_line())[1:]  # the command the demo prints, run
    assert main([*argv, "--format", "json"]) == 0
    printed = _estimates(json.loads(capsys.readouterr().out))
    demo_fit = apim.fit(apim.load_alliance(), DEMO_SPEC)
    for term, value in demo_fit.coef.items():
        assert printed[term] == pytest.approx(value, abs=1e-8)
        assert python_cbt[term] == pytest.approx(value, abs=1e-8)
    plan = Plan.from_text(f'''
[data.alliance]
file = "{PATH}"
dyad = "dyad"
session = "session"
role = "role"
roles = ["patient", "therapist"]
therapist = "therapist"

[defaults]
outcome = "outcome"
predictors = ["alliance"]
reference = {{treatment = "CBT"}}

[[analysis]]
id = "main"
moderators = [[], ["treatment"]]
''')
    assert plan.table()["reference_levels"].tolist()[1] == "treatment=CBT"
    result = run_plan(plan, tmp_path / "out", progress=False)
    rows = result.effects[result.effects["analysis"] == "main-02"].set_index("term")
    for term, value in demo_fit.coef.items():
        assert rows.at[term, "estimate"] == pytest.approx(value, abs=1e-8)


@pytest.mark.filterwarnings("ignore")
def test_latent_arm_differences_follow_the_reference(capsys, tmp_path):
    frame = apim.load_alliance().frame.drop(columns="row")
    arms = frame.groupby("treatment")["therapist"].unique()
    keep = [t for arm in arms for t in sorted(arm)[:3]]
    small = tmp_path / "small.csv"
    frame[frame["therapist"].isin(keep) & (frame["session"] <= 8)].to_csv(small, index=False)
    for extra, contrast in (([], "CBT − AFT"), (["--reference", "treatment=CBT"],
                                                "AFT − CBT")):
        assert main(["fit", str(small), *COLUMNS, *MODEL, "--centring", "latent", *extra,
                     "--format", "json"]) == 0
        payload = json.loads(capsys.readouterr().out)
        assert {r["contrast"] for r in payload["arm_differences"]} == {contrast}


@pytest.mark.parametrize("extra, message", [
    (["--reference", "treatment=DBT"],
     "apim: error: reference treatment=DBT: column 'treatment' has no level 'DBT'; its "
     "levels are AFT, CBT"),
    (["--reference", "arm=CBT"],
     "apim: error: reference arm=...: 'arm' is not a moderator of the model (its "
     "moderators: 'treatment'); add it as a moderator or drop the reference"),
    (["--reference", "treatment"],
     "apim: error: --reference treatment must be COLUMN=LEVEL, e.g. --reference "
     "treatment=CBT"),
    (["--centring", "latent", "--reference", "treatment=DBT"],
     "apim: error: reference treatment=DBT: column 'treatment' has no level 'DBT'; its "
     "levels are AFT, CBT"),
])
def test_a_bad_reference_is_refused(capsys, extra, message):
    assert _refused(capsys, ["fit", PATH, *COLUMNS, *MODEL, *extra]) == message


def test_formula_refuses_reference(capsys):
    line = _refused(capsys, ["fit", PATH, *COLUMNS, "--formula", "outcome ~ alliance",
                             "--reference", "treatment=CBT"])
    assert line.startswith("apim: error: --reference treatment=CBT does not apply to "
                           "--formula: a formula codes its own contrasts")


def test_plan_refuses_a_reference_no_analysis_uses(tmp_path):
    text = f'''
[data.d]
file = "{PATH}"
dyad = "dyad"
role = "role"

[[analysis]]
outcome = "outcome"
predictors = ["alliance"]
moderators = ["treatment"]
reference = {{treatmnt = "CBT"}}
'''
    with pytest.raises(apim.errors.SpecError, match="no analysis has 'treatmnt' as a "
                                                    "moderator"):
        Plan.from_text(text)
