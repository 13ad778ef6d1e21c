"""The committed notebooks are exactly what notebooks/build.py makes from notebooks/src."""

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load_builder():
    spec = importlib.util.spec_from_file_location("nbbuild", REPO / "notebooks" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_notebooks_in_sync_with_sources():
    build = load_builder()
    sources = sorted((REPO / "notebooks" / "src").glob("*.py"))
    assert sources
    for src in sources:
        nb = REPO / "notebooks" / f"{src.stem}.ipynb"
        assert nb.exists(), f"{nb.name} missing: run python notebooks/build.py"
        assert nb.read_text() == build.render(src.stem, src.read_text()), f"{nb.name} out of date: run python notebooks/build.py"


def test_every_notebook_has_a_parameters_cell_and_no_outputs():
    for nb_path in sorted((REPO / "notebooks").glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, nb_path.name
        assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
        ids = [c["id"] for c in nb["cells"]]
        assert len(set(ids)) == len(ids)


def test_builder_parses_cells():
    build = load_builder()
    nb = build.to_notebook("x", "# %% [markdown]\n# # Title\n\n# %% tags=[\"parameters\"]\na = 1\n\n# %%\nprint(a)\n")
    assert [c["cell_type"] for c in nb["cells"]] == ["markdown", "code", "code"]
    assert nb["cells"][0]["source"] == ["# Title"]
    assert nb["cells"][1]["metadata"] == {"tags": ["parameters"]}
    assert nb["cells"][2]["source"] == ["print(a)"]
