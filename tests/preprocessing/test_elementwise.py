"""Sample-wise steps: exact values, µV bookkeeping, casting without wrap-around, seeds, chunking."""

import numpy as np
import pytest

from spkfn.core.chunks import as_dask
from spkfn.io import from_array, scale_to_uV
from spkfn.preprocessing import (
    astype,
    blank_saturation,
    cast_traces,
    center,
    clip,
    normalize_by_quantile,
    rectify,
    scale,
    unsigned_to_signed,
)

FS = 10000.0


def _rec(x, **kw):
    return from_array(np.asarray(x), sampling_frequency=FS, **kw)


def _rechunk(rec, chunk_size):
    return rec.copy(data=as_dask(rec, chunk_size=chunk_size))


def test_cast_traces_rules():
    x = np.array([-1e6, -32768.6, -0.5, 0.5, 1.5, 32767.4, 1e6, np.nan])
    assert cast_traces(x, "int16").tolist() == [-32768, -32768, 0, 0, 2, 32767, 32767, 0]
    assert cast_traces(np.array([70000, -5], "int32"), "uint16").tolist() == [65535, 0]
    assert cast_traces(np.array([65535], "uint16"), "int16").tolist() == [32767]
    assert cast_traces(np.array([1e6, -1e6]), "float16").tolist() == [65504.0, -65504.0]
    assert cast_traces(np.array([1.7]), "float32", round=True).tolist() == [2.0]
    same = np.zeros(3, "float32")
    assert cast_traces(same, "float32") is same


def test_scale_values_and_uV_preserved():
    x = np.array([[10, -4], [2, 8]], "int16")
    rec = _rec(x, gain_to_uV=[0.5, 2.0], offset_to_uV=[1.0, -3.0])
    out = scale(rec, gain=[2.0, 0.25], offset=[1.0, 0.0])
    assert out.values.tolist() == [[21.0, -1.0], [5.0, 2.0]]
    assert np.allclose(scale_to_uV(out).values, scale_to_uV(rec).values)
    to_uV = scale(rec, gain=rec.gain_to_uV.values, offset=rec.offset_to_uV.values)
    assert np.allclose(to_uV.values, scale_to_uV(rec).values)
    assert np.allclose(to_uV.gain_to_uV.values, 1) and np.allclose(to_uV.offset_to_uV.values, 0)
    assert scale(rec, gain=10000.0, dtype="int16").values.tolist() == [[32767, -32768], [20000, 32767]]  # clipped
    with pytest.raises(ValueError, match="gain must be non-zero"):
        scale(rec, gain=[1.0, 0.0])
    with pytest.raises(ValueError, match="one value per channel"):
        scale(rec, gain=[1.0, 2.0, 3.0])


def test_center_is_seeded_and_chunk_invariant():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(50000, 3)) + [100.0, -20.0, 0.0]).astype("float32")
    rec = _rec(x, offset_to_uV=7.0)
    a = center(_rechunk(rec, 3000), num_chunks=10, chunk_duration_s=0.05, seed=1)
    b = center(_rechunk(rec, 17000), num_chunks=10, chunk_duration_s=0.05, seed=1)
    c = center(rec, num_chunks=10, chunk_duration_s=0.05, seed=2)
    assert np.array_equal(a.values, b.values)
    offsets = np.asarray(a.attrs["preprocessing"][-1]["params"]["offsets"])
    assert np.allclose(offsets, [100.0, -20.0, 0.0], atol=0.1)
    assert not np.array_equal(offsets, c.attrs["preprocessing"][-1]["params"]["offsets"])
    assert np.allclose(a.values, x - offsets.astype("float32"), atol=1e-4)
    assert np.all(a.offset_to_uV.values == 0)
    mean = center(rec, mode="mean", num_chunks=10, chunk_duration_s=0.05)
    assert np.allclose(np.mean(mean.values, axis=0), 0, atol=0.05)
    with pytest.raises(ValueError, match="mode must be one of"):
        center(rec, mode="mode")


def test_normalize_by_quantile():
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(60000, 2)) * [1.0, 50.0] + [5.0, -3.0]).astype("float32")
    rec = _rec(x, gain_to_uV=0.5)
    out = normalize_by_quantile(rec, quantile_low=0.05, quantile_high=0.95, target_spread=2.0, target_median=1.0,
                                num_chunks=40, chunk_duration_s=0.1).values
    spread = np.quantile(out, 0.95, axis=0) - np.quantile(out, 0.05, axis=0)
    assert np.allclose(spread, 2.0, rtol=0.05) and np.allclose(np.median(out, axis=0), 1.0, atol=0.05)
    pooled = normalize_by_quantile(rec, mode="pool_channel", num_chunks=40, chunk_duration_s=0.1)
    gain = np.asarray(pooled.attrs["preprocessing"][-1]["params"]["gain"])
    assert gain[0] == gain[1]
    with pytest.raises(ValueError, match="quantile_low must be smaller than quantile_high"):
        normalize_by_quantile(rec, quantile_low=0.9, quantile_high=0.1)
    with pytest.raises(ValueError, match="quantile range is 0 on channels"):
        normalize_by_quantile(_rec(np.zeros((2000, 2), "float32")), num_chunks=2, chunk_duration_s=0.01)


def test_rectify_and_clip():
    x = np.array([[-32768, -5, 7]], "int16")
    assert rectify(_rec(x)).values.tolist() == [[32767, 5, 7]]
    f = np.array([[-2.5, 0.5, 3.0]], "float32")
    assert rectify(_rec(f)).values.tolist() == [[2.5, 0.5, 3.0]]
    assert clip(_rec(f), min_value=-1.0, max_value=1.0).values.tolist() == [[-1.0, 0.5, 1.0]]
    assert clip(_rec(x), min_value=-6.5).values.tolist() == [[-6, -5, 7]]
    with pytest.raises(ValueError, match="needs min_value, max_value or both"):
        clip(_rec(f))
    with pytest.raises(ValueError, match="min_value must be <= max_value"):
        clip(_rec(f), min_value=2.0, max_value=1.0)


def test_blank_saturation():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(20000, 4)).astype("float32")
    x[1000:1010, 2] = 500.0
    x[3000:3005, 1] = -500.0
    rec = _rec(x)
    up = blank_saturation(rec, abs_threshold=100.0, fill_value=0.0).values
    assert np.all(up[1000:1010, 2] == 0) and np.all(up[3000:3005, 1] == -500.0)
    both = blank_saturation(rec, abs_threshold=100.0, direction="both", fill_value=0.0).values
    assert np.all(both[3000:3005, 1] == 0)
    untouched = np.ones(x.shape, bool)
    untouched[1000:1010, 2] = untouched[3000:3005, 1] = False
    assert np.array_equal(both[untouched], x[untouched])
    q = blank_saturation(rec, quantile_threshold=0.0001, direction="both", num_chunks=20, chunk_duration_s=0.05)
    params = q.attrs["preprocessing"][-1]["params"]
    assert abs(params["fill_value_used"]) < 0.2  # median of the data
    assert params["upper_threshold_used"] > 2.0
    with pytest.raises(ValueError, match="exactly one of abs_threshold"):
        blank_saturation(rec)
    with pytest.raises(ValueError, match="quantile_threshold must be in"):
        blank_saturation(rec, quantile_threshold=0.7)


def test_astype_and_unsigned_to_signed():
    f = np.array([[1.5, -40000.0, 2.49]], "float32")
    assert astype(_rec(f), dtype="int16").values.tolist() == [[2, -32768, 2]]
    assert astype(_rec(f), dtype="int16", round=False).values.tolist() == [[1, -32768, 2]]
    assert astype(_rec(f), dtype="float16").values.tolist() == [[1.5, -40000.0, 2.490234375]]
    with pytest.raises(ValueError, match="integer or floating dtype"):
        astype(_rec(f), dtype="bool")
    u = np.array([[0, 2048, 4095]], "uint16")
    rec = _rec(u, gain_to_uV=2.0, offset_to_uV=0.0)
    s12 = unsigned_to_signed(rec, bit_depth=12)
    assert s12.dtype == np.int16 and s12.values.tolist() == [[-2048, 0, 2047]]
    assert np.allclose(scale_to_uV(s12).values, scale_to_uV(rec).values)  # µV unchanged
    assert unsigned_to_signed(_rec(np.array([[0, 65535]], "uint16"))).values.tolist() == [[-32768, 32767]]
    with pytest.raises(ValueError, match="needs an unsigned integer recording"):
        unsigned_to_signed(_rec(f))
    with pytest.raises(ValueError, match=r"bit_depth must be an integer in \[1, 16\]"):
        unsigned_to_signed(rec, bit_depth=17)


@pytest.mark.parametrize("step,kwargs", [
    (scale, {"gain": 3.0, "offset": 1.0}),
    (rectify, {}),
    (clip, {"min_value": -1.0, "max_value": 1.0}),
    (astype, {"dtype": "int16"}),
    (center, {"num_chunks": 4, "chunk_duration_s": 0.05, "seed": 3}),
    (normalize_by_quantile, {"num_chunks": 4, "chunk_duration_s": 0.05, "seed": 3}),
    (blank_saturation, {"quantile_threshold": 0.01, "seed": 3}),
])
def test_chunk_size_invariance(step, kwargs):
    x = (np.random.default_rng(4).normal(size=(12000, 3)) * 3).astype("float32")
    rec = _rec(x)
    a = step(_rechunk(rec, 1000), **kwargs).values
    b = step(_rechunk(rec, 5500), **kwargs).values
    assert np.array_equal(a, b)
