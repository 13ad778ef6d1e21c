"""MountainSort5 runner, through its Python API.

MountainSort5 takes a SpikeInterface recording object and returns a SpikeInterface sorting, so
this runner (and only this runner) uses SpikeInterface, imported lazily: it is a dependency of
MountainSort5 itself. SpikeInterface is used for nothing else than that hand-over: the traces are
band-pass filtered (Butterworth, zero-phase) and whitened (ZCA, MountainSort5 expects whitened
data, as SpikeInterface's own wrapper gives it) by spkfn.preprocessing's own steps, streamed to a float32
binary, which SpikeInterface's ``BinaryRecordingExtractor`` opens for MountainSort5. Keeping
SpikeInterface's part this small lets the runner work with the old SpikeInterface (0.100) that
resolves beside zarr 3.

MountainSort5: J. Magland et al., https://github.com/flatironinstitute/mountainsort5 (isosplit6
clustering: Magland & Barnett 2015, arXiv:1508.04841). Parameters:
:data:`spkfn.sorting.params.MOUNTAINSORT5_PARAMS`.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import numpy as np
import xarray as xr

from ...io.binary import write_binary
from ...io.recording import channel_locations, num_samples, scale_to_uV
from ...io.sorting import sorting_from_arrays
from ..run import SorterError, empty_sorting, log_tail

__all__ = ["run_mountainsort5"]

logger = logging.getLogger(__name__)


def run_mountainsort5(recording: xr.DataArray, *, params: dict, folder: Path, seed: int, n_jobs: int,
                      progress: bool = True) -> xr.Dataset:
    """Run MountainSort5 on ``recording`` (called by :func:`spkfn.sorting.run_sorter`).

    Output printed by MountainSort5 goes to ``folder/mountainsort5.log``; on failure the error
    includes its tail. The whitening matrix is estimated on random chunks drawn with ``seed``.
    """
    import mountainsort5 as ms5
    import spikeinterface.core as sic

    folder = Path(folder)
    fs = float(recording.attrs["sampling_frequency"])
    n_ch = int(recording.sizes["channel"])
    p = params  # checked by run_sorter (params._check_mountainsort5)
    prepared = _prepare(recording, params=p, seed=seed)
    bin_path = write_binary(prepared, folder / "recording.bin", n_jobs=n_jobs, progress=progress)
    log = folder / "mountainsort5.log"
    with open(log, "w") as stream, contextlib.redirect_stdout(stream), contextlib.redirect_stderr(_ToLog(stream)):
        try:
            si_rec = sic.BinaryRecordingExtractor(
                file_paths=[str(bin_path)], sampling_frequency=fs, dtype="float32", num_channels=n_ch,
                channel_ids=recording.coords["channel"].values.astype(str),
            )
            # SpikeInterface >= 0.103 deprecates set_channel_locations for a dummy probe
            if hasattr(si_rec, "set_dummy_probe_from_locations"):
                si_rec.set_dummy_probe_from_locations(channel_locations(recording))
            else:
                si_rec.set_channel_locations(channel_locations(recording))
            if p["scheme"] == "1":
                sp = ms5.Scheme1SortingParameters(
                    detect_threshold=p["detect_threshold"],
                    detect_channel_radius=p["scheme1_detect_channel_radius"],
                    detect_time_radius_msec=p["detect_time_radius_msec"],
                    detect_sign=p["detect_sign"],
                    snippet_T1=p["snippet_T1"], snippet_T2=p["snippet_T2"],
                    snippet_mask_radius=p["snippet_mask_radius"],
                    npca_per_channel=p["npca_per_channel"], npca_per_subdivision=p["npca_per_subdivision"],
                )
                si_sorting = ms5.sorting_scheme1(recording=si_rec, sorting_parameters=sp)
            else:
                sp = ms5.Scheme2SortingParameters(
                    phase1_detect_channel_radius=p["scheme2_phase1_detect_channel_radius"],
                    detect_channel_radius=p["scheme2_detect_channel_radius"],
                    phase1_detect_threshold=p["detect_threshold"],
                    phase1_detect_time_radius_msec=p["detect_time_radius_msec"],
                    detect_time_radius_msec=p["detect_time_radius_msec"],
                    phase1_npca_per_channel=p["npca_per_channel"],
                    phase1_npca_per_subdivision=p["npca_per_subdivision"],
                    detect_sign=p["detect_sign"], detect_threshold=p["detect_threshold"],
                    snippet_T1=p["snippet_T1"], snippet_T2=p["snippet_T2"],
                    snippet_mask_radius=p["snippet_mask_radius"],
                    max_num_snippets_per_training_batch=p["scheme2_max_num_snippets_per_training_batch"],
                    classifier_npca=None,
                    training_duration_sec=p["scheme2_training_duration_sec"],
                    training_recording_sampling_mode=p["scheme2_training_recording_sampling_mode"],
                )
                si_sorting = ms5.sorting_scheme2(recording=si_rec, sorting_parameters=sp)
        except Exception as e:
            stream.flush()
            if _no_spikes(e):
                logger.warning("MountainSort5 found no spikes (%s: %s)", type(e).__name__, e)
                return empty_sorting(sampling_frequency=fs, num_samples=num_samples(recording))
            err = e
        else:
            err = None
    if err is not None:
        raise SorterError(
            f"MountainSort5 failed: {type(err).__name__}: {err}\n--- last lines of {log} ---\n"
            f"{log_tail(log) or '(nothing logged)'}"
        ) from err
    return _from_si_sorting(si_sorting, fs=fs, n=num_samples(recording))


def _prepare(recording: xr.DataArray, *, params: dict, seed: int) -> xr.DataArray:
    """Lazily filtered and whitened float32 traces (µV before whitening), with spkfn's own steps."""
    from ...preprocessing import bandpass_filter, whiten

    fs = float(recording.attrs["sampling_frequency"])
    rec = scale_to_uV(recording, dtype="float32")
    if params["filter"]:
        rec = bandpass_filter(rec, freq_min_hz=params["freq_min_hz"], freq_max_hz=params["freq_max_hz"], order=5)
    if params["whiten"]:
        # global ZCA from 20 seeded chunks (shorter chunks on a short recording)
        rec, _ = whiten(rec, num_chunks=20, chunk_duration_s=min(0.5, 0.9 * num_samples(rec) / fs / 20), seed=seed)
    return rec


def _from_si_sorting(si_sorting, *, fs: float, n: int) -> xr.Dataset:
    ids = np.asarray(si_sorting.get_unit_ids())
    if ids.size == 0:
        return empty_sorting(sampling_frequency=fs, num_samples=n)
    vec = si_sorting.to_spike_vector()
    return sorting_from_arrays(vec["sample_index"], ids[vec["unit_index"]], sampling_frequency=fs, unit_ids=ids,
                               num_samples=n)


def _no_spikes(error: Exception) -> bool:
    text = str(error).lower()
    return "no spikes" in text or "0 spikes" in text


class _ToLog(io.TextIOBase):
    """Write to the log only (progress bars and warnings printed to stderr end up there too)."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, s):
        return self._stream.write(s)

    def flush(self):
        self._stream.flush()
