import numpy as np
import pytest

from spkfn.detection import PEAK_DTYPE, detect_peaks, noise_levels
from spkfn.io import from_array, multi_shank_probe, set_probe

FS = 30000.0
LINE = [[0, 0], [0, 20], [0, 40], [0, 60], [0, 80], [0, 100]]


def _rec(x, loc=LINE, **kw):
    return from_array(x, sampling_frequency=FS, channel_locations=loc, **kw)


def _quiet(n=6000, c=6):
    return np.zeros((n, c), "float32")


def _detect(rec, **kw):
    kw.setdefault("noise_levels", np.ones(rec.sizes["channel"]))
    kw.setdefault("progress", False)
    return detect_peaks(rec, **kw)


def test_single_planted_peak_exact_and_typed():
    x = _quiet()
    x[1234, 3] = -10.0
    x[1234, 2] = -7.0  # same spike seen on a neighbour: not a second peak
    x[1236, 4] = -6.0
    peaks = _detect(_rec(x))
    assert peaks.dtype == PEAK_DTYPE
    assert peaks.tolist() == [(1234, 3, -10.0, 0)]


def test_by_channel_keeps_one_peak_per_channel_and_needs_no_geometry():
    x = _quiet()
    x[1234, 3] = -10.0
    x[1233, 2] = -7.0
    x[1236, 2] = -8.0  # within the sweep of the -7 on the same channel: only -8 stays
    peaks = _detect(from_array(x, sampling_frequency=FS), method="by_channel", exclude_sweep_ms=0.1)
    assert peaks[["sample_index", "channel_index"]].tolist() == [(1234, 3), (1236, 2)]


def test_radius_and_sweep_define_exclusion():
    x = _quiet()
    x[1000, 0] = -10.0
    x[1000, 3] = -8.0   # 60 µm away: outside radius 50 -> its own peak
    x[2000, 1] = -10.0
    x[2004, 1] = -8.0   # 4 samples later: outside the 3-sample sweep -> its own peak
    peaks = _detect(_rec(x), radius_um=50.0, exclude_sweep_ms=0.1)
    assert peaks[["sample_index", "channel_index"]].tolist() == [(1000, 0), (1000, 3), (2000, 1), (2004, 1)]
    peaks = _detect(_rec(x), radius_um=70.0, exclude_sweep_ms=0.2)
    assert peaks[["sample_index", "channel_index"]].tolist() == [(1000, 0), (2000, 1)]


def test_one_peak_per_threshold_crossing():
    x = _quiet()
    # a broad trough with two minima 6 samples apart (beyond the 3-sample sweep), all below threshold
    x[1000:1009, 2] = [-6, -9, -8, -7, -6, -7, -8, -10, -6]
    # the same shape, but back above threshold (-5) between the minima: two crossings, two peaks
    x[3000:3009, 2] = [-6, -9, -8, -6, -2, -6, -8, -10, -6]
    for method in ("by_channel", "locally_exclusive"):
        peaks = _detect(_rec(x), method=method, detect_threshold=5)
        assert peaks[["sample_index", "channel_index"]].tolist() == [(1007, 2), (3001, 2), (3007, 2)]


def test_threshold_is_in_units_of_each_channels_noise():
    x = _quiet()
    x[100, 0] = -9.0
    x[300, 5] = -9.0
    peaks = _detect(_rec(x), noise_levels=np.array([1, 1, 1, 1, 1, 2.0]), detect_threshold=5)
    assert peaks["channel_index"].tolist() == [0]


def test_ties_go_to_the_earlier_sample_then_lower_channel():
    x = _quiet()
    x[500, 2] = x[500, 3] = -10.0
    x[900, 1] = x[902, 1] = -10.0
    peaks = _detect(_rec(x))
    assert peaks[["sample_index", "channel_index"]].tolist() == [(500, 2), (900, 1)]


@pytest.mark.parametrize("peak_sign, expected", [
    ("neg", [(100, 1, -10.0)]),
    ("pos", [(200, 4, 12.0)]),
    ("both", [(100, 1, -10.0), (200, 4, 12.0)]),
])
def test_peak_sign(peak_sign, expected):
    x = _quiet()
    x[100, 1] = -10.0
    x[200, 4] = 12.0
    peaks = _detect(_rec(x), peak_sign=peak_sign)
    assert peaks[["sample_index", "channel_index", "amplitude"]].tolist() == expected


def test_both_compares_absolute_values():
    x = _quiet()
    x[100, 1] = -10.0
    x[101, 2] = 12.0
    peaks = _detect(_rec(x), peak_sign="both")
    assert peaks[["sample_index", "channel_index"]].tolist() == [(101, 2)]


def test_int16_with_gain_gives_amplitudes_in_uV():
    x = np.zeros((3000, 6), "int16")
    x[700, 2] = -40
    rec = _rec(x, gain_to_uV=0.25, offset_to_uV=0.0)
    peaks = _detect(rec, noise_levels=np.ones(6), detect_threshold=5)
    assert peaks.tolist() == [(700, 2, -10.0, 0)]


@pytest.mark.parametrize("chunk_size", [97, 1000, 2500])
@pytest.mark.parametrize("method", ["by_channel", "locally_exclusive"])
def test_identical_whatever_the_chunking_no_duplicates_at_borders(rng, chunk_size, method):
    x = rng.normal(size=(20000, 6)).astype("float32")
    # Plant spikes on and around chunk borders, spread over neighbouring channels.
    for s in [96, 97, 98, 999, 1000, 1001, 2499, 2500, 5000, 9999, 10000]:
        x[s, 2] -= 12.0
        x[s + 1, 3] -= 9.0
    for s in [990, 2490, 9990]:  # long crossings (12 samples) over the borders, deepest at the end
        x[s:s + 12, 4] -= np.linspace(8.0, 14.0, 12).astype("float32")
    rec = _rec(x)
    whole = _detect(rec, method=method, chunk_size=20000)
    chunked = _detect(rec, method=method, chunk_size=chunk_size, n_jobs=2)
    np.testing.assert_array_equal(whole, chunked)
    pairs = whole[["sample_index", "channel_index"]].tolist()
    assert len(pairs) == len(set(pairs))
    assert np.all(np.diff(whole["sample_index"]) >= 0)


def test_shanks_do_not_exclude_each_other():
    probe = multi_shank_probe(num_shanks=2, num_channels_per_shank=4, shank_pitch_um=30.0)
    x = np.zeros((2000, 8), "float32")
    x[500, 1] = -10.0  # shank 0
    x[500, 5] = -8.0   # shank 1, 30 µm away: another group, so not excluded
    rec = set_probe(from_array(x, sampling_frequency=FS), probe)
    peaks = _detect(rec, radius_um=50.0)
    assert peaks["channel_index"].tolist() == [1, 5]


def test_noise_levels_computed_when_not_given(rng):
    x = rng.normal(scale=2.0, size=(60000, 6)).astype("float32")
    x[30000, 2] = -40.0
    rec = _rec(x)
    a = detect_peaks(rec, progress=False, seed=1)
    b = detect_peaks(rec, progress=False, noise_levels=noise_levels(rec, seed=1))
    np.testing.assert_array_equal(a, b)
    assert (30000, 2) in a[["sample_index", "channel_index"]].tolist()


def _score(peaks, gt, matcher, *, above=5.0):
    times, units = gt["times"], gt["units"]
    gm, pm = matcher(peaks["sample_index"], peaks["channel_index"], times, gt["best_channel"][units],
                     tol=int(0.4e-3 * FS), locations=gt["locations"])
    big = np.abs(gt["peak_amplitude"][units]) > above * gt["noise_uV"]
    return gm[big].mean(), pm.mean() if pm.size else 1.0


@pytest.mark.parametrize("method", ["locally_exclusive", "matched_filtering"])
def test_recall_and_precision_on_ground_truth(synth, matcher, method):
    rec, gt = synth(duration_s=20.0, n_units=10, amplitudes_uV=(40.0, 200.0), rate_hz=3.0, seed=2)
    peaks = detect_peaks(rec, method=method, progress=False)
    recall, precision = _score(peaks, gt, matcher)
    assert recall >= 0.95
    assert precision >= 0.9


def test_by_channel_recall_on_ground_truth(synth, matcher):
    rec, gt = synth(duration_s=10.0, n_units=8, rate_hz=3.0, seed=3)
    peaks = detect_peaks(rec, method="by_channel", progress=False)
    gm, _ = matcher(peaks["sample_index"], peaks["channel_index"], gt["times"],
                    gt["best_channel"][gt["units"]], tol=12, locations=gt["locations"])
    big = np.abs(gt["peak_amplitude"][gt["units"]]) > 5 * gt["noise_uV"]
    assert gm[big].mean() >= 0.95


def test_matched_filtering_finds_small_spikes(synth, matcher):
    # Spikes of 3-5 x noise: mostly under a 5 x noise amplitude threshold, but the matched filter
    # pools ~2 ms and several channels.
    rec, gt = synth(duration_s=20.0, n_units=8, amplitudes_uV=(30.0, 50.0), rate_hz=3.0, seed=4)
    le = detect_peaks(rec, method="locally_exclusive", progress=False)
    mf = detect_peaks(rec, method="matched_filtering", progress=False)
    r_le, _ = _score(le, gt, matcher, above=0.0)
    r_mf, p_mf = _score(mf, gt, matcher, above=0.0)
    assert r_mf > r_le + 0.3
    assert r_mf > 0.8 and p_mf > 0.9


def test_matched_filtering_with_given_prototype_is_chunk_invariant(synth, spike_waveform, matcher):
    rec, gt = synth(duration_s=4.0, n_units=5, rate_hz=5.0, seed=5)
    proto, nb = spike_waveform(FS, ms_before=0.5, ms_after=1.0)
    kw = dict(method="matched_filtering", prototype=proto, prototype_ms_before=0.5, progress=False)
    whole = detect_peaks(rec, chunk_size=rec.sizes["time"], **kw)
    chunked = detect_peaks(rec, chunk_size=1013, n_jobs=2, **kw)
    np.testing.assert_array_equal(whole, chunked)
    recall, precision = _score(whole, gt, matcher)
    assert recall >= 0.95 and precision >= 0.9
    # Peaks sit on the spikes' troughs: the median offset to the matched spike is 0 samples.
    k = np.searchsorted(gt["times"], whole["sample_index"])
    k = np.clip(k, 1, gt["times"].size - 1)
    nearest = np.where(np.abs(gt["times"][k] - whole["sample_index"]) < np.abs(gt["times"][k - 1] - whole["sample_index"]),
                       gt["times"][k], gt["times"][k - 1])
    assert np.median(whole["sample_index"] - nearest) == 0


def test_matched_filtering_prototype_sign_is_checked():
    with pytest.raises(ValueError, match="must be negative"):
        _detect(_rec(_quiet()), method="matched_filtering", prototype=np.hanning(20), prototype_ms_before=0.3)


@pytest.mark.parametrize("kwargs, match", [
    ({"detect_threshold": 0}, "detect_threshold"),
    ({"detect_threshold": -3}, "detect_threshold"),
    ({"exclude_sweep_ms": -1}, "exclude_sweep_ms"),
    ({"radius_um": 5.0}, "selects no neighbouring channel"),
    ({"method": "nope"}, "method"),
    ({"peak_sign": "up"}, "peak_sign"),
    ({"noise_levels": np.ones(3)}, "one value per channel"),
    ({"noise_levels": -np.ones(6)}, ">= 0"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _detect(_rec(_quiet()), **kwargs)


def test_geometry_needed_except_by_channel():
    rec = from_array(_quiet(), sampling_frequency=FS)
    with pytest.raises(ValueError, match="no geometry"):
        _detect(rec)
    with pytest.raises(ValueError, match="no geometry"):
        _detect(rec, method="matched_filtering", prototype=-np.hanning(20), prototype_ms_before=0.3)
    assert _detect(rec, method="by_channel").size == 0


def test_no_peaks_and_empty_recording_are_typed_empties():
    peaks = _detect(_rec(_quiet()))
    assert peaks.dtype == PEAK_DTYPE and peaks.size == 0
    peaks = _detect(_rec(np.zeros((0, 6), "float32")))
    assert peaks.dtype == PEAK_DTYPE and peaks.size == 0


@pytest.mark.parametrize("method", ["locally_exclusive", "matched_filtering"])
def test_recall_and_precision_on_spkfn_generate(generated, matcher, method):
    rec, gt = generated
    peaks = detect_peaks(rec, method=method, progress=False)
    gm, pm = matcher(peaks["sample_index"], peaks["channel_index"], gt["times"], gt["best_channel"][gt["units"]],
                     tol=int(0.4e-3 * FS), locations=gt["locations"])
    big = gt["snr"][gt["units"]] > 5
    assert gm[big].mean() >= 0.95
    assert pm.mean() >= 0.9


@pytest.mark.reference
def test_as_good_as_spikeinterface_on_the_same_data(generated, matcher):
    pytest.importorskip("spikeinterface")
    from spikeinterface.core import NumpyRecording
    from spikeinterface.sortingcomponents.peak_detection import detect_peaks as si_detect_peaks

    rec, gt = generated
    noise = noise_levels(rec)
    kw = dict(peak_sign="neg", detect_threshold=5.0, exclude_sweep_ms=0.1, radius_um=50.0)
    ours = detect_peaks(rec, noise_levels=noise, progress=False, **kw)
    si_rec = NumpyRecording(np.asarray(rec.values), FS)
    si_rec.set_dummy_probe_from_locations(gt["locations"])
    theirs = si_detect_peaks(si_rec, method="locally_exclusive", method_kwargs=kw | {"noise_levels": noise.astype(float)},
                             job_kwargs=dict(n_jobs=1, progress_bar=False))
    big = gt["snr"][gt["units"]] > 5
    scores = []
    for p in (ours, theirs):
        gm, pm = matcher(p["sample_index"], p["channel_index"], gt["times"], gt["best_channel"][gt["units"]],
                         tol=12, locations=gt["locations"])
        scores.append((gm[big].mean(), pm.mean()))
    (r_ours, p_ours), (r_si, p_si) = scores
    assert r_ours >= r_si - 0.01
    assert p_ours >= p_si


@pytest.mark.parametrize("kwargs, match", [({"chunk_size": 0}, "chunk_size"), ({"n_jobs": 0}, "n_jobs"),
                                           ({"progress": "yes"}, "progress")])
def test_bad_streaming_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        detect_peaks(_rec(_quiet()), noise_levels=np.ones(6), **kwargs)


def test_on_a_lazily_preprocessed_int16_recording(matcher):
    # The workflow's path: generated int16 traces, band-pass + common median reference applied
    # lazily (dask, margins), then detection streams over it.
    from spkfn.generate import ground_truth_recording
    from spkfn.preprocessing import bandpass_filter, common_reference

    raw, gt, _ = ground_truth_recording(duration_s=8.0, probe="neuropixels1", num_channels=64, num_units=8,
                                        firing_rate_hz=(2.0, 6.0), dtype="int16", seed=5)
    rec = common_reference(bandpass_filter(raw), operator="median")
    peaks = detect_peaks(rec, progress=False, chunk_size=20_000)
    units = gt.unit_index.values
    gm, pm = matcher(peaks["sample_index"], peaks["channel_index"], gt.sample_index.values,
                     gt.best_channel.values[units], tol=12, locations=np.column_stack([rec.x.values, rec.y.values]))
    big = gt.snr.values[units] > 5
    assert gm[big].mean() >= 0.95 and pm.mean() >= 0.9
