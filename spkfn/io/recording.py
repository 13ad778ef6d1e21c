"""The recording: an ``xarray.DataArray`` with dims ``("time", "channel")``.

Layout (docs/data_model.md has the full table):

- values keep the acquisition dtype (int16, uint16, float32, ...);
- coord ``time``: seconds on the session clock, a lazy :class:`xarray.indexes.RangeIndex`
  (an hour at 30 kHz costs no memory); slice with ``isel`` or ``sel(..., method="nearest")``;
- coord ``channel``: string channel ids;
- per-channel coords ``x``, ``y`` (µm; absent when the geometry is unknown), ``group``
  (shank / probe, int), ``gain_to_uV``, ``offset_to_uV`` (µV = value * gain + offset);
- attrs ``sampling_frequency`` (Hz), ``probe`` (probeinterface JSON text, optional),
  ``source`` (dict: format, path, stream).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from xarray.indexes import RangeIndex

__all__ = [
    "from_array",
    "check_recording",
    "has_geometry",
    "channel_locations",
    "time_coordinate",
    "scale_to_uV",
    "get_traces",
    "num_samples",
    "duration_s",
]

_CHANNEL_COORDS = ("x", "y", "group", "gain_to_uV", "offset_to_uV")


def time_coordinate(num_samples: int, *, sampling_frequency: float, t_start_s: float = 0.0) -> xr.Coordinates:
    """Lazy ``time`` coordinate (seconds) for ``num_samples`` samples.

    Examples
    --------
    >>> c = time_coordinate(3, sampling_frequency=1000.0, t_start_s=2.0)
    >>> c["time"].values.round(6).tolist()
    [2.0, 2.001, 2.002]
    """
    n = int(num_samples)
    fs = float(sampling_frequency)
    # linspace with endpoint=False gives exactly n values spaced 1/fs, lazily.
    index = RangeIndex.linspace(t_start_s, t_start_s + n / fs, n, endpoint=False, dim="time")
    return xr.Coordinates.from_xindex(index)


def _as_channel_ids(channel_ids, n: int) -> np.ndarray:
    if channel_ids is None:
        return np.array([str(i) for i in range(n)], dtype=object).astype(str)
    ids = np.asarray(channel_ids)
    if ids.ndim != 1 or ids.size != n:
        raise ValueError(
            f"channel_ids has {ids.size} entries but the traces have {n} channels; "
            "give one id per channel (column)."
        )
    ids = ids.astype(str)
    if len(set(ids.tolist())) != n:
        dup = sorted({c for c in ids.tolist() if ids.tolist().count(c) > 1})
        raise ValueError(f"channel_ids must be unique; duplicated: {dup[:10]}")
    return ids


def _per_channel(value, n: int, name: str, default: float) -> np.ndarray:
    if value is None:
        return np.full(n, default, dtype=np.float64)
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have one value per channel ({n}); got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values.")
    return arr


def from_array(
    traces,
    *,
    sampling_frequency: float,
    channel_ids: Sequence | None = None,
    channel_locations=None,
    probe=None,
    gain_to_uV=None,
    offset_to_uV=None,
    group=None,
    t_start_s: float = 0.0,
    source: dict | None = None,
) -> xr.DataArray:
    """Wrap a ``(n_samples, n_channels)`` array as a recording.

    Parameters
    ----------
    traces : array_like or dask.array.Array, shape (n_samples, n_channels)
        Time-first traces. Kept as given (no copy, no dtype change); a dask array stays lazy.
    sampling_frequency : float
        Sampling rate in Hz, > 0.
    channel_ids : sequence, optional
        One id per channel (stored as strings). Default ``"0", "1", ...``.
    channel_locations : array_like, shape (n_channels, 2), optional
        Contact positions in µm (x, y). Ignored when ``probe`` is given.
    probe : probeinterface.Probe or probeinterface.ProbeGroup, optional
        Probe whose contacts map one-to-one to the channels (see :func:`spkfn.io.set_probe`).
    gain_to_uV, offset_to_uV : float or array_like, optional
        Scaling to µV per channel: ``uV = value * gain_to_uV + offset_to_uV``. Default 1 and 0.
    group : array_like of int, optional
        Group (shank / probe) per channel; default 0, or the probe's shank ids.
    t_start_s : float, default 0.0
        Session-clock time of the first sample, in seconds.
    source : dict, optional
        Where the data came from (``format``, ``path``, ``stream``).

    Returns
    -------
    xarray.DataArray
        Recording with dims ``("time", "channel")``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> rec = from_array(rng.normal(size=(1000, 4)).astype("float32"), sampling_frequency=30000.0,
    ...                  channel_locations=[[0, 0], [0, 20], [0, 40], [0, 60]])
    >>> rec.dims, rec.sizes["channel"], float(rec.attrs["sampling_frequency"])
    (('time', 'channel'), 4, 30000.0)
    """
    if not hasattr(traces, "ndim"):
        traces = np.asarray(traces)
    if traces.ndim != 2:
        raise ValueError(
            f"traces must be 2-D (n_samples, n_channels); got {traces.ndim}-D with shape {traces.shape}."
        )
    fs = _check_sampling_frequency(sampling_frequency)
    n_samples, n_channels = (int(s) for s in traces.shape)
    if n_channels == 0:
        raise ValueError("traces have no channels (shape[1] == 0).")
    ids = _as_channel_ids(channel_ids, n_channels)
    coords: dict[str, Any] = {"channel": ids}
    coords["gain_to_uV"] = ("channel", _per_channel(gain_to_uV, n_channels, "gain_to_uV", 1.0))
    coords["offset_to_uV"] = ("channel", _per_channel(offset_to_uV, n_channels, "offset_to_uV", 0.0))
    if group is None:
        coords["group"] = ("channel", np.zeros(n_channels, dtype=np.int64))
    else:
        g = np.asarray(group)
        if g.shape != (n_channels,):
            raise ValueError(f"group must have one value per channel ({n_channels}); got shape {g.shape}.")
        coords["group"] = ("channel", g.astype(np.int64))
    if channel_locations is not None and probe is None:
        loc = np.asarray(channel_locations, dtype=np.float64)
        if loc.ndim != 2 or loc.shape[0] != n_channels or loc.shape[1] not in (2, 3):
            raise ValueError(
                f"channel_locations must have shape (n_channels={n_channels}, 2); got {loc.shape}."
            )
        if not np.all(np.isfinite(loc)):
            raise ValueError("channel_locations contains non-finite values (NaN or inf).")
        coords["x"] = ("channel", loc[:, 0].copy())
        coords["y"] = ("channel", loc[:, 1].copy())
    attrs = {"sampling_frequency": fs, "source": dict(source or {"format": "array"})}
    rec = xr.DataArray(traces, dims=("time", "channel"), coords=coords, attrs=attrs, name="traces")
    rec = rec.assign_coords(time_coordinate(n_samples, sampling_frequency=fs, t_start_s=float(t_start_s)))
    if probe is not None:
        from .probes import set_probe

        rec = set_probe(rec, probe, keep_group=group is not None)
    return rec


def _check_sampling_frequency(sampling_frequency) -> float:
    try:
        fs = float(sampling_frequency)
    except (TypeError, ValueError):
        raise ValueError(f"sampling_frequency must be a number in Hz; got {sampling_frequency!r}.") from None
    if not math.isfinite(fs) or fs <= 0:
        raise ValueError(f"sampling_frequency must be a finite number > 0 Hz; got {sampling_frequency!r}.")
    return fs


def check_recording(rec) -> xr.DataArray:
    """Check that ``rec`` follows the recording layout; raise ``ValueError`` naming what is wrong.

    Returns the recording unchanged, so it can be used inline: ``rec = check_recording(rec)``.

    Examples
    --------
    >>> import numpy as np
    >>> rec = from_array(np.zeros((10, 2), "int16"), sampling_frequency=1000.0)
    >>> check_recording(rec) is rec
    True
    >>> try:
    ...     check_recording(rec.drop_attrs())
    ... except ValueError as e:
    ...     print(str(e).split(";")[0])
    recording has no 'sampling_frequency' attribute
    """
    if not isinstance(rec, xr.DataArray):
        raise ValueError(
            f"a recording must be an xarray.DataArray; got {type(rec).__name__}. "
            "Wrap plain arrays with spkfn.io.from_array(traces, sampling_frequency=...)."
        )
    if rec.dims != ("time", "channel"):
        raise ValueError(
            f"recording dims must be ('time', 'channel'); got {rec.dims}. "
            "Use rec.transpose('time', 'channel') or spkfn.io.from_array on time-first traces."
        )
    if "sampling_frequency" not in rec.attrs:
        raise ValueError(
            "recording has no 'sampling_frequency' attribute; set rec.attrs['sampling_frequency'] "
            "in Hz or build it with spkfn.io.from_array."
        )
    _check_sampling_frequency(rec.attrs["sampling_frequency"])
    n = rec.sizes["channel"]
    if n == 0:
        raise ValueError("recording has no channels.")
    if "channel" not in rec.coords:
        raise ValueError("recording has no 'channel' coordinate (channel ids).")
    ids = rec.coords["channel"].values
    if len(set(ids.tolist())) != ids.size:
        raise ValueError("recording channel ids are not unique.")
    if "time" not in rec.coords:
        raise ValueError("recording has no 'time' coordinate; rebuild it with spkfn.io.from_array.")
    for name in _CHANNEL_COORDS:
        if name in rec.coords:
            c = rec.coords[name]
            if c.dims != ("channel",):
                raise ValueError(f"coordinate {name!r} must be along 'channel'; got dims {c.dims}.")
            if c.size != n:
                raise ValueError(f"coordinate {name!r} has {c.size} values for {n} channels.")
        elif name in ("group", "gain_to_uV", "offset_to_uV"):
            raise ValueError(
                f"recording lacks the per-channel coordinate {name!r}; build it with spkfn.io.from_array."
            )
    if ("x" in rec.coords) != ("y" in rec.coords):
        raise ValueError("recording has only one of the 'x'/'y' geometry coordinates; give both or neither.")
    if has_geometry(rec):
        loc = channel_locations(rec)
        if not np.all(np.isfinite(loc)):
            bad = rec.coords["channel"].values[~np.all(np.isfinite(loc), axis=1)]
            raise ValueError(f"channel geometry has non-finite values for channels {bad[:10].tolist()}.")
    for name in ("gain_to_uV", "offset_to_uV"):
        if not np.all(np.isfinite(rec.coords[name].values)):
            raise ValueError(f"coordinate {name!r} has non-finite values.")
    if "probe" in rec.attrs and rec.attrs["probe"] is not None:
        try:
            json.loads(rec.attrs["probe"])
        except (TypeError, ValueError) as e:
            raise ValueError(f"attrs['probe'] is not valid probeinterface JSON text: {e}") from None
    return rec


def has_geometry(rec: xr.DataArray) -> bool:
    """True when the recording carries channel positions (``x``, ``y`` coords)."""
    return "x" in rec.coords and "y" in rec.coords


def channel_locations(rec: xr.DataArray, *, required: bool = True) -> np.ndarray | None:
    """Channel positions as an ``(n_channels, 2)`` float64 array in µm.

    Raises a ``ValueError`` with the fix when the recording has no geometry and ``required``.
    """
    if not has_geometry(rec):
        if not required:
            return None
        raise ValueError(
            "the recording has no channel geometry (no 'x'/'y' coords); attach a probe with "
            "spkfn.io.set_probe(rec, probe) or pass channel_locations= when reading."
        )
    return np.column_stack([rec.coords["x"].values, rec.coords["y"].values]).astype(np.float64)


def num_samples(rec: xr.DataArray) -> int:
    return int(rec.sizes["time"])


def duration_s(rec: xr.DataArray) -> float:
    return num_samples(rec) / float(rec.attrs["sampling_frequency"])


def scale_to_uV(rec: xr.DataArray, *, dtype="float32") -> xr.DataArray:
    """Scale a recording to µV: ``value * gain_to_uV + offset_to_uV`` per channel (lazy for dask).

    The result has gain 1 and offset 0, and a floating ``dtype`` (float32 by default).

    Examples
    --------
    >>> import numpy as np
    >>> rec = from_array(np.array([[1, 2], [3, 4]], "int16"), sampling_frequency=1000.0,
    ...                  gain_to_uV=[0.5, 2.0], offset_to_uV=[0.0, -1.0])
    >>> scale_to_uV(rec).values.tolist()
    [[0.5, 3.0], [1.5, 7.0]]
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"scale_to_uV needs a floating dtype; got {dtype}.")
    gain = rec.coords["gain_to_uV"].values.astype(dtype)
    offset = rec.coords["offset_to_uV"].values.astype(dtype)
    data = rec.data.astype(dtype) * gain[None, :]
    if np.any(offset != 0):
        data = data + offset[None, :]
    out = rec.copy(data=data)
    out = out.assign_coords(
        gain_to_uV=("channel", np.ones(rec.sizes["channel"])),
        offset_to_uV=("channel", np.zeros(rec.sizes["channel"])),
    )
    return out


def get_traces(rec: xr.DataArray, *, start: int = 0, end: int | None = None, channels=None,
               return_uV: bool = False) -> np.ndarray:
    """Materialise samples ``[start, end)`` as a numpy ``(n, n_channels)`` array.

    ``channels`` selects by position (int array). ``return_uV`` applies the per-channel scaling
    (float32 result).
    """
    n = num_samples(rec)
    end = n if end is None else int(end)
    start = int(start)
    if not (0 <= start <= end <= n):
        raise ValueError(f"sample range [{start}, {end}) is outside the recording [0, {n}).")
    sub = rec.isel(time=slice(start, end))
    if channels is not None:
        sub = sub.isel(channel=np.asarray(channels))
    if return_uV:
        sub = scale_to_uV(sub)
    data = sub.data
    if hasattr(data, "compute"):
        data = data.compute(scheduler="synchronous")
    return np.asarray(data)
