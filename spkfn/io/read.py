"""One entry point from a sessions-sheet row (format, path, probe, options) to a lazy recording.

The workflow's ``read`` stage writes a small *recording reference* (``recording.json``: how to
open the source, the probe, and a fingerprint of the source) instead of copying raw data; later
stages call :func:`open_recording` on it, which re-opens the source lazily and checks that it did
not change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import xarray as xr

from ..core.atomic import write_json_atomic
from .probes import read_probe, set_probe
from .recording import check_recording

__all__ = ["open_source", "write_recording_ref", "open_recording", "read_recording", "REF_FORMAT"]

REF_FORMAT = "spkfn-recording-ref-1"

def _neo_formats() -> dict:
    from .neo_io import neo_formats

    return {"neo": None, **{name: name for name in neo_formats().index}}

#: Options every format accepts, applied after opening.
COMMON_OPTIONS = ("channel_ids", "time_range_s")


def open_source(format: str, path, *, probe=None, options: dict | None = None) -> xr.DataArray:
    """Open a recording from its format name, path and reader options (lazily).

    Parameters
    ----------
    format : str
        ``binary`` (options: ``sampling_frequency``, ``num_channels``, ``dtype``, optional
        ``offset_bytes``, ``time_axis``, ``gain_to_uV``, ...), ``spkfn_binary`` (a file written by
        :func:`spkfn.io.write_binary`), ``zarr`` (written by :func:`spkfn.io.write_zarr`), ``nwb``,
        or a neo-backed format (``neo``, ``spikeglx``, ``openephys``, ``intan``, ``blackrock``, ...).
    path : str or Path
        File or folder.
    probe : str, Path, or probeinterface object, optional
        Probe to attach (file path or object); overrides the probe the format carries.
    options : dict, optional
        Reader options, plus ``channel_ids`` (keep these channels, in this order) and
        ``time_range_s`` (``[start, stop]`` seconds from the first sample).

    Returns
    -------
    xarray.DataArray
    """
    options = dict(options or {})
    common = {k: options.pop(k) for k in COMMON_OPTIONS if k in options}
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{format} data {str(path)!r} does not exist; check the session's path.")
    if format == "binary":
        from .binary import read_binary

        needed = [k for k in ("sampling_frequency", "num_channels", "dtype") if k not in options]
        if needed:
            raise ValueError(
                f"format 'binary' needs options {needed} (e.g. {{\"sampling_frequency\": 30000, "
                "\"num_channels\": 384, \"dtype\": \"int16\"}); add them to the session's options."
            )
        rec = _call(read_binary, path, options, format)
    elif format == "spkfn_binary":
        from .binary import read_binary_folder

        rec = _call(read_binary_folder, path, options, format)
    elif format == "zarr":
        from .zarr_io import read_zarr

        rec = _call(read_zarr, path, options, format)
        if not isinstance(rec, xr.DataArray) or rec.dims != ("time", "channel"):
            raise ValueError(f"{path} is a spkfn zarr store but not a recording.")
    elif format == "nwb":
        try:
            from .nwb import read_nwb
        except ImportError as e:
            raise ImportError(f"reading NWB needs the optional extra: pip install 'spkfn[nwb]' ({e})") from None
        rec = _call(read_nwb, path, options, format)
    elif format in _neo_formats():
        from .neo_io import read_neo

        if _neo_formats()[format] is not None:
            options.setdefault("format", _neo_formats()[format])
        rec = _call(read_neo, path, options, format)
    else:
        raise ValueError(f"unknown format {format!r}; valid formats: binary, spkfn_binary, zarr, nwb, {', '.join(_neo_formats())}.")
    if probe is not None:
        pg = read_probe(probe) if isinstance(probe, str | Path) else probe
        rec = set_probe(rec, pg)
    if "channel_ids" in common:
        ids = [str(c) for c in common["channel_ids"]]
        missing = [c for c in ids if c not in set(rec.channel.values.tolist())]
        if missing:
            raise ValueError(f"options.channel_ids names channels not in the recording: {missing[:10]}; available: {rec.channel.values[:10].tolist()}...")
        rec = rec.sel(channel=ids)
    if "time_range_s" in common:
        rec = _time_slice(rec, common["time_range_s"])
    return check_recording(rec)


def _call(func, path, options, format):
    try:
        return func(path, **options)
    except TypeError as e:
        if "unexpected keyword" in str(e):
            raise ValueError(f"format {format!r}: {e}; remove or rename that option.") from None
        raise


def _time_slice(rec: xr.DataArray, time_range_s) -> xr.DataArray:
    if len(time_range_s) != 2:
        raise ValueError(f"options.time_range_s must be [start_s, stop_s]; got {time_range_s!r}.")
    fs = float(rec.attrs["sampling_frequency"])
    a, b = (int(round(float(t) * fs)) for t in time_range_s)
    n = rec.sizes["time"]
    if not 0 <= a < b <= n:
        raise ValueError(f"options.time_range_s={list(time_range_s)} is outside the recording [0, {n / fs:.3f}] s.")
    return rec.isel(time=slice(a, b))


def _fingerprint(path: Path) -> dict:
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return {"bytes": int(sum(p.stat().st_size for p in files)), "files": len(files)}
    return {"bytes": int(path.stat().st_size), "files": 1}


def write_recording_ref(rec: xr.DataArray, path, *, format: str, source_path, probe_path=None,
                        options: dict | None = None) -> Path:
    """Write a recording reference (JSON) that :func:`open_recording` re-opens lazily."""
    check_recording(rec)
    path = Path(path)
    ref = {
        "format": REF_FORMAT,
        "source": {"format": format, "path": _portable(source_path, path), "options": options or {},
                   "probe_path": _portable(probe_path, path) if probe_path else None,
                   "fingerprint": _fingerprint(Path(source_path))},
        "num_samples": int(rec.sizes["time"]),
        "num_channels": int(rec.sizes["channel"]),
        "sampling_frequency": float(rec.attrs["sampling_frequency"]),
        "channel_ids": rec.channel.values.astype(str).tolist(),
        "probe": rec.attrs.get("probe"),
    }
    return write_json_atomic(ref, path)


def _portable(target, ref_path: Path) -> str:
    """Relative paths are stored relative to the reference's folder (results stay movable)."""
    target = Path(target)
    if target.is_absolute():
        return str(target)
    return os.path.relpath(target.resolve(), ref_path.resolve().parent)


def _resolve(stored: str | None, ref_path: Path) -> Path | None:
    if not stored:
        return None
    p = Path(stored)
    return p if p.is_absolute() else ref_path.parent / p


def open_recording(path) -> xr.DataArray:
    """Open a recording from a reference JSON, a spkfn zarr store, or a spkfn binary file.

    A reference re-opens its source and checks that it has the recorded size, channels and
    sampling rate (a changed source is an error, not silently different data).
    """
    path = Path(path)
    if path.suffix == ".json" and path.is_file():
        ref = json.loads(path.read_text())
        if ref.get("format") != REF_FORMAT:
            raise ValueError(f"{path} is not a spkfn recording reference (format {ref.get('format')!r}).")
        src = ref["source"]
        spath = _resolve(src["path"], path)
        if not spath.exists():
            raise FileNotFoundError(f"the source of {path.name}, {str(spath)!r}, no longer exists; re-run the read stage.")
        if _fingerprint(spath) != src["fingerprint"]:
            raise ValueError(f"the source {str(spath)!r} changed since {path.name} was written (size differs); re-run the read stage.")
        rec = open_source(src["format"], spath, probe=_resolve(src.get("probe_path"), path), options=src.get("options"))
        if rec.sizes["time"] != ref["num_samples"] or rec.channel.values.astype(str).tolist() != ref["channel_ids"]:
            raise ValueError(f"{spath} no longer matches {path.name} (samples or channels differ); re-run the read stage.")
        if not np.isclose(float(rec.attrs["sampling_frequency"]), ref["sampling_frequency"]):
            raise ValueError(f"{spath}: sampling rate differs from {path.name}; re-run the read stage.")
        return rec
    if path.is_dir():
        return open_source("zarr", path)
    if path.is_file():
        return open_source("spkfn_binary", path)
    raise FileNotFoundError(f"recording {str(path)!r} does not exist.")


read_recording = open_recording
