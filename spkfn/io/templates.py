"""Templates: ``xarray.DataArray`` with dims ``("unit", "sample", "channel")``.

attrs ``nbefore`` (samples before the spike time) and ``sampling_frequency`` (Hz); values in µV;
optional boolean ``sparsity`` coord ``("unit", "channel")`` (True where the template is defined);
per-channel ``x``, ``y`` coords when the geometry is known.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["templates_from_array", "check_templates"]


def templates_from_array(
    data,
    *,
    sampling_frequency: float,
    nbefore: int,
    unit_ids=None,
    channel_ids=None,
    channel_locations=None,
    sparsity=None,
) -> xr.DataArray:
    """Wrap a ``(n_units, n_samples, n_channels)`` array (µV) as templates.

    Examples
    --------
    >>> import numpy as np
    >>> t = templates_from_array(np.zeros((2, 60, 4), "float32"), sampling_frequency=30000.0, nbefore=20)
    >>> t.dims, t.attrs["nbefore"], t.unit.values.tolist()
    (('unit', 'sample', 'channel'), 20, [0, 1])
    """
    from .recording import _as_channel_ids, _check_sampling_frequency

    arr = np.asarray(data)
    if arr.ndim != 3:
        raise ValueError(f"templates must be 3-D (unit, sample, channel); got shape {arr.shape}.")
    n_units, n_samples, n_channels = arr.shape
    if not 0 <= int(nbefore) < max(n_samples, 1):
        raise ValueError(f"nbefore={nbefore} must be in [0, {n_samples}) (samples per template).")
    ids = np.arange(n_units) if unit_ids is None else np.asarray(unit_ids)
    if ids.shape != (n_units,):
        raise ValueError(f"unit_ids must have {n_units} entries; got {ids.shape}.")
    coords = {"unit": ids, "channel": _as_channel_ids(channel_ids, n_channels), "sample": np.arange(n_samples) - int(nbefore)}
    if channel_locations is not None:
        loc = np.asarray(channel_locations, dtype=np.float64)
        if loc.shape[0] != n_channels:
            raise ValueError(f"channel_locations has {loc.shape[0]} rows for {n_channels} channels.")
        coords["x"] = ("channel", loc[:, 0])
        coords["y"] = ("channel", loc[:, 1])
    if sparsity is not None:
        sp = np.asarray(sparsity, dtype=bool)
        if sp.shape != (n_units, n_channels):
            raise ValueError(f"sparsity must have shape (n_units, n_channels) = {(n_units, n_channels)}; got {sp.shape}.")
        coords["sparsity"] = (("unit", "channel"), sp)
    return xr.DataArray(
        arr,
        dims=("unit", "sample", "channel"),
        coords=coords,
        attrs={"sampling_frequency": _check_sampling_frequency(sampling_frequency), "nbefore": int(nbefore)},
        name="templates",
    )


def check_templates(templates) -> xr.DataArray:
    """Check the templates layout; raise ``ValueError`` naming what is wrong. Returns the input."""
    if not isinstance(templates, xr.DataArray) or templates.dims != ("unit", "sample", "channel"):
        raise ValueError("templates must be an xarray.DataArray with dims ('unit', 'sample', 'channel').")
    for key in ("nbefore", "sampling_frequency"):
        if key not in templates.attrs:
            raise ValueError(f"templates have no {key!r} attribute.")
    return templates
