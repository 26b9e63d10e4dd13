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
