"""Snippets (short windows of traces) around peaks or spikes, streamed."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..core.validate import check_number
from ..io.recording import check_recording, num_samples
from ._common import (
    _gather_snippets,
    check_peaks,
    check_streaming,
    map_peaks,
    ms_to_samples,
    neighbour_table,
    scaling,
    sorted_peaks,
)

__all__ = ["extract_snippets"]


def extract_snippets(
    recording: xr.DataArray,
    peaks_or_spikes,
    *,
    ms_before: float = 1.0,
    ms_after: float = 2.0,
    channels=None,
    radius_um: float | None = None,
    chunk_size: int | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Windows of traces (µV) around each peak or spike.

    Parameters
    ----------
    recording : xarray.DataArray
        Recording, dims ``("time", "channel")``.
    peaks_or_spikes : numpy structured array or xarray.Dataset
        Peaks (:func:`spkfn.detection.detect_peaks`) or any structured array with a
        ``sample_index`` field (and ``channel_index`` for ``radius_um``); or a sorting
        (``xarray.Dataset`` with ``sample_index``), with ``channels`` only.
    ms_before, ms_after : float, default 1.0, 2.0
        Window ``[t - ms_before, t + ms_after)`` around each sample index.
    channels : array_like of int, optional
        Channel positions to extract for every peak (default: all channels). Exclusive with
        ``radius_um``.
    radius_um : float, optional
        Extract, for each peak, the channels within ``radius_um`` of its ``channel_index`` (same
        group), nearest first: column ``k`` of peak ``p`` is channel
        ``neighbour_table(recording, radius_um=radius_um)[p.channel_index, k]``; columns past a
        channel's neighbours (``-1`` in the table) are zero.
    chunk_size, n_jobs, progress
        Streaming (see :func:`spkfn.core.chunks.map_chunks`).

    Returns
    -------
    numpy.ndarray
        ``(n_peaks, nbefore + nafter, n_channels_out)`` float32, µV, in the order of
        ``peaks_or_spikes``; ``nbefore = round(ms_before * fs / 1000)`` is the row of the peak.
        Samples beyond the recording's edges are zero.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> from spkfn.detection import PEAK_DTYPE
    >>> rec = from_array(np.arange(200, dtype="float32").reshape(100, 2), sampling_frequency=1000.0)
    >>> peaks = np.zeros(2, PEAK_DTYPE); peaks["sample_index"] = [10, 50]
    >>> wf = extract_snippets(rec, peaks, ms_before=2, ms_after=3, channels=[1], progress=False)
    >>> wf.shape, wf[1, :, 0].tolist()
    ((2, 5, 1), [97.0, 99.0, 101.0, 103.0, 105.0])
    """
    check_recording(recording)
    check_streaming(chunk_size, n_jobs, progress)
    fs = float(recording.attrs["sampling_frequency"])
    nbefore = ms_to_samples(check_number("ms_before", ms_before, min_value=0), fs)
    nafter = ms_to_samples(check_number("ms_after", ms_after, min_value=0), fs)
    if nbefore + nafter < 1:
        raise ValueError(f"ms_before + ms_after must span at least one sample at {fs:g} Hz; "
                         f"got {ms_before} + {ms_after} ms.")
    n_ch = recording.sizes["channel"]
    if channels is not None and radius_um is not None:
        raise ValueError("give either channels= or radius_um=, not both.")
    if isinstance(peaks_or_spikes, xr.Dataset):
        if radius_um is not None:
            raise ValueError("a sorting has no channel per spike, so radius_um cannot be used; pass "
                             "channels= (e.g. the unit's sparsity) or a spikes array with channel_index.")
        sp = np.zeros(peaks_or_spikes.sizes.get("spike", 0), dtype=[("sample_index", "int64")])
        sp["sample_index"] = peaks_or_spikes["sample_index"].values
        peaks_or_spikes = sp
    peaks = check_peaks(peaks_or_spikes, n_channels=n_ch, n_samples=num_samples(recording),
                        need_channel=radius_um is not None, name="peaks_or_spikes")
    if radius_um is not None:
        table = neighbour_table(recording, radius_um=radius_um, what="extract_snippets(radius_um=...)")
        n_out = table.shape[1]
    else:
        sel = np.arange(n_ch, dtype=np.int64) if channels is None else np.asarray(channels).astype(np.int64).ravel()
        if sel.size == 0 or sel.min() < -n_ch or sel.max() >= n_ch:
            raise ValueError(f"channels must be non-empty channel positions in [0, {n_ch}); got {channels!r}.")
        sel = sel % n_ch
        table = None
        n_out = sel.size
    width = nbefore + nafter
    if peaks.size == 0:
        return np.zeros((0, width, n_out), dtype=np.float32)
    peaks_sorted, order = sorted_peaks(peaks)
    gain, offset = scaling(recording)

    def _chunk(traces, rel, sub):
        if table is not None:
            chans = table[sub["channel_index"]]
        else:
            chans = np.broadcast_to(sel, (rel.size, sel.size))
        return _gather_snippets(traces, gain, offset, rel, np.ascontiguousarray(chans), nbefore, nafter)

    parts = map_peaks(_chunk, recording, peaks_sorted, margin_samples=max(nbefore, nafter), chunk_size=chunk_size,
                      n_jobs=n_jobs, progress=progress, desc="snippets")
    out = np.concatenate(parts)
    if order is not None:
        inv = np.empty_like(order)
        inv[order] = np.arange(order.size)
        out = out[inv]
    return out
