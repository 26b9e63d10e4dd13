"""The vignettes run from start to end."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

VIGNETTES = sorted((Path(__file__).resolve().parents[1] / "vignettes").glob("*.py"))


@pytest.mark.parametrize("path", VIGNETTES, ids=[p.name for p in VIGNETTES])
def test_vignette_runs(path, capsys):
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    assert "Fixed effects" in out and "likelihood-ratio test" in out
