"""Build ``notebooks/<name>.ipynb`` from the readable sources ``notebooks/src/<name>.py``.

Sources use the "percent" format: ``# %%`` starts a code cell, ``# %% [markdown]`` a markdown cell
(its lines start with ``# ``), ``# %% tags=["parameters"]`` tags a cell. Cell ids are derived from
the notebook name and position, so rebuilding an unchanged source gives byte-identical output
(Snakemake reruns a stage when its notebook changes).

    python notebooks/build.py            # rebuild all
    python notebooks/build.py --check    # exit 1 if any .ipynb is out of date
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
_HEADER = re.compile(r"^# %%(?P<md> \[markdown\])?(?: tags=(?P<tags>\[.*\]))?\s*$")


def parse(text: str) -> list[dict]:
    cells = []
    cur = None
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            if cur is not None:
                cells.append(cur)
            cur = {"type": "markdown" if m.group("md") else "code",
                   "tags": json.loads(m.group("tags")) if m.group("tags") else [], "lines": []}
            continue
        if cur is None:
            continue  # module docstring / preamble before the first cell is not part of the notebook
        cur["lines"].append(line)
    if cur is not None:
        cells.append(cur)
    return cells


def to_notebook(name: str, text: str) -> dict:
    out = []
    for i, c in enumerate(parse(text)):
        lines = c["lines"]
        while lines and not lines[-1].strip():
            lines = lines[:-1]
        while lines and not lines[0].strip():
            lines = lines[1:]
        if c["type"] == "markdown":
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines]
        source = [ln + "\n" for ln in lines]
        if source:
            source[-1] = source[-1][:-1]
        cell = {"cell_type": c["type"], "id": f"{name}-{i:02d}"[:64], "metadata": {"tags": c["tags"]} if c["tags"] else {},
                "source": source}
        if c["type"] == "code":
            cell["execution_count"] = None
            cell["outputs"] = []
        out.append(cell)
    return {
        "cells": out,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def render(name: str, text: str) -> str:
    return json.dumps(to_notebook(name, text), indent=1, ensure_ascii=False) + "\n"


def main(argv=None) -> int:
    check = "--check" in (argv or sys.argv[1:])
    stale = []
    for src in sorted((HERE / "src").glob("*.py")):
        target = HERE / f"{src.stem}.ipynb"
        text = render(src.stem, src.read_text())
        if target.exists() and target.read_text() == text:
            continue
        stale.append(target.name)
        if not check:
            target.write_text(text)
    if check and stale:
        print("out of date (run python notebooks/build.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
