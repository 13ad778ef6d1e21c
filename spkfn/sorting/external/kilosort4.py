"""Kilosort4 runner: write the binary it reads, run it on CPU through its Python API, read back.

Kilosort4: Pachitariu, Sridhar, Pennington & Stringer (2024), "Spike sorting with Kilosort4",
Nature Methods 21, 914-921. Parameters: :data:`spkfn.sorting.params.KILOSORT4_PARAMS`.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np
import xarray as xr

from ...io.binary import write_binary
from ...io.phy import read_kilosort
from ...io.recording import channel_locations, num_samples, scale_to_uV
from ..run import SorterError, empty_sorting, log_tail

__all__ = ["run_kilosort4", "kilosort4_probe"]

logger = logging.getLogger(__name__)

#: run_kilosort() arguments (not settings) that the registry exposes as parameters.
_CALL_ARGS = ("do_CAR", "invert_sign")


def kilosort4_probe(recording: xr.DataArray) -> dict:
    """Kilosort4's probe dictionary for a recording (channel ``k`` of the binary is row ``k``).

    ``kcoords`` carries the recording's ``group`` (shank), so Kilosort keeps shanks apart.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array, linear_probe
    >>> rec = from_array(np.zeros((10, 3), "int16"), sampling_frequency=30000.0,
    ...                  probe=linear_probe(num_channels=3, pitch_um=20))
    >>> p = kilosort4_probe(rec)
    >>> p["chanMap"].tolist(), p["yc"].tolist(), p["n_chan"]
    ([0, 1, 2], [0.0, 20.0, 40.0], 3)
    """
    loc = channel_locations(recording)
    n = loc.shape[0]
    return {
        "chanMap": np.arange(n, dtype=np.int32),
        "xc": loc[:, 0].astype(np.float32),
        "yc": loc[:, 1].astype(np.float32),
        "kcoords": recording.coords["group"].values.astype(np.float32),
        "n_chan": n,
    }


def run_kilosort4(recording: xr.DataArray, *, params: dict, folder: Path, seed: int, n_jobs: int,
                  progress: bool = True) -> xr.Dataset:
    """Run Kilosort4 on ``recording`` (called by :func:`spkfn.sorting.run_sorter`, which validates).

    The traces are written to ``folder/recording.bin``: int16 recordings as they are (Kilosort's
    native format; its whitening makes the scale irrelevant), any other dtype as float32 in µV
    (``data_dtype="float32"``), a range Kilosort handles without ``scale``. Kilosort runs on CPU
    (``torch.device("cpu")``) with ``n_jobs`` threads and writes its phy folder and
    ``kilosort4.log`` to ``folder/kilosort4``; that folder is read back with
    :func:`spkfn.io.read_kilosort` (unit properties ``KSLabel``, ``ContamPct``, ``Amplitude``;
    per-spike ``amplitude``). ``cluster_init_seed`` defaults to ``5 + seed``. Torch's thread count
    and the global numpy / torch random states, which Kilosort changes, are restored afterwards.
    """
    import torch
    from kilosort import run_kilosort
    from kilosort.run_kilosort import close_logger

    folder = Path(folder)
    fs = float(recording.attrs["sampling_frequency"])
    if recording.dtype == np.int16:
        data, data_dtype = recording, "int16"
    else:
        data, data_dtype = scale_to_uV(recording, dtype="float32"), "float32"
    bin_path = write_binary(data, folder / "recording.bin", n_jobs=n_jobs, progress=progress)
    settings = {k: v for k, v in params.items() if k not in _CALL_ARGS}
    if settings["cluster_init_seed"] is None:
        settings["cluster_init_seed"] = 5 + int(seed)
    settings["n_chan_bin"] = int(recording.sizes["channel"])
    settings["fs"] = fs
    results = folder / "kilosort4"
    results.mkdir(parents=True, exist_ok=True)
    log = results / "kilosort4.log"
    threads = torch.get_num_threads()
    np_state = np.random.get_state()  # noqa: NPY002 - Kilosort seeds the legacy global RNG; restore it
    try:
        with torch.random.fork_rng(devices=[]):
            run_kilosort(
                settings=settings,
                probe=kilosort4_probe(recording),
                filename=bin_path,
                results_dir=results,
                data_dtype=data_dtype,
                do_CAR=params["do_CAR"],
                invert_sign=params["invert_sign"],
                device=torch.device("cpu"),
                torch_thread_lim=int(n_jobs),
            )
    except Exception as e:
        tail = log_tail(log)
        if _no_spikes(e, tail):
            logger.warning("Kilosort4 found no spikes (%s: %s)", type(e).__name__, e)
            return empty_sorting(sampling_frequency=fs, num_samples=num_samples(recording))
        hint = ""
        if "n_samples=" in str(e) and "n_clusters=" in str(e):
            hint = ("\nKilosort4 found too few threshold crossings to learn its templates: the recording holds few "
                    "or no spikes, or is short (try nskip=1 to learn from every batch, or a lower Th_single_ch).")
        raise SorterError(
            f"Kilosort4 failed: {type(e).__name__}: {e}{hint}\n--- last lines of {log} ---\n"
            f"{tail or '(no log written)'}"
        ) from e
    finally:
        torch.set_num_threads(threads)
        np.random.set_state(np_state)  # noqa: NPY002
        with contextlib.suppress(Exception):
            close_logger()
    if not (results / "spike_times.npy").is_file():
        return empty_sorting(sampling_frequency=fs, num_samples=num_samples(recording))
    sorting = read_kilosort(results, sampling_frequency=fs, num_samples=num_samples(recording))
    sorting.attrs.pop("source", None)
    return sorting


def _no_spikes(error: Exception, log: str) -> bool:
    """Kilosort4 stops with an error when it finds nothing; recognise those cases.

    "No spikes detected" is Kilosort's own message; "Found array with 0 sample(s)" is scikit-learn's,
    when Kilosort learns its templates from zero threshold crossings.
    """
    text = str(error).lower()
    return "no spikes detected" in text or "found array with 0 sample(s)" in text
