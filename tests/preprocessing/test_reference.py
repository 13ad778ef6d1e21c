"""Common references: exact against numpy, known answers, groups never mixed, bad input."""

import numpy as np
import pytest

from spkfn.core.chunks import as_dask
from spkfn.io import from_array
from spkfn.preprocessing import (
    common_reference,
    common_reference_traces,
    local_reference_traces,
    median_across_channels,
    median_network,
    ring_neighbours,
)

FS = 30000.0


def _rechunk(rec, chunk_size):
    return rec.copy(data=as_dask(rec, chunk_size=chunk_size))


def _two_column_probe(n):
    """Channels on two columns 32 µm apart, 20 µm pitch (Neuropixels-like)."""
    return np.column_stack([np.tile([0.0, 32.0], n // 2), np.repeat(np.arange(n // 2) * 20.0, 2)])


@pytest.mark.parametrize("n", list(range(1, 40)) + [63, 64, 65, 127, 128, 383, 384])
def test_median_network_exact(n):
    rng = np.random.default_rng(n)
    pairs, k_lo, k_hi = median_network(n)
    v = rng.normal(size=(n, 50))
    v[:, :10] = np.round(v[:, :10])  # ties
    w = v.copy()
    for a, b in pairs:
        lo, hi = np.minimum(w[a], w[b]), np.maximum(w[a], w[b])
        w[a], w[b] = lo, hi
    s = np.sort(v, axis=0)
    assert np.array_equal(w[k_lo], s[k_lo]) and np.array_equal(w[k_hi], s[k_hi])


def test_median_network_is_pruned():
    full = len(median_network(384)[0])
    assert 0 < full < 384 * 384  # far fewer comparators than a quadratic network


@pytest.mark.parametrize("c", [1, 2, 3, 8, 31, 32, 64, 100, 384])
def test_median_across_channels_equals_numpy(c):
    rng = np.random.default_rng(c)
    x = rng.normal(size=(517, c)).astype("float32")
    assert np.array_equal(median_across_channels(x), np.median(x, axis=1))
    xi = rng.integers(-3, 3, size=(517, c)).astype("int16")  # many ties, integer input
    assert np.array_equal(median_across_channels(xi), np.median(xi.astype("float32"), axis=1))
    idx = np.arange(0, c, 2)
    assert np.array_equal(median_across_channels(x, channel_indices=idx), np.median(x[:, idx], axis=1))


def test_global_median_equals_numpy_and_is_chunk_invariant():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10000, 64)).astype("float32") * 10
    ref = x - np.median(x, axis=1, keepdims=True)
    rec = from_array(x, sampling_frequency=FS)
    for chunk in (777, 4096):
        out = common_reference(_rechunk(rec, chunk)).values
        assert np.array_equal(out, ref)


def test_global_average():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3000, 16)).astype("float32")
    out = common_reference(from_array(x, sampling_frequency=FS), operator="average").values
    assert np.allclose(out, x - x.mean(axis=1, keepdims=True), atol=1e-5)


def test_known_answer_common_noise_removed_spike_kept():
    """Large common-mode noise planted on all channels is removed; a spike on one channel stays."""
    rng = np.random.default_rng(2)
    n, c = 20000, 32
    own = rng.normal(size=(n, c)).astype("float32")
    common = (rng.normal(size=(n, 1)) * 50).astype("float32")
    x = own + common
    x[5000:5030, 7] += -100.0  # a spike on channel 7
    out = common_reference(from_array(x, sampling_frequency=FS)).values
    resid = out - own
    resid[5000:5030] = 0
    assert np.abs(resid).max() < 1.0  # the 50-std common noise is gone (residual = median of unit noise)
    assert out[5000:5030, 7].mean() < -95  # the spike survives the median


def test_groups_never_mix():
    """Each shank gets its own reference: a signal common to shank 1 never reaches shank 0."""
    rng = np.random.default_rng(3)
    n = 5000
    x = rng.normal(size=(n, 16)).astype("float32")
    x[:, 8:] += (rng.normal(size=(n, 1)) * 100).astype("float32")  # common to shank 1 only
    groups = [0] * 8 + [1] * 8
    rec = from_array(x, sampling_frequency=FS, group=groups)
    for op, fn in (("median", np.median), ("average", np.mean)):
        out = common_reference(rec, operator=op).values
        ref0 = x[:, :8] - fn(x[:, :8], axis=1, keepdims=True)
        ref1 = x[:, 8:] - fn(x[:, 8:], axis=1, keepdims=True)
        assert np.allclose(out[:, :8], ref0, atol=1e-4) and np.allclose(out[:, 8:], ref1, atol=1e-4)
        assert np.abs(out[:, :8]).max() < 10  # nothing of shank 1's 100-std signal


def test_kernel_groups_and_reference_subset():
    x = np.array([[1.0, 2.0, 10.0, 3.0, 7.0, 9.0]], "float32")
    out = common_reference_traces(x, groups=[0, 0, 0, 1, 1, 1], reference_indices=[0, 1, 4])
    assert out.tolist() == [[-0.5, 0.5, 8.5, -4.0, 0.0, 2.0]]
    with pytest.raises(ValueError, match="group 1 has no reference channel"):
        common_reference_traces(x, groups=[0, 0, 0, 1, 1, 1], reference_indices=[0])


def test_single_reference():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1000, 6)).astype("float32")
    rec = from_array(x, sampling_frequency=FS, channel_ids=list("abcdef"), group=[0, 0, 0, 1, 1, 1])
    out = common_reference(rec, reference="single", reference_channel_ids=["b", "e"]).values
    assert np.array_equal(out[:, :3], x[:, :3] - x[:, [1]])
    assert np.array_equal(out[:, 3:], x[:, 3:] - x[:, [4]])
    assert np.all(out[:, 1] == 0) and np.all(out[:, 4] == 0)
    with pytest.raises(ValueError, match="group 1 has no reference channel"):
        common_reference(rec, reference="single", reference_channel_ids=["b"])
    with pytest.raises(ValueError, match="needs reference_channel_ids"):
        common_reference(rec, reference="single")
    with pytest.raises(ValueError, match=r"\['z'\] are not channels"):
        common_reference(rec, reference="single", reference_channel_ids=["b", "z"])


def test_global_with_reference_subset():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(800, 8)).astype("float32")
    rec = from_array(x, sampling_frequency=FS)
    out = common_reference(rec, reference_channel_ids=["0", "2", "4", "6"]).values
    assert np.array_equal(out, x - np.median(x[:, [0, 2, 4, 6]], axis=1, keepdims=True))


def test_ring_neighbours():
    loc = _two_column_probe(8)
    nb = ring_neighbours(loc, inner_radius_um=30.0, outer_radius_um=45.0)
    d = np.linalg.norm(loc[:, None] - loc[None], axis=-1)
    for i in range(8):
        expected = set(np.flatnonzero((d[i] > 30) & (d[i] <= 45)).tolist())
        assert set(nb[i][nb[i] >= 0].tolist()) == expected
    # groups: a channel's ring never includes the other group's channels
    nb2 = ring_neighbours(loc, inner_radius_um=0.0, outer_radius_um=1000.0, groups=[0] * 4 + [1] * 4)
    assert all(set(nb2[i][nb2[i] >= 0].tolist()) <= set(range(4)) for i in range(4))


def test_local_reference_equals_numpy_and_chunk_invariant():
    rng = np.random.default_rng(6)
    n, c = 3000, 24
    x = rng.normal(size=(n, c)).astype("float32")
    loc = _two_column_probe(c)
    rec = from_array(x, sampling_frequency=FS, channel_locations=loc)
    nb = ring_neighbours(loc, inner_radius_um=30.0, outer_radius_um=55.0)
    for op, fn in (("median", np.median), ("average", np.mean)):
        ref = np.stack([x[:, i] - fn(x[:, nb[i][nb[i] >= 0]], axis=1) for i in range(c)], axis=1)
        outs = [common_reference(_rechunk(rec, k), reference="local", operator=op).values for k in (500, 1700)]
        assert np.allclose(outs[0], ref, atol=1e-5)
        assert np.array_equal(outs[0], outs[1])
    ref = np.stack([x[:, i] - np.median(x[:, nb[i][nb[i] >= 0]], axis=1) for i in range(c)], axis=1)
    assert np.array_equal(local_reference_traces(x, neighbours=nb), ref.astype("float32"))


def test_local_reference_respects_groups():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2000, 16)).astype("float32")
    x[:, 8:] += 100.0 * rng.normal(size=(2000, 1)).astype("float32")
    loc = np.column_stack([np.r_[np.zeros(8), np.zeros(8) + 10.0], np.r_[np.arange(8), np.arange(8)] * 20.0])
    rec = from_array(x, sampling_frequency=FS, channel_locations=loc, group=[0] * 8 + [1] * 8)
    out = common_reference(rec, reference="local", local_radius_um=(0.0, 45.0)).values
    assert np.abs(out[:, :8]).max() < 10  # shank 0 untouched by shank 1 (10 µm away) despite the radius


def test_local_radius_selects_nothing():
    loc = _two_column_probe(8)
    rec = from_array(np.zeros((100, 8), "float32"), sampling_frequency=FS, channel_locations=loc)
    with pytest.raises(ValueError, match=r"local_radius_um=\(100, 110\) selects no channel around channels"):
        common_reference(rec, reference="local", local_radius_um=(100.0, 110.0))
    with pytest.raises(ValueError, match="inner < outer"):
        common_reference(rec, reference="local", local_radius_um=(50.0, 30.0))
    with pytest.raises(ValueError, match="local_radius_um must be"):
        common_reference(rec, reference="local", local_radius_um=30.0)
    with pytest.raises(ValueError, match="not used by reference='local'"):
        common_reference(rec, reference="local", reference_channel_ids=["0"])
    no_geom = from_array(np.zeros((100, 8), "float32"), sampling_frequency=FS)
    with pytest.raises(ValueError, match="no channel geometry"):
        common_reference(no_geom, reference="local")


def test_bad_choices_and_dtypes():
    x = (np.random.default_rng(8).normal(size=(500, 4)) * 100).astype("int16")
    rec = from_array(x, sampling_frequency=FS, offset_to_uV=3.0)
    with pytest.raises(ValueError, match="reference must be one of"):
        common_reference(rec, reference="median")
    with pytest.raises(ValueError, match="operator must be one of"):
        common_reference(rec, operator="mean")
    out = common_reference(rec)
    assert out.dtype == np.float32 and np.all(out.offset_to_uV.values == 0)
    assert np.array_equal(out.values, x - np.median(x.astype("float32"), axis=1, keepdims=True))
    assert common_reference(rec, dtype="int16").dtype == np.int16
    assert out.attrs["preprocessing"][-1] == {"step": "common_reference", "params": {
        "reference": "global", "operator": "median", "reference_channel_ids": None,
        "local_radius_um": [30.0, 55.0], "dtype": "float32"}}


@pytest.mark.reference
def test_global_and_local_match_spikeinterface():
    si = pytest.importorskip("spikeinterface.core")
    spre = pytest.importorskip("spikeinterface.preprocessing")
    rng = np.random.default_rng(9)
    x = rng.normal(size=(4000, 16)).astype("float32")
    loc = _two_column_probe(16)
    si_rec = si.NumpyRecording(x, FS)
    if hasattr(si_rec, "set_dummy_probe_from_locations"):
        si_rec.set_dummy_probe_from_locations(loc)
    else:  # older SpikeInterface
        si_rec.set_channel_locations(loc)
    assert np.allclose(si_rec.get_channel_locations(), loc)
    rec = from_array(x, sampling_frequency=FS, channel_locations=loc)
    for op in ("median", "average"):
        ref = spre.common_reference(si_rec, reference="global", operator=op).get_traces()
        assert np.allclose(common_reference(rec, operator=op).values, ref, atol=1e-5)
        ref = spre.common_reference(si_rec, reference="local", operator=op, local_radius=(30, 55),
                                    min_local_neighbors=1).get_traces()
        assert np.allclose(common_reference(rec, reference="local", operator=op).values, ref, atol=1e-5)
