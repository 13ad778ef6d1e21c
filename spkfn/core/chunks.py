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
    "STORE_BATCH_CHUNKS",
    "reduce_chunks",
]

#: Target bytes per float32 chunk of traces: ~0.55 s of 384 channels, ~6.5 s of 32.
#: Kept below 32 MiB *including* filter margins: glibc serves larger blocks with a fresh mmap
#: each time (page faults + zeroing, measured at ~9 ms per 34 MB array, ~2-3 s of CPU per minute
#: of 384-channel data through a filter + reference + write), smaller ones are reused.
DEFAULT_CHUNK_BYTES = 24 * 1024 * 1024


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
    from tqdm import tqdm
    from tqdm.dask import TqdmCallback

    # Plain tqdm (text): renders in terminals, logs and executed notebooks alike, without widgets.
    return TqdmCallback(desc=desc, mininterval=1.0, leave=False, tqdm_class=tqdm)


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
    Chunks are computed :data:`STORE_BATCH_CHUNKS` at a time, so the task graph stays the same size
    however long the recording is; the progress bar counts samples.

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
    return list(_iter_chunk_results(func, rec, margin_samples=margin_samples, chunk_size=chunk_size,
                                    n_jobs=n_jobs, progress=progress, desc=desc, batch_chunks=STORE_BATCH_CHUNKS,
                                    func_kwargs=func_kwargs))


def _iter_chunk_results(func, rec, *, margin_samples, chunk_size, n_jobs, progress, desc, batch_chunks, func_kwargs):
    """Yield ``func``'s result for every chunk, in chunk order, computing ``batch_chunks`` at a time
    (one dask graph per batch: upstream blocks shared by neighbouring chunks are computed once
    within a batch, and the graph does not grow with the recording's length)."""
    data = as_dask(rec, chunk_size=chunk_size)
    n = data.shape[0]
    sizes = data.chunks[0]
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    margin = int(margin_samples)
    workers = resolve_n_jobs(n_jobs)
    batch = max(1, int(batch_chunks))

    @dask.delayed(pure=True)
    def _run(block, start, stop, left, right):
        return func(np.asarray(block), start=start, stop=stop, left=left, right=right, **func_kwargs)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=int(n), desc=desc, unit="sample", unit_scale=True, mininterval=1.0, leave=False)
    try:
        for k0 in range(0, len(sizes), batch):
            tasks = []
            for k in range(k0, min(k0 + batch, len(sizes))):
                start, stop = int(bounds[k]), int(bounds[k + 1])
                lo, hi = max(0, start - margin), min(n, stop + margin)
                tasks.append(_run(data[lo:hi], start, stop, start - lo, hi - stop))
            yield from dask.compute(*tasks, scheduler="threads", num_workers=workers)
            if bar is not None:
                bar.update(int(bounds[min(k0 + batch, len(sizes))] - bounds[k0]))
    finally:
        if bar is not None:
            bar.close()


#: Time chunks computed per scheduler call in :func:`store`: the task graph (and the scheduler's
#: bookkeeping, ~2.5 kB per task) then stays the same size however long the recording is.
STORE_BATCH_CHUNKS = 128


def store(data: da.Array, target, *, n_jobs: int | None = None, progress: bool = True, desc: str = "write",
          batch_chunks: int = STORE_BATCH_CHUNKS) -> None:
    """Compute ``data`` block by block into ``target`` (array-like with ``__setitem__``), bounded memory.

    Time chunks are computed ``batch_chunks`` at a time, so memory does not grow with the number
    of chunks (the graph of a whole long recording would: ~25 MB per 10 min of 384 channels,
    plus the scheduler's state). Chunks next to a batch boundary are read (or computed) again for
    the margins of the neighbouring batch: a ~1-2 % overhead.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> out = np.zeros((10, 2))
    >>> store(da.ones((10, 2), chunks=(3, 2)), out, progress=False, batch_chunks=2)
    >>> float(out.sum())
    20.0
    """
    workers = resolve_n_jobs(n_jobs)
    sizes = data.chunks[0] if data.ndim else ()
    if data.ndim == 0 or len(sizes) <= batch_chunks:
        with progress_bar(desc, enabled=progress):
            da.store(data, target, lock=False, scheduler="threads", num_workers=workers)
        return
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    starts = list(range(0, len(sizes), int(batch_chunks)))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=int(bounds[-1]), desc=desc, unit="sample", unit_scale=True, mininterval=1.0, leave=False)
    try:
        for k in starts:
            a, b = int(bounds[k]), int(bounds[min(k + int(batch_chunks), len(sizes))])
            region = (slice(a, b),) + tuple(slice(0, n) for n in data.shape[1:])
            da.store(data[a:b], target, regions=region, lock=False, scheduler="threads", num_workers=workers)
            if bar is not None:
                bar.update(b - a)
    finally:
        if bar is not None:
            bar.close()


def reduce_chunks(
    func,
    rec: xr.DataArray,
    *,
    reduce,
    initial,
    margin_samples: int = 0,
    chunk_size: int | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
    desc: str = "chunks",
    batch_chunks: int | None = None,
    **func_kwargs,
):
    """Fold per-chunk results into an accumulator, in chunk order, with bounded memory.

    Like :func:`map_chunks`, but chunk results (e.g. partial sums of snippets) are combined with
    ``acc = reduce(acc, result)`` as soon as their batch is done, so only ``batch_chunks`` results
    (default ``2 × n_jobs``) exist at a time. The fold follows chunk order whatever ``n_jobs`` is,
    so floating-point sums are identical from run to run.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> rec = from_array(np.arange(20, dtype="float32").reshape(10, 2), sampling_frequency=10.0)
    >>> def total(x, *, start, stop, left, right):
    ...     return float(x[left:x.shape[0] - right].sum())
    >>> reduce_chunks(total, rec, reduce=lambda a, r: a + r, initial=0.0, chunk_size=3, progress=False)
    190.0
    """
    batch = int(batch_chunks) if batch_chunks else 2 * resolve_n_jobs(n_jobs)
    acc = initial
    for r in _iter_chunk_results(func, rec, margin_samples=margin_samples, chunk_size=chunk_size, n_jobs=n_jobs,
                                 progress=progress, desc=desc, batch_chunks=batch, func_kwargs=func_kwargs):
        acc = reduce(acc, r)
    return acc
