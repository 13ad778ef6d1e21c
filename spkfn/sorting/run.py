"""The sorter front door: :func:`run_sorter` validates the recording and parameters, runs a
registered sorter in a folder, and returns a sorting ``Dataset`` that records how it was made."""

from __future__ import annotations

import importlib
import json
import logging
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from ..core.chunks import resolve_n_jobs
from ..core.validate import check_int
from ..io.recording import check_recording, get_traces, has_geometry, num_samples
from ..io.sorting import check_sorting, sorting_from_arrays
from .params import SorterNotInstalledError, get_sorter_spec, is_installed, validate_params

__all__ = ["run_sorter", "SorterError", "check_recording_for_sorting", "empty_sorting"]

logger = logging.getLogger(__name__)


class SorterError(RuntimeError):
    """An external sorter failed; the message ends with the tail of the sorter's own log."""


def run_sorter(
    recording: xr.DataArray,
    *,
    sorter: str = "spkfn",
    params: dict | None = None,
    folder=None,
    seed: int = 0,
    n_jobs: int | None = None,
    progress: bool = True,
) -> xr.Dataset:
    """Spike-sort ``recording`` with a registered sorter and return the sorting.

    Parameters
    ----------
    recording : xarray.DataArray
        Recording (``("time", "channel")``) with channel geometry (``x``, ``y`` coords), at
        least the sorter's minimum duration long, not all constant. External sorters filter it
        themselves: pass the raw (or lightly preprocessed) traces.
    sorter : str, default "spkfn"
        A name in :data:`spkfn.sorting.SORTERS` (``"kilosort4"``, ``"mountainsort5"``, and the
        native ``"spkfn"`` when it is part of the build).
    params : dict, optional
        Parameters that differ from the defaults (:func:`spkfn.sorting.default_params`); checked
        against the registry (:func:`spkfn.sorting.describe_params`) before anything runs.
    folder : str or Path, optional
        Where the sorter writes its input, output and logs. Kept when given. When ``None`` a
        temporary folder is used and removed after success (kept, and named in the error, after a
        failure).
    seed : int, default 0
        Seed of every random step (passed to the sorter's own seed parameters).
    n_jobs : int, optional
        Threads (default: all cores this process may use).
    progress : bool, default True
        Show progress bars while writing the sorter's input.

    Returns
    -------
    xarray.Dataset
        Sorting (see ``docs/data_model.md``) with the unit properties the sorter gives (e.g.
        Kilosort's ``KSLabel``, ``ContamPct``, ``Amplitude``). attrs: ``sorter``,
        ``sorter_version``, ``sorter_params`` (JSON text of the parameters actually used, after
        defaults), ``seed``, ``n_jobs``, ``wall_time_s``, ``spkfn_version``, ``num_samples``,
        ``t_start_s``, ``dropped_channels`` (JSON list of channels left out as constant), and
        ``folder`` when one was given.

    Raises
    ------
    ValueError
        Unknown sorter or parameter, parameter out of range, recording without geometry, too
        short, or with every channel constant.
    SorterNotInstalledError
        The sorter's package is missing; the message says how to install it.
    SorterError
        The sorter failed; the message includes the tail of its own log.

    Notes
    -----
    Channels that are constant over a seeded sample of the recording (all-zero, or stuck at one
    value such as the ADC's limit) are left out of the sorter's input with a warning; when every
    channel is constant the call fails. When the sorter finds no spikes, an empty sorting is
    returned with a warning.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array, linear_probe
    >>> rec = from_array(np.zeros((60000, 4), "int16"), sampling_frequency=30000.0,
    ...                  probe=linear_probe(num_channels=4))
    >>> run_sorter(rec, sorter="kilosort4")
    Traceback (most recent call last):
    ...
    ValueError: every channel of the recording is constant (all-zero or saturated) ...
    """
    spec = get_sorter_spec(sorter)
    used = validate_params(sorter, params)
    seed = check_int("seed", seed, min_value=0, max_value=2**32 - 1)
    n_jobs = resolve_n_jobs(n_jobs)
    rec, dropped = check_recording_for_sorting(recording, min_duration_s=spec.min_duration_s, seed=seed)
    if spec.extra_checks is not None:
        spec.extra_checks(rec, used)
    if not is_installed(sorter):
        raise SorterNotInstalledError(spec.install_hint)
    if callable(spec.runner):
        runner = spec.runner
    else:
        module, _, func = spec.runner.partition(":")
        runner = getattr(importlib.import_module(module), func)

    own_folder = folder is None
    folder = Path(tempfile.mkdtemp(prefix=f"spkfn-{sorter}-")) if own_folder else Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    version = _dist_version(spec.dist_name)
    record = {
        "sorter": sorter, "sorter_version": version, "params": used, "seed": seed, "n_jobs": n_jobs,
        "spkfn_version": _dist_version("spkfn"), "num_samples": num_samples(rec),
        "num_channels": int(rec.sizes["channel"]), "dropped_channels": dropped,
        "sampling_frequency": float(rec.attrs["sampling_frequency"]),
    }
    _write_json(record, folder / "spkfn_run.json")
    logger.info("running %s %s in %s", sorter, version, folder)
    t0 = time.perf_counter()
    try:
        sorting = runner(rec, params=used, folder=folder, seed=seed, n_jobs=n_jobs, progress=progress)
    except SorterError as e:
        if own_folder:
            e.args = (f"{e.args[0]}\n(the sorter's folder is kept for inspection: {folder})",) + e.args[1:]
        raise
    except BaseException:
        if own_folder:  # not the sorter's failure (bad input found late, interrupt): nothing to inspect
            shutil.rmtree(folder, ignore_errors=True)
        raise
    wall = time.perf_counter() - t0
    check_sorting(sorting)
    if sorting.sizes["spike"] == 0:
        warnings.warn(f"{sorter} found no spikes in the recording; returning an empty sorting.", stacklevel=2)
    attrs = {
        **sorting.attrs,
        "sorter": sorter,
        "sorter_version": version,
        "sorter_params": json.dumps(_jsonable(used)),
        "seed": seed,
        "n_jobs": n_jobs,
        "wall_time_s": round(wall, 3),
        "spkfn_version": record["spkfn_version"],
        "num_samples": num_samples(rec),
        "t_start_s": float(rec.coords["time"].values[0]),
        "dropped_channels": json.dumps(dropped),
    }
    attrs.pop("sorter_output", None)
    if not own_folder:
        attrs["folder"] = str(folder)
    sorting = sorting.assign_attrs(attrs)
    _write_json({**record, "wall_time_s": attrs["wall_time_s"], "num_units": int(sorting.sizes["unit"]),
                 "num_spikes": int(sorting.sizes["spike"])}, folder / "spkfn_run.json")
    if own_folder:
        shutil.rmtree(folder, ignore_errors=True)
    return sorting


def check_recording_for_sorting(recording: xr.DataArray, *, min_duration_s: float = 1.0, seed: int = 0,
                                num_chunks: int = 10, chunk_duration_s: float = 0.5) -> tuple[xr.DataArray, list[str]]:
    """Check that a recording can be sorted; drop constant channels.

    The recording must have channel geometry, be at least ``min_duration_s`` long and hold
    finite values. Channels constant over ``num_chunks`` seeded chunks (all-zero, or stuck at
    one value such as the ADC limit) are dropped with a warning; if all are constant, a
    ``ValueError`` is raised.

    Returns
    -------
    recording : xarray.DataArray
        The recording, without the constant channels.
    dropped : list of str
        Ids of the dropped channels.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array, linear_probe
    >>> x = np.random.default_rng(0).normal(size=(30000, 3)).astype("float32")
    >>> x[:, 1] = 0
    >>> rec = from_array(x, sampling_frequency=30000.0, probe=linear_probe(num_channels=3))
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     out, dropped = check_recording_for_sorting(rec)
    >>> out.sizes["channel"], dropped
    (2, ['1'])
    """
    check_recording(recording)
    if not has_geometry(recording):
        raise ValueError(
            "the recording has no channel geometry (no 'x'/'y' coords), which every sorter needs; attach "
            "the probe with spkfn.io.set_probe(rec, probe) (e.g. spkfn.io.read_probe(path) or "
            "spkfn.io.linear_probe(num_channels=...))."
        )
    fs = float(recording.attrs["sampling_frequency"])
    n = num_samples(recording)
    if n < min_duration_s * fs:
        raise ValueError(
            f"the recording is too short to sort: {n} samples ({n / fs:.3g} s) but this sorter needs at least "
            f"{min_duration_s:g} s ({int(np.ceil(min_duration_s * fs))} samples). Sort a longer recording."
        )
    from ..preprocessing.utils import random_chunk_bounds

    size = max(1, min(n, int(round(chunk_duration_s * fs))))
    bounds = random_chunk_bounds(n, num_chunks=num_chunks, chunk_size=size, seed=seed)
    lo = hi = None
    for a, b in bounds:
        x = get_traces(recording, start=int(a), end=int(b))
        if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
            bad = recording.coords["channel"].values[~np.all(np.isfinite(x), axis=0)]
            raise ValueError(
                f"the recording has NaN or infinite values (channels {bad[:10].tolist()}); fix or drop those "
                "channels (rec.isel(channel=...)) before sorting."
            )
        cmin, cmax = x.min(axis=0), x.max(axis=0)
        lo = cmin if lo is None else np.minimum(lo, cmin)
        hi = cmax if hi is None else np.maximum(hi, cmax)
    flat = lo == hi
    ids = recording.coords["channel"].values.astype(str)
    if np.all(flat):
        raise ValueError(
            f"every channel of the recording is constant (all-zero or saturated) in {len(bounds)} sampled chunks; "
            "there is nothing to sort. Check the file, the channel selection and the gains."
        )
    dropped = ids[flat].tolist()
    if dropped:
        warnings.warn(
            f"{len(dropped)} channel(s) are constant (all-zero or saturated) and are left out of sorting: "
            f"{dropped[:20]}{' ...' if len(dropped) > 20 else ''}.",
            stacklevel=3,
        )
        recording = recording.isel(channel=np.flatnonzero(~flat))
    return recording, dropped


def empty_sorting(*, sampling_frequency: float, num_samples: int | None = None) -> xr.Dataset:
    """A sorting with no units and no spikes.

    >>> empty_sorting(sampling_frequency=30000.0).sizes["unit"]
    0
    """
    return sorting_from_arrays(np.zeros(0, np.int64), np.zeros(0, np.int64), sampling_frequency=sampling_frequency,
                               num_samples=num_samples)


def log_tail(path, *, max_lines: int = 30) -> str:
    """The last ``max_lines`` lines of a text file ('' when it does not exist)."""
    path = Path(path)
    if not path.is_file():
        return ""
    lines = path.read_text(errors="replace").splitlines()
    return "\n".join(lines[-max_lines:])


def _dist_version(dist: str | None) -> str:
    if dist is None:
        return ""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def _jsonable(v):
    """Replace non-finite floats by their text ("inf"): JSON has no infinity."""
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and not np.isfinite(v):
        return str(v)
    return v


def _write_json(obj: dict, path: Path) -> None:
    from ..core.atomic import write_json_atomic

    write_json_atomic(_jsonable(obj), path)
