import json

import pytest

from spkfn.core.atomic import atomic_path, write_json_atomic


def test_atomic_file_and_dir(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("a")
        assert not target.exists()  # invisible until complete
    assert target.read_text() == "a"
    d = tmp_path / "store"
    with atomic_path(d) as tmp:
        tmp.mkdir()
        (tmp / "x").write_text("1")
    assert (d / "x").read_text() == "1"


def test_failure_keeps_previous_and_cleans_up(tmp_path):
    target = tmp_path / "out.json"
    write_json_atomic({"v": 1}, target)
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("stop")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_nothing_written_is_an_error(tmp_path):
    with pytest.raises(RuntimeError, match="nothing was written"):
        with atomic_path(tmp_path / "x"):
            pass
