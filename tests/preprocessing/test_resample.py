import dask.array as da
import numpy as np
import pytest
import scipy.signal

from spkfn.io import from_array, get_probe, linear_probe
from spkfn.preprocessing.resample import decimate, resample, resample_kernel

FS = 30000.0


def _rec(x, chunk=None, **kw):
    data = x if chunk is None else da.from_array(x, chunks=(chunk, x.shape[1]))
    return from_array(data, sampling_frequency=kw.pop("fs", FS), **kw)


@pytest.fixture(scope="module")
def noise():
    return np.random.default_rng(0).normal(size=(40003, 3)).astype("float32")


@pytest.mark.parametrize("target,up,down", [(2500.0, 1, 12), (32000.0, 16, 15), (24414.0625, 625, 768), (60000.0, 2, 1)])
def test_resample_matches_scipy_resample_poly_whole_array(noise, target, up, down):
    ref = scipy.signal.resample_poly(noise.astype(np.float64), up, down, axis=0)
    out = resample(_rec(noise, chunk=7001), sampling_frequency_hz=target)
    assert out.attrs["sampling_frequency"] == pytest.approx(target)
    assert out.shape == ref.shape
    # edges included: scipy pads with zeros, so do we
    assert np.abs(out.values - ref).max() < 1e-5 * noise.std()


def test_resample_chunk_size_invariance(noise):
    a = resample(_rec(noise, chunk=5000), sampling_frequency_hz=20000.0, chunk_size=1234).values
    b = resample(_rec(noise, chunk=17000), sampling_frequency_hz=20000.0, chunk_size=9999).values
    assert np.array_equal(a, b)


def test_resample_keeps_band_and_removes_aliases():
    t = np.arange(60000) / FS
    x = np.column_stack([np.sin(2 * np.pi * 500 * t), np.sin(2 * np.pi * 2000 * t)]).astype("float32")
    out = resample(_rec(x), sampling_frequency_hz=2500.0).values  # new Nyquist 1250 Hz
    mid = slice(500, -500)
    amplitude = np.sqrt(2) * out[mid].std(axis=0)
    assert amplitude[0] == pytest.approx(1.0, abs=0.01)  # 500 Hz passes
    assert amplitude[1] < 0.01  # 2000 Hz would alias to 500 Hz: filtered out


def test_resample_time_coords_probe_and_history():
    x = np.random.default_rng(1).normal(size=(3000, 4)).astype("int16")
    rec = from_array(x, sampling_frequency=FS, probe=linear_probe(num_channels=4), t_start_s=12.5,
                     gain_to_uV=0.195)
    out = resample(rec, sampling_frequency_hz=10000.0)
    assert out.dtype == np.float32  # integers are not rounded back by default
    assert out.sizes["time"] == 1000
    assert float(out.time[0]) == 12.5
    assert float(out.time[1] - out.time[0]) == pytest.approx(1e-4)
    assert np.allclose(out.coords["gain_to_uV"].values, 0.195)
    assert get_probe(out).get_contact_count() == 4
    assert out.attrs["preprocessing"][-1]["step"] == "resample"
    assert out.attrs["preprocessing"][-1]["params"]["up"] == 1
    assert rec.attrs.get("preprocessing") is None  # input untouched


def test_resample_integer_output_is_rounded_and_clipped():
    x = np.full((3000, 1), 30000.0, dtype="float32")
    x[::2] = -30000.0
    out = resample(_rec(x), sampling_frequency_hz=15000.0, dtype="int16").values
    assert out.dtype == np.int16
    assert out.max() <= np.iinfo(np.int16).max and out.min() >= np.iinfo(np.int16).min


def test_resample_kernel_block_equals_whole():
    x = np.random.default_rng(2).normal(size=(5000, 2))
    whole = resample_kernel(x, up=3, down=7)
    # outputs 600..900 from an input block that covers their support
    a, b = 600 * 7 // 3 - 200, 900 * 7 // 3 + 200
    part = resample_kernel(x[a:b], up=3, down=7, start=a, first_output=600, num_output=300)
    assert np.allclose(part, whole[600:900])


def test_resample_same_rate_is_identity(noise):
    out = resample(_rec(noise), sampling_frequency_hz=FS)
    assert np.array_equal(out.values, noise)


@pytest.mark.parametrize("bad", [0.0, -10.0, float("nan")])
def test_resample_rejects_bad_rate(noise, bad):
    with pytest.raises(ValueError, match="sampling_frequency_hz"):
        resample(_rec(noise), sampling_frequency_hz=bad)


def test_resample_rejects_irrational_ratio(noise):
    with pytest.raises(ValueError, match="ratio"):
        resample(_rec(noise), sampling_frequency_hz=30000.0 * np.pi / 4, max_denominator=50)


@pytest.mark.parametrize("q", [2, 5, 12])
def test_decimate_fir_matches_resample_poly(noise, q):
    out = decimate(_rec(noise, chunk=4096), factor=q)
    ref = scipy.signal.resample_poly(noise.astype(np.float64), 1, q, axis=0)
    assert out.attrs["sampling_frequency"] == FS / q
    assert np.abs(out.values - ref).max() < 1e-5 * noise.std()


def test_decimate_none_selects_samples_and_shifts_time(noise):
    rec = _rec(noise, chunk=4096, t_start_s=2.0)
    out = decimate(rec, factor=4, filter="none", offset=3)
    assert np.array_equal(out.values, noise[3::4])
    assert out.dtype == noise.dtype
    assert float(out.time[0]) == pytest.approx(2.0 + 3 / FS)
    assert float(out.time[1] - out.time[0]) == pytest.approx(4 / FS)


def test_decimate_chunk_size_invariance(noise):
    a = decimate(_rec(noise, chunk=3000), factor=3, chunk_size=777).values
    b = decimate(_rec(noise, chunk=11000), factor=3).values
    assert np.array_equal(a, b)


def test_decimate_bad_input(noise):
    rec = _rec(noise)
    with pytest.raises(ValueError, match="factor"):
        decimate(rec, factor=0)
    with pytest.raises(ValueError, match="offset"):
        decimate(rec, factor=4, offset=4, filter="none")
    with pytest.raises(ValueError, match="offset"):
        decimate(rec, factor=4, offset=1)
    with pytest.raises(ValueError, match="filter"):
        decimate(rec, factor=4, filter="iir")


@pytest.mark.reference
def test_matches_spikeinterface_resample():
    pytest.importorskip("spikeinterface")
    import spikeinterface.core as sc
    import spikeinterface.preprocessing as spre

    t = np.arange(90000) / FS
    x = np.column_stack([np.sin(2 * np.pi * 300 * t), np.cos(2 * np.pi * 700 * t)]).astype("float32")
    ref = spre.resample(sc.NumpyRecording(x, sampling_frequency=FS), resample_rate=2500).get_traces()
    ours = resample(_rec(x, chunk=10000), sampling_frequency_hz=2500.0).values
    assert ours.shape == ref.shape
    assert np.abs(ours - ref)[100:-100].max() < 1e-3
