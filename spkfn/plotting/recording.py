"""Figures of recordings, probes, spike trains and templates.

Each figure has a ``prepare_*`` function (plain data, testable) and a ``plot_*`` function that
draws it on a matplotlib ``Axes`` (created when not given) and returns the axes.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..io.recording import channel_locations, get_traces, has_geometry
from ._common import axes_or_new as _axes

__all__ = [
    "prepare_traces",
    "plot_traces",
    "plot_probe",
    "prepare_raster",
    "plot_raster",
    "plot_templates",
    "plot_unit_positions",
]


def prepare_traces(rec: xr.DataArray, *, start_s: float = 0.0, duration_s: float = 0.1, channels=None,
                   spacing_uV: float | None = None, order_by_depth: bool = True) -> dict:
    """Samples of a window in µV, with vertical offsets for a stacked trace plot.

    Returns a dict: ``time_s`` (n,), ``traces_uV`` (n, k), ``offsets_uV`` (k,), ``channel_ids`` (k,),
    ``channel_index`` (k,), ``spacing_uV``.
    """
    fs = float(rec.attrs["sampling_frequency"])
    n = rec.sizes["time"]
    a = int(np.clip(round(start_s * fs), 0, max(n - 1, 0)))
    b = int(np.clip(a + max(1, round(duration_s * fs)), a + 1, n))
    idx = np.arange(rec.sizes["channel"]) if channels is None else np.asarray(channels)
    if order_by_depth and has_geometry(rec):
        loc = channel_locations(rec)[idx]
        idx = idx[np.lexsort((loc[:, 0], loc[:, 1]))]
    x = get_traces(rec, start=a, end=b, channels=idx, return_uV=True)
    if spacing_uV is None:
        mad = np.median(np.abs(x - np.median(x, axis=0)), axis=0) / 0.6745 if x.size else np.ones(1)
        spacing_uV = float(max(8 * np.median(mad), 1e-6))
    t0 = float(rec.coords["time"].values[a])
    return {
        "time_s": t0 + np.arange(b - a) / fs,
        "traces_uV": x,
        "offsets_uV": np.arange(len(idx)) * spacing_uV,
        "channel_ids": rec.channel.values[idx],
        "channel_index": idx,
        "spacing_uV": spacing_uV,
    }


def plot_traces(rec: xr.DataArray, *, start_s: float = 0.0, duration_s: float = 0.1, channels=None,
                spacing_uV: float | None = None, ax=None, color="k", linewidth=0.5, max_labels: int = 16):
    """Stacked traces of a time window (µV), deepest channel at the bottom.

    Examples
    --------
    >>> import numpy as np, matplotlib
    >>> matplotlib.use("Agg")
    >>> from spkfn.io import from_array
    >>> rec = from_array(np.random.default_rng(0).normal(size=(3000, 4)).astype("float32"), sampling_frequency=30000.0)
    >>> len(plot_traces(rec, duration_s=0.05).lines)
    4
    """
    d = prepare_traces(rec, start_s=start_s, duration_s=duration_s, channels=channels, spacing_uV=spacing_uV)
    ax = _axes(ax)
    ax.plot(d["time_s"], d["traces_uV"] + d["offsets_uV"][None, :], color=color, lw=linewidth)
    step = max(1, len(d["channel_ids"]) // max_labels)
    ax.set_yticks(d["offsets_uV"][::step], [str(c) for c in d["channel_ids"][::step]])
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"channel (spacing {d['spacing_uV']:.0f} µV)")
    ax.margins(x=0)
    return ax


def plot_probe(rec_or_probe, *, ax=None, with_channel_ids: bool = False, values=None, cmap="viridis", title=None):
    """Probe map (probeinterface's drawing), contacts coloured by ``values`` or by group.

    ``rec_or_probe``: a recording (its probe, or a generic one from its geometry) or a
    probeinterface Probe/ProbeGroup.
    """
    import probeinterface as pi
    from probeinterface.plotting import plot_probe as _pi_plot_probe

    from ..io.probes import get_probe

    pg = get_probe(rec_or_probe) if isinstance(rec_or_probe, xr.DataArray) else rec_or_probe
    if isinstance(pg, pi.Probe):
        probes = [pg]
    else:
        probes = pg.probes
    ax = _axes(ax, figsize=(4, 6))
    start = 0
    colors = [f"C{i % 10}" for i in range(len(probes))]
    for i, p in enumerate(probes):
        n = p.get_contact_count()
        kw = {}
        if values is not None:
            kw["contacts_values"] = np.asarray(values)[start:start + n]
            kw["cmap"] = cmap
        else:
            kw["contacts_colors"] = [colors[i]] * n
        text = None
        if with_channel_ids and "channel_id" in p.contact_annotations:
            text = [str(c) for c in p.contact_annotations["channel_id"]]
        _pi_plot_probe(p, ax=ax, text_on_contact=text, title=False, **kw)
        start += n
    ax.set_title(title or f"{sum(p.get_contact_count() for p in probes)} contacts, {len(probes)} probe(s)/shank(s)")
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    return ax


def prepare_raster(sorting: xr.Dataset, *, start_s: float = 0.0, duration_s: float | None = None, order=None) -> dict:
    """Spike times (s) and row per spike for a raster; rows follow ``order`` (unit ids) or the unit coord."""
    fs = float(sorting.attrs["sampling_frequency"])
    t = sorting.sample_index.values / fs
    ui = sorting.unit_index.values
    ids = sorting.unit.values
    rank = np.arange(ids.size)
    if order is not None:
        pos = {u: k for k, u in enumerate(ids.tolist())}
        rank = np.empty(ids.size, dtype=np.int64)
        rank[[pos[u] for u in order]] = np.arange(len(order))
    keep = t >= start_s
    if duration_s is not None:
        keep &= t < start_s + duration_s
    return {"time_s": t[keep], "row": rank[ui[keep]], "unit_ids": ids if order is None else np.asarray(order)}


def plot_raster(sorting: xr.Dataset, *, start_s: float = 0.0, duration_s: float | None = None, order=None, ax=None,
                markersize: float = 20.0):
    """Raster of spike times, one row per unit."""
    d = prepare_raster(sorting, start_s=start_s, duration_s=duration_s, order=order)
    ax = _axes(ax)
    ax.scatter(d["time_s"], d["row"], s=markersize, c=[f"C{r % 10}" for r in d["row"]], marker="|", linewidths=0.8)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("unit")
    ids = d["unit_ids"]
    step = max(1, len(ids) // 20)
    ax.set_yticks(np.arange(len(ids))[::step], [str(u) for u in ids[::step]])
    return ax


def plot_templates(templates: xr.DataArray, *, units=None, ax=None, scale: float | None = None, max_channels: int = 12):
    """Templates drawn at their channels' positions (each unit in its colour).

    For each unit, the ``max_channels`` channels with the largest peak-to-peak amplitude are drawn.
    """
    ax = _axes(ax, figsize=(6, 6))
    units = templates.unit.values if units is None else np.asarray(units)
    has_xy = "x" in templates.coords and "y" in templates.coords
    loc = np.column_stack([templates.x.values, templates.y.values]) if has_xy else np.column_stack(
        [np.zeros(templates.sizes["channel"]), np.arange(templates.sizes["channel"]) * 20.0])
    ns = templates.sizes["sample"]
    xs = np.linspace(-8, 8, ns)
    data = templates.sel(unit=units).values
    ptp = np.ptp(data, axis=1)
    if scale is None:
        scale = 15.0 / max(float(np.max(ptp)), 1e-9) * 1.5
    for k in range(len(units)):
        chans = np.argsort(ptp[k])[::-1][:max_channels]
        for c in chans:
            ax.plot(loc[c, 0] + xs, loc[c, 1] + data[k, :, c] * scale, color=f"C{k % 10}", lw=0.8)
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    ax.set_title(f"templates of {len(units)} unit(s)")
    return ax


def plot_unit_positions(rec: xr.DataArray, x_um, y_um, *, labels=None, values=None, ax=None, cmap="viridis"):
    """Unit (or peak) positions over the channel layout."""
    ax = _axes(ax, figsize=(4, 6))
    loc = channel_locations(rec)
    ax.scatter(loc[:, 0], loc[:, 1], marker="s", s=12, color="0.8", label="contacts")
    sc = ax.scatter(x_um, y_um, c=values if values is not None else "C3", s=25, cmap=cmap, zorder=3)
    if labels is not None:
        for xi, yi, lab in zip(x_um, y_um, labels, strict=True):
            ax.annotate(str(lab), (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if values is not None:
        ax.figure.colorbar(sc, ax=ax)
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    return ax
