"""Small planted ground truth for detection tests: units are point sources (amplitude ∝ 1/distance)
with known positions, spike times and peak channels, over Gaussian noise of known level."""

from __future__ import annotations

import numpy as np
import pytest

from spkfn.io import from_array


def waveform(fs: float, *, ms_before: float = 1.0, ms_after: float = 1.5) -> tuple[np.ndarray, int]:
    """A biphasic extracellular spike shape, trough -1 at index ``nbefore``."""
    nb = int(round(ms_before * fs / 1000))
    na = int(round(ms_after * fs / 1000))
    t = (np.arange(-nb, na)) / fs * 1000.0  # ms
    w = -np.exp(-(t ** 2) / (2 * 0.12 ** 2)) + 0.35 * np.exp(-((t - 0.45) ** 2) / (2 * 0.25 ** 2))
    w = w / -w[nb]
    return w, nb


def make_probe(n_rows: int = 16, *, pitch_um: float = 20.0, col_um: float = 32.0) -> np.ndarray:
    """Two-column probe: ``2 * n_rows`` contacts, ordered by depth."""
    y = np.repeat(np.arange(n_rows) * pitch_um, 2)
    x = np.tile([0.0, col_um], n_rows)
    return np.column_stack([x, y])


def make_recording(*, duration_s: float = 10.0, fs: float = 30000.0, n_rows: int = 16, n_units: int = 8,
                   noise_uV: float = 10.0, amplitudes_uV=(60.0, 200.0), rate_hz: float = 4.0,
                   z_um=(10.0, 30.0), seed: int = 0, dtype="float32", gain: float = 1.0,
                   refractory_ms: float = 4.0, footprint: str = "exponential", decay_um: float = 25.0):
    """Returns ``rec, gt`` where ``gt`` is a dict: ``times`` (sorted samples), ``units``,
    ``positions`` (n_units, 3) µm, ``best_channel`` (n_units,), ``peak_amplitude`` (n_units,) µV
    (signed value at the trough on the best channel), ``templates`` (n_units, T, C) µV, ``nbefore``,
    ``noise_uV``."""
    rng = np.random.default_rng(seed)
    loc = make_probe(n_rows)
    n_ch = loc.shape[0]
    n = int(duration_s * fs)
    w, nb = waveform(fs)
    T = w.size
    lo, hi = loc.min(0), loc.max(0)
    pos = np.column_stack([rng.uniform(lo[0] - 5, hi[0] + 5, n_units),
                           rng.uniform(lo[1] + 20, hi[1] - 20, n_units),
                           rng.uniform(z_um[0], z_um[1], n_units)])
    amp = rng.uniform(amplitudes_uV[0], amplitudes_uV[1], n_units)
    r = np.sqrt(((loc[None, :, :] - pos[:, None, :2]) ** 2).sum(-1) + pos[:, 2:3] ** 2)  # (U, C)
    # "monopolar": amplitude ∝ 1/r (the localisation model); "exponential": exp(-r/decay), steeper
    # and closer to real footprints (SpikeInterface's generator uses it too).
    f = 1.0 / r if footprint == "monopolar" else np.exp(-r / decay_um)
    foot = f / f.max(1, keepdims=True) * amp[:, None]  # peak |amp| on the best channel
    templates = foot[:, None, :] * w[None, :, None]  # (U, T, C)
    traces = rng.normal(scale=noise_uV, size=(n, n_ch)).astype(np.float64)
    times, units = [], []
    margin = T + 10
    for u in range(n_units):
        k = rng.poisson(rate_hz * duration_s)
        isi = rng.exponential(1.0 / rate_hz, size=k * 2) * fs + refractory_ms * fs / 1000
        t = (margin + np.cumsum(isi)).astype(np.int64)
        t = t[t < n - margin]
        times.append(t)
        units.append(np.full(t.size, u))
    times = np.concatenate(times)
    units = np.concatenate(units)
    order = np.argsort(times, kind="stable")
    times, units = times[order], units[order]
    idx = times[:, None] - nb + np.arange(T)[None, :]
    np.add.at(traces, idx, templates[units])
    best = np.argmax(np.abs(templates).max(1), axis=1)
    if np.dtype(dtype).kind == "i":
        data = np.round(traces / gain).astype(dtype)
    else:
        data = (traces / gain).astype(dtype)
    rec = from_array(data, sampling_frequency=fs, channel_locations=loc, gain_to_uV=gain)
    gt = {"times": times, "units": units, "positions": pos, "best_channel": best,
          "peak_amplitude": templates[np.arange(n_units), nb, best], "templates": templates, "nbefore": nb,
          "noise_uV": noise_uV, "locations": loc}
    return rec, gt


def match(peaks_samples, peaks_channels, gt_times, gt_channels, *, tol: int, locations=None,
          max_distance_um: float = 60.0):
    """One-to-one greedy matching of peaks to ground-truth spikes within ``tol`` samples (and, with
    ``locations``, peak channel within ``max_distance_um`` of the spike's best channel).

    Returns a boolean per GT spike (matched) and per peak (matched)."""
    order = np.argsort(gt_times, kind="stable")
    g = gt_times[order]
    gm = np.zeros(g.size, bool)
    pm = np.zeros(peaks_samples.size, bool)
    for p in np.argsort(peaks_samples, kind="stable"):
        s = peaks_samples[p]
        a = np.searchsorted(g, s - tol, "left")
        b = np.searchsorted(g, s + tol, "right")
        best, bd = -1, None
        for k in range(a, b):
            if gm[k]:
                continue
            if locations is not None:
                d = np.linalg.norm(locations[peaks_channels[p]] - locations[gt_channels[order[k]]])
                if d > max_distance_um:
                    continue
            dt = abs(int(g[k]) - int(s))
            if bd is None or dt < bd:
                best, bd = k, dt
        if best >= 0:
            gm[best] = True
            pm[p] = True
    out = np.zeros(g.size, bool)
    out[order] = gm
    return out, pm


@pytest.fixture
def synth():
    return make_recording


@pytest.fixture
def spike_waveform():
    return waveform


@pytest.fixture
def matcher():
    return match


@pytest.fixture(scope="session")
def generated():
    """A sparse-firing spkfn.generate recording (20 s, 96 Neuropixels channels, 15 units at 1-5 Hz,
    5 µV band-limited noise), materialised once per session, with its ground truth as arrays."""
    from spkfn.generate import ground_truth_recording
    from spkfn.io import channel_locations

    rec, gt, _ = ground_truth_recording(duration_s=20.0, probe="neuropixels1", num_channels=96, num_units=15,
                                        firing_rate_hz=(1.0, 5.0), seed=3)
    rec = rec.compute()
    units = gt.unit_index.values
    return rec, {
        "times": gt.sample_index.values, "units": units, "best_channel": gt.best_channel.values,
        "snr": gt.snr.values, "positions": np.column_stack([gt.x_um.values, gt.y_um.values, gt.z_um.values]),
        "locations": channel_locations(rec),
    }
