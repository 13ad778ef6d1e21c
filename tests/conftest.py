"""Shared fixtures: paths to the real public test files and small synthetic recordings."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data():
    """``../shared/data`` (the real public files); tests skip when it is absent."""

    def _get(folder: str) -> Path:
        p = SHARED_DATA / folder
        if not p.exists():
            pytest.skip(f"public test data {p} is not available")
        return p

    return _get


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
