"""Shared fixtures: paths of the public data sets and of the bundled example."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("APIM_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared() -> Path:
    """Folder of the public dyadic data sets (``../shared/data`` beside the checkout)."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder {SHARED} not found (set APIM_SHARED_DATA)")
    return SHARED


@pytest.fixture(scope="session")
def acitelli_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled Acitelli couples (dyadr's pairwise file, shipped with apim) written in
    the layout of the workshop's individual file: ``cuplid``, ``Yearsmar``, ``gender``
    (1 husband, -1 wife), ``self_pos``, ``other_pos``, ``satisfaction``, ``tension``,
    ``simhob``. The published-table tests read it, so they run without the shared data;
    ``tests/data/test_datasets.py`` checks it value by value against the workshop's own
    ``acitelli_individual.csv`` where the shared data are present."""
    import pandas as pd

    from apim.datasets.couples import acitelli_path

    pairwise = pd.read_csv(acitelli_path())
    frame = pd.DataFrame({
        "cuplid": pairwise["CoupleID"], "Yearsmar": pairwise["Yearsmar"],
        "gender": pairwise["Gender_A"].map({"Husband": 1, "Wife": -1}),
        "self_pos": pairwise["SelfPos_A"], "other_pos": pairwise["OtherPos_A"],
        "satisfaction": pairwise["Satisfaction_A"], "tension": pairwise["Tension_A"],
        "simhob": pairwise["SimHob_A"]})
    if frame["gender"].isna().any():
        raise ValueError("bundled Acitelli file: Gender_A holds a value other than "
                         "Husband or Wife")
    path = tmp_path_factory.mktemp("acitelli") / "acitelli_individual.csv"
    frame.to_csv(path, index=False)
    return path
