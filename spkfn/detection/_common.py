"""Shared pieces of the detection stage: the peaks dtype, argument checks, neighbour tables and
the numba kernels that gather per-peak data from a chunk of traces.

Every kernel here works on a plain ``(n_samples, n_channels)`` chunk in the acquisition dtype and
applies the per-channel µV scaling itself (``value * gain + offset``), so no float copy of the chunk
is ever made.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from numba import njit

from ..core.validate import check_choice, check_number
from ..io.recording import channel_locations, check_recording, has_geometry

__all__ = ["PEAK_DTYPE", "empty_peaks", "check_peaks", "neighbour_table", "ms_to_samples"]

#: The peaks dtype (same fields as SpikeInterface's).
PEAK_DTYPE = np.dtype([("sample_index", "int64"), ("channel_index", "int64"), ("amplitude", "float32"),
                       ("segment_index", "int64")])

PEAK_SIGNS = ("neg", "pos", "both")
_SIGN_CODE = {"neg": -1, "pos": 1, "both": 0}


def empty_peaks(n: int = 0) -> np.ndarray:
    """A zeroed peaks array of length ``n`` (``PEAK_DTYPE``)."""
    return np.zeros(int(n), dtype=PEAK_DTYPE)


def sign_code(peak_sign: str) -> int:
    check_choice("peak_sign", peak_sign, PEAK_SIGNS)
    return _SIGN_CODE[peak_sign]


def ms_to_samples(ms: float, sampling_frequency: float) -> int:
    """Whole samples in ``ms`` milliseconds (rounded).

    >>> ms_to_samples(0.1, 30000.0)
    3
    """
    return int(round(float(ms) * float(sampling_frequency) / 1000.0))


def check_peaks(peaks, *, n_channels: int | None = None, n_samples: int | None = None,
                need_channel: bool = True, name: str = "peaks") -> np.ndarray:
    """Validate a peaks (or spikes) structured array; return it as a 1-D structured array.

    Needs ``sample_index`` (and ``channel_index`` when ``need_channel``); indices must be inside
    the recording.
    """
    if isinstance(peaks, xr.Dataset):
        raise ValueError(
            f"{name} is a sorting (xarray.Dataset); pass a peaks structured array with 'sample_index' and "
            "'channel_index' fields (a detect_peaks() result)."
        )
    arr = np.asarray(peaks)
    if arr.dtype.names is None or "sample_index" not in arr.dtype.names:
        raise ValueError(
            f"{name} must be a structured array with a 'sample_index' field (the detect_peaks() output); "
            f"got dtype {arr.dtype}."
        )
    if need_channel and "channel_index" not in arr.dtype.names:
        raise ValueError(f"{name} needs a 'channel_index' field (the channel each peak was found on).")
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.size:
        s = arr["sample_index"]
        if n_samples is not None and (s.min() < 0 or s.max() >= n_samples):
            raise ValueError(
                f"{name} sample_index must be in [0, {n_samples}) (the recording's samples); "
                f"got values in [{s.min()}, {s.max()}]. Were these peaks found on another recording?"
            )
        if need_channel and n_channels is not None:
            c = arr["channel_index"]
            if c.min() < 0 or c.max() >= n_channels:
                raise ValueError(
                    f"{name} channel_index must be in [0, {n_channels}); got values in [{c.min()}, {c.max()}]."
                )
    return arr


def check_streaming(chunk_size, n_jobs, progress) -> None:
    """Validate the streaming knobs shared by every function here."""
    from ..core.chunks import resolve_n_jobs
    from ..core.validate import check_bool, check_int

    if chunk_size is not None:
        check_int("chunk_size", chunk_size, min_value=1, hint="(samples per chunk; None for about 32 MB)")
    resolve_n_jobs(n_jobs)
    check_bool("progress", progress)


def require_geometry(recording: xr.DataArray, what: str) -> np.ndarray:
    """Channel positions, or a ``ValueError`` saying that ``what`` needs them and how to attach them."""
    if not has_geometry(recording):
        raise ValueError(
            f"{what} needs channel positions but the recording has no geometry (no 'x'/'y' coords); "
            "attach a probe with spkfn.io.set_probe(rec, probe) or build it with "
            "spkfn.io.from_array(..., channel_locations=...)."
        )
    return channel_locations(recording)


def neighbour_table(recording: xr.DataArray, *, radius_um: float, what: str = "this method") -> np.ndarray:
    """``(n_channels, k_max)`` int64 indices of the channels within ``radius_um`` of each channel
    (same ``group`` only), nearest first (the channel itself first); rows padded with ``-1``.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> rec = from_array(np.zeros((10, 3), "float32"), sampling_frequency=1e3,
    ...                  channel_locations=[[0, 0], [0, 20], [0, 60]])
    >>> neighbour_table(rec, radius_um=25).tolist()
    [[0, 1], [1, 0], [2, -1]]
    """
    check_recording(recording)
    radius_um = check_number("radius_um", radius_um, min_value=0)
    loc = require_geometry(recording, what)
    groups = recording.coords["group"].values
    return _neighbours_from_locations(loc, groups, radius_um)


def _neighbours_from_locations(loc: np.ndarray, groups: np.ndarray, radius_um: float) -> np.ndarray:
    d = np.sqrt(((loc[:, None, :] - loc[None, :, :]) ** 2).sum(-1))
    d = np.where(groups[:, None] == groups[None, :], d, np.inf)
    # Distances are compared with a small tolerance so that contacts exactly at radius_um count.
    within = d <= radius_um + 1e-9
    k = int(within.sum(1).max())
    order = np.argsort(np.where(within, d, np.inf), axis=1, kind="stable")[:, :k]
    ok = np.take_along_axis(within, order, axis=1)
    return np.where(ok, order, -1).astype(np.int64)


def scaling(recording: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``gain_to_uV`` and ``offset_to_uV`` as float32 arrays."""
    return (recording.coords["gain_to_uV"].values.astype(np.float32),
            recording.coords["offset_to_uV"].values.astype(np.float32))


def sorted_peaks(peaks: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Peaks sorted by sample index (stable), and the permutation used (``None`` if already sorted)."""
    s = peaks["sample_index"]
    if s.size < 2 or np.all(s[1:] >= s[:-1]):
        return peaks, None
    order = np.argsort(s, kind="stable")
    return peaks[order], order


def peaks_in_chunk(sample_index: np.ndarray, start: int, stop: int) -> tuple[int, int]:
    """``[i0, i1)`` positions of the (sorted) samples in ``[start, stop)``."""
    return (int(np.searchsorted(sample_index, start, side="left")),
            int(np.searchsorted(sample_index, stop, side="left")))


# --------------------------------------------------------------------------------------------
# numba kernels


@njit(nogil=True, cache=True)
def _gather_snippets(traces, gain, offset, rel_index, channels, nbefore, nafter):
    """Snippets ``(n_peaks, nbefore + nafter, n_out)`` in µV (float32).

    ``channels`` is ``(n_peaks, n_out)``: the channel of each output column per peak, ``-1`` for
    padding (left at 0). Samples outside the chunk are left at 0.
    """
    n_peaks = rel_index.shape[0]
    n_out = channels.shape[1]
    width = nbefore + nafter
    n = traces.shape[0]
    out = np.zeros((n_peaks, width, n_out), dtype=np.float32)
    for p in range(n_peaks):
        t0 = rel_index[p] - nbefore
        for t in range(width):
            i = t0 + t
            if i < 0 or i >= n:
                continue
            for k in range(n_out):
                c = channels[p, k]
                if c >= 0:
                    out[p, t, k] = traces[i, c] * gain[c] + offset[c]
    return out


@njit(nogil=True, cache=True)
def _gather_features(traces, gain, offset, rel_index, peak_channel, neighbours, nbefore, nafter, feature):
    """Per-peak, per-neighbour feature ``(n_peaks, k_max)`` float64 over the window
    ``[index - nbefore, index + nafter)``: 0 = peak-to-peak, 1 = energy (L2 norm),
    2 = |value at the peak sample|. Padding columns are 0.
    """
    n_peaks = rel_index.shape[0]
    kmax = neighbours.shape[1]
    n = traces.shape[0]
    out = np.zeros((n_peaks, kmax), dtype=np.float64)
    for p in range(n_peaks):
        row = neighbours[peak_channel[p]]
        lo = max(0, rel_index[p] - nbefore)
        hi = min(n, rel_index[p] + nafter)
        for k in range(kmax):
            c = row[k]
            if c < 0:
                break
            g = gain[c]
            o = offset[c]
            if feature == 2:
                i = rel_index[p]
                if 0 <= i < n:
                    out[p, k] = abs(traces[i, c] * g + o)
                continue
            vmin = np.inf
            vmax = -np.inf
            acc = 0.0
            for i in range(lo, hi):
                v = traces[i, c] * g + o
                if v < vmin:
                    vmin = v
                if v > vmax:
                    vmax = v
                acc += v * v
            if hi > lo:
                out[p, k] = (vmax - vmin) if feature == 0 else np.sqrt(acc)
    return out


def map_peaks(func, recording: xr.DataArray, peaks: np.ndarray, *, margin_samples: int, chunk_size=None,
              n_jobs=None, progress=True, desc="peaks", **func_kwargs) -> list:
    """Apply ``func(traces, rel_index, chunk_peaks, **func_kwargs)`` to the peaks of each chunk.

    ``peaks`` must be sorted by ``sample_index``; ``rel_index`` is each peak's row in ``traces``
    (which include ``margin_samples`` of context on each side, clipped at the recording's edges).
    Chunks without peaks are not passed to ``func``. Returns the per-chunk results in order.
    """
    from ..core.chunks import map_chunks

    samples = peaks["sample_index"]

    def _one(traces, *, start, stop, left, right):
        i0, i1 = peaks_in_chunk(samples, start, stop)
        if i1 == i0:
            return None
        sub = peaks[i0:i1]
        rel = (sub["sample_index"] - (start - left)).astype(np.int64)
        return func(traces, rel, sub, **func_kwargs)

    out = map_chunks(_one, recording, margin_samples=margin_samples, chunk_size=chunk_size, n_jobs=n_jobs,
                     progress=progress, desc=desc)
    return [o for o in out if o is not None]
