"""Motion estimates side by side with SpikeInterface's on the same peaks (reference only).

SpikeInterface's numpy estimators ("decentralized", "iterative_template") and, when PyTorch is
importable, its default "dredge_ap" run on the peaks of a generated recording; spkfn's error
against the generator's truth must be no worse (the speed comparison is in
benchmarks/bench_motion.py).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from spkfn.detection._motion_synth import ground_truth_peaks
from spkfn.detection.motion import estimate_motion
from spkfn.generate import drift_displacement, ground_truth_recording
from spkfn.io import channel_locations

pytest.importorskip("spikeinterface")
pytestmark = pytest.mark.reference

FS = 30000.0


@pytest.fixture(scope="module")
def case():
    drift = [{"kind": "random_walk", "amplitude_um": 20.0, "interval_s": 10.0, "depth_gradient": 1.0},
             {"kind": "sine", "amplitude_um": 10.0, "period_s": 40.0}]
    rec, gt, _ = ground_truth_recording(duration_s=120.0, probe="neuropixels1", num_units=80, seed=4, drift=drift)
    loc = channel_locations(rec)
    peaks, locs, _ = ground_truth_peaks(gt, loc, seed=4, false_peak_rate_hz=20.0, localization_error_um=100.0)
    return {"gt": gt, "loc": loc, "peaks": peaks, "locs": locs}


def _rms_on_grid(values, time_bins, depth_bins, gt):
    """RMS over time bins x 12 depths, each depth's mean offset removed."""
    from spkfn.detection._motion_kernels import interp_motion

    depths = np.linspace(300, 3500, 12)
    tt, yy = np.meshgrid(time_bins, depths, indexing="ij")
    est = interp_motion(np.asarray(values), np.asarray(time_bins), np.atleast_1d(depth_bins).astype(float),
                        tt.ravel(), yy.ravel()).reshape(tt.shape)
    err = est - drift_displacement(gt, times_s=time_bins, depths_um=depths)
    err -= err.mean(0)
    return float(np.sqrt((err ** 2).mean()))


def _si(case, method, **kw):
    from spikeinterface.generation import NoiseGeneratorRecording
    from spikeinterface.sortingcomponents.motion import estimate_motion as si_estimate_motion

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = NoiseGeneratorRecording(num_channels=384, sampling_frequency=FS, durations=[120.0])
        r.set_dummy_probe_from_locations(case["loc"])
        m = si_estimate_motion(r, case["peaks"], case["locs"], method=method, rigid=False, **kw)
    return _rms_on_grid(m.displacement[0], m.temporal_bins_s[0], m.spatial_bins_um, case["gt"])


def _ours(case, method):
    m = estimate_motion((case["peaks"], case["locs"]), method=method, sampling_frequency=FS, duration_s=120.0,
                        channel_locations=case["loc"])
    return _rms_on_grid(m.values, m.time_bin.values, m.depth_bin.values, case["gt"])


def test_iterative_template_no_worse_than_spikeinterface(case):
    ref = _si(case, "iterative_template", bin_s=2.0, win_step_um=200.0, win_scale_um=400.0, hist_margin_um=0,
              win_shape="rect")  # its "kilosort_like" preset
    ours = _ours(case, "iterative_template")
    assert ours < 5.0 and ref < 5.0  # both work
    assert ours <= 1.1 * ref + 0.1, (ours, ref)


@pytest.mark.slow
def test_dredge_and_decentralized_no_worse_than_spikeinterface_decentralized(case):
    ref = _si(case, "decentralized", conv_engine="numpy")  # its "nonrigid_accurate" estimator
    for method in ("dredge", "decentralized"):
        ours = _ours(case, method)
        assert ours <= 1.1 * ref + 0.1, (method, ours, ref)


def test_dredge_no_worse_than_spikeinterface_dredge_ap(case):
    pytest.importorskip("torch")
    ref = _si(case, "dredge_ap", win_shape="gaussian", win_step_um=400.0, win_scale_um=400.0,
              progress_bar=False)  # its default "dredge" preset (needs PyTorch)
    ours = _ours(case, "dredge")
    assert ours <= 1.1 * ref + 0.1, (ours, ref)
