"""Change the sampling rate: polyphase ``resample`` (any rational ratio) and ``decimate``.

Both are lazy and work chunk by chunk: each output chunk reads the input samples its anti-alias
filter needs (the filter's half length on each side), so the result equals
:func:`scipy.signal.resample_poly` on the whole array, edges included (scipy pads with zeros;
so do we).

The number of samples changes, so these steps build their own dask array (one task per output
chunk) instead of going through :func:`spkfn.preprocessing._base.lazy_transform`; the ``time``
coordinate is rebuilt with :func:`spkfn.io.time_coordinate` from the first sample's time and the
new rate.
"""

from __future__ import annotations

import math
from fractions import Fraction

import dask
import dask.array as da
import numpy as np
import scipy.signal
import xarray as xr

from ..core.chunks import as_dask, default_chunk_size
from ..core.validate import check_choice, check_int, check_number
from ..io.recording import check_recording, num_samples, time_coordinate
from ._base import record_step

__all__ = ["resample", "decimate", "resample_kernel", "polyphase_filter"]


def polyphase_filter(up: int, down: int, *, window=("kaiser", 5.0)) -> tuple[np.ndarray, int]:
    """Anti-alias FIR used for a ``up/down`` rate change, and its half length (upsampled samples).

    The same design as :func:`scipy.signal.resample_poly`: a windowed-sinc low-pass at
    ``1 / max(up, down)`` of the upsampled Nyquist, ``20 * max(up, down) + 1`` taps, gain ``up``.

    >>> h, half = polyphase_filter(1, 3)
    >>> h.size, half
    (61, 30)
    """
    max_rate = max(up, down)
    half_len = 10 * max_rate
    h = scipy.signal.firwin(2 * half_len + 1, 1.0 / max_rate, window=window) * up
    return h, half_len


def resample_kernel(traces, *, up: int, down: int, start: int = 0, first_output: int = 0,
                    num_output: int | None = None, h: np.ndarray | None = None,
                    half_len: int | None = None) -> np.ndarray:
    """Polyphase rate change by ``up/down`` of a block of ``traces`` (plain numpy).

    Computes output samples ``first_output ... first_output + num_output - 1`` of the whole
    resampled recording, given the input samples ``traces = x[start : start + len(traces)]``
    (samples outside are treated as zeros, as :func:`scipy.signal.resample_poly` does). Output
    sample ``m`` is the anti-aliased signal at input time ``m * down / up``:

    .. math:: y[m] = \\sum_n h[m \\cdot down - n \\cdot up + L] \\, x[n]

    with ``h`` the filter of :func:`polyphase_filter` and ``L`` its half length.

    Examples
    --------
    >>> import numpy as np, scipy.signal
    >>> x = np.random.default_rng(0).normal(size=(500, 2))
    >>> y = resample_kernel(x, up=2, down=3)
    >>> bool(np.allclose(y, scipy.signal.resample_poly(x, 2, 3, axis=0)))
    True
    """
    x = np.asarray(traces)
    if h is None:
        h, half_len = polyphase_filter(up, down)
    n_in = x.shape[0]
    if num_output is None:
        num_output = -(-(start + n_in) * up // down) - first_output
    if num_output <= 0:
        return np.zeros((0, x.shape[1]), dtype=np.result_type(x.dtype, np.float32))
    # Zeros in front of h so that output sample `first_output` lands on a whole output index.
    s = (start * up - half_len) % down
    hp = np.concatenate([np.zeros(s, dtype=h.dtype), h])
    y = scipy.signal.upfirdn(hp, x, up, down, axis=0)
    j0 = first_output + (half_len + s - start * up) // down
    if j0 < 0:
        raise ValueError("resample_kernel: the block starts after the first output sample's support.")
    out = y[j0:j0 + num_output]
    if out.shape[0] < num_output:  # the block ends before the support of the last outputs
        out = np.concatenate([out, np.zeros((num_output - out.shape[0], x.shape[1]), dtype=out.dtype)])
    return out


def _ratio(fs_in: float, fs_out: float, max_denominator: int) -> tuple[int, int]:
    frac = Fraction(fs_out / fs_in).limit_denominator(max_denominator)
    if frac.numerator == 0:
        raise ValueError(f"sampling_frequency_hz={fs_out!r} is too small for a recording at {fs_in} Hz.")
    achieved = fs_in * frac.numerator / frac.denominator
    if abs(achieved - fs_out) > 1e-6 * fs_out:
        raise ValueError(
            f"sampling_frequency_hz={fs_out!r} is not a ratio p/q of {fs_in} Hz with q <= {max_denominator} "
            f"(closest: {achieved!r} Hz = {fs_in} * {frac.numerator}/{frac.denominator}); choose a rate with "
            "a simpler ratio or raise max_denominator."
        )
    return frac.numerator, frac.denominator


def _out_dtype(in_dtype, dtype) -> np.dtype:
    """Output dtype of a step that computes new values: ``dtype`` if given, else float64 for
    float64 input and float32 for everything else (int16, uint16, float16: no rounding back, no
    float16 precision loss)."""
    if dtype is not None:
        try:
            out = np.dtype(dtype)
        except TypeError:
            raise ValueError(f"dtype {dtype!r} is not a numpy dtype (e.g. 'float32', 'int16').") from None
        if out.kind not in "fiu":
            raise ValueError(f"dtype must be a float or integer type; got {out}.")
        return out
    return np.dtype("float64") if np.dtype(in_dtype) == np.float64 else np.dtype("float32")


def _cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Cast, rounding and clipping when the target is an integer type (no wrap-around)."""
    if dtype.kind in "iu" and values.dtype.kind == "f":
        info = np.iinfo(dtype)
        return np.clip(np.round(values), info.min, info.max).astype(dtype)
    return values.astype(dtype, copy=False)


def _first_time(rec: xr.DataArray) -> float:
    # Indexing the coord (not .values) keeps the lazy RangeIndex from materialising.
    return float(np.asarray(rec.coords["time"][:1].values)[0]) if rec.sizes["time"] else 0.0


def _with_new_time(rec: xr.DataArray, data, sampling_frequency: float) -> xr.DataArray:
    """A recording like ``rec`` (channel coords, attrs) with new traces and a rebuilt time axis."""
    t0 = _first_time(rec)
    base = rec.isel(time=slice(0, 0)).drop_vars("time")
    out = xr.DataArray(data, dims=("time", "channel"), coords=dict(base.coords), attrs=dict(rec.attrs), name=rec.name)
    out = out.assign_coords(time_coordinate(data.shape[0], sampling_frequency=sampling_frequency, t_start_s=t0))
    out.attrs["sampling_frequency"] = float(sampling_frequency)
    return out


def _polyphase_dask(data: da.Array, *, up: int, down: int, window, out_dtype: np.dtype,
                    chunk_size: int | None, fs_out: float) -> da.Array:
    n_in, n_ch = data.shape
    n_out = -(-n_in * up // down)
    h, half_len = polyphase_filter(up, down, window=window)
    h = h.astype(np.float32) if out_dtype == np.float32 else h
    if chunk_size is None:
        chunk_size = max(1, int(round(data.chunks[0][0] * up / down))) if data.chunks[0] else 1
        chunk_size = min(chunk_size, default_chunk_size(n_ch, sampling_frequency=fs_out) * 4)
    work_dtype = np.float32 if out_dtype.itemsize <= 4 else np.float64

    def _block(x, a, m0, m1):
        y = resample_kernel(np.asarray(x, dtype=work_dtype), up=up, down=down, start=a, first_output=m0,
                            num_output=m1 - m0, h=h, half_len=half_len)
        return _cast(y, out_dtype)

    pieces = []
    for m0 in range(0, n_out, chunk_size):
        m1 = min(n_out, m0 + chunk_size)
        a = max(0, -(-(m0 * down - half_len) // up))
        b = min(n_in, ((m1 - 1) * down + half_len) // up + 1)
        b = max(b, a + 1)
        task = dask.delayed(_block, pure=True)(data[a:b], a, m0, m1)
        pieces.append(da.from_delayed(task, shape=(m1 - m0, n_ch), dtype=out_dtype,
                                      meta=np.empty((0, 0), dtype=out_dtype)))
    if not pieces:
        return da.zeros((0, n_ch), dtype=out_dtype)
    return da.concatenate(pieces, axis=0)


def resample(recording: xr.DataArray, *, sampling_frequency_hz: float, max_denominator: int = 1000,
             window=("kaiser", 5.0), dtype=None, chunk_size: int | None = None) -> xr.DataArray:
    """Resample a recording to ``sampling_frequency_hz`` with a polyphase anti-alias filter (lazy).

    Parameters
    ----------
    recording : xarray.DataArray
        Recording, any dtype.
    sampling_frequency_hz : float
        Target rate (Hz), > 0. The ratio to the current rate must be a fraction ``up/down`` with
        ``down <= max_denominator`` (30 kHz -> 2.5 kHz is 1/12, 30 kHz -> 32 kHz is 16/15).
    max_denominator : int, default 1000
        Largest ``up`` or ``down`` tried when approximating the ratio; the filter has
        ``20 * max(up, down) + 1`` taps at the upsampled rate.
    window : str or tuple, default ("kaiser", 5.0)
        Window of the windowed-sinc anti-alias filter (as in :func:`scipy.signal.resample_poly`).
    dtype : numpy dtype, optional
        Output dtype. Default: float32 (float64 for float64 input). Integer targets are rounded
        and clipped to the type's range.
    chunk_size : int, optional
        Output samples per chunk (default: the input chunk length scaled by the ratio).

    Returns
    -------
    xarray.DataArray
        The resampled recording: ``ceil(n * up / down)`` samples, ``sampling_frequency`` set to
        ``fs * up / down``, the same first-sample time, channel coords, probe and step history.

    Notes
    -----
    Output sample ``m`` is the low-passed signal at input time ``m * down / up`` (polyphase FIR,
    Crochiere & Rabiner 1983; the filter is :func:`scipy.signal.resample_poly`'s). Samples outside
    the recording count as zeros, so the result equals ``scipy.signal.resample_poly(x, up, down)``
    on the whole array, edges included; the first and last ``10 * max(up, down) / up`` input
    samples feel the edges.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> rec = from_array(np.random.default_rng(0).normal(size=(3000, 4)).astype("float32"), sampling_frequency=30000.0)
    >>> out = resample(rec, sampling_frequency_hz=2500.0)
    >>> out.sizes["time"], out.attrs["sampling_frequency"]
    (250, 2500.0)
    """
    check_recording(recording)
    fs = float(recording.attrs["sampling_frequency"])
    target = check_number("sampling_frequency_hz", sampling_frequency_hz, min_value=0, min_inclusive=False)
    max_denominator = check_int("max_denominator", max_denominator, min_value=1, max_value=100_000)
    up, down = _ratio(fs, target, max_denominator)
    fs_out = fs * up / down
    if chunk_size is not None:
        chunk_size = check_int("chunk_size", chunk_size, min_value=1)
    out_dtype = _out_dtype(recording.dtype, dtype)
    data = as_dask(recording)
    if up == down == 1:
        out = data.astype(out_dtype) if out_dtype != data.dtype else data
    else:
        out = _polyphase_dask(data, up=up, down=down, window=window, out_dtype=out_dtype,
                              chunk_size=chunk_size, fs_out=fs_out)
    res = _with_new_time(recording, out, fs_out)
    return record_step(res, "resample", {"sampling_frequency_hz": fs_out, "up": up, "down": down,
                                         "window": list(window) if isinstance(window, tuple) else window,
                                         "dtype": str(out_dtype)})


def decimate(recording: xr.DataArray, *, factor: int, filter: str = "fir", offset: int = 0,
             dtype=None, chunk_size: int | None = None) -> xr.DataArray:
    """Keep one sample in ``factor``, after an anti-alias FIR low-pass by default (lazy).

    Parameters
    ----------
    recording : xarray.DataArray
    factor : int
        Decimation factor, >= 1; the new rate is ``fs / factor``.
    filter : {"fir", "none"}, default "fir"
        ``"fir"``: the polyphase anti-alias filter of :func:`resample` (cut-off at the new
        Nyquist), i.e. ``scipy.signal.resample_poly(x, 1, factor)``. ``"none"``: plain sample
        selection ``x[offset::factor]`` (aliases anything above the new Nyquist; use it on data
        already low-passed, e.g. LFP).
    offset : int, default 0
        First kept sample, in ``[0, factor)``; only with ``filter="none"``.
    dtype : numpy dtype, optional
        Output dtype. Default: with ``"fir"``, float32 (float64 for float64 input); with
        ``"none"``, the input's.
    chunk_size : int, optional
        Output samples per chunk.

    Returns
    -------
    xarray.DataArray
        ``ceil((n - offset) / factor)`` samples at ``fs / factor`` Hz; the first sample's time is
        the input's time of sample ``offset``.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> rec = from_array(np.arange(20, dtype="int16").reshape(10, 2), sampling_frequency=1000.0)
    >>> decimate(rec, factor=3, filter="none").values[:, 0].tolist()
    [0, 6, 12, 18]
    """
    check_recording(recording)
    factor = check_int("factor", factor, min_value=1)
    check_choice("filter", filter, ("fir", "none"))
    offset = check_int("offset", offset, min_value=0, max_value=factor - 1)
    if filter == "fir" and offset != 0:
        raise ValueError(f"offset={offset} is only supported with filter='none'; the FIR path keeps sample 0's phase.")
    if chunk_size is not None:
        chunk_size = check_int("chunk_size", chunk_size, min_value=1)
    fs = float(recording.attrs["sampling_frequency"])
    fs_out = fs / factor
    data = as_dask(recording)
    if filter == "none":
        out_dtype = np.dtype(dtype) if dtype is not None else np.dtype(recording.dtype)
        out = data[offset::factor]
        out = out.astype(out_dtype) if out_dtype != out.dtype else out
        size = chunk_size or (max(1, math.ceil(data.chunks[0][0] / factor)) if data.chunks[0] else 1)
        out = out.rechunk({0: size, 1: -1})
        base = recording.isel(time=slice(offset, offset + 1))
    else:
        out_dtype = _out_dtype(recording.dtype, dtype)
        out = data.astype(out_dtype) if factor == 1 and out_dtype != data.dtype else data
        if factor > 1:
            out = _polyphase_dask(data, up=1, down=factor, window=("kaiser", 5.0), out_dtype=out_dtype,
                                  chunk_size=chunk_size, fs_out=fs_out)
        base = recording
    res = _with_new_time(base if num_samples(base) else recording, out, fs_out)
    return record_step(res, "decimate", {"factor": factor, "filter": filter, "offset": offset,
                                         "dtype": str(out_dtype)})
