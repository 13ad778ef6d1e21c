"""Drift specification, realisation and the true displacement."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spkfn.generate import Drift, drift_displacement, drift_motion, resolve_drift

RANGE = (0.0, 400.0)


def test_every_kind_starts_at_zero_and_follows_its_formula():
    t = np.linspace(0, 100, 1001)
    for kind in ("sine", "linear", "steps", "random_walk"):
        d = resolve_drift(Drift(kind=kind, amplitude_um=10.0, period_s=20.0), duration_s=100.0,
                          depth_range_um=RANGE, seed=1)
        v = drift_displacement(d, times_s=t, depths_um=[200.0])[:, 0]
        assert v[0] == 0.0
        if kind == "sine":
            np.testing.assert_allclose(v, 10 * np.sin(2 * np.pi * t / 20))
        elif kind == "linear":
            np.testing.assert_allclose(v, 0.1 * t)
        elif kind == "steps":
            levels = np.unique(v)
            assert levels.size <= 4 and np.all(np.abs(levels) <= 10.0)
            assert (np.diff(v) != 0).sum() <= 3
        else:
            assert np.all(np.abs(np.diff(v)) < 10.0)


def test_random_walk_end_std_is_amplitude():
    ends = [drift_displacement(resolve_drift({"kind": "random_walk", "amplitude_um": 5.0, "interval_s": 2.0},
                                             duration_s=50.0, depth_range_um=RANGE, seed=s),
                               times_s=[50.0], depths_um=[0.0])[0, 0] for s in range(400)]
    assert np.std(ends) == pytest.approx(5.0, rel=0.15)


def test_components_add_and_depth_gradient_scales():
    spec = [{"kind": "linear", "amplitude_um": 10.0}, {"kind": "sine", "amplitude_um": 4.0, "period_s": 8.0,
                                                      "depth_gradient": 1.0}]
    d = resolve_drift(spec, duration_s=10.0, depth_range_um=RANGE)
    v = drift_displacement(d, times_s=[2.0], depths_um=[0.0, 200.0, 400.0])[0]
    np.testing.assert_allclose(v, [2.0 + 4 * 0.5, 2.0 + 4.0, 2.0 + 4 * 1.5])


def test_realisation_is_seeded_and_json_round_trips():
    spec = Drift(kind="steps", amplitude_um=30.0, num_steps=5)
    a = resolve_drift(spec, duration_s=60.0, depth_range_um=RANGE, seed=3)
    assert a == resolve_drift(spec, duration_s=60.0, depth_range_um=RANGE, seed=3)
    assert a != resolve_drift(spec, duration_s=60.0, depth_range_um=RANGE, seed=4)
    t = np.linspace(0, 60, 7)
    np.testing.assert_array_equal(drift_displacement(json.dumps(a), times_s=t, depths_um=[1.0]),
                                  drift_displacement(a, times_s=t, depths_um=[1.0]))
    assert resolve_drift(None, duration_s=1.0, depth_range_um=RANGE) is None
    np.testing.assert_array_equal(drift_displacement("null", times_s=t, depths_um=[1.0, 2.0]), 0.0)


def test_drift_motion_layout():
    d = resolve_drift({"kind": "linear", "amplitude_um": 10.0}, duration_s=10.0, depth_range_um=RANGE)
    m = drift_motion(d, time_bins_s=[1.0, 5.0], depth_bins_um=[0.0, 100.0, 200.0])
    assert m.dims == ("time_bin", "depth_bin") and m.shape == (2, 3)
    np.testing.assert_allclose(m.sel(time_bin=5.0).values, 5.0)


def test_unresolved_or_bad_drift_is_refused():
    with pytest.raises(ValueError, match="resolve_drift"):
        drift_displacement({"kind": "sine"}, times_s=[0.0], depths_um=[0.0])
    with pytest.raises(ValueError, match="period_s"):
        resolve_drift({"kind": "sine", "period_s": 0.0}, duration_s=1.0, depth_range_um=RANGE)
    with pytest.raises(ValueError, match="num_steps"):
        resolve_drift({"kind": "steps", "num_steps": 0}, duration_s=1.0, depth_range_um=RANGE)
    with pytest.raises(ValueError, match="amplitude_um"):
        resolve_drift({"kind": "linear", "amplitude_um": -1.0}, duration_s=1.0, depth_range_um=RANGE)
