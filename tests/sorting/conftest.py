"""A small planted-spike recording for the sorting tests (the project's generator is written in
parallel; this stays self-contained): units with a biphasic waveform whose amplitude decays with
distance from the unit's position on a 2-column probe, Poisson trains with a refractory period,
Gaussian noise."""

from __future__ import annotations

import numpy as np
import pytest

from spkfn.io import from_array, sorting_from_arrays


def _probe_locations(n_channels: int) -> np.ndarray:
    rows = np.arange(n_channels) // 2
    return np.column_stack([np.where(np.arange(n_channels) % 2, 32.0, 0.0), rows * 20.0])


def planted_recording(*, n_channels: int = 32, duration_s: float = 20.0, n_units: int = 6, fs: float = 30000.0,
                      rate_hz: float = 5.0, amplitude_uv: float = 200.0, noise_uv: float = 10.0, seed: int = 0,
                      footprint_um: float = 25.0,
                      dtype: str = "int16"):
    """(recording, ground-truth sorting): int16 traces with gain 1 µV/bit (or float32 µV)."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * fs)
    loc = _probe_locations(n_channels)
    traces = rng.normal(0.0, noise_uv, size=(n, n_channels)).astype(np.float32)
    t = np.arange(-30, 60) / fs * 1000.0  # ms
    units_y = np.linspace(loc[:, 1].min() + 30, loc[:, 1].max() - 30, n_units)
    times_all, units_all = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for u in range(n_units):
        width = 0.25 + 0.1 * (u % 3)
        wave = -np.exp(-0.5 * (t / width) ** 2) + 0.35 * np.exp(-0.5 * ((t - 0.6) / (2 * width)) ** 2)
        pos = np.array([16.0, units_y[u]])
        d = np.linalg.norm(loc - pos, axis=1)
        spatial = np.exp(-d / footprint_um)
        template = (amplitude_uv * (0.8 + 0.4 * (u % 2))) * wave[:, None] * spatial[None, :]
        isi = rng.exponential(1.0 / rate_hz, size=int(duration_s * rate_hz * 2)) + 0.004
        st = (np.cumsum(isi) * fs).astype(np.int64)
        st = st[(st > 100) & (st < n - 100)]
        for s in st:  # test helper: a few hundred spikes, clarity over speed
            traces[s - 30:s + 60] += template
        times_all.append(st)
        units_all.append(np.full(st.size, u))
    if dtype == "int16":
        traces = np.round(traces).astype(np.int16)
    rec = from_array(traces, sampling_frequency=fs, channel_locations=loc)
    gt = sorting_from_arrays(np.concatenate(times_all), np.concatenate(units_all), sampling_frequency=fs,
                             num_samples=n)
    return rec, gt


@pytest.fixture(scope="session")
def make_planted():
    """The :func:`planted_recording` factory (fixtures avoid importing test modules)."""
    return planted_recording
