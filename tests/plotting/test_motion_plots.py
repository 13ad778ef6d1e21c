"""Motion figures: the prepared data is checked, the drawings are smoke-tested."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

from spkfn.plotting.motion import (  # noqa: E402
    plot_motion,
    plot_motion_drift_map,
    plot_motion_summary,
    prepare_motion,
    prepare_motion_drift_map,
)

FS = 1000.0


@pytest.fixture
def data():
    """Two units at 100 and 300 µm; the tissue moves up by 10 µm at t = 5 s."""
    t = np.tile(np.arange(0, 10, 0.1), 2)
    y = np.repeat([100.0, 300.0], 100) + np.where(t >= 5, 10.0, 0.0)
    order = np.argsort(t, kind="stable")
    peaks = np.zeros(t.size, [("sample_index", "int64"), ("channel_index", "int64"), ("amplitude", "float32")])
    peaks["sample_index"] = np.round(t[order] * FS)
    peaks["channel_index"] = np.repeat([0, 1], 100)[order]
    peaks["amplitude"] = -np.repeat([20.0, 80.0], 100)[order]
    locs = np.zeros(t.size, [("x", "f8"), ("y", "f8")])
    locs["y"] = y[order]
    motion = xr.DataArray(np.tile(np.where(np.arange(10) + 0.5 >= 5, 10.0, 0.0)[:, None], (1, 2)),
                          dims=("time_bin", "depth_bin"),
                          coords={"time_bin": np.arange(10) + 0.5, "depth_bin": [100.0, 300.0]},
                          attrs={"sampling_frequency": FS, "t_start_s": 0.0})
    return peaks, locs, motion


def test_prepare_motion_drift_map_raw_and_corrected(data):
    peaks, locs, motion = data
    raw = prepare_motion_drift_map(peaks, locs, motion=motion)
    np.testing.assert_allclose(raw["time_s"], peaks["sample_index"] / FS)
    np.testing.assert_allclose(raw["depth_um"], locs["y"])
    np.testing.assert_allclose(raw["amplitude"], np.abs(peaks["amplitude"]))
    assert len(raw["motion_lines"]) == 2
    np.testing.assert_allclose(raw["motion_lines"][1][1], 300.0 + motion.values[:, 1])
    cor = prepare_motion_drift_map(peaks, locs, motion=motion, corrected=True)
    # away from the step's bin (linear interpolation between bin centres), depths are back in place
    far = np.abs(cor["time_s"] - 5.0) > 0.6
    np.testing.assert_allclose(np.sort(np.unique(cor["depth_um"][far])), [100.0, 300.0])
    np.testing.assert_allclose(cor["motion_lines"][0][1], 100.0)
    np.testing.assert_array_equal(locs["y"], data[1]["y"])  # input untouched


def test_prepare_motion_drift_map_subsamples_and_needs_rate(data):
    peaks, locs, motion = data
    d = prepare_motion_drift_map(peaks, locs, sampling_frequency=FS, max_peaks=50, seed=1)
    assert d["time_s"].size == 50 and np.all(np.diff(d["time_s"]) >= 0)
    assert d["motion_lines"] == []
    with pytest.raises(ValueError, match="sampling_frequency"):
        prepare_motion_drift_map(peaks, locs)
    with pytest.raises(ValueError, match="needs a motion"):
        prepare_motion_drift_map(peaks, locs, sampling_frequency=FS, corrected=True)


def test_group_motion_selects_group(data):
    peaks, locs, motion = data
    mg = xr.concat([motion, motion * 0], dim=xr.DataArray([0, 1], dims="group", name="group"))
    mg = mg.transpose("group", "time_bin", "depth_bin")
    d = prepare_motion_drift_map(peaks, locs, motion=mg, group=1, channel_groups=[0, 1])
    assert d["depth_um"].size == 100 and np.all(d["depth_um"] >= 300)  # channel 1 = group 1
    np.testing.assert_allclose(prepare_motion(mg, group=1)["displacement_um"], 0.0)
    with pytest.raises(ValueError, match="channel_groups"):
        prepare_motion_drift_map(peaks, locs, motion=mg)
    with pytest.raises(ValueError, match="not in the motion's groups"):
        prepare_motion(mg, group=5)


def test_drawings(data):
    peaks, locs, motion = data
    ax = plot_motion_drift_map(peaks, locs, motion=motion)
    assert len(ax.collections) == 1 and len(ax.lines) == 2
    ax = plot_motion(motion, truth=motion)
    assert len(ax.lines) == 4 and ax.get_ylabel() == "displacement (µm)"
    fig = plot_motion_summary(peaks, locs, motion)
    assert [a.get_title() for a in fig.axes[:1]] == ["peak depths and motion"]
    assert fig.axes[2].get_title() == "corrected peak depths"
    plt.close("all")
