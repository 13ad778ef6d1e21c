import numpy as np
import pytest

from spkfn.detection import PEAK_DTYPE
from spkfn.io import from_array
from spkfn.plotting.detection import (
    plot_drift_map,
    plot_noise_levels,
    plot_peak_locations,
    prepare_drift_map,
    prepare_noise_levels,
    prepare_peak_locations,
)

FS = 1000.0
LOC = [[0, 0], [0, 20], [16, 40], [0, 60]]


def _rec():
    return from_array(np.zeros((5000, 4), "float32"), sampling_frequency=FS, channel_locations=LOC, t_start_s=10.0)


def _peaks(n=100):
    p = np.zeros(n, PEAK_DTYPE)
    p["sample_index"] = np.arange(n) * 40
    p["channel_index"] = np.arange(n) % 4
    p["amplitude"] = -np.arange(n, dtype="float32")
    return p


def test_drift_map_data_from_channels_and_from_locations():
    peaks = _peaks()
    d = prepare_drift_map(peaks, _rec(), clip_percentile=100)
    np.testing.assert_allclose(d["time_s"], 10.0 + peaks["sample_index"] / FS)
    np.testing.assert_array_equal(d["depth_um"], np.array(LOC)[peaks["channel_index"], 1])
    np.testing.assert_array_equal(d["amplitude_uV"], np.arange(100))
    assert d["depth_source"] == "channel"
    locs = np.zeros(100, [("x", "f8"), ("y", "f8")])
    locs["y"] = np.linspace(0, 60, 100)
    d = prepare_drift_map(peaks, _rec(), peak_locations=locs, max_points=10, seed=1)
    assert d["depth_source"] == "location" and d["time_s"].size == 10 and d["n_peaks"] == 100
    assert np.all(np.diff(d["time_s"]) > 0)
    # the subset keeps each peak's own depth
    np.testing.assert_allclose(d["depth_um"], np.interp(d["time_s"] - 10.0, peaks["sample_index"] / FS, locs["y"]))
    with pytest.raises(ValueError, match="rows"):
        prepare_drift_map(peaks, _rec(), peak_locations=locs[:5])


def test_drift_map_clips_the_colour_scale():
    d = prepare_drift_map(_peaks(), _rec(), clip_percentile=50)
    assert d["amplitude_uV"].max() == pytest.approx(49.5)


def test_plots_draw_what_was_prepared():
    rec, peaks = _rec(), _peaks()
    ax = plot_drift_map(peaks, rec)
    assert ax.collections[0].get_offsets().shape == (100, 2)
    locs = np.zeros(100, [("x", "f8"), ("y", "f8")])
    ax = plot_peak_locations(rec, locs, peaks=peaks)
    assert ax.collections[1].get_offsets().shape == (100, 2)
    ax = plot_noise_levels(rec, [5.0, 5.0, 30.0, 5.0])
    assert ax.collections[0].get_offsets().tolist() == [[40.0, 30.0]]  # the outlier, at its depth


def test_empty_peaks_plot():
    ax = plot_drift_map(np.zeros(0, PEAK_DTYPE), _rec())
    assert len(ax.collections[0].get_offsets()) == 0
    d = prepare_peak_locations(_rec(), np.zeros(0, [("x", "f8"), ("y", "f8")]))
    assert d["x_um"].size == 0


def test_noise_levels_by_depth_or_index():
    rec = from_array(np.zeros((10, 3), "float32"), sampling_frequency=FS, channel_locations=[[0, 40], [0, 0], [0, 20]])
    d = prepare_noise_levels(rec, [1.0, 2.0, 3.0])
    assert d["position"].tolist() == [0.0, 20.0, 40.0] and d["noise_uV"].tolist() == [2.0, 3.0, 1.0]
    assert d["channel_ids"].tolist() == ["1", "2", "0"]
    d = prepare_noise_levels(rec, [1.0, 2.0, 3.0], by_depth=False)
    assert d["position"].tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="one value per channel"):
        prepare_noise_levels(rec, [1.0])
