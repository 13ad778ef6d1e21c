"""Shared fixtures: paths to the real public test files and small synthetic recordings."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parents[1]
#: Where ../shared/data may be: beside the repository, beside the working directory, or beside an
#: ancestor (a worktree nested one or two levels deeper).
_CANDIDATES = [REPO.parent / "shared" / "data", Path.cwd().parent / "shared" / "data",
               *(p / "shared" / "data" for p in REPO.parents[1:3])]


def shared_data_path(folder: str) -> Path:
    """Path of ``folder`` in ``../shared/data`` (the real public files); skips the test when absent."""
    for root in _CANDIDATES:
        if (root / folder).exists():
            return root / folder
    pytest.skip(f"public test data {folder!r} is not available in ../shared/data")


@pytest.fixture
def shared_data():
    """:func:`shared_data_path` as a fixture."""
    return shared_data_path


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
