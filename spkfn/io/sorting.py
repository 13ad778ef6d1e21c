"""The sorting: an ``xarray.Dataset`` with dims ``spike`` and ``unit``.

- coord ``unit``: unit ids (int or str), unique;
- ``sample_index(spike)`` int64: spike times in samples from the recording's first sample;
- ``unit_index(spike)`` int64: position of the spike's unit in the ``unit`` coord, so that
  ``sorting.unit.values[sorting.unit_index.values]`` are the unit ids per spike (an integer
  index rather than repeated ids keeps a million-spike sorting small and fast, and matches
  SpikeInterface's spike vector);
- optional unit properties as variables along ``unit``;
- attrs ``sampling_frequency`` (Hz), optional ``num_samples`` and ``t_start_s``.

Spikes are sorted by ``(sample_index, unit_index)``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = [
    "sorting_from_arrays",
    "check_sorting",
    "spike_trains",
    "spike_unit_ids",
    "spike_times_s",
    "unit_counts",
    "unit_table",
]


def sorting_from_arrays(
    sample_index,
    unit,
    *,
    sampling_frequency: float,
    unit_ids=None,
    num_samples: int | None = None,
    t_start_s: float = 0.0,
) -> xr.Dataset:
    """Build a sorting from per-spike sample indices and unit ids.

    Parameters
    ----------
    sample_index : array_like of int, shape (n_spikes,)
        Spike times in samples (>= 0). Need not be sorted.
    unit : array_like, shape (n_spikes,)
        Unit id of each spike (ints or strings).
    sampling_frequency : float
        Hz, > 0.
    unit_ids : array_like, optional
        All unit ids, in the order wanted; may include units without spikes. Default: the sorted
        unique values of ``unit``.
    num_samples : int, optional
        Length of the sorted recording in samples (for rates and bounds checks).
    t_start_s : float, default 0.0
        Session-clock time of sample 0.

    Returns
    -------
    xarray.Dataset

    Examples
    --------
    >>> s = sorting_from_arrays([30, 10, 20], [7, 3, 7], sampling_frequency=30000.0)
    >>> s.unit.values.tolist(), s.sample_index.values.tolist()
    ([3, 7], [10, 20, 30])
    >>> {k: v.tolist() for k, v in spike_trains(s).items()}
    {3: [10], 7: [20, 30]}
    """
    from .recording import _check_sampling_frequency

    fs = _check_sampling_frequency(sampling_frequency)
    si = np.asarray(sample_index)
    units = np.asarray(unit)
    if si.ndim != 1 or units.ndim != 1 or si.size != units.size:
        raise ValueError(
            f"sample_index and unit must be 1-D and of equal length; got shapes {si.shape} and {units.shape}."
        )
    if si.size and si.dtype.kind not in "iu":
        if si.dtype.kind == "f" and np.all(np.isfinite(si)) and np.all(si == np.round(si)):
            si = si.astype(np.int64)
        else:
            raise ValueError(f"sample_index must hold integers (samples); got dtype {si.dtype}.")
    si = si.astype(np.int64, copy=False)
    if si.size and si.min() < 0:
        raise ValueError(f"sample_index has negative values (min {si.min()}); spike times must be >= 0 samples.")
    if num_samples is not None and si.size and si.max() >= num_samples:
        raise ValueError(f"sample_index has values >= num_samples ({si.max()} >= {num_samples}).")
    if unit_ids is None:
        ids = np.unique(units) if units.size else np.array([], dtype=np.int64)
    else:
        ids = np.asarray(unit_ids)
        if ids.ndim != 1:
            raise ValueError("unit_ids must be 1-D.")
        uniq, counts = np.unique(ids, return_counts=True)
        if np.any(counts > 1):
            raise ValueError(f"unit_ids must be unique; duplicated: {uniq[counts > 1][:10].tolist()}")
    index = _index_of(ids, units)
    order = np.lexsort((index, si))
    ds = xr.Dataset(
        {
            "sample_index": ("spike", si[order]),
            "unit_index": ("spike", index[order]),
        },
        coords={"unit": ids},
        attrs={"sampling_frequency": fs, "t_start_s": float(t_start_s)},
    )
    if num_samples is not None:
        ds.attrs["num_samples"] = int(num_samples)
    return ds


def _index_of(ids: np.ndarray, units: np.ndarray) -> np.ndarray:
    if units.size == 0:
        return np.zeros(0, dtype=np.int64)
    if ids.size == 0:
        raise ValueError("unit_ids is empty but spikes were given.")
    order = np.argsort(ids, kind="stable")
    try:
        pos = np.searchsorted(ids[order], units)
    except TypeError:
        raise ValueError("unit ids per spike and unit_ids have incompatible types (e.g. int vs str).") from None
    pos = np.clip(pos, 0, ids.size - 1)
    found = ids[order][pos] == units
    if not np.all(found):
        raise ValueError(f"spikes belong to units not in unit_ids: {np.unique(units[~found])[:10].tolist()}")
    return order[pos].astype(np.int64)


def check_sorting(sorting) -> xr.Dataset:
    """Check the sorting layout; raise ``ValueError`` naming what is wrong. Returns the input."""
    if not isinstance(sorting, xr.Dataset):
        raise ValueError(
            f"a sorting must be an xarray.Dataset; got {type(sorting).__name__}. "
            "Build one with spkfn.io.sorting_from_arrays(sample_index, unit, sampling_frequency=...)."
        )
    for name in ("sample_index", "unit_index"):
        if name not in sorting:
            raise ValueError(f"sorting has no {name!r} variable; build it with spkfn.io.sorting_from_arrays.")
        if sorting[name].dims != ("spike",):
            raise ValueError(f"sorting[{name!r}] must be along 'spike'; got {sorting[name].dims}.")
    if "unit" not in sorting.coords:
        raise ValueError("sorting has no 'unit' coordinate (unit ids).")
    if "sampling_frequency" not in sorting.attrs:
        raise ValueError("sorting has no 'sampling_frequency' attribute (Hz).")
    ids = sorting.unit.values
    if np.unique(ids).size != ids.size:
        uniq, counts = np.unique(ids, return_counts=True)
        raise ValueError(f"sorting has duplicate unit ids: {uniq[counts > 1][:10].tolist()}")
    si = sorting.sample_index.values
    ui = sorting.unit_index.values
    if si.size:
        if si.min() < 0:
            raise ValueError("sorting has negative sample_index values.")
        if np.any(np.diff(si) < 0):
            raise ValueError("sorting spikes are not sorted by sample_index; rebuild with sorting_from_arrays.")
        if ui.min() < 0 or ui.max() >= ids.size:
            raise ValueError("sorting unit_index values point outside the 'unit' coordinate.")
    return sorting


def spike_unit_ids(sorting: xr.Dataset) -> np.ndarray:
    """Unit id of each spike."""
    return sorting.unit.values[sorting.unit_index.values]


def spike_trains(sorting: xr.Dataset) -> dict:
    """Dict ``unit id -> sorted int64 sample indices`` (units without spikes get empty arrays)."""
    si = sorting.sample_index.values
    ui = sorting.unit_index.values
    ids = sorting.unit.values
    order = np.argsort(ui, kind="stable")  # stable: each train stays sorted by time
    bounds = np.searchsorted(ui[order], np.arange(ids.size + 1))
    return {_py(ids[k]): si[order[bounds[k]:bounds[k + 1]]] for k in range(ids.size)}


def _py(v):
    return v.item() if hasattr(v, "item") else v


def spike_times_s(sorting: xr.Dataset) -> np.ndarray:
    """Spike times in seconds on the session clock."""
    return sorting.attrs.get("t_start_s", 0.0) + sorting.sample_index.values / float(sorting.attrs["sampling_frequency"])


def unit_counts(sorting: xr.Dataset) -> np.ndarray:
    """Number of spikes per unit, in the order of the ``unit`` coord."""
    return np.bincount(sorting.unit_index.values, minlength=sorting.sizes["unit"])


def unit_table(sorting: xr.Dataset):
    """Unit properties as a ``pandas.DataFrame`` indexed by unit id, with ``num_spikes`` (and
    ``firing_rate_hz`` when the sorting knows its ``num_samples``).

    >>> s = sorting_from_arrays([10, 20, 30], [1, 1, 2], sampling_frequency=10.0, num_samples=100)
    >>> unit_table(s)[["num_spikes", "firing_rate_hz"]].values.tolist()
    [[2.0, 0.2], [1.0, 0.1]]
    """
    import pandas as pd

    props = [v for v in sorting.data_vars if sorting[v].dims == ("unit",)]
    df = sorting[props].to_dataframe() if props else pd.DataFrame(index=pd.Index(sorting.unit.values, name="unit"))
    df["num_spikes"] = unit_counts(sorting)
    if "num_samples" in sorting.attrs:
        df["firing_rate_hz"] = df["num_spikes"] / (sorting.attrs["num_samples"] / float(sorting.attrs["sampling_frequency"]))
    df.index.name = "unit"
    return df
