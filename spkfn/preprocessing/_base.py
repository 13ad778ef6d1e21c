"""The one bridge from a numpy kernel to a lazily backed recording, and the step history.

Every lazy preprocessing step is ``kernel(traces_with_margins) -> same shape`` applied by
:func:`lazy_transform` with the margin the kernel needs; the result is identical to running the
kernel on the whole array, away from the recording's own edges (where the kernel sees the same
edge as on the whole array).
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from ..core.chunks import as_dask
from ..io.recording import check_recording

__all__ = ["lazy_transform", "record_step", "STEP_HISTORY_ATTR"]

#: attrs key holding the list of steps applied to a recording: ``[{"step": name, "params": {...}}]``.
STEP_HISTORY_ATTR = "preprocessing"


def record_step(rec: xr.DataArray, step: str, params: dict) -> xr.DataArray:
    """Return ``rec`` with ``{"step": step, "params": params}`` appended to its step history (a new list)."""
    out = rec.copy(deep=False)
    out.attrs = dict(rec.attrs)
    history = list(rec.attrs.get(STEP_HISTORY_ATTR, []))
    history.append({"step": step, "params": _plain(params)})
    out.attrs[STEP_HISTORY_ATTR] = history
    return out


def _plain(v):
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def lazy_transform(
    rec: xr.DataArray,
    kernel,
    *,
    margin_samples: int = 0,
    dtype=None,
    step: str,
    params: dict,
    with_position: bool = False,
    chunk_size: int | None = None,
    **kernel_kwargs,
) -> xr.DataArray:
    """Apply ``kernel`` chunk by chunk with ``margin_samples`` on each side, lazily.

    Parameters
    ----------
    rec : xarray.DataArray
        Recording (numpy- or dask-backed).
    kernel : callable
        ``kernel(traces, **kernel_kwargs) -> array`` of the same shape (``n_samples`` including
        margins, ``n_channels``). With ``with_position=True`` it also receives ``start`` (the sample
        index of ``traces[0]`` in the recording).
    margin_samples : int
        Samples of context the kernel needs on each side (e.g. a filter's impulse-response length).
    dtype : numpy dtype, optional
        Output dtype (default: the input's).
    step, params : str, dict
        Recorded in ``attrs["preprocessing"]``.

    Returns
    -------
    xarray.DataArray
        A lazily backed recording with the same coords and attrs (plus the step history).
    """
    check_recording(rec)
    data = as_dask(rec, chunk_size=chunk_size)
    dtype = np.dtype(dtype) if dtype is not None else data.dtype
    margin = int(margin_samples)
    if margin > 0 and data.shape[0] <= margin:
        # Shorter than the margin: one chunk holds everything, no overlap needed (dask refuses
        # an overlap deeper than the array).
        data = data.rechunk({0: -1, 1: -1})
        margin = 0
    if margin >= max(data.chunks[0]) and data.shape[0] > margin:
        # dask needs chunks at least as long as the overlap; grow them. (A few short chunks, such
        # as a short last one, are merged into their neighbours by dask itself: no need to make
        # every chunk, and so memory, larger for them.)
        data = data.rechunk({0: max(margin + 1, data.chunks[0][0]) * 2, 1: -1})
    bounds = np.concatenate([[0], np.cumsum(data.chunks[0])])

    def _apply(block, block_info=None):
        if block.size == 0:
            return np.empty(block.shape, dtype=dtype)
        if with_position:
            # Position of the block's first (margin-included) sample in the recording.
            k = block_info[None]["chunk-location"][0]
            left = min(margin, int(bounds[k]))
            out = kernel(block, start=int(bounds[k]) - left, **kernel_kwargs)
        else:
            out = kernel(block, **kernel_kwargs)
        return np.asarray(out, dtype=dtype)

    if margin > 0:
        out = da.map_overlap(_apply, data, depth={0: margin, 1: 0}, boundary="none", trim=True,
                             dtype=dtype, meta=np.empty((0, 0), dtype=dtype))
    else:
        out = da.map_blocks(_apply, data, dtype=dtype, meta=np.empty((0, 0), dtype=dtype))
    res = rec.copy(data=out)
    return record_step(res, step, params)
