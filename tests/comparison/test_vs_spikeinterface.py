"""Agreement with SpikeInterface's GroundTruthComparison and SymmetricSortingComparison.

Deliberate differences (docs/comparison.md) are tested here too: SpikeInterface's match count can
exceed the maximum matching when ground-truth spikes are closer than 2 x delta, and its
``int(delta_ms / 1000 * fs)`` loses one frame to round-off for some (delta, fs) pairs.
"""

import numpy as np
import pytest

from spkfn.comparison import agreement_matrix, compare_sorters, compare_to_ground_truth
from spkfn.io import sorting_from_arrays

from .cmp_synth import FS, gt_and_tested

si = pytest.importorskip("spikeinterface")
pytestmark = pytest.mark.reference

from spikeinterface.comparison import GroundTruthComparison, SymmetricSortingComparison  # noqa: E402
from spikeinterface.core import NumpySorting  # noqa: E402


def to_si(sorting):
    ids = sorting.unit.values
    return NumpySorting.from_samples_and_labels([sorting.sample_index.values], [ids[sorting.unit_index.values]],
                                                float(sorting.attrs["sampling_frequency"]), unit_ids=ids)


def _ids(series):
    return {k: (None if v in (-1, "") else v) for k, v in series.to_dict().items()}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("match_mode", ["hungarian", "best"])
def test_ground_truth_comparison_equals_spikeinterface(seed, match_mode):
    gt, tested = gt_and_tested(seed, n_gt=16, n_spikes=500, refractory=30)  # GT ISI > delta (12)
    ours = compare_to_ground_truth(gt, tested, exhaustive_gt=True, match_mode=match_mode)
    ref = GroundTruthComparison(to_si(gt), to_si(tested), exhaustive_gt=True, match_mode=match_mode)
    np.testing.assert_array_equal(ours.agreement.match_count.values, ref.match_event_count.values.astype(np.int64))
    np.testing.assert_array_equal(ours.agreement.values, ref.agreement_scores.values)
    assert ours.hungarian_matching == _ids(ref.hungarian_match_12)
    assert ours.best_matching == _ids(ref.best_match_12)
    assert ours.best_gt_matching == _ids(ref.best_match_21)
    perf = ref.get_performance(method="by_unit").astype(float)
    for col in ["accuracy", "precision", "recall"]:
        np.testing.assert_array_equal(ours.performance[col].to_numpy(), perf[col].to_numpy(), err_msg=col)
    # the error rates agree wherever SpikeInterface defines them (tp > 0)
    detected = ours.counts["tp"].to_numpy() > 0
    for col in ["false_discovery_rate", "miss_rate"]:
        np.testing.assert_allclose(ours.performance[col].to_numpy()[detected], perf[col].to_numpy()[detected])
    raw = ref.get_performance(method="raw_count")
    for col in ["tp", "fn", "fp", "num_gt", "num_tested"]:
        np.testing.assert_array_equal(ours.counts[col].to_numpy(), raw[col].to_numpy(dtype=np.int64), err_msg=col)
    avg = ref.get_performance(method="pooled_with_average")
    np.testing.assert_allclose(ours.aggregate_performance.loc["averaged", ["accuracy", "precision", "recall"]].to_numpy(float),
                               avg[["accuracy", "precision", "recall"]].to_numpy(float))
    assert ours.well_detected_units == list(ref.get_well_detected_units())
    assert ours.redundant_units == list(ref.get_redundant_units())
    assert ours.false_positive_units == list(ref.get_false_positive_units())
    assert ours.overmerged_units == list(ref.get_overmerged_units())
    assert ours.bad_units == list(ref.get_bad_units())
    # the planted structure makes every category non-empty, so the checks above are not vacuous
    assert ours.redundant_units and ours.overmerged_units and ours.false_positive_units


def test_string_unit_ids_equal_spikeinterface():
    gt, tested = gt_and_tested(5, n_gt=10, unit_ids_tested=[f"t{i}" for i in range(11)])
    ours = compare_to_ground_truth(gt, tested, exhaustive_gt=True)
    ref = GroundTruthComparison(to_si(gt), to_si(tested), exhaustive_gt=True)
    assert ours.hungarian_matching == _ids(ref.hungarian_match_12)
    assert ours.well_detected_units == list(ref.get_well_detected_units())
    assert ours.bad_units == list(ref.get_bad_units())


@pytest.mark.parametrize("seed", range(3))
def test_symmetric_comparison_equals_spikeinterface(seed):
    a, b = gt_and_tested(seed, n_gt=12, refractory=30)
    ours = compare_sorters(a, b)
    ref = SymmetricSortingComparison(to_si(a), to_si(b))
    np.testing.assert_array_equal(ours.agreement.values, ref.agreement_scores.values)
    assert ours.matching12 == _ids(ref.hungarian_match_12)
    assert ours.matching21 == _ids(ref.hungarian_match_21)


def test_deliberate_difference_bursts():
    # GT spikes 4 samples apart (< 2 x delta): SpikeInterface matches tested spike 101 twice
    gt = sorting_from_arrays([100, 104, 108], [0, 0, 0], sampling_frequency=FS)
    tested = sorting_from_arrays([101, 103, 2000], [0, 0, 0], sampling_frequency=FS)
    ours = agreement_matrix(gt, tested).match_count.values[0, 0]
    ref = GroundTruthComparison(to_si(gt), to_si(tested)).match_event_count.values[0, 0]
    assert ours == 2  # the maximum number of one-to-one pairs
    assert ref == 3


def test_deliberate_difference_delta_rounding():
    gt = sorting_from_arrays([100], [0], sampling_frequency=20000.0)
    tested = sorting_from_arrays([106], [0], sampling_frequency=20000.0)
    ours = compare_to_ground_truth(gt, tested, delta_ms=0.3)
    ref = GroundTruthComparison(to_si(gt), to_si(tested), delta_time=0.3)
    assert ours.params["delta_frames"] == 6 and ref.delta_frames == 5
    assert ours.counts.loc[0, "tp"] == 1 and ref.match_event_count.values[0, 0] == 0


def test_ties_equal_spikeinterface():
    k = np.arange(1, 11) * 1000
    gt = sorting_from_arrays(np.concatenate([k, k + 300]), np.repeat([0, 1], 10), sampling_frequency=FS)
    tested = sorting_from_arrays(np.concatenate([k, k + 1, k + 300, k + 302]), np.repeat([5, 6, 7, 8], 10),
                                 sampling_frequency=FS)
    ours = compare_to_ground_truth(gt, tested, exhaustive_gt=True)
    ref = GroundTruthComparison(to_si(gt), to_si(tested), exhaustive_gt=True)
    assert ours.hungarian_matching == _ids(ref.hungarian_match_12)
    assert ours.best_gt_matching == _ids(ref.best_match_21)
    assert ours.redundant_units == list(ref.get_redundant_units()) == [6, 8]
    assert ours.bad_units == list(ref.get_bad_units())
