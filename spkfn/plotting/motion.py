"""Figures of motion (drift): drift maps with the estimated motion, motion per depth over time,
corrected versus raw peak depths.

Each figure has a ``prepare_*`` function (plain data, testable) and a ``plot_*`` function that
draws it on a matplotlib ``Axes`` (created when not given) and returns the axes.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ._common import auto_marker_size
from ._common import axes_or_new as _axes

__all__ = [
    "prepare_motion_drift_map",
    "plot_motion_drift_map",
    "prepare_motion",
    "plot_motion",
    "plot_motion_summary",
]


def _select_group(motion: xr.DataArray | None, group):
    if motion is None or motion.dims[0] != "group":
        return motion
    groups = motion.coords["group"].values.tolist()
    if group is None:
        group = groups[0]
    if group not in groups:
        raise ValueError(f"group {group!r} is not in the motion's groups {groups}.")
    return motion.sel(group=group)


def prepare_motion_drift_map(peaks, peak_locations, *, motion: xr.DataArray | None = None, corrected: bool = False,
                      sampling_frequency: float | None = None, t_start_s: float | None = None,
                      channel_groups=None, group=None, max_peaks: int | None = 200_000, seed: int = 0) -> dict:
    """Peak times, depths and amplitudes for a drift map, and the motion traced at its depth bins.

    Parameters
    ----------
    peaks : structured array
        ``sample_index`` (and ``amplitude``, ``channel_index`` when available).
    peak_locations : structured array with ``y``, or 1-D depths (µm)
    motion : xarray.DataArray, optional
        Adds ``motion_lines``: for each depth bin ``d``, ``d + motion(t, d)`` over the time bins
        (where the tissue at reference depth ``d`` is seen). With a ``group`` dim, ``group``
        selects one group (default: the first) and only that group's peaks are kept (needs
        ``channel_groups`` and ``peaks["channel_index"]``).
    corrected : bool, default False
        Show the depths corrected by the motion (``y - motion(t, y)``); the lines are then flat.
    sampling_frequency, t_start_s : float, optional
        Default: the motion's attrs; required without a motion.
    max_peaks : int, optional
        Keep a random subset of this size (seeded) for drawing speed.

    Returns
    -------
    dict
        ``time_s``, ``depth_um``, ``amplitude`` (``|amplitude|`` or ones), ``motion_lines``
        (list of ``(time_s, depth_um)``; empty without motion), ``corrected``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> peaks = np.zeros(3, [("sample_index", "int64"), ("amplitude", "float32")])
    >>> peaks["sample_index"] = [0, 100, 200]
    >>> m = xr.DataArray([[0.0], [5.0]], dims=("time_bin", "depth_bin"),
    ...                  coords={"time_bin": [0.5, 1.5], "depth_bin": [50.0]},
    ...                  attrs={"sampling_frequency": 100.0, "t_start_s": 0.0})
    >>> d = prepare_motion_drift_map(peaks, np.array([10.0, 20.0, 30.0]), motion=m, corrected=True)
    >>> d["time_s"].tolist(), d["depth_um"].tolist(), d["motion_lines"][0][1].tolist()
    ([0.0, 1.0, 2.0], [10.0, 17.5, 25.0], [50.0, 50.0])
    """
    from ..detection.motion import _as_peaks_and_depths, check_motion, correct_peak_locations

    peaks, depths = _as_peaks_and_depths(peaks, peak_locations)
    if motion is not None:
        check_motion(motion)
    fs = sampling_frequency if sampling_frequency is not None else (
        motion.attrs.get("sampling_frequency") if motion is not None else None)
    if fs is None:
        raise ValueError("give sampling_frequency= (Hz) (or a motion carrying it in its attrs).")
    t0 = t_start_s if t_start_s is not None else (motion.attrs.get("t_start_s", 0.0) if motion is not None else 0.0)
    keep = np.ones(peaks.size, bool)
    if motion is not None and motion.dims[0] == "group":
        if channel_groups is None or "channel_index" not in peaks.dtype.names:
            raise ValueError("a per-group motion needs channel_groups= and peaks with 'channel_index'.")
        g = group if group is not None else motion.coords["group"].values[0]
        keep = np.asarray(channel_groups)[peaks["channel_index"]] == g
    peaks, depths = peaks[keep], depths[keep]
    if corrected:
        if motion is None:
            raise ValueError("corrected=True needs a motion.")
        depths = correct_peak_locations(peaks, depths, motion, channel_groups=channel_groups,
                                        sampling_frequency=fs, t_start_s=t0)
    amp = np.abs(peaks["amplitude"]).astype(np.float64) if "amplitude" in peaks.dtype.names else np.ones(peaks.size)
    times = float(t0) + peaks["sample_index"].astype(np.float64) / float(fs)
    if max_peaks is not None and peaks.size > max_peaks:
        sel = np.sort(np.random.default_rng(seed).choice(peaks.size, size=int(max_peaks), replace=False))
        times, depths, amp = times[sel], depths[sel], amp[sel]
    lines = []
    m = _select_group(motion, group)
    if m is not None:
        tb = m.coords["time_bin"].values
        for k, d in enumerate(m.coords["depth_bin"].values):
            lines.append((tb, np.full(tb.size, float(d)) if corrected else float(d) + m.values[:, k]))
    return {"time_s": times, "depth_um": depths, "amplitude": amp, "motion_lines": lines, "corrected": corrected}


def plot_motion_drift_map(peaks, peak_locations, *, motion: xr.DataArray | None = None, corrected: bool = False,
                   sampling_frequency: float | None = None, t_start_s: float | None = None, channel_groups=None,
                   group=None, max_peaks: int | None = 200_000, seed: int = 0, ax=None, cmap: str = "Greys",
                   line_color: str = "C1", title: str | None = None):
    """Drift map: each peak at (time, depth), darker for larger amplitudes; the motion overlaid.

    See :func:`prepare_motion_drift_map` for the arguments. Returns the axes.

    Examples
    --------
    >>> import numpy as np, matplotlib
    >>> matplotlib.use("Agg")
    >>> peaks = np.zeros(50, [("sample_index", "int64"), ("amplitude", "float32")])
    >>> peaks["sample_index"] = np.arange(50) * 100; peaks["amplitude"] = -40.0
    >>> ax = plot_motion_drift_map(peaks, np.linspace(0, 100, 50), sampling_frequency=1000.0)
    >>> ax.get_ylabel()
    'depth (µm)'
    """
    d = prepare_motion_drift_map(peaks, peak_locations, motion=motion, corrected=corrected,
                          sampling_frequency=sampling_frequency, t_start_s=t_start_s, channel_groups=channel_groups,
                          group=group, max_peaks=max_peaks, seed=seed)
    ax = _axes(ax)
    amp = d["amplitude"]
    if amp.size:
        lo, hi = np.percentile(amp, [5, 95]) if amp.size > 1 else (0.0, float(amp[0]) or 1.0)
        c = np.clip((amp - lo) / max(hi - lo, 1e-12), 0, 1) * 0.8 + 0.2
        ax.scatter(d["time_s"], d["depth_um"], c=c, s=auto_marker_size(amp.size), cmap=cmap, vmin=0, vmax=1, linewidths=0, rasterized=True)
    for t, y in d["motion_lines"]:
        ax.plot(t, y, color=line_color, lw=1.0)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("depth (µm)")
    ax.set_title(title if title is not None else ("corrected peak depths" if corrected else "peak depths"))
    return ax


def prepare_motion(motion: xr.DataArray, *, group=None) -> dict:
    """``time_s`` (T,), ``depth_um`` (Z,), ``displacement_um`` (T, Z) of one group's motion.

    >>> import xarray as xr
    >>> m = xr.DataArray([[0.0, 1.0]], dims=("time_bin", "depth_bin"),
    ...                  coords={"time_bin": [0.5], "depth_bin": [0.0, 100.0]})
    >>> prepare_motion(m)["displacement_um"].tolist()
    [[0.0, 1.0]]
    """
    from ..detection.motion import check_motion

    check_motion(motion)
    m = _select_group(motion, group)
    return {"time_s": np.asarray(m.coords["time_bin"].values, np.float64),
            "depth_um": np.asarray(m.coords["depth_bin"].values, np.float64),
            "displacement_um": np.asarray(m.values, np.float64)}


def plot_motion(motion: xr.DataArray, *, group=None, truth: xr.DataArray | None = None, ax=None,
                cmap: str = "viridis"):
    """Displacement over time, one line per depth bin coloured by depth (truth dashed if given).

    Examples
    --------
    >>> import numpy as np, xarray as xr, matplotlib
    >>> matplotlib.use("Agg")
    >>> m = xr.DataArray(np.zeros((3, 2)), dims=("time_bin", "depth_bin"),
    ...                  coords={"time_bin": [0.5, 1.5, 2.5], "depth_bin": [0.0, 100.0]})
    >>> len(plot_motion(m).lines)
    2
    """
    import matplotlib.pyplot as plt

    d = prepare_motion(motion, group=group)
    ax = _axes(ax)
    z = d["depth_um"]
    norm = plt.Normalize(z.min(), z.max() if z.max() > z.min() else z.min() + 1)
    colours = plt.get_cmap(cmap)(norm(z))
    for k in range(z.size):
        ax.plot(d["time_s"], d["displacement_um"][:, k], color=colours[k], lw=1.0)
    if truth is not None:
        t = prepare_motion(truth, group=group)
        for k in range(t["depth_um"].size):
            ax.plot(t["time_s"], t["displacement_um"][:, k], color="k", lw=0.8, ls="--")
    if z.size > 1:
        sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
        ax.figure.colorbar(sm, ax=ax, label="depth (µm)")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("displacement (µm)")
    ax.set_title("motion" + (f" (group {group})" if group is not None else ""))
    return ax


def plot_motion_summary(peaks, peak_locations, motion: xr.DataArray, *, channel_groups=None, group=None,
                        truth: xr.DataArray | None = None, max_peaks: int | None = 200_000, seed: int = 0,
                        figsize=(14.0, 4.5)):
    """Three panels: raw drift map with the motion, motion per depth over time, corrected drift map.

    The quick look of a motion estimate. Returns the figure.

    Examples
    --------
    >>> import numpy as np, xarray as xr, matplotlib
    >>> matplotlib.use("Agg")
    >>> peaks = np.zeros(20, [("sample_index", "int64"), ("amplitude", "float32")])
    >>> peaks["sample_index"] = np.arange(20) * 50
    >>> m = xr.DataArray(np.zeros((2, 1)), dims=("time_bin", "depth_bin"),
    ...                  coords={"time_bin": [0.25, 0.75], "depth_bin": [50.0]},
    ...                  attrs={"sampling_frequency": 1000.0})
    >>> len(plot_motion_summary(peaks, np.linspace(0, 100, 20), m).axes)
    3
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=figsize, layout="constrained")
    kw = {"channel_groups": channel_groups, "group": group, "max_peaks": max_peaks, "seed": seed}
    plot_motion_drift_map(peaks, peak_locations, motion=motion, ax=axes[0], title="peak depths and motion", **kw)
    plot_motion(motion, group=group, truth=truth, ax=axes[1])
    plot_motion_drift_map(peaks, peak_locations, motion=motion, corrected=True, ax=axes[2], title="corrected peak depths",
                   **kw)
    axes[2].sharey(axes[0])
    return fig
