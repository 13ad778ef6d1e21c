import pytest
import yaml

from spkfn.workflow import rules as R
from spkfn.workflow.config import ConfigError


@pytest.fixture
def setup(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "raw.bin").write_bytes(b"\0" * 16)
    (tmp_path / "config" / "sessions.tsv").write_text(
        "session\tformat\tpath\tprobe\toptions\n"
        "gt\tgenerated\t\t\t{\"num_units\": 3, \"seed\": 7}\n"
        "real\tbinary\traw.bin\t\t{\"sampling_frequency\": 1000, \"num_channels\": 2, \"dtype\": \"int16\"}\n")
    return R.prepare({"preprocess": {"format": "binary"}}, workdir=tmp_path)


def test_generate_params_merge_row_options(setup):
    cfg, sessions = setup
    p = R.stage_params(cfg, sessions, "gt", "generate", n_jobs=2)
    assert p["generator"]["num_units"] == 3
    assert p["generator"]["num_channels"] == 32  # config default
    assert p["seed"] == 7
    assert p["n_jobs"] == 2
    assert p["output_dir"] == "results/gt/generate"


def test_read_params_for_generated_and_real(setup):
    cfg, sessions = setup
    gt = R.stage_params(cfg, sessions, "gt", "read")
    assert gt["source_format"] == "zarr" and gt["source_path"] == "results/gt/generate/recording.zarr"
    real = R.stage_params(cfg, sessions, "real", "read")
    assert real["source_format"] == "binary" and real["options"]["num_channels"] == 2


def test_summary_params_follow_ground_truth_and_format(setup):
    cfg, sessions = setup
    gt = R.stage_params(cfg, sessions, "gt", "summary")
    assert gt["gt_sorting_path"].endswith("gt/generate/gt_sorting.zarr")
    assert gt["preprocessed_path"] == "results/gt/preprocess/recording.bin"
    assert R.stage_params(cfg, sessions, "real", "summary")["gt_sorting_path"] == ""


def test_bad_generator_option_in_sheet(tmp_path):
    (tmp_path / "s.tsv").write_text("session\tformat\toptions\nx\tgenerated\t{\"num_unitz\": 3}\n")
    cfg, sessions = R.prepare({"sessions": "s.tsv"}, workdir=tmp_path)
    with pytest.raises(ConfigError, match=r"unknown generator option\(s\) \['num_unitz'\]"):
        R.stage_params(cfg, sessions, "x", "generate")
    (tmp_path / "s.tsv").write_text("session\tformat\toptions\nx\tgenerated\t{\"num_units\": -3}\n")
    cfg, sessions = R.prepare({"sessions": "s.tsv"}, workdir=tmp_path)
    with pytest.raises(ConfigError, match="generate.num_units"):
        R.stage_params(cfg, sessions, "x", "generate")


def test_params_yaml_keeps_types():
    text = R.params_yaml({"session": "007", "steps": [{"a": {"x": 1.5}}], "flag": True, "none": None})
    assert "\n" not in text
    assert yaml.safe_load(text) == {"session": "007", "steps": [{"a": {"x": 1.5}}], "flag": True, "none": None}


def test_generator_kwargs_probes():
    kw = R.generator_kwargs({"num_channels": 8, "probe": "multi_shank", "seed": 1, "num_units": 2})
    assert kw["probe"].get_contact_count() == 8 and "seed" not in kw
    with pytest.raises(ConfigError, match="tetrode"):
        R.generator_kwargs({"num_channels": 8, "probe": "tetrode"})
