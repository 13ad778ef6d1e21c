"""Binary read/write paths: plain reads per chunk (no lasting memory map), positional writes."""

import dask.array as da
import numpy as np
import pytest

from spkfn.io import from_array, read_binary, read_binary_folder, write_binary
from spkfn.io.binary import _BinaryReader, _BinaryWriter


def test_reader_indexing_matches_numpy(tmp_path):
    x = np.arange(1000 * 5, dtype="int16").reshape(1000, 5)
    p = tmp_path / "x.bin"
    p.write_bytes(np.zeros(8, "uint8").tobytes() + x.tobytes())
    r = _BinaryReader(p, dtype=np.dtype("int16"), shape=(1000, 5), offset_bytes=8, time_axis=0)
    for key in [(slice(0, 1000), slice(None)), (slice(10, 20), slice(1, 3)), (slice(990, 2000),),
                (slice(5, 5), slice(None)), (np.array([3, 1, 700]), slice(None)), (7, slice(None)), (7, 2),
                (slice(0, 100, 7), slice(None)), (slice(None), [4, 0])]:
        assert np.array_equal(r[key], x[key]), key


def test_read_binary_time_axis_1(tmp_path):
    x = np.arange(40, dtype="float32").reshape(4, 10)  # channel-major on disk
    p = tmp_path / "x.bin"
    x.tofile(p)
    rec = read_binary(p, sampling_frequency=1000.0, num_channels=4, dtype="float32", time_axis=1, chunk_size=3)
    assert np.array_equal(rec.values, x.T)
    assert np.array_equal(rec.isel(time=slice(2, 7)).values, x.T[2:7])


def test_truncated_file_is_reported(tmp_path):
    x = np.zeros((100, 2), "int16")
    p = tmp_path / "x.bin"
    x.tofile(p)
    r = _BinaryReader(p, dtype=np.dtype("int16"), shape=(200, 2), offset_bytes=0, time_axis=0)
    with pytest.raises(OSError, match="ended early"):
        r[150:160]


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_write_roundtrip_chunked(tmp_path, n_jobs):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10007, 6)).astype("float32")
    rec = from_array(da.from_array(x, chunks=(999, 6)), sampling_frequency=1000.0)
    p = write_binary(rec, tmp_path / "r.bin", n_jobs=n_jobs, progress=False)
    assert p.stat().st_size == x.nbytes
    back = read_binary_folder(p, chunk_size=1234)
    assert np.array_equal(back.values, x)
    p2 = write_binary(rec, tmp_path / "r16.bin", dtype="int16", progress=False, fsync=True)
    assert np.array_equal(read_binary_folder(p2).values, np.clip(np.rint(x), -32768, 32767).astype("int16"))


def test_overwrite_shorter_file(tmp_path):
    p = tmp_path / "r.bin"
    write_binary(from_array(np.ones((1000, 2), "float32"), sampling_frequency=10.0), p, progress=False)
    write_binary(from_array(np.zeros((10, 2), "float32"), sampling_frequency=10.0), p, progress=False)
    assert p.stat().st_size == 10 * 2 * 4
    assert np.array_equal(read_binary_folder(p).values, np.zeros((10, 2), "float32"))


def test_writer_refuses_partial_rows(tmp_path):
    with _BinaryWriter(tmp_path / "w.bin", dtype=np.dtype("float32"), shape=(10, 4)) as w:
        w[0:2, 0:4] = np.ones((2, 4))
        with pytest.raises(ValueError, match="whole rows"):
            w[2:4, 0:2] = np.ones((2, 2))
    assert np.array_equal(np.fromfile(tmp_path / "w.bin", "float32").reshape(10, 4)[:2], np.ones((2, 4)))


def test_reading_does_not_keep_file_pages_mapped(tmp_path):
    """After computing a chunked read, no mapping of the file remains in the process."""
    p = tmp_path / "big.bin"
    np.zeros((20000, 8), "int16").tofile(p)
    rec = read_binary(p, sampling_frequency=1000.0, num_channels=8, dtype="int16", chunk_size=1000)
    assert float(rec.sum().values) == 0.0
    maps = open("/proc/self/maps").read() if __import__("os").path.exists("/proc/self/maps") else ""
    assert str(p) not in maps


def test_reader_negative_and_boolean_rows(tmp_path):
    x = np.arange(60, dtype="float32").reshape(20, 3)
    p = tmp_path / "x.bin"
    x.tofile(p)
    r = _BinaryReader(p, dtype=np.dtype("float32"), shape=(20, 3), offset_bytes=0, time_axis=0)
    assert np.array_equal(r[-1], x[-1]) and np.array_equal(r[np.array([-2, 0])], x[[-2, 0]])
    mask = np.zeros(20, bool)
    mask[[3, 7]] = True
    assert np.array_equal(r[mask, 1:], x[mask, 1:])
    with pytest.raises(IndexError):
        r[20]


def test_write_in_batches_of_chunks(tmp_path):
    """More chunks than one store batch: written in several scheduler calls, same bytes."""
    from spkfn.core.chunks import STORE_BATCH_CHUNKS
    from spkfn.preprocessing import bandpass_filter

    x = np.random.default_rng(1).normal(size=(STORE_BATCH_CHUNKS * 40 + 17, 3)).astype("float32")
    rec = from_array(da.from_array(x, chunks=(40, 3)), sampling_frequency=30000.0)
    out = bandpass_filter(rec, margin_ms=1.0)  # margins cross batch boundaries
    p = write_binary(out, tmp_path / "b.bin", progress=True, n_jobs=2)
    assert np.array_equal(read_binary_folder(p).values, out.values)


# ------------------------------------------------------------------------------------------------
# direct (O_DIRECT) writes: page-aligned middles through a writer thread, unaligned ends buffered

needs_o_direct = pytest.mark.skipif(not hasattr(__import__("os"), "O_DIRECT"), reason="O_DIRECT is Linux-only")


@needs_o_direct
@pytest.mark.parametrize("n_channels, chunk", [(7, 999), (384, 16384), (3, 4096 // 12)])
def test_direct_write_same_bytes_as_buffered(tmp_path, n_channels, chunk):
    """Unaligned channel counts and chunk edges (7 x 4 B rows), aligned ones (384 x 4 B x 16384),
    and blocks smaller than a page: the direct file is byte for byte the buffered one."""
    n = 3 * chunk + 123
    x = np.random.default_rng(n_channels).normal(size=(n, n_channels)).astype("float32")
    rec = from_array(da.from_array(x, chunks=(chunk, n_channels)), sampling_frequency=1000.0)
    a = write_binary(rec, tmp_path / "direct.bin", direct_io=True, n_jobs=2, progress=False)
    b = write_binary(rec, tmp_path / "buffered.bin", direct_io=False, progress=False)
    assert a.read_bytes() == b.read_bytes() == x.tobytes()
    assert np.array_equal(read_binary_folder(a).values, x)


def test_direct_write_falls_back_when_refused(tmp_path, monkeypatch):
    """A file system without O_DIRECT (the open fails, or the first write says EINVAL): written
    through the page cache instead, same bytes."""
    import errno
    import os

    x = np.random.default_rng(2).normal(size=(5000, 5)).astype("float32")
    rec = from_array(da.from_array(x, chunks=(1000, 5)), sampling_frequency=1000.0)
    real_open, real_pwrite = os.open, os.pwrite
    direct = getattr(os, "O_DIRECT", 0)

    def refusing_open(path, flags, *a):
        if direct and flags & direct:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *a)

    monkeypatch.setattr(os, "open", refusing_open)
    p = write_binary(rec, tmp_path / "a.bin", direct_io=True, progress=False)
    assert p.read_bytes() == x.tobytes()
    monkeypatch.setattr(os, "open", real_open)

    if direct:
        fds = set()

        def track_open(path, flags, *a):
            fd = real_open(path, flags, *a)
            if flags & direct:
                fds.add(fd)
            return fd

        def refusing_pwrite(fd, data, pos):
            if fd in fds:
                raise OSError(errno.EINVAL, "Invalid argument")
            return real_pwrite(fd, data, pos)

        monkeypatch.setattr(os, "open", track_open)
        monkeypatch.setattr(os, "pwrite", refusing_pwrite)
        p = write_binary(rec, tmp_path / "b.bin", direct_io=True, progress=False)
        assert fds and p.read_bytes() == x.tobytes()


@needs_o_direct
def test_direct_write_error_is_raised_and_nothing_is_left(tmp_path, monkeypatch):
    """A failing device write in the writer thread (disk full) reaches the caller, and the atomic
    write leaves neither the file nor its sidecar."""
    import errno
    import os

    x = np.ones((20000, 4), "float32")
    rec = from_array(da.from_array(x, chunks=(1024, 4)), sampling_frequency=1000.0)
    real_open, real_pwrite = os.open, os.pwrite
    fds = set()

    def track_open(path, flags, *a):
        fd = real_open(path, flags, *a)
        if flags & os.O_DIRECT:
            fds.add(fd)
        return fd

    def full_disk(fd, data, pos):
        if fd in fds and pos > 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwrite(fd, data, pos)

    monkeypatch.setattr(os, "open", track_open)
    monkeypatch.setattr(os, "pwrite", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_binary(rec, tmp_path / "r.bin", direct_io=True, progress=False)
    assert not (tmp_path / "r.bin").exists() and not (tmp_path / "r.bin.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_direct_io_default_only_for_large_outputs(tmp_path, monkeypatch):
    """direct_io=None: O_DIRECT from DIRECT_IO_MIN_BYTES on, through the cache below."""
    import spkfn.io.binary as binary

    seen = []
    real = binary._BinaryWriter

    class Spy(real):
        def __init__(self, *a, direct=False, **k):
            seen.append(direct)
            super().__init__(*a, direct=direct, **k)

    monkeypatch.setattr(binary, "_BinaryWriter", Spy)
    rec = from_array(np.zeros((100, 4), "float32"), sampling_frequency=1000.0)
    write_binary(rec, tmp_path / "small.bin", progress=False)
    monkeypatch.setattr(binary, "DIRECT_IO_MIN_BYTES", 100 * 4 * 4)
    write_binary(rec, tmp_path / "large.bin", progress=False)
    write_binary(rec, tmp_path / "forced.bin", progress=False, direct_io=False)
    assert seen == [False, True, False]
