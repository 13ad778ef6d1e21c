"""match_spikes and delta_frames_from_ms: exact answers on hand-built trains, and optimality."""

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from spkfn.comparison import delta_frames_from_ms, match_spikes

from .cmp_synth import max_matching_size


def test_exact_counts_hand_built():
    m = match_spikes([100, 200, 300, 400], [98, 205, 350, 401, 900], delta_frames=10)
    assert m.pairs.tolist() == [[0, 0], [1, 1], [3, 3]]
    assert m.labels1.tolist() == ["TP", "TP", "FN", "TP"]
    assert m.labels2.tolist() == ["TP", "TP", "FP", "TP", "FP"]
    assert m.num_matches == 3


def test_delta_boundary_is_inclusive():
    # exactly delta apart matches; delta + 1 does not, on both sides
    assert match_spikes([100], [112], delta_frames=12).num_matches == 1
    assert match_spikes([100], [88], delta_frames=12).num_matches == 1
    assert match_spikes([100], [113], delta_frames=12).num_matches == 0
    assert match_spikes([100], [87], delta_frames=12).num_matches == 0
    assert match_spikes([100], [100], delta_frames=0).num_matches == 1
    assert match_spikes([100], [101], delta_frames=0).num_matches == 0


def test_tie_takes_the_earlier_partner():
    m = match_spikes([100], [95, 105], delta_frames=5)
    assert m.pairs.tolist() == [[0, 0]]
    assert m.labels2.tolist() == ["TP", "FP"]


def test_each_spike_matched_once():
    # two GT spikes near one tested spike: only one TP
    m = match_spikes([100, 104], [102], delta_frames=5)
    assert m.num_matches == 1
    assert m.labels1.tolist() == ["TP", "FN"]
    # duplicated times in a train
    m = match_spikes([100, 100], [100, 100, 100], delta_frames=0)
    assert m.num_matches == 2
    assert m.labels2.tolist() == ["TP", "TP", "FP"]


def test_earliest_partner_is_needed_for_the_maximum():
    # nearest-partner matching would pair 10 with 12 and leave 14 alone; the maximum is 2
    m = match_spikes([10, 14], [7, 12], delta_frames=3)
    assert m.num_matches == 2
    assert m.pairs.tolist() == [[0, 0], [1, 1]]


def test_empty_trains():
    m = match_spikes([], [1, 2], delta_frames=3)
    assert m.num_matches == 0 and m.pairs.shape == (0, 2)
    assert m.labels1.tolist() == [] and m.labels2.tolist() == ["FP", "FP"]
    m = match_spikes([5], [], delta_frames=3)
    assert m.labels1.tolist() == ["FN"]


@pytest.mark.parametrize("seed", range(30))
def test_count_is_the_maximum_matching_and_symmetric(seed):
    rng = np.random.default_rng(seed)
    # dense bursts so that greedy choices matter
    t1 = np.sort(rng.integers(0, 400, rng.integers(0, 60)))
    t2 = np.sort(rng.integers(0, 400, rng.integers(0, 60)))
    delta = int(rng.integers(0, 12))
    m = match_spikes(t1, t2, delta_frames=delta)
    assert m.num_matches == max_matching_size(t1, t2, delta)
    assert match_spikes(t2, t1, delta_frames=delta).num_matches == m.num_matches
    # pairs are valid and one-to-one
    if m.num_matches:
        assert np.all(np.abs(t1[m.pairs[:, 0]] - t2[m.pairs[:, 1]]) <= delta)
        assert np.unique(m.pairs[:, 0]).size == m.num_matches
        assert np.unique(m.pairs[:, 1]).size == m.num_matches
    assert np.sum(m.labels1 == "TP") == m.num_matches == np.sum(m.labels2 == "TP")


def test_maximum_matching_reference_via_assignment():
    # a second, independent reference: linear_sum_assignment on the 0/1 adjacency
    rng = np.random.default_rng(7)
    t1 = np.sort(rng.integers(0, 200, 40))
    t2 = np.sort(rng.integers(0, 200, 35))
    adj = (np.abs(np.subtract.outer(t1, t2)) <= 4).astype(float)
    r, c = linear_sum_assignment(-adj)
    assert match_spikes(t1, t2, delta_frames=4).num_matches == int(adj[r, c].sum())


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ([3, 1, 2], "not sorted"),
        ([-1, 2], "negative"),
        ([1.5, 2.0], "integer"),
        ([[1, 2]], "1-D"),
    ],
)
def test_bad_trains(train, message):
    with pytest.raises(ValueError, match=message):
        match_spikes(train, [1, 2], delta_frames=3)
    with pytest.raises(ValueError, match=message):
        match_spikes([1, 2], train, delta_frames=3)


def test_bad_delta():
    with pytest.raises(ValueError, match="delta_frames"):
        match_spikes([1], [1], delta_frames=-1)
    with pytest.raises(ValueError, match="delta_frames"):
        match_spikes([1], [1], delta_frames=1.5)


def test_integral_float_times_are_accepted():
    assert match_spikes(np.array([10.0, 20.0]), [10, 21], delta_frames=1).num_matches == 2


@pytest.mark.parametrize(("delta_ms", "fs", "expected"),
                         [(0.4, 30000.0, 12), (0.3, 20000.0, 6), (0.6, 20000.0, 12), (0.4, 32000.0, 12),
                          (0.0, 30000.0, 0), (1.0, 25000.0, 25)])
def test_delta_frames_from_ms(delta_ms, fs, expected):
    assert delta_frames_from_ms(delta_ms, fs) == expected


def test_delta_frames_from_ms_bad():
    with pytest.raises(ValueError, match="delta_ms"):
        delta_frames_from_ms(-0.1, 30000.0)
    with pytest.raises(ValueError, match="sampling_frequency"):
        delta_frames_from_ms(0.4, 0.0)
