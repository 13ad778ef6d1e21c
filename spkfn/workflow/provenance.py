"""Provenance records: what each stage ran, with which parameters, on which inputs, at what cost.

A stage notebook opens a record right after its parameters cell and finishes it last::

    record = spkfn.workflow.start_stage("preprocess", params=params, inputs=[recording_path], seed=seed)
    ...
    record.finish(outputs=[output_path], params_used=used)   # writes provenance.json atomically

``provenance.json`` holds: stage, parameters given and actually used (after defaults), seed,
versions of spkfn, Python and the scientific stack, platform, inputs and outputs with sizes and
SHA-256 checksums, wall time, peak memory (RSS of the stage's process).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
import resource
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from ..core.atomic import write_json_atomic

__all__ = ["start_stage", "StageRecord", "versions", "file_digest", "peak_memory_mb"]

PACKAGES = (
    "spkfn", "numpy", "scipy", "numba", "llvmlite", "pandas", "xarray", "dask", "zarr", "neo",
    "probeinterface", "snakemake", "matplotlib", "papermill", "tqdm", "jsonschema",
)

#: Files larger than this are fingerprinted from their first and last 16 MiB plus their size
#: (hashing 100 GB at every stage would dominate the run); recorded as method "head-tail".
FULL_HASH_LIMIT = 256 * 1024 * 1024
_PART = 16 * 1024 * 1024


def versions(extra=()) -> dict:
    """Installed versions of spkfn's stack (``None`` for absent packages)."""
    out = {"python": sys.version.split()[0]}
    for name in (*PACKAGES, *extra):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _hash_file(path: Path, h) -> str:
    size = path.stat().st_size
    with open(path, "rb") as f:
        if size <= FULL_HASH_LIMIT:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
            return "full"
        h.update(f.read(_PART))
        f.seek(size - _PART)
        h.update(f.read(_PART))
        h.update(str(size).encode())
        return "head-tail"


def file_digest(path) -> dict:
    """Size and SHA-256 of a file, or of every file of a folder (zarr stores) in sorted order."""
    path = Path(path)
    if not path.exists():
        return {"path": str(path), "exists": False}
    h = hashlib.sha256()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        size = 0
        methods = set()
        for p in files:
            h.update(str(p.relative_to(path)).encode())
            methods.add(_hash_file(p, h))
            size += p.stat().st_size
        method = "head-tail" if "head-tail" in methods else "full"
        return {"path": str(path), "kind": "folder", "files": len(files), "bytes": size, "sha256": h.hexdigest(), "method": method}
    method = _hash_file(path, h)
    return {"path": str(path), "kind": "file", "bytes": path.stat().st_size, "sha256": h.hexdigest(), "method": method}


def peak_memory_mb() -> float:
    """Peak resident memory of this process (and its waited-for children), in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0  # Linux reports KiB


@dataclass
class StageRecord:
    """An open provenance record; call :meth:`finish` when the stage's outputs are written."""

    stage: str
    params: dict
    inputs: list = field(default_factory=list)
    seed: int | None = None
    path: Path | None = None
    started: float = field(default_factory=time.perf_counter)
    started_at: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))

    def finish(self, *, outputs=(), params_used: dict | None = None, extra: dict | None = None,
               path=None) -> dict:
        """Write ``provenance.json`` (atomically) and return its content.

        ``params_used``: parameters after defaults were filled in (e.g. what ``apply_pipeline``
        or ``run_sorter`` report); defaults to the given parameters.
        """
        record = {
            "stage": self.stage,
            "started_at": self.started_at,
            "wall_time_s": round(time.perf_counter() - self.started, 3),
            "peak_memory_mb": round(peak_memory_mb(), 1),
            "seed": self.seed,
            "params": self.params,
            "params_used": params_used if params_used is not None else self.params,
            "inputs": [file_digest(p) for p in self.inputs],
            "outputs": [file_digest(p) for p in outputs],
            "versions": versions(),
            "platform": {
                "system": platform.system(),
                "release": platform.release(),
                "machine": platform.machine(),
                "processor": platform.processor(),
                "cpu_count": os.cpu_count(),
                "hostname": platform.node(),
            },
            "command": sys.argv,
        }
        if extra:
            record.update(extra)
        target = Path(path) if path is not None else self.path
        if target is not None:
            write_json_atomic(record, target)
        return record


def start_stage(stage: str, *, params: dict, inputs=(), seed: int | None = None, path=None) -> StageRecord:
    """Open a provenance record for ``stage`` (timer starts now).

    Examples
    --------
    >>> import tempfile, pathlib, json
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "provenance.json"
    >>> rec = start_stage("demo", params={"a": 1}, seed=3, path=out)
    >>> _ = rec.finish()
    >>> json.loads(out.read_text())["seed"]
    3
    """
    return StageRecord(stage=stage, params=dict(params), inputs=[Path(p) for p in inputs], seed=seed,
                       path=Path(path) if path is not None else None)
