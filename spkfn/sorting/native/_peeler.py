"""A simple greedy template matcher, private to the sorter's development.

Stand-in for the template-matching engine being written on branch ``matching``
(``spkfn.sorting.native.matching.match_templates``); the pipeline calls it through
:func:`match` only, so that swapping the engine is a one-line change.

Per chunk: find peaks of the residual (locally exclusive threshold crossings); for each, largest
first, fit every candidate template (templates with the peak's channel in their support) at a few
time shifts by least squares (amplitude ``a = <r, w> / <w, w>`` within bounds) and keep the fit
that removes the most energy, ``<r, w>^2 / <w, w>``, if its z-score ``<r, w> / (|w| sigma)``
clears the threshold; subtract ``a w``; repeat on the samples that changed until nothing fits.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from numba import njit

from ...core.chunks import map_chunks
from ...detection.peaks import _locally_exclusive

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


def match(recording: xr.DataArray, templates: np.ndarray, channels: np.ndarray, *, nbefore: int,
          noise_levels: np.ndarray, neighbours: np.ndarray, detect_threshold: float = 4.0, z_threshold: float = 6.0,
          amplitude_range=(0.5, 2.0), max_shift: int = 2, n_passes: int = 4, channel_locations=None,
          candidate_radius_um: float = 50.0,
          sweep: int = 3, run_max: int = 15, chunk_size: int | None = None, n_jobs: int | None = None,
          progress: bool = True) -> np.ndarray:
    """Greedy matching of sparse templates ``(n_units, n_t, k)`` on ``channels (n_units, k)``.

    Returns a structured array (``SPIKE_DTYPE``) sorted by sample then unit.
    """
    n_units, n_t, kmax = templates.shape
    n_ch = recording.sizes["channel"]
    if n_units == 0:
        return np.zeros(0, SPIKE_DTYPE)
    W = np.ascontiguousarray(templates, dtype=np.float32)
    chans = np.ascontiguousarray(channels, dtype=np.int64)
    norms2 = (W.astype(np.float64) ** 2).sum(axis=(1, 2))
    noise = np.asarray(noise_levels, dtype=np.float64)
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
