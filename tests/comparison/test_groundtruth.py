"""compare_to_ground_truth on a hand-built case whose every count is known."""

import numpy as np
import pandas as pd
import pytest

from spkfn.comparison import compare_to_ground_truth, performance_from_counts
from spkfn.io import sorting_from_arrays

from .cmp_synth import FS, gt_and_tested

K = np.arange(1, 11)


def planted():
    """GT units A..G (strings) and tested units 10..16 (ints); delta = 12 samples.

    A: 10 spikes, found by 10 (+2 extra spikes)        -> tp 10, fp 2
    B: 10 spikes, 8 found by 11; 2 found by noise 14   -> tp 8, fn 2, cl 2
    C: 10 spikes, 5 found by 12, 4 by redundant 13     -> tp 5, fn 5, cl 4
    D: 4 spikes, found by nobody                        -> fn 4
    E: empty
    F: 10 spikes, G: 8 spikes, both in overmerged 15   -> F tp 10 fp 8; G fn 8, cl 8
    16: empty tested unit
    """
    gt = {
        "A": K * 1000,
        "B": K * 1000 + 300,
        "C": K * 1000 + 600,
        "D": np.array([50000, 51000, 52000, 53000]),
        "E": np.array([], dtype=np.int64),
        "F": (K + 20) * 1000 + 100,
        "G": (K[:8] + 20) * 1000 + 150,
    }
    tested = {
        10: np.concatenate([gt["A"] + 2, [15000, 16000]]),
        11: gt["B"][:8] - 3,
        12: gt["C"][:5],
        13: gt["C"][6:] + 1,
        14: np.concatenate([gt["B"][8:] + 1, 200000 + 1000 * np.arange(20)]),
        15: np.concatenate([gt["F"], gt["G"]]),
        16: np.array([], dtype=np.int64),
    }

    def build(d):
        ids = list(d)
        return sorting_from_arrays(np.concatenate([d[u] for u in ids]).astype(np.int64),
                                   np.repeat(np.array(ids), [len(d[u]) for u in ids]),
                                   sampling_frequency=FS, unit_ids=ids)

    return build(gt), build(tested)


def test_matching_and_counts():
    gt, tested = planted()
    res = compare_to_ground_truth(gt, tested, exhaustive_gt=True)
    assert res.params["delta_frames"] == 12
    assert res.matching == {"A": 10, "B": 11, "C": 12, "D": None, "E": None, "F": 15, "G": None}
    assert res.matching == res.hungarian_matching
    expected = {
        "A": (10, 0, 2, 0, 10, 12),
        "B": (8, 2, 0, 2, 10, 8),
        "C": (5, 5, 0, 4, 10, 5),
        "D": (0, 4, 0, 0, 4, 0),
        "E": (0, 0, 0, 0, 0, 0),
        "F": (10, 0, 8, 0, 10, 18),
        "G": (0, 8, 0, 8, 8, 0),
    }
    got = res.counts[["tp", "fn", "fp", "cl", "num_gt", "num_tested"]]
    assert {u: tuple(int(v) for v in row) for u, row in got.iterrows()} == expected
    assert res.counts.index.name == "gt_unit"
    assert res.counts["tested_unit"].tolist() == [10, 11, 12, None, None, 15, None]
    np.testing.assert_allclose(res.counts["agreement"], [10 / 12, 0.8, 0.5, 0, 0, 10 / 18, 0])


def test_performance_exact():
    gt, tested = planted()
    perf = compare_to_ground_truth(gt, tested).performance
    assert list(perf.columns) == ["accuracy", "precision", "recall", "false_discovery_rate", "miss_rate"]
    exp = pd.DataFrame(
        {
            "accuracy": [10 / 12, 0.8, 0.5, 0, 0, 10 / 18, 0],
            "precision": [10 / 12, 1, 1, 0, 0, 10 / 18, 0],
            "recall": [1, 0.8, 0.5, 0, 0, 1, 0],
        },
        index=list("ABCDEFG"),
    )
    for col in exp:
        np.testing.assert_allclose(perf[col].to_numpy(), exp[col].to_numpy(), err_msg=col)
    np.testing.assert_allclose(perf["false_discovery_rate"], 1 - exp["precision"])
    np.testing.assert_allclose(perf["miss_rate"], 1 - exp["recall"])


def test_aggregate_performance():
    gt, tested = planted()
    res = compare_to_ground_truth(gt, tested)
    agg = res.aggregate_performance
    assert list(agg.index) == ["averaged", "pooled"]
    np.testing.assert_allclose(agg.loc["averaged"].to_numpy(), res.performance.mean().to_numpy())
    tp, fn, fp = 33, 19, 10
    np.testing.assert_allclose(agg.loc["pooled", ["accuracy", "precision", "recall"]].to_numpy(float),
                               [tp / (tp + fn + fp), tp / (tp + fp), tp / (tp + fn)])


def test_unit_categories():
    gt, tested = planted()
    res = compare_to_ground_truth(gt, tested, exhaustive_gt=True)
    assert res.well_detected_units == [10, 11]
    assert res.redundant_units == [13]
    assert res.false_positive_units == [14, 16]
    assert res.overmerged_units == [15]
    assert res.bad_units == [13, 14, 16]
    s = res.summary()
    assert (s["num_gt"], s["num_tested"], s["num_well_detected"], s["num_bad"]) == (7, 7, 2, 3)


def test_thresholds_are_parameters():
    gt, tested = planted()
    res = compare_to_ground_truth(gt, tested, exhaustive_gt=True, well_detected_score=0.81,
                                  redundant_score=0.5, overmerged_score=0.5)
    assert res.well_detected_units == [10]
    assert res.redundant_units == [] and res.false_positive_units == [13, 14, 16]
    assert res.overmerged_units == []
    # a higher match score leaves C and F unmatched
    res = compare_to_ground_truth(gt, tested, match_score=0.6)
    assert res.matching["C"] is None and res.matching["F"] is None


def test_not_exhaustive_leaves_categories_undefined():
    gt, tested = planted()
    res = compare_to_ground_truth(gt, tested, exhaustive_gt=False)
    assert res.well_detected_units == [10, 11]
    assert res.false_positive_units is None and res.redundant_units is None
    assert res.overmerged_units is None and res.bad_units is None
    assert np.isnan(res.summary()["num_bad"])


def test_confusion_matrix():
    gt, tested = planted()
    conf = compare_to_ground_truth(gt, tested).confusion
    assert list(conf.index) == ["A", "B", "C", "F", "D", "E", "G", "FP"]
    assert list(conf.columns) == [10, 11, 12, 15, 13, 14, 16, "FN"]
    expected = np.array([
        # 10 11 12 15 13 14 16 FN
        [10, 0, 0, 0, 0, 0, 0, 0],   # A
        [0, 8, 0, 0, 0, 2, 0, 0],    # B
        [0, 0, 5, 0, 4, 0, 0, 1],    # C
        [0, 0, 0, 10, 0, 0, 0, 0],   # F
        [0, 0, 0, 0, 0, 0, 0, 4],    # D
        [0, 0, 0, 0, 0, 0, 0, 0],    # E
        [0, 0, 0, 8, 0, 0, 0, 0],    # G
        [2, 0, 0, 0, 0, 20, 0, 0],   # FP
    ])
    np.testing.assert_array_equal(conf.to_numpy(), expected)


def test_labels():
    gt, tested = planted()
    res = compare_to_ground_truth(gt, tested, compute_labels=True)
    assert res.labels_gt.shape == (gt.sizes["spike"],)
    assert res.labels_tested.shape == (tested.sizes["spike"],)
    gt_units = gt.unit.values[gt.unit_index.values]
    for u, row in res.counts.iterrows():
        lab = res.labels_gt[gt_units == u]
        assert np.sum(lab == "TP") == row["tp"]
        assert np.sum(lab == "CL") == row["cl"]
        assert np.sum(lab != "TP") == row["fn"]
    t_units = tested.unit.values[tested.unit_index.values]
    assert res.labels_tested[t_units == 14].tolist().count("CL") == 2
    assert res.labels_tested[t_units == 14].tolist().count("FP") == 20
    assert set(res.labels_tested[t_units == 15]) == {"TP", "CL"}
    # without compute_labels nothing per spike is kept
    assert compare_to_ground_truth(gt, tested).labels_gt is None


def test_best_match_mode():
    gt, tested = planted()
    res = compare_to_ground_truth(gt, tested, match_mode="best", compute_labels=True)
    # F and G both take the overmerged unit 15; B's best is 11
    assert res.matching == {"A": 10, "B": 11, "C": 12, "D": None, "E": None, "F": 15, "G": 15}
    g = res.counts.loc["G"]
    assert (g["tp"], g["fn"], g["fp"], g["cl"]) == (8, 0, 10, 0)
    # unit classification still uses the one-to-one matching
    assert res.hungarian_matching["G"] is None


def test_tested_sorting_without_units():
    gt, _ = planted()
    empty = sorting_from_arrays([], [], sampling_frequency=FS)
    res = compare_to_ground_truth(gt, empty, exhaustive_gt=True)
    assert res.counts["tp"].sum() == 0
    assert (res.counts["fn"] == res.counts["num_gt"]).all()
    assert res.well_detected_units == [] and res.bad_units == []
    assert res.confusion.shape == (8, 1)


@pytest.mark.parametrize("seed", range(3))
def test_synthetic_invariants(seed):
    gt, tested = gt_and_tested(seed)
    res = compare_to_ground_truth(gt, tested, exhaustive_gt=True, compute_labels=True)
    c = res.counts
    assert (c["tp"] + c["fn"] == c["num_gt"]).all()
    assert (c["cl"] <= c["fn"]).all()
    conf = res.confusion
    # rows sum to the GT spike counts, columns to the tested spike counts (one-to-one matching)
    n_gt = dict(zip(gt.unit.values.tolist(), np.bincount(gt.unit_index.values, minlength=gt.sizes["unit"]), strict=True))
    n_t = dict(zip(tested.unit.values.tolist(), np.bincount(tested.unit_index.values, minlength=tested.sizes["unit"]),
                   strict=True))
    rows = conf.drop(index="FP").sum(axis=1)
    assert all(rows[u] == n_gt[u] for u in rows.index)
    cols = conf.drop(columns="FN").sum(axis=0)
    assert all(cols[u] == n_t[u] for u in cols.index)
    # planted structure: the split unit's small half is redundant, the merged unit overmerged
    n = gt.sizes["unit"]
    assert res.redundant_units == [n - 3]
    assert res.overmerged_units == [n - 2]
    assert set(res.false_positive_units) == {n - 1, n}


def test_performance_from_counts_bad_input():
    with pytest.raises(ValueError, match="'fp'"):
        performance_from_counts(pd.DataFrame({"tp": [1], "fn": [0]}))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"match_mode": "greedy"}, "match_mode"),
    ({"match_score": 1.2}, "match_score"),
    ({"well_detected_score": -0.1}, "well_detected_score"),
    ({"delta_ms": -1}, "delta_ms"),
    ({"exhaustive_gt": "yes"}, "exhaustive_gt"),
])
def test_bad_parameters(kwargs, message):
    gt, tested = planted()
    with pytest.raises(ValueError, match=message):
        compare_to_ground_truth(gt, tested, **kwargs)


def test_bad_sortings():
    gt, tested = planted()
    other = tested.copy()
    other.attrs = {**tested.attrs, "sampling_frequency": 32000.0}
    with pytest.raises(ValueError, match="different sampling frequencies"):
        compare_to_ground_truth(gt, other)
    dup = tested.assign_coords(unit=[10, 11, 12, 13, 14, 15, 10])
    with pytest.raises(ValueError, match="sorting: sorting has duplicate unit ids"):
        compare_to_ground_truth(gt, dup)
    bad = gt.copy()
    bad["sample_index"] = ("spike", gt.sample_index.values[::-1].copy())
    with pytest.raises(ValueError, match="gt_sorting: .*not sorted"):
        compare_to_ground_truth(bad, tested)


def test_delta_boundary_at_sorting_level():
    gt = sorting_from_arrays([1000, 5000], [0, 0], sampling_frequency=FS)
    at = sorting_from_arrays([1012, 4988], [0, 0], sampling_frequency=FS)  # exactly 12 samples away
    past = sorting_from_arrays([1013, 4987], [0, 0], sampling_frequency=FS)
    assert compare_to_ground_truth(gt, at).counts.loc[0, "tp"] == 2
    res = compare_to_ground_truth(gt, past, match_score=0.0)
    assert res.counts.loc[0, "tp"] == 0 and res.agreement.values[0, 0] == 0.0


def test_tie_between_duplicate_units():
    # tested "a" and "b" are the same unit found twice: equal scores; the first is matched and the
    # duplicate is redundant
    gt = sorting_from_arrays(np.concatenate([K * 1000, K * 1000 + 300]), np.repeat([0, 1], 10), sampling_frequency=FS)
    t = sorting_from_arrays(np.concatenate([K * 1000, K * 1000 + 1, K * 1000 + 300]), np.repeat(["a", "b", "c"], 10),
                            sampling_frequency=FS)
    res = compare_to_ground_truth(gt, t, exhaustive_gt=True)
    assert res.agreement.values[0, 0] == res.agreement.values[0, 1] == 1.0
    assert res.matching == {0: "a", 1: "c"}
    assert res.best_gt_matching == {"a": 0, "b": 0, "c": 1}
    assert res.redundant_units == ["b"] and res.bad_units == ["b"] and res.false_positive_units == []
    assert res.well_detected_units == ["a", "c"]
