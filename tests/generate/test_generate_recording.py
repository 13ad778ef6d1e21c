"""Planted-truth tests of spkfn.generate.ground_truth_recording."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest

from spkfn.generate import drift_displacement, ground_truth_recording, poisson_spike_trains
from spkfn.generate._waveforms import spatial_gain
from spkfn.io import (
    channel_locations,
    check_recording,
    check_sorting,
    check_templates,
    get_probe,
    spike_trains,
)
from spkfn.io.probes import multi_shank_probe, tetrode_probe


def _isolated(gt, n_t):
    """Mask of spikes with no other spike (any unit) within ``n_t`` samples."""
    s = gt.sample_index.values
    gap_prev = np.diff(s, prepend=-10 * n_t)
    gap_next = np.diff(s, append=s[-1] + 10 * n_t)
    return (gap_prev >= n_t) & (gap_next >= n_t)


def _distances(gt, loc, displacement=None):
    pos = np.column_stack([gt.x_um.values, gt.y_um.values, gt.z_um.values])
    if displacement is not None:
        pos = pos.copy()
        pos[:, 1] += displacement
    return np.sqrt(((pos[:, None, :2] - loc[None]) ** 2).sum(-1) + pos[:, None, 2] ** 2)


@pytest.fixture(scope="module")
def small():
    return ground_truth_recording(duration_s=4.0, num_units=12, seed=3)


def test_layout(small):
    rec, gt, templates = small
    check_recording(rec)
    check_sorting(gt)
    check_templates(templates)
    assert isinstance(rec.data, da.Array)
    assert rec.dtype == np.float32
    assert rec.sizes["channel"] == 32 and rec.sizes["time"] == 120000
    assert gt.attrs["num_samples"] == 120000
    assert get_probe(rec).get_contact_count() == 32
    for name in ("x_um", "y_um", "z_um", "amplitude_uV", "snr", "firing_rate_hz", "best_channel",
                 "best_channel_id", "cell_type", "trough_to_peak_ms"):
        assert gt[name].dims == ("unit",)
    assert gt.displacement_um.dims == ("spike",)
    params = json.loads(gt.attrs["generator_params"])
    assert params["seed"] == 3 and params["num_units"] == 12
    assert json.loads(gt.attrs["drift"]) is None
    np.testing.assert_array_equal(templates.coords["y"].values, rec.coords["y"].values)


def test_template_trough_on_best_channel_at_nbefore(small):
    _, gt, templates = small
    nb = templates.attrs["nbefore"]
    t = templates.values
    best = gt.best_channel.values
    for u in range(t.shape[0]):
        assert int(np.argmin(t[u, :, best[u]])) == nb
        # best channel = deepest trough across channels
        assert int(np.argmax(-t[u].min(axis=0))) == best[u]
    np.testing.assert_allclose(gt.amplitude_uV.values, -t[np.arange(t.shape[0]), nb, best], rtol=1e-6)
    np.testing.assert_allclose(gt.snr.values, gt.amplitude_uV.values / 5.0)


def test_best_channel_is_closest_contact_and_decay_law(small):
    rec, gt, templates = small
    loc = channel_locations(rec)
    d = _distances(gt, loc)
    best = gt.best_channel.values
    nb = templates.attrs["nbefore"]
    np.testing.assert_allclose(d[np.arange(d.shape[0]), best], d.min(axis=1))
    # trough on each contact / trough on the best = g(d) / g(d_min), with g = exp(-d/80)/d: exact for
    # the continuous waveform; a sampled trough (delayed, widened) is at most one sample off it
    for u in range(d.shape[0]):
        trough = -templates.values[u].min(axis=0)
        stored = trough > 0
        assert stored.sum() >= 3
        expected = spatial_gain(d[u], 80.0) / spatial_gain(d[u].min(), 80.0) * trough[best[u]]
        assert np.all(trough[stored] <= expected[stored] * (1 + 1e-5))
        assert np.all(trough[stored] >= expected[stored] * 0.85)
        assert np.all(expected[~stored] < 0.0101 * trough[best[u]])
    assert nb == 30


def test_trough_at_planted_sample_in_traces():
    rec, gt, templates = ground_truth_recording(duration_s=3.0, num_units=10, noise_uV=0.01, seed=5)
    x = rec.values
    nb, n_t = templates.attrs["nbefore"], templates.sizes["sample"]
    iso = _isolated(gt, n_t)
    assert iso.sum() > 100
    best = gt.best_channel.values
    for s, u in zip(gt.sample_index.values[iso], gt.unit_index.values[iso], strict=True):
        w = x[s - nb:s - nb + n_t, best[u]]
        assert int(np.argmin(w)) == nb
    # an isolated spike is its template times its amplitude scale (plus 0.01 µV noise)
    for i in np.flatnonzero(iso)[:20]:
        s, u = gt.sample_index.values[i], gt.unit_index.values[i]
        expected = gt.amplitude_scale.values[i] * templates.values[u]
        np.testing.assert_allclose(x[s - nb:s - nb + n_t], expected, atol=0.06)


def test_amplitude_jitter():
    gt = ground_truth_recording(duration_s=60.0, num_units=4, firing_rate_hz=20.0, seed=1)[1]
    a = gt.amplitude_scale.values
    assert a.mean() == pytest.approx(1.0, abs=0.005) and a.std() == pytest.approx(0.05, rel=0.1)
    assert a.min() >= 1 - 3 * 0.05 - 1e-6 and a.max() <= 1 + 3 * 0.05 + 1e-6
    gt0 = ground_truth_recording(duration_s=2.0, num_units=4, amplitude_jitter=0.0, seed=1)[1]
    np.testing.assert_array_equal(gt0.amplitude_scale.values, 1.0)


def test_refractory_period_respected():
    gt = ground_truth_recording(duration_s=20.0, num_units=6, firing_rate_hz=(80.0, 120.0),
                                refractory_ms=5.0, seed=2)[1]
    fs = gt.attrs["sampling_frequency"]
    for train in spike_trains(gt).values():
        isi = np.diff(train)
        assert isi.min() >= 5.0e-3 * fs
        # the dead time is sharp: the shortest intervals are exactly the refractory period
        assert isi.min() <= 5.0e-3 * fs + 2


def test_rates_match_drawn_rates_on_long_trains():
    gt = ground_truth_recording(duration_s=2000.0, num_units=8, firing_rate_hz=(2.0, 30.0), seed=7)[1]
    T = gt.attrs["num_samples"] / gt.attrs["sampling_frequency"]
    counts = np.array([t.size for t in spike_trains(gt).values()])
    expected = gt.firing_rate_hz.values * T
    # counts of a renewal process with CV <= 1: within 5 sd of the mean
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected) + 2)
    assert np.all((gt.firing_rate_hz.values >= 2.0) & (gt.firing_rate_hz.values <= 30.0))


def test_same_trains_as_poisson_spike_trains():
    _, gt, templates = ground_truth_recording(duration_s=5.0, num_units=4, seed=11)
    s = poisson_spike_trains(num_units=4, duration_s=5.0, seed=11)
    np.testing.assert_array_equal(gt.firing_rate_hz.values, s.firing_rate_hz.values)
    nb, n_t = templates.attrs["nbefore"], templates.sizes["sample"]
    n = gt.attrs["num_samples"]
    for u, train in spike_trains(s).items():
        inner = train[(train >= nb) & (train <= n - (n_t - nb))]
        np.testing.assert_array_equal(spike_trains(gt)[u], inner)


def test_same_seed_identical_bytes_and_different_seeds_differ():
    kw = dict(duration_s=1.5, num_units=6, noise_spatial_corr_um=30.0)
    a = ground_truth_recording(seed=4, **kw)
    b = ground_truth_recording(seed=4, **kw)
    c = ground_truth_recording(seed=5, **kw)
    assert a[0].values.tobytes() == b[0].values.tobytes()
    np.testing.assert_array_equal(a[1].sample_index.values, b[1].sample_index.values)
    assert a[2].values.tobytes() == b[2].values.tobytes()
    assert a[0].values.tobytes() != c[0].values.tobytes()
    assert not np.array_equal(a[1].x_um.values, c[1].x_um.values)


@pytest.mark.parametrize("options", [
    {},
    {"noise_spatial_corr_um": 40.0, "noise_band_hz": None},
    {"dtype": "int16", "drift": {"kind": "random_walk", "amplitude_um": 15.0, "interval_s": 0.2}},
])
def test_chunking_does_not_change_a_byte(options):
    kw = dict(duration_s=2.2, num_units=15, firing_rate_hz=(20.0, 60.0), seed=9, **options)
    ref = ground_truth_recording(**kw)[0].values
    for chunk in (1000, 7777, 16384 * 3):
        rec = ground_truth_recording(chunk_size=chunk, **kw)[0]
        assert rec.data.chunks[0][0] == chunk
        assert rec.values.tobytes() == ref.tobytes()
        for a, b in [(0, 1), (999, 1003), (12345, 40000), (16383, 16385), (60000, 66000)]:
            assert rec.isel(time=slice(a, b)).values.tobytes() == ref[a:b].tobytes()


def test_snr_spread_default_amplitudes():
    for seed in range(4):
        snr = ground_truth_recording(duration_s=0.5, num_units=20, seed=seed)[1].snr.values
        assert 2 <= (snr < 3).sum() <= 4            # a handful barely detectable
        assert ((snr >= 4) & (snr <= 20)).sum() >= 10  # most
        assert (snr > 20).sum() >= 2                # a few large
        assert snr.min() >= 10 / 5 * 0.999 and snr.max() <= 150 / 5 * 1.001


def test_int16_matches_float_within_rounding():
    kw = dict(duration_s=1.0, num_units=8, seed=1)
    f = ground_truth_recording(**kw)[0]
    i = ground_truth_recording(dtype="int16", gain_to_uV=0.5, **kw)[0]
    assert i.dtype == np.int16
    np.testing.assert_array_equal(i.coords["gain_to_uV"].values, 0.5)
    diff = np.abs(i.values.astype(np.float64) * 0.5 - f.values)
    assert diff.max() <= 0.25 + 1e-4
    d = ground_truth_recording(dtype="int16", **kw)[0]
    assert float(d.coords["gain_to_uV"].values[0]) == pytest.approx(0.195)


def test_int16_clips():
    rec = ground_truth_recording(duration_s=0.5, num_units=3, amplitude_uV=(100.0, 150.0), dtype="int16",
                                 gain_to_uV=0.001, seed=0)[0]
    x = rec.values
    assert x.min() == -32768 and x.max() == 32767


def test_noise_level_and_per_channel_noise():
    noise = np.linspace(2.0, 8.0, 32)
    rec, gt, _ = ground_truth_recording(duration_s=3.0, num_units=1, amplitude_uV=(1e-3, 1e-3), noise_uV=noise,
                                        seed=0)
    std = rec.values.std(axis=0)
    np.testing.assert_allclose(std, noise, rtol=0.02)
    assert gt.snr.values[0] == pytest.approx(1e-3 / noise[gt.best_channel.values[0]], rel=1e-4)


def test_rigid_drift_moves_best_channel():
    drift = {"kind": "linear", "amplitude_um": 150.0}
    rec, gt, templates = ground_truth_recording(duration_s=6.0, num_units=6, noise_uV=0.01, drift=drift, seed=2,
                                                unit_depth_range_um=(200.0, 500.0))
    fs = gt.attrs["sampling_frequency"]
    nb, n_t = templates.attrs["nbefore"], templates.sizes["sample"]
    loc = channel_locations(rec)
    s, u = gt.sample_index.values, gt.unit_index.values
    true = drift_displacement(gt, times_s=s / fs, depths_um=[0.0])[:, 0]   # rigid: same at all depths
    np.testing.assert_allclose(true, 150.0 * s / gt.attrs["num_samples"])
    np.testing.assert_allclose(gt.displacement_um.values, np.rint(true), atol=1e-6)
    x = rec.values
    iso = np.flatnonzero(_isolated(gt, n_t))
    moved = 0
    for i in iso:
        d = _distances(gt.isel(unit=[u[i]]), loc, displacement=gt.displacement_um.values[i])[0]
        c = int(np.argmin(d))
        w = x[s[i] - nb:s[i] - nb + n_t]
        assert int(np.argmax(-w.min(axis=0))) == c or np.isclose(d[int(np.argmax(-w.min(axis=0)))], d[c])
        assert int(np.argmin(w[:, c])) == nb
        moved += c != gt.best_channel.values[u[i]]
    assert moved > len(iso) // 3


def test_nonrigid_drift_per_unit_displacement():
    drift = [{"kind": "sine", "amplitude_um": 20.0, "period_s": 4.0, "depth_gradient": 1.0}]
    rec, gt, _ = ground_truth_recording(duration_s=4.0, num_units=8, drift=drift, seed=3, drift_step_um=0.5)
    fs = gt.attrs["sampling_frequency"]
    y = rec.coords["y"].values
    s, u = gt.sample_index.values, gt.unit_index.values
    for k in range(8):
        sel = u == k
        d = drift_displacement(gt, times_s=s[sel] / fs, depths_um=[gt.y_um.values[k]])[:, 0]
        scale = 1 + (gt.y_um.values[k] - 0.5 * (y.min() + y.max())) / (y.max() - y.min())
        np.testing.assert_allclose(d, 20.0 * scale * np.sin(2 * np.pi * s[sel] / fs / 4.0), atol=1e-9)
        np.testing.assert_allclose(gt.displacement_um.values[sel], np.rint(d / 0.5) * 0.5, atol=1e-5)


def test_sparsity_mask():
    _, _, templates = ground_truth_recording(duration_s=0.5, num_units=5, sparsity_fraction=0.2, seed=0)
    peak = np.abs(templates.values).max(axis=1)
    np.testing.assert_array_equal(templates.sparsity.values, peak >= 0.2 * peak.max(axis=1, keepdims=True))


def test_probes_and_shanks():
    rec, gt, _ = ground_truth_recording(duration_s=0.5, num_units=12, probe="multi_shank", seed=1)
    assert rec.sizes["channel"] == 64
    groups = rec.coords["group"].values[gt.best_channel.values]
    assert np.unique(groups).size >= 3
    np.testing.assert_array_equal(gt.group.values, groups)
    rec, gt, _ = ground_truth_recording(duration_s=0.5, num_units=3, probe=tetrode_probe(), seed=1)
    assert rec.sizes["channel"] == 4
    rec, gt, _ = ground_truth_recording(duration_s=0.5, num_units=5, probe="neuropixels1", num_channels=96, seed=1)
    loc = channel_locations(rec)
    d = _distances(gt, loc)
    np.testing.assert_allclose(d[np.arange(5), gt.best_channel.values], d.min(axis=1))
    p = multi_shank_probe(num_shanks=2, num_channels_per_shank=8)
    assert ground_truth_recording(duration_s=0.5, num_units=2, probe=p, num_channels=16)[0].sizes["channel"] == 16


def test_an_hour_of_neuropixels_is_lazy():
    rec, gt, _ = ground_truth_recording(duration_s=3600.0, probe="neuropixels1", num_units=5,
                                        firing_rate_hz=(1.0, 2.0), seed=0)
    assert rec.nbytes > 150e9 and isinstance(rec.data, da.Array)
    w = rec.isel(time=slice(50_000_000, 50_000_100)).values
    assert w.shape == (100, 384) and np.isfinite(w).all()


def test_zarr_round_trip(tmp_path):
    from spkfn.io import read_zarr, write_zarr

    rec, gt, templates = ground_truth_recording(duration_s=0.5, num_units=3, seed=0)
    back = read_zarr(write_zarr(gt, tmp_path / "gt.zarr", progress=False))
    np.testing.assert_array_equal(back.sample_index.values, gt.sample_index.values)
    assert back.cell_type.values.tolist() == gt.cell_type.values.tolist()
    np.testing.assert_allclose(drift_displacement(back, times_s=[0.1], depths_um=[0.0]), 0.0)
    r = read_zarr(write_zarr(rec, tmp_path / "rec.zarr", progress=False))
    assert r.values.tobytes() == rec.values.tobytes()


@pytest.mark.parametrize("kwargs, match", [
    ({"duration_s": 0.0}, "duration_s"),
    ({"duration_s": -1.0}, "duration_s"),
    ({"duration_s": 1e-4}, "duration_s"),
    ({"sampling_frequency": 0.0}, "sampling_frequency"),
    ({"noise_uV": 0.0}, "noise_uV"),
    ({"noise_uV": -1.0}, "noise_uV"),
    ({"noise_uV": [1.0, 2.0]}, "noise_uV"),
    ({"firing_rate_hz": (10.0, 1.0)}, "firing_rate_hz"),
    ({"firing_rate_hz": (0.0, 1.0)}, "firing_rate_hz"),
    ({"refractory_ms": 60.0, "firing_rate_hz": (1.0, 20.0)}, "refractory_ms"),
    ({"refractory_ms": -1.0}, "refractory_ms"),
    ({"num_units": 0}, "num_units"),
    ({"num_units": 2.5}, "num_units"),
    ({"num_channels": 16, "probe": tetrode_probe()}, "num_channels"),
    ({"num_channels": 8, "probe": "tetrode"}, "num_channels"),
    ({"probe": "utah"}, "probe"),
    ({"probe": 3}, "probe"),
    ({"amplitude_uV": (50.0, 10.0)}, "amplitude_uV"),
    ({"unit_distance_um": (0.0, 10.0)}, "unit_distance_um"),
    ({"dtype": "float64"}, "dtype"),
    ({"gain_to_uV": 0.2}, "gain_to_uV"),
    ({"noise_band_hz": (20000.0, 30000.0)}, "noise_band_hz"),
    ({"noise_band_hz": (600.0, 300.0)}, "noise_band_hz"),
    ({"seed": -1}, "seed"),
    ({"drift": {"kind": "wobble"}}, "kind"),
    ({"drift": {"knd": "sine"}}, "unknown keys"),
    ({"drift": {"kind": "sine", "depth_gradient": 3.0}}, "depth_gradient"),
    ({"drift": "sine"}, "drift"),
    ({"chunk_size": 0}, "chunk_size"),
    ({"amplitude_jitter": 0.5}, "amplitude_jitter"),
])
def test_bad_input(kwargs, match):
    kw = {"duration_s": 1.0, "num_units": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        ground_truth_recording(**kw)


def test_lazy_arithmetic_across_chunkings():
    kw = dict(duration_s=0.5, num_units=3, seed=0)
    a = ground_truth_recording(chunk_size=1000, **kw)[0]
    b = ground_truth_recording(chunk_size=3001, **kw)[0]
    assert float(np.abs(a.data - b.data).max().compute()) == 0.0
    c = ground_truth_recording(chunk_size=1000, **{**kw, "seed": 1})[0]
    assert a.data.name != c.data.name


def test_zero_refractory_never_two_spikes_of_a_unit_in_one_sample():
    s = poisson_spike_trains(num_units=3, duration_s=2.0, firing_rate_hz=5000.0, refractory_ms=0.0, seed=0)
    for train in spike_trains(s).values():
        assert train.size > 5000 and np.diff(train).min() >= 1


def test_threads_do_not_change_a_byte():
    import dask

    rec = ground_truth_recording(duration_s=1.5, num_units=10, firing_rate_hz=(20.0, 60.0), chunk_size=4000,
                                 seed=2)[0]
    one = rec.data.compute(scheduler="synchronous")
    two = rec.data.compute(scheduler="threads", num_workers=2)
    assert one.tobytes() == two.tobytes()
    with dask.config.set(scheduler="threads", num_workers=2):
        assert rec.values.tobytes() == one.tobytes()
