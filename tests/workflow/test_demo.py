"""The demo session notebooks fall back to when run by hand (no paths given)."""

import numpy as np
import pytest

import spkfn.comparison as cmp
import spkfn.io
from spkfn.workflow import demo


def test_demo_session_sorts_its_detectable_units(tmp_path, monkeypatch):
    """upto="sort": the native sorter's result on the demo recording finds every clearly
    detectable ground-truth unit (SNR >= 7) and invents none."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR: a demo built only for this test
    d = demo.demo_session(upto="sort")
    assert all(str(tmp_path) in p for p in d.values())
    gt, sorting = spkfn.io.read_zarr(d["gt_sorting"]), spkfn.io.read_zarr(d["sorting"])
    res = cmp.compare_to_ground_truth(gt, sorting, exhaustive_gt=True)
    clear = gt.unit.values[gt.snr.values >= 7]
    assert clear.size >= 4
    assert np.all(res.performance.loc[clear, "accuracy"].to_numpy() >= 0.8)
    assert res.false_positive_units == []
    # built once: a second call reuses the files
    mtime = (tmp_path / d["sorting"]).stat().st_mtime_ns
    assert demo.demo_session(upto="sort") == d
    assert (tmp_path / d["sorting"]).stat().st_mtime_ns == mtime


def test_demo_session_rejects_unknown_stage():
    with pytest.raises(ValueError, match="upto must be"):
        demo.demo_session(upto="postprocess")
