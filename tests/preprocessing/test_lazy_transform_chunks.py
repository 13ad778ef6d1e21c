"""lazy_transform keeps the recording's chunks when only a few (e.g. the last) are shorter than the margin."""

import numpy as np

from spkfn.core.chunks import as_dask
from spkfn.io import from_array
from spkfn.preprocessing._base import lazy_transform


def _moving_sum(block, *, half):
    # each output sample = sum of the input over [t - half, t + half] (needs a margin of `half`)
    c = np.cumsum(np.pad(block, ((half + 1, half), (0, 0))), axis=0)
    return c[2 * half + 1:] - c[:-2 * half - 1]


def test_short_last_chunk_does_not_rechunk_everything():
    x = np.random.default_rng(0).normal(size=(10_050, 2))
    rec = from_array(x, sampling_frequency=1000.0)
    rec = rec.copy(data=as_dask(rec, chunk_size=1000))  # last chunk: 50 samples < margin 100
    out = lazy_transform(rec, _moving_sum, margin_samples=100, step="moving_sum", params={}, half=100)
    assert max(out.data.chunks[0]) <= 1100  # not every chunk grown to 2 x (margin + 1) x ...
    ref = _moving_sum(x, half=100)
    assert np.allclose(out.values, ref)


def test_all_chunks_shorter_than_margin_still_exact():
    x = np.random.default_rng(1).normal(size=(3_000, 2))
    rec = from_array(x, sampling_frequency=1000.0)
    rec = rec.copy(data=as_dask(rec, chunk_size=50))
    out = lazy_transform(rec, _moving_sum, margin_samples=100, step="moving_sum", params={}, half=100)
    assert np.allclose(out.values, _moving_sum(x, half=100))
