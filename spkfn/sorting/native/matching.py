"""Template matching: find the spikes of known units, overlapping ones included (greedy peeling).

:func:`match_templates` — per chunk (with margins), find the peaks of the residual (locally
exclusive threshold crossings); for each, largest first, fit every candidate template (templates
whose main channel is within ``candidate_radius_um``) at a few time shifts by least squares
(amplitude ``a = <r, w> / <w, w>`` within bounds) and keep the fit that removes the most energy,
``<r, w>^2 / <w, w>``, if its z-score ``<r, w> / (|w| sigma)`` clears ``z_threshold``; subtract
``a w``; repeat on the samples that changed until nothing fits. This is matching pursuit with
sparse templates (Mallat & Zhang 1993; as in SpyKING CIRCUS, Yger et al. 2018, and Kilosort,
Pachitariu et al. 2016), run chunk by chunk in a numba kernel.

"""

from __future__ import annotations

import numpy as np
import xarray as xr
from numba import njit

from ...core.chunks import map_chunks
from ...core.validate import check_int, check_number
from ...detection import neighbour_table
from ...detection.peaks import _locally_exclusive
from ...io.recording import channel_locations as _channel_locations

__all__ = ["match_templates", "SPIKE_DTYPE"]

SPIKE_DTYPE = np.dtype([("sample_index", "int64"), ("unit_index", "int64"), ("amplitude", "float32"),
                        ("channel_index", "int64")])


@njit(nogil=True, cache=True)
def _peel(traces, core0, core1, W, chans, norms2, sig_u, cand, neighbours, lo_raw, inv_noise, sweep, run_max,
          nbefore, max_shift, amin, amax, z_thr, n_passes, peak_chan_u):
    n, n_ch = traces.shape
    n_units, n_t, kmax = W.shape
    res = traces.copy()
    gain = np.ones(n_ch, dtype=np.float32)
    offset = np.zeros(n_ch, dtype=np.float32)
    hi_raw = np.full(n_ch, np.inf, dtype=np.float32)
    cap = 1024
    out_t = np.empty(cap, dtype=np.int64)
    out_u = np.empty(cap, dtype=np.int64)
    out_a = np.empty(cap, dtype=np.float32)
    count = 0
    # Intervals to scan for peaks: the whole chunk first, then where something was subtracted.
    lo_i = nbefore + max_shift
    hi_i = n - (n_t - nbefore) - max_shift
    if hi_i <= lo_i:
        return out_t[:0], out_u[:0], out_a[:0]
    iv0 = np.array([lo_i], dtype=np.int64)
    iv1 = np.array([hi_i], dtype=np.int64)
    for _pass in range(n_passes):
        # 1. peaks of the residual in the intervals
        pt = np.empty(1024, dtype=np.int64)
        pc = np.empty(pt.size, dtype=np.int64)
        pa = np.empty(pt.size, dtype=np.float32)
        m_p = 0
        for q in range(iv0.size):
            r, c, a = _locally_exclusive(res, gain, offset, lo_raw, hi_raw, inv_noise, -1, neighbours, sweep,
                                         iv0[q], iv1[q], run_max)
            if m_p + r.size > pt.size:
                k2 = max(2 * pt.size, m_p + r.size)
                t1 = np.empty(k2, dtype=np.int64)
                t2 = np.empty(k2, dtype=np.int64)
                t3 = np.empty(k2, dtype=np.float32)
                t1[:m_p] = pt[:m_p]
                t2[:m_p] = pc[:m_p]
                t3[:m_p] = pa[:m_p]
                pt, pc, pa = t1, t2, t3
            pt[m_p:m_p + r.size] = r
            pc[m_p:m_p + r.size] = c
            pa[m_p:m_p + r.size] = a
            m_p += r.size
        pt = pt[:m_p]
        pc = pc[:m_p]
        pa = pa[:m_p]
        if pt.size == 0:
            break
        order = np.argsort(pa)  # most negative first
        sub_t = np.empty(pt.size, dtype=np.int64)
        n_sub = 0
        for oi in range(order.size):
            p = order[oi]
            t = pt[p]
            c = pc[p]
            best = 0.0
            best_u = -1
            best_t0 = 0
            best_a = 0.0
            for ci in range(cand.shape[1]):
                u = cand[c, ci]
                if u < 0:
                    break
                for s in range(-max_shift, max_shift + 1):
                    t0 = t + s - nbefore
                    if t0 < 0 or t0 + n_t > n:
                        continue
                    dot = 0.0
                    for j in range(kmax):
                        ch = chans[u, j]
                        if ch < 0:
                            break
                        for tau in range(n_t):
                            dot += res[t0 + tau, ch] * W[u, tau, j]
                    if dot <= 0:
                        continue
                    a = dot / norms2[u]
                    if a < amin or a > amax:
                        continue
                    score = dot * dot / norms2[u]
                    if score > best:
                        best = score
                        best_u = u
                        best_t0 = t0
                        best_a = a
            if best_u < 0:
                continue
            z = np.sqrt(best) / sig_u[best_u]
            if z < z_thr:
                continue
            for j in range(kmax):
                ch = chans[best_u, j]
                if ch < 0:
                    break
                for tau in range(n_t):
                    res[best_t0 + tau, ch] -= best_a * W[best_u, tau, j]
            ts = best_t0 + nbefore
            sub_t[n_sub] = best_t0
            n_sub += 1
            if core0 <= ts < core1:
                if count == cap:
                    cap *= 2
                    a1 = np.empty(cap, dtype=np.int64)
                    a2 = np.empty(cap, dtype=np.int64)
                    a3 = np.empty(cap, dtype=np.float32)
                    a1[:count] = out_t[:count]
                    a2[:count] = out_u[:count]
                    a3[:count] = out_a[:count]
                    out_t, out_u, out_a = a1, a2, a3
                out_t[count] = ts
                out_u[count] = best_u
                out_a[count] = best_a
                count += 1
        if n_sub == 0:
            break
        # 2. next intervals: around what was subtracted, merged
        st = np.sort(sub_t[:n_sub])
        a0 = np.empty(n_sub, dtype=np.int64)
        a1_ = np.empty(n_sub, dtype=np.int64)
        m = 0
        for k in range(n_sub):
            lo = max(lo_i, st[k] - sweep)
            hi = min(hi_i, st[k] + n_t + sweep)
            if hi <= lo:
                continue
            if m > 0 and lo <= a1_[m - 1]:
                a1_[m - 1] = max(a1_[m - 1], hi)
            else:
                a0[m] = lo
                a1_[m] = hi
                m += 1
        iv0 = a0[:m].copy()
        iv1 = a1_[:m].copy()
    return out_t[:count], out_u[:count], out_a[:count]


def match_templates(recording: xr.DataArray, templates: np.ndarray, channels: np.ndarray, *, nbefore: int,
                    noise_levels, detect_threshold: float = 4.0, z_threshold: float = 6.0,
                    amplitude_range=(0.5, 2.0), candidate_radius_um: float = 50.0, max_shift: int = 2,
                    n_passes: int = 4, sweep: int = 3, run_max: int = 15, chunk_size: int | None = None,
                    n_jobs: int | None = None, progress: bool = True) -> np.ndarray:
    """Find the spikes of known units by greedy template matching (peeling).

    Parameters
    ----------
    recording : xarray.DataArray
        The preprocessed recording (µV) the templates were estimated on, with geometry.
    templates : numpy.ndarray
        ``(n_units, n_samples, k)`` sparse templates (µV): unit ``u``'s waveform on channels
        ``channels[u]``; the spike time is sample ``nbefore``.
    channels : numpy.ndarray
        ``(n_units, k)`` int channel indices of each template's columns, padded with -1.
    nbefore : int
        Samples before the spike time in a template.
    noise_levels : array_like
        ``(n_channels,)`` noise standard deviation (µV) of each channel.
    detect_threshold : float, default 4.0
        Residual peaks beyond this multiple of the noise are tried.
    z_threshold : float, default 6.0
        A fit is accepted when ``<r, w> / (|w| sigma)`` reaches this (``sigma``: the noise of the
        template's channels weighted by its energy there).
    amplitude_range : (float, float), default (0.5, 2.0)
        Bounds of the fitted amplitude scale.
    candidate_radius_um : float, default 50.0
        Residual peaks are locally exclusive within this radius, and the templates whose main
        channel is within it of the peak's channel are tried.
    max_shift : int, default 2
        Time shifts tried around each peak (samples).
    n_passes : int, default 4
        Most peel passes per chunk.
    sweep, run_max : int
        Locally exclusive peak detection parameters (samples).
    chunk_size, n_jobs, progress
        Chunking (:func:`spkfn.core.chunks.map_chunks`).

    Returns
    -------
    numpy.ndarray
        Structured array (:data:`SPIKE_DTYPE`: ``sample_index``, ``unit_index``, ``amplitude``
        (fitted scale), ``channel_index`` (the template's main channel)) sorted by sample, then
        unit. Identical whatever ``n_jobs`` and the chunking (within the margins).

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(0, 5, (30000, 4)).astype("float32")
    >>> w = np.zeros((30, 2), "float32"); w[10, 0], w[10, 1], w[14, 0] = -100, -60, 30
    >>> times = np.array([1000, 1012, 5000, 20000])  # two overlapping spikes at 1000 and 1012
    >>> for t in times:
    ...     x[t - 10:t + 20, 1:3] += w
    >>> rec = from_array(x, sampling_frequency=30000.0, channel_locations=[[0, 0], [0, 20], [0, 40], [0, 60]])
    >>> spikes = match_templates(rec, w[None], np.array([[1, 2]]), nbefore=10, noise_levels=np.full(4, 5.0),
    ...                          progress=False)
    >>> spikes["sample_index"].tolist(), np.round(spikes["amplitude"], 1).tolist()
    ([1000, 1012, 5000, 20000], [1.0, 1.0, 1.0, 1.0])
    """
    templates = np.asarray(templates)
    channels = np.asarray(channels)
    n_ch = recording.sizes["channel"]
    if templates.ndim != 3:
        raise ValueError(f"templates must be (n_units, n_samples, k); got shape {templates.shape}.")
    if channels.shape != (templates.shape[0], templates.shape[2]):
        raise ValueError(f"channels must be (n_units, k) = {(templates.shape[0], templates.shape[2])} like the "
                         f"templates; got shape {channels.shape}.")
    if channels.size and (channels.max() >= n_ch or channels.min() < -1):
        raise ValueError(f"channels must be channel indices in [0, {n_ch}) or -1 (padding).")
    nbefore = check_int("nbefore", nbefore, min_value=0, max_value=max(templates.shape[1] - 1, 0))
    noise = np.asarray(noise_levels, dtype=np.float64)
    if noise.shape != (n_ch,) or not np.all(noise > 0):
        raise ValueError(f"noise_levels must be {n_ch} positive values (one per channel); got shape {noise.shape}.")
    check_number("detect_threshold", detect_threshold, min_value=0, min_inclusive=False)
    check_number("z_threshold", z_threshold, min_value=0)
    lo_a, hi_a = (float(v) for v in amplitude_range)
    if not 0 < lo_a <= hi_a:
        raise ValueError(f"amplitude_range must be (lo, hi) with 0 < lo <= hi; got {amplitude_range!r}.")
    check_number("candidate_radius_um", candidate_radius_um, min_value=0)
    max_shift = check_int("max_shift", max_shift, min_value=0)
    n_passes = check_int("n_passes", n_passes, min_value=1)
    neighbours = neighbour_table(recording, radius_um=candidate_radius_um)
    return _match(recording, templates, channels, nbefore=nbefore, noise=noise, neighbours=neighbours,
                  channel_locations=_channel_locations(recording), detect_threshold=float(detect_threshold),
                  z_threshold=float(z_threshold), amplitude_range=(lo_a, hi_a),
                  candidate_radius_um=float(candidate_radius_um), max_shift=max_shift, n_passes=n_passes,
                  sweep=int(sweep), run_max=int(run_max), chunk_size=chunk_size, n_jobs=n_jobs, progress=progress)


def _match(recording, templates, channels, *, nbefore, noise, neighbours, channel_locations, detect_threshold,
           z_threshold, amplitude_range, candidate_radius_um, max_shift, n_passes, sweep, run_max, chunk_size,
           n_jobs, progress) -> np.ndarray:
    n_units, n_t, kmax = templates.shape
    n_ch = recording.sizes["channel"]
    if n_units == 0:
        return np.zeros(0, SPIKE_DTYPE)
    W = np.ascontiguousarray(templates, dtype=np.float32)
    chans = np.ascontiguousarray(channels, dtype=np.int64)
    norms2 = (W.astype(np.float64) ** 2).sum(axis=(1, 2))
    energy_ch = (W.astype(np.float64) ** 2).sum(axis=1)  # (units, k)
    noise_u = np.where(chans >= 0, noise[np.maximum(chans, 0)], 0.0)
    sig_u = np.sqrt((energy_ch * noise_u ** 2).sum(1) / np.maximum(norms2, 1e-12))
    # Candidate units per channel: units whose best channel is within candidate_radius_um.
    amp = np.abs(W).max(axis=1)  # (units, k)
    best_ch = chans[np.arange(n_units), amp.argmax(1)]
    loc = np.asarray(channel_locations, dtype=np.float64)
    d = np.sqrt(((loc[:, None, :] - loc[None, best_ch, :]) ** 2).sum(-1))  # (channels, units)
    cand_lists = [np.flatnonzero(d[c] <= candidate_radius_um).tolist() for c in range(n_ch)]
    width = max(1, max(len(v) for v in cand_lists))
    cand = np.full((n_ch, width), -1, dtype=np.int64)
    for c, v in enumerate(cand_lists):
        cand[c, :len(v)] = v
    peak_chan_u = chans[np.arange(n_units), amp.argmax(1)]
    lo_raw = (-detect_threshold * noise).astype(np.float32)
    inv_noise = (1.0 / np.maximum(noise, 1e-12)).astype(np.float32)
    margin = n_t + max_shift + sweep + run_max + 1
    neighbours = np.ascontiguousarray(neighbours, dtype=np.int64)

    def _chunk(traces, *, start, stop, left, right):
        x = np.ascontiguousarray(traces, dtype=np.float32)
        t, u, a = _peel(x, left, x.shape[0] - right, W, chans, norms2, sig_u, cand, neighbours, lo_raw, inv_noise,
                        sweep, run_max, nbefore, max_shift, float(amplitude_range[0]), float(amplitude_range[1]),
                        float(z_threshold), n_passes, peak_chan_u)
        out = np.zeros(t.size, SPIKE_DTYPE)
        out["sample_index"] = t + (start - left)
        out["unit_index"] = u
        out["amplitude"] = a
        out["channel_index"] = peak_chan_u[u]
        return out

    parts = map_chunks(_chunk, recording, margin_samples=margin, chunk_size=chunk_size, n_jobs=n_jobs,
                       progress=progress, desc="matching")
    spikes = np.concatenate(parts) if parts else np.zeros(0, SPIKE_DTYPE)
    order = np.lexsort((spikes["unit_index"], spikes["sample_index"]))
    return spikes[order]
