"""Read an NWB ``ElectricalSeries`` as a lazy recording (pynwb + h5py, optional extra ``nwb``).

The series' HDF5 dataset is wrapped by dask without reading it: opening costs the file's
metadata only. Scaling follows the NWB schema: ``volts = data × conversion × channel_conversion
+ offset``; geometry comes from the electrodes table (``rel_x``/``rel_y``, the contact positions
on the probe, or else ``x``/``y``); groups from the electrode groups.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize

from ..core.chunks import default_chunk_size
from ..core.validate import check_int
from .recording import from_array

__all__ = ["read_nwb", "list_electrical_series"]

logger = logging.getLogger(__name__)


def _import_pynwb():
    try:
        import h5py  # noqa: F401
        import pynwb
    except ImportError as e:
        raise ImportError(
            f"reading NWB files needs the optional packages pynwb and h5py ({e}); install them with "
            "pip install 'spkfn[nwb]'."
        ) from e
    return pynwb


def _open_nwb(path: Path):
    pynwb = _import_pynwb()
    if not path.exists():
        raise FileNotFoundError(f"NWB file {str(path)!r} does not exist.")
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give the .nwb file (zarr-backed NWB is not supported).")
    try:
        with warnings.catch_warnings():
            # pynwb warns about deprecated fields of files written by older tools; not ours to fix.
            warnings.simplefilter("ignore")
            io = pynwb.NWBHDF5IO(str(path), mode="r", load_namespaces=True)
            nwbfile = io.read()
    except Exception as e:  # h5py/hdmf raise many types for a non-NWB or broken file
        raise ValueError(f"pynwb could not read {str(path)!r} as NWB: {type(e).__name__}: {e}.") from e
    return io, nwbfile


def _series(nwbfile) -> dict[str, object]:
    """ElectricalSeries of the file by path ("acquisition/Name", "processing/ecephys/LFP/Name")."""
    from pynwb.ecephys import ElectricalSeries

    found = {}
    for obj in nwbfile.objects.values():
        if isinstance(obj, ElectricalSeries):
            parts = []
            node = obj
            while node is not None and node is not nwbfile:
                parts.append(node.name)
                node = node.parent
            if obj.name in nwbfile.acquisition and nwbfile.acquisition[obj.name] is obj:
                key = f"acquisition/{obj.name}"
            else:
                key = "/".join(reversed(parts))
                if not key.startswith("processing/") and len(parts) > 1:
                    key = "processing/" + key
            found[key] = obj
    return dict(sorted(found.items()))


def _rate_and_start(es) -> tuple[float, float]:
    if es.rate is not None:
        return float(es.rate), float(es.starting_time or 0.0)
    ts = es.timestamps
    if ts is None or len(ts) < 2:
        raise ValueError(f"ElectricalSeries {es.name!r} has neither a rate nor two timestamps; cannot set a sampling rate.")
    head = np.asarray(ts[: min(len(ts), 100_000)], dtype=np.float64)
    dt = np.diff(head)
    period = float(np.median(dt))
    if period <= 0:
        raise ValueError(f"ElectricalSeries {es.name!r} has non-increasing timestamps.")
    if np.max(np.abs(dt - period)) > 0.01 * period:
        warnings.warn(
            f"ElectricalSeries {es.name!r} has irregular timestamps (period {period:g} s, largest deviation "
            f"{np.max(np.abs(dt - period)):g} s in the first {head.size} samples); the recording assumes a constant "
            f"rate of {1 / period:g} Hz from the first timestamp.", UserWarning, stacklevel=3)
    return 1.0 / period, float(head[0])


def list_electrical_series(path) -> pd.DataFrame:
    """The ElectricalSeries of an NWB file: path, number of samples and channels, rate, dtype.

    Examples
    --------
    Run from the repository root (the shared test data lives in ``../shared/data``):

    >>> t = list_electrical_series("../shared/data/nwb_noise4sam_neuroconv/Noise4Sam_test.nwb")
    >>> t[["series", "num_samples", "num_channels", "sampling_frequency"]].values.tolist()
    [['acquisition/ElectricalSeriesAP', 1155, 384, 30000.0]]
    """
    io, nwbfile = _open_nwb(Path(path))
    try:
        return _series_table(_series(nwbfile))
    finally:
        io.close()


def _series_table(series: dict) -> pd.DataFrame:
    rows = []
    for key, es in series.items():
        shape = es.data.shape
        try:
            fs, _ = _rate_and_start(es)
        except ValueError:
            fs = float("nan")
        rows.append({"series": key, "name": es.name, "num_samples": int(shape[0]),
                     "num_channels": int(shape[1]) if len(shape) > 1 else 1, "sampling_frequency": fs,
                     "dtype": str(es.data.dtype)})
    return pd.DataFrame(rows, columns=["series", "name", "num_samples", "num_channels", "sampling_frequency", "dtype"])


class _NWBTraces:
    """Array-like over an ElectricalSeries dataset; re-opens the file after unpickling."""

    ndim = 2

    def __init__(self, io, dataset, path: str, h5_path: str, shape, dtype):
        self._io = io
        self._dataset = dataset
        self._path = path
        self._h5_path = h5_path
        self.shape = (int(shape[0]), int(shape[1]) if len(shape) > 1 else 1)
        self._one_d = len(shape) == 1
        self.dtype = np.dtype(dtype)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_io"] = None
        state["_dataset"] = None
        return state

    def _data(self):
        if self._dataset is None:
            import h5py

            f = h5py.File(self._path, "r")
            self._io = f
            self._dataset = f[self._h5_path]
        return self._dataset

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (2 - len(key))
        tkey, ckey = key
        data = self._data()
        if not self._one_d and isinstance(ckey, slice) and isinstance(tkey, (slice, int, np.integer)):
            return np.asarray(data[tkey, ckey])
        # 1-D series, or channel lists (h5py's fancy indexing is restricted): read, then index in numpy
        block = np.asarray(data[tkey] if self._one_d else data[tkey, :])
        if self._one_d:
            block = block[..., None]
        return block[..., ckey]


def _electrode_columns(es) -> tuple[dict[str, np.ndarray], np.ndarray]:
    region = es.electrodes
    rows = np.asarray(region.data[:], dtype=np.int64)
    table = region.table
    cols = {}
    for name in table.colnames:
        if name in ("rel_x", "rel_y", "x", "y", "channel_name", "group_name", "group", "shank_ids", "contact_ids"):
            col = table[name]
            if name == "group":
                values = [getattr(g, "name", str(g)) for g in (col[int(i)] for i in rows)]
            else:
                full = np.asarray(col.data[:])
                values = full[rows]
            cols[name] = np.asarray(values)
    ids = np.asarray(table.id.data[:])[rows]
    return cols, ids


def read_nwb(path, *, electrical_series: str | None = None, probe=None, chunk_size: int | None = None) -> xr.DataArray:
    """Open an NWB ``ElectricalSeries`` as a lazy recording.

    Parameters
    ----------
    path : str or Path
        The ``.nwb`` file (HDF5).
    electrical_series : str, optional
        The series' name (``"ElectricalSeriesAP"``) or path (``"acquisition/ElectricalSeriesAP"``,
        ``"processing/ecephys/LFP/ElectricalSeriesLFP"``). Needed when the file holds several; the
        error lists them (as does :func:`list_electrical_series`).
    probe : probeinterface.Probe, ProbeGroup, str or Path, optional
        Probe to attach instead of the electrodes table's positions.
    chunk_size : int, optional
        Samples per dask chunk; default about 32 MB of float32 per chunk.

    Returns
    -------
    xarray.DataArray
        Recording in the stored dtype. ``channel``: the electrodes table's ``channel_name`` when
        present and unique, else the electrode ids. ``gain_to_uV`` = ``conversion ×
        channel_conversion × 1e6``, ``offset_to_uV`` = ``offset × 1e6``. ``x``/``y`` from ``rel_x``/
        ``rel_y`` (else ``x``/``y``) when present; ``group`` numbers the electrode groups in order
        of appearance, ``group_name`` names them. ``time`` starts at ``starting_time`` (or the first
        timestamp). ``attrs["source"]``: ``format`` "nwb", ``path``, ``stream`` (the series path).

    Raises
    ------
    ImportError
        pynwb or h5py is not installed (``pip install 'spkfn[nwb]'``).
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Not an NWB file, no ElectricalSeries, or an ambiguous/unknown ``electrical_series``.

    Notes
    -----
    The HDF5 dataset is read chunk by chunk (h5py serialises reads internally, so a compressed
    series decompresses on one thread at a time). Writing NWB is not supported yet.

    Examples
    --------
    Run from the repository root (the shared test data lives in ``../shared/data``):

    >>> rec = read_nwb("../shared/data/nwb_noise4sam_neuroconv/Noise4Sam_test.nwb")
    >>> rec.shape, float(rec.gain_to_uV[0]), round(float(rec.time[0]), 4)
    ((1155, 384), 2.34375, 5.9128)
    """
    path = Path(path)
    if chunk_size is not None:
        chunk_size = check_int("chunk_size", chunk_size, min_value=1)
    io, nwbfile = _open_nwb(path)
    series = _series(nwbfile)
    if not series:
        io.close()
        raise ValueError(f"{path.name} holds no ElectricalSeries (extracellular traces); nothing to read.")
    table = _series_table(series)
    if electrical_series is None:
        if len(series) > 1:
            io.close()
            raise ValueError(
                f"{path.name} holds {len(series)} ElectricalSeries:\n{table.to_string(index=False)}\n"
                f"Choose one with electrical_series=<name or path>, e.g. electrical_series={table['series'][0]!r}."
            )
        key = next(iter(series))
    else:
        name = str(electrical_series).strip("/")
        hits = [k for k in series if k == name] or [k for k in series if series[k].name == name]
        if len(hits) != 1:
            io.close()
            what = "matches several series" if hits else "is not in the file"
            raise ValueError(
                f"electrical_series={electrical_series!r} {what} of {path.name}:\n{table.to_string(index=False)}\n"
                "Give a name or path from this list."
            )
        key = hits[0]
    es = series[key]
    dataset = es.data
    shape = tuple(dataset.shape)
    if len(shape) not in (1, 2):
        io.close()
        raise ValueError(f"ElectricalSeries {key!r} has {len(shape)}-D data {shape}; expected (time, channel).")
    n_samples = int(shape[0])
    n_channels = int(shape[1]) if len(shape) == 2 else 1
    fs, t_start = _rate_and_start(es)
    conversion = float(es.conversion)
    offset = float(getattr(es, "offset", 0.0) or 0.0)
    chan_conv = np.ones(n_channels) if es.channel_conversion is None else np.asarray(es.channel_conversion[:], float)
    gain = conversion * chan_conv * 1e6
    offset_uV = np.full(n_channels, offset * 1e6)

    cols, electrode_ids = _electrode_columns(es)
    if len(electrode_ids) != n_channels:
        io.close()
        raise ValueError(
            f"ElectricalSeries {key!r} has {n_channels} channels but references {len(electrode_ids)} electrodes; "
            "the file is inconsistent."
        )
    if "channel_name" in cols and np.unique(cols["channel_name"].astype(str)).size == n_channels:
        ids = cols["channel_name"].astype(str)
    else:
        ids = np.asarray(electrode_ids).astype(str)
    locations = None
    for xname, yname in (("rel_x", "rel_y"), ("x", "y")):
        if xname in cols and yname in cols:
            loc = np.column_stack([cols[xname], cols[yname]]).astype(np.float64)
            if np.all(np.isfinite(loc)):
                locations = loc
                break
    group_names = None
    if "group_name" in cols:
        group_names = cols["group_name"].astype(str)
    elif "group" in cols:
        group_names = cols["group"].astype(str)
    group = None
    if group_names is not None:
        # number the groups in order of first appearance
        _, first, inverse = np.unique(group_names, return_index=True, return_inverse=True)
        group = np.argsort(np.argsort(first))[inverse].astype(np.int64)

    if chunk_size is None:
        chunk_size = default_chunk_size(n_channels, sampling_frequency=fs)
    chunk_size = max(1, min(chunk_size, max(n_samples, 1)))
    proxy = _NWBTraces(io, dataset, str(path.resolve()), dataset.name, shape, dataset.dtype)
    name = "nwb-" + tokenize(str(path.resolve()), path.stat().st_mtime_ns, key, chunk_size)
    data = da.from_array(proxy, chunks=(chunk_size, n_channels), lock=False, name=name, fancy=False, asarray=False,
                         meta=np.empty((0, 0), dtype=dataset.dtype))
    source = {"format": "nwb", "path": str(path.resolve()), "stream": key, "electrical_series": es.name}
    rec = from_array(data, sampling_frequency=fs, channel_ids=ids, gain_to_uV=gain, offset_to_uV=offset_uV,
                     channel_locations=locations if probe is None else None, group=group, t_start_s=t_start,
                     source=source)
    if group_names is not None:
        rec = rec.assign_coords(group_name=("channel", group_names))
    if "channel_name" in cols:
        rec = rec.assign_coords(channel_name=("channel", cols["channel_name"].astype(str)))
    if probe is not None:
        from .probes import read_probe, set_probe

        rec = set_probe(rec, read_probe(probe) if isinstance(probe, (str, Path)) else probe)
    return rec
