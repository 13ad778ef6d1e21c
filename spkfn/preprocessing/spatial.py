"""Spatial steps: IBL's high-pass spatial filter (destriping), depth ordering, zero-channel padding."""

from __future__ import annotations

import json

import dask.array as da
import numba
import numpy as np
import scipy.signal
import xarray as xr

from ..core.chunks import as_dask
from ..core.validate import check_bool, check_int, check_number
from ..io.recording import channel_locations, check_recording, has_geometry, time_coordinate
from ._base import lazy_transform, record_step
from .resample import _first_time, _out_dtype

__all__ = [
    "highpass_spatial_filter",
    "spatial_highpass_matrix",
    "agc_highpass_kernel",
    "smoothed_amplitude",
    "depth_order",
    "depth_order_indices",
    "zero_channel_pad",
]


def _row_median(x: np.ndarray) -> np.ndarray:
    """Median of each row (sorting is several times faster than np.median for rows of a few hundred)."""
    s = np.sort(x, axis=1)
    c = x.shape[1]
    return s[:, c // 2] if c % 2 else 0.5 * (s[:, c // 2 - 1] + s[:, c // 2])


def depth_order_indices(locations: np.ndarray, *, groups: np.ndarray | None = None, flip: bool = False) -> np.ndarray:
    """Channel positions sorted by group, then depth ``y``, then ``x`` (ties keep their order).

    >>> depth_order_indices(np.array([[0.0, 40], [10, 0], [0, 0]])).tolist()
    [2, 1, 0]
    """
    loc = np.asarray(locations, dtype=np.float64)
    y = -loc[:, 1] if flip else loc[:, 1]
    x = -loc[:, 0] if flip else loc[:, 0]
    keys = [x, y] if groups is None else [x, y, np.asarray(groups)]
    return np.lexsort(keys).astype(np.int64)


def depth_order(recording: xr.DataArray, *, flip: bool = False, by_group: bool = True) -> xr.DataArray:
    """Reorder the channels by depth (``y``, then ``x``), group by group (lazy; values untouched).

    Parameters
    ----------
    recording : xarray.DataArray
        Recording with geometry.
    flip : bool, default False
        Deepest-last (default, ``y`` increasing) or deepest-first.
    by_group : bool, default True
        Keep each group's channels together (groups in increasing order), sorted by depth
        inside; ``False`` sorts all channels by depth regardless of group.

    Returns
    -------
    xarray.DataArray
        The same channels (ids, coords, probe) in depth order.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> rec = from_array(np.zeros((5, 3), "int16"), sampling_frequency=1000.0,
    ...                  channel_locations=[[0, 40], [0, 0], [0, 20]], channel_ids=["a", "b", "c"])
    >>> depth_order(rec).channel.values.tolist()
    ['b', 'c', 'a']
    """
    check_recording(recording)
    check_bool("flip", flip)
    check_bool("by_group", by_group)
    loc = channel_locations(recording)
    groups = recording.coords["group"].values if by_group else None
    order = depth_order_indices(loc, groups=groups, flip=flip)
    out = recording.isel(channel=order)
    return record_step(out, "depth_order", {"flip": flip, "by_group": by_group})


def _cosine_taper(n_total: int, n_taper: int) -> np.ndarray:
    """1 in the middle, cosine ramps over ``n_taper`` samples at both ends (IBL's fcn_cosine)."""
    t = np.ones(n_total)
    if n_taper <= 0:
        return t
    k = np.arange(n_total, dtype=np.float64)
    up = np.clip(k / n_taper, 0.0, 1.0)
    down = np.clip((n_total - k) / n_taper, 0.0, 1.0)
    return (1 - np.cos(up * np.pi)) / 2 * (1 - np.cos(down * np.pi)) / 2


def spatial_highpass_matrix(num_channels: int, *, n_channel_pad: int = 60, n_channel_taper: int = 0,
                            order: int = 3, wn: float = 0.01) -> np.ndarray:
    """The spatial high-pass of one group as a matrix ``M``: filtered rows are ``x @ M``.

    The filter (mirror-pad ``n_channel_pad`` channels at each end, optional cosine taper over
    ``n_channel_taper`` channels, zero-phase Butterworth high-pass of ``order`` at ``wn`` times
    the spatial Nyquist, crop) is linear and the same for every sample, so it is computed once,
    on the identity, and applied as one matrix product per chunk.

    Examples
    --------
    >>> M = spatial_highpass_matrix(64)
    >>> bool(np.abs(np.ones(64) @ M).max() < 1e-3)     # a stripe common to all channels is removed
    True
    """
    n = int(num_channels)
    pad = min(int(n_channel_pad), n)
    eye = np.eye(n)
    padded = np.concatenate([eye[:, :pad][:, ::-1], eye, eye[:, n - pad:][:, ::-1]], axis=1) if pad else eye
    padded = padded * _cosine_taper(padded.shape[1], int(n_channel_taper))[None, :]
    sos = scipy.signal.butter(order, wn, btype="highpass", output="sos")
    ntaps = 2 * len(sos) + 1
    default_padlen = 3 * (ntaps - min((sos[:, 2] == 0).sum(), (sos[:, 5] == 0).sum()))
    padlen = min(default_padlen, padded.shape[1] - 1)
    filtered = scipy.signal.sosfiltfilt(sos, padded, axis=1, padlen=padlen)
    return filtered[:, pad:pad + n]


@numba.njit(nogil=True, cache=True)
def _hann_sum(a, length):  # pragma: no cover - compiled
    """``'same'`` convolution of each column of ``a`` with ``np.hanning(length)`` (odd length >= 3).

    A Hann window is ``0.5 - 0.5 cos(theta k)``, so the windowed sum is three running sums (of
    ``a``, ``a cos(theta u)`` and ``a sin(theta u)``) updated sample by sample: O(n) per channel
    instead of an FFT, with samples outside the block counted as zeros.
    """
    n, m = a.shape
    h = length // 2
    theta = 2.0 * np.pi / (length - 1)
    out = np.empty((n, m), dtype=np.float32)
    s0 = np.zeros(m)
    sc = np.zeros(m)
    ss = np.zeros(m)
    for u in range(min(h + 1, n)):
        c = np.cos(theta * u)
        s = np.sin(theta * u)
        for j in range(m):
            v = abs(a[u, j])
            s0[j] += v
            sc[j] += v * c
            ss[j] += v * s
    for t in range(n):
        if t > 0:
            add = t + h
            if add < n:
                c = np.cos(theta * add)
                s = np.sin(theta * add)
                for j in range(m):
                    v = abs(a[add, j])
                    s0[j] += v
                    sc[j] += v * c
                    ss[j] += v * s
            rem = t - h - 1
            if rem >= 0:
                c = np.cos(theta * rem)
                s = np.sin(theta * rem)
                for j in range(m):
                    v = abs(a[rem, j])
                    s0[j] -= v
                    sc[j] -= v * c
                    ss[j] -= v * s
        cp = np.cos(theta * (t + h))
        sp = np.sin(theta * (t + h))
        for j in range(m):
            out[t, j] = max(0.0, 0.5 * s0[j] - 0.5 * (cp * sc[j] + sp * ss[j]))
    return out


def smoothed_amplitude(traces, *, window_samples: int) -> np.ndarray:
    """``|x|`` convolved (``'same'``, zeros outside) with a normalised Hann window of odd length.

    Equal to ``scipy.signal.fftconvolve(np.abs(x), w[:, None] / w.sum(), mode="same", axes=0)``
    with ``w = np.hanning(window_samples)``, in O(n) per channel.

    >>> import numpy as np, scipy.signal
    >>> x = np.random.default_rng(0).normal(size=(500, 3)).astype("float32")
    >>> w = np.hanning(31)
    >>> ref = scipy.signal.fftconvolve(np.abs(x), w[:, None] / w.sum(), mode="same", axes=0)
    >>> bool(np.allclose(smoothed_amplitude(x, window_samples=31), ref, atol=1e-5))
    True
    """
    x = np.ascontiguousarray(traces, dtype=np.float32)
    L = int(window_samples)
    if L < 3:
        return np.abs(x)
    if L % 2 == 0:
        raise ValueError(f"window_samples must be odd; got {L}.")
    return _hann_sum(x, L) / np.float32(np.hanning(L).sum())


def agc_highpass_kernel(traces, *, matrix: np.ndarray, groups: np.ndarray | None = None,
                        window: int | None = None, epsilon: float = 0.003) -> np.ndarray:
    """Automatic gain control, spatial filter ``matrix``, gain restored (plain numpy).

    ``g = |x| * hann(window) / sum(hann)`` (per channel, ``'same'`` convolution in time; see
    :func:`smoothed_amplitude`), ``y = ((x / g') @ M) * g`` with
    ``g' = max(g, epsilon * median_c g)`` (the median over the channels of the same group at the
    same sample). Without ``window`` (samples, odd) there is no gain control: ``y = x @ M``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.ones((100, 8), "float32") * 5
    >>> bool(np.abs(agc_highpass_kernel(x, matrix=spatial_highpass_matrix(8), window=11)).max() < 1e-3)
    True
    """
    x = np.asarray(traces, dtype=np.float32)
    M = matrix.astype(np.float32, copy=False)
    if window is None:
        return x @ M
    gain = smoothed_amplitude(x, window_samples=window)
    groups = np.zeros(x.shape[1], dtype=np.int64) if groups is None else np.asarray(groups)
    uniq = np.unique(groups)
    if uniq.size == 1:
        floor = (np.float32(epsilon) * _row_median(gain))[:, None]
    else:
        floor = np.empty_like(gain)
        for g in uniq:
            idx = np.flatnonzero(groups == g)
            floor[:, idx] = (np.float32(epsilon) * _row_median(gain[:, idx]))[:, None]
    denom = np.maximum(gain, floor)
    np.maximum(denom, np.finfo(np.float32).tiny, out=denom)
    np.divide(x, denom, out=denom)
    y = denom @ M
    y *= gain
    return y


def highpass_spatial_filter(
    recording: xr.DataArray,
    *,
    n_channel_pad: int = 60,
    n_channel_taper: int = 0,
    apply_agc: bool = True,
    agc_window_s: float = 0.1,
    highpass_order: int = 3,
    highpass_wn: float = 0.01,
    epsilon: float = 0.003,
    dtype=None,
    chunk_size: int | None = None,
) -> xr.DataArray:
    """Destripe: remove signals shared by neighbouring channels with a spatial high-pass (lazy).

    Per group, channels ordered by depth: automatic gain control (each channel divided by its
    smoothed amplitude), a zero-phase Butterworth high-pass *across channels*, then the gain put
    back. A common-median reference removes what is identical on all channels; this removes
    what varies slowly along the probe too (IBL's "destriping").

    Parameters
    ----------
    recording : xarray.DataArray
        Recording with geometry, high-pass filtered in time first.
    n_channel_pad : int, default 60
        Channels mirrored at each end of a group before filtering (capped at the group size).
    n_channel_taper : int, default 0
        Channels of cosine taper at each end of the padded group.
    apply_agc : bool, default True
        Gain control before the spatial filter.
    agc_window_s : float, default 0.1
        Length of the Hann window that smooths ``|x|`` for the gain (s).
    highpass_order : int, default 3
        Butterworth order (applied forward and backward across channels).
    highpass_wn : float, default 0.01
        Cut-off as a fraction of the spatial Nyquist (0.5 cycle per channel), in (0, 1).
    epsilon : float, default 0.003
        Gain floor, relative to the median gain over the group's channels at the same sample.
    dtype : numpy dtype, optional
        Output dtype; default float32 (float64 input stays float64). Integers are rounded and clipped.
    chunk_size : int, optional
        Samples per chunk.

    Returns
    -------
    xarray.DataArray

    Notes
    -----
    After IBL's ``kfilt`` / ``destripe`` (IBL spike sorting white paper, 2022, "destriping"; and
    SpikeInterface's ``highpass_spatial_filter``), with the same defaults (pad 60, order 3,
    ``Wn=0.01``, 0.1 s window). One difference, for chunk independence: IBL regularises the gain
    with the *chunk* mean of each channel, which makes results depend on where chunks start; here
    the floor is ``epsilon`` times the median gain across the group's channels at the same
    sample, so the step is exact chunk by chunk with a margin of half the window. Dead channels
    (zero gain) stay zero.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array, linear_probe
    >>> rng = np.random.default_rng(0)
    >>> stripe = rng.normal(size=(3000, 1)) * 50                   # the same on every channel
    >>> x = (rng.normal(size=(3000, 32)) + stripe).astype("float32")
    >>> rec = from_array(x, sampling_frequency=30000.0, probe=linear_probe(num_channels=32))
    >>> out = highpass_spatial_filter(rec)
    >>> bool(out.values.std() < 0.2 * x.std())
    True
    """
    check_recording(recording)
    n_channel_pad = check_int("n_channel_pad", n_channel_pad, min_value=0)
    n_channel_taper = check_int("n_channel_taper", n_channel_taper, min_value=0)
    check_bool("apply_agc", apply_agc)
    highpass_order = check_int("highpass_order", highpass_order, min_value=1, max_value=20)
    highpass_wn = check_number("highpass_wn", highpass_wn, min_value=0, max_value=1, min_inclusive=False,
                               max_inclusive=False, hint="It is a fraction of the spatial Nyquist (0.5 cycle/channel).")
    epsilon = check_number("epsilon", epsilon, min_value=0)
    fs = float(recording.attrs["sampling_frequency"])
    window = None
    margin = 0
    if apply_agc:
        agc_window_s = check_number("agc_window_s", agc_window_s, min_value=0, min_inclusive=False)
        window = int(np.round(agc_window_s * fs / 2) * 2 + 1)
        margin = window // 2
    loc = channel_locations(recording)
    groups = recording.coords["group"].values
    n_ch = recording.sizes["channel"]
    M = np.zeros((n_ch, n_ch))
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        idx = idx[depth_order_indices(loc[idx])]
        M[np.ix_(idx, idx)] = spatial_highpass_matrix(idx.size, n_channel_pad=n_channel_pad,
                                                      n_channel_taper=n_channel_taper, order=highpass_order,
                                                      wn=highpass_wn)
    in_dtype = np.dtype(recording.dtype)
    out_dtype = _out_dtype(in_dtype, dtype)

    def kernel(block):
        y = agc_highpass_kernel(block, matrix=M, groups=groups, window=window, epsilon=epsilon)
        if out_dtype.kind in "iu":
            info = np.iinfo(out_dtype)
            y = np.clip(np.round(y), info.min, info.max)
        return y

    return lazy_transform(
        recording, kernel, margin_samples=margin, dtype=out_dtype, chunk_size=chunk_size,
        step="highpass_spatial_filter",
        params={"n_channel_pad": n_channel_pad, "n_channel_taper": n_channel_taper, "apply_agc": apply_agc,
                "agc_window_s": agc_window_s if apply_agc else None, "highpass_order": highpass_order,
                "highpass_wn": highpass_wn, "epsilon": epsilon, "dtype": str(out_dtype)},
    )


def zero_channel_pad(
    recording: xr.DataArray,
    *,
    num_channels: int,
    channel_positions=None,
    pad_channel_ids=None,
    pad_locations_um=None,
    pad_group: int | None = None,
) -> xr.DataArray:
    """Add channels of zeros until the recording has ``num_channels`` channels (lazy).

    Parameters
    ----------
    recording : xarray.DataArray
    num_channels : int
        Channel count of the result, >= the current count.
    channel_positions : sequence of int, optional
        Position of each existing channel in the result (distinct, in ``[0, num_channels)``);
        the zero channels fill the remaining positions. Default: existing channels first.
    pad_channel_ids : sequence of str, optional
        Ids of the new channels (default ``"pad0"``, ``"pad1"``, ...).
    pad_locations_um : array_like (n_pad, 2), optional
        Positions of the new channels when the recording has geometry. Default: a column above
        the highest contact, one median row pitch apart.
    pad_group : int, optional
        Group of the new channels; default a new group (``max(group) + 1``), so that per-group
        steps never mix them with real channels.

    Returns
    -------
    xarray.DataArray
        Gains 1 and offsets 0 on the new channels; the probe gains one extra probe holding the
        new contacts, so :func:`spkfn.io.get_probe` stays consistent.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> rec = from_array(np.ones((3, 2), "int16"), sampling_frequency=1000.0)
    >>> out = zero_channel_pad(rec, num_channels=4, channel_positions=[0, 2])
    >>> out.channel.values.tolist(), out.values[0].tolist()
    (['0', 'pad0', '1', 'pad1'], [1, 0, 1, 0])
    """
    check_recording(recording)
    n = recording.sizes["channel"]
    num_channels = check_int("num_channels", num_channels, min_value=n,
                             hint=f"The recording already has {n} channels; remove channels with remove_channels.")
    n_pad = num_channels - n
    if channel_positions is None:
        pos = np.arange(n)
    else:
        pos = np.asarray(channel_positions)
        if pos.shape != (n,) or pos.dtype.kind not in "iu":
            raise ValueError(f"channel_positions must be {n} integers (one per existing channel); got {pos!r}.")
        if pos.min() < 0 or pos.max() >= num_channels or np.unique(pos).size != n:
            raise ValueError(f"channel_positions must be distinct integers in [0, {num_channels}); got {pos.tolist()}.")
    pad_pos = np.setdiff1d(np.arange(num_channels), pos)
    existing = recording.coords["channel"].values.astype(str)
    if pad_channel_ids is None:
        ids, k = [], 0
        taken = set(existing.tolist())
        while len(ids) < n_pad:
            if f"pad{k}" not in taken:
                ids.append(f"pad{k}")
            k += 1
        pad_ids = np.array(ids, dtype=str)
    else:
        pad_ids = np.asarray(pad_channel_ids).astype(str)
        if pad_ids.shape != (n_pad,):
            raise ValueError(f"pad_channel_ids must have {n_pad} ids; got {pad_ids.size}.")
        clash = set(pad_ids.tolist()) & set(existing.tolist())
        if clash or np.unique(pad_ids).size != n_pad:
            raise ValueError(f"pad_channel_ids must be unique and new; clashing: {sorted(clash)[:10]}.")
    groups = recording.coords["group"].values
    pad_group = int(groups.max()) + 1 if pad_group is None else check_int("pad_group", pad_group)

    # Output column order: perm[k] = column of [existing..., pads...] that goes to position k.
    src = np.empty(num_channels, dtype=np.int64)
    src[pos] = np.arange(n)
    src[pad_pos] = n + np.arange(n_pad)

    data = as_dask(recording)
    zeros = da.zeros((data.shape[0], n_pad), dtype=data.dtype, chunks=(data.chunks[0], n_pad))
    full = da.concatenate([data, zeros], axis=1)[:, src].rechunk({1: -1})

    def _col(name, pad_values):
        return np.concatenate([recording.coords[name].values, pad_values])[src]

    coords = {
        "channel": np.concatenate([existing, pad_ids])[src],
        "gain_to_uV": ("channel", _col("gain_to_uV", np.ones(n_pad))),
        "offset_to_uV": ("channel", _col("offset_to_uV", np.zeros(n_pad))),
        "group": ("channel", _col("group", np.full(n_pad, pad_group, dtype=np.int64)).astype(np.int64)),
    }
    pad_loc = None
    if has_geometry(recording):
        loc = channel_locations(recording)
        if pad_locations_um is None:
            ys = np.unique(loc[:, 1])
            pitch = float(np.median(np.diff(ys))) if ys.size > 1 else 20.0
            pad_loc = np.column_stack([np.full(n_pad, loc[:, 0].min()), loc[:, 1].max() + pitch * np.arange(1, n_pad + 1)])
        else:
            pad_loc = np.asarray(pad_locations_um, dtype=np.float64)
            if pad_loc.shape != (n_pad, 2) or not np.all(np.isfinite(pad_loc)):
                raise ValueError(f"pad_locations_um must be a finite ({n_pad}, 2) array; got shape {pad_loc.shape}.")
        coords["x"] = ("channel", _col("x", pad_loc[:, 0]))
        coords["y"] = ("channel", _col("y", pad_loc[:, 1]))
    elif pad_locations_um is not None:
        raise ValueError("pad_locations_um needs a recording with geometry (x/y coords).")

    for name, c in recording.coords.items():
        if name in coords or name in ("x", "y") or c.dims != ("channel",):
            continue
        vals = c.values
        fill = {"f": np.nan, "i": -1, "u": 0, "b": False}.get(vals.dtype.kind, "")
        coords[name] = ("channel", _col(name, np.full(n_pad, fill, dtype=vals.dtype if vals.dtype.kind != "U" else object)))
    out = xr.DataArray(full, dims=("time", "channel"), coords=coords, attrs=dict(recording.attrs), name=recording.name)
    out = out.assign_coords(time_coordinate(full.shape[0], sampling_frequency=float(recording.attrs["sampling_frequency"]),
                                            t_start_s=_first_time(recording)))
    if recording.attrs.get("probe") and n_pad:
        out.attrs["probe"] = _probe_with_pads(recording.attrs["probe"], pad_ids, pad_loc)
    return record_step(out, "zero_channel_pad", {
        "num_channels": num_channels, "channel_positions": pos, "pad_channel_ids": pad_ids.tolist(),
        "pad_group": pad_group})


def _probe_with_pads(probe_json: str, pad_ids: np.ndarray, pad_loc: np.ndarray | None) -> str:
    import probeinterface as pi

    pg = pi.ProbeGroup.from_dict(json.loads(probe_json))
    used = [int(i) for p in pg.probes if p.device_channel_indices is not None for i in p.device_channel_indices]
    start = max(used, default=-1) + 1
    if pad_loc is None:
        pad_loc = np.column_stack([np.zeros(pad_ids.size), np.arange(pad_ids.size) * 20.0])
    p = pi.Probe(ndim=2, si_units="um")
    p.set_contacts(positions=pad_loc, shapes="square", shape_params={"width": 12})
    p.set_contact_ids(pad_ids)
    p.set_device_channel_indices(start + np.arange(pad_ids.size))
    p.annotate_contacts(channel_id=pad_ids)
    p.annotate(name="zero_channel_pad")
    pg.add_probe(p)
    return json.dumps(pg.to_dict(array_as_list=True))
