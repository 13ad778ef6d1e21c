"""Sample-by-sample steps: scale, center, quantile normalisation, rectify, clip, saturation blanking,
dtype casts.

None of these needs margins: each output sample depends on its input sample only (plus constants
estimated once, from seeded random chunks, where the step says so). Each has a plain-numpy kernel
(``*_traces`` or :func:`cast_traces`) and a lazy wrapper over a recording.

Casting (documented once, used by every step that writes integers or float16):

- float -> integer: rounded to the nearest integer (ties to even, :func:`numpy.rint`), then
  clipped to the integer type's range, so no value wraps around;
- integer -> narrower integer (including unsigned <-> signed): clipped to the target range
  (use :func:`unsigned_to_signed` to re-centre unsigned ADC data instead of clipping it);
- anything -> float16: clipped to +-65504 (float16's largest finite value) so nothing becomes inf;
- NaN stays NaN in floats; converting NaN to an integer gives 0.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..core.validate import check_choice, check_int, check_number
from ..io.recording import check_recording
from ._base import lazy_transform

__all__ = [
    "cast_traces",
    "scale_traces",
    "scale",
    "center",
    "normalize_by_quantile",
    "rectify",
    "clip",
    "blank_saturation",
    "astype",
    "unsigned_to_signed",
]


# --------------------------------------------------------------------------------------------
# dtype helpers


def _as_dtype(name: str, dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"{name} must be a numpy dtype name such as 'float32' or 'int16'; got {dtype!r}.") from None
    if dt.kind not in "iuf":
        raise ValueError(f"{name} must be an integer or floating dtype (e.g. 'float32', 'int16'); got {dt}.")
    return dt


def _float_dtype_for(dtype: np.dtype) -> np.dtype:
    """Float type used for arithmetic on ``dtype``: float64 stays float64, everything else float32."""
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def _output_dtype(dtype, input_dtype) -> np.dtype:
    """``dtype`` if given, else the input's dtype when it is float32/float64, else float32."""
    if dtype is None:
        return np.dtype(input_dtype) if np.dtype(input_dtype) in (np.float32, np.float64) else np.dtype(np.float32)
    return _as_dtype("dtype", dtype)


def cast_traces(traces: np.ndarray, dtype, *, round: bool | None = None) -> np.ndarray:
    """Cast traces to ``dtype`` without wrap-around (see the module docstring for the rules).

    Parameters
    ----------
    traces : numpy.ndarray
        Any numeric array.
    dtype : numpy dtype
        Target type.
    round : bool, optional
        Round floats to the nearest integer before casting. Default: True for integer targets.

    Returns
    -------
    numpy.ndarray
        ``traces`` itself when it already has ``dtype``, else a new array.

    Examples
    --------
    >>> cast_traces(np.array([1.5, 2.5, -40000.0, 70000.0]), "int16").tolist()
    [2, 2, -32768, 32767]
    >>> cast_traces(np.array([70000.0]), "float16").tolist()
    [65504.0]
    """
    dtype = np.dtype(dtype)
    x = np.asarray(traces)
    if x.dtype == dtype:
        return x
    if round is None:
        round = dtype.kind in "iu"
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if x.dtype.kind == "f":
            y = np.rint(x) if round else np.trunc(x)
            y = np.clip(y, info.min, info.max)
            y = np.nan_to_num(y, nan=0.0, posinf=info.max, neginf=info.min)
            return y.astype(dtype)
        src = np.iinfo(x.dtype)
        if src.min < info.min or src.max > info.max:
            # clip in a type that holds both ranges
            wide = np.int64 if not (x.dtype == np.uint64) else np.float64
            return np.clip(x.astype(wide), info.min, info.max).astype(dtype)
        return x.astype(dtype)
    if dtype == np.float16:
        lim = float(np.finfo(np.float16).max)
        return np.clip(x, -lim, lim).astype(dtype)
    if round and x.dtype.kind == "f":
        return np.rint(x).astype(dtype)
    return x.astype(dtype)


def _per_channel(name: str, value, n_channels: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n_channels, float(arr))
    if arr.shape != (n_channels,):
        raise ValueError(f"{name} must be a number or one value per channel ({n_channels}); got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; got non-finite values at channels {np.flatnonzero(~np.isfinite(arr))[:10].tolist()}.")
    return arr


def _with_channel_scaling(rec: xr.DataArray, gain_to_uV, offset_to_uV) -> xr.DataArray:
    out = rec.assign_coords(gain_to_uV=("channel", np.asarray(gain_to_uV, dtype=np.float64)),
                            offset_to_uV=("channel", np.asarray(offset_to_uV, dtype=np.float64)))
    out.attrs = dict(rec.attrs)
    return out


# --------------------------------------------------------------------------------------------
# linear steps


def scale_traces(traces: np.ndarray, *, gain, offset, dtype="float32") -> np.ndarray:
    """``traces * gain + offset`` per channel (plain-numpy kernel of :func:`scale`).

    Computed in float32 (float64 when ``dtype`` is float64), then cast with :func:`cast_traces`.

    >>> scale_traces(np.array([[1, 2]], "int16"), gain=[2.0, 0.5], offset=1.0).tolist()
    [[3.0, 2.0]]
    """
    dtype = np.dtype(dtype)
    work = _float_dtype_for(dtype)
    x = np.asarray(traces)
    y = x.astype(work) * np.asarray(gain, dtype=work) + np.asarray(offset, dtype=work)
    return cast_traces(y, dtype)


def scale(recording: xr.DataArray, *, gain=1.0, offset=0.0, dtype: str | None = "float32") -> xr.DataArray:
    """Linear transform of the stored values: ``traces * gain + offset`` (per channel or global).

    The recording's ``gain_to_uV`` / ``offset_to_uV`` are updated so that the values still convert
    to the same microvolts (``new_gain_to_uV = gain_to_uV / gain``), i.e. ``scale`` changes units,
    not the signal. To convert to µV, pass the recording's own gains:
    ``scale(rec, gain=rec.gain_to_uV.values, offset=rec.offset_to_uV.values)`` (or use
    :func:`spkfn.io.scale_to_uV`).

    Parameters
    ----------
    recording : xarray.DataArray
    gain : float or array_like (n_channels,), default 1.0
        Multiplier, finite and non-zero.
    offset : float or array_like (n_channels,), default 0.0
        Added after the multiplication, in output units.
    dtype : str, default "float32"
        Output dtype (``None``: the input's float dtype, else float32). Integer outputs are rounded
        and clipped (see :func:`cast_traces`).

    Returns
    -------
    xarray.DataArray

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array, scale_to_uV
    >>> rec = from_array(np.array([[10, -4]], "int16"), sampling_frequency=1000.0, gain_to_uV=0.5)
    >>> out = scale(rec, gain=0.5)
    >>> out.values.tolist(), scale_to_uV(out).values.tolist()
    ([[5.0, -2.0]], [[5.0, -2.0]])
    """
    check_recording(recording)
    n = recording.sizes["channel"]
    g = _per_channel("gain", gain, n)
    o = _per_channel("offset", offset, n)
    if np.any(g == 0):
        raise ValueError(f"gain must be non-zero (a zero gain destroys the channel); zero at channels {np.flatnonzero(g == 0)[:10].tolist()}.")
    out_dtype = _output_dtype(dtype, recording.dtype)
    params = {"gain": gain if np.ndim(gain) == 0 else g, "offset": offset if np.ndim(offset) == 0 else o,
              "dtype": out_dtype.name}
    out = lazy_transform(recording, _scale_kernel, dtype=out_dtype, step="scale", params=params,
                         gain=g, offset=o, out_dtype=out_dtype)
    gain_uV = recording.coords["gain_to_uV"].values / g
    offset_uV = recording.coords["offset_to_uV"].values - recording.coords["gain_to_uV"].values * o / g
    return _with_channel_scaling(out, gain_uV, offset_uV)


def _scale_kernel(block, *, gain, offset, out_dtype):
    return scale_traces(block, gain=gain, offset=offset, dtype=out_dtype)


def _random_data(recording, *, num_chunks: int, chunk_duration_s: float, seed: int) -> np.ndarray:
    from .utils import random_chunks

    num_chunks = check_int("num_chunks", num_chunks, min_value=1)
    check_number("chunk_duration_s", chunk_duration_s, min_value=0, min_inclusive=False)
    seed = check_int("seed", seed)
    return random_chunks(recording, num_chunks=num_chunks, chunk_duration_s=chunk_duration_s, seed=seed,
                         return_uV=False).astype(np.float64)


def center(recording: xr.DataArray, *, mode: str = "median", num_chunks: int = 20, chunk_duration_s: float = 0.5,
           seed: int = 0, dtype: str | None = "float32") -> xr.DataArray:
    """Subtract each channel's median (or mean), estimated on seeded random chunks.

    The DC is removed on purpose, so ``offset_to_uV`` becomes 0 (as after a highpass filter).

    Parameters
    ----------
    recording : xarray.DataArray
    mode : {"median", "mean"}, default "median"
    num_chunks : int, default 20
        Random chunks used for the estimate (see :func:`spkfn.preprocessing.random_chunks`).
    chunk_duration_s : float, default 0.5
        Duration of each chunk (s).
    seed : int, default 0
        Seed of the chunk positions: same seed, same result.
    dtype : str, default "float32"
        Output dtype.

    Returns
    -------
    xarray.DataArray
        With ``attrs["preprocessing"][-1]["params"]["offsets"]`` holding the subtracted values.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> x = np.random.default_rng(0).normal(size=(20000, 2)) + [100.0, -5.0]
    >>> out = center(from_array(x.astype("float32"), sampling_frequency=10000.0), num_chunks=5, chunk_duration_s=0.1)
    >>> bool(np.abs(np.median(out.values, axis=0)).max() < 0.1)
    True
    """
    check_recording(recording)
    check_choice("mode", mode, ("median", "mean"))
    data = _random_data(recording, num_chunks=num_chunks, chunk_duration_s=chunk_duration_s, seed=seed)
    offsets = np.median(data, axis=0) if mode == "median" else data.mean(axis=0)
    out_dtype = _output_dtype(dtype, recording.dtype)
    params = {"mode": mode, "num_chunks": num_chunks, "chunk_duration_s": chunk_duration_s, "seed": seed,
              "dtype": out_dtype.name, "offsets": offsets}
    n = recording.sizes["channel"]
    out = lazy_transform(recording, _scale_kernel, dtype=out_dtype, step="center", params=params,
                         gain=np.ones(n), offset=-offsets, out_dtype=out_dtype)
    return _with_channel_scaling(out, recording.coords["gain_to_uV"].values, np.zeros(n))


def normalize_by_quantile(recording: xr.DataArray, *, quantile_low: float = 0.01, quantile_high: float = 0.99,
                          target_spread: float = 1.0, target_median: float = 0.0, mode: str = "by_channel",
                          num_chunks: int = 20, chunk_duration_s: float = 0.5, seed: int = 0,
                          dtype: str | None = "float32") -> xr.DataArray:
    """Rescale so that the distance between two quantiles is ``target_spread`` and the median is
    ``target_median``.

    ``gain = target_spread / |Q(quantile_high) - Q(quantile_low)|`` and
    ``offset = target_median - median * gain``, with the quantiles estimated on seeded random chunks,
    per channel (``mode="by_channel"``) or pooled over channels (``"pool_channel"``). Same as
    SpikeInterface's ``normalize_by_quantile`` (its ``q1``, ``q2``, ``scale``, ``median``). The
    µV scaling coords are updated as in :func:`scale`.

    Parameters
    ----------
    recording : xarray.DataArray
    quantile_low, quantile_high : float, default 0.01, 0.99
        Quantiles in [0, 1], ``quantile_low < quantile_high``.
    target_spread : float, default 1.0
        Output distance between the two quantiles (> 0).
    target_median : float, default 0.0
        Output median.
    mode : {"by_channel", "pool_channel"}
    num_chunks, chunk_duration_s, seed
        Random chunks for the estimate (see :func:`center`).
    dtype : str, default "float32"

    Returns
    -------
    xarray.DataArray

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> x = np.random.default_rng(0).normal(size=(20000, 2)) * [1.0, 10.0]
    >>> out = normalize_by_quantile(from_array(x.astype("float32"), sampling_frequency=10000.0),
    ...                             num_chunks=10, chunk_duration_s=0.2).values
    >>> bool(np.allclose(np.quantile(out, 0.99, axis=0) - np.quantile(out, 0.01, axis=0), 1.0, atol=0.1))
    True
    """
    check_recording(recording)
    ql = check_number("quantile_low", quantile_low, min_value=0, max_value=1)
    qh = check_number("quantile_high", quantile_high, min_value=0, max_value=1)
    if not ql < qh:
        raise ValueError(f"quantile_low must be smaller than quantile_high; got {ql} and {qh}.")
    spread = check_number("target_spread", target_spread, min_value=0, min_inclusive=False)
    tmed = check_number("target_median", target_median)
    check_choice("mode", mode, ("by_channel", "pool_channel"))
    data = _random_data(recording, num_chunks=num_chunks, chunk_duration_s=chunk_duration_s, seed=seed)
    n = recording.sizes["channel"]
    if mode == "by_channel":
        lo, med, hi = np.quantile(data, [ql, 0.5, qh], axis=0)
    else:
        lo, med, hi = (np.full(n, v) for v in np.quantile(data, [ql, 0.5, qh]))
    width = np.abs(hi - lo)
    if np.any(width == 0):
        bad = recording.coords["channel"].values[width == 0][:10].tolist()
        raise ValueError(f"the {ql}-{qh} quantile range is 0 on channels {bad} (constant or dead channels); "
                         "remove them first or widen quantile_low/quantile_high.")
    gain = spread / width
    offset = tmed - med * gain
    out_dtype = _output_dtype(dtype, recording.dtype)
    params = {"quantile_low": ql, "quantile_high": qh, "target_spread": spread, "target_median": tmed, "mode": mode,
              "num_chunks": num_chunks, "chunk_duration_s": chunk_duration_s, "seed": seed,
              "dtype": out_dtype.name, "gain": gain, "offset": offset}
    out = lazy_transform(recording, _scale_kernel, dtype=out_dtype, step="normalize_by_quantile", params=params,
                         gain=gain, offset=offset, out_dtype=out_dtype)
    g0 = recording.coords["gain_to_uV"].values
    return _with_channel_scaling(out, g0 / gain, recording.coords["offset_to_uV"].values - g0 * offset / gain)


# --------------------------------------------------------------------------------------------
# non-linear steps


def rectify(recording: xr.DataArray) -> xr.DataArray:
    """Absolute value of the stored values (dtype kept; for signed integers the most negative
    value maps to the type's maximum instead of wrapping).

    Meant for filtered traces (offset 0): the µV scaling coords are left as they are.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> rectify(from_array(np.array([[-32768, 5]], "int16"), sampling_frequency=1000.0)).values.tolist()
    [[32767, 5]]
    """
    check_recording(recording)
    return lazy_transform(recording, _rectify_kernel, step="rectify", params={})


def _rectify_kernel(block):
    x = np.asarray(block)
    if x.dtype.kind == "i":
        return cast_traces(np.abs(x.astype(np.int64)), x.dtype)
    return np.abs(x)


def clip(recording: xr.DataArray, *, min_value: float | None = None, max_value: float | None = None) -> xr.DataArray:
    """Limit the stored values to ``[min_value, max_value]`` (either bound may be omitted).

    Parameters
    ----------
    recording : xarray.DataArray
    min_value, max_value : float, optional
        Bounds in the recording's stored units; at least one, and ``min_value <= max_value``.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> clip(from_array(np.array([[-5.0, 0.0, 5.0]], "float32"), sampling_frequency=1000.0), max_value=1.0).values.tolist()
    [[-5.0, 0.0, 1.0]]
    """
    check_recording(recording)
    lo = None if min_value is None else check_number("min_value", min_value)
    hi = None if max_value is None else check_number("max_value", max_value)
    if lo is None and hi is None:
        raise ValueError("clip needs min_value, max_value or both; got neither.")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"min_value must be <= max_value; got {lo} > {hi}.")
    return lazy_transform(recording, _clip_kernel, step="clip", params={"min_value": lo, "max_value": hi},
                          lo=lo, hi=hi)


def _clip_kernel(block, *, lo, hi):
    x = np.asarray(block)
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        lo = None if lo is None else int(np.clip(np.ceil(lo), info.min, info.max))
        hi = None if hi is None else int(np.clip(np.floor(hi), info.min, info.max))
    return np.clip(x, lo, hi)


def blank_saturation(recording: xr.DataArray, *, abs_threshold: float | None = None,
                     quantile_threshold: float | None = None, direction: str = "upper",
                     fill_value: float | None = None, num_chunks: int = 50, chunk_duration_s: float = 0.02,
                     seed: int = 0) -> xr.DataArray:
    """Replace saturated samples (amplifier rails) by ``fill_value``.

    A sample is saturated when it is at or beyond a threshold:

    - ``abs_threshold`` (stored units, > 0): ``x >= abs_threshold`` ("upper"),
      ``x <= -abs_threshold`` ("lower"), or both ("both");
    - or ``quantile_threshold`` q in (0, 0.5): the thresholds are the q and 1 - q quantiles of
      seeded random chunks pooled over channels (``x >= Q(1-q)`` for "upper", ``x <= Q(q)`` for
      "lower").

    ``fill_value`` defaults to the median of those random chunks. Adapted from SpikeInterface's
    ``blank_saturation``; there "lower" with ``abs_threshold`` blanks ``x <= abs_threshold``, here
    ``x <= -abs_threshold``.

    Parameters
    ----------
    recording : xarray.DataArray
    abs_threshold : float, optional
    quantile_threshold : float, optional
        Exactly one of the two must be given.
    direction : {"upper", "lower", "both"}, default "upper"
    fill_value : float, optional
    num_chunks, chunk_duration_s, seed
        Random chunks used for the quantiles and the default fill value.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> x = np.array([[0.0, 1.0], [100.0, -100.0]], "float32")
    >>> blank_saturation(from_array(x, sampling_frequency=1000.0), abs_threshold=50.0, direction="both",
    ...                  fill_value=0.0).values.tolist()
    [[0.0, 1.0], [0.0, 0.0]]
    """
    check_recording(recording)
    check_choice("direction", direction, ("upper", "lower", "both"))
    if (abs_threshold is None) == (quantile_threshold is None):
        raise ValueError("give exactly one of abs_threshold (stored units) or quantile_threshold (in (0, 0.5)); "
                         f"got abs_threshold={abs_threshold!r}, quantile_threshold={quantile_threshold!r}.")
    data = None
    if quantile_threshold is not None or fill_value is None:
        data = _random_data(recording, num_chunks=num_chunks, chunk_duration_s=chunk_duration_s, seed=seed)
    if abs_threshold is not None:
        thr = check_number("abs_threshold", abs_threshold, min_value=0, min_inclusive=False)
        lo, hi = -thr, thr
    else:
        q = check_number("quantile_threshold", quantile_threshold, min_value=0, max_value=0.5,
                         min_inclusive=False, max_inclusive=False)
        lo, hi = (float(v) for v in np.quantile(data, [q, 1 - q]))
    if direction == "upper":
        lo = None
    elif direction == "lower":
        hi = None
    fill = float(np.median(data)) if fill_value is None else check_number("fill_value", fill_value)
    params = {"abs_threshold": abs_threshold, "quantile_threshold": quantile_threshold, "direction": direction,
              "fill_value": fill_value, "num_chunks": num_chunks, "chunk_duration_s": chunk_duration_s, "seed": seed,
              "lower_threshold_used": lo, "upper_threshold_used": hi, "fill_value_used": fill}
    return lazy_transform(recording, _blank_kernel, step="blank_saturation", params=params, lo=lo, hi=hi, fill=fill)


def _blank_kernel(block, *, lo, hi, fill):
    x = np.array(block, copy=True)
    mask = np.zeros(x.shape, dtype=bool)
    if lo is not None:
        mask |= x <= lo
    if hi is not None:
        mask |= x >= hi
    x[mask] = cast_traces(np.array([fill]), x.dtype)[0]
    return x


def astype(recording: xr.DataArray, *, dtype, round: bool | None = None) -> xr.DataArray:
    """Cast the stored values to ``dtype`` with the documented casting (no wrap-around).

    Parameters
    ----------
    recording : xarray.DataArray
    dtype : str
        Target dtype (integer or float).
    round : bool, optional
        Round to the nearest integer before casting (default: True for integer targets).

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> rec = from_array(np.array([[1.6, -40000.0]], "float32"), sampling_frequency=1000.0)
    >>> astype(rec, dtype="int16").values.tolist()
    [[2, -32768]]
    >>> astype(rec, dtype="float32") is rec  # already float32: returned as is
    True
    """
    check_recording(recording)
    dt = _as_dtype("dtype", dtype)
    if round is not None and not isinstance(round, bool):
        raise ValueError(f"round must be true, false or None; got {round!r}.")
    if dt == recording.dtype and not round:
        return recording  # nothing to do: no copy, no step recorded
    return lazy_transform(recording, _astype_kernel, dtype=dt, step="astype",
                          params={"dtype": dt.name, "round": round}, out_dtype=dt, rnd=round)


def _astype_kernel(block, *, out_dtype, rnd):
    return cast_traces(block, out_dtype, round=rnd)


def unsigned_to_signed(recording: xr.DataArray, *, bit_depth: int | None = None) -> xr.DataArray:
    """Re-centre unsigned ADC values on zero: ``uintN -> intN``, ``x - 2**(bit_depth - 1)``.

    ``offset_to_uV`` is updated so that the values still convert to the same microvolts.

    Parameters
    ----------
    recording : xarray.DataArray
        With an unsigned integer dtype (uint8, uint16, uint32).
    bit_depth : int, optional
        ADC resolution when smaller than the dtype (e.g. 12 for a 12-bit ADC stored in uint16:
        the offset is then 2**11). Default: the dtype's bit count.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> rec = from_array(np.array([[0, 32768, 65535]], "uint16"), sampling_frequency=1000.0)
    >>> unsigned_to_signed(rec).values.tolist()
    [[-32768, 0, 32767]]
    """
    check_recording(recording)
    dt = np.dtype(recording.dtype)
    if dt.kind != "u":
        raise ValueError(f"unsigned_to_signed needs an unsigned integer recording (uint8/16/32); got {dt}.")
    if dt.itemsize > 4:
        raise ValueError("uint64 recordings cannot be converted to int64 without loss; cast with astype first.")
    nbits = dt.itemsize * 8
    bits = nbits if bit_depth is None else check_int("bit_depth", bit_depth, min_value=1, max_value=nbits)
    offset = 2 ** (bits - 1)
    target = np.dtype(f"int{nbits}")
    out = lazy_transform(recording, _u2s_kernel, dtype=target, step="unsigned_to_signed",
                         params={"bit_depth": bit_depth, "offset": offset}, offset=offset, out_dtype=target)
    g = recording.coords["gain_to_uV"].values
    return _with_channel_scaling(out, g, recording.coords["offset_to_uV"].values + g * offset)


def _u2s_kernel(block, *, offset, out_dtype):
    return cast_traces(np.asarray(block).astype(np.int64) - offset, out_dtype)
