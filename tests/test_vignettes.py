"""The vignettes run from start to end (each checks its own numbers with assert statements
against its source: published tables, simulation truth or closed forms).

Vignettes that read the public data sets (``APIM_SHARED_DATA``, default ``../shared/data``
beside the checkout) are skipped when that folder is absent. Each runs in the vignettes
folder, as ``jupytext --execute`` runs it, with a non-interactive matplotlib backend.
"""

from __future__ import annotations

import runpy
import warnings
from pathlib import Path

import matplotlib
import pytest
from conftest import SHARED

FOLDER = Path(__file__).resolve().parents[1] / "vignettes"
VIGNETTES = sorted(FOLDER.glob("[0-9]*.py"))


@pytest.mark.parametrize("path", VIGNETTES, ids=[p.name for p in VIGNETTES])
def test_vignette_runs(path, capsys, monkeypatch):
    text = path.read_text(encoding="utf-8")
    if "APIM_SHARED_DATA" in text and not SHARED.is_dir():
        pytest.skip(f"shared data folder {SHARED} not found (set APIM_SHARED_DATA)")
    assert text.startswith("# %% [markdown]"), "a vignette is a jupytext percent script"
    monkeypatch.setenv("APIM_SHARED_DATA", str(SHARED))
    monkeypatch.chdir(FOLDER)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*non-interactive.*")
        runpy.run_path(str(path), run_name="__main__")
    plt.close("all")
    assert capsys.readouterr().out.strip(), "a vignette prints its results"


def test_every_vignette_is_listed_in_the_index():
    index = (FOLDER / "README.md").read_text(encoding="utf-8")
    for path in VIGNETTES:
        assert path.name in index, path.name
    assert "jupytext --set-kernel python3 --to ipynb --execute" in index
    assert "nbconvert --to html" in index


def test_the_docs_extra_installs_what_the_vignettes_import():
    """The render recipe runs in a fresh environment with ``pip install '.[docs]'``: every
    package a vignette imports is apim itself, the standard library, a dependency of apim
    or in the ``docs`` extra."""
    import ast
    import re
    import sys
    from importlib.metadata import packages_distributions

    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    project = tomllib.loads((FOLDER.parent / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["docs"]]
    installed = {re.split(r"[<>=!~;\[ ]", w, maxsplit=1)[0].lower().replace("_", "-")
                 for w in wanted}
    distributions = packages_distributions()
    for path in VIGNETTES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module
                     else [])
            for name in names:
                top = name.split(".")[0]
                if top == "apim" or top in sys.stdlib_module_names:
                    continue
                dists = {d.lower().replace("_", "-") for d in distributions.get(top, [top])}
                assert dists & installed, f"{path.name} imports {top}: add it to 'docs'"
