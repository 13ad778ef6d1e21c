"""Templates of clusters on a few channels each (sparse), streamed over the recording."""

from __future__ import annotations

import numpy as np
import xarray as xr
from numba import njit

from ...core.chunks import reduce_chunks
from ...detection._common import scaling

__all__ = ["select_per_cluster", "sparse_templates", "dense_from_sparse"]


def select_per_cluster(labels: np.ndarray, *, max_per_cluster: int, seed: int = 0) -> np.ndarray:
    """Indices of at most ``max_per_cluster`` items of each label (>= 0), drawn with ``seed``, sorted.

    >>> import numpy as np
    >>> select_per_cluster(np.array([0, 0, 0, 1, -1, 1]), max_per_cluster=2, seed=0).size
    4
    """
    labels = np.asarray(labels)
    idx = np.flatnonzero(labels >= 0)
    if idx.size == 0:
        return idx.astype(np.int64)
    keys = np.random.default_rng(seed).random(idx.size)
    order = np.lexsort((keys, labels[idx]))
    lab_sorted = labels[idx][order]
    first = np.searchsorted(lab_sorted, lab_sorted, side="left")
    rank = np.arange(order.size) - first
    return np.sort(idx[order[rank < max_per_cluster]]).astype(np.int64)


@njit(nogil=True, cache=True)
def _accumulate_sparse(traces, gain, offset, rel, lab, channels, nbefore, n_t, sums, counts):
    n = traces.shape[0]
    kmax = channels.shape[1]
    for p in range(rel.shape[0]):
        t0 = rel[p] - nbefore
        if t0 < 0 or t0 + n_t > n:
            continue
        u = lab[p]
        counts[u] += 1
        for j in range(kmax):
            c = channels[u, j]
            if c < 0:
                continue
            g = gain[c]
            o = offset[c]
            for t in range(n_t):
                sums[u, t, j] += traces[t0 + t, c] * g + o


def sparse_templates(recording: xr.DataArray, sample_index: np.ndarray, labels: np.ndarray, channels: np.ndarray, *,
                     nbefore: int, nafter: int, chunk_size: int | None = None, n_jobs: int | None = None,
                     progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Mean waveform (µV) of each cluster on its own channels.

    Parameters
    ----------
    recording : xarray.DataArray
    sample_index : numpy.ndarray
        Sorted spike samples to average (select a subset first, e.g. :func:`select_per_cluster`).
    labels : numpy.ndarray
        Cluster of each spike, ``0 .. n_clusters - 1``.
    channels : numpy.ndarray
        ``(n_clusters, k)`` channels of each cluster (``-1`` padded).
    nbefore, nafter : int
        Window ``[t - nbefore, t + nafter)``.

    Returns
    -------
    templates : numpy.ndarray
        ``(n_clusters, nbefore + nafter, k)`` float32; column ``j`` is channel ``channels[u, j]``
        (0 on padding).
    counts : numpy.ndarray
        ``(n_clusters,)`` spikes averaged (spikes too close to an edge are skipped).

    Notes
    -----
    Sums are float64 per chunk, folded in chunk order: independent of ``n_jobs``.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> x = np.zeros((1000, 3), "float32"); x[[100, 500], 2] = -8.0
    >>> rec = from_array(x, sampling_frequency=1000.0)
    >>> t, n = sparse_templates(rec, np.array([100, 500]), np.array([0, 0]), np.array([[2, 0]]),
    ...                         nbefore=1, nafter=2, progress=False)
    >>> t[0, :, 0].tolist(), n.tolist()
    ([0.0, -8.0, 0.0], [2])
    """
    sample_index = np.asarray(sample_index, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    channels = np.ascontiguousarray(channels, dtype=np.int64)
    n_clusters, kmax = channels.shape
    n_t = nbefore + nafter
    if sample_index.size and np.any(sample_index[1:] < sample_index[:-1]):
        raise ValueError("sample_index must be sorted.")
    gain, offset = scaling(recording)

    def _chunk(traces, *, start, stop, left, right):
        a, b = np.searchsorted(sample_index, [start, stop])
        sums = np.zeros((n_clusters, n_t, kmax))
        counts = np.zeros(n_clusters, dtype=np.int64)
        if b > a:
            rel = sample_index[a:b] - (start - left)
            _accumulate_sparse(traces, gain, offset, rel, labels[a:b], channels, nbefore, n_t, sums, counts)
        return sums, counts

    def _fold(acc, r):
        if acc is None:
            return r
        return acc[0] + r[0], acc[1] + r[1]

    if n_clusters == 0:
        return np.zeros((0, n_t, kmax), np.float32), np.zeros(0, np.int64)
    sums, counts = reduce_chunks(_chunk, recording, reduce=_fold, initial=None, margin_samples=max(nbefore, nafter),
                                 chunk_size=chunk_size, n_jobs=n_jobs, progress=progress, desc="templates")
    return (sums / np.maximum(counts, 1)[:, None, None]).astype(np.float32), counts


def dense_from_sparse(templates: np.ndarray, channels: np.ndarray, n_channels: int) -> np.ndarray:
    """``(n, n_t, n_channels)`` dense templates from sparse ones (0 off their channels).

    >>> import numpy as np
    >>> dense_from_sparse(np.ones((1, 2, 2), "float32"), np.array([[2, -1]]), 3)[0].tolist()
    [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    """
    n, n_t, k = templates.shape
    out = np.zeros((n, n_t, n_channels), dtype=np.float32)
    for j in range(k):
        c = channels[:, j]
        ok = c >= 0
        out[np.flatnonzero(ok), :, c[ok]] = templates[ok, :, j]
    return out


def align_templates(templates: np.ndarray, *, nbefore: int, extra: int) -> tuple[np.ndarray, np.ndarray]:
    """Crop templates estimated on a window ``extra`` samples wider on each side so that each one's
    trough (most negative sample over its channels) falls at ``nbefore``.

    Returns the cropped ``(n, n_t - 2 * extra, k)`` templates and the shift applied to each
    (samples; the trough was ``shift`` samples after the spike time, clipped to ``± extra``).

    >>> import numpy as np
    >>> t = np.zeros((1, 10, 1), "float32"); t[0, 6, 0] = -1.0
    >>> out, shift = align_templates(t, nbefore=3, extra=2)
    >>> int(out[0, :, 0].argmin()), shift.tolist()
    (3, [1])
    """
    n, n_t, _ = templates.shape
    width = n_t - 2 * extra
    trough = templates.min(axis=2).argmin(axis=1) if n else np.zeros(0, np.int64)
    shift = np.clip(trough - (nbefore + extra), -extra, extra).astype(np.int64)
    out = np.empty((n, width, templates.shape[2]), dtype=templates.dtype)
    for u in range(n):
        a = extra + shift[u]
        out[u] = templates[u, a:a + width]
    return out, shift
