"""Bad channels: detect (dead, noisy, outside the brain), interpolate from neighbours, or remove.

Detection reads seeded random chunks and labels each channel in each chunk; a channel's label is
the one most chunks gave (as IBL does over its batches). Everything is per group (shank / probe),
with the group's channels ordered by depth.
"""

from __future__ import annotations

from collections.abc import Sequence

import dask
import numpy as np
import pandas as pd
import scipy.fft
import scipy.signal
import xarray as xr

from ..core.chunks import progress_bar, resolve_n_jobs
from ..core.validate import check_choice, check_int, check_number
from ..io.recording import channel_locations, check_recording, get_traces, num_samples
from ._base import lazy_transform, record_step
from .resample import _out_dtype
from .spatial import _row_median, depth_order_indices
from .utils import channel_distances, random_chunk_bounds

__all__ = [
    "LABELS",
    "detect_bad_channels",
    "coherence_psd_features",
    "coherence_psd_labels",
    "interpolate_bad_channels",
    "interpolation_matrix",
    "remove_channels",
    "detect_and_remove_bad_channels",
    "detect_and_interpolate_bad_channels",
]

#: Channel labels, in code order (0 good, 1 dead, 2 noisy, 3 outside the brain).
LABELS = ("good", "dead", "noisy", "out")


# ----------------------------------------------------------------------------- kernels (numpy)


def _similarity(x: np.ndarray) -> np.ndarray:
    """Zero-lag regression coefficient of each channel on the median trace: ``<x_c, r> / <r, r>``."""
    ref = _row_median(x).astype(np.float64)
    ref = ref - ref.mean()
    den = float(ref @ ref)
    if den <= 0:
        return np.zeros(x.shape[1])
    xc = x - x.mean(axis=0, keepdims=True)
    return (xc.T @ ref.astype(xc.dtype)).astype(np.float64) / den


def _median_trend(v: np.ndarray, n: int) -> np.ndarray:
    """Running median over ``n`` neighbouring channels, edges extended with the end values."""
    if v.size == 0:
        return v.copy()
    tap = int(np.ceil(n / 2))
    padded = np.concatenate([np.full(tap, v[0]), v, np.full(tap, v[-1])])
    return scipy.signal.medfilt(padded, n)[tap:tap + v.size]


def coherence_psd_features(traces, *, sampling_frequency: float, n_neighbours: int = 11,
                           nyquist_fraction: float = 0.8, highpass_hz: float = 300.0,
                           highpassed: np.ndarray | None = None) -> dict:
    """IBL bad-channel features of one chunk of one group, channels in depth order.

    Parameters
    ----------
    traces : ndarray (n_samples, n_channels)
        µV, channels ordered by depth (tip first).
    sampling_frequency : float
    n_neighbours : int, default 11
        Odd length of the running median across channels.
    nyquist_fraction : float, default 0.8
        ``psd_hf`` averages the power spectral density above this fraction of Nyquist.
    highpass_hz : float, default 300.0
        High-pass (Butterworth, order 3, zero phase) applied before the similarity whose trend
        gives ``xcor_lf``.
    highpassed : ndarray, optional
        ``traces`` already high-passed that way (the detector computes it with margins).

    Returns
    -------
    dict of ndarray (n_channels,)
        ``xcor_hf``: similarity to the median trace minus its running median over neighbours
        (about 0 for a normal channel, about -1 for a dead one); ``xcor_lf``: running median of
        the high-passed similarity, minus 1 (about 0 inside the brain, about -1 where channels no
        longer share the brain's signal); ``psd_hf``: mean PSD (µV²/Hz) near Nyquist;
        ``rms_uV``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> common = rng.normal(size=(9000, 1)) * 10
    >>> x = common + rng.normal(size=(9000, 32))
    >>> x[:, 5] = rng.normal(size=9000) * 0.1                          # dead: lost the shared signal
    >>> f = coherence_psd_features(x, sampling_frequency=30000.0)
    >>> int(np.argmin(f["xcor_hf"])), bool(f["xcor_hf"][5] < -0.5)
    (5, True)
    """
    x = np.asarray(traces, dtype=np.float32)
    x = x - x.mean(axis=0, keepdims=True)
    fs = float(sampling_frequency)
    sim = _similarity(x)
    psd_hf = welch_band_power(x, sampling_frequency=fs, min_hz=nyquist_fraction * fs / 2)
    if highpassed is not None:
        hp = np.asarray(highpassed, dtype=np.float32)
    elif highpass_hz and x.shape[0] > 30:
        sos = scipy.signal.butter(3, highpass_hz, btype="highpass", fs=fs, output="sos")
        hp = scipy.signal.sosfiltfilt(sos, x, axis=0)
    else:
        hp = x
    sim_hp = _similarity(hp)
    return {
        "xcor_hf": sim - _median_trend(sim, n_neighbours),
        "xcor_lf": _median_trend(sim_hp, n_neighbours) - 1.0,
        "psd_hf": psd_hf,
        "rms_uV": np.sqrt(np.mean(x * x, axis=0)),
    }


def coherence_psd_labels(features: dict, *, dead_threshold: float = -0.5, noisy_threshold: float = 1.0,
                         psd_hf_threshold: float = 0.02, outside_threshold: float = -0.75,
                         outside_location: str = "top") -> np.ndarray:
    """Label codes (0 good, 1 dead, 2 noisy, 3 out) from :func:`coherence_psd_features`.

    dead: ``xcor_hf < dead_threshold``; noisy: ``xcor_hf > noisy_threshold`` or
    ``psd_hf > psd_hf_threshold``; out: ``xcor_lf < outside_threshold`` for a contiguous run of
    channels reaching the top (last, ``"top"``), the bottom (first) or either end (``"both"``) of
    the depth-ordered group. Dead and noisy override out.

    >>> coherence_psd_labels({"xcor_hf": np.array([0.0, -0.9, 1.5, 0.0]), "psd_hf": np.zeros(4),
    ...                       "xcor_lf": np.array([0.0, 0.0, 0.0, -0.9])}).tolist()
    [0, 1, 2, 3]
    """
    hf = np.asarray(features["xcor_hf"])
    lf = np.asarray(features["xcor_lf"])
    psd = np.asarray(features["psd_hf"])
    codes = np.zeros(hf.size, dtype=np.int64)
    below = lf < outside_threshold
    if outside_location in ("top", "both") and below.size and below[-1]:
        k = below.size - 1
        while k >= 0 and below[k]:
            codes[k] = 3
            k -= 1
    if outside_location in ("bottom", "both") and below.size and below[0]:
        k = 0
        while k < below.size and below[k]:
            codes[k] = 3
            k += 1
    codes[hf < dead_threshold] = 1
    codes[(hf > noisy_threshold) | (psd > psd_hf_threshold)] = 2
    return codes


def welch_band_power(traces, *, sampling_frequency: float, min_hz: float, nperseg: int = 256) -> np.ndarray:
    """Mean Welch PSD (units²/Hz) of each channel over frequencies above ``min_hz``.

    The same estimate as ``scipy.signal.welch(x, fs, nperseg=256, axis=0)`` (Hann window, 50 %
    overlap, constant detrend, one-sided density) restricted to one band, computed on a strided
    view of all segments at once (several times faster for hundreds of channels).

    >>> import numpy as np, scipy.signal
    >>> x = np.random.default_rng(0).normal(size=(3000, 2))
    >>> f, p = scipy.signal.welch(x, fs=1000.0, nperseg=256, axis=0)
    >>> bool(np.allclose(welch_band_power(x, sampling_frequency=1000.0, min_hz=400.0), p[f > 400].mean(axis=0)))
    True
    """
    x = np.asarray(traces)
    n = x.shape[0]
    nper = min(int(nperseg), n)
    step = nper - nper // 2
    n_seg = 1 + (n - nper) // step
    seg = np.lib.stride_tricks.sliding_window_view(x, nper, axis=0)[::step][:n_seg]  # (n_seg, C, nper)
    win = scipy.signal.get_window("hann", nper).astype(x.dtype if x.dtype.kind == "f" else np.float64)
    seg = (seg - seg.mean(axis=-1, keepdims=True)) * win
    freqs = scipy.fft.rfftfreq(nper, d=1.0 / sampling_frequency)
    band = freqs > min_hz
    if not band.any():
        return np.zeros(x.shape[1])
    power = np.abs(scipy.fft.rfft(seg, axis=-1)[..., band]) ** 2  # (n_seg, C, n_band)
    # one-sided density: double every bin but DC and (even nper) Nyquist
    double = np.where((freqs[band] > 0) & ~((nper % 2 == 0) & (freqs[band] == freqs[-1])), 2.0, 1.0)
    scale = 1.0 / (sampling_frequency * float(np.sum(win.astype(np.float64) ** 2)))
    return (power * double).mean(axis=(0, 2)).astype(np.float64) * scale


def _mad(x: np.ndarray, axis=0) -> np.ndarray:
    med = np.median(x, axis=axis, keepdims=True)
    return np.median(np.abs(x - med), axis=axis)


# ----------------------------------------------------------------------------- detection


def detect_bad_channels(
    recording: xr.DataArray,
    *,
    method: str = "coherence+psd",
    num_chunks: int = 50,
    chunk_duration_s: float = 0.3,
    seed: int = 0,
    highpass_hz: float | None = 300.0,
    std_mad_threshold: float = 5.0,
    dead_threshold: float = -0.5,
    noisy_threshold: float = 1.0,
    psd_hf_threshold: float | None = None,
    outside_threshold: float = -0.75,
    outside_location: str = "top",
    n_neighbours: int = 11,
    nyquist_fraction: float = 0.8,
    n_jobs: int | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Label each channel ``good``, ``dead``, ``noisy`` or ``out`` (outside the brain).

    Parameters
    ----------
    recording : xarray.DataArray
        Recording (raw or filtered; chunks are scaled to µV and, with ``highpass_hz``, high-passed
        first). ``coherence+psd`` needs geometry (channels are compared with their neighbours in
        depth).
    method : {"coherence+psd", "std", "mad"}, default "coherence+psd"
        ``"coherence+psd"``: the IBL method (see Notes). ``"std"`` / ``"mad"``: each channel's
        standard deviation (or ``1.4826 * MAD``) is compared with the group's on a log scale: a
        channel more than ``std_mad_threshold`` median absolute deviations of ``log(deviation)``
        above the group's median is ``noisy``, below it (or flat) ``dead``.
    num_chunks : int, default 50
    chunk_duration_s : float, default 0.3
        Random chunks (drawn with ``seed``) labelled independently; the final label is the most
        frequent one (ties go to ``good``).
    seed : int, default 0
    highpass_hz : float or None, default 300.0
        Butterworth (order 3, zero phase) high-pass applied to each chunk (read with 50 ms of
        margin) before anything else; None to use the traces as they are.
    std_mad_threshold : float, default 5.0
        For ``"std"`` / ``"mad"``.
    dead_threshold, noisy_threshold : float, default -0.5, 1.0
        Bounds on ``xcor_hf`` (``coherence+psd``).
    psd_hf_threshold : float, optional
        Bound on ``psd_hf`` in µV²/Hz; default 0.02 above 5 kHz sampling (AP band), 1.4 below (LF).
    outside_threshold : float, default -0.75
        Bound on ``xcor_lf`` for ``out``.
    outside_location : {"top", "bottom", "both", "none"}, default "top"
        Where out-of-brain channels can be: a contiguous run reaching the top of the probe
        (largest ``y``; the probe's tip is at the bottom), the bottom, either, or nowhere.
    n_neighbours : int, default 11
        Odd number of channels of the running median (``coherence+psd``).
    nyquist_fraction : float, default 0.8
    n_jobs : int, optional
        Threads used for the chunks (default: all cores). Labels do not depend on it.
    progress : bool, default False
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        Indexed by channel id (recording order): ``label`` (str), ``group``, ``fraction`` (share
        of chunks that gave this label), and the median over chunks of each feature (``xcor_hf``,
        ``xcor_lf``, ``psd_hf``, ``rms_uV`` for ``coherence+psd``; ``deviation_uV`` and
        ``robust_z`` for ``std`` / ``mad``). Bad ids: ``df.index[df.label != "good"]``.

    Notes
    -----
    ``coherence+psd`` follows the IBL definition (International Brain Laboratory et al., 2022,
    *Spike sorting pipeline for the International Brain Laboratory*, figshare,
    doi:10.6084/m9.figshare.19705522, "bad channel detection"; ``ibldsp.voltage.detect_bad_channels``):
    per chunk, with channels in depth order, the similarity of each channel is its zero-lag
    regression coefficient on the median trace; ``xcor_hf`` is that similarity minus its running
    median over ``n_neighbours`` channels (a dead channel stands out below its neighbours, a
    noisy one above); ``xcor_lf`` is the running median of the similarity of 300 Hz high-passed
    data minus one (channels in saline or air share little with the brain's median); ``psd_hf`` is
    the mean Welch PSD above 80 % of Nyquist (noise that the probe's anti-alias filter should have
    removed). Thresholds are IBL's. SpikeInterface implements the same method
    (``detect_bad_channels(method="coherence+psd")``).

    Examples
    --------
    >>> import numpy as np, scipy.signal
    >>> from spkfn.io import from_array, linear_probe
    >>> rng = np.random.default_rng(0)
    >>> sos = scipy.signal.butter(3, [300, 3000], "bandpass", fs=30000.0, output="sos")
    >>> shared = scipy.signal.sosfilt(sos, rng.normal(size=(60000, 1)) * 40, axis=0)    # brain signal
    >>> x = (shared + rng.normal(size=(60000, 32)) * 3).astype("float32")
    >>> x[:, 7] = 0.0                                                  # a dead channel
    >>> rec = from_array(x, sampling_frequency=30000.0, probe=linear_probe(num_channels=32))
    >>> df = detect_bad_channels(rec, num_chunks=5, chunk_duration_s=0.1)
    >>> df.index[df.label != "good"].tolist()
    ['7']
    """
    check_recording(recording)
    check_choice("method", method, ("coherence+psd", "std", "mad"))
    num_chunks = check_int("num_chunks", num_chunks, min_value=1)
    chunk_duration_s = check_number("chunk_duration_s", chunk_duration_s, min_value=0, min_inclusive=False)
    seed = check_int("seed", seed)
    fs = float(recording.attrs["sampling_frequency"])
    if highpass_hz is not None:
        highpass_hz = check_number("highpass_hz", highpass_hz, min_value=0, max_value=fs / 2, min_inclusive=False,
                                   max_inclusive=False, hint=f"Nyquist is {fs / 2:g} Hz; use None to skip the high-pass.")
    std_mad_threshold = check_number("std_mad_threshold", std_mad_threshold, min_value=0, min_inclusive=False)
    check_choice("outside_location", outside_location, ("top", "bottom", "both", "none"))
    n_neighbours = check_int("n_neighbours", n_neighbours, min_value=1)
    if n_neighbours % 2 == 0:
        raise ValueError(f"n_neighbours must be odd (a centred running median); got {n_neighbours}.")
    nyquist_fraction = check_number("nyquist_fraction", nyquist_fraction, min_value=0, max_value=1,
                                    max_inclusive=False)
    if psd_hf_threshold is None:
        psd_hf_threshold = 0.02 if fs > 5000 else 1.4
    psd_hf_threshold = check_number("psd_hf_threshold", psd_hf_threshold, min_value=0)
    for name, v in (("dead_threshold", dead_threshold), ("noisy_threshold", noisy_threshold),
                    ("outside_threshold", outside_threshold)):
        check_number(name, v)

    groups = recording.coords["group"].values
    n_ch = recording.sizes["channel"]
    if method == "coherence+psd":
        loc = channel_locations(recording)
    else:
        loc = channel_locations(recording, required=False)
    members = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        if loc is not None:
            idx = idx[depth_order_indices(loc[idx])]
        members.append(idx)

    feature_names = ("xcor_hf", "xcor_lf", "psd_hf", "rms_uV") if method == "coherence+psd" else ("deviation_uV",)
    hp_internal = min(300.0, 0.45 * fs) if method == "coherence+psd" else None

    def _one_chunk(bounds):
        x, hp = _detection_chunk(recording, bounds, highpass_hz=highpass_hz, second_highpass_hz=hp_internal)
        c = np.zeros(n_ch, dtype=np.int64)
        f = {k: np.zeros(n_ch) for k in feature_names}
        for idx in members:
            xg = x[:, idx]
            if method == "coherence+psd":
                fg = coherence_psd_features(xg, sampling_frequency=fs, n_neighbours=n_neighbours,
                                            nyquist_fraction=nyquist_fraction, highpassed=hp[:, idx])
                c[idx] = coherence_psd_labels(fg, dead_threshold=dead_threshold, noisy_threshold=noisy_threshold,
                                              psd_hf_threshold=psd_hf_threshold, outside_threshold=outside_threshold,
                                              outside_location=outside_location)
            else:
                dev = xg.std(axis=0, dtype=np.float64) if method == "std" else 1.4826 * _mad(xg, axis=0)
                fg = {"deviation_uV": dev}
                c[idx] = _deviation_labels(dev, std_mad_threshold)
            for k in feature_names:
                f[k][idx] = fg[k]
        return c, f

    # Chunks are independent: run them on threads (FFTs and sorts release the GIL).
    tasks = [dask.delayed(_one_chunk, pure=False)(tuple(int(v) for v in b))  # pure=True would hash the recording
             for b in _detection_bounds(recording, num_chunks=num_chunks, chunk_duration_s=chunk_duration_s, seed=seed,
                                        filtered=bool(highpass_hz or hp_internal))]
    with progress_bar("detect bad channels", enabled=progress):
        results = dask.compute(*tasks, scheduler="threads", num_workers=resolve_n_jobs(n_jobs))
    codes = [r[0] for r in results]
    feats = {k: [r[1][k] for r in results] for k in feature_names}
    codes = np.array(codes)  # (n_chunks, n_channels)
    counts = np.stack([(codes == k).sum(axis=0) for k in range(len(LABELS))], axis=1)
    final = np.argmax(counts, axis=1)  # ties -> lowest code -> "good" first
    df = pd.DataFrame(index=pd.Index(recording.coords["channel"].values.astype(str), name="channel"))
    df["label"] = np.asarray(LABELS, dtype=object)[final]
    df["group"] = groups
    df["fraction"] = counts[np.arange(n_ch), final] / codes.shape[0]
    for k in feature_names:
        df[k] = np.median(np.array(feats[k]), axis=0)
    if method != "coherence+psd":
        dev = df["deviation_uV"].to_numpy()
        z = np.zeros(n_ch)
        for idx in members:
            z[idx] = _log_robust_z(dev[idx])
        df["robust_z"] = z
    return df


def _deviation_labels(dev: np.ndarray, threshold: float) -> np.ndarray:
    """dead / noisy by a robust z-score of ``log(deviation)`` across the group's channels."""
    z = _log_robust_z(dev)
    codes = np.zeros(dev.size, dtype=np.int64)
    codes[z > threshold] = 2
    codes[(z < -threshold) | (dev <= 0)] = 1
    return codes


def _log_robust_z(dev: np.ndarray) -> np.ndarray:
    positive = dev > 0
    if not positive.any():
        return np.zeros(dev.size)
    logd = np.log(np.where(positive, dev, dev[positive].min()))
    med = np.median(logd[positive])
    spread = np.median(np.abs(logd[positive] - med))
    spread = spread if spread > 0 else 1e-6
    return (logd - med) / spread


def _zero_phase_highpass(x: np.ndarray, fs: float, cutoffs_hz: list) -> list:
    """``x`` high-passed by Butterworth filters (order 3, forward-backward, so ``|H|^2``) in cascade.

    Done in the frequency domain on the whole block (one FFT); returns one array per cumulative
    cutoff. The block's edges wrap around, so callers drop a margin at each end.
    """
    nfft = scipy.fft.next_fast_len(x.shape[0], real=True)
    spec = scipy.fft.rfft(x, n=nfft, axis=0)
    freqs = scipy.fft.rfftfreq(nfft, d=1.0 / fs)
    gain = np.ones(freqs.size)
    out = []
    for hz in cutoffs_hz:
        if hz:
            sos = scipy.signal.butter(3, hz, btype="highpass", fs=fs, output="sos")
            _, h = scipy.signal.sosfreqz(sos, worN=freqs, fs=fs)
            gain = gain * np.abs(h) ** 2
        out.append(scipy.fft.irfft(spec * gain.astype(np.float32)[:, None], n=nfft, axis=0)[:x.shape[0]])
    return out


_DETECTION_MARGIN_S = 0.05  # read around each chunk and dropped after the high-pass


def _detection_bounds(recording, *, num_chunks, chunk_duration_s, seed, filtered):
    fs = float(recording.attrs["sampling_frequency"])
    size = max(1, int(round(chunk_duration_s * fs)))
    margin = int(round(_DETECTION_MARGIN_S * fs)) if filtered else 0
    return random_chunk_bounds(num_samples(recording), num_chunks=num_chunks, chunk_size=size, seed=seed,
                               margin_samples=margin)


def _detection_chunk(recording, bounds, *, highpass_hz, second_highpass_hz=None):
    """One chunk in µV (float32), high-passed, and optionally high-passed again (two arrays)."""
    fs = float(recording.attrs["sampling_frequency"])
    n = num_samples(recording)
    a, b = bounds
    filtered = bool(highpass_hz or second_highpass_hz)
    margin = int(round(_DETECTION_MARGIN_S * fs)) if filtered else 0
    lo, hi = max(0, a - margin), min(n, b + margin)
    x = get_traces(recording, start=lo, end=hi, return_uV=True).astype(np.float32)
    crop = slice(a - lo, x.shape[0] - (hi - b))
    if not filtered:
        return x[crop], x[crop]
    x = x - x.mean(axis=0, keepdims=True)
    first, second = _zero_phase_highpass(x, fs, [highpass_hz, second_highpass_hz])
    return first[crop], second[crop]


# ----------------------------------------------------------------------------- interpolation


def interpolation_matrix(locations: np.ndarray, bad: np.ndarray, *, groups: np.ndarray | None = None,
                         sigma_um: float | np.ndarray = 20.0, p: float = 1.3,
                         weight_threshold: float = 0.005, channel_ids=None) -> np.ndarray:
    """``(n, n)`` matrix ``M`` with ``interpolated = x @ M`` (identity on good channels).

    Column ``i`` of a bad channel holds the weights ``w_j = exp(-(d_ij / sigma) ** p)`` of the
    good channels ``j`` of its group, those below ``weight_threshold`` dropped, normalised to sum
    to 1. ``sigma_um`` may be one value per channel (per group).

    >>> M = interpolation_matrix(np.array([[0.0, 0], [0, 20], [0, 40]]), np.array([False, True, False]))
    >>> M[:, 1].round(3).tolist()
    [0.5, 0.0, 0.5]
    """
    loc = np.asarray(locations, dtype=np.float64)
    n = loc.shape[0]
    bad = np.asarray(bad, dtype=bool)
    groups = np.zeros(n, dtype=np.int64) if groups is None else np.asarray(groups)
    sigma = np.broadcast_to(np.asarray(sigma_um, dtype=np.float64), (n,))
    d = channel_distances(loc)
    M = np.eye(n)
    for i in np.flatnonzero(bad):
        w = np.exp(-((d[i] / sigma[i]) ** p))
        w[bad | (groups != groups[i])] = 0.0
        w[w < weight_threshold] = 0.0
        if w.sum() <= 0:
            name = channel_ids[i] if channel_ids is not None else i
            raise ValueError(
                f"bad channel {name!r} has no good channel of its group close enough to interpolate from "
                f"(sigma_um={sigma[i]:g}, weight_threshold={weight_threshold:g}); raise sigma_um or remove "
                "it with remove_channels."
            )
        M[:, i] = w / w.sum()
    return M


def _as_id_list(channel_ids, name: str) -> list[str]:
    if isinstance(channel_ids, str):
        channel_ids = [channel_ids]
    if isinstance(channel_ids, pd.DataFrame):
        raise ValueError(f"{name} must be channel ids; from detect_bad_channels use df.index[df.label != 'good'].")
    return [str(c) for c in np.asarray(list(channel_ids), dtype=object).tolist()]


def _positions(recording: xr.DataArray, ids: list[str], name: str) -> np.ndarray:
    all_ids = recording.coords["channel"].values.astype(str).tolist()
    where = {c: k for k, c in enumerate(all_ids)}
    unknown = [c for c in ids if c not in where]
    if unknown:
        raise ValueError(f"{name} has ids not in the recording: {unknown[:10]} (recording ids start {all_ids[:5]}).")
    if len(set(ids)) != len(ids):
        raise ValueError(f"{name} has duplicated ids.")
    return np.array([where[c] for c in ids], dtype=np.int64)


def interpolate_bad_channels(
    recording: xr.DataArray,
    *,
    bad_channel_ids: Sequence[str],
    sigma_um: float | None = None,
    p: float = 1.3,
    weight_threshold: float = 0.005,
    dtype=None,
    chunk_size: int | None = None,
) -> xr.DataArray:
    """Replace bad channels by a distance-weighted average of good neighbours (lazy, kriging-style).

    Parameters
    ----------
    recording : xarray.DataArray
        Recording with geometry.
    bad_channel_ids : sequence of str
        Channels to replace (e.g. ``df.index[df.label.isin(["dead", "noisy"])]`` from
        :func:`detect_bad_channels`).
    sigma_um : float, optional
        Length scale of the weights (µm). Default: per group, the median distance from each
        contact to its nearest neighbour (25.6 µm on Neuropixels 1.0, the pitch on linear probes).
    p : float, default 1.3
        Exponent of the weights ``exp(-(d / sigma) ** p)``.
    weight_threshold : float, default 0.005
        Weights below this are dropped before normalising.
    dtype : numpy dtype, optional
        Output dtype; default float32 (float64 input stays float64). Integers are rounded and clipped.
    chunk_size : int, optional

    Returns
    -------
    xarray.DataArray
        Same channels; bad ones interpolated (in µV, then back to each channel's raw units),
        good ones unchanged. Only good channels of the same group contribute.

    Notes
    -----
    The weights are those of IBL's ``interpolate_bad_channels`` (IBL spike sorting white paper,
    2022): an exponential kernel in distance with ``p = 1.3``, as also used by SpikeInterface. A bad
    channel without any good neighbour above ``weight_threshold`` raises an error.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array, linear_probe
    >>> t = np.linspace(0, 1, 1000)[:, None]
    >>> depth = np.arange(8)[None, :] * 25.0
    >>> x = np.sin(2 * np.pi * (5 * t + depth / 2000)).astype("float32")  # smooth across depth
    >>> broken = x.copy(); broken[:, 3] = 0
    >>> rec = from_array(broken, sampling_frequency=1000.0, probe=linear_probe(num_channels=8))
    >>> out = interpolate_bad_channels(rec, bad_channel_ids=["3"])
    >>> bool(np.abs(out.values[:, 3] - x[:, 3]).max() < 0.1)
    True
    """
    check_recording(recording)
    ids = _as_id_list(bad_channel_ids, "bad_channel_ids")
    pos = _positions(recording, ids, "bad_channel_ids")
    p = check_number("p", p, min_value=0, min_inclusive=False)
    weight_threshold = check_number("weight_threshold", weight_threshold, min_value=0, max_value=1, max_inclusive=False)
    loc = channel_locations(recording)
    groups = recording.coords["group"].values
    n = recording.sizes["channel"]
    if sigma_um is None:
        sigma = _default_sigma(loc, groups)
    else:
        sigma = np.full(n, check_number("sigma_um", sigma_um, min_value=0, min_inclusive=False))
    bad = np.zeros(n, dtype=bool)
    bad[pos] = True
    W = interpolation_matrix(loc, bad, groups=groups, sigma_um=sigma, p=p, weight_threshold=weight_threshold,
                             channel_ids=recording.coords["channel"].values.astype(str))
    gain = recording.coords["gain_to_uV"].values.astype(np.float64)
    offset = recording.coords["offset_to_uV"].values.astype(np.float64)
    # out_i = (sum_j W_ji (x_j g_j + o_j) - o_i) / g_i  ==  x @ A + c
    A = (gain[:, None] * W) / gain[None, :]
    c = (offset @ W - offset) / gain
    in_dtype = np.dtype(recording.dtype)
    out_dtype = _out_dtype(in_dtype, dtype)
    work = np.float64 if out_dtype == np.float64 else np.float32
    cols = np.flatnonzero(bad)
    A_bad = A[:, cols].astype(work)
    c_bad = c[cols].astype(work)

    def kernel(block):
        y = np.asarray(block).astype(work, copy=True)
        if cols.size:
            y[:, cols] = np.asarray(block, dtype=work) @ A_bad + c_bad[None, :]
        if out_dtype.kind in "iu":
            info = np.iinfo(out_dtype)
            y = np.clip(np.round(y), info.min, info.max)
        return y

    return lazy_transform(
        recording, kernel, margin_samples=0, dtype=out_dtype, chunk_size=chunk_size, step="interpolate_bad_channels",
        params={"bad_channel_ids": ids, "sigma_um": float(np.median(sigma)) if sigma_um is None else sigma_um,
                "sigma_um_given": sigma_um is not None, "p": p, "weight_threshold": weight_threshold,
                "dtype": str(out_dtype)},
    )


def _default_sigma(loc: np.ndarray, groups: np.ndarray) -> np.ndarray:
    d = channel_distances(loc)
    np.fill_diagonal(d, np.inf)
    d = np.where(groups[:, None] == groups[None, :], d, np.inf)
    nearest = d.min(axis=1)
    sigma = np.empty(loc.shape[0])
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        finite = nearest[idx][np.isfinite(nearest[idx]) & (nearest[idx] > 0)]
        sigma[idx] = float(np.median(finite)) if finite.size else 20.0
    return sigma


# ----------------------------------------------------------------------------- removal


def remove_channels(recording: xr.DataArray, *, channel_ids: Sequence[str]) -> xr.DataArray:
    """Drop channels (lazy; the remaining channels keep their order, coords and probe).

    Parameters
    ----------
    recording : xarray.DataArray
    channel_ids : sequence of str
        Ids to drop; all must exist, and at least one channel must remain.

    Returns
    -------
    xarray.DataArray

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> rec = from_array(np.zeros((4, 3), "int16"), sampling_frequency=1000.0)
    >>> remove_channels(rec, channel_ids=["1"]).channel.values.tolist()
    ['0', '2']
    """
    check_recording(recording)
    ids = _as_id_list(channel_ids, "channel_ids")
    pos = _positions(recording, ids, "channel_ids")
    n = recording.sizes["channel"]
    if pos.size >= n:
        raise ValueError(f"channel_ids would remove all {n} channels; keep at least one.")
    keep = np.ones(n, dtype=bool)
    keep[pos] = False
    out = recording.isel(channel=np.flatnonzero(keep))
    return record_step(out, "remove_channels", {"channel_ids": ids})


def detect_and_remove_bad_channels(
    recording: xr.DataArray,
    *,
    method: str = "coherence+psd",
    labels: Sequence[str] = ("dead", "noisy", "out"),
    num_chunks: int = 50,
    chunk_duration_s: float = 0.3,
    seed: int = 0,
    highpass_hz: float | None = 300.0,
) -> xr.DataArray:
    """:func:`detect_bad_channels` then :func:`remove_channels` on the given ``labels``.

    A pipeline-friendly step (``{"detect_and_remove_bad_channels": {"method": "std"}}``); other
    detection thresholds keep their defaults (call the two functions for full control). The
    detected ids are recorded in the step history.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array, linear_probe
    >>> rng = np.random.default_rng(0)
    >>> x = (rng.normal(size=(30000, 16)) * 5).astype("float32"); x[:, 2] *= 40   # one very noisy channel
    >>> rec = from_array(x, sampling_frequency=30000.0, probe=linear_probe(num_channels=16))
    >>> detect_and_remove_bad_channels(rec, method="std", num_chunks=5, chunk_duration_s=0.1).sizes["channel"]
    15
    """
    labels = _check_labels(labels)
    df = detect_bad_channels(recording, method=method, num_chunks=num_chunks, chunk_duration_s=chunk_duration_s,
                             seed=seed, highpass_hz=highpass_hz)
    bad = df.index[df.label.isin(labels)].tolist()
    out = remove_channels(recording, channel_ids=bad) if bad else recording
    params = {"method": method, "labels": list(labels), "num_chunks": num_chunks, "chunk_duration_s": chunk_duration_s,
              "seed": seed, "highpass_hz": highpass_hz, "removed": bad}
    if bad:  # replace the inner remove_channels record with this step's
        out.attrs["preprocessing"] = out.attrs["preprocessing"][:-1]
    return record_step(out, "detect_and_remove_bad_channels", params)


def detect_and_interpolate_bad_channels(
    recording: xr.DataArray,
    *,
    method: str = "coherence+psd",
    labels: Sequence[str] = ("dead", "noisy"),
    num_chunks: int = 50,
    chunk_duration_s: float = 0.3,
    seed: int = 0,
    highpass_hz: float | None = 300.0,
    sigma_um: float | None = None,
    p: float = 1.3,
    dtype=None,
) -> xr.DataArray:
    """:func:`detect_bad_channels` then :func:`interpolate_bad_channels` on the given ``labels``.

    Channels outside the brain are left as they are by default (as IBL does): there is nothing
    sensible to interpolate them from.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array, linear_probe
    >>> rng = np.random.default_rng(0)
    >>> x = (rng.normal(size=(30000, 16)) * 5).astype("float32"); x[:, 2] = 0   # a flat channel
    >>> rec = from_array(x, sampling_frequency=30000.0, probe=linear_probe(num_channels=16))
    >>> out = detect_and_interpolate_bad_channels(rec, method="std", num_chunks=5, chunk_duration_s=0.1)
    >>> out.attrs["preprocessing"][-1]["params"]["interpolated"], bool(out.values[:, 2].std() > 0)
    (['2'], True)
    """
    labels = _check_labels(labels)
    df = detect_bad_channels(recording, method=method, num_chunks=num_chunks, chunk_duration_s=chunk_duration_s,
                             seed=seed, highpass_hz=highpass_hz)
    bad = df.index[df.label.isin(labels)].tolist()
    if bad:
        out = interpolate_bad_channels(recording, bad_channel_ids=bad, sigma_um=sigma_um, p=p, dtype=dtype)
        out.attrs["preprocessing"] = out.attrs["preprocessing"][:-1]
    else:
        out = recording
    params = {"method": method, "labels": list(labels), "num_chunks": num_chunks, "chunk_duration_s": chunk_duration_s,
              "seed": seed, "highpass_hz": highpass_hz, "sigma_um": sigma_um, "p": p, "interpolated": bad}
    return record_step(out, "detect_and_interpolate_bad_channels", params)


def _check_labels(labels) -> tuple[str, ...]:
    labels = (labels,) if isinstance(labels, str) else tuple(labels)
    wrong = [x for x in labels if x not in LABELS[1:]]
    if wrong or not labels:
        raise ValueError(f"labels must be a non-empty subset of {list(LABELS[1:])}; got {list(labels)}.")
    return labels
