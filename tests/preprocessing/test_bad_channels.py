import dask.array as da
import numpy as np
import pandas as pd
import pytest
import scipy.signal

from spkfn.io import from_array, get_probe, linear_probe, multi_shank_probe, neuropixels1_probe
from spkfn.preprocessing.bad_channels import (
    coherence_psd_features,
    coherence_psd_labels,
    detect_and_interpolate_bad_channels,
    detect_and_remove_bad_channels,
    detect_bad_channels,
    interpolate_bad_channels,
    interpolation_matrix,
    remove_channels,
)

FS = 30000.0
SOS = scipy.signal.butter(3, [300, 3000], "bandpass", fs=FS, output="sos")


def realistic(n_samples=120000, n_channels=96, seed=0, dead=None, noisy=None, outside=0):
    """Neuropixels-like AP-band data (µV): spatially smooth sources, a common mode, white noise.

    ``dead``: the channel keeps only 0.5 µV of its own noise (no shared signal); ``noisy``: 30 µV
    of extra white noise; ``outside``: the top channels see none of the brain's signals (saline
    noise shared among them instead).
    """
    rng = np.random.default_rng(seed)
    probe = neuropixels1_probe(num_channels=n_channels)
    y = probe.contact_positions[:, 1]
    k = 24
    sources = scipy.signal.sosfilt(SOS, rng.normal(size=(n_samples, k)), axis=0) * 30
    depth = rng.uniform(y.min() - 50, y.max() + 50, k)
    spread = np.exp(-(((y[None, :] - depth[:, None]) / 60.0) ** 2))
    common = scipy.signal.sosfilt(SOS, rng.normal(size=(n_samples, 1)), axis=0) * 15
    x = sources @ spread + common + rng.normal(size=(n_samples, n_channels)) * 5
    if outside:
        top = np.argsort(y)[-outside:]
        saline = scipy.signal.sosfilt(SOS, rng.normal(size=(n_samples, 1)), axis=0) * 10
        x[:, top] = saline + rng.normal(size=(n_samples, outside)) * 5
    if dead is not None:
        x[:, dead] = rng.normal(size=n_samples) * 0.5
    if noisy is not None:
        x[:, noisy] += rng.normal(size=n_samples) * 30
    return from_array(x.astype("float32"), sampling_frequency=FS, probe=probe)


def _bad(df):
    return df[df.label != "good"].label.to_dict()


# ----------------------------------------------------------------------------- detection


@pytest.fixture(scope="module")
def planted():
    """A dead channel (10), a noisy one (40) and 12 channels outside the brain (84-95, the top)."""
    return realistic(dead=10, noisy=40, outside=12, seed=1, n_samples=90000)


PLANTED = {"10": "dead", "40": "noisy", **{str(c): "out" for c in range(84, 96)}}


def test_coherence_psd_labels_planted_dead_noisy_and_outside_channels(planted):
    df = detect_bad_channels(planted, num_chunks=12)
    assert _bad(df) == PLANTED  # neuropixels1_probe: channel order is depth order, 84-95 on top
    assert df.loc["10", "xcor_hf"] < -0.5
    assert df.loc["40", "psd_hf"] > 0.02
    assert (df.loc[[str(c) for c in range(84, 96)], "xcor_lf"] < -0.75).all()
    assert list(df.columns[:3]) == ["label", "group", "fraction"]
    assert df.loc["10", "fraction"] > 0.5
    none = detect_bad_channels(planted, num_chunks=12, outside_location="none")
    assert _bad(none) == {"10": "dead", "40": "noisy"}


@pytest.mark.parametrize("method", ["coherence+psd", "std", "mad"])
def test_clean_data_gets_no_false_labels(method):
    df = detect_bad_channels(realistic(seed=2, n_samples=90000), method=method, num_chunks=12, seed=2)
    assert _bad(df) == {}


@pytest.mark.parametrize("method", ["std", "mad"])
def test_std_and_mad_label_flat_and_very_noisy_channels(method):
    rec = realistic(seed=4, n_samples=30000)
    x = rec.values.copy()
    x[:, 7] = 0.0
    x[:, 50] *= 10.0
    rec = from_array(x, sampling_frequency=FS, probe=get_probe(rec))
    df = detect_bad_channels(rec, method=method, num_chunks=10)
    assert _bad(df) == {"7": "dead", "50": "noisy"}
    assert df.loc["50", "robust_z"] > 5 and df.loc["7", "deviation_uV"] == 0


def test_detection_is_per_group():
    rng = np.random.default_rng(5)
    shared = scipy.signal.sosfilt(SOS, rng.normal(size=(60000, 2)), axis=0) * 40
    x = np.concatenate([shared[:, :1] + rng.normal(size=(60000, 16)) * 3,
                        3 * (shared[:, 1:] + rng.normal(size=(60000, 16)) * 3)], axis=1)  # shank 1 is 3x larger
    rec = from_array(x.astype("float32"), sampling_frequency=FS,
                     probe=multi_shank_probe(num_shanks=2, num_channels_per_shank=16))
    for method in ("std", "mad", "coherence+psd"):
        df = detect_bad_channels(rec, method=method, num_chunks=10, psd_hf_threshold=1.0)
        assert _bad(df) == {}, method
    assert df.group.tolist() == [0] * 16 + [1] * 16


def test_detection_is_seeded_and_order_independent(planted):
    rec = planted
    a = detect_bad_channels(rec, num_chunks=5, seed=1)
    b = detect_bad_channels(rec, num_chunks=5, seed=1)
    pd.testing.assert_frame_equal(a, b)
    c = detect_bad_channels(rec, num_chunks=5, seed=2)
    assert not np.array_equal(a.xcor_hf.values, c.xcor_hf.values)
    # shuffling the channels of the recording does not change any channel's label
    perm = np.random.default_rng(0).permutation(rec.sizes["channel"])
    d = detect_bad_channels(rec.isel(channel=perm), num_chunks=5, seed=1)
    assert d.label.to_dict() == a.label.to_dict()


def test_feature_kernel_on_plain_numpy():
    rng = np.random.default_rng(7)
    common = scipy.signal.sosfilt(SOS, rng.normal(size=(9000, 1)), axis=0) * 20
    x = common + rng.normal(size=(9000, 40))
    x[:, 12] = rng.normal(size=9000) * 0.2
    f = coherence_psd_features(x, sampling_frequency=FS)
    assert int(np.argmin(f["xcor_hf"])) == 12
    assert np.abs(np.delete(f["xcor_hf"], 12)).max() < 0.2
    assert np.abs(f["xcor_lf"]).max() < 0.25
    assert coherence_psd_labels(f, psd_hf_threshold=1.0).tolist() == [0] * 12 + [1] + [0] * 27


def test_detect_bad_input():
    rec = realistic(n_samples=9000)
    with pytest.raises(ValueError, match="method"):
        detect_bad_channels(rec, method="psd")
    with pytest.raises(ValueError, match="highpass_hz"):
        detect_bad_channels(rec, highpass_hz=20000.0)
    with pytest.raises(ValueError, match="n_neighbours must be odd"):
        detect_bad_channels(rec, n_neighbours=10)
    with pytest.raises(ValueError, match="geometry"):
        detect_bad_channels(from_array(np.zeros((9000, 4), "float32"), sampling_frequency=FS))
    # the std method does not need geometry
    df = detect_bad_channels(from_array(np.random.default_rng(0).normal(size=(9000, 4)).astype("float32"),
                                        sampling_frequency=FS), method="std", num_chunks=3, chunk_duration_s=0.05)
    assert len(df) == 4


# ----------------------------------------------------------------------------- interpolation


def _smooth_field(n_samples=30000, probe=None, noise_uV=5.0, seed=8):
    """A signal that varies smoothly with position (sources 150 µm wide) plus white noise."""
    rng = np.random.default_rng(seed)
    probe = probe or neuropixels1_probe(num_channels=64)
    pos = probe.contact_positions
    k = 12
    src = scipy.signal.sosfilt(SOS, rng.normal(size=(n_samples, k)), axis=0) * 50
    centres = np.column_stack([rng.uniform(-100, 150, k), rng.uniform(pos[:, 1].min(), pos[:, 1].max(), k)])
    d = np.linalg.norm(pos[None, :, :] - centres[:, None, :], axis=-1)
    truth = src @ np.exp(-((d / 150.0) ** 2))
    noise = rng.normal(size=truth.shape) * noise_uV
    return truth, (truth + noise).astype("float32"), probe


def test_interpolated_channel_is_recovered_within_noise():
    truth, x, probe = _smooth_field()
    broken = x.copy()
    broken[:, 20] = 0.0
    broken[:, 33] = np.random.default_rng(0).normal(size=x.shape[0]) * 500
    rec = from_array(broken, sampling_frequency=FS, probe=probe)
    out = interpolate_bad_channels(rec, bad_channel_ids=["20", "33"]).values
    for c in (20, 33):
        err = out[:, c] - truth[:, c]
        assert err.std() < 5.0  # within the noise of a channel (5 µV std)
        assert err.std() < 0.15 * truth[:, c].std()  # and far below the signal (30-40 µV std)
        assert (broken[:, c] - truth[:, c]).std() > 25
    good = np.setdiff1d(np.arange(64), [20, 33])
    assert np.array_equal(out[:, good], broken[:, good])


def test_interpolation_weights_stay_in_the_group_and_skip_bad_channels():
    probe = multi_shank_probe(num_shanks=2, num_channels_per_shank=8, shank_pitch_um=30.0)
    loc = probe.contact_positions
    groups = np.repeat([0, 1], 8)
    bad = np.zeros(16, dtype=bool)
    bad[[3, 4]] = True
    M = interpolation_matrix(loc, bad, groups=groups, sigma_um=25.0)
    assert np.all(M[8:, 3] == 0)  # shank 1 (30 µm away) never contributes
    assert M[4, 3] == 0 and M[3, 4] == 0  # bad channels never contribute
    assert M[:, 3].sum() == pytest.approx(1.0)
    assert np.array_equal(M[:, ~bad], np.eye(16)[:, ~bad])


def test_interpolation_is_exact_chunk_by_chunk_and_handles_gains():
    truth, x, probe = _smooth_field(n_samples=20000, seed=9)
    gain = np.full(64, 0.195)
    gain[5] = 0.39
    raw = np.round(x / gain).astype("int16")
    a = interpolate_bad_channels(from_array(da.from_array(raw, chunks=(3000, 64)), sampling_frequency=FS, probe=probe,
                                            gain_to_uV=gain), bad_channel_ids=["4"])
    b = interpolate_bad_channels(from_array(da.from_array(raw, chunks=(9000, 64)), sampling_frequency=FS, probe=probe,
                                            gain_to_uV=gain), bad_channel_ids=["4"])
    assert a.dtype == np.float32
    assert np.array_equal(a.values, b.values)
    # channel 4 in µV is the weighted average of its neighbours in µV (channel 5 has another gain)
    sig = a.attrs["preprocessing"][-1]["params"]["sigma_um"]
    assert sig == pytest.approx(25.6, abs=0.1)  # NP1.0 nearest-neighbour distance
    M = interpolation_matrix(probe.contact_positions, np.arange(64) == 4, sigma_um=sig, p=1.3)
    expected = (raw.astype(np.float64) * gain) @ M[:, 4] / gain[4]
    assert np.allclose(a.values[:, 4], expected, atol=1e-2)


def test_interpolate_bad_input():
    truth, x, probe = _smooth_field(n_samples=1000)
    rec = from_array(x, sampling_frequency=FS, probe=probe)
    with pytest.raises(ValueError, match="not in the recording"):
        interpolate_bad_channels(rec, bad_channel_ids=["999"])
    with pytest.raises(ValueError, match="no good channel"):
        interpolate_bad_channels(rec, bad_channel_ids=["3"], sigma_um=0.1)
    with pytest.raises(ValueError, match="df.index"):
        interpolate_bad_channels(rec, bad_channel_ids=pd.DataFrame({"label": ["dead"]}))
    with pytest.raises(ValueError, match="sigma_um"):
        interpolate_bad_channels(rec, bad_channel_ids=["3"], sigma_um=-1)
    with pytest.raises(ValueError, match="geometry"):
        interpolate_bad_channels(from_array(x, sampling_frequency=FS), bad_channel_ids=["3"])


# ----------------------------------------------------------------------------- removal


def test_remove_channels_keeps_probe_and_coords_consistent():
    x = np.arange(40, dtype="int16").reshape(5, 8)
    rec = from_array(x, sampling_frequency=FS, probe=linear_probe(num_channels=8), t_start_s=3.0)
    out = remove_channels(rec, channel_ids=["2", "5"])
    assert out.channel.values.tolist() == ["0", "1", "3", "4", "6", "7"]
    assert np.array_equal(out.values, x[:, [0, 1, 3, 4, 6, 7]])
    pg = get_probe(out)
    assert pg.get_contact_count() == 6
    assert np.allclose(pg.probes[0].contact_positions[:, 1], out.coords["y"].values)
    assert float(out.time[0]) == 3.0
    assert out.attrs["preprocessing"][-1] == {"step": "remove_channels", "params": {"channel_ids": ["2", "5"]}}
    with pytest.raises(ValueError, match="all 8 channels"):
        remove_channels(rec, channel_ids=[str(i) for i in range(8)])
    with pytest.raises(ValueError, match="not in the recording"):
        remove_channels(rec, channel_ids=["x"])


def test_detect_and_remove_or_interpolate_in_one_step(planted):
    rec = planted
    removed = detect_and_remove_bad_channels(rec, num_chunks=8)
    assert removed.sizes["channel"] == 96 - 14
    assert not set(PLANTED) & set(removed.channel.values.tolist())
    last = removed.attrs["preprocessing"][-1]
    assert last["step"] == "detect_and_remove_bad_channels" and sorted(last["params"]["removed"]) == sorted(PLANTED)
    assert len(removed.attrs["preprocessing"]) == 1
    fixed = detect_and_interpolate_bad_channels(rec, num_chunks=8)  # out-of-brain channels are left alone
    assert fixed.sizes["channel"] == 96
    assert sorted(fixed.attrs["preprocessing"][-1]["params"]["interpolated"]) == ["10", "40"]
    # the interpolated dead channel now looks like its neighbours
    v = fixed.values
    assert v[:, 10].std() > 0.5 * v[:, [8, 12]].std()
    with pytest.raises(ValueError, match="labels"):
        detect_and_remove_bad_channels(rec, labels=("good",))


@pytest.mark.reference
def test_matches_spikeinterface_detection_and_interpolation(planted):
    pytest.importorskip("spikeinterface")
    import spikeinterface.core as sc
    import spikeinterface.preprocessing as spre

    si = sc.NumpyRecording(planted.values, sampling_frequency=FS)
    si = si.set_probe(get_probe(planted).probes[0]) or si  # in place on recent SpikeInterface
    si.set_channel_gains(1.0)
    si.set_channel_offsets(0.0)
    _, labels = spre.detect_bad_channels(si, method="coherence+psd", num_random_chunks=12, seed=0)
    theirs = {str(c): {"noise": "noisy"}.get(str(lab), str(lab)) for c, lab in zip(si.channel_ids, labels, strict=True)
              if lab != "good"}
    assert theirs == PLANTED
    assert _bad(detect_bad_channels(planted, num_chunks=12)) == theirs
    ref = spre.interpolate_bad_channels(si, bad_channel_ids=si.channel_ids[[10, 40]], sigma_um=25.0).get_traces()
    ours = interpolate_bad_channels(planted, bad_channel_ids=["10", "40"], sigma_um=25.0).values
    x = planted.values
    # SI (like IBL) drops small weights after normalising without renormalising; we renormalise
    assert np.abs(ours - ref).max() < 0.1 * x.std()
    assert np.corrcoef(ours[:, 10], ref[:, 10])[0, 1] > 0.999
