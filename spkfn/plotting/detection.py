"""Figures of the detection stage: drift map (peak depth over time), peak locations over the probe,
noise level per channel.

Each figure has a ``prepare_*`` function (plain data, testable) and a ``plot_*`` function that
draws it on a matplotlib ``Axes`` (created when not given) and returns the axes.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..io.recording import channel_locations, has_geometry
from ._common import auto_marker_size
from ._common import axes_or_new as _axes


def _subsample(n: int, max_points: int | None, seed: int) -> np.ndarray:
    if max_points is None or n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def prepare_drift_map(peaks, recording: xr.DataArray, *, peak_locations=None, max_points: int | None = 200_000,
                      seed: int = 0, clip_percentile: float = 99.0) -> dict:
    """Peak times (s), depths (µm) and amplitudes (|µV|) for a drift map.

    Depth is ``peak_locations["y"]`` when given (e.g. from :func:`spkfn.detection.localize_peaks`),
    otherwise the ``y`` of each peak's channel. At most ``max_points`` peaks are kept (a seeded
    uniform subset, in time order). Amplitudes are clipped at their ``clip_percentile`` for the
    colour scale.

    Returns a dict: ``time_s``, ``depth_um``, ``amplitude_uV``, ``vmax_uV``, ``n_peaks`` (before
    subsampling), ``depth_source`` (``"location"`` or ``"channel"``).
    """
    peaks = np.asarray(peaks)
    fs = float(recording.attrs["sampling_frequency"])
    t0 = float(recording.coords["time"].values[0]) if recording.sizes["time"] else 0.0
    keep = _subsample(peaks.size, max_points, seed)
    p = peaks[keep]
    if peak_locations is not None:
        locs = np.asarray(peak_locations)
        if locs.shape[0] != peaks.size:
            raise ValueError(f"peak_locations has {locs.shape[0]} rows for {peaks.size} peaks.")
        depth = np.asarray(locs["y"], dtype=np.float64)[keep]
        source = "location"
    else:
        depth = channel_locations(recording)[p["channel_index"], 1] if p.size else np.zeros(0)
        source = "channel"
    amp = np.abs(p["amplitude"].astype(np.float64))
    vmax = float(np.percentile(amp, clip_percentile)) if amp.size else 1.0
    return {"time_s": t0 + p["sample_index"] / fs, "depth_um": depth, "amplitude_uV": np.minimum(amp, vmax),
            "vmax_uV": vmax, "n_peaks": int(peaks.size), "depth_source": source}


def plot_drift_map(peaks, recording: xr.DataArray, *, peak_locations=None, max_points: int | None = 200_000,
                   seed: int = 0, ax=None, cmap: str = "viridis", markersize: float | None = None, alpha: float = 0.5,
                   colorbar: bool = True):
    """Drift map: each peak at (time, depth), coloured by its amplitude.

    Vertical bands are units; their slopes and steps show probe drift. Depths come from peak
    locations when given (sharper bands), else from the peak channels.

    Examples
    --------
    >>> import numpy as np, matplotlib
    >>> matplotlib.use("Agg")
    >>> from spkfn.io import from_array
    >>> from spkfn.detection import PEAK_DTYPE
    >>> rec = from_array(np.zeros((30000, 3), "float32"), sampling_frequency=30000.0,
    ...                  channel_locations=[[0, 0], [0, 20], [0, 40]])
    >>> peaks = np.zeros(50, PEAK_DTYPE)
    >>> peaks["sample_index"] = np.arange(50) * 600; peaks["channel_index"] = np.arange(50) % 3
    >>> peaks["amplitude"] = -80.0
    >>> ax = plot_drift_map(peaks, rec)
    >>> len(ax.collections[0].get_offsets())
    50
    """
    d = prepare_drift_map(peaks, recording, peak_locations=peak_locations, max_points=max_points, seed=seed)
    ax = _axes(ax, figsize=(10, 5))
    s = auto_marker_size(d["time_s"].size) if markersize is None else markersize
    sc = ax.scatter(d["time_s"], d["depth_um"], c=d["amplitude_uV"], s=s, cmap=cmap, alpha=alpha,
                    vmin=0, vmax=d["vmax_uV"], linewidths=0, rasterized=True)
    if colorbar:
        ax.figure.colorbar(sc, ax=ax, label="|amplitude| (µV)")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("depth (µm, " + ("peak location" if d["depth_source"] == "location" else "peak channel") + ")")
    shown = len(d["time_s"])
    ax.set_title(f"drift map: {d['n_peaks']} peaks" + (f" ({shown} shown)" if shown < d["n_peaks"] else ""))
    return ax


def prepare_peak_locations(recording: xr.DataArray, peak_locations, *, peaks=None, max_points: int | None = 100_000,
                           seed: int = 0) -> dict:
    """Contact positions and (a seeded subset of) peak positions, with peak amplitudes when given.

    Returns a dict: ``contacts_um`` (n_channels, 2), ``x_um``, ``y_um``, ``amplitude_uV`` (or
    ``None``), ``n_peaks``.
    """
    locs = np.asarray(peak_locations)
    keep = _subsample(locs.shape[0], max_points, seed)
    amp = None
    if peaks is not None:
        peaks = np.asarray(peaks)
        if peaks.shape[0] != locs.shape[0]:
            raise ValueError(f"peaks has {peaks.shape[0]} rows for {locs.shape[0]} locations.")
        amp = np.abs(peaks["amplitude"][keep].astype(np.float64))
    return {"contacts_um": channel_locations(recording), "x_um": np.asarray(locs["x"], float)[keep],
            "y_um": np.asarray(locs["y"], float)[keep], "amplitude_uV": amp, "n_peaks": int(locs.shape[0])}


def plot_peak_locations(recording: xr.DataArray, peak_locations, *, peaks=None, max_points: int | None = 100_000,
                        seed: int = 0, ax=None, cmap: str = "viridis", markersize: float | None = None, alpha: float = 0.3):
    """Peak locations scattered over the probe's contacts (grey squares), coloured by amplitude
    when ``peaks`` are given.

    Examples
    --------
    >>> import numpy as np, matplotlib
    >>> matplotlib.use("Agg")
    >>> from spkfn.io import from_array
    >>> rec = from_array(np.zeros((10, 2), "float32"), sampling_frequency=1e3, channel_locations=[[0, 0], [0, 20]])
    >>> locs = np.zeros(3, [("x", "f8"), ("y", "f8")]); locs["y"] = [1.0, 5.0, 12.0]
    >>> ax = plot_peak_locations(rec, locs)
    >>> len(ax.collections)
    2
    """
    d = prepare_peak_locations(recording, peak_locations, peaks=peaks, max_points=max_points, seed=seed)
    ax = _axes(ax, figsize=(4, 8))
    ax.scatter(d["contacts_um"][:, 0], d["contacts_um"][:, 1], marker="s", s=14, color="0.75", zorder=1)
    kw = {"color": "C3"} if d["amplitude_uV"] is None else {
        "c": d["amplitude_uV"], "cmap": cmap, "vmin": 0,
        "vmax": float(np.percentile(d["amplitude_uV"], 99)) if d["amplitude_uV"].size else 1.0}
    s = auto_marker_size(d["x_um"].size) if markersize is None else markersize
    sc = ax.scatter(d["x_um"], d["y_um"], s=s, alpha=alpha, linewidths=0, zorder=2, rasterized=True, **kw)
    if d["amplitude_uV"] is not None:
        ax.figure.colorbar(sc, ax=ax, label="|amplitude| (µV)")
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    ax.set_title(f"{d['n_peaks']} peak locations")
    return ax


def prepare_noise_levels(recording: xr.DataArray, noise_levels, *, by_depth: bool = True) -> dict:
    """Noise per channel, ordered by depth (``y``) when the geometry is known and ``by_depth``.

    Returns a dict: ``position`` (depth in µm or channel index), ``noise_uV``, ``channel_ids``,
    ``median_uV``, ``xlabel``.
    """
    noise = np.asarray(noise_levels, dtype=np.float64)
    n = recording.sizes["channel"]
    if noise.shape != (n,):
        raise ValueError(f"noise_levels must have one value per channel ({n}); got shape {noise.shape}.")
    ids = recording.coords["channel"].values
    if by_depth and has_geometry(recording):
        pos = channel_locations(recording)[:, 1]
        label = "depth (µm)"
    else:
        pos = np.arange(n, dtype=np.float64)
        label = "channel index"
    order = np.argsort(pos, kind="stable")
    return {"position": pos[order], "noise_uV": noise[order], "channel_ids": ids[order],
            "median_uV": float(np.median(noise)), "xlabel": label}


def plot_noise_levels(recording: xr.DataArray, noise_levels, *, by_depth: bool = True, ax=None,
                      outlier_factor: float = 1.5):
    """Noise level (µV) of each channel against depth; channels above ``outlier_factor`` × the
    median or below median / ``outlier_factor`` (candidates for bad channels) are marked in red.

    Examples
    --------
    >>> import numpy as np, matplotlib
    >>> matplotlib.use("Agg")
    >>> from spkfn.io import from_array
    >>> rec = from_array(np.zeros((10, 4), "float32"), sampling_frequency=1e3)
    >>> ax = plot_noise_levels(rec, [5.0, 5.2, 20.0, 4.9])
    >>> len(ax.lines)
    2
    """
    d = prepare_noise_levels(recording, noise_levels, by_depth=by_depth)
    ax = _axes(ax, figsize=(8, 3))
    ax.plot(d["position"], d["noise_uV"], ".", color="C0", ms=4)
    ax.axhline(d["median_uV"], color="0.5", lw=0.8, ls="--")
    bad = (d["noise_uV"] > outlier_factor * d["median_uV"]) | (d["noise_uV"] < d["median_uV"] / outlier_factor)
    if bad.any():
        ax.scatter(d["position"][bad], d["noise_uV"][bad], color="C3", s=15, zorder=3, label="outliers")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel(d["xlabel"])
    ax.set_ylabel("noise (µV)")
    ax.set_title(f"noise per channel (median {d['median_uV']:.2f} µV)")
    return ax
