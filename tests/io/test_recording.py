import numpy as np
import pytest
import xarray as xr

from spkfn.io import (
    channel_locations,
    check_recording,
    from_array,
    get_traces,
    has_geometry,
    scale_to_uV,
)


def make(n=1000, c=4, dtype="int16", **kw):
    x = (np.arange(n * c) % 1000).reshape(n, c).astype(dtype)
    return from_array(x, sampling_frequency=30000.0, **kw)


def test_from_array_layout():
    loc = np.column_stack([np.zeros(4), np.arange(4) * 20.0])
    rec = make(channel_locations=loc, gain_to_uV=0.195, offset_to_uV=[0, 1, 2, 3], t_start_s=10.0)
    assert rec.dims == ("time", "channel")
    assert rec.dtype == np.int16  # acquisition dtype kept
    assert rec.attrs["sampling_frequency"] == 30000.0
    assert rec.channel.values.tolist() == ["0", "1", "2", "3"]
    assert rec.time.values[0] == 10.0
    assert np.isclose(rec.time.values[300], 10.0 + 300 / 30000)
    np.testing.assert_array_equal(channel_locations(rec), loc)
    np.testing.assert_allclose(rec.gain_to_uV.values, 0.195)
    assert rec.offset_to_uV.values.tolist() == [0, 1, 2, 3]
    assert rec.group.values.tolist() == [0, 0, 0, 0]
    assert check_recording(rec) is rec


def test_time_coordinate_is_lazy_and_exact():
    import dask.array as da

    n = 30000 * 3600  # an hour: the coordinate must not be materialised
    rec = from_array(da.zeros((n, 2), dtype="int16", chunks=(30000, 2)), sampling_frequency=30000.0)
    assert rec.sizes["time"] == n
    from xarray.indexes import RangeIndex

    assert isinstance(rec.xindexes["time"], RangeIndex)  # values computed on access only
    assert rec.time[-1].item() == pytest.approx((n - 1) / 30000.0)
    sub = rec.isel(time=slice(30000, 30003))
    np.testing.assert_allclose(sub.time.values, [1.0, 1.0 + 1 / 30000, 1.0 + 2 / 30000])


def test_slicing_keeps_coords_and_attrs():
    loc = np.column_stack([np.zeros(4), np.arange(4) * 20.0])
    rec = make(channel_locations=loc, gain_to_uV=[1, 2, 3, 4])
    sub = rec.isel(time=slice(100, 200), channel=[2, 0])
    assert sub.attrs == rec.attrs
    assert sub.channel.values.tolist() == ["2", "0"]
    assert sub.gain_to_uV.values.tolist() == [3, 1]
    assert sub.y.values.tolist() == [40.0, 0.0]
    np.testing.assert_array_equal(sub.values, rec.values[100:200][:, [2, 0]])
    # With the lazy RangeIndex, label slices are half-open like positions: [100, 200) samples.
    sel = rec.sel(time=slice(100 / 30000, 200 / 30000), method="nearest")
    assert sel.sizes["time"] == 100
    np.testing.assert_array_equal(sel.values, rec.values[100:200])
    check_recording(sub)


def test_scale_to_uV():
    rec = make(gain_to_uV=[0.5, 1, 2, 4], offset_to_uV=[0, 0, 0, -10])
    uv = scale_to_uV(rec)
    assert uv.dtype == np.float32
    np.testing.assert_allclose(uv.values, rec.values * np.array([0.5, 1, 2, 4]) + np.array([0, 0, 0, -10]), rtol=1e-6)
    assert uv.gain_to_uV.values.tolist() == [1, 1, 1, 1]
    np.testing.assert_allclose(get_traces(rec, start=5, end=7, return_uV=True), uv.values[5:7])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sampling_frequency": 0}, "sampling_frequency must be a finite number > 0"),
        ({"sampling_frequency": -5.0}, "sampling_frequency must be a finite number > 0"),
        ({"sampling_frequency": float("nan")}, "sampling_frequency"),
        ({"sampling_frequency": 1.0, "channel_ids": ["a", "b"]}, "channel_ids has 2 entries"),
        ({"sampling_frequency": 1.0, "channel_ids": ["a", "a", "b", "c"]}, "unique"),
        ({"sampling_frequency": 1.0, "channel_locations": np.zeros((3, 2))}, "channel_locations must have shape"),
        ({"sampling_frequency": 1.0, "channel_locations": np.full((4, 2), np.nan)}, "non-finite"),
        ({"sampling_frequency": 1.0, "gain_to_uV": [1, 2]}, "gain_to_uV"),
    ],
)
def test_from_array_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        from_array(np.zeros((10, 4), "int16"), **kwargs)


def test_from_array_rejects_1d():
    with pytest.raises(ValueError, match="2-D"):
        from_array(np.zeros(10), sampling_frequency=1.0)


def test_check_recording_errors():
    rec = make(channel_locations=np.column_stack([np.zeros(4), np.arange(4.0)]))
    with pytest.raises(ValueError, match="xarray.DataArray"):
        check_recording(rec.values)
    with pytest.raises(ValueError, match="dims must be"):
        check_recording(rec.T)
    bad = rec.copy()
    bad.attrs = {}
    with pytest.raises(ValueError, match="sampling_frequency"):
        check_recording(bad)
    with pytest.raises(ValueError, match="non-finite"):
        check_recording(rec.assign_coords(x=("channel", [0, np.nan, 0, 0])))
    with pytest.raises(ValueError, match="only one of"):
        check_recording(rec.drop_vars("x"))
    with pytest.raises(ValueError, match="group"):
        check_recording(rec.drop_vars("group"))
    assert not has_geometry(rec.drop_vars(["x", "y"]))
    with pytest.raises(ValueError, match="no channel geometry"):
        channel_locations(rec.drop_vars(["x", "y"]))


def test_dask_backed_stays_lazy():
    import dask.array as da

    x = da.random.default_rng(0).normal(size=(10000, 3), chunks=(1000, 3)).astype("float32")
    rec = from_array(x, sampling_frequency=1000.0)
    assert isinstance(rec.data, da.Array)
    assert isinstance(scale_to_uV(rec).data, da.Array)
    assert isinstance(rec, xr.DataArray)
