"""`snakemake bench` helpers: command lines checked against the scripts that exist; the summary."""

import json
import shlex
from pathlib import Path

import pytest

from spkfn.workflow.bench import available_benchmarks, bench_command, write_summary
from spkfn.workflow.config import ConfigError, validate_config

REPO = Path(__file__).resolve().parents[2]


def test_default_benchmarks_exist_and_accept_json():
    cfg = validate_config({})
    names = available_benchmarks(REPO / "benchmarks")
    assert set(cfg["bench"]["scripts"]) <= set(names)
    for name in cfg["bench"]["scripts"]:
        script = (REPO / "benchmarks" / f"bench_{name}.py").read_text()
        assert '"--json"' in script, f"bench_{name}.py must accept --json"


def test_bench_command(tmp_path):
    (tmp_path / "bench_alpha.py").write_text("")
    cmd = shlex.split(bench_command("alpha", ["--n", 3], python="py", bench_dir=tmp_path, json_path="r/a.json"))
    assert cmd == ["py", str(tmp_path / "bench_alpha.py"), "--n", "3", "--json", "r/a.json"]
    with pytest.raises(ConfigError, match=r"no benchmark 'beta'.*available: \['alpha'\]"):
        bench_command("beta", [], python="py", bench_dir=tmp_path, json_path="x.json")
    with pytest.raises(ConfigError, match="remove '--json'"):
        bench_command("alpha", ["--json", "elsewhere.json"], python="py", bench_dir=tmp_path, json_path="x.json")


def test_bench_config_is_validated():
    with pytest.raises(ConfigError, match=r"bench\.scripts\.alpha"):
        validate_config({"bench": {"scripts": {"alpha": "--quick"}}})
    with pytest.raises(ConfigError, match=r"bench\.referenc"):
        validate_config({"bench": {"referenc": True}})


def test_summary_holds_every_run_and_rejects_broken_json(tmp_path):
    runs = {}
    for name, ratio in (("alpha", 3.5), ("beta", 2.0)):
        (tmp_path / f"{name}.txt").write_text(f"{name}: spkfn {ratio}x faster")
        (tmp_path / f"{name}.json").write_text(json.dumps({"ratio": ratio}))
        runs[name] = {"text": tmp_path / f"{name}.txt", "json": tmp_path / f"{name}.json"}
    text = write_summary(runs, tmp_path / "summary.md", config={"alpha": ["--n", "3"]}).read_text()
    assert text.index("## alpha") < text.index("## beta")
    assert "alpha: spkfn 3.5x faster" in text and "beta: spkfn 2.0x faster" in text
    assert "Arguments: `--n 3`" in text
    (tmp_path / "beta.json").write_text("{not json")
    with pytest.raises(json.JSONDecodeError):
        write_summary(runs, tmp_path / "summary2.md")
    assert not (tmp_path / "summary2.md").exists()
