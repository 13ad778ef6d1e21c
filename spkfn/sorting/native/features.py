"""Snippet features: a temporal SVD basis and the projection of each peak's local waveforms on it.

Each peak is described by its waveform on the channels around its peak channel (the
``neighbours`` table, nearest first), each channel's waveform projected on a few temporal
components (the leading right singular vectors of a random sample of peak-channel waveforms).
This "local SVD" keeps ~5 numbers per channel instead of ~45 samples, with most of the signal
and little of the noise (Pachitariu et al. 2016, Kilosort; Garcia et al. 2024, SpikeInterface's
tridesclous2 and spykingcircus2 use the same reduction).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from numba import njit

from ...core.chunks import map_chunks
from ...detection._common import peaks_in_chunk, scaling

__all__ = ["temporal_basis", "project_snippets", "extract_features"]


def temporal_basis(waveforms: np.ndarray, *, n_components: int = 5) -> np.ndarray:
    """Leading temporal components of single-channel waveforms.

    Parameters
    ----------
    waveforms : numpy.ndarray
        ``(n_waveforms, n_samples)`` single-channel waveforms (e.g. each peak on its own channel).
    n_components : int, default 5
        Components kept (at most ``n_samples``).

    Returns
    -------
    numpy.ndarray
        ``(n_samples, n_components)`` float32 orthonormal columns: the right singular vectors of
        ``waveforms`` (not mean-centred, so the mean waveform is well represented), each signed
        so that its largest-magnitude sample is negative (a deterministic sign).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> shape = -np.exp(-0.5 * ((np.arange(40) - 15) / 3.0) ** 2)
    >>> w = rng.normal(1, 0.2, (500, 1)) * shape + rng.normal(0, 0.05, (500, 40))
    >>> b = temporal_basis(w, n_components=3)
    >>> b.shape, bool(abs(b[:, 0] @ shape / np.linalg.norm(shape)) > 0.99)
    ((40, 3), True)
    """
    w = np.asarray(waveforms, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] == 0:
        raise ValueError(f"waveforms must be a non-empty (n_waveforms, n_samples) array; got shape {w.shape}.")
    k = int(min(n_components, w.shape[1]))
    _, _, vt = np.linalg.svd(w, full_matrices=False)
    basis = vt[:k].T.copy()
    if basis.shape[1] < k:
        basis = np.pad(basis, ((0, 0), (0, k - basis.shape[1])))
    idx = np.abs(basis).argmax(axis=0)
    sign = np.where(basis[idx, np.arange(basis.shape[1])] > 0, -1.0, 1.0)
    return (basis * sign).astype(np.float32)


def project_snippets(snippets: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Project ``(n, n_samples, n_channels)`` snippets on ``basis`` -> ``(n, n_channels, n_components)``.

    >>> import numpy as np
    >>> b = np.eye(4, 2, dtype="float32")
    >>> project_snippets(np.arange(8, dtype="float32").reshape(1, 4, 2), b).tolist()
    [[[0.0, 2.0], [1.0, 3.0]]]
    """
    return np.einsum("nsc,sk->nck", snippets, basis, optimize=True).astype(np.float32)


@njit(nogil=True, cache=True)
def _features_kernel(traces, gain, offset, rel_index, peak_channel, neighbours, nbefore, basis, out, out_offset):
    """``out[out_offset + p, j, k] = Σ_t x[rel_index[p] - nbefore + t, neighbours[ch_p, j]] basis[t, k]``
    in µV; padding channels (``-1``) and samples outside ``traces`` contribute 0."""
    n = traces.shape[0]
    n_t, n_k = basis.shape
    kmax = neighbours.shape[1]
    for p in range(rel_index.shape[0]):
        t0 = rel_index[p] - nbefore
        row = neighbours[peak_channel[p]]
        for j in range(kmax):
            c = row[j]
            for k in range(n_k):
                out[out_offset + p, j, k] = 0.0
            if c < 0:
                continue
            g = gain[c]
            o = offset[c]
            for t in range(n_t):
                i = t0 + t
                if i < 0 or i >= n:
                    continue
                v = traces[i, c] * g + o
                for k in range(n_k):
                    out[out_offset + p, j, k] += v * basis[t, k]


def extract_features(recording: xr.DataArray, peaks: np.ndarray, *, neighbours: np.ndarray, basis: np.ndarray,
                     nbefore: int, out: np.ndarray | None = None, chunk_size: int | None = None,
                     n_jobs: int | None = None, progress: bool = True) -> np.ndarray:
    """Local SVD features of each peak, streamed over the recording.

    Parameters
    ----------
    recording : xarray.DataArray
        The (preprocessed) recording the peaks were found on.
    peaks : numpy structured array
        Sorted by ``sample_index``; needs ``sample_index`` and ``channel_index``.
    neighbours : numpy.ndarray
        ``(n_channels, k)`` channel table (``-1`` padded), e.g.
        :func:`spkfn.detection.neighbour_table`: row ``c`` lists the channels whose features a
        peak on channel ``c`` gets, in order.
    basis : numpy.ndarray
        ``(n_samples, n_components)`` temporal basis (:func:`temporal_basis`).
    nbefore : int
        Samples of the window before the peak sample (the window is ``basis.shape[0]`` long).
    out : numpy.ndarray, optional
        ``(n_peaks, k, n_components)`` float32 array to fill (e.g. a memory map in the sorter's
        folder, so that features of millions of peaks are not held in memory). Allocated when
        not given.

    Returns
    -------
    numpy.ndarray
        ``out``: ``features[p, j, k]`` is the projection of peak ``p``'s waveform on channel
        ``neighbours[channel_p, j]`` onto component ``k`` (µV); 0 for padding channels.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> from spkfn.detection import PEAK_DTYPE
    >>> x = np.zeros((100, 2), "float32"); x[50, 1] = -10.0
    >>> rec = from_array(x, sampling_frequency=1000.0)
    >>> p = np.zeros(1, PEAK_DTYPE); p["sample_index"] = 50; p["channel_index"] = 1
    >>> f = extract_features(rec, p, neighbours=np.array([[0, 1], [1, 0]]),
    ...                      basis=np.eye(5, 1, k=-2, dtype="float32"), nbefore=2, progress=False)
    >>> f[0, :, 0].tolist()
    [-10.0, 0.0]
    """
    basis = np.ascontiguousarray(basis, dtype=np.float32)
    neighbours = np.ascontiguousarray(neighbours, dtype=np.int64)
    n_peaks = peaks.size
    if out is None:
        out = np.zeros((n_peaks, neighbours.shape[1], basis.shape[1]), dtype=np.float32)
    if out.shape != (n_peaks, neighbours.shape[1], basis.shape[1]):
        raise ValueError(f"out must have shape {(n_peaks, neighbours.shape[1], basis.shape[1])}; got {out.shape}.")
    if n_peaks == 0:
        return out
    samples = peaks["sample_index"]
    if np.any(samples[1:] < samples[:-1]):
        raise ValueError("peaks must be sorted by sample_index.")
    gain, offset = scaling(recording)
    n_t = basis.shape[0]
    nafter = n_t - nbefore

    def _chunk(traces, *, start, stop, left, right):
        i0, i1 = peaks_in_chunk(samples, start, stop)
        if i1 > i0:
            rel = (samples[i0:i1] - (start - left)).astype(np.int64)
            ch = peaks["channel_index"][i0:i1].astype(np.int64)
            _features_kernel(traces, gain, offset, rel, ch, neighbours, nbefore, basis, out, i0)
        return None

    map_chunks(_chunk, recording, margin_samples=max(nbefore, nafter) + 1, chunk_size=chunk_size, n_jobs=n_jobs,
               progress=progress, desc="features")
    return out
