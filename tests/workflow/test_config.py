from pathlib import Path

import pytest
import yaml

from spkfn.workflow.config import ConfigError, load_config, load_sessions, validate_config

REPO = Path(__file__).resolve().parents[2]


def test_shipped_config_is_valid_and_complete():
    cfg = load_config(REPO / "config" / "config.yaml")
    assert cfg["generate"]["num_units"] == 20
    assert [next(iter(s)) for s in cfg["preprocess"]["steps"]] == ["bandpass_filter", "common_reference"]
    assert cfg["results_dir"] == "results"


def test_defaults_filled_from_schema():
    cfg = validate_config({})
    assert cfg["generate"]["duration_s"] == 60.0
    assert cfg["preprocess"]["format"] == "zarr"
    assert cfg["sessions"] == "config/sessions.tsv"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"preproces": {}}, r"unknown config key 'preproces'\. Did you mean 'preprocess'\?"),
        ({"generate": {"num_unit": 3}}, r"unknown config key 'generate\.num_unit'\. Did you mean 'num_units'\?"),
        ({"generate": {"num_units": 0}}, r"'generate\.num_units' must be >= 1; got 0"),
        ({"generate": {"duration_s": -1}}, r"'generate\.duration_s' must be > 0"),
        ({"generate": {"num_units": "many"}}, r"'generate\.num_units' must be of type integer"),
        ({"preprocess": {"dtype": "float64"}}, r"'preprocess\.dtype' is 'float64'; it must be one of \['float32', 'int16'\]"),
        ({"preprocess": {"steps": [{"a": {}, "b": {}}]}}, r"preprocess\.steps\[0\]"),
        ({"generate": {"firing_rate_hz": [1.0]}}, r"generate\.firing_rate_hz"),
    ],
)
def test_bad_config_names_the_key(config, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(config)


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("generate: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump({"generate": {"seed": 4}}))
    assert load_config(ok)["generate"]["seed"] == 4


def write_sheet(tmp_path, text):
    p = tmp_path / "sessions.tsv"
    p.write_text(text)
    return p


def test_sessions_sheet(tmp_path):
    (tmp_path / "data.bin").write_bytes(b"\0" * 8)
    p = write_sheet(tmp_path, "session\tformat\tpath\tprobe\toptions\n"
                              "gt\tgenerated\t\t\t{\"num_units\": 5}\n"
                              "real\tbinary\tdata.bin\t\t{\"sampling_frequency\": 30000, \"num_channels\": 4, \"dtype\": \"int16\"}\n")
    df = load_sessions(p, base_dir=tmp_path)
    assert df.index.tolist() == ["gt", "real"]
    assert df.loc["gt", "options"] == {"num_units": 5}
    assert df.loc["real", "options"]["num_channels"] == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("session\tformat\nx\tgenerated\nx\tgenerated\n", "duplicated session ids"),
        ("session\tformat\tpath\nx\tbinary\tmissing.bin\n", r"session 'x': data path .*missing\.bin' does not exist"),
        ("session\tformat\nx\tspikeglxx\n", r"unknown format 'spikeglxx'\. Did you mean 'spikeglx'\?"),
        ("session\tformat\toptions\nx\tgenerated\t{bad json\n", "'options' must be a JSON object"),
        ("session\tformat\tcolour\nx\tgenerated\tred\n", r"unknown column\(s\) \['colour'\]"),
        ("format\ngenerated\n", r"missing column\(s\) \['session'\]"),
        ("session\tformat\n", "has no sessions"),
        ("session\tformat\nbad/id\tgenerated\n", "session id 'bad/id'"),
        ("session\tformat\tpath\nx\tbinary\t\n", "needs a 'path'"),
        ("session\tformat\tprobe\nx\tgenerated\tnone.json\n", "probe file"),
    ],
)
def test_bad_sessions_sheet(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_sessions(write_sheet(tmp_path, text), base_dir=tmp_path)
