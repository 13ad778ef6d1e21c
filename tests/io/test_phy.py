"""spkfn.io.read_kilosort on real Kilosort/phy folders (../shared/data) and on made-up ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from spkfn.io import check_sorting, read_kilosort, read_phy_params, spike_unit_ids, unit_counts

from ..conftest import shared_data_path as _folder


def _check_against_numpy(s, folder: Path, fs: float):
    times = np.load(folder / "spike_times.npy").reshape(-1).astype(np.int64)
    clusters = np.load(folder / "spike_clusters.npy").reshape(-1).astype(np.int64)
    check_sorting(s)
    assert s.attrs["sampling_frequency"] == fs
    assert s.sizes["spike"] == times.size
    assert np.array_equal(np.sort(s.unit.values), np.unique(clusters))
    # the same multiset of (time, cluster) pairs
    got = np.lexsort((spike_unit_ids(s), s.sample_index.values))
    want = np.lexsort((clusters, times))
    assert np.array_equal(s.sample_index.values[got], times[want])
    assert np.array_equal(spike_unit_ids(s)[got], clusters[want])
    assert np.array_equal(unit_counts(s), np.bincount(clusters)[s.unit.values])


def test_kilosort4_mayolab_output():
    folder = _folder("kilosort4_mayolab_output")
    s = read_kilosort(folder)
    _check_against_numpy(s, folder, 30000.0)
    assert s.sizes == {"spike": 290360, "unit": 403}
    assert s.sample_index.values.max() / 30000.0 == pytest.approx(90.0, abs=0.01)
    amp = np.load(folder / "amplitudes.npy")
    order = np.lexsort((np.load(folder / "spike_clusters.npy"), np.load(folder / "spike_times.npy")))
    assert np.array_equal(s.amplitude.values, amp[order])
    labels = dict(zip(s.unit.values.tolist(), s.KSLabel.values.tolist(), strict=True))
    import pandas as pd

    tsv = pd.read_csv(folder / "cluster_KSLabel.tsv", sep="\t")
    assert all(labels[c] == lab for c, lab in zip(tsv.cluster_id, tsv.KSLabel, strict=True))
    assert s.ContamPct.dtype.kind == "f" and s.Amplitude.dtype.kind == "f"
    assert s.attrs["source"]["format"] == "kilosort"


def test_phy_template_kwikteam_sparse_cluster_group():
    folder = _folder("phy_template_kwikteam")
    s = read_kilosort(folder)
    _check_against_numpy(s, folder, 25000.0)
    assert s.sizes["spike"] == 314
    # cluster_group.tsv labels only cluster 4: the others get "".
    group = dict(zip(s.unit.values.tolist(), s.group.values.tolist(), strict=True))
    assert group[4] == "good" and sum(v != "" for v in group.values()) == 1
    t = read_kilosort(folder, unit_source="templates")
    assert t.sizes["spike"] == 314 and "group" not in t  # cluster tables do not apply to templates


def test_bombcell_toy_needs_sampling_frequency():
    folder = _folder("kilosort_bombcell_toy_np1")
    with pytest.raises(ValueError, match=r"no params.py with sample_rate. Pass sampling_frequency="):
        read_kilosort(folder)
    s = read_kilosort(folder, sampling_frequency=30000.0)
    _check_against_numpy(s, folder, 30000.0)
    assert s.sizes == {"spike": 94565, "unit": 15}
    assert s.amplitude.dtype == np.float32


def test_goldlab_spike_times_only():
    folder = _folder("phy_goldlab_kilosort_spiketimes_only")
    s = read_kilosort(folder)  # times + clusters are all a sorting needs
    _check_against_numpy(s, folder, 40000.0)
    assert s.sizes == {"spike": 510863, "unit": 8} and "amplitude" not in s
    assert s.KSLabel.values.tolist()[:2] == ["mua", "mua"]
    with pytest.raises(FileNotFoundError, match=r"amplitudes.npy is missing \(amplitudes=True needs it\).*Files present"):
        read_kilosort(folder, amplitudes=True)
    with pytest.raises(FileNotFoundError, match=r"spike_templates.npy is missing \(unit_source='templates'"):
        read_kilosort(folder, unit_source="templates")
    with pytest.raises(ValueError, match="disagrees with sample_rate=40000.0"):
        read_kilosort(folder, sampling_frequency=30000.0)


def test_missing_files_and_inconsistencies(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_kilosort(tmp_path / "nope")
    (tmp_path / "params.py").write_text("sample_rate = 30000.\n")
    with pytest.raises(FileNotFoundError, match=r"spike_times.npy is missing \(spike times are required\)"):
        read_kilosort(tmp_path)
    np.save(tmp_path / "spike_times.npy", np.array([1, 2, 3], dtype=np.uint64))
    with pytest.raises(FileNotFoundError, match="neither spike_clusters.npy nor spike_templates.npy"):
        read_kilosort(tmp_path)
    np.save(tmp_path / "spike_templates.npy", np.array([0, 1], dtype=np.uint32))
    with pytest.raises(ValueError, match="spike_times.npy has 3 spikes but spike_templates.npy has 2"):
        read_kilosort(tmp_path)
    np.save(tmp_path / "spike_templates.npy", np.array([0, 1, 1], dtype=np.uint32))
    s = read_kilosort(tmp_path, num_samples=10)
    assert s.attrs["source"]["stream"] == "templates" and s.attrs["num_samples"] == 10
    with pytest.raises(ValueError, match="sample_index has values >= num_samples"):
        read_kilosort(tmp_path, num_samples=3)
    np.save(tmp_path / "spike_times.npy", np.array([1.0, 2.5, 3.0]))
    with pytest.raises(ValueError, match="must hold integer sample indices"):
        read_kilosort(tmp_path)


def test_params_py_is_not_executed(tmp_path):
    marker = tmp_path / "executed"
    (tmp_path / "params.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('x')\nsample_rate = 20000.\nn = 2 * 3\n"
    )
    assert read_phy_params(tmp_path / "params.py") == {"sample_rate": 20000.0}
    assert not marker.exists()


def test_cluster_info_and_duplicate_columns(tmp_path):
    np.save(tmp_path / "spike_times.npy", np.array([5, 1, 9], dtype=np.int64))
    np.save(tmp_path / "spike_clusters.npy", np.array([4, 2, 4], dtype=np.int32))
    (tmp_path / "cluster_group.tsv").write_text("cluster_id\tgroup\n2\tnoise\n4\tgood\n")
    (tmp_path / "cluster_info.tsv").write_text("cluster_id\tgroup\tfr\tch\n2\tmua\t1.5\t3\n4\tgood\t0.5\t7\n9\tgood\t0\t1\n")
    s = read_kilosort(tmp_path, sampling_frequency=1000.0)
    assert s.unit.values.tolist() == [2, 4]
    assert s.group.values.tolist() == ["noise", "good"]  # the single-column file wins
    assert s.fr.values.tolist() == [1.5, 0.5] and s.ch.values.tolist() == [3, 7]


def test_copy_of_real_folder_without_clusters_uses_templates(tmp_path):
    src = _folder("phy_template_kwikteam")
    dst = tmp_path / "ks"
    shutil.copytree(src, dst)
    (dst / "spike_clusters.npy").unlink()
    s = read_kilosort(dst)
    templates = np.load(src / "spike_templates.npy").reshape(-1)
    assert np.array_equal(np.sort(s.unit.values), np.unique(templates))
