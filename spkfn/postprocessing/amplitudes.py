"""Per-spike amplitudes on each unit's best channel, streamed."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..core.chunks import map_chunks
from ..core.validate import check_choice
from ..io.recording import check_recording, num_samples
from ..io.sorting import check_sorting
from ..io.templates import check_templates
from .templates import select_spikes_per_unit

__all__ = ["spike_amplitudes", "best_channels"]


def best_channels(templates: xr.DataArray, *, peak_sign: str = "neg") -> tuple[np.ndarray, np.ndarray]:
    """Best channel of each unit (largest extremum of ``peak_sign``) and the extremum's sample
    offset from the spike time.

    >>> import numpy as np
    >>> from spkfn.io import templates_from_array
    >>> t = np.zeros((1, 10, 3), "float32"); t[0, 6, 2] = -5
    >>> best_channels(templates_from_array(t, sampling_frequency=1e4, nbefore=5))
    (array([2]), array([1]))
    """
    check_choice("peak_sign", peak_sign, ("neg", "pos", "both"))
    data = templates.values
    score = {"neg": -data, "pos": data, "both": np.abs(data)}[peak_sign]
    flat = score.reshape(score.shape[0], -1)
    idx = np.argmax(flat, axis=1)
    sample, channel = np.unravel_index(idx, score.shape[1:])
    return channel.astype(np.int64), (sample - int(templates.attrs["nbefore"])).astype(np.int64)


def spike_amplitudes(
    recording: xr.DataArray,
    sorting: xr.Dataset,
    templates: xr.DataArray,
    *,
    peak_sign: str = "neg",
    max_spikes_per_unit: int | None = None,
    seed: int = 0,
    n_jobs: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Amplitude (µV) of each spike: the trace on its unit's best channel at the template's extremum.

    Returns a float32 array aligned with the sorting's spikes; ``NaN`` for spikes not drawn (when
    ``max_spikes_per_unit`` is set) or too close to an edge.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array, sorting_from_arrays, templates_from_array
    >>> x = np.zeros((100, 2), "float32"); x[[20, 60], 1] = [-7, -9]
    >>> rec = from_array(x, sampling_frequency=1e4)
    >>> s = sorting_from_arrays([20, 60], [0, 0], sampling_frequency=1e4)
    >>> t = np.zeros((1, 10, 2), "float32"); t[0, 5, 1] = -8
    >>> spike_amplitudes(rec, s, templates_from_array(t, sampling_frequency=1e4, nbefore=5), progress=False).tolist()
    [-7.0, -9.0]
    """
    check_recording(recording)
    check_sorting(sorting)
    check_templates(templates)
    if templates.unit.values.tolist() != sorting.unit.values.tolist():
        raise ValueError("templates and sorting must have the same units in the same order.")
    chan, offset = best_channels(templates, peak_sign=peak_sign)
    n = num_samples(recording)
    si = sorting.sample_index.values
    ui = sorting.unit_index.values
    where = si + offset[ui] if si.size else si
    ok = (where >= 0) & (where < n)
    chosen = select_spikes_per_unit(sorting, max_spikes_per_unit=max_spikes_per_unit, seed=seed)
    mask = np.zeros(si.size, dtype=bool)
    mask[chosen] = True
    mask &= ok
    idx = np.flatnonzero(mask)
    order = np.argsort(where[idx], kind="stable")
    idx, t = idx[order], where[idx][order]
    c = chan[ui[idx]]
    gain = recording.coords["gain_to_uV"].values
    off = recording.coords["offset_to_uV"].values

    def _chunk(block, *, start, stop, left, right):
        a, b = np.searchsorted(t, [start, stop])
        rows = t[a:b] - start + left
        return block[rows, c[a:b]].astype(np.float64) * gain[c[a:b]] + off[c[a:b]]

    parts = map_chunks(_chunk, recording, n_jobs=n_jobs, progress=progress, desc="amplitudes")
    out = np.full(si.size, np.nan, dtype=np.float32)
    if idx.size:
        out[idx] = np.concatenate(parts).astype(np.float32)
    return out
