"""Chunked execution over lazily backed recordings, with margins and a progress bar.

Every function that touches traces goes through here, so memory is bounded by
``n_jobs × chunk size`` whatever the recording length. Chunks run on dask's threaded scheduler;
kernels release the GIL (numba ``nogil=True``, numpy, scipy), so threads use all cores.
"""

from __future__ import annotations

import os

import dask
import dask.array as da
import numpy as np
import xarray as xr

__all__ = [
    "resolve_n_jobs",
    "default_chunk_size",
    "as_dask",
    "dask_from_array",
    "chunk_bounds",
    "map_chunks",
    "store",
    "progress_bar",
]

#: Target bytes per chunk of traces (before conversion to float32): ~1 s of 384 int16 channels.
DEFAULT_CHUNK_BYTES = 32 * 1024 * 1024


def resolve_n_jobs(n_jobs: int | None) -> int:
    """``None`` or ``-1`` -> the cores this process may use; otherwise a positive int."""
    if n_jobs is None or n_jobs == -1:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - not Linux
            return max(1, os.cpu_count() or 1)
    n = int(n_jobs)
    if n < 1:
        raise ValueError(f"n_jobs must be >= 1 (or None / -1 for all cores); got {n_jobs!r}.")
    return n


def default_chunk_size(n_channels: int, *, itemsize: int = 4, sampling_frequency: float | None = None,
                       chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
    """Samples per chunk so that one float32 chunk is about ``chunk_bytes``.

    Clamped to [0.1 s, 10 s] when ``sampling_frequency`` is given.
    """
    n = max(1, int(chunk_bytes // max(1, n_channels * itemsize)))
    if sampling_frequency:
        n = int(np.clip(n, int(0.1 * sampling_frequency), int(10 * sampling_frequency)))
    return n


def chunk_bounds(num_samples: int, chunk_size: int) -> np.ndarray:
    """``(n_chunks, 2)`` array of ``[start, stop)`` covering ``[0, num_samples)``.

    >>> chunk_bounds(10, 4).tolist()
    [[0, 4], [4, 8], [8, 10]]
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1; got {chunk_size}.")
    starts = np.arange(0, num_samples, chunk_size, dtype=np.int64)
    return np.column_stack([starts, np.minimum(starts + chunk_size, num_samples)])


class _ArrayView:
    """Read-only array-like over a numpy array or memmap, which dask wraps without copying.

    ``dask.array.from_array`` (dask >= 2026.x) copies any array-like that has a ``copy`` method:
    a memmap (a whole recording file) would be read into memory, and an in-memory recording
    duplicated, at the moment it is wrapped. Slices are read only when a chunk is computed.
    """

    __slots__ = ("_a",)

    def __init__(self, a):
        self._a = a

    @property
    def shape(self):
        return self._a.shape

    @property
    def dtype(self):
        return self._a.dtype

    @property
    def ndim(self):
        return self._a.ndim

    def __len__(self):
        return self._a.shape[0]

    def __getitem__(self, index):
        return self._a[index]


def dask_from_array(x, *, chunks, name=False) -> da.Array:
    """``dask.array.from_array`` over a numpy array or memmap **without copying it**.

    >>> import numpy as np
    >>> dask_from_array(np.arange(6).reshape(3, 2), chunks=(2, 2)).sum().compute()
    np.int64(15)
    """
    return da.from_array(_ArrayView(x), chunks=chunks, name=name, asarray=True,
                         meta=np.empty((0,) * x.ndim, dtype=x.dtype))


def as_dask(rec: xr.DataArray, *, chunk_size: int | None = None) -> da.Array:
    """The traces as a dask array chunked along time only (all channels in each chunk).

    Keeps the existing time chunks of a dask-backed recording unless ``chunk_size`` is given.
    """
    data = rec.data
    n_ch = rec.sizes["channel"]
    if chunk_size is None:
        if isinstance(data, da.Array) and len(data.chunks[1]) == 1:
            return data
        chunk_size = default_chunk_size(n_ch, sampling_frequency=rec.attrs.get("sampling_frequency"))
    if isinstance(data, da.Array):
        if data.chunks[0][0] == chunk_size and len(data.chunks[1]) == 1:
            return data
        return data.rechunk({0: chunk_size, 1: -1})
    return dask_from_array(np.asarray(data), chunks=(chunk_size, n_ch))


def progress_bar(desc: str, *, enabled: bool = True):
    """A dask callback showing a tqdm bar (or a no-op context when disabled)."""
    import contextlib

    if not enabled:
        return contextlib.nullcontext()
    from tqdm.dask import TqdmCallback

    return TqdmCallback(desc=desc, mininterval=1.0, leave=False)


def map_chunks(
    func,
    rec: xr.DataArray,
    *,
    margin_samples: int = 0,
    chunk_size: int | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
    desc: str = "chunks",
    **func_kwargs,
) -> list:
    """Apply ``func`` to every time chunk (with margins) and return the results in chunk order.

    ``func(traces, *, start, stop, left, right, **func_kwargs)`` receives a numpy array of samples
    ``[start - left, stop + right)`` (margins are clipped at the recording edges, so ``left`` and
    ``right`` may be smaller than ``margin_samples``) and returns anything small (peaks, sums, ...).

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> rec = from_array(np.arange(20, dtype="float32").reshape(10, 2), sampling_frequency=10.0)
    >>> def total(x, *, start, stop, left, right):
    ...     return x[left:x.shape[0] - right].sum()
    >>> float(sum(map_chunks(total, rec, chunk_size=4, progress=False)))
    190.0
    """
    data = as_dask(rec, chunk_size=chunk_size)
    n = data.shape[0]
    sizes = data.chunks[0]
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    margin = int(margin_samples)

    @dask.delayed(pure=True)
    def _run(block, start, stop, left, right):
        return func(np.asarray(block), start=start, stop=stop, left=left, right=right, **func_kwargs)

    tasks = []
    for k in range(len(sizes)):
        start, stop = int(bounds[k]), int(bounds[k + 1])
        lo, hi = max(0, start - margin), min(n, stop + margin)
        block = data[lo:hi]
        tasks.append(_run(block, start, stop, start - lo, hi - stop))
    with progress_bar(desc, enabled=progress):
        return list(dask.compute(*tasks, scheduler="threads", num_workers=resolve_n_jobs(n_jobs)))


def store(data: da.Array, target, *, n_jobs: int | None = None, progress: bool = True, desc: str = "write") -> None:
    """Compute ``data`` block by block into ``target`` (memmap or zarr array), bounded memory."""
    with progress_bar(desc, enabled=progress):
        da.store(data, target, lock=False, scheduler="threads", num_workers=resolve_n_jobs(n_jobs))
