"""Artifacts: blank or bridge windows around triggers (``remove_artifacts``), silence periods.

Both are lazy and exact chunk by chunk: every replacement is computed from absolute sample
positions, with the context it needs read as a margin (none for zeros, noise and template
subtraction; the window plus the fit samples for linear and cubic bridges).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..core.chunks import as_dask
from ..core.validate import check_choice, check_int, check_number
from ..io.recording import check_recording, num_samples
from ._base import lazy_transform
from .resample import _first_time

__all__ = [
    "remove_artifacts",
    "silence_periods",
    "merge_intervals",
    "intervals_mask",
    "artifact_templates",
]

_MAX_BRIDGE_S = 10.0  # longest merged window bridged by linear / cubic (its margin is read per chunk)


# ----------------------------------------------------------------------------- interval helpers


def merge_intervals(starts, stops) -> tuple[np.ndarray, np.ndarray]:
    """Sort ``[start, stop)`` intervals and merge those that overlap or touch.

    >>> [a.tolist() for a in merge_intervals([10, 0, 4], [12, 5, 8])]
    [[0, 10], [8, 12]]
    """
    s = np.asarray(starts, dtype=np.int64)
    e = np.asarray(stops, dtype=np.int64)
    if s.size == 0:
        return s.copy(), e.copy()
    order = np.argsort(s, kind="stable")
    s, e = s[order], e[order]
    run_end = np.maximum.accumulate(e)
    new = np.ones(s.size, dtype=bool)
    new[1:] = s[1:] > run_end[:-1]
    first = np.flatnonzero(new)
    last = np.r_[first[1:] - 1, s.size - 1]
    return s[first], run_end[last]


def intervals_mask(starts, stops, *, block_start: int, block_len: int) -> np.ndarray:
    """Boolean mask of the samples of ``[block_start, block_start + block_len)`` inside any interval.

    >>> intervals_mask([2, 6], [4, 7], block_start=1, block_len=7).astype(int).tolist()
    [0, 1, 1, 0, 0, 1, 0]
    """
    delta = np.zeros(block_len + 1, dtype=np.int64)
    s = np.clip(np.asarray(starts, dtype=np.int64) - block_start, 0, block_len)
    e = np.clip(np.asarray(stops, dtype=np.int64) - block_start, 0, block_len)
    np.add.at(delta, s, 1)
    np.add.at(delta, e, -1)
    return np.cumsum(delta[:-1]) > 0


def _zero_level(recording: xr.DataArray) -> np.ndarray:
    """The raw value of 0 µV on each channel (``-offset / gain``)."""
    gain = recording.coords["gain_to_uV"].values.astype(np.float64)
    offset = recording.coords["offset_to_uV"].values.astype(np.float64)
    return -offset / gain


def _cast_block(y: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind in "iu" and y.dtype.kind == "f":
        info = np.iinfo(dtype)
        return np.clip(np.round(y), info.min, info.max).astype(dtype)
    return y.astype(dtype, copy=False)


def _work_dtype(dtype: np.dtype):
    return np.float64 if dtype == np.float64 else np.float32


def _to_samples(recording: xr.DataArray, times_s=None, samples=None, *, names: tuple[str, str]) -> np.ndarray:
    n = num_samples(recording)
    fs = float(recording.attrs["sampling_frequency"])
    if (times_s is None) == (samples is None):
        raise ValueError(f"give exactly one of {names[0]} (session time, s) or {names[1]} (sample indices).")
    if times_s is not None:
        t = np.asarray(times_s, dtype=np.float64).ravel()
        if not np.all(np.isfinite(t)):
            raise ValueError(f"{names[0]} contains non-finite values.")
        t0 = _first_time(recording)
        idx = np.round((t - t0) * fs).astype(np.int64)
        bad = (idx < 0) | (idx >= n)
        if bad.any():
            raise ValueError(
                f"{names[0]} has {int(bad.sum())} value(s) outside the recording [{t0:g}, {t0 + n / fs:g}) s: "
                f"{t[bad][:5].tolist()}; times are on the session clock (the recording's 'time' coord)."
            )
        return idx
    raw = np.asarray(samples).ravel()
    if raw.size and raw.dtype.kind not in "iu":
        if not np.all(np.isfinite(raw)) or not np.all(raw == np.round(raw)):
            raise ValueError(f"{names[1]} must be integer sample indices.")
    idx = raw.astype(np.int64)
    bad = (idx < 0) | (idx >= n)
    if bad.any():
        raise ValueError(
            f"{names[1]} has {int(bad.sum())} value(s) outside the recording [0, {n}): {idx[bad][:5].tolist()}."
        )
    return idx


# ----------------------------------------------------------------------------- remove_artifacts


def artifact_templates(recording: xr.DataArray, trigger_samples: np.ndarray, *, n_before: int, n_after: int,
                       labels: np.ndarray | None = None, batch_bytes: int = 64 * 1024 * 1024) -> dict:
    """Average window ``x[t - n_before : t + n_after]`` per label (raw units, float64).

    Only triggers whose whole window lies inside the recording are averaged. Windows are read
    in batches of about ``batch_bytes``.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> rec = from_array(np.arange(20, dtype="float32").reshape(10, 2), sampling_frequency=1000.0)
    >>> artifact_templates(rec, np.array([2, 6]), n_before=1, n_after=2)[None][:, 0].tolist()
    [6.0, 8.0, 10.0]
    """
    n = num_samples(recording)
    L = n_before + n_after
    data = as_dask(recording)
    trig = np.asarray(trigger_samples, dtype=np.int64)
    lab = np.full(trig.size, None, dtype=object) if labels is None else np.asarray(labels, dtype=object)
    inside = (trig - n_before >= 0) & (trig + n_after <= n)
    sums: dict = {}
    counts: dict = {}
    per_batch = max(1, int(batch_bytes // max(1, L * data.shape[1] * 8)))
    sel = np.flatnonzero(inside)
    for k in range(0, sel.size, per_batch):
        b = sel[k:k + per_batch]
        idx = (trig[b, None] - n_before + np.arange(L)[None, :]).ravel()
        uniq, inv = np.unique(idx, return_inverse=True)
        block = np.asarray(data[uniq].compute(scheduler="threads"), dtype=np.float64)
        win = block[inv].reshape(b.size, L, -1)
        for key in np.unique(lab[b].astype(str)) if labels is not None else [None]:
            m = np.ones(b.size, dtype=bool) if key is None else lab[b].astype(str) == key
            sums[key] = sums.get(key, 0.0) + win[m].sum(axis=0)
            counts[key] = counts.get(key, 0) + int(m.sum())
    out = {}
    keys = [None] if labels is None else [str(x) for x in np.unique(lab.astype(str))]
    for key in keys:
        if counts.get(key, 0) == 0:
            raise ValueError(
                f"no trigger{'' if key is None else f' with label {key!r}'} has its whole window inside the "
                "recording, so its average artifact cannot be estimated; shorten ms_before/ms_after."
            )
        out[key] = sums[key] / counts[key]
    return out


def _bridge_plan(starts: np.ndarray, stops: np.ndarray, n: int, fit: int):
    """Fit ranges ``[lo, start)`` and ``[stop, hi)`` of each merged interval (clipped at neighbours/edges)."""
    prev_end = np.r_[0, stops[:-1]]
    next_start = np.r_[starts[1:], n]
    lo = np.maximum(starts - fit, prev_end)
    hi = np.minimum(stops + fit, next_start)
    return lo, hi


def _apply_linear(y, x, block_start, S, E, LO, HI, zero):
    blen = x.shape[0]
    b0, b1 = block_start, block_start + blen
    # Intervals overlapping the block whose anchors (or the recording edge) are inside it.
    ok = (E > b0) & (S < b1) & (LO >= b0) & (HI <= b1)
    if not ok.any():
        return
    s, e, lo, hi = S[ok], E[ok], LO[ok], HI[ok]
    has_l = lo < s
    has_r = hi > e
    left = np.where(has_l[:, None], x[np.clip(s - 1 - b0, 0, blen - 1)], np.nan)
    right = np.where(has_r[:, None], x[np.clip(e - b0, 0, blen - 1)], np.nan)
    left = np.where(np.isnan(left), right, left)
    right = np.where(np.isnan(right), left, right)
    both_missing = ~has_l & ~has_r
    left[both_missing] = zero[None, :]
    right[both_missing] = zero[None, :]
    lengths = e - s
    rows = np.repeat(np.arange(s.size), lengths)
    pos = np.arange(rows.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)  # 0..len-1 inside each
    frac = ((pos + 1) / (lengths[rows] + 1)).astype(y.dtype)
    vals = left[rows] + (right[rows] - left[rows]) * frac[:, None]
    y[s[rows] + pos - b0] = vals


def _apply_cubic(y, x, block_start, S, E, LO, HI, zero):
    blen = x.shape[0]
    b0, b1 = block_start, block_start + blen
    ok = (E > b0) & (S < b1) & (LO >= b0) & (HI <= b1)
    if not ok.any():
        return
    s, e, lo, hi = S[ok], E[ok], LO[ok], HI[ok]
    kl, kr, length = s - lo, hi - e, e - s
    too_few = (kl + kr < 4) | (kl == 0) | (kr == 0)
    if too_few.any():  # a one-sided or tiny fit would extrapolate: bridge linearly instead
        _apply_linear(y, x, block_start, s[too_few], e[too_few], lo[too_few], hi[too_few], zero)
    keep = ~too_few
    geo = np.column_stack([kl[keep], kr[keep], length[keep]])
    s, e, lo, hi = s[keep], e[keep], lo[keep], hi[keep]
    if geo.size == 0:
        return
    uniq, inv = np.unique(geo, axis=0, return_inverse=True)
    inv = np.asarray(inv).ravel()
    for g, (gl, gr, gL) in enumerate(uniq):
        m = np.flatnonzero(inv == g)
        # Positions relative to the gap, scaled to about [-1, 1] for conditioning.
        t_fit = np.r_[np.arange(-gl, 0), np.arange(gL, gL + gr)].astype(np.float64)
        t_gap = np.arange(gL, dtype=np.float64)
        scale = max(gl, gr, gL)
        V = np.vander(t_fit / scale, 4)
        P = np.linalg.pinv(V)  # (4, gl + gr)
        E_gap = np.vander(t_gap / scale, 4) @ P  # (gL, gl + gr): gap values from fit samples
        fit_idx = (s[m, None] - b0) + t_fit.astype(np.int64)[None, :]  # (m, gl + gr)
        fit_vals = x[fit_idx]  # (m, gl+gr, C)
        gap_vals = np.einsum("lk,mkc->mlc", E_gap.astype(y.dtype), fit_vals.astype(y.dtype))
        gap_idx = (s[m, None] - b0) + np.arange(gL)[None, :]
        y[gap_idx.ravel()] = gap_vals.reshape(-1, y.shape[1])


def _apply_templates(y, block_start, trig, n_before, which, templates):
    """Subtract ``templates[which[k]]`` at every trigger ``k`` whose window meets the block."""
    blen = y.shape[0]
    L = templates.shape[1]
    first = trig - n_before
    ok = np.flatnonzero((first < block_start + blen) & (first + L > block_start))
    if ok.size == 0:
        return
    rel = (first[ok] - block_start)[:, None] + np.arange(L)[None, :]  # (m, L) rows in the block
    inside = (rel >= 0) & (rel < blen)
    vals = templates[which[ok]]  # (m, L, C)
    np.subtract.at(y, rel[inside], vals[inside])


def remove_artifacts(
    recording: xr.DataArray,
    *,
    triggers_s=None,
    trigger_samples=None,
    ms_before: float = 0.5,
    ms_after: float = 3.0,
    mode: str = "zeros",
    labels=None,
    fit_ms: float = 1.0,
    dtype=None,
    chunk_size: int | None = None,
) -> xr.DataArray:
    """Remove stimulation artifacts in windows around trigger times (lazy).

    Parameters
    ----------
    recording : xarray.DataArray
    triggers_s : array_like, optional
        Trigger times on the session clock (s, as the recording's ``time`` coord).
    trigger_samples : array_like of int, optional
        Trigger sample indices (give this or ``triggers_s``).
    ms_before, ms_after : float, default 0.5, 3.0
        Window ``[t - ms_before, t + ms_after)`` around each trigger (ms, >= 0).
    mode : {"zeros", "linear", "cubic", "average"}, default "zeros"
        ``"zeros"``: the window is set to 0 µV. ``"linear"``: a straight line from the sample
        before to the sample after the window. ``"cubic"``: a cubic polynomial fitted (least
        squares) to ``fit_ms`` of data on each side, so level and slope continue smoothly.
        ``"average"``: the mean artifact (per label) is subtracted, keeping the neural signal
        under it. Overlapping windows are merged for the first three modes; for ``"average"``
        each trigger subtracts its template.
    labels : array_like, optional
        One label per trigger: ``"average"`` estimates one template per label (e.g. per
        stimulation amplitude).
    fit_ms : float, default 1.0
        Data used on each side of the window by ``"cubic"`` (stops at the neighbouring window).
    dtype : numpy dtype, optional
        Output dtype; default the input's (integers are rounded and clipped).
    chunk_size : int, optional

    Returns
    -------
    xarray.DataArray

    Notes
    -----
    Windows cut by the recording's edges are clipped; a bridge with data on one side only is
    flat (the value on that side), with none it is 0 µV. ``"cubic"`` with fewer than 4 fit
    samples, or with data on one side only, falls back to ``"linear"``. ``"average"`` estimates
    the templates eagerly (reading only the trigger windows) from triggers whose whole window is
    inside the recording. SpikeInterface's ``remove_artifacts`` offers the same modes (its cubic
    mode fits a spline to spaced, median-smoothed points instead).

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> x = np.ones((100, 2), "float32"); x[40:45] = 500.0          # an artifact at sample 40
    >>> rec = from_array(x, sampling_frequency=1000.0)
    >>> out = remove_artifacts(rec, trigger_samples=[40], ms_before=1.0, ms_after=6.0, mode="linear")
    >>> out.values[36:48, 0].tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    """
    check_recording(recording)
    check_choice("mode", mode, ("zeros", "linear", "cubic", "average"))
    ms_before = check_number("ms_before", ms_before, min_value=0)
    ms_after = check_number("ms_after", ms_after, min_value=0)
    fs = float(recording.attrs["sampling_frequency"])
    n = num_samples(recording)
    trig = _to_samples(recording, triggers_s, trigger_samples, names=("triggers_s", "trigger_samples"))
    nb = int(round(ms_before * fs / 1000.0))
    na = int(round(ms_after * fs / 1000.0))
    if nb + na < 1:
        raise ValueError(f"ms_before + ms_after = {ms_before + ms_after:g} ms is shorter than one sample at {fs:g} Hz.")
    if labels is not None:
        labels = np.asarray(labels, dtype=object).ravel()
        if labels.size != trig.size:
            raise ValueError(f"labels must have one value per trigger ({trig.size}); got {labels.size}.")
    out_dtype = np.dtype(dtype) if dtype is not None else np.dtype(recording.dtype)
    work = _work_dtype(out_dtype)
    zero = _zero_level(recording).astype(work)
    starts = np.clip(trig - nb, 0, n)
    stops = np.clip(trig + na, 0, n)
    S, E = merge_intervals(starts, stops)
    margin = 0
    params = {"trigger_samples": trig, "ms_before": ms_before, "ms_after": ms_after, "mode": mode,
              "dtype": str(out_dtype)}

    if mode in ("linear", "cubic"):
        fit = 1 if mode == "linear" else max(1, int(round(check_number("fit_ms", fit_ms, min_value=0, min_inclusive=False) * fs / 1000.0)))
        if mode == "cubic":
            params["fit_ms"] = fit_ms
        longest = int((E - S).max()) if S.size else 0
        if longest > _MAX_BRIDGE_S * fs:
            raise ValueError(
                f"merged artifact windows span up to {longest / fs:g} s (overlapping triggers); mode={mode!r} bridges "
                f"at most {_MAX_BRIDGE_S:g} s. Use mode='zeros' or silence_periods for long stretches."
            )
        LO, HI = _bridge_plan(S, E, n, fit)
        margin = longest + fit + 1
        apply = _apply_linear if mode == "linear" else _apply_cubic

        def kernel(block, *, start):
            x = np.asarray(block, dtype=work)
            y = x.copy()
            apply(y, x, start, S, E, LO, HI, zero)
            return _cast_block(y, out_dtype)
    elif mode == "zeros":
        def kernel(block, *, start):
            m = intervals_mask(S, E, block_start=start, block_len=block.shape[0])
            if not m.any():
                return _cast_block(np.asarray(block), out_dtype)
            y = np.asarray(block, dtype=work).copy()
            y[m] = zero[None, :]
            return _cast_block(y, out_dtype)
    else:
        templates = artifact_templates(recording, trig, n_before=nb, n_after=na, labels=labels)
        keys = list(templates)
        tpl_stack = np.stack([templates[k] for k in keys]).astype(work)
        which = np.zeros(trig.size, dtype=np.int64) if labels is None else \
            np.array([keys.index(str(v)) for v in labels], dtype=np.int64)
        order = np.argsort(trig, kind="stable")
        trig_sorted, which_sorted = trig[order], which[order]
        if labels is not None:
            params["labels"] = [str(v) for v in labels]

        def kernel(block, *, start):
            y = np.asarray(block, dtype=work).copy()
            _apply_templates(y, start, trig_sorted, nb, which_sorted, tpl_stack)
            return _cast_block(y, out_dtype)

    return lazy_transform(recording, kernel, margin_samples=margin, dtype=out_dtype, with_position=True,
                          chunk_size=chunk_size, step="remove_artifacts", params=params)


# ----------------------------------------------------------------------------- silence_periods

_NOISE_BLOCK = 4096  # samples per seeded noise block: the noise at sample n never depends on chunking


def _noise_levels(recording: xr.DataArray, *, num_chunks: int, chunk_duration_s: float, seed: int) -> np.ndarray:
    from .utils import random_chunks

    x = random_chunks(recording, num_chunks=num_chunks, chunk_duration_s=chunk_duration_s, seed=seed,
                      return_uV=False).astype(np.float64)
    med = np.median(x, axis=0)
    return np.median(np.abs(x - med), axis=0) / 0.6744897501960817


def silence_periods(
    recording: xr.DataArray,
    *,
    periods_s=None,
    period_samples=None,
    mode: str = "zeros",
    noise_levels=None,
    seed: int = 0,
    num_chunks: int = 20,
    chunk_duration_s: float = 0.5,
    dtype=None,
    chunk_size: int | None = None,
) -> xr.DataArray:
    """Replace periods of the recording by zeros or by Gaussian noise (lazy).

    Parameters
    ----------
    recording : xarray.DataArray
    periods_s : array_like (n_periods, 2), optional
        ``[start, end)`` of each period on the session clock (s).
    period_samples : array_like (n_periods, 2) of int, optional
        The same in samples (give this or ``periods_s``).
    mode : {"zeros", "noise"}, default "zeros"
        ``"zeros"``: 0 µV. ``"noise"``: zero-mean (0 µV) Gaussian noise with each channel's noise
        level; use it on filtered data, so that detectors see ordinary noise there.
    noise_levels : array_like (n_channels,), optional
        Noise standard deviation per channel in raw units; default: ``MAD / 0.6745`` over
        random chunks (``num_chunks``, ``chunk_duration_s``, ``seed``).
    seed : int, default 0
        Seeds the chunks for the noise levels and the noise itself. The noise at a sample depends
        only on ``seed`` and the sample's position, never on the chunking.
    num_chunks, chunk_duration_s
        Random chunks for the default ``noise_levels``.
    dtype : numpy dtype, optional
        Output dtype; default the input's (integers are rounded and clipped).
    chunk_size : int, optional

    Returns
    -------
    xarray.DataArray

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> rec = from_array(np.ones((1000, 2), "float32"), sampling_frequency=1000.0, t_start_s=10.0)
    >>> out = silence_periods(rec, periods_s=[[10.1, 10.2]])
    >>> int((out.values[:, 0] == 0).sum())
    100
    """
    check_recording(recording)
    check_choice("mode", mode, ("zeros", "noise"))
    seed = check_int("seed", seed)
    n = num_samples(recording)
    fs = float(recording.attrs["sampling_frequency"])
    n_ch = recording.sizes["channel"]
    if (periods_s is None) == (period_samples is None):
        raise ValueError("give exactly one of periods_s (session time, s) or period_samples (sample indices).")
    raw = np.asarray(periods_s if periods_s is not None else period_samples, dtype=np.float64)
    name = "periods_s" if periods_s is not None else "period_samples"
    if raw.size == 0:
        raw = raw.reshape(0, 2)
    if raw.ndim != 2 or raw.shape[1] != 2 or not np.all(np.isfinite(raw)):
        raise ValueError(f"{name} must be a list of finite [start, end) pairs; got shape {raw.shape}.")
    if periods_s is not None:
        t0 = _first_time(recording)
        pairs = np.round((raw - t0) * fs).astype(np.int64)
        lo_txt, hi_txt = f"{t0:g}", f"{t0 + n / fs:g} s"
    else:
        if not np.all(raw == np.round(raw)):
            raise ValueError("period_samples must be integer sample indices.")
        pairs = raw.astype(np.int64)
        lo_txt, hi_txt = "0", str(n)
    bad = (pairs[:, 0] < 0) | (pairs[:, 1] > n) | (pairs[:, 0] >= pairs[:, 1])
    if bad.any():
        raise ValueError(
            f"{name} has {int(bad.sum())} period(s) that are empty or outside the recording [{lo_txt}, {hi_txt}]: "
            f"{raw[bad][:5].tolist()}; each period needs start < end inside the recording."
        )
    S, E = merge_intervals(pairs[:, 0], pairs[:, 1])
    out_dtype = np.dtype(dtype) if dtype is not None else np.dtype(recording.dtype)
    work = _work_dtype(out_dtype)
    zero = _zero_level(recording).astype(work)
    params = {"period_samples": np.column_stack([S, E]), "mode": mode, "seed": seed, "dtype": str(out_dtype)}
    if mode == "noise":
        if noise_levels is None:
            levels = _noise_levels(recording, num_chunks=check_int("num_chunks", num_chunks, min_value=1),
                                   chunk_duration_s=check_number("chunk_duration_s", chunk_duration_s, min_value=0,
                                                                 min_inclusive=False), seed=seed)
        else:
            levels = np.asarray(noise_levels, dtype=np.float64)
            if levels.shape != (n_ch,) or not np.all(np.isfinite(levels)) or np.any(levels < 0):
                raise ValueError(f"noise_levels must be {n_ch} finite values >= 0 (raw units); got shape {levels.shape}.")
        params["noise_levels"] = levels
        levels = levels.astype(work)

    def kernel(block, *, start):
        m = intervals_mask(S, E, block_start=start, block_len=block.shape[0])
        if not m.any():
            return _cast_block(np.asarray(block), out_dtype)
        y = np.asarray(block, dtype=work).copy()
        rows = np.flatnonzero(m)
        if mode == "zeros":
            y[rows] = zero[None, :]
        else:
            absolute = rows + start
            blocks = absolute // _NOISE_BLOCK
            for b in np.unique(blocks):  # a few noise blocks per chunk
                sel = blocks == b
                z = np.random.default_rng([seed, int(b)]).standard_normal((_NOISE_BLOCK, n_ch), dtype=np.float32)
                y[rows[sel]] = zero[None, :] + z[absolute[sel] - b * _NOISE_BLOCK].astype(work) * levels[None, :]
        return _cast_block(y, out_dtype)

    return lazy_transform(recording, kernel, margin_samples=0, dtype=out_dtype, with_position=True,
                          chunk_size=chunk_size, step="silence_periods", params=params)
