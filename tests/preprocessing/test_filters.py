"""Filters: against scipy.signal on the same arrays, chunk-size invariance, margins, bad input."""

import numpy as np
import pytest
import scipy.signal

from spkfn.core.chunks import as_dask
from spkfn.io import from_array
from spkfn.preprocessing import (
    bandpass_filter,
    design_filter,
    design_notch,
    filter_margin_samples,
    filter_traces,
    highpass_filter,
    notch_filter,
)
from spkfn.preprocessing import filter as filt

FS = 30000.0
TOL = 1e-4  # of the reference signal's std (the criterion)


def _signal(n=24000, c=6, seed=0, dtype="float32"):
    """Noise + DC offsets + a random walk (large slow drift): hard on edges and margins."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, c)) * 20 + rng.uniform(-300, 300, c) + np.cumsum(rng.normal(size=(n, 1)), axis=0)
    return x.astype(dtype)


def _scipy(sos, x, direction):
    x = np.asarray(x, dtype=np.float64)
    zi = scipy.signal.sosfilt_zi(sos)[:, :, None]
    if direction == "forward-backward":
        return scipy.signal.sosfiltfilt(sos, x, axis=0)
    if direction == "forward":
        return scipy.signal.sosfilt(sos, x, axis=0, zi=zi * x[0])[0]
    xr = x[::-1]
    return scipy.signal.sosfilt(sos, xr, axis=0, zi=zi * xr[0])[0][::-1]


def _rechunk(rec, chunk_size):
    return rec.copy(data=as_dask(rec, chunk_size=chunk_size))


DESIGNS = [
    ("bandpass", {"freq_min_hz": 300.0, "freq_max_hz": 6000.0}),
    ("highpass", {"freq_min_hz": 150.0}),
    ("lowpass", {"freq_max_hz": 1000.0}),
    ("bandstop", {"freq_min_hz": 500.0, "freq_max_hz": 2000.0}),
]
FTYPES = [("butter", {}), ("bessel", {}), ("cheby1", {"ripple_db": 0.5}), ("cheby2", {"attenuation_db": 40.0}),
          ("ellip", {"ripple_db": 0.5, "attenuation_db": 40.0})]


@pytest.mark.parametrize("direction", ["forward-backward", "forward", "backward"])
@pytest.mark.parametrize("ftype,extra", FTYPES)
@pytest.mark.parametrize("btype,freqs", DESIGNS)
def test_kernel_matches_scipy(btype, freqs, ftype, extra, direction):
    x = _signal()
    sos = design_filter(sampling_frequency=FS, btype=btype, ftype=ftype, order=4, **freqs, **extra)
    ref = _scipy(sos, x, direction)
    y = filter_traces(x, sos=sos, direction=direction)
    assert y.dtype == np.float32
    assert np.abs(y - ref).max() < TOL * ref.std()


@pytest.mark.parametrize("direction", ["forward-backward", "forward"])
@pytest.mark.parametrize("btype,freqs", DESIGNS)
def test_chunked_equals_whole_array_scipy(btype, freqs, direction):
    """The lazy, chunked step equals scipy on the whole array, for two chunk sizes, edges included."""
    x = _signal(n=40000)
    rec = from_array(x, sampling_frequency=FS)
    sos = design_filter(sampling_frequency=FS, btype=btype, order=5, **freqs)
    ref = _scipy(sos, x, direction)
    outs = []
    for chunk in (3001, 11000):
        out = filt(_rechunk(rec, chunk), btype=btype, order=5, direction=direction, **freqs).values
        assert np.abs(out - ref).max() < TOL * ref.std()
        outs.append(out)
    assert np.abs(outs[0] - outs[1]).max() < TOL * ref.std()


def test_bandpass_defaults_match_scipy_butterworth():
    x = _signal(n=60000, c=4)
    rec = _rechunk(from_array(x, sampling_frequency=FS), 7000)
    out = bandpass_filter(rec)
    sos = scipy.signal.butter(5, [300.0, 6000.0], btype="bandpass", fs=FS, output="sos")
    ref = scipy.signal.sosfiltfilt(sos, x.astype(np.float64), axis=0)
    assert np.abs(out.values - ref).max() < TOL * ref.std()
    assert out.attrs["preprocessing"][-1]["params"]["margin_samples_used"] == filter_margin_samples(sos)


def test_chunks_smaller_than_margin():
    x = _signal(n=20000, c=3)
    rec = _rechunk(from_array(x, sampling_frequency=FS), 300)  # margin is ~800 samples
    out = highpass_filter(rec, freq_min_hz=300.0).values
    sos = design_filter(sampling_frequency=FS, btype="highpass", freq_min_hz=300.0)
    ref = scipy.signal.sosfiltfilt(sos, x.astype(np.float64), axis=0)
    assert np.abs(out - ref).max() < TOL * ref.std()


def test_notch_matches_scipy_and_removes_the_line():
    t = np.arange(150000) / FS
    rng = np.random.default_rng(1)
    x = (np.sin(2 * np.pi * 60 * t)[:, None] * 50 + rng.normal(size=(t.size, 2))).astype("float32")
    rec = _rechunk(from_array(x, sampling_frequency=FS), 20000)
    out = notch_filter(rec, freq_hz=60.0, quality=30.0).values
    sos = design_notch(sampling_frequency=FS, freq_hz=60.0, quality=30.0)
    ref = scipy.signal.sosfiltfilt(sos, x.astype(np.float64), axis=0)
    assert np.abs(out - ref).max() < TOL * ref.std()
    mid = slice(60000, 90000)
    assert np.abs(out[mid]).std() < 1.2  # the 50-amplitude line is gone, unit noise remains


def test_frequency_response_zero_phase():
    t = np.arange(60000) / FS
    x = (np.sin(2 * np.pi * 1000 * t) + 5 * np.sin(2 * np.pi * 20 * t))[:, None].astype("float32")
    y = bandpass_filter(from_array(x, sampling_frequency=FS)).values[:, 0]
    mid = slice(15000, 45000)
    ref = np.sin(2 * np.pi * 1000 * t)[mid]
    assert np.abs(y[mid] - ref).max() < 0.01  # 1 kHz passes unchanged and unshifted, 20 Hz removed


def test_edges_follow_scipy_padding():
    """At the recording's own edges the chunked result equals scipy's (odd padding, zi start)."""
    x = _signal(n=20000, c=2)
    rec = _rechunk(from_array(x, sampling_frequency=FS), 4000)
    out = bandpass_filter(rec).values
    sos = design_filter(sampling_frequency=FS, freq_min_hz=300.0, freq_max_hz=6000.0)
    ref = scipy.signal.sosfiltfilt(sos, x.astype(np.float64), axis=0)
    assert np.abs(out[:50] - ref[:50]).max() < TOL * ref.std()
    assert np.abs(out[-50:] - ref[-50:]).max() < TOL * ref.std()


def test_short_input_shortens_padding():
    x = _signal(n=20, c=2)
    sos = design_filter(sampling_frequency=FS, freq_min_hz=300.0, freq_max_hz=6000.0)
    y = filter_traces(x, sos=sos)
    ref = scipy.signal.sosfiltfilt(sos, x.astype(np.float64), axis=0, padlen=19)
    assert np.allclose(y, ref, atol=1e-3 * ref.std())


def test_int16_input_and_integer_output():
    x = _signal(n=20000, c=3, dtype="float64")
    xi = np.clip(np.rint(x), -32768, 32767).astype("int16")
    rec = from_array(xi, sampling_frequency=FS, gain_to_uV=0.195, offset_to_uV=-10.0)
    out = bandpass_filter(rec)
    sos = design_filter(sampling_frequency=FS, freq_min_hz=300.0, freq_max_hz=6000.0)
    ref = scipy.signal.sosfiltfilt(sos, xi.astype(np.float64), axis=0)
    assert out.dtype == np.float32
    assert np.abs(out.values - ref).max() < TOL * ref.std()
    # DC removed -> offset 0; gain kept
    assert np.all(out.offset_to_uV.values == 0) and np.allclose(out.gain_to_uV.values, 0.195)
    out_i = bandpass_filter(rec, dtype="int16").values
    assert out_i.dtype == np.int16
    assert np.array_equal(out_i, np.clip(np.rint(out.values), -32768, 32767).astype("int16"))


def test_lowpass_keeps_offset_and_float64_output():
    x = _signal(n=10000, c=2, dtype="float64")
    rec = from_array(x, sampling_frequency=FS, offset_to_uV=5.0)
    out = filt(rec, btype="lowpass", freq_max_hz=2000.0, dtype="float64")
    assert out.dtype == np.float64 and np.all(out.offset_to_uV.values == 5.0)
    sos = design_filter(sampling_frequency=FS, btype="lowpass", freq_max_hz=2000.0)
    ref = scipy.signal.sosfiltfilt(sos, x, axis=0)
    assert np.abs(out.values - ref).max() < 1e-5 * ref.std()


def test_margin_covers_the_impulse_response():
    for fmin in (300.0, 100.0, 20.0):
        sos = design_filter(sampling_frequency=FS, btype="highpass", freq_min_hz=fmin)
        m = filter_margin_samples(sos)
        imp = np.zeros(20 * m)
        imp[0] = 1.0
        h = np.abs(scipy.signal.sosfilt(sos, imp))
        assert h[m:].max() <= 1e-7 * h.max()
        r_max = np.abs(scipy.signal.sos2zpk(sos)[1]).max()
        assert r_max ** m <= 1e-7
    margins = [filter_margin_samples(design_filter(sampling_frequency=FS, btype="highpass", freq_min_hz=f))
               for f in (600.0, 300.0, 100.0)]
    assert margins[0] < margins[1] < margins[2]


def test_explicit_margin_is_used_and_recorded():
    rec = from_array(_signal(n=5000, c=2), sampling_frequency=FS)
    out = bandpass_filter(rec, margin_ms=10.0)
    assert out.attrs["preprocessing"][-1]["params"]["margin_samples_used"] == 300


def test_lazy_until_computed():
    import dask.array as da

    rec = from_array(da.from_array(_signal(n=30000, c=4), chunks=(7000, 4)), sampling_frequency=FS)
    out = bandpass_filter(rec)
    assert isinstance(out.data, da.Array)
    assert out.dims == ("time", "channel") and out.shape == rec.shape
    assert out.attrs["preprocessing"][-1]["step"] == "bandpass_filter"


@pytest.mark.parametrize("kwargs,match", [
    ({"freq_max_hz": 15000.0}, r"freq_max_hz must be in \(0, 15000\).*Nyquist"),
    ({"freq_max_hz": 20000.0}, r"freq_max_hz must be in \(0, 15000\)"),
    ({"freq_min_hz": 0.0}, r"freq_min_hz must be in \(0, 15000\)"),
    ({"freq_min_hz": -1.0}, r"freq_min_hz"),
    ({"freq_min_hz": 6000.0, "freq_max_hz": 300.0}, r"freq_min_hz must be smaller than freq_max_hz"),
    ({"order": -2}, r"order must be an integer in \[1, 20\]"),
    ({"order": 0}, r"order must be an integer in \[1, 20\]"),
    ({"order": 2.5}, r"order must be an integer"),
    ({"ftype": "cheby1"}, r"ripple_db"),
    ({"ftype": "chebyshev"}, r"ftype must be one of"),
    ({"direction": "both"}, r"direction must be one of"),
    ({"margin_ms": -1.0}, r"margin_ms must be in \[0, inf\)"),
    ({"dtype": "complex64"}, r"dtype must be an integer or floating dtype"),
])
def test_bad_input(kwargs, match):
    rec = from_array(np.zeros((1000, 2), "float32"), sampling_frequency=FS)
    with pytest.raises(ValueError, match=match):
        bandpass_filter(rec, **kwargs)


def test_bad_design():
    with pytest.raises(ValueError, match="a highpass filter needs freq_min_hz"):
        design_filter(sampling_frequency=FS, btype="highpass")
    with pytest.raises(ValueError, match="freq_max_hz is not used by a highpass filter"):
        design_filter(sampling_frequency=FS, btype="highpass", freq_min_hz=300.0, freq_max_hz=6000.0)
    with pytest.raises(ValueError, match="attenuation_db is only used by"):
        design_filter(sampling_frequency=FS, freq_min_hz=300.0, freq_max_hz=6000.0, attenuation_db=40.0)
    with pytest.raises(ValueError, match="btype must be one of"):
        design_filter(sampling_frequency=FS, btype="band", freq_min_hz=300.0, freq_max_hz=6000.0)
    with pytest.raises(ValueError, match="freq_hz must be in"):
        design_notch(sampling_frequency=FS, freq_hz=16000.0)
    with pytest.raises(ValueError, match="quality must be in"):
        design_notch(sampling_frequency=FS, freq_hz=50.0, quality=0.0)
    with pytest.raises(ValueError, match="traces must be 2-D"):
        filter_traces(np.zeros(10), sos=design_filter(sampling_frequency=FS, btype="lowpass", freq_max_hz=100.0))
    with pytest.raises(ValueError, match="sos must have shape"):
        filter_traces(np.zeros((10, 2)), sos=np.zeros((2, 5)))


@pytest.mark.reference
def test_bandpass_matches_spikeinterface():
    si = pytest.importorskip("spikeinterface.core")
    spre = pytest.importorskip("spikeinterface.preprocessing")
    x = _signal(n=30000, c=8)
    ref = spre.bandpass_filter(si.NumpyRecording(x, FS), freq_min=300.0, freq_max=6000.0).get_traces()
    out = bandpass_filter(_rechunk(from_array(x, sampling_frequency=FS), 7000)).values
    assert np.abs(out - ref).max() < TOL * ref.std()
