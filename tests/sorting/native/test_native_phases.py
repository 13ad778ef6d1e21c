"""The native sorter's phases on constructed data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from spkfn.sorting import default_params
from spkfn.sorting.native.cleanup import clean_units, coincidence_counts, remove_duplicate_spikes
from spkfn.sorting.native.clustering import isocut, merge_clusters, split_clusters
from spkfn.sorting.native.features import project_snippets, temporal_basis
from spkfn.sorting.native.templates import dense_from_sparse, select_per_cluster

SPIKE_DTYPE = np.dtype([("sample_index", "int64"), ("unit_index", "int64"), ("amplitude", "float32"),
                        ("channel_index", "int64")])


def _blobs(centres, n, sd, seed):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(c, sd, (n, len(c))) for c in centres])
    truth = np.repeat(np.arange(len(centres)), n)
    return x, truth


def _purity(labels, truth):
    """Fraction of points whose cluster's majority truth label is their own (noise counts as wrong)."""
    good = 0
    for lab in np.unique(labels[labels >= 0]):
        good += np.bincount(truth[labels == lab]).max()
    return good / labels.size


def test_split_clusters_finds_planted_clusters():
    centres = [np.zeros(8), np.r_[6.0, np.zeros(7)], np.r_[0.0, 6.0, np.zeros(6)]]
    x, truth = _blobs(centres, 400, 1.0, seed=1)
    lab = split_clusters(x, method="isosplit", min_cluster_size=20)
    assert np.unique(lab[lab >= 0]).size == 3
    assert _purity(lab, truth) > 0.95


def test_split_clusters_keeps_one_gaussian_whole():
    x, _ = _blobs([np.zeros(6)], 1500, 1.0, seed=2)
    lab = split_clusters(x, method="isosplit", min_cluster_size=20)
    assert np.unique(lab[lab >= 0]).size == 1
    assert (lab >= 0).mean() > 0.9


def test_split_clusters_too_few_points_are_noise():
    x, _ = _blobs([np.zeros(3)], 10, 1.0, seed=0)
    assert (split_clusters(x, min_cluster_size=20) == -1).all()


def test_isocut_scores_unimodal_low_bimodal_high():
    rng = np.random.default_rng(0)
    uni = rng.normal(0, 1, 2000)
    bi = np.concatenate([rng.normal(-4, 1, 1000), rng.normal(4, 1, 1000)])
    assert isocut(uni) < 2.0 < isocut(bi)


def _line_probe(n_ch=4, pitch=20.0):
    loc = np.column_stack([np.zeros(n_ch), np.arange(n_ch) * pitch])
    neigh = np.tile(np.arange(n_ch), (n_ch, 1))  # every channel's features on all channels
    return loc, neigh


def test_merge_clusters_merges_a_split_unit_and_keeps_distinct_units():
    rng = np.random.default_rng(3)
    loc, neigh = _line_probe()
    n_comp = 3
    unit_a = np.zeros((4, n_comp))
    unit_a[1, 0], unit_a[2, 0] = -10.0, -8.0  # a unit between channels 1 and 2
    unit_b = np.zeros((4, n_comp))
    unit_b[2, 0], unit_b[2, 1], unit_b[3, 0] = -4.0, 6.0, -9.0  # another unit, different shape
    n = 300
    feats = np.concatenate([unit_a + rng.normal(0, 1, (2 * n, 4, n_comp)),
                            unit_b + rng.normal(0, 1, (n, 4, n_comp))]).astype(np.float32)
    # The per-channel clustering split unit A in two (peaks on channel 1 and on channel 2).
    labels = np.r_[np.zeros(n), np.ones(n), np.full(n, 2)].astype(np.int64)
    home = np.r_[np.full(n, 1), np.full(n, 2), np.full(n, 3)].astype(np.int64)
    out = merge_clusters(feats, labels, home, neigh, loc, max_distance_um=50.0, max_template_distance=1.0,
                         dip_threshold=2.0, seed=0)
    assert out[:2 * n].tolist() == [0] * (2 * n)
    assert out[2 * n:].tolist() == [1] * n


def test_merge_clusters_keeps_distant_clusters_apart():
    rng = np.random.default_rng(4)
    loc, neigh = _line_probe(pitch=100.0)
    mean = np.zeros((4, 2))
    mean[:, 0] = -5.0
    feats = (mean + rng.normal(0, 1, (200, 4, 2))).astype(np.float32)  # identical features...
    labels = np.repeat([0, 1], 100)
    home = np.repeat([0, 3], 100)  # ... but 300 µm apart
    out = merge_clusters(feats, labels, home, neigh, loc, max_distance_um=50.0, seed=0)
    assert np.unique(out).tolist() == [0, 1]


def test_remove_duplicate_spikes_and_coincidences():
    s = np.array([100, 103, 103, 200, 260, 262])
    u = np.array([0, 0, 1, 0, 1, 0])
    assert remove_duplicate_spikes(s, u, window_samples=5).tolist() == [True, False, True, True, True, True]
    co = coincidence_counts(s, u, 2, window_samples=3)
    # pairs of different units within 3 samples: (100,103:u1), (103:u0,103:u1), (260,262)
    assert co.tolist() == [[0, 3], [3, 0]]


def _template(n_t=60, k=4, amp=-80.0, width=2.0, trough=20):
    t = np.arange(n_t)
    wave = amp * np.exp(-0.5 * ((t - trough) / width) ** 2) - 0.3 * amp * np.exp(-0.5 * ((t - trough - 10) / 5.0) ** 2)
    spatial = np.array([1.0, 0.6, 0.3, 0.1])[:k]
    return (wave[:, None] * spatial[None]).astype(np.float32)


def test_clean_units_merges_split_unit_removes_duplicates_and_noise_units():
    fs = 30000.0
    n_samples = int(60 * fs)
    rng = np.random.default_rng(5)
    params = default_params("spkfn")
    loc, _ = _line_probe(n_ch=8)
    noise = np.full(8, 5.0)
    # unit 0 and unit 1: the same neuron (same template), trains that together respect a 3 ms
    # refractory period; unit 2: a different neuron far away; unit 3: 5 spikes only.
    train = np.cumsum(rng.integers(int(0.003 * fs), int(0.2 * fs), 600))
    train = train[train < n_samples - 100]
    half = rng.random(train.size) < 0.5
    t2 = np.cumsum(rng.integers(1000, 8000, 300))
    tpl = np.stack([_template(), _template(), _template(amp=-60.0, width=4.0), _template(amp=-40.0)])
    tchans = np.array([[0, 1, 2, 3], [0, 1, 2, 3], [4, 5, 6, 7], [2, 3, 4, 5]])
    parts = [(train[half], 0), (train[~half], 1), (t2, 2), (np.array([1000, 5000, 9000, 13000, 17000]), 3),
             (train[half][:50] + 2, 0)]  # 50 duplicate spikes of unit 0, 2 samples after the originals
    spikes = np.zeros(sum(p[0].size for p in parts), SPIKE_DTYPE)
    spikes["sample_index"] = np.concatenate([p[0] for p in parts])
    spikes["unit_index"] = np.concatenate([np.full(p[0].size, p[1]) for p in parts])
    spikes["amplitude"] = 1.0
    spikes = spikes[np.lexsort((spikes["unit_index"], spikes["sample_index"]))]
    tpl_in = tpl.copy()
    out, tpl_out, tch_out, info = clean_units(spikes, tpl, tchans, noise=noise, fs=fs, n_samples=n_samples,
                                              locations=loc, params=params)
    np.testing.assert_array_equal(tpl, tpl_in)  # input not modified
    assert info["num_units"] == 2
    assert info["duplicate_spikes_removed"] == 50
    assert info["units_merged"] == 1
    assert info["few_spike_units_removed"] == 1
    counts = np.bincount(out["unit_index"])
    assert sorted(counts.tolist()) == sorted([train.size, t2.size])


def test_temporal_basis_reconstructs_low_rank_waveforms():
    rng = np.random.default_rng(6)
    t = np.linspace(-1, 2, 45)
    shapes = np.stack([-np.exp(-t ** 2 / 0.05), np.exp(-(t - 0.5) ** 2 / 0.2)])
    w = rng.normal(0, 1, (500, 2)) @ shapes
    basis = temporal_basis(w.astype(np.float32), n_components=2)
    assert basis.shape == (45, 2)
    proj = project_snippets(w[:, :, None].astype(np.float32), basis)
    rec = np.einsum("nck,tk->ntc", proj, basis)[:, :, 0]
    np.testing.assert_allclose(rec, w, atol=1e-3 * np.abs(w).max())


def test_select_per_cluster_and_dense_from_sparse():
    labels = np.r_[np.zeros(50), np.ones(5), -np.ones(10)].astype(np.int64)
    pick = select_per_cluster(labels, max_per_cluster=10, seed=0)
    assert np.bincount(labels[pick]).tolist() == [10, 5]
    np.testing.assert_array_equal(pick, select_per_cluster(labels, max_per_cluster=10, seed=0))
    sp = np.ones((1, 3, 2), np.float32)
    dense = dense_from_sparse(sp, np.array([[4, -1]]), 6)
    assert dense.shape == (1, 3, 6) and dense[0, :, 4].tolist() == [1, 1, 1] and dense.sum() == 3


def _planted(n=60000, seed=0):
    from spkfn.io import from_array

    rng = np.random.default_rng(seed)
    x = rng.normal(0, 5, (n, 6)).astype(np.float32)
    w0 = np.zeros((30, 3), np.float32)
    w0[10] = [-100, -50, -20]
    w0[15] = [30, 15, 5]
    w1 = np.zeros((30, 3), np.float32)
    w1[10] = [-20, -70, -90]
    w1[8] = [10, 20, 20]
    t0 = np.arange(500, n - 500, 997)
    t1 = t0[::2] + 7  # every other spike of unit 1 overlaps one of unit 0
    for t in t0:
        x[t - 10:t + 20, 0:3] += w0
    for t in t1:
        x[t - 10:t + 20, 2:5] += 0.8 * w1
    rec = from_array(x, sampling_frequency=30000.0, channel_locations=np.column_stack([np.zeros(6), np.arange(6) * 20.0]))
    tpl = np.stack([w0, w1])
    chans = np.array([[0, 1, 2], [2, 3, 4]])
    return rec, tpl, chans, t0, t1


def test_match_templates_recovers_overlapping_spikes_and_amplitudes():
    from spkfn.sorting.native.matching import match_templates

    rec, tpl, chans, t0, t1 = _planted()
    sp = match_templates(rec, tpl, chans, nbefore=10, noise_levels=np.full(6, 5.0), progress=False)
    np.testing.assert_array_equal(sp["sample_index"][sp["unit_index"] == 0], t0)
    np.testing.assert_array_equal(sp["sample_index"][sp["unit_index"] == 1], t1)
    a1 = sp["amplitude"][sp["unit_index"] == 1]  # planted at 0.8; noise sd of the fit ~0.04
    assert abs(a1.mean() - 0.8) < 0.02 and np.abs(a1 - 0.8).max() < 0.2


def test_match_templates_independent_of_chunking_and_jobs():
    from spkfn.sorting.native.matching import match_templates

    rec, tpl, chans, _, _ = _planted(seed=1)
    a = match_templates(rec, tpl, chans, nbefore=10, noise_levels=np.full(6, 5.0), progress=False, n_jobs=1)
    b = match_templates(rec, tpl, chans, nbefore=10, noise_levels=np.full(6, 5.0), progress=False, n_jobs=2,
                        chunk_size=7001)
    np.testing.assert_array_equal(a, b)


def test_match_templates_validates_inputs():
    from spkfn.sorting.native.matching import match_templates

    rec, tpl, chans, _, _ = _planted(n=3000)
    with pytest.raises(ValueError, match="noise_levels"):
        match_templates(rec, tpl, chans, nbefore=10, noise_levels=np.full(5, 5.0))
    with pytest.raises(ValueError, match="channels"):
        match_templates(rec, tpl, chans[:, :2], nbefore=10, noise_levels=np.full(6, 5.0))
    with pytest.raises(ValueError, match="amplitude_range"):
        match_templates(rec, tpl, chans, nbefore=10, noise_levels=np.full(6, 5.0), amplitude_range=(2.0, 1.0))
    empty = match_templates(rec, tpl[:0], chans[:0], nbefore=10, noise_levels=np.full(6, 5.0), progress=False)
    assert empty.size == 0
