import json

import dask.array as da
import numpy as np
import pytest

from spkfn.io import (
    from_array,
    read_binary,
    read_binary_folder,
    set_probe,
    tetrode_probe,
    write_binary,
)
from spkfn.io.binary import sidecar_path


def test_read_binary_time_and_channel_major(tmp_path):
    x = np.random.default_rng(0).integers(-1000, 1000, size=(500, 3)).astype("int16")
    p = tmp_path / "t.bin"
    x.tofile(p)
    rec = read_binary(p, sampling_frequency=20000.0, num_channels=3, dtype="int16", gain_to_uV=0.195)
    assert isinstance(rec.data, da.Array)  # lazy
    np.testing.assert_array_equal(rec.values, x)
    assert rec.dtype == np.int16
    q = tmp_path / "c.bin"
    x.T.copy().tofile(q)
    rec2 = read_binary(q, sampling_frequency=20000.0, num_channels=3, dtype="int16", time_axis=1)
    np.testing.assert_array_equal(rec2.values, x)


def test_read_binary_offset(tmp_path):
    x = np.arange(40, dtype="float32").reshape(10, 4)
    p = tmp_path / "h.bin"
    p.write_bytes(b"HEADER!!" + x.tobytes())
    rec = read_binary(p, sampling_frequency=1.0, num_channels=4, dtype="float32", offset_bytes=8)
    np.testing.assert_array_equal(rec.values, x)


def test_read_binary_size_not_multiple(tmp_path):
    p = tmp_path / "odd.bin"
    np.zeros(385 * 10, "int16").tofile(p)
    with pytest.raises(ValueError, match=r"not a multiple of num_channels × itemsize = 384 × 2 = 768.*385"):
        read_binary(p, sampling_frequency=30000.0, num_channels=384, dtype="int16")


def test_read_binary_bad_args(tmp_path):
    p = tmp_path / "x.bin"
    np.zeros(8, "int16").tofile(p)
    with pytest.raises(FileNotFoundError):
        read_binary(tmp_path / "nope.bin", sampling_frequency=1.0, num_channels=1, dtype="int16")
    with pytest.raises(ValueError, match="sampling_frequency"):
        read_binary(p, sampling_frequency=-1, num_channels=1, dtype="int16")
    with pytest.raises(ValueError, match="dtype"):
        read_binary(p, sampling_frequency=1.0, num_channels=1, dtype="notatype")
    with pytest.raises(ValueError, match="time_axis"):
        read_binary(p, sampling_frequency=1.0, num_channels=1, dtype="int16", time_axis=2)


def test_write_binary_round_trip_keeps_everything(tmp_path):
    x = np.random.default_rng(1).normal(size=(7001, 4)).astype("float32")
    rec = set_probe(from_array(x, sampling_frequency=30000.0, gain_to_uV=2.0, t_start_s=3.5), tetrode_probe())
    p = write_binary(rec, tmp_path / "r.bin", progress=False)
    back = read_binary_folder(p)
    np.testing.assert_array_equal(back.values, x)
    assert back.dtype == np.float32
    assert back.attrs["probe"] == rec.attrs["probe"]
    for c in ("x", "y", "group", "gain_to_uV", "offset_to_uV"):
        np.testing.assert_array_equal(back[c].values, rec[c].values)
    assert back.time.values[0] == 3.5
    assert back.channel.values.tolist() == rec.channel.values.tolist()


def test_write_binary_int_cast_rounds_and_clips(tmp_path):
    x = np.array([[0.4, 0.6], [-0.6, 40000.0], [-40000.0, 1.5]], dtype="float32")
    rec = from_array(x, sampling_frequency=1.0)
    back = read_binary_folder(write_binary(rec, tmp_path / "i.bin", dtype="int16", progress=False))
    assert back.values.tolist() == [[0, 1], [-1, 32767], [-32768, 2]]


def test_write_binary_streams_dask_chunks(tmp_path):
    # A lazily generated recording far larger than one chunk is written chunk by chunk.
    x = da.random.default_rng(3).normal(size=(200_000, 8), chunks=(10_000, 8)).astype("float32")
    rec = from_array(x, sampling_frequency=30000.0)
    back = read_binary_folder(write_binary(rec, tmp_path / "big.bin", progress=False, n_jobs=2))
    np.testing.assert_array_equal(back.values, x.compute())


def test_interrupted_write_leaves_nothing_trusted(tmp_path):
    def boom(block):
        raise RuntimeError("disk on fire")

    x = da.zeros((1000, 2), chunks=(100, 2), dtype="float32").map_blocks(boom, dtype="float32")
    rec = from_array(x, sampling_frequency=1.0)
    target = tmp_path / "r.bin"
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_binary(rec, target, progress=False)
    assert not target.exists()
    assert not sidecar_path(target).exists()
    assert list(tmp_path.iterdir()) == []  # temporary file removed too


def test_missing_sidecar_is_refused(tmp_path):
    p = tmp_path / "r.bin"
    np.zeros(10, "int16").tofile(p)
    with pytest.raises(FileNotFoundError, match="sidecar"):
        read_binary_folder(p)


def test_truncated_file_detected(tmp_path):
    rec = from_array(np.zeros((100, 2), "int16"), sampling_frequency=1.0)
    p = write_binary(rec, tmp_path / "r.bin", progress=False)
    p.write_bytes(p.read_bytes()[:-4])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_binary_folder(p)
    meta = json.loads(sidecar_path(p).read_text())
    assert meta["num_samples"] == 100


def test_binary_copy_keeps_the_preprocessing_steps(tmp_path):
    from spkfn.io import from_array, read_binary_folder, write_binary
    from spkfn.preprocessing import apply_pipeline

    rec = from_array(np.random.default_rng(0).normal(size=(3000, 4)).astype("float32"), sampling_frequency=30000.0)
    pre = apply_pipeline(rec, [{"bandpass_filter": {"freq_min_hz": 300.0}}])
    back = read_binary_folder(write_binary(pre, tmp_path / "p.bin", progress=False))
    assert back.attrs["pipeline"] == pre.attrs["pipeline"]
    assert "pipeline" not in read_binary_folder(write_binary(rec, tmp_path / "r.bin", progress=False)).attrs
