import dask.array as da
import numpy as np
import pytest
import scipy.signal

from spkfn.io import from_array, linear_probe, read_binary, read_probe, set_probe
from spkfn.preprocessing.phase_shift import (
    inter_sample_shift_from_probe,
    phase_shift,
    phase_shift_kernel,
)

from ..conftest import shared_data_path

FS = 30000.0


def _band_limited(n, c, seed=0):
    rng = np.random.default_rng(seed)
    sos = scipy.signal.butter(4, [300, 6000], "bandpass", fs=FS, output="sos")
    return scipy.signal.sosfilt(sos, rng.normal(size=(n, c)) * 50, axis=0).astype("float32")


def _rec(x, chunk=None, **kw):
    data = x if chunk is None else da.from_array(x, chunks=(chunk, x.shape[1]))
    return from_array(data, sampling_frequency=FS, **kw)


@pytest.mark.parametrize("delay", [0.5, 1 / 13, 0.9, -0.3])
def test_known_sinusoid_delayed_by_known_fraction_is_realigned(delay):
    n = np.arange(20000)
    f = 1234.5 / FS  # cycles per sample
    sampled_late = np.sin(2 * np.pi * f * (n + delay))[:, None]  # channel sampled `delay` late
    y = phase_shift_kernel(sampled_late, shifts=np.array([delay]), margin=1200)
    truth = np.sin(2 * np.pi * f * n)
    mid = slice(1500, -1500)
    assert np.abs(y[mid, 0] - truth[mid]).max() < 1e-4
    # and it really moved: the uncorrected trace is off by about 2 pi f delay
    assert np.abs(sampled_late[mid, 0] - truth[mid]).max() > 0.1 * abs(delay)


def test_phase_shift_recording_aligns_channels():
    n = np.arange(60000)
    d = np.array([0.0, 1 / 13, 5 / 13, 12 / 13])
    x = np.sin(2 * np.pi * 800.0 * (n[:, None] + d[None, :]) / FS).astype("float32")
    out = phase_shift(_rec(x, chunk=10000), inter_sample_shift=d).values
    assert out.dtype == np.float32
    mid = slice(2000, -2000)
    assert np.abs(out[mid] - np.sin(2 * np.pi * 800.0 * n[mid, None] / FS)).max() < 1e-4


def test_phase_shift_whole_array_equivalence_and_chunk_invariance():
    x = _band_limited(200000, 6)
    d = np.random.default_rng(1).uniform(0, 1, 6)
    whole = phase_shift_kernel(x, shifts=d, margin=1200)
    a = phase_shift(_rec(x, chunk=7000), inter_sample_shift=d).values
    b = phase_shift(_rec(x, chunk=50000), inter_sample_shift=d).values
    tol = 5e-4 * x.std()  # the FFT chunks see 40 ms of context: a truncated sinc (see docs)
    assert np.abs(a - whole).max() < tol
    assert np.abs(a - b).max() < tol
    # and the correction is not a no-op
    assert np.abs(a - x).max() > 100 * tol


def test_phase_shift_longer_margin_is_closer_to_whole_array():
    x = _band_limited(120000, 2, seed=3)
    d = np.array([0.3, 0.7])
    whole = phase_shift_kernel(x, shifts=d, margin=9000)
    short = np.abs(phase_shift(_rec(x, chunk=20000), inter_sample_shift=d, margin_ms=10).values - whole).max()
    long = np.abs(phase_shift(_rec(x, chunk=20000), inter_sample_shift=d, margin_ms=100).values - whole).max()
    assert long < short


def test_phase_shift_zero_shift_is_identity_and_int_output_rounds():
    x = np.random.default_rng(2).integers(-1000, 1000, size=(5000, 3)).astype("int16")
    out = phase_shift(_rec(x), inter_sample_shift=np.zeros(3), dtype="int16").values
    assert out.dtype == np.int16
    assert np.array_equal(out, x)


def test_shifts_from_probe_annotations_np1_np2_and_lf():
    p = linear_probe(num_channels=4)
    p.annotate(num_channels_per_adc=12, ap_sample_frequency_hz=30000.0, lf_sample_frequency_hz=2500.0)
    p.annotate_contacts(adc_sample_order=np.array([0, 1, 6, 11]))
    ap = from_array(np.zeros((10, 4), "int16"), sampling_frequency=30000.0, probe=p)
    assert np.allclose(inter_sample_shift_from_probe(ap), np.array([0, 1, 6, 11]) / 13)
    lf = from_array(np.zeros((10, 4), "int16"), sampling_frequency=2500.0, probe=p)
    assert np.allclose(inter_sample_shift_from_probe(lf), np.array([0, 1, 6, 11]) / 12)
    p2 = linear_probe(num_channels=4)
    p2.annotate(num_channels_per_adc=16, ap_sample_frequency_hz=30000.0, lf_sample_frequency_hz=0.0)
    p2.annotate_contacts(adc_sample_order=np.array([0, 1, 6, 15]))
    rec2 = from_array(np.zeros((10, 4), "int16"), sampling_frequency=30000.0, probe=p2)
    assert np.allclose(inter_sample_shift_from_probe(rec2), np.array([0, 1, 6, 15]) / 16)
    p3 = linear_probe(num_channels=4)
    p3.annotate_contacts(inter_sample_shift=np.array([0.0, 0.1, 0.2, 0.3]))
    rec3 = from_array(np.zeros((10, 4), "int16"), sampling_frequency=30000.0, probe=p3)
    # selection and reordering keep the right shift on each channel
    assert np.allclose(inter_sample_shift_from_probe(rec3.isel(channel=[3, 0])), [0.3, 0.0])


def test_shifts_from_real_spikeglx_meta_files():
    meta_dir = shared_data_path("probe_metadata_samples_probeinterface") / "spikeglx"
    np1 = read_probe(meta_dir / "Noise_g0_t0.imec0.ap.meta")
    rec = from_array(np.zeros((10, 384), "int16"), sampling_frequency=30000.0, probe=np1)
    s = inter_sample_shift_from_probe(rec)
    # NP1.0: 32 ADCs x 12 channels; pairs of channels share a slot; 13 cycles per sample
    assert s[:4].tolist() == pytest.approx([0, 0, 1 / 13, 1 / 13])
    assert s.max() == pytest.approx(11 / 13)
    np2 = read_probe(meta_dir / "NP2_4_shanks.imec0.ap.meta")
    rec2 = from_array(np.zeros((10, 384), "int16"), sampling_frequency=30000.0, probe=np2)
    s2 = inter_sample_shift_from_probe(rec2)
    assert s2.max() == pytest.approx(15 / 16)
    assert np.unique(rec2.coords["group"].values).size == 4


def test_phase_shift_on_real_spikeglx_noise_recording():
    folder = shared_data_path("spikeglx_noise4sam_truncated") / "Noise4Sam_g0" / "Noise4Sam_g0_imec0"
    meta = folder / "Noise4Sam_g0_t0.imec0.ap.meta"
    raw = read_binary(folder / "Noise4Sam_g0_t0.imec0.ap.bin", sampling_frequency=30000.0, num_channels=385,
                      dtype="int16", gain_to_uV=2.34375)
    rec = set_probe(raw.isel(channel=slice(0, 384)), read_probe(meta))
    out = phase_shift(rec)
    assert out.shape == (1155, 384) and out.dtype == np.float32
    assert out.attrs["preprocessing"][-1]["params"]["source"] == "probe"
    x = rec.values.astype(np.float64)
    y = out.values.astype(np.float64)
    # channels 0 and 1 share ADC slot 0: unchanged (up to the recording-edge zero padding)
    assert np.abs(y[100:-100, :2] - x[100:-100, :2]).max() < 1e-3
    # a delayed channel changed by a fraction of its sample-to-sample difference
    change = np.abs(y[100:-100, 22] - x[100:-100, 22]).mean()
    step = np.abs(np.diff(x[100:-100, 22])).mean()
    assert 0.05 * step < change < step


def test_phase_shift_bad_input():
    rec = _rec(np.zeros((1000, 3), "float32"))
    with pytest.raises(ValueError, match="one value per channel"):
        phase_shift(rec, inter_sample_shift=[0.1, 0.2])
    with pytest.raises(ValueError, match="fractions of a sample"):
        phase_shift(rec, inter_sample_shift=[0.0, 0.5, 30.0])
    with pytest.raises(ValueError, match="no inter-sample shifts"):
        phase_shift(rec)
    with pytest.raises(ValueError, match="margin_ms"):
        phase_shift(rec, inter_sample_shift=[0, 0, 0], margin_ms=0)


def test_recording_shorter_than_the_margin():
    # lazy_transform used to hand dask an overlap deeper than the array (fixed in _base.py)
    x = _band_limited(500, 2)
    d = np.array([0.0, 0.5])
    out = phase_shift(_rec(x, chunk=100), inter_sample_shift=d, margin_ms=40).values
    assert np.allclose(out, phase_shift_kernel(x, shifts=d, margin=1200), atol=1e-6 * x.std())


@pytest.mark.reference
def test_matches_spikeinterface_phase_shift():
    pytest.importorskip("spikeinterface")
    import spikeinterface.core as sc
    import spikeinterface.preprocessing as spre

    x = _band_limited(90000, 8, seed=5)
    d = np.random.default_rng(5).uniform(0, 1, 8)
    ref = spre.phase_shift(sc.NumpyRecording(x, sampling_frequency=FS), inter_sample_shift=d).get_traces()
    ours = phase_shift(_rec(x, chunk=20000), inter_sample_shift=d).values
    assert np.abs(ours - ref).max() < 5e-4 * x.std()  # same sign convention, same delay


def test_float16_input_gives_float32_and_float64_stays_float64():
    x = _band_limited(3000, 2)
    d = np.array([0.0, 0.5])
    assert phase_shift(_rec(x.astype("float16")), inter_sample_shift=d).dtype == np.float32
    assert phase_shift(_rec(x.astype("float64")), inter_sample_shift=d).dtype == np.float64
