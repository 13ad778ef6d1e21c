# Root conftest: keep pytest's collection to tests/, the library's doctests and the built notebooks.
from pathlib import Path as _Path

import pytest as _pytest

collect_ignore = ["notebooks/src", "notebooks/build.py", "benchmarks", "results", "Snakefile", "build"]

_SHARED = _Path(__file__).resolve().parent.parent / "shared" / "data"


def pytest_collection_modifyitems(config, items):
    """Doctests that read the public files in ../shared/data skip (with a reason) where it is absent."""
    if _SHARED.is_dir():
        return
    for item in items:
        test = getattr(item, "dtest", None)
        if test is not None and any("../shared/data" in ex.source for ex in test.examples):
            item.add_marker(_pytest.mark.skip(reason=f"public test data folder {_SHARED} is not available"))
