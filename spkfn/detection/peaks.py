"""Peak detection: threshold crossings that are local extrema in time (and space), streamed."""

from __future__ import annotations

import logging

import numpy as np
import xarray as xr
from numba import njit

from ..core.chunks import map_chunks
from ..core.validate import check_choice, check_int, check_number
from ..io.recording import check_recording, get_traces, num_samples
from ..preprocessing.utils import random_chunk_bounds
from ._common import (
    _gather_snippets,
    _neighbours_from_locations,
    check_streaming,
    empty_peaks,
    ms_to_samples,
    require_geometry,
    scaling,
    sign_code,
)
from .noise import noise_levels as _noise_levels

__all__ = ["detect_peaks", "estimate_prototype", "DETECTION_METHODS", "CROSSING_MAX_MS"]

logger = logging.getLogger(__name__)

#: How far (ms) either side of a candidate its threshold crossing is followed: a peak is the
#: extremum of its channel's run of supra-threshold samples within this span.
CROSSING_MAX_MS = 0.5

#: Supported detection methods.
DETECTION_METHODS = ("by_channel", "locally_exclusive", "matched_filtering")


def detect_peaks(
    recording: xr.DataArray,
    *,
    method: str = "locally_exclusive",
    peak_sign: str = "neg",
    detect_threshold: float = 5.0,
    exclude_sweep_ms: float = 0.1,
    radius_um: float = 50.0,
    noise_levels=None,
    seed: int = 0,
    prototype=None,
    prototype_ms_before: float = 0.5,
    source_depths_um=(25.0,),
    chunk_size: int | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Detect peaks (putative spikes): threshold crossings that are local extrema.

    Parameters
    ----------
    recording : xarray.DataArray
        A preprocessed (band-pass filtered, referenced) recording, dims ``("time", "channel")``.
    method : {"locally_exclusive", "by_channel", "matched_filtering"}, default "locally_exclusive"
        - ``"by_channel"``: a sample is a peak on its channel when it crosses the channel's
          threshold and is the extremum of that channel within ± ``exclude_sweep_ms`` and of its
          threshold crossing (the contiguous run of supra-threshold samples, followed up to
          :data:`CROSSING_MAX_MS` either side): one peak per crossing.
        - ``"locally_exclusive"``: as ``by_channel``, and it must also be the extremum over every
          channel within ``radius_um`` (same group) in that time window, so one spike gives one
          peak, on its largest channel. Values are compared in units of each channel's noise.
        - ``"matched_filtering"``: the traces are correlated in time with a prototype spike
          waveform and summed over space with the footprint of a point source at each channel
          (one per depth in ``source_depths_um``); peaks are locally exclusive extrema of this
          score, normalised by its own noise. Gains SNR for small spikes. Needs geometry.
    peak_sign : {"neg", "pos", "both"}, default "neg"
    detect_threshold : float, default 5.0
        Threshold in multiples of the noise level (> 0).
    exclude_sweep_ms : float, default 0.1
        Half-width (ms) of the time window in which a peak must be the extremum (>= 0).
    radius_um : float, default 50.0
        Neighbourhood radius (µm) for ``locally_exclusive`` and ``matched_filtering``.
    noise_levels : array_like, optional
        ``(n_channels,)`` noise in µV (e.g. from :func:`spkfn.detection.noise_levels`). Computed
        with ``seed`` when not given (not used by ``matched_filtering``, which measures the noise
        of its own score).
    seed : int, default 0
        Seed of the random chunks used for noise levels and for the prototype.
    prototype : array_like, optional
        ``matched_filtering`` only: a 1-D spike waveform, extremum at sample
        ``round(prototype_ms_before * fs / 1000)``. Estimated from the data by
        :func:`estimate_prototype` (with ``seed``) when not given.
    prototype_ms_before : float, default 0.5
        Where the prototype's extremum is (ms from its start).
    source_depths_um : sequence of float, default (25.0,)
        ``matched_filtering`` only: distances (µm) of the point sources from the probe plane.
    chunk_size : int, optional
        Samples per chunk (default: about 32 MB of float32).
    n_jobs : int, optional
        Threads (default: all cores).
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    numpy.ndarray
        Structured array with :data:`spkfn.detection.PEAK_DTYPE` fields ``sample_index``,
        ``channel_index``, ``amplitude`` (µV, signed value of the traces at the peak) and
        ``segment_index`` (0), sorted by ``sample_index`` then ``channel_index``.

    Notes
    -----
    Traces are streamed chunk by chunk with a margin covering everything a peak is compared with
    (the sweep and the crossing span; the prototype and the sweep for matched filtering), and each
    chunk keeps only the peaks inside its own samples, so the result does not depend on chunking:
    no peak is lost or duplicated at chunk borders. Ties
    (equal values) are broken in favour of the earlier sample, then the lower channel index.

    The locally exclusive rule is the one of SpikeInterface's ``locally_exclusive`` detector
    (Garcia et al. 2024, eLife) and of Rossant et al. 2016 (spikedetekt). Matched filtering
    follows the prototype × spatial-footprint filter of SpikeInterface's ``matched_filtering``
    detector and Kilosort 4 (Pachitariu et al. 2024, Nat. Methods), with a monopolar
    ``1 / distance`` footprint (Boussard et al. 2021).

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> x = np.random.default_rng(0).normal(size=(30000, 4)).astype("float32")
    >>> x[1000, 2] = -20.0
    >>> x[1001, 1] = -12.0
    >>> rec = from_array(x, sampling_frequency=30000.0,
    ...                  channel_locations=[[0, 0], [0, 20], [0, 40], [0, 60]])
    >>> peaks = detect_peaks(rec, noise_levels=np.ones(4), detect_threshold=6, progress=False)
    >>> peaks[["sample_index", "channel_index"]].tolist()
    [(1000, 2)]
    """
    check_recording(recording)
    check_choice("method", method, DETECTION_METHODS)
    code = sign_code(peak_sign)
    detect_threshold = check_number(
        "detect_threshold", detect_threshold, min_value=0, min_inclusive=False,
        hint="It is a multiple of the noise level; 4 to 6 is usual.")
    exclude_sweep_ms = check_number("exclude_sweep_ms", exclude_sweep_ms, min_value=0, max_value=100)
    radius_um = check_number("radius_um", radius_um, min_value=0)
    check_int("seed", seed)
    check_streaming(chunk_size, n_jobs, progress)
    fs = float(recording.attrs["sampling_frequency"])
    n_ch = recording.sizes["channel"]
    sweep = ms_to_samples(exclude_sweep_ms, fs)
    gain, offset = scaling(recording)
    if np.any(gain <= 0):
        raise ValueError("gain_to_uV must be > 0 on every channel for peak detection; "
                         f"channels {np.flatnonzero(gain <= 0)[:10].tolist()} have gain <= 0.")
    if num_samples(recording) == 0:
        return empty_peaks()

    if method == "by_channel":
        neighbours = np.arange(n_ch, dtype=np.int64)[:, None]
    else:
        loc = require_geometry(recording, f"method={method!r}")
        neighbours = _neighbours_from_locations(loc, recording.coords["group"].values, radius_um)
        if n_ch > 1 and neighbours.shape[1] == 1:
            raise ValueError(
                f"radius_um={radius_um:g} selects no neighbouring channel (the closest contacts are "
                f"{_closest_distance(loc):.1f} µm apart); increase radius_um or use method='by_channel'."
            )

    if method == "matched_filtering":
        return _detect_matched_filtering(
            recording, code=code, detect_threshold=detect_threshold, sweep=sweep, neighbours=neighbours,
            seed=seed, prototype=prototype, prototype_ms_before=prototype_ms_before,
            source_depths_um=source_depths_um, radius_um=radius_um, chunk_size=chunk_size, n_jobs=n_jobs,
            progress=progress)

    if noise_levels is None:
        noise = _noise_levels(recording, seed=seed, n_jobs=n_jobs).astype(np.float64)
    else:
        noise = _check_noise(noise_levels, n_ch)
    thresholds = detect_threshold * noise
    lo_raw, hi_raw = _raw_thresholds(thresholds, gain, offset, code)
    inv_noise = np.where(noise > 0, 1.0 / np.maximum(noise, 1e-30), np.inf).astype(np.float32)

    run_max = ms_to_samples(CROSSING_MAX_MS, fs)
    parts = map_chunks(_detect_chunk, recording, margin_samples=max(sweep, run_max) + 1, chunk_size=chunk_size,
                       n_jobs=n_jobs, progress=progress, desc="detect peaks", gain=gain, offset=offset, lo_raw=lo_raw,
                       hi_raw=hi_raw, inv_noise=inv_noise, code=code, neighbours=neighbours, sweep=sweep,
                       run_max=run_max)
    return _concat(parts)


def _closest_distance(loc: np.ndarray) -> float:
    d = np.sqrt(((loc[:, None] - loc[None]) ** 2).sum(-1))
    d[np.diag_indices_from(d)] = np.inf
    return float(d.min())


def _check_noise(noise_levels, n_ch: int) -> np.ndarray:
    noise = np.asarray(noise_levels, dtype=np.float64)
    if noise.shape != (n_ch,):
        raise ValueError(f"noise_levels must have one value per channel ({n_ch}); got shape {noise.shape}.")
    if not np.all(np.isfinite(noise)) or np.any(noise < 0):
        raise ValueError("noise_levels must be finite and >= 0 (µV); compute them with "
                         "spkfn.detection.noise_levels(recording).")
    if np.any(noise == 0):
        logger.warning("noise level is 0 on channels %s (flat channels?): any deviation there is a peak.",
                       np.flatnonzero(noise == 0)[:10].tolist())
    return noise


def _raw_thresholds(thresholds, gain, offset, code):
    """Thresholds in the recording's raw units: a sample is a candidate when ``x < lo`` (negative
    peaks) or ``x > hi`` (positive peaks); the unused side is ±inf."""
    g = gain.astype(np.float64)
    o = offset.astype(np.float64)
    lo = (-thresholds - o) / g if code <= 0 else np.full(g.shape, -np.inf)
    hi = (thresholds - o) / g if code >= 0 else np.full(g.shape, np.inf)
    return lo.astype(np.float32), hi.astype(np.float32)


def _detect_chunk(traces, *, start, stop, left, right, gain, offset, lo_raw, hi_raw, inv_noise, code,
                  neighbours, sweep, run_max):
    s, c, a = _locally_exclusive(traces, gain, offset, lo_raw, hi_raw, inv_noise, code, neighbours, sweep,
                                 left, traces.shape[0] - right, run_max)
    return _as_peaks(s + (start - left), c, a)


def _as_peaks(sample_index, channel_index, amplitude) -> np.ndarray:
    out = empty_peaks(sample_index.size)
    out["sample_index"] = sample_index
    out["channel_index"] = channel_index
    out["amplitude"] = amplitude
    return out


def _concat(parts) -> np.ndarray:
    parts = [p for p in parts if p.size]
    if not parts:
        return empty_peaks()
    peaks = np.concatenate(parts)
    # Chunks come in order and each kernel emits peaks by sample then channel: already sorted.
    return peaks


@njit(nogil=True, cache=True)
def _value(traces, i, c, gain, offset, inv_noise, code):
    v = (traces[i, c] * gain[c] + offset[c]) * inv_noise[c]
    if code < 0:
        return -v
    if code > 0:
        return v
    return abs(v)


@njit(nogil=True, cache=True)
def _locally_exclusive(traces, gain, offset, lo_raw, hi_raw, inv_noise, code, neighbours, sweep, i0, i1,
                       run_max=0):
    """Peaks in rows ``[i0, i1)`` of ``traces``: candidates ``x < lo`` or ``x > hi`` that are the
    largest (sign-corrected, noise-normalised) value over their neighbours within ± ``sweep``
    samples and, with ``run_max > sweep``, over their own channel's contiguous run of candidates
    within ± ``run_max``. Returns (row, channel, amplitude in µV), sorted by row then channel."""
    n, n_ch = traces.shape
    kmax = neighbours.shape[1]
    cap = 1024
    rows = np.empty(cap, dtype=np.int64)
    chans = np.empty(cap, dtype=np.int64)
    amps = np.empty(cap, dtype=np.float32)
    count = 0
    for i in range(i0, i1):
        for c in range(n_ch):
            x = traces[i, c]
            if not (x < lo_raw[c] or x > hi_raw[c]):
                continue
            v = _value(traces, i, c, gain, offset, inv_noise, code)
            ok = True
            j0 = max(0, i - sweep)
            j1 = min(n, i + sweep + 1)
            for k in range(kmax):
                nb = neighbours[c, k]
                if nb < 0:
                    break
                for j in range(j0, j1):
                    if j == i and nb == c:
                        continue
                    w = _value(traces, j, nb, gain, offset, inv_noise, code)
                    if w > v or (w == v and (j < i or (j == i and nb < c))):
                        ok = False
                        break
                if not ok:
                    break
            if ok and run_max > sweep:
                # One peak per threshold crossing: the candidate must also be the extremum of its
                # channel's contiguous run of supra-threshold samples (looked at up to run_max away).
                for j in range(i + 1, min(n, i + run_max + 1)):
                    xj = traces[j, c]
                    if not (xj < lo_raw[c] or xj > hi_raw[c]):
                        break
                    if _value(traces, j, c, gain, offset, inv_noise, code) > v:
                        ok = False
                        break
                if ok:
                    for j in range(i - 1, max(-1, i - run_max - 1), -1):
                        xj = traces[j, c]
                        if not (xj < lo_raw[c] or xj > hi_raw[c]):
                            break
                        if _value(traces, j, c, gain, offset, inv_noise, code) >= v:
                            ok = False
                            break
            if ok:
                if count == cap:
                    cap *= 2
                    rows2 = np.empty(cap, dtype=np.int64)
                    chans2 = np.empty(cap, dtype=np.int64)
                    amps2 = np.empty(cap, dtype=np.float32)
                    rows2[:count] = rows[:count]
                    chans2[:count] = chans[:count]
                    amps2[:count] = amps[:count]
                    rows, chans, amps = rows2, chans2, amps2
                rows[count] = i
                chans[count] = c
                amps[count] = traces[i, c] * gain[c] + offset[c]
                count += 1
    return rows[:count], chans[:count], amps[:count]


# --------------------------------------------------------------------------------------------
# matched filtering


def estimate_prototype(
    recording: xr.DataArray,
    *,
    peak_sign: str = "neg",
    ms_before: float = 0.5,
    ms_after: float = 1.0,
    detect_threshold: float = 5.0,
    n_peaks: int = 2000,
    num_chunks: int = 20,
    chunk_duration_s: float = 0.5,
    noise_levels=None,
    seed: int = 0,
) -> np.ndarray:
    """A prototype spike waveform: the median of peak-channel snippets of detected peaks.

    Peaks are detected (``by_channel``) on ``num_chunks`` random chunks drawn with ``seed``; up to
    ``n_peaks`` of them are kept (seeded choice) and their snippets on the peak channel are
    normalised by their absolute value at the peak before taking the median.

    Parameters
    ----------
    recording : xarray.DataArray
        Preprocessed recording.
    peak_sign : {"neg", "pos", "both"}, default "neg"
        ``"both"`` uses negative peaks.
    ms_before, ms_after : float, default 0.5, 1.0
        Prototype span around the extremum (ms).
    detect_threshold : float, default 5.0
        Threshold (multiples of the noise) of the peaks averaged.
    n_peaks : int, default 2000
        At most this many peaks are averaged.
    num_chunks, chunk_duration_s : int, float
        Random chunks searched for peaks.
    noise_levels : array_like, optional
        Noise per channel in µV (computed with ``seed`` otherwise).
    seed : int, default 0

    Returns
    -------
    numpy.ndarray
        ``(round(ms_before*fs/1000) + round(ms_after*fs/1000),)`` float32 waveform, extremum
        ``-1`` (negative peaks) or ``+1`` at index ``round(ms_before*fs/1000)``.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> x = np.random.default_rng(0).normal(size=(30000, 2)).astype("float32")
    >>> x[100::300, 0] -= 12.0
    >>> p = estimate_prototype(from_array(x, sampling_frequency=30000.0), ms_before=0.2, ms_after=0.2,
    ...                        noise_levels=np.ones(2), chunk_duration_s=0.2)
    >>> p.shape, float(p[6])
    ((12,), -1.0)
    """
    check_recording(recording)
    code = sign_code(peak_sign)
    fs = float(recording.attrs["sampling_frequency"])
    nbefore = ms_to_samples(check_number("ms_before", ms_before, min_value=0), fs)
    nafter = ms_to_samples(check_number("ms_after", ms_after, min_value=0), fs)
    if nbefore + nafter < 1:
        raise ValueError("ms_before + ms_after must cover at least one sample.")
    n_peaks = check_int("n_peaks", n_peaks, min_value=1)
    check_number("detect_threshold", detect_threshold, min_value=0, min_inclusive=False)
    n = num_samples(recording)
    n_ch = recording.sizes["channel"]
    noise = (_noise_levels(recording, seed=seed).astype(np.float64) if noise_levels is None
             else _check_noise(noise_levels, n_ch))
    gain, offset = scaling(recording)
    sign = -1 if code <= 0 else 1
    lo_raw, hi_raw = _raw_thresholds(detect_threshold * noise, gain, offset, sign)
    inv_noise = (1.0 / np.maximum(noise, 1e-30)).astype(np.float32)
    own = np.arange(n_ch, dtype=np.int64)[:, None]
    size = max(1, int(round(check_number("chunk_duration_s", chunk_duration_s, min_value=0,
                                         min_inclusive=False) * fs)))
    bounds = random_chunk_bounds(n, num_chunks=num_chunks, chunk_size=size, seed=seed)
    snippets = []
    for a, b in bounds:
        x = get_traces(recording, start=int(a), end=int(b))
        s, c, _ = _locally_exclusive(x, gain, offset, lo_raw, hi_raw, inv_noise, sign, own, 1, 0, x.shape[0])
        keep = (s >= nbefore) & (s + nafter <= x.shape[0])
        if keep.any():
            snippets.append(_gather_snippets(x, gain, offset, s[keep], c[keep][:, None], nbefore, nafter)[:, :, 0])
    if not snippets:
        raise ValueError(
            f"no peak above {detect_threshold:g} × noise was found in {len(bounds)} random chunks, so no "
            "prototype can be estimated; pass prototype= explicitly or lower detect_threshold.")
    wf = np.concatenate(snippets)
    if wf.shape[0] > n_peaks:
        wf = wf[np.sort(np.random.default_rng(seed).choice(wf.shape[0], n_peaks, replace=False))]
    wf = wf / np.abs(wf[:, nbefore])[:, None]
    return np.median(wf, axis=0).astype(np.float32)


def _detect_matched_filtering(recording, *, code, detect_threshold, sweep, neighbours, seed, prototype,
                              prototype_ms_before, source_depths_um, radius_um, chunk_size, n_jobs, progress):
    fs = float(recording.attrs["sampling_frequency"])
    nbefore = ms_to_samples(check_number("prototype_ms_before", prototype_ms_before, min_value=0), fs)
    if prototype is None:
        prototype = estimate_prototype(recording, peak_sign=peak_sign_of(code), ms_before=prototype_ms_before,
                                       seed=seed)
    proto = np.asarray(prototype, dtype=np.float64)
    if proto.ndim != 1 or proto.size < 1 or not np.all(np.isfinite(proto)):
        raise ValueError(f"prototype must be a finite 1-D waveform; got shape {proto.shape}.")
    if not 0 <= nbefore < proto.size:
        raise ValueError(f"prototype_ms_before puts the extremum at sample {nbefore}, outside the "
                         f"prototype's {proto.size} samples.")
    sign = -1.0 if code < 0 else 1.0
    if code != 0 and proto[nbefore] * sign <= 0:
        raise ValueError(
            f"the prototype's value at its extremum (sample {nbefore}) is {proto[nbefore]:.3g}; for "
            f"peak_sign={peak_sign_of(code)!r} it must be {'negative' if sign < 0 else 'positive'}.")
    # Correlating with prototype / ||prototype||: a spike shaped like the prototype scores > 0.
    kernel = (proto / np.linalg.norm(proto)).astype(np.float32)
    depths = np.atleast_1d(np.asarray(source_depths_um, dtype=np.float64))
    if depths.ndim != 1 or depths.size == 0 or np.any(depths < 0) or not np.all(np.isfinite(depths)):
        raise ValueError(f"source_depths_um must be a non-empty list of distances >= 0 µm; got {source_depths_um!r}.")
    loc = require_geometry(recording, "matched_filtering")
    weights = _footprint_weights(loc, neighbours, depths)
    gain, offset = scaling(recording)
    n_taps = kernel.size
    margin = n_taps + sweep + 1
    # Noise of the score per (depth, channel), measured on random chunks.
    score_noise = _score_noise(recording, kernel, nbefore, weights, neighbours, gain, offset, seed, margin)
    inv = np.where(score_noise > 0, 1.0 / np.maximum(score_noise, 1e-30), 0.0).astype(np.float32)
    parts = map_chunks(_matched_chunk, recording, margin_samples=margin, chunk_size=chunk_size, n_jobs=n_jobs,
                       progress=progress, desc="detect peaks (matched filter)", gain=gain, offset=offset,
                       kernel=kernel, nbefore=nbefore, weights=weights, neighbours=neighbours, inv=inv,
                       code=code, threshold=np.float32(detect_threshold), sweep=sweep)
    return _concat(parts)


def peak_sign_of(code: int) -> str:
    return {-1: "neg", 1: "pos", 0: "both"}[code]


def _footprint_weights(loc, neighbours, depths):
    """``(n_depths, n_channels, k_max)`` unit-norm footprints: ``1 / sqrt(d² + z²)`` of a point
    source at depth ``z`` facing channel ``c``, over ``c``'s neighbours (0 for padding)."""
    n_ch, kmax = neighbours.shape
    w = np.zeros((depths.size, n_ch, kmax), dtype=np.float64)
    valid = neighbours >= 0
    nb = np.where(valid, neighbours, 0)
    d2 = ((loc[nb] - loc[:, None, :]) ** 2).sum(-1)
    for zi, z in enumerate(depths):
        w[zi] = np.where(valid, 1.0 / np.sqrt(d2 + max(z, 1.0) ** 2), 0.0)
    w /= np.linalg.norm(w, axis=2, keepdims=True)
    return w.astype(np.float32)


def _filtered(traces, gain, offset, kernel, nbefore):
    """Temporal matched filter: ``y[i] = Σ_k x[i - nbefore + k] kernel[k]`` per channel (µV), with
    zeros beyond the chunk. A direct FIR (vectorised over channels): exact and identical whatever
    the chunking, and faster than FFT convolution for spike-length kernels."""
    return _fir(traces, gain, offset, kernel, nbefore)


@njit(nogil=True, cache=True)
def _fir(traces, gain, offset, kernel, nbefore):
    n, n_ch = traces.shape
    k_len = kernel.shape[0]
    x = np.empty((n, n_ch), dtype=np.float32)
    for i in range(n):
        for c in range(n_ch):
            x[i, c] = traces[i, c] * gain[c] + offset[c]
    y = np.zeros((n, n_ch), dtype=np.float32)
    for i in range(n):
        k0 = max(0, nbefore - i)
        k1 = min(k_len, n - i + nbefore)
        for k in range(k0, k1):
            w = kernel[k]
            src = i - nbefore + k
            for c in range(n_ch):
                y[i, c] += w * x[src, c]
    return y


def _score_noise(recording, kernel, nbefore, weights, neighbours, gain, offset, seed, margin):
    """MAD noise of the score per (depth, channel): 20 random chunks of 0.1 s (plus margins, trimmed
    after filtering), averaged like :func:`spkfn.detection.noise_levels`."""
    from .noise import _chunk_noise

    fs = float(recording.attrs["sampling_frequency"])
    n = num_samples(recording)
    size = max(1, int(0.1 * fs))
    bounds = random_chunk_bounds(n, num_chunks=20, chunk_size=size + 2 * margin, seed=seed)
    per_chunk = []
    for a, b in bounds:
        y = _filtered(get_traces(recording, start=int(a), end=int(b)), gain, offset, kernel, nbefore)
        z = _spatial(y, weights, neighbours)
        if z.shape[0] > 2 * margin:
            z = z[margin:z.shape[0] - margin]
        per_chunk.append(_chunk_noise(np.ascontiguousarray(z.T), 0))
    return np.mean(per_chunk, axis=0).reshape(weights.shape[0], weights.shape[1])


@njit(nogil=True, cache=True)
def _spatial_kernel(y, weights, neighbours):
    n, n_ch = y.shape
    nz, _, kmax = weights.shape
    out = np.zeros((n, nz * n_ch), dtype=np.float32)
    for i in range(n):
        for z in range(nz):
            for c in range(n_ch):
                acc = np.float32(0.0)
                for k in range(kmax):
                    nb = neighbours[c, k]
                    if nb < 0:
                        break
                    acc += weights[z, c, k] * y[i, nb]
                out[i, z * n_ch + c] = acc
    return out


def _spatial(y, weights, neighbours):
    return _spatial_kernel(y, weights, neighbours)


def _matched_chunk(traces, *, start, stop, left, right, gain, offset, kernel, nbefore, weights, neighbours, inv,
                   code, threshold, sweep):
    y = _filtered(traces, gain, offset, kernel, nbefore)
    score = _spatial(y, weights, neighbours)  # (n, nz * n_ch)
    rows, chans = _score_peaks(score, inv, code, threshold, neighbours, sweep, left, traces.shape[0] - right,
                               weights.shape[0])
    amps = traces[rows, chans].astype(np.float32) * gain[chans] + offset[chans]
    return _as_peaks(rows + (start - left), chans, amps)


@njit(nogil=True, cache=True)
def _score_peaks(score, inv, code, threshold, neighbours, sweep, i0, i1, nz):
    """Locally exclusive peaks of the normalised score over (depth, channel, time).

    ``score`` is ``(n, nz * n_ch)``; a positive score is a match (negative too with ``code == 0``).
    Returns (row, channel) sorted by row then channel; one peak per (row, channel)."""
    n, n_cols = score.shape
    n_ch = n_cols // nz
    kmax = neighbours.shape[1]
    cap = 1024
    rows = np.empty(cap, dtype=np.int64)
    chans = np.empty(cap, dtype=np.int64)
    count = 0
    for i in range(i0, i1):
        for c in range(n_ch):
            best = -1.0
            bz = -1
            for z in range(nz):
                v = score[i, z * n_ch + c] * inv[z, c]
                if code == 0:
                    v = abs(v)
                if v > threshold and v > best:
                    best = v
                    bz = z
            if bz < 0:
                continue
            ok = True
            j0 = max(0, i - sweep)
            j1 = min(n, i + sweep + 1)
            for k in range(kmax):
                nb = neighbours[c, k]
                if nb < 0:
                    break
                for z in range(nz):
                    for j in range(j0, j1):
                        if j == i and nb == c and z == bz:
                            continue
                        w = score[j, z * n_ch + nb] * inv[z, nb]
                        if code == 0:
                            w = abs(w)
                        if w > best or (w == best and (j < i or (j == i and (nb < c or (nb == c and z < bz))))):
                            ok = False
                            break
                    if not ok:
                        break
                if not ok:
                    break
            if ok:
                if count == cap:
                    cap *= 2
                    rows2 = np.empty(cap, dtype=np.int64)
                    chans2 = np.empty(cap, dtype=np.int64)
                    rows2[:count] = rows[:count]
                    chans2[:count] = chans[:count]
                    rows, chans = rows2, chans2
                rows[count] = i
                chans[count] = c
                count += 1
    return rows[:count], chans[:count]

