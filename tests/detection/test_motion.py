"""Motion estimation and correction against the generator's known drift."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import probeinterface as pi
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spkfn.detection import _motion_kernels as K
from spkfn.detection._motion_synth import ground_truth_peaks
from spkfn.detection.motion import (
    MOTION_METHODS,
    check_motion,
    clean_motion,
    correct_motion,
    correct_peak_locations,
    estimate_motion,
    interpolate_motion,
)
from spkfn.generate import drift_displacement, drift_motion, ground_truth_recording
from spkfn.io import channel_locations, from_array, get_traces, read_zarr, write_zarr

FS = 30000.0


# ------------------------------------------------------------------------------------------ fixtures


def _case(drift, *, duration_s=200.0, probe="neuropixels1", num_units=80, seed=0):
    rec, gt, _ = ground_truth_recording(duration_s=duration_s, probe=probe, num_units=num_units, seed=seed,
                                        drift=drift)
    loc = channel_locations(rec)
    peaks, locs, _ = ground_truth_peaks(gt, loc, seed=seed, false_peak_rate_hz=20.0, localization_error_um=100.0)
    return {"rec": rec, "gt": gt, "loc": loc, "peaks": peaks, "locs": locs, "duration_s": duration_s}


@pytest.fixture(scope="module")
def rigid_case():
    return _case({"kind": "sine", "amplitude_um": 20.0, "period_s": 80.0})


@pytest.fixture(scope="module")
def nonrigid_case():
    # amplitude x0.25 at the bottom of the probe, x1.75 at the top
    return _case([{"kind": "random_walk", "amplitude_um": 20.0, "interval_s": 10.0, "depth_gradient": 1.5},
                  {"kind": "sine", "amplitude_um": 10.0, "period_s": 50.0, "depth_gradient": 1.5}])


def _rms(motion, gt, *, depths=None):
    """RMS (µm) of estimate - truth at the time bins and ``depths`` (default: the motion's depth bins),
    each depth's mean offset removed (the reference position is arbitrary)."""
    depths = motion.depth_bin.values if depths is None else np.asarray(depths)
    tt, yy = np.meshgrid(motion.time_bin.values, depths, indexing="ij")
    est = interpolate_motion(motion, times_s=tt, depths_um=yy)
    err = est - drift_displacement(gt, times_s=motion.time_bin.values, depths_um=depths)
    err -= err.mean(0, keepdims=True)
    return float(np.sqrt((err ** 2).mean()))


def _estimate(case, **kw):
    return estimate_motion((case["peaks"], case["locs"]), sampling_frequency=FS, duration_s=case["duration_s"],
                           channel_locations=case["loc"], **kw)


# ------------------------------------------------------------------------------------------ accuracy


@pytest.mark.parametrize("method", MOTION_METHODS)
@pytest.mark.parametrize("rigid", [True, False])
def test_rigid_drift_recovered(rigid_case, method, rigid):
    m = _estimate(rigid_case, method=method, rigid=rigid)
    assert m.sizes["time_bin"] == 100
    assert (m.sizes["depth_bin"] == 1) == rigid
    assert _rms(m, rigid_case["gt"]) < 5.0
    # the drift is really there: an estimate of zero would be far off
    assert _rms(xr.zeros_like(m), rigid_case["gt"]) > 10.0


@pytest.mark.parametrize("method", MOTION_METHODS)
def test_nonrigid_drift_recovered(nonrigid_case, method):
    depths = np.linspace(200, 3600, 12)
    m = _estimate(nonrigid_case, method=method, rigid=False)
    assert m.sizes["depth_bin"] == 20
    err = _rms(m, nonrigid_case["gt"], depths=depths)
    assert err < 5.0
    # a rigid estimate cannot follow the depth gradient
    rigid = _estimate(nonrigid_case, method=method, rigid=True)
    assert _rms(rigid, nonrigid_case["gt"], depths=depths) > 2 * err


@pytest.mark.parametrize("method", MOTION_METHODS)
def test_steps_recovered(method):
    case = _case({"kind": "steps", "amplitude_um": 30.0, "num_steps": 3}, duration_s=150.0, num_units=60)
    m = _estimate(case, method=method, rigid=True, bin_s=1.0)
    assert _rms(m, case["gt"]) < 5.0
    t = m.time_bin.values
    jumps = np.asarray(json.loads(case["gt"].attrs["drift"])["components"][0]["times_s"][1:])
    truth = drift_displacement(case["gt"], times_s=t, depths_um=[1900.0])[:, 0]
    est = m.values[:, 0]
    clean = np.abs(t[:, None] - jumps[None, :]).min(1) > 1.0  # bins not touching a jump
    est = est - np.mean(est[clean] - truth[clean])
    # every plateau at its level, and the jumps are sharp (the bins next to a jump are clean)
    np.testing.assert_array_less(np.abs(est[clean] - truth[clean]), 2.5)
    assert np.ptp(truth) > 20


def test_no_drift_gives_flat_motion():
    case = _case(None, duration_s=100.0, num_units=60)
    for method in MOTION_METHODS:
        m = _estimate(case, method=method)
        assert _rms(m, case["gt"]) < 1.0, method
        # dredge's spatial prior keeps the sparse edge windows (2 small units) in check too
        assert np.abs(m.values).max() < (3.0 if method == "dredge" else 8.0), method


def test_multi_shank_per_group():
    probe = pi.ProbeGroup()
    for s in range(2):
        p = pi.generate_multi_columns_probe(num_columns=2, num_contact_per_column=40, xpitch=20, ypitch=20,
                                            y_shift_per_column=[0, 10])
        p.move([300.0 * s, 0.0])
        probe.add_probe(p)
    probe.set_global_device_channel_indices(np.arange(160))
    case = _case({"kind": "sine", "amplitude_um": 15.0, "period_s": 60.0, "depth_gradient": 1.0},
                 duration_s=120.0, probe=probe, num_units=60)
    rec = case["rec"]
    assert np.unique(rec.group.values).tolist() == [0, 1]
    m = estimate_motion((case["peaks"], case["locs"]), recording=rec, method="dredge")
    assert m.dims == ("group", "time_bin", "depth_bin") and m.group.values.tolist() == [0, 1]
    for g in (0, 1):
        assert _rms(m.sel(group=g), case["gt"]) < 5.0
    # peaks are split by their channel's group: motion of group 1 comes from group 1's peaks only
    g_of_peak = rec.group.values[case["peaks"]["channel_index"]]
    only1 = estimate_motion((case["peaks"][g_of_peak == 1], case["locs"][g_of_peak == 1]), recording=rec)
    np.testing.assert_allclose(only1.sel(group=1).values, m.sel(group=1).values)
    assert np.abs(only1.sel(group=0).values).max() == 0.0  # no peaks: zero motion
    one = estimate_motion((case["peaks"], case["locs"]), recording=rec, by_group=False)
    assert one.dims == ("time_bin", "depth_bin")
    # correction of peak depths uses each peak's group
    fixed = correct_peak_locations(case["peaks"], case["locs"], m, channel_groups=rec.group.values)
    with pytest.raises(ValueError, match="channel_groups"):
        correct_peak_locations(case["peaks"], case["locs"], m)
    assert np.std(fixed["y"] - case["locs"]["y"]) > 3.0


# ------------------------------------------------------------------------------------------ layout


def test_motion_layout_attrs_and_zarr(rigid_case, tmp_path):
    m = _estimate(rigid_case, method="dredge", bin_s=4.0)
    check_motion(m)
    assert m.dims == ("time_bin", "depth_bin") and m.dtype == np.float64
    np.testing.assert_allclose(m.time_bin.values, (np.arange(50) + 0.5) * 4.0)
    assert m.attrs["units"] == "um" and m.attrs["method"] == "dredge" and m.attrs["bin_s"] == 4.0
    assert m.attrs["sampling_frequency"] == FS and m.attrs["num_peaks"] == rigid_case["peaks"].size
    params = json.loads(m.attrs["params"])
    assert params["win_step_um"] == 200.0 and params["method"] == "dredge"
    # depth bins: window centres spread over the contacts (100 µm inside), at most win_step_um apart
    d = m.depth_bin.values
    assert d[0] == rigid_case["loc"][:, 1].min() + 100 and d[-1] == rigid_case["loc"][:, 1].max() - 100
    assert np.diff(d).max() <= 200.0
    # reference: median over time is zero at every depth
    np.testing.assert_allclose(np.median(m.values, axis=0), 0.0, atol=1e-9)
    back = read_zarr(write_zarr(m, tmp_path / "m.zarr"))
    xr.testing.assert_identical(back, m)


def test_group_motion_zarr_round_trip(tmp_path):
    """spkfn.io.kind_of recognises the per-group layout (changed in this branch)."""
    from spkfn.io import kind_of

    m = xr.DataArray(np.arange(12.0).reshape(2, 3, 2), dims=("group", "time_bin", "depth_bin"),
                     coords={"group": [0, 3], "time_bin": [0.5, 1.5, 2.5], "depth_bin": [10.0, 20.0]},
                     name="motion", attrs={"units": "um"})
    assert kind_of(m) == "motion"
    back = read_zarr(write_zarr(m, tmp_path / "g.zarr"))
    xr.testing.assert_identical(back, m)


def test_same_result_any_n_jobs(nonrigid_case):
    a = _estimate(nonrigid_case, method="dredge", n_jobs=1)
    b = _estimate(nonrigid_case, method="dredge", n_jobs=2)
    c = _estimate(nonrigid_case, method="dredge", n_jobs=1)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.values, c.values)


def test_inputs_not_mutated(rigid_case):
    peaks, locs = rigid_case["peaks"].copy(), rigid_case["locs"].copy()
    m = _estimate(rigid_case, method="decentralized", rigid=True)
    correct_peak_locations(rigid_case["peaks"], rigid_case["locs"], m)
    np.testing.assert_array_equal(peaks, rigid_case["peaks"])
    np.testing.assert_array_equal(locs, rigid_case["locs"])


def test_reference_time_and_time_origin(rigid_case):
    m = _estimate(rigid_case, method="dredge", rigid=True, reference=0.0, t_start_s=100.0)
    assert m.time_bin.values[0] == 101.0
    # reference=0.0 is before the first bin centre: the motion is held, so the first bin is 0
    assert m.values[0, 0] == 0.0


def test_motion_estimation_does_not_import_torch():
    code = ("import sys, numpy as np\n"
            "from spkfn.detection.motion import estimate_motion\n"
            "p = np.zeros(200, [('sample_index', 'int64'), ('amplitude', 'float32')])\n"
            "p['sample_index'] = np.arange(200) * 100; p['amplitude'] = -50\n"
            "for m in ('dredge', 'decentralized', 'iterative_template'):\n"
            "    estimate_motion((p, np.linspace(0, 100, 200)), method=m, sampling_frequency=1000.0, bin_s=2.0)\n"
            "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------------------------ kernels


@pytest.mark.parametrize("shift_bins", [3.0, -2.4, 0.3])
def test_pairwise_displacement_planted_shift(shift_bins):
    z = np.arange(200.0)
    rng = np.random.default_rng(1)
    centres = rng.uniform(20, 180, 15)
    prof = lambda s: sum(np.exp(-0.5 * ((z - c - s) / 2.0) ** 2) * (1 + i % 3) for i, c in enumerate(centres))  # noqa: E731
    r = np.stack([prof(0.0), prof(shift_bins), prof(2 * shift_bins)]).astype(np.float32)
    D, C = K.pairwise_displacement(r, np.ones(200), max_lag=10)
    # D[i, j] = p_i - p_j with p = (0, s, 2s); parabolic refinement is within 0.1 bin on smooth rasters
    np.testing.assert_allclose(D, np.subtract.outer([0, shift_bins, 2 * shift_bins], [0, shift_bins, 2 * shift_bins]),
                               atol=0.1)
    assert C.min() > 0.95


def test_solver_matches_dense_least_squares():
    rng = np.random.default_rng(0)
    B, T = 3, 12
    Ds = rng.normal(size=(B, T, T))
    Us = rng.uniform(0, 1, size=(B, T, T)) * (rng.uniform(size=(B, T, T)) > 0.3)
    lt, ls, eps = 0.7, 0.4, 1e-3
    P = K.solve_displacement(Ds, Us, lambda_t=lt, lambda_s=ls, eps=eps)
    # the same objective as a stacked linear least-squares problem, solved densely
    rows, rhs = [], []
    for b in range(B):
        for i in range(T):
            for j in range(T):
                if Us[b, i, j] > 0 and i != j:
                    r = np.zeros(B * T)
                    r[b * T + i], r[b * T + j] = 1, -1
                    rows.append(np.sqrt(Us[b, i, j]) * r)
                    rhs.append(np.sqrt(Us[b, i, j]) * Ds[b, i, j])
        for t in range(T - 1):
            r = np.zeros(B * T)
            r[b * T + t + 1], r[b * T + t] = np.sqrt(lt), -np.sqrt(lt)
            rows.append(r)
            rhs.append(0.0)
    for b in range(B - 1):
        for t in range(T):
            r = np.zeros(B * T)
            r[(b + 1) * T + t], r[b * T + t] = np.sqrt(ls), -np.sqrt(ls)
            rows.append(r)
            rhs.append(0.0)
    A = np.vstack(rows + [np.sqrt(eps) * np.eye(B * T)])
    y = np.concatenate([rhs, np.zeros(B * T)])
    ref = np.linalg.lstsq(A, y, rcond=None)[0].reshape(B, T)
    np.testing.assert_allclose(P, ref, atol=1e-8)


def test_robust_solve_drops_outlier_pairs():
    T = 20
    p = np.sin(np.arange(T) / 3.0) * 5
    D = np.subtract.outer(p, p)
    D[3, 10], D[10, 3] = 40.0, -40.0  # two corrupted pairs
    U = np.ones((T, T)) - np.eye(T)
    est, Uf = K.robust_solve(D, U, lambda_t=0.0, n_iter=5, sigma=2.0, min_scale=0.5, eps=1e-9)
    np.testing.assert_allclose(est - est.mean(), p - p.mean(), atol=1e-6)
    assert Uf[3, 10] == 0 and Uf[10, 3] == 0


def test_interpolate_motion_bilinear_and_groups():
    m = xr.DataArray(np.array([[0.0, 10.0], [20.0, 40.0]]), dims=("time_bin", "depth_bin"),
                     coords={"time_bin": [1.0, 3.0], "depth_bin": [0.0, 100.0]})
    out = interpolate_motion(m, times_s=[2.0, 0.0, 5.0, 2.0], depths_um=[50.0, -10.0, 200.0, 25.0])
    np.testing.assert_allclose(out, [17.5, 0.0, 40.0, 0.5 * (2.5 + 25.0)])
    mg = xr.concat([m, m + 1], dim=xr.DataArray([4, 7], dims="group", name="group")).transpose("group", ...)
    np.testing.assert_allclose(interpolate_motion(mg, times_s=[1.0, 1.0], depths_um=[0.0, 0.0], groups=[7, 4]),
                               [1.0, 0.0])
    with pytest.raises(ValueError, match="groups"):
        interpolate_motion(mg, times_s=[1.0], depths_um=[0.0])


def test_correct_peak_locations_restores_reference_depths(rigid_case):
    gt = rigid_case["gt"]
    tb = np.arange(0.25, rigid_case["duration_s"], 0.5)
    truth = drift_motion(gt, time_bins_s=tb, depth_bins_um=[0.0, 4000.0])
    truth.attrs.update(sampling_frequency=FS, t_start_s=0.0)
    keep = gt.snr.values[gt.unit_index.values] >= 4
    unit = gt.unit_index.values[keep]
    peaks = np.zeros(unit.size, [("sample_index", "int64")])
    peaks["sample_index"] = gt.sample_index.values[keep]
    seen = gt.y_um.values[unit] + gt.displacement_um.values[keep]
    fixed = correct_peak_locations(peaks, seen, truth)
    # back to the reference depth, within the generator's 1-µm displacement grid (and a 0.5-s bin)
    assert np.abs(fixed - gt.y_um.values[unit]).max() < 1.2
    assert np.abs(seen - gt.y_um.values[unit]).max() > 15


# ------------------------------------------------------------------------------------------ clean


def test_clean_motion_fills_despikes_smooths_references():
    tb = np.arange(20.0)
    v = np.tile(np.where(tb >= 10, 8.0, 0.0)[:, None], (1, 3))
    v[4, 0] = 50.0  # glitch
    v[6:8, 1] = np.nan  # gap
    v[:, 2] = np.nan  # empty depth bin
    m = xr.DataArray(v, dims=("time_bin", "depth_bin"), coords={"time_bin": tb, "depth_bin": [0.0, 100.0, 200.0]})
    c = clean_motion(m, despike_um=5.0, despike_window_s=5.0)
    step = np.where(tb >= 10, 8.0, 0.0)
    for k in range(3):
        np.testing.assert_allclose(c.values[:, k], step)  # glitch gone, gap and empty bin filled, step kept
    assert np.isnan(m.values[6, 1])  # input untouched
    s = clean_motion(m, despike_um=5.0, despike_window_s=5.0, smooth_s=2.0)
    assert 0 < s.values[10, 0] < 8 and np.isclose(s.values[0, 0], 0.0, atol=0.1)
    const = clean_motion(xr.full_like(m, 3.0), smooth_s=3.0, smooth_um=50.0)
    np.testing.assert_allclose(const.values, 3.0)
    r = clean_motion(m, despike_um=5.0, despike_window_s=5.0, reference=15.0)
    np.testing.assert_allclose(r.values[:, 0], step - 8.0)
    assert json.loads(r.attrs["cleaning"])["reference"] == 15.0


# ------------------------------------------------------------------------------------------ correction


def _np_like_probe(n_rows=12):
    probe = pi.generate_multi_columns_probe(num_columns=4, num_contact_per_column=n_rows, xpitch=16, ypitch=40,
                                            y_shift_per_column=[0, 20, 0, 20], contact_shapes="square",
                                            contact_shape_params={"width": 12})
    probe.set_device_channel_indices(np.arange(4 * n_rows))
    return probe


def _template(traces, spikes, nbefore, n):
    return np.mean([traces[s - nbefore:s - nbefore + n] for s in spikes], axis=0)


@pytest.fixture(scope="module")
def single_units():
    """One unit per recording (no collisions), 30 µm linear drift over 4 s, staggered 4-column probe."""
    out = []
    for seed in range(6):
        rec, gt, tpl = ground_truth_recording(duration_s=4.0, probe=_np_like_probe(), num_units=1, seed=seed,
                                              noise_uV=0.01, drift={"kind": "linear", "amplitude_um": 30.0},
                                              firing_rate_hz=(25.0, 25.0), amplitude_jitter=0.0,
                                              unit_depth_range_um=(120.0, 340.0))
        truth = drift_motion(gt, time_bins_s=np.arange(0.05, 4.0, 0.1), depth_bins_um=[0.0])
        truth.attrs["bin_s"] = 0.1
        out.append((rec, gt, tpl, truth, get_traces(rec)))
    return out


@pytest.mark.parametrize("interpolation", ["kriging", "linear"])
def test_correct_motion_brings_templates_back(single_units, interpolation):
    """The template measured on the corrected traces in the last second matches the one of the
    first second (relative L2 error), much better than on the raw traces."""
    errs, raws = [], []
    for rec, gt, tpl, truth, x in single_units:
        y = get_traces(correct_motion(rec, truth, interpolation=interpolation))
        nb, n = tpl.attrs["nbefore"], tpl.sizes["sample"]
        s = gt.sample_index.values
        early, late = s[(s > nb) & (s < FS)], s[(s > 3 * FS) & (s < 4 * FS - n)]
        a = _template(x, early, nb, n)
        errs.append(np.linalg.norm(_template(y, late, nb, n) - a) / np.linalg.norm(a))
        raws.append(np.linalg.norm(_template(x, late, nb, n) - a) / np.linalg.norm(a))
    errs, raws = np.array(errs), np.array(raws)
    assert raws.min() > 0.3  # the drift really moved the templates
    np.testing.assert_array_less(errs, 0.5 * raws)
    # kriging: 4-11 % (19 % for a unit 13 µm off the probe); inverse-distance: 7-14 % (27 %)
    assert np.median(errs) < (0.12 if interpolation == "kriging" else 0.16)


def test_correct_motion_zero_motion_is_identity_and_chunking_invariant():
    rng = np.random.default_rng(0)
    probe = _np_like_probe(6)
    x = rng.normal(size=(3000, 24)).astype("float32")
    rec = from_array(x, sampling_frequency=1000.0, probe=probe)
    zero = xr.DataArray(np.zeros((3, 1)), dims=("time_bin", "depth_bin"),
                        coords={"time_bin": [0.5, 1.5, 2.5], "depth_bin": [50.0]}, attrs={"bin_s": 1.0})
    for method in ("kriging", "nearest"):
        np.testing.assert_allclose(correct_motion(rec, zero, interpolation=method).values, x, atol=1e-5)
    moving = zero.copy(data=np.array([[0.0], [7.0], [-12.0]]))
    a = correct_motion(rec, moving, chunk_size=1000).values
    b = correct_motion(rec, moving, chunk_size=777).values
    np.testing.assert_array_equal(a, b)
    out = correct_motion(rec, moving, chunk_size=500)
    np.testing.assert_array_equal(out.data.compute(scheduler="synchronous"),
                                  out.data.compute(scheduler="threads", num_workers=3))
    np.testing.assert_array_equal(out.values, a)
    assert out.attrs["preprocessing"][-1]["step"] == "correct_motion"
    assert out.dtype == np.float32 and out.sizes == rec.sizes


def test_correct_motion_scales_int16_to_uV():
    loc = np.column_stack([np.zeros(6), np.arange(6) * 20.0])
    x = np.tile(np.arange(6, dtype="int16") * 10, (50, 1))
    rec = from_array(x, sampling_frequency=100.0, channel_locations=loc, gain_to_uV=0.5, offset_to_uV=1.0)
    m = xr.DataArray(np.zeros((1, 1)), dims=("time_bin", "depth_bin"), coords={"time_bin": [0.25], "depth_bin": [0.0]})
    out = correct_motion(rec, m)
    np.testing.assert_allclose(out.values, x * 0.5 + 1.0, atol=1e-5)
    assert out.gain_to_uV.values.tolist() == [1.0] * 6


def test_correct_motion_border_modes():
    loc = np.column_stack([np.zeros(8), np.arange(8) * 20.0])
    x = np.tile(np.arange(1, 9, dtype="float32"), (40, 1))
    rec = from_array(x, sampling_frequency=100.0, channel_locations=loc)
    m = xr.DataArray(np.full((1, 1), 30.0), dims=("time_bin", "depth_bin"),
                     coords={"time_bin": [0.2], "depth_bin": [70.0]})
    z = correct_motion(rec, m, border_mode="zeros", interpolation="nearest").values[0]
    # targets y + 30: channels 7 (170 µm) and 6 (150 µm) look beyond the top contact (140 µm)
    assert z[6] == 0 and z[7] == 0 and z[0] != 0
    r = correct_motion(rec, m, border_mode="remove_channels", interpolation="nearest")
    assert r.channel.values.tolist() == [str(i) for i in range(6)]
    np.testing.assert_allclose(r.values[0], z[:6])
    e = correct_motion(rec, m, border_mode="extrapolate", interpolation="nearest").values[0]
    assert e[7] == 8.0  # nearest contact: the top one


def test_correct_motion_uses_the_session_clock():
    loc = np.column_stack([np.zeros(6), np.arange(6) * 20.0])
    x = np.tile(np.arange(6, dtype="float32"), (400, 1))
    rec = from_array(x, sampling_frequency=100.0, channel_locations=loc, t_start_s=100.0)
    # no motion until t = 102 s, then the tissue is 20 µm higher
    m = xr.DataArray(np.array([[0.0], [0.0], [20.0], [20.0]]), dims=("time_bin", "depth_bin"),
                     coords={"time_bin": [100.5, 101.5, 102.5, 103.5], "depth_bin": [50.0]}, attrs={"bin_s": 1.0})
    out = correct_motion(rec, m, interpolation="nearest", time_step_s=0.1).values
    np.testing.assert_array_equal(out[:150], x[:150])  # before 101.5 s
    np.testing.assert_array_equal(out[260:, :5], x[260:, 1:])  # after 102.5 s: one contact up


def test_correct_motion_per_group_motion():
    probe = pi.ProbeGroup()
    for s in range(2):
        p = pi.generate_linear_probe(num_elec=6, ypitch=20)
        p.move([200.0 * s, 0.0])
        probe.add_probe(p)
    probe.set_global_device_channel_indices(np.arange(12))
    x = np.tile(np.arange(12, dtype="float32"), (30, 1))
    rec = from_array(x, sampling_frequency=100.0, probe=probe)
    m = xr.DataArray(np.array([[[20.0]], [[-20.0]]]), dims=("group", "time_bin", "depth_bin"),
                     coords={"group": [0, 1], "time_bin": [0.1], "depth_bin": [50.0]})
    out = correct_motion(rec, m, interpolation="nearest").values[0]
    # group 0 reads one contact up, group 1 one contact down; never across shanks
    np.testing.assert_allclose(out[1:5], x[0, 2:6])
    np.testing.assert_allclose(out[7:11], x[0, 6:10])
    assert out[5] == x[0, 5] and out[6] == x[0, 6]


# ------------------------------------------------------------------------------------------ bad input


def test_empty_peaks_give_zero_motion(caplog, rigid_case):
    empty = rigid_case["peaks"][:0]
    with caplog.at_level(logging.WARNING, logger="spkfn.detection.motion"):
        m = estimate_motion((empty, rigid_case["locs"][:0]), sampling_frequency=FS, duration_s=10.0,
                            channel_locations=rigid_case["loc"], bin_s=2.0)
    assert "no peaks" in caplog.text
    assert m.dims == ("time_bin", "depth_bin") and m.shape == (5, 20) and not m.values.any()
    assert m.attrs["num_peaks"] == 0
    with pytest.raises(ValueError, match="duration_s"):
        estimate_motion((empty, np.zeros(0)), sampling_frequency=FS, channel_locations=rigid_case["loc"])
    with pytest.raises(ValueError, match="geometry"):
        estimate_motion((empty, np.zeros(0)), sampling_frequency=FS, duration_s=1.0)
    # a recording shorter than one time bin: one bin, zero motion, no crash
    short = rigid_case["peaks"][rigid_case["peaks"]["sample_index"] < FS]
    for method in MOTION_METHODS:
        one = estimate_motion((short, rigid_case["locs"][:short.size]), method=method, sampling_frequency=FS,
                              duration_s=1.0, channel_locations=rigid_case["loc"])
        assert one.shape == (1, 20) and not one.values.any()
    fixed = correct_peak_locations(empty, rigid_case["locs"][:0], xr.zeros_like(m))
    assert fixed.dtype == rigid_case["locs"].dtype and fixed.size == 0


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(0, 60), duration=st.floats(0.5, 30.0), span=st.floats(0.0, 400.0),
       method=st.sampled_from(MOTION_METHODS), rigid=st.booleans(), seed=st.integers(0, 10 ** 6))
def test_any_small_input_gives_a_finite_motion(n, duration, span, method, rigid, seed):
    """Few, clustered or absent peaks, short recordings, tiny probes: never a crash, always finite."""
    rng = np.random.default_rng(seed)
    peaks = np.zeros(n, [("sample_index", "int64"), ("amplitude", "float32")])
    peaks["sample_index"] = np.sort(rng.integers(0, int(duration * 1000), n))
    peaks["amplitude"] = -rng.uniform(1, 100, n)
    depths = rng.uniform(0, span, n) if span > 0 else np.zeros(n)
    loc = np.column_stack([np.zeros(4), np.linspace(0, span, 4)])
    m = estimate_motion((peaks, depths), method=method, rigid=rigid, sampling_frequency=1000.0,
                        duration_s=duration, channel_locations=loc, bin_s=1.0)
    check_motion(m)
    assert m.sizes["time_bin"] == int(np.ceil(duration - 1e-9))
    # every pairwise displacement is within max_displacement_um + max_residual_um (130 µm)
    assert np.all(np.abs(m.values) <= 2 * 130.0)


def test_bad_inputs_raise_clear_errors(rigid_case):
    p, lo, loc = rigid_case["peaks"], rigid_case["locs"], rigid_case["loc"]
    kw = {"sampling_frequency": FS, "duration_s": 200.0}
    with pytest.raises(ValueError, match="method must be one of"):
        estimate_motion((p, lo), method="kilosort", **kw)
    with pytest.raises(ValueError, match="bin_s"):
        estimate_motion((p, lo), bin_s=0.0, **kw)
    with pytest.raises(ValueError, match="max_displacement_um"):
        estimate_motion((p, lo), max_displacement_um=1.0, **kw)
    with pytest.raises(ValueError, match="sampling_frequency"):
        estimate_motion((p, lo))
    with pytest.raises(ValueError, match="one location per peak"):
        estimate_motion((p, lo[:-1]), **kw)
    bad = lo.copy()
    bad["y"][5] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        estimate_motion((p, bad), **kw)
    with pytest.raises(ValueError, match="'y' field"):
        estimate_motion((p, np.zeros(p.size, [("x", "f8")])), **kw)
    with pytest.raises(ValueError, match="sample_index"):
        estimate_motion((np.zeros(3), np.zeros(3)), **kw)
    with pytest.raises(ValueError, match="weight='count'"):
        estimate_motion((np.zeros(3, [("sample_index", "i8")]), np.zeros(3)), **kw)
    with pytest.raises(ValueError, match="pair"):
        estimate_motion(p, **kw)
    with pytest.raises(ValueError, match="channel_index must be"):
        estimate_motion((p, lo), channel_locations=loc[:10], **kw)
    rec_no_geom = from_array(np.zeros((100, 4), "float32"), sampling_frequency=1000.0)
    with pytest.raises(ValueError, match="geometry"):
        estimate_motion(rec_no_geom)
    m = xr.DataArray(np.zeros((1, 1)), dims=("time_bin", "depth_bin"), coords={"time_bin": [0.0], "depth_bin": [0.0]})
    with pytest.raises(ValueError, match="geometry"):
        correct_motion(rec_no_geom, m)
    with pytest.raises(ValueError, match="dims"):
        correct_motion(rigid_case["rec"], m.rename(depth_bin="depth"))
    with pytest.raises(ValueError, match="non-finite"):
        check_motion(m.copy(data=[[np.nan]]))
    with pytest.raises(ValueError, match="interpolation must be one of"):
        correct_motion(rigid_case["rec"], m, interpolation="cubic")


def test_recording_input_detects_and_localises():
    pytest.importorskip("spkfn.detection.peaks", reason="spkfn.detection.detect_peaks is not on this branch yet")
    rec, gt, _ = ground_truth_recording(duration_s=40.0, probe=_np_like_probe(24), num_units=20, seed=3,
                                        drift={"kind": "linear", "amplitude_um": 20.0})
    m = estimate_motion(rec, rigid=True, bin_s=4.0, progress=False)
    assert _rms(m, gt) < 5.0
    assert json.loads(m.attrs["params"])["detect_kwargs"]["detect_threshold"] == 8.0
