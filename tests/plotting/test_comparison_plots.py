"""Comparison figures: the prepared data, and the artists drawn (not pixels)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

from spkfn.comparison import collision_recall, compare_to_ground_truth, run_study  # noqa: E402
from spkfn.io import sorting_from_arrays  # noqa: E402
from spkfn.plotting import (  # noqa: E402
    collision_recall_curves,
    order_agreement,
    performance_by_rank,
    performance_vs_snr_data,
    plot_agreement_matrix,
    plot_collision_recall,
    plot_confusion_matrix,
    plot_performance,
    plot_performance_vs_snr,
    plot_unit_categories,
    unit_category_counts,
)

FS = 30000.0
K = np.arange(1, 31) * 1000


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def sortings():
    gt = sorting_from_arrays(np.concatenate([K, K + 300, K + 600]), np.repeat([0, 1, 2], 30), sampling_frequency=FS)
    keep = np.arange(30) % 3 != 0
    tested = sorting_from_arrays(np.concatenate([K[keep] + 310, K + 1, np.arange(5) * 999 + 90000]),
                                 np.repeat(["b", "a", "z"], [keep.sum(), 30, 5]), sampling_frequency=FS)
    return gt, tested


def test_order_agreement_puts_matches_on_the_diagonal():
    gt, tested = sortings()
    res = compare_to_ground_truth(gt, tested)
    o = order_agreement(res.agreement)
    assert o.unit1.values.tolist() == [0, 1, 2]
    assert o.unit2.values.tolist() == ["a", "b", "z"]
    np.testing.assert_allclose(np.diag(o.values)[:2], [1.0, 20 / 30])
    assert o.match_count.values[0, 0] == 30  # coords follow the reordering


def test_plot_agreement_matrix_artists():
    gt, tested = sortings()
    agr = compare_to_ground_truth(gt, tested).agreement
    ax = plot_agreement_matrix(agr)
    assert len(ax.images) == 1
    np.testing.assert_allclose(ax.images[0].get_array(), order_agreement(agr).values)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "z"]
    assert len(ax.figure.axes) == 2  # image + colorbar
    fig, ax2 = plt.subplots()
    assert plot_agreement_matrix(agr, ordered=False, ax=ax2, colorbar=False) is ax2
    np.testing.assert_allclose(ax2.images[0].get_array(), agr.values)
    assert len(fig.axes) == 1


def test_plot_confusion_matrix():
    gt, tested = sortings()
    conf = compare_to_ground_truth(gt, tested).confusion
    ax = plot_confusion_matrix(conf)
    assert len(ax.images) == 1
    assert len(ax.texts) == int((conf.to_numpy() > 0).sum())
    assert sorted(int(t.get_text()) for t in ax.texts) == sorted(conf.to_numpy()[conf.to_numpy() > 0].tolist())


def test_performance_by_rank_and_plot():
    gt, tested = sortings()
    perf = compare_to_ground_truth(gt, tested).performance
    data = performance_by_rank(perf)
    assert data["gt_unit"].tolist() == [0, 1, 2]
    assert data["accuracy"].is_monotonic_decreasing
    ax = plot_performance(perf)
    assert len(ax.lines) == 3
    np.testing.assert_allclose(ax.lines[0].get_ydata(), data["accuracy"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["accuracy", "recall", "precision"]


def test_performance_vs_snr():
    gt, tested = sortings()
    tables = run_study([
        {"recording": "r", "sorter": "s1", "gt_sorting": gt, "sorting": tested, "snr": {0: 3.0, 1: 8.0, 2: 12.0}},
        {"recording": "r", "sorter": "s2", "gt_sorting": gt, "sorting": gt, "snr": {0: 3.0, 1: 8.0}},
    ])
    data = performance_vs_snr_data(tables.units)
    assert len(data) == 5  # unit 2 of s2 has no SNR
    assert data.loc[data["sorter"] == "s2", "accuracy"].tolist() == [1.0, 1.0]
    ax = plot_performance_vs_snr(tables.units, metric="recall")
    assert len(ax.collections) == 2
    np.testing.assert_allclose(ax.collections[0].get_offsets()[:, 0], [3.0, 8.0, 12.0])
    perf = compare_to_ground_truth(gt, tested).performance
    with pytest.raises(ValueError, match="no SNR"):
        performance_vs_snr_data(perf)
    assert len(plot_performance_vs_snr(perf, snr=pd.Series({0: 1.0, 1: 2.0, 2: 3.0})).collections) == 1


def test_collision_recall_plot():
    base = np.arange(1, 41) * 1000
    lags = np.resize([-40, -5, 0, 5, 40], 40)
    gt = sorting_from_arrays(np.concatenate([base, base + lags]), np.repeat([0, 1], 40), sampling_frequency=FS)
    tested = sorting_from_arrays(base[np.abs(lags) > 5], np.zeros(16, int), sampling_frequency=FS)
    tab = collision_recall(gt, tested, num_bins=5, similarity=xr.DataArray(
        np.array([[1.0, 0.9], [0.9, 1.0]]), dims=("unit1", "unit2"), coords={"unit1": [0, 1], "unit2": [0, 1]}))
    curves = collision_recall_curves(tab, similarity_bins=[0.0, 0.5, 1.0])
    assert curves["similarity_range"].unique().tolist() == ["[0, 0.5)", "[0.5, 1)"]
    assert curves.loc[curves["similarity_range"] == "[0, 0.5)", "num_collisions"].sum() == 0
    ax = plot_collision_recall(tab, similarity_bins=[0.0, 0.5, 1.0])
    assert len(ax.lines) == 2
    ax = plot_collision_recall(tab)
    assert len(ax.lines) == 1
    all_curve = collision_recall_curves(tab)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), all_curve["recall"])


def test_unit_categories_plot():
    cases = pd.DataFrame({"sorter": ["a", "a", "b"], "num_well_detected": [3, 4, 5], "num_redundant": [0, 1, 0],
                          "num_overmerged": [1, 0, 0], "num_false_positive": [2, 2, 0]})
    counts = unit_category_counts(cases)
    assert counts.loc["a"].tolist() == [7, 1, 1, 4] and counts.loc["b"].tolist() == [5, 0, 0, 0]
    ax = plot_unit_categories(cases)
    assert len(ax.patches) == 8  # 2 sorters x 4 categories
    heights = sorted(p.get_height() for p in ax.patches)
    assert heights == sorted([7, 1, 1, 4, 5, 0, 0, 0])
    with pytest.raises(ValueError, match="StudyTables"):
        unit_category_counts(pd.DataFrame({"x": [1]}))
