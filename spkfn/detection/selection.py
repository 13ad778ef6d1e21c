"""Subsets of peaks: uniform, balanced across channels, or flattened over amplitudes."""

from __future__ import annotations

import numpy as np

from ..core.validate import check_bool, check_choice, check_int
from ._common import check_peaks

__all__ = ["select_peaks", "SELECTION_METHODS"]

#: Supported selection methods.
SELECTION_METHODS = ("uniform", "by_channel", "smart_sampling_amplitudes")


def select_peaks(
    peaks,
    *,
    method: str = "uniform",
    n_peaks: int,
    seed: int = 0,
    n_bins: int = 20,
    return_indices: bool = False,
):
    """A seeded random subset of ``n_peaks`` peaks (all of them when there are fewer).

    Parameters
    ----------
    peaks : numpy structured array
        Peaks (:func:`spkfn.detection.detect_peaks`); ``by_channel`` and
        ``smart_sampling_amplitudes`` need ``channel_index`` (and ``amplitude``).
    method : {"uniform", "by_channel", "smart_sampling_amplitudes"}, default "uniform"
        - ``"uniform"``: every peak has the same chance.
        - ``"by_channel"``: balanced across channels: each channel gets an equal share of
          ``n_peaks`` (channels with fewer peaks give all of theirs and their unused share goes to
          the others), uniform within a channel.
        - ``"smart_sampling_amplitudes"``: shares per channel as ``by_channel``; within a channel,
          each peak is drawn with a weight inversely proportional to the density of its amplitude
          (histogram of ``n_bins`` bins), so rare (large) amplitudes are not swamped by the many
          small ones near threshold and the kept amplitudes are spread about evenly.
    n_peaks : int
        Number of peaks to keep (>= 0).
    seed : int, default 0
    n_bins : int, default 20
        Amplitude histogram bins per channel (``smart_sampling_amplitudes``).
    return_indices : bool, default False
        Also return the positions of the kept peaks in ``peaks``.

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, numpy.ndarray)
        The kept peaks, in their original (time) order; with ``return_indices``, also their
        positions (int64, increasing).

    Notes
    -----
    Weighted draws without replacement use the exponential-keys method of Efraimidis & Spirakis
    (2006): keep the ``k`` largest ``log(u) / w``. The amplitude-flattening idea follows
    SpikeInterface's ``smart_sampling_amplitudes`` selection (Garcia et al. 2024).

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.detection import PEAK_DTYPE
    >>> peaks = np.zeros(100, PEAK_DTYPE)
    >>> peaks["sample_index"] = np.arange(100) * 10
    >>> peaks["channel_index"] = np.r_[np.zeros(90, int), np.ones(10, int)]
    >>> sub = select_peaks(peaks, method="by_channel", n_peaks=20, seed=0)
    >>> np.bincount(sub["channel_index"]).tolist()
    [10, 10]
    """
    check_choice("method", method, SELECTION_METHODS)
    n_peaks = check_int("n_peaks", n_peaks, min_value=0)
    check_int("seed", seed)
    n_bins = check_int("n_bins", n_bins, min_value=1)
    check_bool("return_indices", return_indices)
    peaks = check_peaks(peaks, need_channel=method != "uniform")
    if method == "smart_sampling_amplitudes" and "amplitude" not in peaks.dtype.names:
        raise ValueError("smart_sampling_amplitudes needs an 'amplitude' field in peaks.")
    n = peaks.size
    rng = np.random.default_rng(seed)
    if n_peaks >= n:
        idx = np.arange(n, dtype=np.int64)
    elif method == "uniform":
        idx = np.sort(rng.choice(n, size=n_peaks, replace=False)).astype(np.int64)
    else:
        idx = _balanced(peaks, n_peaks, rng, smart=method == "smart_sampling_amplitudes", n_bins=n_bins)
    out = peaks[idx]
    return (out, idx) if return_indices else out


def _quotas(counts: np.ndarray, n: int, rng) -> np.ndarray:
    """Water-filling: the largest equal share ``q`` with ``Σ min(count, q) <= n``; the remainder
    goes one each to randomly chosen channels that still have peaks."""
    lo, hi = 0, int(counts.max())
    while lo < hi:  # largest q with sum(min(counts, q)) <= n
        mid = (lo + hi + 1) // 2
        if np.minimum(counts, mid).sum() <= n:
            lo = mid
        else:
            hi = mid - 1
    quota = np.minimum(counts, lo)
    rest = n - int(quota.sum())
    if rest > 0:
        extra = np.flatnonzero(counts > quota)
        quota[rng.choice(extra, size=rest, replace=False)] += 1
    return quota


def _balanced(peaks, n_peaks, rng, *, smart: bool, n_bins: int) -> np.ndarray:
    chan = peaks["channel_index"].astype(np.int64)
    order = np.argsort(chan, kind="stable")
    uniq, starts, counts = np.unique(chan[order], return_index=True, return_counts=True)
    quota = _quotas(counts, n_peaks, rng)
    if smart:
        amp = np.abs(peaks["amplitude"].astype(np.float64))
        weights = np.empty(peaks.size)
        for s, c in zip(starts, counts, strict=True):  # one pass per channel (not per peak)
            members = order[s:s + c]
            a = amp[members]
            edges = np.linspace(a.min(), a.max(), n_bins + 1) if a.max() > a.min() else None
            if edges is None:
                weights[members] = 1.0
                continue
            b = np.clip(np.searchsorted(edges, a, side="right") - 1, 0, n_bins - 1)
            weights[members] = 1.0 / np.bincount(b, minlength=n_bins)[b]
    else:
        weights = np.ones(peaks.size)
    # Exponential keys (Efraimidis-Spirakis): keep the `quota` largest keys within each channel.
    keys = np.log(rng.random(peaks.size)) / weights
    keep = np.zeros(peaks.size, dtype=bool)
    for s, c, q in zip(starts, counts, quota, strict=True):
        if q == 0:
            continue
        members = order[s:s + c]
        if q >= c:
            keep[members] = True
        else:
            keep[members[np.argpartition(-keys[members], q - 1)[:q]]] = True
    return np.flatnonzero(keep).astype(np.int64)
