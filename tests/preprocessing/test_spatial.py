import dask.array as da
import numpy as np
import pytest
import scipy.signal

from spkfn.io import from_array, get_probe, linear_probe, multi_shank_probe, neuropixels1_probe
from spkfn.preprocessing.spatial import (
    agc_highpass_kernel,
    depth_order,
    highpass_spatial_filter,
    spatial_highpass_matrix,
    zero_channel_pad,
)

FS = 30000.0


def _rec(x, chunk=None, **kw):
    data = x if chunk is None else da.from_array(x, chunks=(chunk, x.shape[1]))
    return from_array(data, sampling_frequency=FS, **kw)


def _reference_destripe(x, y_um, x_um, rows, *, window_s=0.1, epsilon=0.003, pad=60, order=3, wn=0.01):
    """IBL's kfilt written out row by row (one sosfiltfilt per sample ``rows``), with our gain floor."""
    idx = np.lexsort((x_um, y_um))
    xs = x[:, idx].astype(np.float64)
    n_win = int(np.round(window_s * FS / 2) * 2 + 1)
    w = np.hanning(n_win)
    gain = scipy.signal.fftconvolve(np.abs(xs), (w / w.sum())[:, None], mode="same", axes=0)
    floor = epsilon * np.median(gain, axis=1, keepdims=True)
    xa = xs / np.maximum(gain, floor)
    pad = min(pad, xs.shape[1])
    padded = np.concatenate([xa[:, :pad][:, ::-1], xa, xa[:, -pad:][:, ::-1]], axis=1)
    sos = scipy.signal.butter(order, wn, btype="highpass", output="sos")
    out = np.empty((len(rows), xs.shape[1]))
    for k, t in enumerate(rows):
        row = scipy.signal.sosfiltfilt(sos, padded[t])
        out[k] = row[pad:pad + xs.shape[1]] * gain[t]
    res = np.empty_like(out)
    res[:, idx] = out
    return res


@pytest.fixture(scope="module")
def striped():
    """64 NP1.0 channels: independent noise + a large stripe shared by all channels, slowly varying in depth."""
    rng = np.random.default_rng(0)
    n = 12000
    probe = neuropixels1_probe(num_channels=64)
    y = probe.contact_positions[:, 1]
    stripe = rng.normal(size=(n, 1)) * 40 * (1 + y[None, :] / 2000)
    x = (rng.normal(size=(n, 64)) * 5 + stripe).astype("float32")
    return x, probe


def test_matches_row_by_row_ibl_definition_in_any_channel_order(striped):
    x, probe = striped
    perm = np.random.default_rng(1).permutation(64)
    rec = _rec(x[:, perm], probe=probe.get_slice(perm))
    out = highpass_spatial_filter(rec).values
    rows = np.r_[0:20, 20:x.shape[0]:97, x.shape[0] - 20:x.shape[0]]  # the edges and a sample of the rest
    ref = _reference_destripe(x[:, perm], rec.coords["y"].values, rec.coords["x"].values, rows)
    assert np.abs(out[rows] - ref).max() < 1e-4 * x.std()


def test_removes_stripes_and_keeps_local_spikes(striped):
    x, probe = striped
    x = x.copy()
    x[6000:6010, 30] -= 300.0  # a spike on one channel
    out = highpass_spatial_filter(_rec(x, probe=probe)).values
    assert out[:5000].std() < 0.3 * x[:5000].std()  # the stripe is gone
    assert out[:5000].std() == pytest.approx(5.0, rel=0.3)  # the channel noise stays
    assert out[6000:6010, 30].mean() < -150.0  # the spike survives


def test_chunk_size_invariance_and_whole_array(striped):
    x, probe = striped
    a = highpass_spatial_filter(_rec(x, chunk=2000, probe=probe)).values
    b = highpass_spatial_filter(_rec(x, chunk=7000, probe=probe)).values
    whole = highpass_spatial_filter(_rec(x, probe=probe), chunk_size=x.shape[0]).values
    assert np.abs(a - b).max() < 1e-4 * x.std()
    assert np.abs(a - whole).max() < 1e-4 * x.std()


def test_without_agc_it_is_one_matrix_product(striped):
    x, probe = striped
    out = highpass_spatial_filter(_rec(x, chunk=5000, probe=probe), apply_agc=False).values
    M = spatial_highpass_matrix(64)
    assert np.allclose(out, x @ M.astype(np.float32), atol=1e-3)
    assert out.dtype == np.float32


def test_groups_are_filtered_separately():
    rng = np.random.default_rng(2)
    probe = multi_shank_probe(num_shanks=2, num_channels_per_shank=32)
    x = (rng.normal(size=(6000, 64)) * 5 + rng.normal(size=(6000, 1)) * 30).astype("float32")
    a = highpass_spatial_filter(_rec(x, probe=probe)).values
    y = x.copy()
    y[:, 32:] = rng.normal(size=(6000, 32)) * 500
    b = highpass_spatial_filter(_rec(y, probe=probe)).values
    assert np.array_equal(a[:, :32], b[:, :32])


def test_dead_channel_stays_zero_and_int_input(striped):
    x, probe = striped
    raw = np.round(x * 4).astype("int16")
    raw[:, 12] = 0
    out = highpass_spatial_filter(_rec(raw, probe=probe, gain_to_uV=0.25))
    assert out.dtype == np.float32
    assert np.all(out.values[:, 12] == 0)
    assert np.allclose(out.coords["gain_to_uV"].values, 0.25)  # a linear step in raw units
    assert out.attrs["preprocessing"][-1]["step"] == "highpass_spatial_filter"


def test_agc_kernel_plain_numpy():
    x = np.ones((200, 8), dtype="float32") * 3.0
    y = agc_highpass_kernel(x, matrix=spatial_highpass_matrix(8), window=21)
    assert np.abs(y).max() < 1e-3  # a constant across channels is removed


def test_highpass_spatial_filter_bad_input(striped):
    x, probe = striped
    rec = _rec(x, probe=probe)
    with pytest.raises(ValueError, match="highpass_wn"):
        highpass_spatial_filter(rec, highpass_wn=1.0)
    with pytest.raises(ValueError, match="n_channel_pad"):
        highpass_spatial_filter(rec, n_channel_pad=-1)
    with pytest.raises(ValueError, match="agc_window_s"):
        highpass_spatial_filter(rec, agc_window_s=0)
    with pytest.raises(ValueError, match="geometry"):
        highpass_spatial_filter(_rec(x))


# ----------------------------------------------------------------------------- depth_order


def test_depth_order_sorts_by_group_then_depth_and_keeps_probe():
    probe = multi_shank_probe(num_shanks=2, num_channels_per_shank=4)
    x = np.arange(5 * 8, dtype="int16").reshape(5, 8)
    perm = np.array([5, 2, 7, 0, 6, 1, 4, 3])
    rec = _rec(x, probe=probe).isel(channel=perm)
    out = depth_order(rec)
    assert out.channel.values.tolist() == [str(i) for i in range(8)]
    assert np.array_equal(out.values, x)
    assert np.array_equal(get_probe(out).get_global_device_channel_indices()["device_channel_indices"], np.arange(8))
    flipped = depth_order(rec, flip=True)
    assert flipped.channel.values.tolist() == ["3", "2", "1", "0", "7", "6", "5", "4"]
    mixed = depth_order(rec, by_group=False)
    assert np.all(np.diff(mixed.coords["y"].values) >= 0)
    with pytest.raises(ValueError, match="geometry"):
        depth_order(_rec(x))


def test_depth_order_staggered_np1_rows():
    probe = neuropixels1_probe(num_channels=8)
    rec = _rec(np.zeros((2, 8), "float32"), probe=probe).isel(channel=[7, 6, 5, 4, 3, 2, 1, 0])
    out = depth_order(rec)
    y, xpos = out.coords["y"].values, out.coords["x"].values
    assert np.all(np.diff(y) >= 0)
    assert np.all((np.diff(y) > 0) | (np.diff(xpos) > 0))


# ----------------------------------------------------------------------------- zero_channel_pad


def test_zero_channel_pad_positions_coords_and_probe():
    x = np.arange(1, 13, dtype="int16").reshape(4, 3)
    rec = _rec(x, chunk=2, probe=linear_probe(num_channels=3, pitch_um=20.0), gain_to_uV=0.5, t_start_s=1.0)
    out = zero_channel_pad(rec, num_channels=6, channel_positions=[0, 2, 4])
    assert out.channel.values.tolist() == ["0", "pad0", "1", "pad1", "2", "pad2"]
    assert np.array_equal(out.values[:, [0, 2, 4]], x)
    assert np.all(out.values[:, [1, 3, 5]] == 0)
    assert out.dtype == np.int16
    assert out.coords["gain_to_uV"].values.tolist() == [0.5, 1.0, 0.5, 1.0, 0.5, 1.0]
    assert out.coords["group"].values.tolist() == [0, 1, 0, 1, 0, 1]
    assert out.coords["y"].values.tolist() == [0.0, 60.0, 20.0, 80.0, 40.0, 100.0]
    assert float(out.time[0]) == 1.0 and out.sizes["time"] == 4
    pg = get_probe(out)
    assert pg.get_contact_count() == 6
    pos = np.concatenate([p.contact_positions for p in pg.probes])
    chans = np.concatenate([p.device_channel_indices for p in pg.probes])
    assert np.allclose(pos[np.argsort(chans), 1], out.coords["y"].values)
    assert out.attrs["preprocessing"][-1]["step"] == "zero_channel_pad"


def test_zero_channel_pad_defaults_and_no_geometry():
    rec = _rec(np.ones((5, 2), "float32"))
    out = zero_channel_pad(rec, num_channels=4, pad_channel_ids=["a", "b"], pad_group=0)
    assert out.channel.values.tolist() == ["0", "1", "a", "b"]
    assert out.coords["group"].values.tolist() == [0, 0, 0, 0]
    assert "x" not in out.coords
    same = zero_channel_pad(rec, num_channels=2)
    assert np.array_equal(same.values, rec.values)


def test_zero_channel_pad_bad_input():
    rec = _rec(np.ones((5, 3), "float32"), probe=linear_probe(num_channels=3))
    with pytest.raises(ValueError, match="num_channels"):
        zero_channel_pad(rec, num_channels=2)
    with pytest.raises(ValueError, match="channel_positions"):
        zero_channel_pad(rec, num_channels=4, channel_positions=[0, 0, 1])
    with pytest.raises(ValueError, match="channel_positions"):
        zero_channel_pad(rec, num_channels=4, channel_positions=[0, 1, 4])
    with pytest.raises(ValueError, match="pad_channel_ids"):
        zero_channel_pad(rec, num_channels=4, pad_channel_ids=["1"])
    with pytest.raises(ValueError, match="pad_locations_um"):
        zero_channel_pad(rec, num_channels=5, pad_locations_um=[[0, 1]])


@pytest.mark.reference
def test_matches_spikeinterface_highpass_spatial_filter(striped):
    pytest.importorskip("spikeinterface")
    import spikeinterface.core as sc
    import spikeinterface.preprocessing as spre

    x, probe = striped
    si = sc.NumpyRecording(x, sampling_frequency=FS)
    si = si.set_probe(probe) or si  # in place on recent SpikeInterface, a new object on older ones
    ref = spre.highpass_spatial_filter(si).get_traces()
    ours = highpass_spatial_filter(_rec(x, chunk=5000, probe=probe)).values
    # only the gain floor differs (ours is relative to the other channels, SI's to each channel's RMS)
    assert np.abs(ours - ref).max() < 1e-4 * x.std()


def test_smoothed_amplitude_equals_fft_convolution_with_a_long_window():
    from spkfn.preprocessing.spatial import smoothed_amplitude

    x = (np.random.default_rng(3).normal(size=(40000, 5)) * 50).astype("float32")
    x[20000:20100] *= 40  # a burst, then quiet again: the running sums must not drift
    w = np.hanning(3001)
    ref = scipy.signal.fftconvolve(np.abs(x).astype(np.float64), w[:, None] / w.sum(), mode="same", axes=0)
    out = smoothed_amplitude(x, window_samples=3001)
    assert np.abs(out - ref).max() < 1e-5 * ref.max()
    with pytest.raises(ValueError, match="odd"):
        smoothed_amplitude(x, window_samples=10)
