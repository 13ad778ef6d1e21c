"""compare_sorters, compare_multiple_sorters and consensus_sorting."""

import numpy as np
import pytest

from spkfn.comparison import compare_multiple_sorters, compare_sorters, consensus_sorting
from spkfn.io import check_sorting, sorting_from_arrays, spike_trains

from .cmp_synth import FS, gt_and_tested

K = np.arange(1, 21) * 1000


def build(d):
    ids = list(d)
    return sorting_from_arrays(np.concatenate([np.asarray(d[u], dtype=np.int64) for u in ids]),
                               np.repeat(np.array(ids), [len(d[u]) for u in ids]), sampling_frequency=FS, unit_ids=ids)


def test_compare_sorters_is_symmetric():
    gt, tested = gt_and_tested(1, unit_ids_tested=[f"u{i}" for i in range(13)])
    ab = compare_sorters(gt, tested)
    ba = compare_sorters(tested, gt)
    np.testing.assert_array_equal(ab.agreement.values, ba.agreement.values.T)
    assert ab.matching12 == ba.matching21 and ab.matching21 == ba.matching12
    assert ab.best12 == ba.best21 and ab.best21 == ba.best12
    pairs = ab.matched_pairs
    assert len(pairs) == sum(v is not None for v in ab.matching12.values())
    assert pairs["agreement"].is_monotonic_decreasing
    assert (pairs["agreement"] >= 0.5).all()


def test_compare_sorters_hand_built():
    a = build({0: K, 1: K + 300})
    b = build({"x": K[:15] + 1, "y": K + 299, "z": [500000]})
    cmp = compare_sorters(a, b)
    assert cmp.matching12 == {0: "x", 1: "y"}
    assert cmp.matching21 == {"x": 0, "y": 1, "z": None}
    row = cmp.matched_pairs.set_index("unit1").loc[0]
    assert (row["match_count"], row["num_spikes1"], row["num_spikes2"]) == (15, 20, 15)
    assert row["agreement"] == pytest.approx(15 / 20)


def three_sorters():
    """Units found by 3, 2 and 1 sorters; sorter c splits unit P into two units."""
    p, q, r = K, K + 300, K + 600
    a = build({"a0": p, "a1": q, "a2": r})
    b = build({"b0": p + 1, "b1": q - 2})
    c = build({"c0": p[:12] + 2, "c1": p[12:] - 1, "c9": np.arange(5) * 777 + 400000})
    return {"a": a, "b": b, "c": c}


def test_multi_graph_and_units():
    s = three_sorters()
    multi = compare_multiple_sorters(s, min_agreement_count=2)
    assert multi.sorter_names == ["a", "b", "c"]
    assert set(multi.pairwise) == {("a", "b"), ("a", "c"), ("b", "c")}
    e = multi.edges
    # edges: a0-b0, a1-b1 (1.0), a0-c0 and b0-c0 (12/20 = 0.6); c1 (8/20) is below match_score
    got = {(r.sorter1, r.unit1, r.sorter2, r.unit2): r.agreement for r in e.itertuples()}
    assert got == pytest.approx({("a", "a0", "b", "b0"): 1.0, ("a", "a1", "b", "b1"): 1.0,
                                 ("a", "a0", "c", "c0"): 0.6, ("b", "b0", "c", "c0"): 0.6})
    assert e["kept"].all()
    u = multi.units
    assert u[["agreement_number", "a", "b", "c"]].values.tolist() == [
        [3, "a0", "b0", "c0"], [2, "a1", "b1", None], [1, "a2", None, None], [1, None, None, "c1"],
        [1, None, None, "c9"]]
    np.testing.assert_allclose(u["avg_agreement"], [(1 + 0.6 + 0.6) / 3, 1.0, 0.0, 0.0, 0.0])


def test_consensus_sorting_k():
    s = three_sorters()
    multi = compare_multiple_sorters(s, min_agreement_count=2)
    cons = check_sorting(multi.consensus)
    assert cons.unit.values.tolist() == [0, 1]
    assert cons.agreement_number.values.tolist() == [3, 2]
    assert cons["unit_a"].values.tolist() == ["a0", "a1"] and cons["unit_c"].values.tolist() == ["c0", ""]
    # union of the strongest edge a0-b0: identical trains up to 1 sample -> a0's spikes
    trains = spike_trains(cons)
    np.testing.assert_array_equal(trains[0], K)
    np.testing.assert_array_equal(trains[1], K + 300)
    k3 = consensus_sorting(multi, s, min_agreement_count=3)
    assert k3.unit.values.tolist() == [0]
    k1 = consensus_sorting(multi, s, min_agreement_count=1)
    assert k1.sizes["unit"] == 5


def test_consensus_union_and_intersection():
    a = build({"a0": [100, 200, 300, 400]})
    b = build({"b0": [101, 199, 250, 401]})
    multi = compare_multiple_sorters([a, b], min_agreement_count=2, spike_train_mode="union")
    assert multi.consensus.sample_index.values.tolist() == [100, 200, 250, 300, 400]
    inter = consensus_sorting(multi, [a, b], min_agreement_count=2, spike_train_mode="intersection")
    assert inter.sample_index.values.tolist() == [100, 200, 400]


def test_graph_cleaning_keeps_one_unit_per_sorter():
    # a0 = P, a1 = Q; b0 = P + most of Q; c0 = Q + most of P. Hungarian edges: a0-b0 (20/34),
    # a1-c0 (20/33), b0-c0 (27/40). Joining all would put a0 and a1 in one consensus unit: the
    # weakest edge (a0-b0) is dropped.
    p, q = K, K + 300
    a = build({"a0": p, "a1": q})
    b = build({"b0": np.concatenate([p, q[:14]])})
    c = build({"c0": np.concatenate([p[:13], q])})
    multi = compare_multiple_sorters({"a": a, "b": b, "c": c}, min_agreement_count=1)
    e = multi.edges.set_index(["sorter1", "unit1", "sorter2", "unit2"])
    assert e["agreement"].to_dict() == pytest.approx({("a", "a0", "b", "b0"): 20 / 34, ("a", "a1", "c", "c0"): 20 / 33,
                                                      ("b", "b0", "c", "c0"): 27 / 40})
    assert e["kept"].to_dict() == {("a", "a0", "b", "b0"): False, ("a", "a1", "c", "c0"): True,
                                   ("b", "b0", "c", "c0"): True}
    assert multi.units[["agreement_number", "a", "b", "c"]].values.tolist() == [[1, "a0", None, None],
                                                                                 [3, "a1", "b0", "c0"]]
    np.testing.assert_allclose(multi.units["avg_agreement"], [0.0, (20 / 33 + 27 / 40) / 2])


def test_multi_bad_input():
    s = three_sorters()
    with pytest.raises(ValueError, match="at least 2"):
        compare_multiple_sorters({"a": s["a"]})
    with pytest.raises(ValueError, match="min_agreement_count"):
        compare_multiple_sorters(s, min_agreement_count=4)
    with pytest.raises(ValueError, match="spike_train_mode"):
        compare_multiple_sorters(s, spike_train_mode="vote")
    other = sorting_from_arrays([1, 2], [0, 0], sampling_frequency=20000.0)
    with pytest.raises(ValueError, match="different sampling frequencies"):
        compare_multiple_sorters({"a": s["a"], "z": other})
    multi = compare_multiple_sorters(s)
    with pytest.raises(ValueError, match="same sortings"):
        consensus_sorting(multi, [s["a"], s["b"], s["c"]])
