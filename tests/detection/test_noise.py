import numpy as np
import pytest

from spkfn.detection import noise_levels
from spkfn.io import from_array
from spkfn.preprocessing.utils import random_chunk_bounds

FS = 30000.0


def _rec(x, **kw):
    return from_array(x, sampling_frequency=FS, **kw)


def test_mad_and_std_equal_numpy_on_the_same_chunks(rng):
    x = rng.normal(size=(90000, 5)).astype("float32") * np.array([1, 2, 3, 4, 5], "float32")
    rec = _rec(x)
    bounds = random_chunk_bounds(x.shape[0], num_chunks=7, chunk_size=int(0.05 * FS), seed=3)
    mads, stds = [], []
    for a, b in bounds:
        c = x[a:b].astype(np.float64)
        mads.append(np.median(np.abs(c - np.median(c, 0)), 0) / 0.6744897501960817)
        stds.append(c.std(0))
    got = noise_levels(rec, num_chunks=7, chunk_duration_s=0.05, seed=3)
    np.testing.assert_allclose(got, np.mean(mads, 0), rtol=1e-5)
    got = noise_levels(rec, method="std", num_chunks=7, chunk_duration_s=0.05, seed=3)
    np.testing.assert_allclose(got, np.mean(stds, 0), rtol=1e-5)
    assert got.dtype == np.float32 and got.shape == (5,)


def test_known_sigma_in_uV_with_gain(rng):
    sigma = np.array([3.0, 8.0, 20.0])
    x = rng.normal(scale=sigma, size=(300000, 3))
    raw = np.round(x / 0.5).astype("int16")  # gain 0.5 µV per bit
    rec = _rec(raw, gain_to_uV=0.5)
    got = noise_levels(rec, seed=1)
    np.testing.assert_allclose(got, sigma, rtol=0.03)


def test_mad_is_robust_to_spikes_std_is_not(rng):
    x = rng.normal(scale=10.0, size=(300000, 1)).astype("float32")
    x[::300] -= 300.0  # 100 spikes/s of -30 sigma
    rec = _rec(x)
    assert abs(noise_levels(rec) [0] - 10.0) < 0.4
    assert noise_levels(rec, method="std")[0] > 15.0


def test_seeded_and_independent_of_n_jobs(rng):
    rec = _rec(rng.normal(size=(100000, 4)).astype("float32"))
    a = noise_levels(rec, seed=5, n_jobs=1)
    b = noise_levels(rec, seed=5, n_jobs=2)
    c = noise_levels(rec, seed=6, n_jobs=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_dask_backed_recording(rng):
    import dask.array as da

    x = rng.normal(size=(60000, 3)).astype("float32")
    eager = noise_levels(_rec(x))
    lazy = noise_levels(_rec(da.from_array(x, chunks=(7000, 3))))
    np.testing.assert_array_equal(eager, lazy)


def test_short_recording_uses_what_exists(rng):
    rec = _rec(rng.normal(size=(1000, 2)).astype("float32"))
    got = noise_levels(rec, chunk_duration_s=1.0)
    assert got.shape == (2,) and np.all(np.abs(got - 1) < 0.15)


@pytest.mark.parametrize("kwargs, match", [
    ({"method": "rms"}, "method"),
    ({"num_chunks": 0}, "num_chunks"),
    ({"chunk_duration_s": 0}, "chunk_duration_s"),
    ({"margin_s": -1}, "margin_s"),
])
def test_bad_arguments(kwargs, match):
    rec = _rec(np.zeros((100, 2), "float32"))
    with pytest.raises(ValueError, match=match):
        noise_levels(rec, **kwargs)


def test_not_a_recording():
    with pytest.raises(ValueError, match="xarray.DataArray"):
        noise_levels(np.zeros((10, 2)))


@pytest.mark.reference
def test_matches_spikeinterface(rng):
    si = pytest.importorskip("spikeinterface.core")
    x = rng.normal(scale=[4.0, 9.0, 15.0], size=(600000, 3)).astype("float32")
    ref = si.get_noise_levels(si.NumpyRecording(x, FS), return_in_uV=False)
    np.testing.assert_allclose(noise_levels(_rec(x)), ref, rtol=0.02)


@pytest.mark.parametrize("n", [1, 2, 7, 8])
def test_mad_kernel_odd_even_and_ties(n):
    x = np.array([3, -1, 4, 1, -5, 9, 2, 6][:n], dtype="float32")[:, None] * np.ones((1, 2), "float32")
    x[:, 1] = np.round(x[:, 1] / 3)  # ties
    rec = _rec(x)
    got = noise_levels(rec, num_chunks=1, chunk_duration_s=1.0)
    c = x.astype(np.float64)
    ref = np.median(np.abs(c - np.median(c, 0)), 0) / 0.6744897501960817
    np.testing.assert_allclose(got, ref, rtol=1e-6)
