"""Helpers shared by preprocessing and detection: seeded random chunks, channel distances, neighbours."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..core.validate import check_int, check_number
from ..io.recording import channel_locations, check_recording, num_samples

__all__ = ["random_chunks", "random_chunk_bounds", "channel_distances", "closest_channels", "neighbours_within"]


def random_chunk_bounds(n_samples: int, *, num_chunks: int, chunk_size: int, seed: int = 0,
                        margin_samples: int = 0) -> np.ndarray:
    """Sorted, non-overlapping ``[start, stop)`` bounds of ``num_chunks`` chunks drawn with ``seed``.

    Chunks avoid the first and last ``margin_samples``. When the recording is too short for
    ``num_chunks`` separate chunks, fewer (or one, possibly shorter) are returned.

    >>> random_chunk_bounds(1000, num_chunks=3, chunk_size=100, seed=0).shape
    (3, 2)
    """
    num_chunks = check_int("num_chunks", num_chunks, min_value=1)
    chunk_size = check_int("chunk_size", chunk_size, min_value=1)
    lo = int(margin_samples)
    hi = int(n_samples) - int(margin_samples)
    if hi - lo < chunk_size:
        lo, hi = 0, int(n_samples)
        if hi <= 0:
            raise ValueError("the recording has no samples.")
        return np.array([[lo, min(hi, lo + chunk_size)]], dtype=np.int64)
    # Draw chunk slots on a grid of chunk_size so chunks never overlap, then sample slots.
    n_slots = (hi - lo) // chunk_size
    rng = np.random.default_rng(seed)
    k = min(num_chunks, n_slots)
    slots = np.sort(rng.choice(n_slots, size=k, replace=False))
    # Random shift inside the leftover so chunks are not always grid-aligned.
    slack = (hi - lo) - n_slots * chunk_size
    shift = int(rng.integers(0, slack + 1)) if slack > 0 else 0
    starts = lo + shift + slots * chunk_size
    return np.column_stack([starts, starts + chunk_size]).astype(np.int64)


def random_chunks(recording: xr.DataArray, *, num_chunks: int = 20, chunk_duration_s: float = 0.5,
                  seed: int = 0, margin_s: float = 0.0, return_uV: bool = True,
                  concatenated: bool = True):
    """Seeded random chunks of traces, for statistics (noise, covariance, quantiles).

    Parameters
    ----------
    recording : xarray.DataArray
    num_chunks : int, default 20
    chunk_duration_s : float, default 0.5
        Duration of each chunk (s).
    seed : int, default 0
    margin_s : float, default 0.0
        Keep chunks this far from the recording's edges (filter transients).
    return_uV : bool, default True
        Scale to µV (float32).
    concatenated : bool, default True
        One ``(total_samples, n_channels)`` array; else a list of per-chunk arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> rec = from_array(np.random.default_rng(0).normal(size=(30000, 4)).astype("float32"), sampling_frequency=30000.0)
    >>> random_chunks(rec, num_chunks=4, chunk_duration_s=0.01, seed=1).shape
    (1200, 4)
    """
    check_recording(recording)
    fs = float(recording.attrs["sampling_frequency"])
    check_number("chunk_duration_s", chunk_duration_s, min_value=0, min_inclusive=False)
    size = max(1, int(round(chunk_duration_s * fs)))
    bounds = random_chunk_bounds(num_samples(recording), num_chunks=num_chunks, chunk_size=size, seed=seed,
                                 margin_samples=int(round(margin_s * fs)))
    from ..io.recording import get_traces

    chunks = [get_traces(recording, start=a, end=b, return_uV=return_uV) for a, b in bounds]
    return np.concatenate(chunks, axis=0) if concatenated else chunks


def channel_distances(recording_or_locations) -> np.ndarray:
    """``(n_channels, n_channels)`` Euclidean distances between contacts, in µm.

    >>> channel_distances(np.array([[0.0, 0.0], [3.0, 4.0]])).tolist()
    [[0.0, 5.0], [5.0, 0.0]]
    """
    loc = _locations(recording_or_locations)
    diff = loc[:, None, :] - loc[None, :, :]
    return np.sqrt((diff ** 2).sum(-1))


def closest_channels(recording_or_locations, *, num_channels: int, groups=None) -> np.ndarray:
    """Indices of the ``num_channels`` closest channels to each channel (itself first).

    With ``groups`` (or a recording's ``group`` coord) only channels of the same group count; rows
    of groups smaller than ``num_channels`` are padded with ``-1``.

    >>> closest_channels(np.array([[0.0, 0], [0, 10], [0, 30]]), num_channels=2).tolist()
    [[0, 1], [1, 0], [2, 1]]
    """
    loc = _locations(recording_or_locations)
    num_channels = check_int("num_channels", num_channels, min_value=1)
    groups = _groups(recording_or_locations, groups, loc.shape[0])
    d = channel_distances(loc)
    d = np.where(groups[:, None] == groups[None, :], d, np.inf)
    order = np.argsort(d, axis=1, kind="stable")[:, :num_channels]
    dsorted = np.take_along_axis(d, order, axis=1)
    return np.where(np.isfinite(dsorted), order, -1)


def neighbours_within(recording_or_locations, *, radius_um: float, groups=None) -> np.ndarray:
    """Boolean ``(n_channels, n_channels)`` mask: distance <= ``radius_um`` and same group."""
    loc = _locations(recording_or_locations)
    check_number("radius_um", radius_um, min_value=0)
    groups = _groups(recording_or_locations, groups, loc.shape[0])
    return (channel_distances(loc) <= radius_um) & (groups[:, None] == groups[None, :])


def _locations(obj) -> np.ndarray:
    if isinstance(obj, xr.DataArray):
        return channel_locations(obj)
    loc = np.asarray(obj, dtype=np.float64)
    if loc.ndim != 2 or loc.shape[1] not in (2, 3):
        raise ValueError(f"channel locations must have shape (n_channels, 2); got {loc.shape}.")
    return loc


def _groups(obj, groups, n: int) -> np.ndarray:
    if groups is None:
        if isinstance(obj, xr.DataArray) and "group" in obj.coords:
            return obj.coords["group"].values
        return np.zeros(n, dtype=np.int64)
    g = np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"groups must have one value per channel ({n}); got shape {g.shape}.")
    return g
