import dask.array as da
import numpy as np
import pytest

from spkfn.io import (
    from_array,
    linear_probe,
    read_zarr,
    set_probe,
    sorting_from_arrays,
    templates_from_array,
    write_zarr,
)


def test_recording_round_trip(tmp_path):
    x = np.random.default_rng(0).integers(-500, 500, size=(5000, 8)).astype("int16")
    rec = set_probe(from_array(x, sampling_frequency=25000.0, gain_to_uV=0.5, t_start_s=12.0,
                               channel_ids=[f"ch{i}" for i in range(8)]), linear_probe(num_channels=8))
    rec.attrs["source"] = {"format": "test", "path": "/x", "stream": ""}
    back = read_zarr(write_zarr(rec, tmp_path / "r.zarr", progress=False))
    assert isinstance(back.data, da.Array)  # lazy on read
    np.testing.assert_array_equal(back.values, x)
    assert back.dtype == np.int16
    assert back.channel.values.tolist() == [f"ch{i}" for i in range(8)]
    assert back.time.values[0] == 12.0 and np.isclose(back.time.values[-1], 12.0 + 4999 / 25000)
    assert back.attrs["probe"] == rec.attrs["probe"]
    assert back.attrs["source"] == rec.attrs["source"]
    assert back.attrs["sampling_frequency"] == 25000.0
    for c in ("x", "y", "group", "gain_to_uV", "offset_to_uV"):
        np.testing.assert_array_equal(back[c].values, rec[c].values)


def test_sorting_round_trip_with_string_ids(tmp_path):
    s = sorting_from_arrays([5, 1, 9], ["u2", "u1", "u2"], sampling_frequency=30000.0, unit_ids=["u1", "u2", "u3"],
                            num_samples=100)
    s["snr"] = ("unit", np.array([3.0, 5.0, 0.0]))
    back = read_zarr(write_zarr(s, tmp_path / "s.zarr"))
    assert back.unit.values.tolist() == ["u1", "u2", "u3"]
    assert back.sample_index.values.tolist() == [1, 5, 9]
    assert back.unit_index.dtype == np.int64
    assert back.snr.values.tolist() == [3.0, 5.0, 0.0]
    assert back.attrs["num_samples"] == 100


def test_templates_round_trip(tmp_path):
    t = templates_from_array(np.random.default_rng(0).normal(size=(3, 40, 4)).astype("float32"),
                             sampling_frequency=30000.0, nbefore=10, sparsity=np.eye(3, 4, dtype=bool),
                             channel_locations=np.column_stack([np.zeros(4), np.arange(4.0)]))
    back = read_zarr(write_zarr(t, tmp_path / "t.zarr"))
    np.testing.assert_array_equal(back.values, t.values)
    assert back.attrs["nbefore"] == 10
    np.testing.assert_array_equal(back.sparsity.values, t.sparsity.values)
    assert back.sample.values[0] == -10


def test_overwrite_is_atomic_and_failure_keeps_old(tmp_path):
    p = tmp_path / "r.zarr"
    rec = from_array(np.ones((100, 2), "float32"), sampling_frequency=1.0)
    write_zarr(rec, p, progress=False)

    def boom(b):
        raise OSError("interrupted")

    bad = from_array(da.zeros((100, 2), chunks=(10, 2), dtype="float32").map_blocks(boom, dtype="float32"),
                     sampling_frequency=1.0)
    with pytest.raises(OSError, match="interrupted"):
        write_zarr(bad, p, progress=False)
    np.testing.assert_array_equal(read_zarr(p).values, 1.0)  # the complete old store is intact
    assert sorted(q.name for q in tmp_path.iterdir()) == ["r.zarr"]


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_zarr(tmp_path / "none.zarr")
    (tmp_path / "junk.zarr").mkdir()
    with pytest.raises(ValueError):
        read_zarr(tmp_path / "junk.zarr")


def test_store_marked_by_snakemake_reads_without_warning(tmp_path):
    # Snakemake writes '.snakemake_timestamp' into directory() outputs; reading must stay quiet
    import warnings

    s = sorting_from_arrays([5, 1, 9], [0, 1, 0], sampling_frequency=30000.0)
    path = write_zarr(s, tmp_path / "s.zarr")
    (path / ".snakemake_timestamp").write_text("")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = read_zarr(path)
    assert back.sample_index.values.tolist() == [1, 5, 9]
def test_recording_written_in_batches_of_chunks(tmp_path):
    """More chunks than one store batch: the traces go to the zarr array in several scheduler
    calls (bounded memory for long recordings); same values, same coords and attrs."""
    from spkfn.core.chunks import STORE_BATCH_CHUNKS

    n = STORE_BATCH_CHUNKS * 3 * 10 + 7
    x = np.random.default_rng(3).normal(size=(n, 3)).astype("float32")
    rec = from_array(da.from_array(x, chunks=(10, 3)), sampling_frequency=1000.0, t_start_s=2.5)
    back = read_zarr(write_zarr(rec, tmp_path / "r.zarr", progress=False, n_jobs=2))
    assert np.array_equal(back.values, x)
    assert float(back.time.values[0]) == 2.5 and back.attrs["sampling_frequency"] == 1000.0
    assert back.data.chunks[0][0] == 10


def test_recording_read_from_zarr_rewrites_its_geometry(tmp_path):
    """A recording read back from zarr (lazy store) written again keeps its channel coords: the
    preprocess stage writes what the read stage opened from a zarr store (regression: x, y, gains
    were left as NaN fill values because they were lazy when the metadata was written)."""
    x = np.random.default_rng(1).normal(size=(3000, 6)).astype("float32")
    rec = set_probe(from_array(x, sampling_frequency=20000.0, gain_to_uV=0.25), linear_probe(num_channels=6))
    first = read_zarr(write_zarr(rec, tmp_path / "a.zarr", progress=False))
    second = read_zarr(write_zarr(first * 2, tmp_path / "b.zarr", progress=False, n_jobs=2))
    for c in ("x", "y", "group", "gain_to_uV", "offset_to_uV"):
        np.testing.assert_array_equal(second.coords[c].values, rec.coords[c].values)
        assert not isinstance(second.coords[c].data, da.Array)  # channel coords are loaded on read
    np.testing.assert_array_equal(second.values, 2 * x)


def test_recording_with_lazy_channel_coords_is_written_with_them(tmp_path):
    """Channel coords held as dask arrays (any lazy source, not only read_zarr) are stored, not
    left as fill values by the deferred metadata write."""
    x = np.random.default_rng(2).normal(size=(2000, 4)).astype("float32")
    rec = set_probe(from_array(x, sampling_frequency=20000.0), linear_probe(num_channels=4))
    lazy = rec.assign_coords({c: ("channel", da.from_array(rec.coords[c].values)) for c in ("x", "y", "gain_to_uV")})
    assert isinstance(lazy.coords["y"].data, da.Array)
    back = read_zarr(write_zarr(lazy, tmp_path / "r.zarr", progress=False))
    for c in ("x", "y", "gain_to_uV"):
        np.testing.assert_array_equal(back.coords[c].values, rec.coords[c].values)
