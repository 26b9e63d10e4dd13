"""Plans of every model kind: the observed-mean, latent, generalized (binary, ordinal) and
dynamic APIMs and the observed-mean APIM fitted out of core (here and on a Dask cluster).

Each analysis's spec is compared with one written by hand, and every number a plan run
writes (effects table in memory and as CSV, models.csv, analyses/ID.json) with a direct
``apim.fit`` / ``fit_out_of_core`` of that spec: equal, not close. Refusals name the
analysis, the setting and why, and agree with ``apim fit``'s option table."""

from __future__ import annotations

import dataclasses
import html
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import apim
from apim.cli import main
from apim.cli.fit import OPTIONS
from apim.errors import SpecError
from apim.model.dynamic_spec import DynamicAPIMSpec
from apim.model.generalized_spec import GeneralizedAPIMSpec
from apim.model.out_of_core import fit_out_of_core
from apim.plan import Plan, check_plan, run_plan
from apim.plan.kinds import KINDS, REASONS, OutOfCore, build_spec, choose_kind, flat_fields
from apim.plan.spec import SETTINGS
from apim.report import labels

COLUMNS = dict(dyad="dyad", session="session", role="role", roles=("patient", "therapist"))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """30 dyads of the alliance data with a binary (``high``) and an ordinal (``level``,
    3 categories) outcome, as CSV, and in long layout as Parquet in row groups of 250
    rows (boundaries cut dyads)."""
    folder = tmp_path_factory.mktemp("kinds")
    frame = apim.load_alliance().frame.drop(columns="row")
    frame = frame[frame["dyad"] <= 30].reset_index(drop=True)
    cut = frame["outcome"].median()
    frame["high"] = (frame["outcome"] > cut).astype(float).where(frame["outcome"].notna())
    thirds = frame["outcome"].quantile([1 / 3, 2 / 3]).to_numpy()
    frame["level"] = np.searchsorted(thirds, frame["outcome"]).astype(float)
    frame.loc[frame["outcome"].isna(), "level"] = np.nan
    frame.to_csv(folder / "sessions.csv", index=False)
    long = frame.drop(columns=["therapist", "treatment", "high", "level"])
    pq.write_table(pa.Table.from_pandas(long, preserve_index=False),
                   folder / "sessions.parquet", row_group_size=250)
    return folder


def data_tables(folder: Path) -> str:
    """``[data.s]`` (the CSV file, with therapists) and ``[data.p]`` (the Parquet file)."""
    tables = [(f"[data.{name}]\nfile = \"{folder / file}\"\n"
               + "".join(f'{k} = "{v}"\n' for k, v in COLUMNS.items() if k != "roles")
               + 'roles = ["patient", "therapist"]\n' + extra)
              for name, file, extra in (("s", "sessions.csv", 'therapist = "therapist"\n'),
                                        ("p", "sessions.parquet", ""))]
    return "\n" + "\n".join(tables)


KINDS_PLAN = '''
[defaults]
data = "s"
predictors = ["alliance"]

[[analysis]]
id = "observed"
outcome = "outcome"
moderators = ["treatment"]
reference = {treatment = "CBT"}

[[analysis]]
id = "latent"
outcome = "outcome"
centring = "latent"
residual = "un"
moderators = ["treatment"]
reference = {treatment = "CBT"}

[[analysis]]
id = "binary"
outcome = "high"
family = ["binomial"]
nagq = [1, 3]

[[analysis]]
id = "ordinal"
outcome = "level"
family = "ordinal"
link = "probit"
nagq = 1

[[analysis]]
id = "dynamic"
outcome = "outcome"
dynamic = true
initial = ["free", "stationary"]
subset = "session <= 6"

[[analysis]]
id = "blocks"
data = "p"
outcome = "outcome"
block_rows = 500
'''

SPEC = apim.APIMSpec("outcome", ("alliance",))
EXPECTED = {
    "observed": apim.APIMSpec("outcome", ("alliance",), moderators=("treatment",),
                              reference={"treatment": "CBT"}),
    "latent": apim.LatentAPIMSpec("outcome", ("alliance",), moderator="treatment",
                                  reference={"treatment": "CBT"}),
    "binary-01": GeneralizedAPIMSpec("high", ("alliance",), family="binomial", nagq=1),
    "binary-02": GeneralizedAPIMSpec("high", ("alliance",), family="binomial", nagq=3),
    "ordinal": GeneralizedAPIMSpec("level", ("alliance",), family="ordinal", link="probit",
                                   nagq=1),
    "dynamic-01": DynamicAPIMSpec("outcome", ("alliance",), initial="free"),
    "dynamic-02": DynamicAPIMSpec("outcome", ("alliance",), initial="stationary"),
    "blocks": SPEC,
}


@pytest.fixture(scope="module")
def kinds_run(files, tmp_path_factory):
    plan = Plan.from_text(data_tables(files) + KINDS_PLAN)
    out = tmp_path_factory.mktemp("kinds-run") / "out"
    result = run_plan(plan, out, progress=False)
    return plan, result


def direct_fit(files: Path, aid: str):
    """The analysis fitted without the plan: the data read with SessionData.from_long and
    the subset taken with pandas."""
    spec = EXPECTED[aid]
    if aid == "blocks":
        return fit_out_of_core(str(files / "sessions.parquet"), spec, block_rows=500,
                               **COLUMNS)
    data = apim.SessionData.from_long(str(files / "sessions.csv"), therapist="therapist",
                                      **COLUMNS)
    if aid.startswith("dynamic"):
        frame = data.frame
        data = data.replace(frame[frame["session"] <= 6].reset_index(drop=True))
    return apim.fit(data, spec)


def test_each_analysis_gets_the_spec_of_its_kind(kinds_run):
    plan, result = kinds_run
    assert [a.id for a in plan.analyses] == list(EXPECTED)
    for a in plan.analyses:
        assert a.spec() == EXPECTED[a.id], a.id
        assert (a.out_of_core is not None) == (a.id == "blocks")
    models = result.models.set_index("analysis")
    assert models.loc["latent", "model"] == "latent APIM"
    assert models.loc["blocks", "model"] == "observed-mean APIM"
    assert models.loc["binary-02", "nagq"] == 3
    assert models.loc["dynamic-02", "initial"] == "stationary"
    assert models.loc["blocks", "block_rows"] == 500
    assert pd.isna(models.loc["latent", "df_method"])  # z tests
    assert models.loc["observed", "df_method"] == "satterthwaite"


def test_every_output_equals_a_direct_fit(kinds_run, files):
    plan, result = kinds_run
    out = result.out
    assert (result.models["status"] == "ok").all(), result.models[["analysis", "error"]]
    csv = pd.read_csv(out / "effects.csv")
    models = pd.read_csv(out / "models.csv")
    index = (out / "index.html").read_text(encoding="utf-8")
    for a in plan.analyses:
        alone = direct_fit(files, a.id)
        terms = list(alone.effects.index)
        for table in (result.effects, csv):
            rows = table[table["analysis"] == a.id].set_index("term")
            assert list(rows.index) == terms, a.id
            for column in ("estimate", "se", "p", "ci_low", "ci_high"):
                assert rows[column].tolist() == alone.effects[column].tolist(), (a.id, column)
        record = json.loads((out / "analyses" / f"{a.id}.json").read_text())
        assert [r["estimate"] for r in record["result"]["fixed"]] == \
            alone.effects["estimate"].tolist()
        assert record["result"]["specification"] == alone.spec.to_dict()
        row = models[models["analysis"] == a.id].iloc[0]
        assert row["loglik"] == alone.statistics.loglik
        assert row["n_obs"] == alone.statistics.n_obs
        assert row["n_params"] == alone.statistics.n_params
        assert f'href="analyses/{a.id}.json"' in index
        shown = index.split(f"<summary>{a.id}</summary>", 1)[1].split("</details>", 1)[0]
        for estimate in alone.effects["estimate"]:
            assert f"<td>{labels.number(estimate, 3)}</td>" in shown, (a.id, estimate)


def test_reports_of_a_latent_fit_and_a_fit_out_of_core(files, tmp_path):
    plan = Plan.from_text(data_tables(files) + KINDS_PLAN)
    kept = [a for a in plan.analyses if a.id in ("latent", "blocks")]
    plan = dataclasses.replace(plan, analyses=tuple(kept))
    result = run_plan(plan, tmp_path / "out", progress=False, reports=True)
    assert (result.models["status"] == "ok").all()
    for a in plan.analyses:
        alone = direct_fit(files, a.id)
        report = (tmp_path / "out" / "analyses" / f"{a.id}.html").read_text(encoding="utf-8")
        assert f"Analysis {a.id}" in report and html.escape(alone.model_line()) in report
        first = alone.effects.iloc[1]  # the first effect after an intercept, as printed
        assert f"{first['estimate']:.2f}".replace("-", "−") in report or \
            f"{first['estimate']:.2f}" in report
    blocks = (tmp_path / "out" / "analyses" / "blocks.html").read_text(encoding="utf-8")
    assert "Fitted from the file read in blocks" in blocks
    assert "<h2>Warnings</h2>" in blocks
    assert 'href="analyses/blocks.html"' in (tmp_path / "out" / "index.html").read_text()


def test_keys_distinguish_kinds_and_a_second_run_reuses_every_result(kinds_run, files):
    plan, result = kinds_run
    keys = [entry["key"] for entry in result.manifest["analyses"]]
    assert len(set(keys)) == len(keys)
    same = Plan.from_text(data_tables(files) + '''
[defaults]
data = "p"
outcome = "outcome"
predictors = ["alliance"]
[[analysis]]
id = "kind"
centring = ["observed", "latent"]
[[analysis]]
id = "dyn"
dynamic = true
[[analysis]]
id = "blocks"
out_of_core = [false, true]
[[analysis]]
id = "rows"
block_rows = 500
[[analysis]]
id = "cluster"
block_rows = 500
scheduler = "tcp://127.0.0.1:1"
''')
    keys = {a.id: a.key("data", "version") for a in same.analyses}
    assert len({keys["kind-01"], keys["kind-02"], keys["dyn"], keys["blocks-02"],
                keys["rows"]}) == 5  # observed in memory, latent, dynamic, two out of core
    assert keys["blocks-01"] == keys["kind-01"]  # in memory, the default centring: one model
    assert keys["cluster"] == keys["rows"]  # where the blocks are read changes no number
    again = run_plan(plan, result.out, progress=False)
    assert again.manifest["counts"]["skipped"] == len(plan.analyses)
    pd.testing.assert_frame_equal(again.effects, result.effects)


@pytest.mark.parametrize("analysis, error", [
    ('outcome = "outcom"', "MissingColumnError"),
    ('outcome = "outcom"\ncentring = "latent"', "outcom"),
    ('outcome = "outcom"\ndynamic = true', "outcom"),
    ('outcome = "outcome"\nfamily = "binomial"', "outcome"),  # not 0/1
    ('outcome = "outcom"\ndata = "p"\nout_of_core = true', "outcom"),
    ('outcome = "outcome"\ndata = "s"\nscheduler = "tcp://127.0.0.1:1"', "Parquet"),
])
def test_dry_run_checks_each_kind_without_fitting(files, monkeypatch, analysis, error):
    plan = Plan.from_text(data_tables(files) + f'''
[defaults]
data = "s"
predictors = ["alliance"]
[[analysis]]
id = "good"
outcome = "outcome"
[[analysis]]
id = "bad"
{analysis}
''')

    def no_fitting(*args, **kwargs):
        raise AssertionError("a check must not fit")

    monkeypatch.setattr("apim.plan.run.fit", no_fitting)
    monkeypatch.setattr("apim.plan.run.fit_out_of_core", no_fitting)
    table = check_plan(plan).set_index("analysis")
    assert table.loc["good", "check"] == "ok"
    assert error in table.loc["bad", "check"] and table.loc["bad", "check"] != "ok"


def test_dry_run_passes_every_kind(files):
    table = check_plan(Plan.from_text(data_tables(files) + KINDS_PLAN))
    assert (table["check"] == "ok").all(), table[["analysis", "check"]]


# ---------------------------------------------------------------- bad settings
def refused(files: Path, analysis: str, defaults: str = "", head: str = "") -> str:
    with pytest.raises(SpecError) as caught:
        Plan.from_text(head + data_tables(files) + f'''
[defaults]
data = "s"
outcome = "outcome"
predictors = ["alliance"]
{defaults}
[[analysis]]
id = "m"
{analysis}
''')
    return str(caught.value)


@pytest.mark.parametrize("analysis, message", [
    ('family = "poisson"', "analysis m: family='poisson' is not one of 'binomial', "
                           "'ordinal'"),
    ("nagq = 7", "analysis m: nagq = 7 does not apply to the observed-mean APIM: it applies "
                 'to a binary or ordinal outcome: add family = "binomial" or family = '
                 '"ordinal", or drop nagq'),
    ('family = "binomial"\nnagq = 40', "analysis m: nagq=40 must be between 1"),
    ('dynamic = true\ncentring = "latent"',
     "analysis m: centring = 'latent' does not apply to the dynamic APIM (dynamic = true): "
     "the dynamic APIM has latent person means"),
    ('dynamic = true\nfamily = "binomial"', "the dynamic APIM models Gaussian variables"),
    ('centring = "latent"\nfamily = "ordinal"', "the latent APIM models Gaussian outcomes"),
    ('centring = "latent"\nscheduler = "tcp://host:8786"',
     "analysis m: scheduler = 'tcp://host:8786' does not apply to the latent APIM "
     '(centring = "latent"): the fit from the file read in blocks (here or on a Dask '
     "cluster) is for the observed-mean APIM"),
    ('family = "binomial"\nblock_rows = 100', "does not apply to the generalized APIM"),
    ('scheduler = "tcp://host:8786"\nmoderators = ["treatment"]',
     "analysis m: the out-of-core fit does not take moderators"),
    ('block_rows = 100\ntherapist_level = true', "does not take a therapist level"),
    ('block_rows = 100\nsubset = "session <= 3"', "subset = 'session <= 3' does not apply "
                                                  "to the fit from the file read in blocks"),
    ('block_rows = 100\ndf = "containment"', "Satterthwaite df"),
    ("block_rows = 0", "block_rows = 0 must be a positive whole number"),
    ("out_of_core = false\nblock_rows = 100", "block_rows fits out of core, but "
                                              "out_of_core = false"),
    ('out_of_core = "yes"', "out_of_core = 'yes' must be true or false"),
    ('dynamic = "yes"', "analysis m: dynamic = 'yes' must be true or false"),
    ('centring = "latent"\nmoderators = ["treatment", "therapist"]',
     "takes one moderator (a grouping: one model per group)"),
    ('centring = "latent"\nresidual = "cs"', "residual = 'cs' does not apply to the latent "
                                             "APIM"),
    ('centring = "latent"\nar1 = true\nresidual = "un"', "give ar1 or residual, not both"),
    ('dynamic = true\nequal_roles = true\ndistinguishable = false',
     "give equal_roles or distinguishable, not both"),
    ('centring = "latent"\ninteraction = true', "the latent model has no actor x partner"),
    ('centring = "latent"\ndf = "containment"', "its tests are z tests"),
    ('dynamic = true\nrandom = "none"', "its person level is the unstructured covariance"),
    ('family = "binomial"\nresidual = "ar1"', "no residual variance to structure"),
    ('initial = "stationary"', "it sets up the dynamic APIM: add dynamic = true"),
    ('family = "binomial"\ntherapist_covariance = "diagonal"',
     "GeneralizedAPIMSpec has no field 'therapist_covariance'; it applies to the latent "
     "APIM"),
])
def test_a_setting_that_does_not_apply_is_refused_naming_it(files, analysis, message):
    assert message in refused(files, analysis)


def test_settings_translated_as_the_cli_translates_its_options():
    base = {"outcome": "y", "predictors": ("x",)}
    latent, _ = build_spec("m", {**base, "center": "latent", "residual": "un-ar1",
                                 "moderators": ("arm",)})
    assert latent == apim.LatentAPIMSpec("y", ("x",), ar1=True, moderator="arm")
    dynamic, _ = build_spec("m", {**base, "dynamic": True, "distinguishable": False,
                                  "moderators": ("arm",), "reverse_paths": False})
    assert dynamic == DynamicAPIMSpec("y", ("x",), equal_roles=True, moderator="arm",
                                      reverse_paths=False)
    observed, _ = build_spec("m", {**base, "center": "observed"})
    assert observed == apim.APIMSpec("y", ("x",))


def test_a_default_that_does_not_apply_is_refused_saying_where_it_came_from(files):
    text = refused(files, "dynamic = true", defaults='residual = "un"')
    assert text.startswith("analysis m: residual = 'un' (from [defaults]) does not apply "
                           "to the dynamic APIM (dynamic = true)")
    assert text.endswith("or move it from [defaults] to the analyses it applies to")


def test_the_plans_df_serves_the_kinds_with_t_tests(files):
    plan = Plan.from_text('[plan]\ndf = "containment"\n' + data_tables(files) + '''
[defaults]
outcome = "outcome"
predictors = ["alliance"]
data = "s"
[[analysis]]
centring = ["observed", "latent"]
''')
    first, second = plan.analyses
    assert first.fit_options(first.spec()) == {"df": "containment"}
    assert second.fit_options(second.spec()) == {}
    assert second.row()["df_method"] is None


def test_batch_refuses_a_bad_setting_in_one_line_before_fitting(files, tmp_path, capsys):
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(data_tables(files) + '''
[[analysis]]
id = "fine"
data = "s"
outcome = "outcome"
predictors = ["alliance"]
[[analysis]]
id = "bad"
data = "s"
outcome = "outcome"
predictors = ["alliance"]
nagq = [1, 7]
''')
    assert main(["batch", str(plan_file), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("apim: error: analysis bad-01: nagq = 1 "
                                                   "does not apply"), err
    assert not (tmp_path / "plan.results").exists()


# ---------------------------------------------------------------- the mapping is generic
def test_every_field_of_every_kind_is_a_setting_once():
    for kind in KINDS:
        example = kind.spec_type(**_required(kind.spec_type))
        count = 0
        for f in dataclasses.fields(example):
            inner = getattr(example, f.name)
            count += len(dataclasses.fields(inner)) if dataclasses.is_dataclass(inner) else 1
        names = flat_fields(kind.spec_type)
        assert len(names) == count, kind.name  # no two fields under one setting name
        assert set(names) <= set(SETTINGS)


def _required(spec_type):
    return {"outcome": "y", "predictors": ("x",)} | (
        {"family": "binomial"} if spec_type is GeneralizedAPIMSpec else {})


def test_a_field_added_to_a_spec_becomes_a_setting():
    @dataclasses.dataclass(frozen=True)
    class Wider(GeneralizedAPIMSpec):
        therapist_level: bool = False

    names = flat_fields(Wider)
    assert names["therapist_level"] == ("therapist_level",)
    assert names["center"] == ("decomposition", "center")
    assert names["reference_levels"] == ("reference",)


def test_reasons_are_kept_only_for_settings_a_kind_lacks():
    by_name = {k.name: k for k in KINDS}
    for (setting, kind), _ in REASONS.items():
        assert setting not in flat_fields(by_name[kind].spec_type), (setting, kind)


# the CLI's options as plan settings, with a value each kind would accept
_AS_SETTING = {"--family": ("family", "ordinal"), "--link": ("link", "probit"),
               "--nagq": ("nagq", 3), "--thresholds": ("thresholds", "shared"),
               "--initial": ("initial", "stationary"),
               "--no-reverse-paths": ("reverse_paths", False),
               "--center": ("center", "grand"), "--lag": ("lag", 1),
               "--detrend": ("detrend", True), "--indistinguishable": ("distinguishable", False),
               "--interaction": ("interaction", True),
               "--moderator": ("moderators", ("treatment",)),
               "--covariate": ("covariates", ("session",)), "--random": ("random", "none"),
               "--residual": ("residual", "un"), "--therapist-level": ("therapist_level", True),
               "--method": ("method", "ML"), "--df": ("df", "containment")}
_CHOSEN = {"observed": {}, "latent": {"center": "latent"},
           "generalized": {"family": "ordinal"}, "dynamic": {"dynamic": True}}


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.flag in _AS_SETTING],
                         ids=lambda o: o.flag)
def test_plans_refuse_what_apim_fit_refuses(option):
    setting, value = _AS_SETTING[option.flag]
    for kind, chosen in _CHOSEN.items():
        settings = {"outcome": "y", "predictors": ("x",), **chosen, setting: value}
        if setting in chosen or choose_kind(settings).name != kind:
            continue  # the setting chooses the kind
        try:
            build_spec("m", settings)
        except SpecError as error:
            assert kind not in option.kinds, (option.flag, kind, str(error))
            assert "does not apply to" in str(error), str(error)
        else:
            assert kind in option.kinds, (option.flag, kind)


# ---------------------------------------------------------------- a Dask cluster
@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as local:
        yield local.scheduler_address


def test_scheduler_setting_fits_one_analysis_on_the_cluster(files, cluster, tmp_path):
    plan = Plan.from_text(data_tables(files) + f'''
[[analysis]]
id = "cluster"
data = "p"
outcome = "outcome"
predictors = ["alliance"]
block_rows = 500
scheduler = "{cluster}"
[[analysis]]
id = "memory"
data = "s"
outcome = "outcome"
predictors = ["alliance"]
''')
    result = run_plan(plan, tmp_path / "out", progress=False, n_jobs=2)
    assert (result.models["status"] == "ok").all(), result.models["error"].tolist()
    alone = fit_out_of_core(str(files / "sessions.parquet"), SPEC, block_rows=500,
                            scheduler=cluster, **COLUMNS)
    rows = result.effects[result.effects["analysis"] == "cluster"].set_index("term")
    assert list(rows.index) == list(alone.effects.index)
    assert rows["estimate"].tolist() == alone.effects["estimate"].tolist()
    assert rows["se"].tolist() == alone.effects["se"].tolist()
    record = json.loads((tmp_path / "out" / "analyses" / "cluster.json").read_text())
    assert record["result"]["out_of_core"]["blocks"] == alone.n_blocks > 1
    local = fit_out_of_core(str(files / "sessions.parquet"), SPEC, block_rows=500, **COLUMNS)
    np.testing.assert_allclose(rows["estimate"], local.effects["estimate"], rtol=0, atol=1e-8)


def test_the_reference_example_reads_as_documented(files):
    text = (Path(__file__).resolve().parents[2] / "apim" / "REFERENCE.md").read_text()
    example = text.split("choose its model kind", 1)[1].split("```toml\n", 1)[1]
    example = example.split("```", 1)[0]
    plan = Plan.from_text(data_tables(files).replace("[data.p]", "[data.all_sites]") + '''
[defaults]
data = "s"
outcome = "outcome"
predictors = ["alliance"]
''' + example)
    kinds = {a.id: (type(a.spec()).__name__, a.out_of_core) for a in plan.analyses}
    assert kinds["latent-01"][0] == "APIMSpec" and kinds["latent-02"][0] == "LatentAPIMSpec"
    assert kinds["rupture-02"][0] == "GeneralizedAPIMSpec"
    assert kinds["lagged-02"][0] == "DynamicAPIMSpec"
    assert kinds["big"] == ("APIMSpec", OutOfCore(250_000, "tcp://host:8786"))


def test_a_bad_df_is_refused_when_the_plan_is_read(files):
    assert "analysis m: df='kenward' is not one of" in refused(files, 'df = "kenward"')
