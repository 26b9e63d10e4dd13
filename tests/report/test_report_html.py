"""The HTML report: self-contained, complete, and rendered by a real browser."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

import apim
from apim.cli import main
from apim.report.html import fit_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def moderated():
    return apim.fit(apim.load_alliance(),
                    apim.APIMSpec("outcome", ("alliance",), moderators=("treatment",)))


@pytest.fixture(scope="module")
def report_file(moderated, tmp_path_factory):
    pytest.importorskip("matplotlib")
    path = tmp_path_factory.mktemp("report") / "fit.html"
    fit_report(moderated, path, warnings=["a warning raised while fitting"])
    return path


def test_report_is_self_contained_and_complete(report_file, moderated):
    text = report_file.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", text)  # opens offline
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(images) >= 4  # path diagram, slopes, trajectories, diagnostics
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    for heading in ("Model", "Data", "Tables", "Dyadic patterns", "Figures",
                    "Rows not used", "Warnings"):
        assert f"<h2>{heading}</h2>" in text
    assert "Fixed effects" in text and "Variance components" in text
    assert "a warning raised while fitting" in text
    total = sum(len(e.rows) for e in moderated.design.dropped)
    assert f"{total} of {len(moderated.design.data.frame)} rows were not used" in text
    assert "reference category CBT" in text


def test_fit_cli_writes_the_report(tmp_path, capsys):
    out = tmp_path / "cli.html"
    code = main(["fit", apim.datasets.alliance_path(), "--dyad", "dyad", "--session",
                 "session", "--role", "role", "--roles", "patient,therapist", "--therapist",
                 "therapist", "--outcome",
                 "outcome", "--predictor", "alliance", "--format", "markdown",
                 "--report", str(out)])
    assert code == 0
    assert "**Fixed effects**" in capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "Fixed effects" in text


def test_report_cli_without_figures(tmp_path, capsys):
    out = tmp_path / "tables.html"
    code = main(["report", apim.datasets.alliance_path(), "--dyad", "dyad", "--session",
                 "session", "--role", "role", "--therapist", "therapist", "--outcome",
                 "outcome", "--predictor",
                 "alliance", "--no-figures", "--out", str(out)])
    assert code == 0 and f"wrote {out}" in capsys.readouterr().out
    assert "data:image/png" not in out.read_text(encoding="utf-8")


def _chromium(args, tmp_path):
    profile = tmp_path / "profile"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_report_renders_in_headless_chromium(report_file, tmp_path):
    from matplotlib.image import imread

    shot = tmp_path / "report.png"
    url = report_file.resolve().as_uri()
    _chromium([f"--screenshot={shot}", "--window-size=1200,2000", url], tmp_path)
    assert shot.exists(), "chromium wrote no screenshot"
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1200)
    assert float(np.var(pixels)) > 0.01  # not blank
    assert float((pixels.mean(axis=2) < 0.5).mean()) > 0.005  # dark text on the page
    if os.environ.get("APIM_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["APIM_KEEP_SCREENSHOT"])
    dom = _chromium(["--dump-dom", url], tmp_path).stdout
    assert 'class="apim-table"' in dom
    assert dom.count("<table") >= 4
    assert "Fixed effects" in dom and "Variance components" in dom
    assert "Actor alliance (within-person)" in dom


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_plan_index_and_reports_render(tmp_path):
    from apim.plan import run_plan

    plan = tmp_path / "plan.toml"
    plan.write_text(f'''
[data.alliance]
file = "{apim.datasets.alliance_path()}"
dyad = "dyad"
session = "session"
role = "role"
therapist = "therapist"
[[analysis]]
id = "small"
outcome = "outcome"
predictors = ["alliance"]
subset = "dyad <= 30"
residual = ["un", "diagonal"]
''')
    result = run_plan(plan, progress=False, reports=True)
    out = result.out
    for aid in ("small-01", "small-02"):
        assert (out / "analyses" / f"{aid}.html").is_file()
    url = (out / "index.html").resolve().as_uri()
    dom = _chromium(["--dump-dom", url], tmp_path).stdout
    assert 'href="analyses/small-01.html"' in dom and "<table" in dom
    assert "Shared by every analysis" in dom and "small-02" in dom
    report = _chromium(["--dump-dom", (out / "analyses" / "small-02.html").resolve().as_uri()],
                       tmp_path).stdout
    assert "Fixed effects" in report and "data:image/png;base64," in report
