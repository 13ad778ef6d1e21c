"""Noise blocks: level, spatial correlation, band limits, block independence of windows."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from spkfn.generate._noise import NOISE_BLOCK_SAMPLES, NoiseModel, band_filter, spatial_mixing
from spkfn.io.probes import multi_shank_probe, neuropixels1_probe

B = NOISE_BLOCK_SAMPLES


def test_white_noise_level_and_independence():
    x = NoiseModel(seed=1, std_uV=np.full(16, 3.0)).window(0, 4 * B)
    np.testing.assert_allclose(x.std(axis=0), 3.0, rtol=0.02)
    c = np.corrcoef(x.T)
    assert np.abs(c[np.triu_indices(16, 1)]).max() < 0.03
    lag1 = (x[1:] * x[:-1]).mean(axis=0) / x.var(axis=0)
    assert np.abs(lag1).max() < 0.03


def test_windows_are_cut_from_fixed_blocks():
    m = NoiseModel(seed=2, std_uV=np.ones(3))
    full = np.concatenate([m.block(b) for b in range(3)])
    for a, b in [(0, 10), (B - 5, B + 5), (100, 3 * B), (2 * B, 3 * B)]:
        assert m.window(a, b).tobytes() == full[a:b].tobytes()
    assert not np.array_equal(m.block(0), NoiseModel(seed=3, std_uV=np.ones(3)).block(0))


def test_spatial_correlation_linear_probe_is_exact_exponential():
    loc = np.column_stack([np.zeros(12), np.arange(12) * 25.0])
    mix = spatial_mixing(loc, np.zeros(12, dtype=int), 50.0)
    # M M^T equals C for a chain (the Cholesky factor of an exponential kernel is bidiagonal)
    M = np.zeros((12, 12))
    for i in range(12):
        M[i, mix[1][mix[0][i]:mix[0][i + 1]]] = mix[2][mix[0][i]:mix[0][i + 1]]
    d = np.abs(loc[:, 1, None] - loc[None, :, 1])
    np.testing.assert_allclose(M @ M.T, np.exp(-d / 50.0), atol=1e-6)
    x = NoiseModel(seed=0, std_uV=np.full(12, 2.0), mixing=mix).window(0, 4 * B)
    c = np.corrcoef(x.T)
    np.testing.assert_allclose(np.diag(c, 1), np.exp(-0.5), atol=0.02)
    np.testing.assert_allclose(np.diag(c, 2), np.exp(-1.0), atol=0.02)
    np.testing.assert_allclose(x.std(axis=0), 2.0, rtol=0.02)


def test_spatial_correlation_2d_probe_close_to_target_and_unit_variance():
    p = neuropixels1_probe(num_channels=48)
    loc = p.contact_positions
    mix = spatial_mixing(loc, np.zeros(48, dtype=int), 30.0)
    M = np.zeros((48, 48))
    for i in range(48):
        M[i, mix[1][mix[0][i]:mix[0][i + 1]]] = mix[2][mix[0][i]:mix[0][i + 1]]
    d = np.sqrt(((loc[:, None] - loc[None]) ** 2).sum(-1))
    np.testing.assert_allclose(np.diag(M @ M.T), 1.0, atol=1e-6)
    np.testing.assert_allclose(M @ M.T, np.exp(-d / 30.0), atol=0.01)


def test_no_correlation_across_shanks():
    p = multi_shank_probe(num_shanks=2, num_channels_per_shank=4, shank_pitch_um=30.0)
    groups = np.repeat([0, 1], 4)
    mix = spatial_mixing(p.contact_positions, groups, 100.0)
    x = NoiseModel(seed=0, std_uV=np.ones(8), mixing=mix).window(0, 4 * B)
    c = np.corrcoef(x.T)
    assert np.abs(c[:4, 4:]).max() < 0.03
    assert c[0, 1] > 0.5


def test_band_limited_noise_keeps_level_and_follows_the_filter():
    fs = 30000.0
    band = band_filter((300.0, 6000.0), fs)
    m = NoiseModel(seed=4, std_uV=np.full(4, 5.0), band=band)
    x = m.window(0, 8 * B)
    np.testing.assert_allclose(x.std(axis=0), 5.0, rtol=0.03)
    f, pxx = scipy.signal.welch(x[:, 0], fs=fs, nperseg=4096)
    _, h = scipy.signal.sosfreqz(band[0], worN=f, fs=fs)
    expected = np.abs(h) ** 2 * band[1] ** 2 * 25.0 * 2 / fs  # one-sided PSD of the filtered noise
    for lo, hi in [(50, 150), (150, 300), (300, 1000), (1000, 3000), (3000, 6000), (6000, 10000), (10000, 14000)]:
        sel = (f >= lo) & (f < hi)
        assert pxx[sel].mean() == pytest.approx(expected[sel].mean(), rel=0.12), (lo, hi)
    assert pxx[(f > 20) & (f < 60)].mean() < 0.05 * pxx[(f > 1000) & (f < 4000)].mean()
    # still continuous across a block boundary (no step): the jump there is like any other
    jumps = np.abs(np.diff(x[:, 0]))
    assert jumps[B - 1] < 6 * jumps.std()


def test_band_filter_edges():
    assert band_filter((0.0, 15000.0), 30000.0) is None
    hp = band_filter((300.0, 15000.0), 30000.0)
    lp = band_filter((0.0, 3000.0), 30000.0)
    assert hp[0].shape[0] == 1 and lp[0].shape[0] == 1
    assert band_filter((300.0, 6000.0), 30000.0)[0].shape[0] == 2
