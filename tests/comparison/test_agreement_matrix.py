"""agreement_matrix, hungarian_matching, best_matching and the checks of sortings."""

import numpy as np
import pytest
import xarray as xr

from spkfn.comparison import agreement_matrix, best_matching, hungarian_matching
from spkfn.io import sorting_from_arrays, spike_trains

from .cmp_synth import FS, gt_and_tested, max_matching_size


def test_hand_built_counts_and_scores():
    s1 = sorting_from_arrays([100, 200, 300, 1000, 1012, 5000], [0, 0, 0, 1, 1, 2], sampling_frequency=FS)
    s2 = sorting_from_arrays([101, 199, 400, 1001, 1013, 1025], ["a", "a", "a", "b", "b", "b"],
                             sampling_frequency=FS, unit_ids=["a", "b", "c"])
    agr = agreement_matrix(s1, s2, delta_ms=0.4)  # 12 samples
    assert agr.dims == ("unit1", "unit2")
    assert agr.unit1.values.tolist() == [0, 1, 2] and agr.unit2.values.tolist() == ["a", "b", "c"]
    # unit 1 vs b: 1000-1001 and 1012-1013; 1025 is left (1012 is taken)
    assert agr.match_count.values.tolist() == [[2, 0, 0], [0, 2, 0], [0, 0, 0]]
    assert agr.num_spikes1.values.tolist() == [3, 2, 1]
    assert agr.num_spikes2.values.tolist() == [3, 3, 0]
    np.testing.assert_allclose(agr.values, [[2 / 4, 0, 0], [0, 2 / 3, 0], [0, 0, 0]])
    assert agr.attrs["delta_frames"] == 12 and agr.attrs["delta_ms"] == 0.4


def test_empty_units_have_zero_score_not_nan():
    s1 = sorting_from_arrays([10], [0], sampling_frequency=FS, unit_ids=[0, 1])
    s2 = sorting_from_arrays([10], [5], sampling_frequency=FS, unit_ids=[5, 6])
    agr = agreement_matrix(s1, s2)
    assert np.all(np.isfinite(agr.values))
    assert agr.values.tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_sortings_without_spikes_or_units():
    empty = sorting_from_arrays([], [], sampling_frequency=FS)
    s = sorting_from_arrays([10, 20], [0, 1], sampling_frequency=FS)
    assert agreement_matrix(empty, s).shape == (0, 2)
    assert agreement_matrix(s, empty).shape == (2, 0)


@pytest.mark.parametrize("seed", range(3))
def test_counts_equal_per_pair_maximum_matching(seed):
    gt, tested = gt_and_tested(seed, n_gt=8, n_spikes=150, duration=300_000, refractory=5)
    agr = agreement_matrix(gt, tested, delta_ms=0.4)
    tr1, tr2 = spike_trains(gt), spike_trains(tested)
    expected = np.array([[max_matching_size(tr1[u1], tr2[u2], 12) for u2 in tr2] for u1 in tr1])
    np.testing.assert_array_equal(agr.match_count.values, expected)


def test_symmetric():
    gt, tested = gt_and_tested(3, n_gt=8, n_spikes=200, duration=300_000, refractory=3,
                               unit_ids_tested=[f"t{i}" for i in range(9)])
    a = agreement_matrix(gt, tested)
    b = agreement_matrix(tested, gt)
    np.testing.assert_array_equal(a.values, b.values.T)
    np.testing.assert_array_equal(a.match_count.values, b.match_count.values.T)


def test_hungarian_and_best_matching():
    agr = xr.DataArray(np.array([[0.9, 0.85, 0.0], [0.88, 0.3, 0.0], [0.0, 0.0, 0.45]]), dims=("unit1", "unit2"),
                       coords={"unit1": [1, 2, 3], "unit2": ["a", "b", "c"]})
    # the assignment maximises the sum: 1-b + 2-a (1.73) beats 1-a + 2-b (1.2)
    assert hungarian_matching(agr, match_score=0.5) == {1: "b", 2: "a", 3: None}
    assert hungarian_matching(agr, match_score=0.4) == {1: "b", 2: "a", 3: "c"}
    best12, best21 = best_matching(agr, min_score=0.5)
    assert best12 == {1: "a", 2: "a", 3: None}
    assert best21 == {"a": 1, "b": 1, "c": None}


def test_best_matching_ties_take_the_first_unit():
    agr = xr.DataArray(np.array([[0.5, 0.5]]), dims=("unit1", "unit2"), coords={"unit1": [0], "unit2": [7, 8]})
    assert best_matching(agr, min_score=0.1)[0] == {0: 7}


def test_matching_bad_input():
    with pytest.raises(ValueError, match="agreement"):
        hungarian_matching(np.zeros((2, 2)))
    agr = xr.DataArray(np.zeros((1, 1)), dims=("unit1", "unit2"))
    with pytest.raises(ValueError, match="match_score"):
        hungarian_matching(agr, match_score=1.5)


# -- bad input ---------------------------------------------------------------------------------

def _good():
    return sorting_from_arrays([10, 20, 30], [0, 1, 0], sampling_frequency=FS)


def test_different_sampling_frequencies():
    other = sorting_from_arrays([10, 20], [0, 1], sampling_frequency=20000.0)
    with pytest.raises(ValueError, match="different sampling frequencies"):
        agreement_matrix(_good(), other)


def test_duplicate_unit_ids():
    bad = _good().assign_coords(unit=[3, 3])
    with pytest.raises(ValueError, match="duplicate unit ids"):
        agreement_matrix(_good(), bad)


def test_unsorted_spikes():
    bad = _good()
    bad["sample_index"] = ("spike", np.array([30, 10, 20]))
    with pytest.raises(ValueError, match="sorting2: .*not sorted"):
        agreement_matrix(_good(), bad)


def test_negative_spike_times():
    bad = _good()
    bad["sample_index"] = ("spike", np.array([-5, 10, 20]))
    with pytest.raises(ValueError, match="sorting1: .*negative"):
        agreement_matrix(bad, _good())


def test_not_a_sorting():
    with pytest.raises(ValueError, match="xarray.Dataset"):
        agreement_matrix(np.array([1, 2]), _good())


# -- properties (hypothesis) -------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

spikes = st.lists(st.tuples(st.integers(0, 300), st.integers(0, 3)), max_size=60)


@settings(max_examples=60, deadline=None)
@given(spikes, spikes, st.sampled_from([0.0, 0.1, 0.4, 1.0]))
def test_properties(sp1, sp2, delta_ms):
    s1 = sorting_from_arrays([t for t, _ in sp1], [u for _, u in sp1], sampling_frequency=FS, unit_ids=[0, 1, 2, 3])
    s2 = sorting_from_arrays([t for t, _ in sp2], [u for _, u in sp2], sampling_frequency=FS, unit_ids=[0, 1, 2, 3])
    a = agreement_matrix(s1, s2, delta_ms=delta_ms)
    b = agreement_matrix(s2, s1, delta_ms=delta_ms)
    np.testing.assert_array_equal(a.match_count.values, b.match_count.values.T)
    m = a.match_count.values
    assert np.all(m <= np.minimum.outer(a.num_spikes1.values, a.num_spikes2.values))
    assert np.all((a.values >= 0) & (a.values <= 1))
    tr1, tr2 = spike_trains(s1), spike_trains(s2)
    d = a.attrs["delta_frames"]
    for u1 in range(4):
        for u2 in range(4):
            assert m[u1, u2] == max_matching_size(tr1[u1], tr2[u2], d)
