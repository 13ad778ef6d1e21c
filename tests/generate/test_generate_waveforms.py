"""The spike-shape model: aligned trough, narrow vs broad, spatial decay, taper."""

from __future__ import annotations

import numpy as np

from spkfn.generate._waveforms import draw_shape, spatial_gain, taper, unit_shape, unit_templates_at


def test_shape_trough_exactly_minus_one_at_zero():
    rng = np.random.default_rng(0)
    t = np.linspace(-1.0, 2.5, 35001)
    for i in range(40):
        s = draw_shape(rng, narrow=i % 2 == 0)
        w = unit_shape(t, s)
        assert unit_shape(np.array([0.0]), s)[0] == -1.0
        assert w.min() >= -1.0 and abs(t[np.argmin(w)]) <= 1e-4
        assert w.max() > 0.1  # a repolarisation peak


def test_narrow_units_have_shorter_trough_to_peak():
    rng = np.random.default_rng(1)
    t = np.linspace(0, 2.5, 2501)
    ttp = {"narrow": [], "broad": []}
    for i in range(60):
        s = draw_shape(rng, narrow=i % 3 == 0)
        ttp[s.cell_type].append(t[np.argmax(unit_shape(t, s))])
    assert max(ttp["narrow"]) < 0.45 < min(ttp["broad"])


def test_spatial_gain():
    np.testing.assert_allclose(spatial_gain(np.array([10.0, 20.0]), None), [0.1, 0.05])
    np.testing.assert_allclose(spatial_gain(np.array([80.0]), 80.0), [np.exp(-1) / 80])


def test_taper_keeps_the_trough_sample():
    w = taper(105, 30, 30000.0)
    assert w[30] == 1.0 and w[0] < 0.01 and w[-1] < 0.01 and np.all((w >= 0) & (w <= 1))


def test_templates_widen_and_lag_away_from_the_soma():
    s = draw_shape(np.random.default_rng(2), narrow=False)
    loc = np.column_stack([np.zeros(6), np.arange(6) * 40.0])
    t = unit_templates_at(np.array([[0.0, 0.0, 20.0]]), loc, shape=s, scale=100.0, nbefore=60, n_samples=240,
                          sampling_frequency=60000.0, decay_length_um=None)[0]
    assert np.argmin(t[:, 0]) == 60 and t[60, 0] == -100.0 / 20.0
    lags = np.argmin(t, axis=0)
    assert np.all(np.diff(lags) >= 0) and lags[-1] > lags[0]
    # full width at half trough grows with distance
    widths = [(t[:, c] < 0.5 * t[:, c].min()).sum() for c in range(6)]
    assert widths[-1] > widths[0]
