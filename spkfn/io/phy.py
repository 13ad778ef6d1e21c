"""Kilosort / phy output folders (the "template-gui" layout) read into a spkfn sorting.

Files used (https://phy.readthedocs.io/en/latest/sorting_user_guide/ and Kilosort4's
``kilosort.io.save_to_phy``):

- ``spike_times.npy`` (required): spike times in samples;
- ``spike_clusters.npy`` (phy's curated assignment) or ``spike_templates.npy`` (Kilosort's
  template per spike; used when there are no clusters or when asked);
- ``params.py``: ``sample_rate`` (else pass ``sampling_frequency``);
- ``amplitudes.npy`` (optional): per-spike template scaling amplitudes (arbitrary units);
- ``cluster_*.tsv`` / ``cluster_info.tsv`` (optional): one unit property per column
  (``KSLabel``, ``ContamPct``, ``Amplitude``, phy's ``group``, ...).
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .sorting import sorting_from_arrays

__all__ = ["read_kilosort", "read_phy_params"]


def read_phy_params(path) -> dict:
    """Read a phy ``params.py`` without executing it (literal assignments only).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "params.py"
    >>> _ = p.write_text("dat_path = 'a.bin'\\nn_channels_dat = 385\\nsample_rate = 30000.\\n")
    >>> read_phy_params(p)
    {'dat_path': 'a.bin', 'n_channels_dat': 385, 'sample_rate': 30000.0}
    """
    path = Path(path)
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except SyntaxError as e:
        raise ValueError(f"{path} is not a valid phy params.py: {e}") from None
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue  # an expression phy would evaluate; not a literal we need
    return out


def read_kilosort(
    folder,
    *,
    sampling_frequency: float | None = None,
    unit_source: str = "auto",
    amplitudes: bool | None = None,
    num_samples: int | None = None,
) -> xr.Dataset:
    """Read a Kilosort / phy output folder as a sorting.

    Parameters
    ----------
    folder : str or Path
        The output folder (holding ``spike_times.npy``).
    sampling_frequency : float, optional
        Hz. Default: ``sample_rate`` from the folder's ``params.py``; required when there is
        none. When both are given they must agree.
    unit_source : {"auto", "clusters", "templates"}, default "auto"
        Where the unit of each spike comes from: phy's ``spike_clusters.npy`` ("clusters"),
        Kilosort's ``spike_templates.npy`` ("templates"), or clusters when present else templates
        ("auto").
    amplitudes : bool, optional
        Read ``amplitudes.npy`` as the per-spike variable ``amplitude`` (template scaling,
        arbitrary units). ``None``: when present; ``True``: required.
    num_samples : int, optional
        Length of the sorted recording (recorded in attrs; spikes beyond it are an error).

    Returns
    -------
    xarray.Dataset
        Sorting with unit ids as in the folder, one unit property per ``cluster_*.tsv`` column
        (missing rows: NaN or ""), attrs ``source`` (``{"format": "kilosort", "path": ...}``).

    Raises
    ------
    FileNotFoundError
        The folder or a required file is missing (the message lists what is there).
    ValueError
        Inconsistent files (lengths differ, no sampling rate, ...).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> np.save(d / "spike_times.npy", np.array([[30], [10], [20]], dtype="uint64"))
    >>> np.save(d / "spike_clusters.npy", np.array([2, 0, 2], dtype="uint32"))
    >>> s = read_kilosort(d, sampling_frequency=30000.0)
    >>> s.unit.values.tolist(), s.sample_index.values.tolist(), s.unit_index.values.tolist()
    ([0, 2], [10, 20, 30], [0, 1, 1])
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"Kilosort/phy folder {str(folder)!r} does not exist.")
    if unit_source not in ("auto", "clusters", "templates"):
        raise ValueError(f"unit_source must be 'auto', 'clusters' or 'templates'; got {unit_source!r}.")
    present = sorted(p.name for p in folder.iterdir())

    def need(name: str, why: str) -> Path:
        p = folder / name
        if not p.is_file():
            raise FileNotFoundError(
                f"{folder}: {name} is missing ({why}). Files present: {present}."
            )
        return p

    fs = _sampling_frequency(folder, sampling_frequency)
    times = np.load(need("spike_times.npy", "spike times are required"), mmap_mode="r")
    times = np.asarray(times).reshape(-1)
    if unit_source == "auto":
        unit_source = "clusters" if (folder / "spike_clusters.npy").is_file() else "templates"
        if unit_source == "templates" and not (folder / "spike_templates.npy").is_file():
            raise FileNotFoundError(
                f"{folder}: neither spike_clusters.npy nor spike_templates.npy is present, so spikes cannot be "
                f"assigned to units. Files present: {present}."
            )
    name = "spike_clusters.npy" if unit_source == "clusters" else "spike_templates.npy"
    units = np.asarray(np.load(need(name, f"unit_source={unit_source!r} needs it"))).reshape(-1)
    if units.size != times.size:
        raise ValueError(f"{folder}: spike_times.npy has {times.size} spikes but {name} has {units.size}.")
    if times.size and times.dtype.kind not in "iu":
        raise ValueError(f"{folder}: spike_times.npy must hold integer sample indices; got dtype {times.dtype}.")
    times = times.astype(np.int64)
    units = units.astype(np.int64)
    amp = None
    if amplitudes is None:
        amplitudes = (folder / "amplitudes.npy").is_file()
    if amplitudes:
        amp = np.asarray(np.load(need("amplitudes.npy", "amplitudes=True needs it"))).reshape(-1)
        if amp.size != times.size:
            raise ValueError(f"{folder}: amplitudes.npy has {amp.size} values for {times.size} spikes.")
    # Order spikes as sorting_from_arrays does (time, then unit), so per-spike arrays follow.
    order = np.lexsort((units, times))
    times, units = times[order], units[order]
    sorting = sorting_from_arrays(times, units, sampling_frequency=fs, num_samples=num_samples)
    if amp is not None:
        sorting["amplitude"] = ("spike", amp[order].astype(np.float32))
    props = _cluster_tables(folder, unit_source)
    if props is not None:
        props = props.reindex(sorting.unit.values)
        for col in props.columns:
            values = props[col].to_numpy()
            if values.dtype == object:
                values = np.array(["" if (v is None or (isinstance(v, float) and np.isnan(v))) else str(v)
                                   for v in values])
            sorting[col] = ("unit", values)
    sorting.attrs["source"] = {"format": "kilosort", "path": str(folder.resolve()), "stream": unit_source}
    return sorting


def _sampling_frequency(folder: Path, given: float | None) -> float:
    from .recording import _check_sampling_frequency

    params_file = folder / "params.py"
    from_file = read_phy_params(params_file).get("sample_rate") if params_file.is_file() else None
    if given is None and from_file is None:
        raise ValueError(
            f"{folder}: no sampling rate: there is no params.py with sample_rate. Pass sampling_frequency=... "
            "(e.g. from the recording's .meta file)."
        )
    if given is not None and from_file is not None and not np.isclose(float(given), float(from_file)):
        raise ValueError(
            f"{folder}: sampling_frequency={given} disagrees with sample_rate={from_file} in params.py."
        )
    return _check_sampling_frequency(given if given is not None else from_file)


def _cluster_tables(folder: Path, unit_source: str) -> pd.DataFrame | None:
    # Cluster tables describe clusters; with template ids they only apply when they coincide
    # (true for a fresh Kilosort output, not after phy curation), so they are read for clusters only.
    if unit_source != "clusters":
        return None
    files = sorted(folder.glob("cluster_*.tsv"))
    info = folder / "cluster_info.tsv"
    if info in files:  # phy's combined table last: single-metric files win on conflicts
        files.remove(info)
        files.append(info)
    table = None
    for f in files:
        df = pd.read_csv(f, sep="\t")
        if "cluster_id" not in df.columns:
            if "id" in df.columns:
                df = df.rename(columns={"id": "cluster_id"})
            else:
                continue
        df = df.drop_duplicates("cluster_id").set_index("cluster_id")
        if table is None:
            table = df
        else:
            new = [c for c in df.columns if c not in table.columns]
            table = table.join(df[new], how="outer")
    if table is None:
        return None
    table.index = table.index.astype(np.int64)
    bad = [c for c in table.columns if not str(c).isidentifier()]
    return table.drop(columns=bad) if bad else table
