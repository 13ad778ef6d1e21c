import dask.array as da
import numpy as np
import pytest

from spkfn.io import from_array, linear_probe, multi_shank_probe
from spkfn.preprocessing.whiten import (
    covariance_moments,
    ledoit_wolf_shrinkage,
    whiten,
    whitening_matrix,
)

FS = 30000.0


def _correlated(n, c, seed=0, scale=10.0):
    """Gaussian noise with a random, strongly non-diagonal covariance (known: mix.T @ mix)."""
    rng = np.random.default_rng(seed)
    mix = np.eye(c) + 0.8 * rng.normal(size=(c, c)) / np.sqrt(c)
    return (rng.normal(size=(n, c)) @ mix * scale).astype("float32"), mix


def _rec(x, chunk=None, **kw):
    data = x if chunk is None else da.from_array(x, chunks=(chunk, x.shape[1]))
    return from_array(data, sampling_frequency=FS, **kw)


def test_whitened_heldout_data_has_identity_covariance():
    x, _ = _correlated(240000, 12)
    train, test = x[:120000], x[120000:]
    _, W = whiten(_rec(train), num_chunks=20, chunk_duration_s=0.1, seed=3)
    out, W2 = whiten(_rec(test, chunk=10000), matrix=W)
    assert np.array_equal(W, W2)
    cov = np.cov(out.values.astype(np.float64).T)
    assert np.abs(cov - np.eye(12)).max() < 0.05
    raw_cov = np.cov(test.astype(np.float64).T)
    assert np.abs(raw_cov / np.sqrt(np.outer(np.diag(raw_cov), np.diag(raw_cov))) - np.eye(12)).max() > 0.3


def test_whiten_matrix_is_zca_of_the_chunk_covariance():
    x, mix = _correlated(120000, 6, seed=1, scale=1.0)
    out, W = whiten(_rec(x), num_chunks=30, chunk_duration_s=0.1, seed=0)
    assert np.allclose(W, W.T)  # symmetric (ZCA)
    true_cov = mix.T @ mix
    # W C W^T = I for the true covariance, within sampling error of 90 000 samples
    assert np.abs(W @ true_cov @ W.T - np.eye(6)).max() < 0.03


def test_groups_never_mix():
    rng = np.random.default_rng(2)
    shared = rng.normal(size=(60000, 1)) * 20  # the same signal on both shanks
    x = (shared + rng.normal(size=(60000, 8))).astype("float32")
    probe = multi_shank_probe(num_shanks=2, num_channels_per_shank=4)
    out, W = whiten(_rec(x, probe=probe), num_chunks=10, chunk_duration_s=0.1)
    assert np.array_equal(out.coords["group"].values, [0, 0, 0, 0, 1, 1, 1, 1])
    assert np.all(W[:4, 4:] == 0) and np.all(W[4:, :4] == 0)
    # changing shank 1 does not change shank 0's output
    y = x.copy()
    y[:, 4:] = rng.normal(size=(60000, 4)) * 100
    out2, _ = whiten(_rec(y, probe=probe), num_chunks=10, chunk_duration_s=0.1)
    assert np.array_equal(out.values[:, :4], out2.values[:, :4])
    # within each shank the shared signal is whitened away
    cov = np.cov(out.values.astype(np.float64).T)
    assert np.abs(cov[:4, :4] - np.eye(4)).max() < 0.1
    assert np.abs(cov[:4, 4:]).max() > 0.1  # across shanks the correlation stays (not whitened jointly)


def test_local_mode_only_uses_neighbours_within_radius():
    x, _ = _correlated(60000, 16, seed=4)
    rec = _rec(x, probe=linear_probe(num_channels=16, pitch_um=25.0))
    out, W = whiten(rec, mode="local", radius_um=60.0, num_chunks=10, chunk_duration_s=0.1)
    pos = np.arange(16) * 25.0
    far = np.abs(pos[:, None] - pos[None, :]) > 60.0
    assert np.all(W[far] == 0)
    assert np.all(W[~far] != 0)
    assert np.allclose(np.var(out.values.astype(np.float64), axis=0), 1.0, atol=0.15)


def test_whiten_is_seeded_and_chunk_size_invariant():
    x, _ = _correlated(90000, 5, seed=5)
    a, Wa = whiten(_rec(x, chunk=7000), num_chunks=5, chunk_duration_s=0.05, seed=11)
    b, Wb = whiten(_rec(x, chunk=31000), num_chunks=5, chunk_duration_s=0.05, seed=11)
    assert np.array_equal(Wa, Wb)
    assert np.array_equal(a.values, b.values)
    _, Wc = whiten(_rec(x), num_chunks=5, chunk_duration_s=0.05, seed=12)
    assert not np.array_equal(Wa, Wc)
    # whole-array equivalence: one product with the matrix
    assert np.allclose(a.values, x @ Wa.T, atol=1e-4)


def test_whiten_uses_gains_and_int_scale():
    x, _ = _correlated(60000, 4, seed=6, scale=100.0)
    gain = np.array([0.5, 1.0, 2.0, 0.195])
    raw = np.round(x / gain[None, :]).astype("int16")
    uv = raw.astype(np.float64) * gain[None, :]
    out_int, W_int = whiten(_rec(raw, gain_to_uV=gain), num_chunks=10, chunk_duration_s=0.1)
    out_uv, W_uv = whiten(_rec(uv.astype("float32")), num_chunks=10, chunk_duration_s=0.1)
    assert np.allclose(W_int, W_uv)
    assert np.allclose(out_int.values, out_uv.values, atol=1e-4)
    scaled, _ = whiten(_rec(raw, gain_to_uV=gain), num_chunks=10, chunk_duration_s=0.1, int_scale=200.0,
                       dtype="int16")
    assert scaled.dtype == np.int16
    assert np.allclose(scaled.values.std(axis=0), 200.0, rtol=0.05)
    assert np.allclose(scaled.coords["gain_to_uV"].values, 1 / 200.0)
    assert scaled.attrs["preprocessing"][-1]["step"] == "whiten"


def test_apply_mean_removes_offsets():
    x, _ = _correlated(60000, 3, seed=7, scale=1.0)
    x = x + np.array([100.0, -50.0, 7.0], dtype="float32")
    out, _ = whiten(_rec(x), apply_mean=True, num_chunks=10, chunk_duration_s=0.1)
    assert np.abs(out.values.mean(axis=0)).max() < 0.05
    assert np.abs(np.cov(out.values.astype(np.float64).T) - np.eye(3)).max() < 0.05
    assert len(out.attrs["preprocessing"][-1]["params"]["mean_uV"]) == 3


def test_ledoit_wolf_formula_matches_direct_computation():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(40, 6)) @ rng.normal(size=(6, 6))
    x = x - x.mean(axis=0)
    n = x.shape[0]
    S = x.T @ x / n
    m = covariance_moments([x], fourth=True)
    fast = ledoit_wolf_shrinkage(S, float(m["g"].sum()), n)
    mu = np.trace(S) / 6
    d2 = np.sum((S - mu * np.eye(6)) ** 2)
    b2 = sum(np.sum((np.outer(v, v) - S) ** 2) for v in x) / n**2
    assert fast == pytest.approx(min(b2, d2) / d2)
    assert 0 < fast < 1
    # shrinkage makes a rank-deficient estimate invertible
    few = rng.normal(size=(4, 6))
    W, _ = whitening_matrix(covariance_moments([few], fourth=True), groups=np.zeros(6), regularization="ledoit_wolf")
    assert np.all(np.isfinite(W)) and np.abs(W).max() < 1e3


def test_dead_channel_stays_finite():
    x, _ = _correlated(30000, 4, seed=9)
    x[:, 2] = 0
    out, W = whiten(_rec(x), num_chunks=5, chunk_duration_s=0.1)
    assert np.all(np.isfinite(W))
    assert np.abs(out.values[:, 2]).max() < 1e-6


def test_whiten_bad_input():
    x, _ = _correlated(3000, 4)
    rec = _rec(x, probe=linear_probe(num_channels=4, pitch_um=20.0))
    with pytest.raises(ValueError, match="mode"):
        whiten(rec, mode="zca")
    with pytest.raises(ValueError, match="radius_um=5 selects no neighbour"):
        whiten(rec, mode="local", radius_um=5.0)
    with pytest.raises(ValueError, match="geometry"):
        whiten(_rec(x), mode="local")
    with pytest.raises(ValueError, match="matrix"):
        whiten(rec, matrix=np.eye(3))
    with pytest.raises(ValueError, match="mean_uV"):
        whiten(rec, mean_uV=np.zeros(4))
    with pytest.raises(ValueError, match="regularization"):
        whiten(rec, regularization="graphical_lasso")
    with pytest.raises(ValueError, match="num_chunks"):
        whiten(rec, num_chunks=0)
    with pytest.raises(ValueError, match="dtype"):
        whiten(rec, dtype="complex64")


@pytest.mark.reference
def test_matches_spikeinterface_whitening_matrix():
    pytest.importorskip("spikeinterface")
    import spikeinterface.core as sc
    import spikeinterface.preprocessing as spre

    x, _ = _correlated(300000, 4, seed=10, scale=1.0)
    si = spre.whiten(sc.NumpyRecording(x, sampling_frequency=FS), mode="global", apply_mean=False,
                     num_chunks_per_segment=20, chunk_size=15000, seed=0)
    W_si = np.asarray(si._kwargs["W"])
    _, W = whiten(_rec(x), num_chunks=20, chunk_duration_s=0.5, seed=0)
    # different random chunks (each ~10 s of the same stationary noise): equal within sampling error
    assert np.abs(W_si - W).max() < 0.05 * np.abs(W).max()
