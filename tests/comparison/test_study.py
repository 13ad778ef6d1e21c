"""run_study, snr_from_templates, save/load of study tables."""

import numpy as np
import pandas as pd
import pytest

from spkfn.comparison import (
    StudyCase,
    compare_to_ground_truth,
    load_study_tables,
    run_study,
    save_study_tables,
    snr_from_templates,
)
from spkfn.io import templates_from_array

from .cmp_synth import FS, gt_and_tested


def make_cases():
    gt1, good1 = gt_and_tested(0, n_gt=8)
    _, bad1 = gt_and_tested(1, n_gt=8)  # unrelated spikes: a bad sorter
    gt2, good2 = gt_and_tested(2, n_gt=6, unit_ids_tested=[f"u{i}" for i in range(7)])
    rng = np.random.default_rng(0)
    tmpl1 = templates_from_array(rng.normal(0, 5, (8, 20, 4)), sampling_frequency=FS, nbefore=5)
    return [
        StudyCase("rec1", "good", gt1, good1, templates=tmpl1, noise_levels_uV=np.full(4, 2.0)),
        StudyCase("rec1", "bad", gt1, bad1, snr={u: float(u) for u in range(8)}),
        {"recording": "rec2", "sorter": "good", "gt_sorting": gt2, "sorting": good2},
    ]


def test_units_table_matches_the_comparisons():
    cases = make_cases()
    tables = run_study(cases)
    u = tables.units
    assert len(u) == 8 + 8 + 6
    assert u.groupby(["recording", "sorter"], sort=False).size().to_dict() == {
        ("rec1", "good"): 8, ("rec1", "bad"): 8, ("rec2", "good"): 6}
    ref = compare_to_ground_truth(cases[0].gt_sorting, cases[0].sorting, exhaustive_gt=True)
    mine = u[(u["recording"] == "rec1") & (u["sorter"] == "good")].set_index("gt_unit")
    for col in ["tp", "fn", "fp", "cl", "num_gt", "num_tested", "accuracy", "precision", "recall"]:
        np.testing.assert_array_equal(mine[col].to_numpy(), ref.counts.join(ref.performance)[col].to_numpy())
    assert mine["tested_unit"].tolist() == list(ref.counts["tested_unit"])
    assert mine.loc[mine["well_detected"]].index.tolist() == [
        g for g, t in ref.matching.items() if t in ref.well_detected_units]
    # string tested ids survive
    assert set(u.loc[u["recording"] == "rec2", "tested_unit"].dropna()) <= {f"u{i}" for i in range(7)}


def test_snr_columns():
    cases = make_cases()
    u = run_study(cases).units
    good1 = u[(u["recording"] == "rec1") & (u["sorter"] == "good")]
    expected = np.abs(cases[0].templates.values).max(axis=(1, 2)) / 2.0
    np.testing.assert_allclose(good1["snr"], expected)
    np.testing.assert_allclose(good1["amplitude_uV"], expected * 2.0)
    bad1 = u[(u["recording"] == "rec1") & (u["sorter"] == "bad")]
    np.testing.assert_array_equal(bad1["snr"], np.arange(8, dtype=float))
    assert u.loc[u["recording"] == "rec2", "snr"].isna().all()


def test_summary_tables():
    tables = run_study(make_cases())
    c = tables.cases.set_index(["recording", "sorter"])
    assert c.loc[("rec1", "good"), "num_gt"] == 8
    assert c.loc[("rec1", "bad"), "num_well_detected"] == 0
    s = tables.sorters
    assert s.loc["good", "num_cases"] == 2 and s.loc["bad", "num_cases"] == 1
    assert s.loc["good", "num_gt"] == 14
    u = tables.units
    good = u[u["sorter"] == "good"]
    assert s.loc["good", "accuracy_averaged"] == pytest.approx(good["accuracy"].mean())
    tp, fn, fp = good["tp"].sum(), good["fn"].sum(), good["fp"].sum()
    assert s.loc["good", "accuracy_pooled"] == pytest.approx(tp / (tp + fn + fp))
    assert s.loc["good", "recall_pooled"] == pytest.approx(tp / (tp + fn))
    r = tables.recordings
    assert r.loc["rec1", "num_cases"] == 2 and r.loc["rec2", "num_cases"] == 1
    assert r.loc["rec1", "num_well_detected"] == c.loc[("rec1", "good"), "num_well_detected"]


def test_save_and_load_roundtrip(tmp_path):
    tables = run_study(make_cases())
    paths = save_study_tables(tables, tmp_path / "study")
    assert sorted(p.name for p in paths.values()) == ["cases.csv", "recordings.csv", "sorters.csv", "units.csv"]
    back = load_study_tables(tmp_path / "study")
    u0, u1 = tables.units, back.units
    assert u1["tested_unit"].tolist() == u0["tested_unit"].tolist()  # None and int/str ids restored
    assert u1["gt_unit"].tolist() == u0["gt_unit"].tolist()
    pd.testing.assert_frame_equal(u1.drop(columns=["tested_unit", "gt_unit"]),
                                  u0.drop(columns=["tested_unit", "gt_unit"]), check_dtype=False)
    pd.testing.assert_frame_equal(back.sorters, tables.sorters, check_dtype=False)


def test_snr_from_templates():
    data = np.zeros((2, 10, 3))
    data[0, 4, 2] = -80.0
    data[1, 5, 0] = 30.0
    data[1, 6, 1] = -20.0
    t = templates_from_array(data, sampling_frequency=FS, nbefore=4, unit_ids=[3, 9])
    out = snr_from_templates(t, [10.0, 5.0, 4.0])
    assert out.loc[3].tolist() == [80.0, "2", 20.0]
    assert out.loc[9].tolist() == [30.0, "0", 3.0]
    assert snr_from_templates(t, None)["snr"].isna().all()
    with pytest.raises(ValueError, match="one value per template channel"):
        snr_from_templates(t, [1.0, 2.0])


def test_bad_cases():
    cases = make_cases()
    with pytest.raises(ValueError, match="at least one case"):
        run_study([])
    with pytest.raises(ValueError, match="repeated"):
        run_study([cases[0], cases[0]])
    with pytest.raises(ValueError, match="unknown study case keys"):
        run_study([{"recording": "r", "sorter": "s", "gt": None}])
    with pytest.raises(ValueError, match="needs recording"):
        run_study([{"recording": "r"}])
    with pytest.raises(FileNotFoundError, match="save_study_tables"):
        load_study_tables("/nonexistent/folder")
