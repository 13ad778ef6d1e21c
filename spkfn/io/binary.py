"""Flat binary recordings: lazy memmap reads, streamed atomic writes with a JSON sidecar."""

from __future__ import annotations

import json
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr

from ..core.atomic import atomic_path, remove_path, write_json_atomic
from ..core.chunks import dask_from_array, default_chunk_size, store
from .recording import _check_sampling_frequency, check_recording, from_array

__all__ = ["read_binary", "write_binary", "read_binary_folder", "sidecar_path"]

SIDECAR_FORMAT = "spkfn-binary-1"


def sidecar_path(path) -> Path:
    """JSON sidecar beside a binary file: ``traces.bin`` -> ``traces.bin.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def read_binary(
    path,
    *,
    sampling_frequency: float,
    num_channels: int,
    dtype,
    offset_bytes: int = 0,
    time_axis: int = 0,
    channel_ids=None,
    channel_locations=None,
    probe=None,
    gain_to_uV=None,
    offset_to_uV=None,
    t_start_s: float = 0.0,
    chunk_size: int | None = None,
) -> xr.DataArray:
    """Open a flat binary file as a lazy recording (memmap under dask; nothing is loaded).

    Parameters
    ----------
    path : str or Path
        The file.
    sampling_frequency : float
        Hz.
    num_channels : int
        Channels interleaved in the file (all of them, including sync channels).
    dtype : str or numpy dtype
        Sample type on disk (e.g. ``"int16"``).
    offset_bytes : int, default 0
        Header size to skip.
    time_axis : {0, 1}, default 0
        0: samples are interleaved (time-major, ``(n_samples, n_channels)``); 1: channel-major.
    channel_ids, channel_locations, probe, gain_to_uV, offset_to_uV, t_start_s
        As in :func:`spkfn.io.from_array`.
    chunk_size : int, optional
        Samples per dask chunk (default: about 32 MB of float32 per chunk).

    Returns
    -------
    xarray.DataArray

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.bin"
    >>> np.arange(12, dtype="int16").tofile(p)
    >>> rec = read_binary(p, sampling_frequency=1000.0, num_channels=3, dtype="int16")
    >>> rec.shape, rec.values[1].tolist()
    ((4, 3), [3, 4, 5])
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"binary file {str(path)!r} does not exist.")
    fs = _check_sampling_frequency(sampling_frequency)
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype {dtype!r} is not a numpy dtype (e.g. 'int16', 'float32').") from None
    num_channels = int(num_channels)
    if num_channels < 1:
        raise ValueError(f"num_channels must be >= 1; got {num_channels}.")
    if time_axis not in (0, 1):
        raise ValueError(f"time_axis must be 0 (time-major) or 1 (channel-major); got {time_axis}.")
    offset_bytes = int(offset_bytes)
    size = path.stat().st_size
    if offset_bytes < 0 or offset_bytes > size:
        raise ValueError(f"offset_bytes={offset_bytes} is outside the file ({size} bytes).")
    frame = num_channels * dtype.itemsize
    payload = size - offset_bytes
    if payload % frame:
        hint = [c for c in (num_channels - 1, num_channels + 1, 384, 385, 32, 64, 128) if c > 0 and payload % (c * dtype.itemsize) == 0]
        raise ValueError(
            f"{path.name}: {payload} bytes after offset {offset_bytes} is not a multiple of "
            f"num_channels × itemsize = {num_channels} × {dtype.itemsize} = {frame}; check num_channels, "
            f"dtype and offset_bytes (a header?)" + (f". Channel counts that would fit: {sorted(set(hint))}" if hint else ".")
        )
    n_samples = payload // frame
    if n_samples == 0:
        raise ValueError(f"{path.name} holds no samples after offset {offset_bytes}.")
    shape = (n_samples, num_channels) if time_axis == 0 else (num_channels, n_samples)
    mm = np.memmap(path, dtype=dtype, mode="r", offset=offset_bytes, shape=shape)
    if chunk_size is None:
        chunk_size = default_chunk_size(num_channels, sampling_frequency=fs)
    chunks = (chunk_size, num_channels) if time_axis == 0 else (num_channels, chunk_size)
    # A deterministic name without hashing the whole file; no copy of the memmap (see dask_from_array).
    data = dask_from_array(mm, chunks=chunks, name=f"binary-{path.resolve()}-{size}-{path.stat().st_mtime_ns}-{offset_bytes}-{dtype.str}-{num_channels}-{time_axis}-{chunk_size}")
    if time_axis == 1:
        data = data.T
    return from_array(
        data,
        sampling_frequency=fs,
        channel_ids=channel_ids,
        channel_locations=channel_locations,
        probe=probe,
        gain_to_uV=gain_to_uV,
        offset_to_uV=offset_to_uV,
        t_start_s=t_start_s,
        source={"format": "binary", "path": str(path.resolve()), "stream": ""},
    )


def write_binary(
    rec: xr.DataArray,
    path,
    *,
    dtype=None,
    n_jobs: int | None = None,
    progress: bool = True,
) -> Path:
    """Write a recording to a time-major flat binary file plus a JSON sidecar, streamed and atomic.

    The sidecar (``<path>.json``) holds everything :func:`read_binary_folder` needs: sampling rate,
    channel count and ids, dtype, gains, geometry, groups, probe, start time. Values are written as
    they are (no scaling); with ``dtype`` they are cast (integer targets are rounded and clipped to
    the type's range, so no value wraps around).

    Returns the path written.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from spkfn.io import from_array
    >>> rec = from_array(np.arange(6, dtype="int16").reshape(3, 2), sampling_frequency=1000.0)
    >>> p = write_binary(rec, pathlib.Path(tempfile.mkdtemp()) / "r.bin", progress=False)
    >>> read_binary_folder(p).values.tolist()
    [[0, 1], [2, 3], [4, 5]]
    """
    check_recording(rec)
    path = Path(path)
    out_dtype = np.dtype(dtype) if dtype is not None else np.dtype(rec.dtype)
    data = _as_chunked(rec)
    data = cast_for_write(data, out_dtype)
    meta = _sidecar(rec, out_dtype)
    side = sidecar_path(path)
    remove_path(side)  # the data file is trusted only when its sidecar exists
    with atomic_path(path) as tmp:
        if data.shape[0] * data.shape[1] == 0:
            tmp.write_bytes(b"")
        else:
            target = np.memmap(tmp, dtype=out_dtype, mode="w+", shape=data.shape)
            store(data, target, n_jobs=n_jobs, progress=progress, desc=f"write {path.name}")
            target.flush()
            del target
    write_json_atomic(meta, side)
    return path


def _as_chunked(rec: xr.DataArray) -> da.Array:
    from ..core.chunks import as_dask

    return as_dask(rec)


def cast_for_write(data: da.Array, dtype: np.dtype) -> da.Array:
    """Cast with rounding and clipping when going from floats to integers (documented casting)."""
    dtype = np.dtype(dtype)
    if data.dtype == dtype:
        return data
    if dtype.kind in "iu" and data.dtype.kind == "f":
        info = np.iinfo(dtype)
        return da.clip(da.round(data), info.min, info.max).astype(dtype)
    if dtype.kind in "iu" and data.dtype.kind in "iu":
        info = np.iinfo(dtype)
        src = np.iinfo(data.dtype)
        if src.min < info.min or src.max > info.max:
            return da.clip(data, info.min, info.max).astype(dtype)
    return data.astype(dtype)


def _sidecar(rec: xr.DataArray, dtype: np.dtype) -> dict:
    from .recording import has_geometry

    meta = {
        "format": SIDECAR_FORMAT,
        "sampling_frequency": float(rec.attrs["sampling_frequency"]),
        "num_channels": int(rec.sizes["channel"]),
        "num_samples": int(rec.sizes["time"]),
        "dtype": np.dtype(dtype).str,
        "time_axis": 0,
        "offset_bytes": 0,
        "t_start_s": float(rec.coords["time"].values[0]) if rec.sizes["time"] else 0.0,
        "channel_ids": rec.coords["channel"].values.astype(str).tolist(),
        "gain_to_uV": rec.coords["gain_to_uV"].values.tolist(),
        "offset_to_uV": rec.coords["offset_to_uV"].values.tolist(),
        "group": rec.coords["group"].values.tolist(),
        "channel_locations": np.column_stack([rec.x.values, rec.y.values]).tolist() if has_geometry(rec) else None,
        "probe": rec.attrs.get("probe"),
        "source": rec.attrs.get("source"),
    }
    return meta


def read_binary_folder(path, *, chunk_size: int | None = None) -> xr.DataArray:
    """Open a binary file written by :func:`write_binary` (reads its ``.json`` sidecar).

    Raises ``FileNotFoundError`` when the sidecar is missing: the file may be incomplete.
    """
    path = Path(path)
    side = sidecar_path(path)
    if not side.exists():
        raise FileNotFoundError(
            f"no sidecar {side.name} beside {path.name}: the file was not written by spkfn.io.write_binary "
            "or its write did not finish. Open raw files with spkfn.io.read_binary(path, sampling_frequency=..., "
            "num_channels=..., dtype=...)."
        )
    meta = json.loads(side.read_text())
    if meta.get("format") != SIDECAR_FORMAT:
        raise ValueError(f"{side.name} is not a spkfn binary sidecar (format {meta.get('format')!r}).")
    rec = read_binary(
        path,
        sampling_frequency=meta["sampling_frequency"],
        num_channels=meta["num_channels"],
        dtype=meta["dtype"],
        offset_bytes=meta.get("offset_bytes", 0),
        time_axis=meta.get("time_axis", 0),
        channel_ids=meta["channel_ids"],
        channel_locations=meta.get("channel_locations"),
        gain_to_uV=meta["gain_to_uV"],
        offset_to_uV=meta["offset_to_uV"],
        t_start_s=meta.get("t_start_s", 0.0),
        chunk_size=chunk_size,
    )
    if rec.sizes["time"] != meta["num_samples"]:
        raise ValueError(f"{path.name} has {rec.sizes['time']} samples but its sidecar says {meta['num_samples']}: the file is truncated or corrupt.")
    rec = rec.assign_coords(group=("channel", np.asarray(meta["group"], dtype=np.int64)))
    if meta.get("probe"):
        rec.attrs["probe"] = meta["probe"]
    if meta.get("source"):
        rec.attrs["source"] = {**meta["source"], "binary_copy": str(path.resolve())}
    return rec
