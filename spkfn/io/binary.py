"""Flat binary recordings: lazy chunked reads, streamed atomic writes with a JSON sidecar."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr

from ..core.atomic import atomic_path, remove_path, write_json_atomic
from ..core.chunks import default_chunk_size, resolve_n_jobs, store
from .recording import _check_sampling_frequency, check_recording, from_array

__all__ = ["read_binary", "write_binary", "read_binary_folder", "sidecar_path"]

SIDECAR_FORMAT = "spkfn-binary-1"

#: Outputs at least this large are written with O_DIRECT by default (``write_binary(direct_io=None)``).
DIRECT_IO_MIN_BYTES = 1 << 30
_DIRECT_ALIGN = 4096  # O_DIRECT offsets, lengths and buffers: multiples of the page size


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
    """Open a flat binary file as a lazy recording (nothing is loaded).

    Each chunk is read with plain file reads when it is computed; no memory map stays open, so
    reading a long recording does not grow the process's resident memory.

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
    reader = _BinaryReader(path, dtype=dtype, shape=shape, offset_bytes=offset_bytes, time_axis=time_axis)
    if chunk_size is None:
        chunk_size = default_chunk_size(num_channels, sampling_frequency=fs)
    chunks = (chunk_size, num_channels) if time_axis == 0 else (num_channels, chunk_size)
    # A deterministic name without hashing the whole file.
    data = da.from_array(reader, chunks=chunks, name=f"binary-{path.resolve()}-{size}-{path.stat().st_mtime_ns}-{offset_bytes}-{dtype.str}-{num_channels}-{time_axis}-{chunk_size}")
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
    fsync: bool = False,
    direct_io: bool | None = None,
) -> Path:
    """Write a recording to a time-major flat binary file plus a JSON sidecar, streamed and atomic.

    The sidecar (``<path>.json``) holds everything :func:`read_binary_folder` needs: sampling rate,
    channel count and ids, dtype, gains, geometry, groups, probe, start time. Values are written as
    they are (no scaling); with ``dtype`` they are cast (integer targets are rounded and clipped to
    the type's range, so no value wraps around).

    Blocks are computed in parallel (``n_jobs`` threads) and written with positional writes as
    they complete; memory stays bounded by ``n_jobs`` blocks. The data goes through the OS page
    cache like any file write; ``fsync=True`` also waits until it is on disk (slower; only needed
    to survive a power loss right after the write).

    Large outputs (``direct_io=None``: at least :data:`DIRECT_IO_MIN_BYTES`, 1 GiB) bypass the page
    cache (Linux ``O_DIRECT``, handed to one writer thread so that computing goes on meanwhile):
    an output of many GB would evict the cache anyway, and filling the cache with fresh pages
    costs kernel CPU time (~3 s per GB on a 2-core VM, as much as the preprocessing itself). The
    file is then read from the device, not the cache, the first time. ``direct_io=False`` always
    writes through the cache; ``True`` bypasses it whatever the size. File systems without
    ``O_DIRECT`` (tmpfs) are written through the cache.

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
            nbytes = data.shape[0] * data.shape[1] * out_dtype.itemsize
            direct = nbytes >= DIRECT_IO_MIN_BYTES if direct_io is None else bool(direct_io)
            with _BinaryWriter(tmp, dtype=out_dtype, shape=data.shape, fsync=fsync, direct=direct,
                               queue_blocks=max(2, resolve_n_jobs(n_jobs))) as target:
                store(data, target, n_jobs=n_jobs, progress=progress, desc=f"write {path.name}")
    write_json_atomic(meta, side)
    return path


class _BinaryReader:
    """Array-like view of a flat binary file for ``dask.array.from_array``.

    ``reader[rows, cols]`` reads the needed rows with ``readinto`` into a new array (time-major
    files: one contiguous read per chunk). Nothing stays mapped, so file pages are not counted in
    the process's memory and memory stays flat however long the file is.
    """

    def __init__(self, path: Path, *, dtype: np.dtype, shape: tuple[int, int], offset_bytes: int, time_axis: int):
        self.path = str(path)
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(s) for s in shape)
        self.ndim = 2
        self.offset_bytes = int(offset_bytes)
        self.time_axis = int(time_axis)

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (2 - len(key))
        if self.time_axis == 1:
            # channel-major file: a short-lived memory map, copied out and closed
            mm = np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset_bytes, shape=self.shape)
            out = np.array(mm[key])
            del mm  # unmapped when the last reference goes
            return out
        rows, cols = key
        n = self.shape[0]
        if isinstance(rows, int | np.integer):
            r = int(rows) + (n if rows < 0 else 0)
            if not 0 <= r < n:
                raise IndexError(f"row {rows} is out of bounds for {n} samples.")
            return self._read_rows(r, r + 1)[0][cols]
        if isinstance(rows, slice):
            start, stop, step = rows.indices(n)
            if step == 1:
                block = self._read_rows(start, max(start, stop))
                return block if cols == slice(None) else block[:, cols]
            idx = np.arange(start, stop, step)
        else:
            idx = np.asarray(rows)
            idx = np.flatnonzero(idx) if idx.dtype == bool else np.where(idx < 0, idx + n, idx).astype(np.int64)
        if idx.size == 0:
            return np.empty((0, self.shape[1]), dtype=self.dtype)[:, cols]
        lo, hi = int(idx.min()), int(idx.max()) + 1
        if lo < 0 or hi > n:
            raise IndexError(f"rows outside [0, {n}) requested.")
        return self._read_rows(lo, hi)[idx - lo][:, cols]

    def _read_rows(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, self.shape[1]), dtype=self.dtype)
        if out.size == 0:
            return out
        view = memoryview(out).cast("B")
        pos = self.offset_bytes + start * self.shape[1] * self.dtype.itemsize
        with open(self.path, "rb", buffering=0) as f:
            f.seek(pos)
            done = 0
            while done < len(view):
                got = f.readinto(view[done:])
                if not got:
                    raise OSError(f"{self.path} ended early: rows {start}-{stop} are beyond its end (was it truncated?).")
                done += got
        return out


class _BinaryWriter:
    """Write target for ``dask.array.store``: each time block is written at its offset with
    ``pwrite`` (thread-safe, no memory map, so written pages are not counted in the process's
    memory). Only time-major writes of whole rows are supported.

    With ``direct=True`` (Linux ``O_DIRECT``) blocks bypass the page cache: the workers hand each
    block to one writer thread (a queue of ``queue_blocks``, so memory stays bounded) and go on
    computing while it waits on the device. Page-aligned parts go through an aligned buffer with
    ``O_DIRECT``; the unaligned ends of a block (a few kB at most) are written buffered. If the
    file system refuses ``O_DIRECT`` (tmpfs, some network file systems) everything is written
    buffered instead.
    """

    def __init__(self, path: Path, *, dtype: np.dtype, shape: tuple[int, int], fsync: bool = False,
                 direct: bool = False, queue_blocks: int = 2):
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(s) for s in shape)
        self.ndim = 2
        self.fsync = fsync
        self.direct = bool(direct) and hasattr(os, "O_DIRECT") and hasattr(os, "pwrite")
        self.queue_blocks = max(1, int(queue_blocks))
        self._fd = None
        self._dfd = None
        self._lock = None
        self._queue = None
        self._thread = None
        self._error = None

    def __enter__(self):
        import threading

        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        os.ftruncate(self._fd, self.shape[0] * self.shape[1] * self.dtype.itemsize)
        self._lock = threading.Lock()
        if self.direct:
            try:
                self._dfd = os.open(self.path, os.O_WRONLY | os.O_DIRECT)
            except OSError:  # the file system does not support O_DIRECT
                self._dfd = None
        if self._dfd is not None:
            import queue

            self._queue = queue.Queue(maxsize=self.queue_blocks)
            self._thread = threading.Thread(target=self._drain, name="spkfn-binary-writer", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        try:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join()
                self._thread = None
                if self._error is not None and exc[0] is None:
                    raise OSError(f"writing {self.path} failed: {self._error}") from self._error
            if self.fsync and exc[0] is None:
                os.fsync(self._fd)
        finally:
            for fd in (self._dfd, self._fd):
                if fd is not None:
                    os.close(fd)
            self._fd = self._dfd = None
        return False

    def __setitem__(self, key, value):
        rows, cols = key if isinstance(key, tuple) else (key, slice(None))
        start, stop, step = rows.indices(self.shape[0])
        c0, c1, cstep = cols.indices(self.shape[1])
        if step != 1 or cstep != 1 or c0 != 0 or c1 != self.shape[1]:
            raise ValueError("binary writes must cover whole rows (all channels) of a contiguous time range.")
        block = np.ascontiguousarray(value, dtype=self.dtype)
        if block.shape != (stop - start, self.shape[1]):
            raise ValueError(f"block of shape {block.shape} does not fit rows {start}-{stop}.")
        pos = start * self.shape[1] * self.dtype.itemsize
        if self._thread is not None:
            if self._error is not None:
                raise OSError(f"writing {self.path} failed: {self._error}") from self._error
            self._queue.put((block, pos))  # blocks while the queue is full: bounded memory
            return
        self._pwrite(self._fd, memoryview(block).cast("B"), pos)

    def _pwrite(self, fd, view, pos):
        if hasattr(os, "pwrite"):
            while len(view):
                done = os.pwrite(fd, view, pos)
                view = view[done:]
                pos += done
        else:  # pragma: no cover - platforms without pwrite
            with self._lock:
                os.lseek(fd, pos, os.SEEK_SET)
                while len(view):
                    view = view[os.write(fd, view):]

    def _drain(self):
        """Writer thread: page-aligned middle of each block with O_DIRECT, unaligned ends buffered."""
        import mmap

        buf = None
        while True:
            item = self._queue.get()
            if item is None:
                break
            if self._error is not None:
                continue  # keep emptying the queue so that producers never block
            block, pos = item
            raw = memoryview(block).cast("B")
            end = pos + len(raw)
            a0 = -(-pos // _DIRECT_ALIGN) * _DIRECT_ALIGN
            a1 = end // _DIRECT_ALIGN * _DIRECT_ALIGN
            try:
                if a1 <= a0 or self._dfd is None:
                    self._pwrite(self._fd, raw, pos)
                    continue
                if a0 > pos:
                    self._pwrite(self._fd, raw[: a0 - pos], pos)
                if end > a1:
                    self._pwrite(self._fd, raw[a1 - pos:], a1)
                if buf is None or len(buf) < a1 - a0:
                    buf = mmap.mmap(-1, a1 - a0)  # anonymous maps are page-aligned
                view = memoryview(buf)[: a1 - a0]
                view[:] = raw[a0 - pos: a1 - pos]
                try:
                    self._pwrite(self._dfd, view, a0)
                except OSError as err:
                    if err.errno != errno.EINVAL:
                        raise
                    # O_DIRECT refused at write time (alignment rules of this device): buffered from now on
                    os.close(self._dfd)
                    self._dfd = None
                    self._pwrite(self._fd, raw[a0 - pos: a1 - pos], a0)
            except BaseException as err:  # reported to the producers and at exit
                self._error = err


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
        # [:1] first: .values on the lazy time coord would materialise all of it (1 h = 0.9 GB).
        "t_start_s": float(rec.coords["time"][:1].values[0]) if rec.sizes["time"] else 0.0,
        "channel_ids": rec.coords["channel"].values.astype(str).tolist(),
        "gain_to_uV": rec.coords["gain_to_uV"].values.tolist(),
        "offset_to_uV": rec.coords["offset_to_uV"].values.tolist(),
        "group": rec.coords["group"].values.tolist(),
        "channel_locations": np.column_stack([rec.x.values, rec.y.values]).tolist() if has_geometry(rec) else None,
        "probe": rec.attrs.get("probe"),
        "source": rec.attrs.get("source"),
        # the preprocessing steps already applied (apply_pipeline), so that readers do not redo them
        "pipeline": _json_or_none(rec.attrs.get("pipeline")),
    }
    return meta


def _json_or_none(value):
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return None
    return value


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
    if meta.get("pipeline"):
        rec.attrs["pipeline"] = meta["pipeline"]
    return rec
