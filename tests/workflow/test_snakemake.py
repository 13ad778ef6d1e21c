"""Run the real Snakefile on a tiny config in a temporary folder and check what it wrote."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

TINY = {
    # 10 s: the native sorter finds 3 of the 4 units (2 well detected) here; 3 s is too short to cluster
    "generate": {"duration_s": 10.0, "num_channels": 8, "num_units": 4, "seed": 3},
    "preprocess": {"steps": [{"bandpass_filter": {"freq_min_hz": 300.0, "freq_max_hz": 6000.0}},
                             {"common_reference": {"reference": "global", "operator": "median"}}]},
}


def snakemake(workdir: Path, *args, config=None):
    cfgdir = workdir / "config"
    cfgdir.mkdir(exist_ok=True)
    (cfgdir / "config.yaml").write_text(yaml.safe_dump(config if config is not None else TINY))
    if not (cfgdir / "sessions.tsv").exists():
        (cfgdir / "sessions.tsv").write_text("session\tformat\tpath\tprobe\toptions\ntiny\tgenerated\t\t\t\n")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(cfgdir / "config.yaml"), "--cores", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    wd = tmp_path_factory.mktemp("wf")
    res = snakemake(wd)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    return wd


def test_dry_run_lists_the_jobs(tmp_path):
    res = snakemake(tmp_path, "-n")
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    for rule in ("generate", "read", "preprocess", "sort", "compare", "summary"):
        assert rule in out


def test_pipeline_outputs_and_provenance(run):
    import spkfn.io
    from spkfn.io.read import open_recording

    res = run / "results" / "tiny"
    for stage in ("generate", "read", "preprocess", "sort/spkfn", "compare", "summary"):
        name = stage.split("/")[0]
        assert (res / stage / f"{name}.ipynb").exists(), stage
        prov = json.loads((res / stage / "provenance.json").read_text())
        assert prov["stage"] == name
        assert prov["versions"]["numpy"] == np.__version__
        assert prov["wall_time_s"] > 0 and prov["peak_memory_mb"] > 0
        assert all(o.get("sha256") for o in prov["outputs"])
    gen = json.loads((res / "generate" / "provenance.json").read_text())
    assert gen["seed"] == 3
    assert gen["params_used"]["generator"]["num_units"] == 4
    gt = spkfn.io.read_zarr(res / "generate" / "gt_sorting.zarr")
    assert gt.sizes["unit"] == 4
    raw = open_recording(res / "read" / "recording.json")
    assert raw.sizes["channel"] == 8 and raw.sizes["time"] == 10 * 30000
    pre = spkfn.io.read_zarr(res / "preprocess" / "recording.zarr")
    assert pre.shape == raw.shape and pre.dtype == np.float32
    for c in ("x", "y", "group", "gain_to_uV"):  # geometry survives read -> preprocess -> zarr
        np.testing.assert_array_equal(pre.coords[c].values, raw.coords[c].values)
    assert [s["step"] for s in pre.attrs["preprocessing"]] == ["bandpass_filter", "common_reference"]
    used = json.loads((res / "preprocess" / "provenance.json").read_text())["params_used"]["steps"]
    assert used[0]["step"] == "bandpass_filter" and used[0]["params"]["order"] == 5  # defaults filled in
    # Median reference: every sample's median across channels is ~0.
    x = pre.values[1000:2000]
    assert np.abs(np.median(x, axis=1)).max() < 1e-3
    assert (res / "summary" / "summary.png").stat().st_size > 10_000


def test_sort_and_compare_stages(run):
    import pandas as pd

    import spkfn.io

    res = run / "results" / "tiny"
    sorting = spkfn.io.read_zarr(res / "sort" / "spkfn" / "sorting.zarr")
    units = pd.read_csv(res / "sort" / "spkfn" / "units.csv")
    assert len(units) == sorting.sizes["unit"] >= 1
    prov = json.loads((res / "sort" / "spkfn" / "provenance.json").read_text())
    assert prov["seed"] == 0
    used = prov["params_used"]["params"]
    assert used["detect_threshold"] > 0 and len(used) > 20  # every parameter, defaults filled in
    # the compare stage scored the sorter against the planted units
    sorters = pd.read_csv(res / "compare" / "sorters.csv")
    row = sorters.set_index("sorter").loc["spkfn"]
    assert row["num_gt"] == 4 and row["num_tested"] == sorting.sizes["unit"]
    assert 1 <= row["num_well_detected"] <= 4
    per_unit = pd.read_csv(res / "compare" / "units.csv")
    assert len(per_unit) == 4 and per_unit["accuracy"].between(0, 1).all()


def test_second_run_has_nothing_to_do(run):
    res = snakemake(run, "-n")
    assert res.returncode == 0
    assert "Nothing to be done" in res.stdout + res.stderr


def test_failing_cell_keeps_notebook_and_reports(tmp_path):
    cfg = {**TINY, "preprocess": {"steps": [{"bandpass_filter": {"freq_min_hz": 300.0, "freq_max_hz": 20000.0}}]}}
    res = snakemake(tmp_path, config=cfg)
    assert res.returncode != 0
    nb = tmp_path / "results" / "tiny" / "preprocess" / "preprocess.ipynb"
    assert nb.exists()
    text = nb.read_text()
    assert "freq_max_hz" in text and "Nyquist" in text  # the traceback names the parameter
    assert not (tmp_path / "results" / "tiny" / "preprocess" / "recording.zarr").exists()
    assert not (tmp_path / "results" / "tiny" / "preprocess" / "provenance.json").exists()
    assert "Error in rule preprocess" in res.stdout + res.stderr


def test_bad_config_fails_before_running(tmp_path):
    res = snakemake(tmp_path, "-n", config={"generate": {"num_unit": 3}})
    assert res.returncode != 0
    assert "unknown config key 'generate.num_unit'" in res.stdout + res.stderr
    assert not (tmp_path / "results").exists()


def test_missing_session_file_is_reported(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "sessions.tsv").write_text("session\tformat\tpath\tprobe\toptions\nrec1\tbinary\tdata/rec1.bin\t\t\n")
    res = snakemake(tmp_path, "-n")
    assert res.returncode != 0
    assert "session 'rec1': data path" in res.stdout + res.stderr
