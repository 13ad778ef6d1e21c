import numpy as np
import pytest

from spkfn.core.chunks import as_dask, chunk_bounds, map_chunks, resolve_n_jobs
from spkfn.io import from_array


def test_chunk_bounds_cover_exactly():
    b = chunk_bounds(1001, 100)
    assert b[0].tolist() == [0, 100] and b[-1].tolist() == [1000, 1001]
    assert np.all(b[1:, 0] == b[:-1, 1])


@pytest.mark.parametrize("chunk_size", [97, 1000, 5000])
@pytest.mark.parametrize("margin", [0, 13])
def test_map_chunks_margins(chunk_size, margin):
    x = np.arange(3000 * 2, dtype="float32").reshape(3000, 2)
    rec = from_array(x, sampling_frequency=1.0)
    seen = []

    def f(block, *, start, stop, left, right):
        # The block is exactly samples [start-left, stop+right).
        np.testing.assert_array_equal(block, x[start - left:stop + right])
        assert left == min(margin, start) and right == min(margin, 3000 - stop)
        seen.append((start, stop))
        return block[left:block.shape[0] - right, 0].sum()

    out = map_chunks(f, rec, margin_samples=margin, chunk_size=chunk_size, progress=False, n_jobs=2)
    assert np.isclose(sum(out), x[:, 0].sum())
    assert [list(s) for s in sorted(seen)] == chunk_bounds(3000, chunk_size).tolist()


def test_as_dask_single_channel_chunk():
    rec = from_array(np.zeros((100, 7), "int16"), sampling_frequency=1.0)
    d = as_dask(rec, chunk_size=30)
    assert d.chunks[1] == (7,) and d.chunks[0][0] == 30


def test_resolve_n_jobs():
    assert resolve_n_jobs(None) >= 1
    assert resolve_n_jobs(3) == 3
    with pytest.raises(ValueError, match="n_jobs"):
        resolve_n_jobs(0)


def test_as_dask_and_read_binary_do_not_copy_the_whole_array(tmp_path):
    # dask >= 2026 copies array-likes in from_array; a memmap (a recording file) would be loaded
    # into memory when opened, and an in-memory recording duplicated.
    import tracemalloc

    from spkfn.io import read_binary

    x = np.zeros((200_000, 8), dtype="float32")  # 6.4 MB
    rec = from_array(x, sampling_frequency=1000.0)
    tracemalloc.start()
    d = as_dask(rec, chunk_size=10_000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < x.nbytes / 10
    assert float(d[5:15].sum().compute()) == 0.0

    path = tmp_path / "rec.bin"
    x.tofile(path)
    tracemalloc.start()
    r = read_binary(path, num_channels=8, dtype="float32", sampling_frequency=1000.0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < x.nbytes / 10
    assert r.shape == x.shape and float(r[:100].sum()) == 0.0
