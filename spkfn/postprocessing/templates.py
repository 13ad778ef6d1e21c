"""Templates: the average waveform of each unit, streamed over the recording."""

from __future__ import annotations

import numpy as np
import xarray as xr
from numba import njit

from ..core.chunks import reduce_chunks
from ..core.validate import check_int, check_number
from ..io.recording import channel_locations, check_recording, num_samples
from ..io.sorting import check_sorting
from ..io.templates import templates_from_array

__all__ = ["estimate_templates", "select_spikes_per_unit"]


def select_spikes_per_unit(sorting: xr.Dataset, *, max_spikes_per_unit: int | None, seed: int = 0,
                           min_sample: int = 0, max_sample: int | None = None) -> np.ndarray:
    """Indices (into the sorting's spikes, sorted) of at most ``max_spikes_per_unit`` spikes per unit,
    drawn uniformly with ``seed``, among spikes with ``min_sample <= sample_index < max_sample``.

    >>> from spkfn.io import sorting_from_arrays
    >>> s = sorting_from_arrays([1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 1, 1], sampling_frequency=1.0)
    >>> select_spikes_per_unit(s, max_spikes_per_unit=2, seed=0).size
    4
    """
    si = sorting.sample_index.values
    ui = sorting.unit_index.values
    keep = si >= min_sample
    if max_sample is not None:
        keep &= si < max_sample
    idx = np.flatnonzero(keep)
    if max_spikes_per_unit is None:
        return idx
    rng = np.random.default_rng(seed)
    # Random key per spike, then the k smallest keys of each unit: uniform without replacement,
    # vectorised, independent of how many units there are.
    keys = rng.random(idx.size)
    order = np.lexsort((keys, ui[idx]))
    units_sorted = ui[idx][order]
    first = np.searchsorted(units_sorted, units_sorted, side="left")
    rank = np.arange(order.size) - first
    chosen = idx[order[rank < max_spikes_per_unit]]
    return np.sort(chosen)


@njit(nogil=True, cache=True)
def _accumulate(traces, positions, units, nbefore, nafter, sums, sumsq, counts):
    n_ch = traces.shape[1]
    with_sq = sumsq.shape[1] > 0
    for k in range(positions.size):
        t = positions[k]
        u = units[k]
        counts[u] += 1
        for s in range(nbefore + nafter):
            row = t - nbefore + s
            for c in range(n_ch):
                v = traces[row, c]
                sums[u, s, c] += v
                if with_sq:
                    sumsq[u, s, c] += v * v


def estimate_templates(
    recording: xr.DataArray,
    sorting: xr.Dataset,
    *,
    ms_before: float = 1.0,
    ms_after: float = 2.0,
    max_spikes_per_unit: int | None = 500,
    seed: int = 0,
    sparsity_ptp_fraction: float = 0.1,
    return_std: bool = False,
    n_jobs: int | None = None,
    progress: bool = True,
    chunk_size: int | None = None,
):
    """Mean waveform of each unit (µV), from up to ``max_spikes_per_unit`` random spikes, streamed.

    Parameters
    ----------
    recording : xarray.DataArray
        Usually the preprocessed recording the sorting came from.
    sorting : xarray.Dataset
    ms_before, ms_after : float
        Window around each spike time (ms).
    max_spikes_per_unit : int or None, default 500
        Spikes drawn per unit (``None``: all). Spikes closer to an edge than the window are skipped.
    seed : int, default 0
        Seed of the spike draw.
    sparsity_ptp_fraction : float, default 0.1
        ``sparsity`` coord: channels whose peak-to-peak is at least this fraction of the unit's
        largest peak-to-peak.
    return_std : bool, default False
        Also return the per-sample standard deviation across spikes (same layout).
    n_jobs, progress, chunk_size
        Chunked execution (see ``spkfn.core.chunks``).

    Returns
    -------
    templates : xarray.DataArray
        Dims ``("unit", "sample", "channel")``, attrs ``nbefore``, ``sampling_frequency``; coords
        ``num_spikes`` (spikes averaged per unit) and ``sparsity``. Units without usable spikes are
        all-zero with ``num_spikes = 0``.
    std : xarray.DataArray
        Only when ``return_std``.

    Notes
    -----
    Sums are accumulated in float64 per chunk and folded in chunk order, so the result does not
    depend on ``n_jobs``.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array, sorting_from_arrays
    >>> x = np.zeros((3000, 2), "float32"); x[[500, 1500, 2500], 0] = -10.0
    >>> rec = from_array(x, sampling_frequency=30000.0)
    >>> s = sorting_from_arrays([500, 1500, 2500], [0, 0, 0], sampling_frequency=30000.0)
    >>> t = estimate_templates(rec, s, ms_before=1.0, ms_after=1.0, progress=False)
    >>> float(t.sel(unit=0).isel(channel=0, sample=t.attrs["nbefore"]))
    -10.0
    """
    check_recording(recording)
    check_sorting(sorting)
    fs = float(recording.attrs["sampling_frequency"])
    if not np.isclose(fs, float(sorting.attrs["sampling_frequency"])):
        raise ValueError(f"the sorting's sampling rate ({sorting.attrs['sampling_frequency']} Hz) differs from the recording's ({fs} Hz).")
    check_number("ms_before", ms_before, min_value=0)
    check_number("ms_after", ms_after, min_value=0, min_inclusive=False)
    if max_spikes_per_unit is not None:
        check_int("max_spikes_per_unit", max_spikes_per_unit, min_value=1)
    nbefore = int(round(ms_before * fs / 1000.0))
    nafter = int(round(ms_after * fs / 1000.0))
    n = num_samples(recording)
    chosen = select_spikes_per_unit(sorting, max_spikes_per_unit=max_spikes_per_unit, seed=seed,
                                    min_sample=nbefore, max_sample=n - nafter)
    times = sorting.sample_index.values[chosen]
    units = sorting.unit_index.values[chosen]
    n_units, n_ch, ns = sorting.sizes["unit"], recording.sizes["channel"], nbefore + nafter
    gain = recording.coords["gain_to_uV"].values.astype(np.float64)
    offset = recording.coords["offset_to_uV"].values.astype(np.float64)

    def _chunk(block, *, start, stop, left, right):
        a, b = np.searchsorted(times, [start, stop])
        sums = np.zeros((n_units, ns, n_ch))
        sumsq = np.zeros((n_units, ns, n_ch)) if return_std else np.zeros((n_units, 0, 0))
        counts = np.zeros(n_units, dtype=np.int64)
        if b > a:
            x = block.astype(np.float64) * gain + offset
            pos = (times[a:b] - (start - left)).astype(np.int64)
            _accumulate(x, pos, units[a:b], nbefore, nafter, sums, sumsq, counts)
        return sums, sumsq, counts

    def _fold(acc, r):
        if acc is None:
            return r
        return acc[0] + r[0], acc[1] + r[1], acc[2] + r[2]

    sums, sumsq, counts = reduce_chunks(_chunk, recording, reduce=_fold, initial=None,
                                        margin_samples=max(nbefore, nafter), chunk_size=chunk_size,
                                        n_jobs=n_jobs, progress=progress, desc="templates")
    denom = np.maximum(counts, 1)[:, None, None]
    mean = sums / denom
    ptp = np.ptp(mean, axis=1)
    sparsity = ptp >= sparsity_ptp_fraction * np.maximum(ptp.max(axis=1, keepdims=True), 1e-12)
    sparsity &= counts[:, None] > 0
    loc = channel_locations(recording, required=False)
    out = templates_from_array(mean.astype(np.float32), sampling_frequency=fs, nbefore=nbefore,
                               unit_ids=sorting.unit.values, channel_ids=recording.channel.values,
                               channel_locations=loc, sparsity=sparsity)
    out = out.assign_coords(num_spikes=("unit", counts))
    if not return_std:
        return out
    var = np.maximum(sumsq / denom - mean ** 2, 0.0)
    return out, out.copy(data=np.sqrt(var).astype(np.float32))
