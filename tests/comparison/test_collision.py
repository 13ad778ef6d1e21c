"""collision_recall, collision_recall_curve, template_similarity."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from spkfn.comparison import (
    collision_recall,
    collision_recall_curve,
    compare_to_ground_truth,
    template_similarity,
)
from spkfn.io import sorting_from_arrays, templates_from_array

from .cmp_synth import FS, gt_and_tested

LAGS = np.array([-55, -40, -25, -9, -3, 0, 3, 9, 25, 40, 55])


def planted(n=44):
    base = (np.arange(1, n + 1) * 1000).astype(np.int64)
    lags = np.resize(LAGS, n)
    u1 = base + lags
    detected0 = np.abs(lags) > 9  # the sorter misses unit 0 when unit 1 fires within 9 samples
    gt = sorting_from_arrays(np.concatenate([base, u1]), np.repeat([0, 1], n), sampling_frequency=FS)
    tested = sorting_from_arrays(np.concatenate([base[detected0] + 1, u1]), np.repeat(["t0", "t1"], [detected0.sum(), n]),
                                 sampling_frequency=FS)
    return gt, tested, lags, detected0


def reference_table(gt, labels_tp, max_lag, n_bins):
    """O(n^2) reference of the collision counts."""
    t = gt.sample_index.values
    u = gt.unit_index.values
    width = 2 * max_lag / n_bins
    total, tp = {}, {}
    for i in range(t.size):
        for j in range(t.size):
            if i == j or u[i] == u[j] or abs(t[j] - t[i]) > max_lag:
                continue
            b = min(int(np.floor((t[j] - t[i] + max_lag) / width)), n_bins - 1)
            key = (int(u[i]), int(u[j]), b)
            total[key] = total.get(key, 0) + 1
            tp[key] = tp.get(key, 0) + int(labels_tp[i])
    return total, tp


def test_planted_recall_by_lag():
    gt, tested, lags, detected0 = planted()
    tab = collision_recall(gt, tested, collision_lag_ms=2.0, num_bins=11)
    assert tab.attrs["lag_edges_ms"][0] == pytest.approx(-2.0) and tab.attrs["lag_edges_ms"][-1] == pytest.approx(2.0)
    t0 = tab[tab["gt_unit"] == 0].set_index("lag_bin")
    # lag bins of width 120 / 11 samples; -3, 0 and 3 share the middle bin
    bins = np.minimum(np.floor((lags + 60) / (120 / 11)).astype(int), 10)
    assert sorted(set(bins)) == sorted(t0.index) and len(t0) == 9
    for b in set(bins):
        assert t0.loc[b, "num_collisions"] == np.sum(bins == b)
        assert t0.loc[b, "num_detected"] == np.sum((bins == b) & detected0)
    # unit 1 is always detected
    assert (tab.loc[tab["gt_unit"] == 1, "recall"] == 1.0).all()
    curve = collision_recall_curve(tab[tab["gt_unit"] == 0].copy().__finalize__(tab))
    centre = curve.set_index("lag_ms")["recall"]
    assert centre.iloc[5] == 0.0  # lag 0 bin: always missed
    assert centre.iloc[0] == 1.0 and centre.iloc[-1] == 1.0


@pytest.mark.parametrize("seed", range(2))
def test_against_quadratic_reference(seed):
    gt, tested = gt_and_tested(seed, n_gt=6, n_spikes=120, duration=150_000, refractory=40)
    res = compare_to_ground_truth(gt, tested, compute_labels=True)
    tab = collision_recall(gt, tested, collision_lag_ms=1.5, num_bins=7, comparison=res)
    total, tp = reference_table(gt, res.labels_gt == "TP", 45, 7)
    got_total = {(r.gt_unit, r.other_unit, r.lag_bin): r.num_collisions for r in tab.itertuples()}
    got_tp = {(r.gt_unit, r.other_unit, r.lag_bin): r.num_detected for r in tab.itertuples()}
    assert got_total == total
    assert got_tp == tp
    assert len(tab) > 10  # the reference is not trivially empty


def test_similarity_columns_and_curves():
    gt, tested, _, _ = planted()
    tmpl = templates_from_array(np.array([[[1.0, 0.0]], [[1.0, 1.0]]]), sampling_frequency=FS, nbefore=0)
    tab = collision_recall(gt, tested, templates=tmpl)
    np.testing.assert_allclose(tab["similarity"], 1 / np.sqrt(2))
    sim = pd.DataFrame([[1.0, 0.3], [0.3, 1.0]], index=[0, 1], columns=[0, 1])
    tab2 = collision_recall(gt, tested, similarity=sim)
    np.testing.assert_allclose(tab2["similarity"], 0.3)
    low = collision_recall_curve(tab2, min_similarity=0.0, max_similarity=0.5)
    high = collision_recall_curve(tab2, min_similarity=0.5)
    assert low["num_collisions"].sum() == tab2["num_collisions"].sum()
    assert high["num_collisions"].sum() == 0 and high["recall"].isna().all()


def test_template_similarity_reference():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(4, 30, 3))
    data[3] = 0.0
    sim = template_similarity(templates_from_array(data, sampling_frequency=FS, nbefore=10, unit_ids=[5, 6, 7, 8]))
    assert sim.dims == ("unit1", "unit2") and sim.unit1.values.tolist() == [5, 6, 7, 8]
    flat = data.reshape(4, -1)
    for i in range(3):
        for j in range(3):
            expected = flat[i] @ flat[j] / np.linalg.norm(flat[i]) / np.linalg.norm(flat[j])
            assert sim.values[i, j] == pytest.approx(expected)
    assert (sim.values[3] == 0).all()


def test_bad_input():
    gt, tested, _, _ = planted()
    with pytest.raises(ValueError, match="collision_lag_ms"):
        collision_recall(gt, tested, collision_lag_ms=0)
    with pytest.raises(ValueError, match="shorter than one sample"):
        collision_recall(gt, tested, collision_lag_ms=0.01)
    with pytest.raises(ValueError, match="compute_labels=True"):
        collision_recall(gt, tested, comparison=compare_to_ground_truth(gt, tested))
    with pytest.raises(ValueError, match="similarity"):
        collision_recall(gt, tested, similarity=xr.DataArray(np.eye(2), dims=("a", "b")))
    with pytest.raises(ValueError, match="collision_recall"):
        collision_recall_curve(pd.DataFrame({"x": [1]}))
    tab = collision_recall(gt, tested)
    with pytest.raises(ValueError, match="similarity"):
        collision_recall_curve(tab, min_similarity=0.5)
