"""Defaults that let every stage notebook run by hand, outside Snakemake.

A notebook's ``parameters`` cell leaves paths empty; the notebook then asks this module for a
small generated demo session (built once in the temp folder, reused afterwards) and writes its
own outputs to a fresh temporary folder. Snakemake always passes real paths.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

__all__ = ["output_dir", "demo_session", "DEMO_GENERATOR"]

#: A small, quick recording: 16 channels, 8 units, 20 s (long enough for the sorter to find its
#: clearly detectable units: 5 of 8; the other three have SNR < 4).
DEMO_GENERATOR = {"duration_s": 20.0, "num_channels": 16, "num_units": 8, "noise_uV": 5.0}


def output_dir(path: str | None) -> Path:
    """``path`` as a created folder, or a new temporary folder when ``path`` is empty."""
    if not path:
        return Path(tempfile.mkdtemp(prefix="spkfn-stage-"))
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    return p


def demo_session(*, upto: str = "preprocess", seed: int = 0) -> dict:
    """Paths of a generated demo session's stage outputs, built on first use.

    Returns a dict with ``recording`` (generated zarr), ``gt_sorting``, ``gt_templates``,
    ``recording_ref`` (read stage), ``preprocessed`` (built when ``upto`` is ``"preprocess"`` or
    ``"sort"``) and ``sorting`` (the native sorter's result on it, built when ``upto == "sort"``).
    """
    if upto not in ("read", "preprocess", "sort"):
        raise ValueError(f"upto must be 'read', 'preprocess' or 'sort'; got {upto!r}.")
    from ..generate import ground_truth_recording
    from ..io import write_zarr
    from ..io.read import open_source, write_recording_ref

    key = hashlib.sha256(json.dumps([DEMO_GENERATOR, seed], sort_keys=True).encode()).hexdigest()[:12]
    root = Path(tempfile.gettempdir()) / f"spkfn-demo-{key}"
    paths = {
        "recording": root / "generate" / "recording.zarr",
        "gt_sorting": root / "generate" / "gt_sorting.zarr",
        "gt_templates": root / "generate" / "templates.zarr",
        "recording_ref": root / "read" / "recording.json",
        "preprocessed": root / "preprocess" / "recording.zarr",
        "sorting": root / "sort" / "spkfn" / "sorting.zarr",
    }
    if not (paths["recording"].exists() and paths["gt_sorting"].exists() and paths["gt_templates"].exists()):
        rec, gt, templates = ground_truth_recording(**DEMO_GENERATOR, seed=seed)
        write_zarr(gt, paths["gt_sorting"], progress=False)
        write_zarr(templates, paths["gt_templates"], progress=False)
        write_zarr(rec, paths["recording"], progress=False)  # written last: its presence marks completion
    if not paths["recording_ref"].exists():
        rec = open_source("zarr", paths["recording"])
        write_recording_ref(rec, paths["recording_ref"], format="zarr", source_path=paths["recording"])
    if upto in ("preprocess", "sort") and not paths["preprocessed"].exists():
        from ..preprocessing import apply_pipeline
        from .config import validate_config

        steps = validate_config({})["preprocess"]["steps"]
        pre = apply_pipeline(open_source("zarr", paths["recording"]), steps)
        write_zarr(pre, paths["preprocessed"], progress=False)
    if upto == "sort" and not paths["sorting"].exists():
        from ..sorting import run_sorter

        sorting = run_sorter(open_source("zarr", paths["preprocessed"]), sorter="spkfn", seed=seed, progress=False)
        write_zarr(sorting, paths["sorting"], progress=False)
    return {k: str(v) for k, v in paths.items()}
