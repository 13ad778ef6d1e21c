"""read_nwb: the real NeuroConv file from ../shared/data and small files written here with pynwb."""

import pickle
import sys
import warnings
from datetime import UTC, datetime

import dask.array as da
import numpy as np
import pytest

from spkfn.io import check_recording

pynwb = pytest.importorskip("pynwb")
h5py = pytest.importorskip("h5py")

from spkfn.io.nwb import list_electrical_series, read_nwb  # noqa: E402


def test_noise4sam_values_gain_geometry(shared_data):
    path = shared_data("nwb_noise4sam_neuroconv") / "Noise4Sam_test.nwb"
    rec = read_nwb(path)
    check_recording(rec)
    assert isinstance(rec.data, da.Array)
    with h5py.File(path, "r") as f:
        raw = f["acquisition/ElectricalSeriesAP/data"][:]
        conv = f["acquisition/ElectricalSeriesAP/data"].attrs["conversion"]
        t0 = f["acquisition/ElectricalSeriesAP/starting_time"][()]
        rel_x = f["general/extracellular_ephys/electrodes/rel_x"][:]
        rel_y = f["general/extracellular_ephys/electrodes/rel_y"][:]
    assert rec.shape == (1155, 384) and rec.dtype == np.int16
    np.testing.assert_array_equal(rec.values, raw)
    assert rec.attrs["sampling_frequency"] == 30000.0
    np.testing.assert_allclose(rec.gain_to_uV.values, conv * 1e6)
    assert float(rec.gain_to_uV[0]) == pytest.approx(2.34375)
    assert np.all(rec.offset_to_uV.values == 0)
    assert float(rec.time[0]) == pytest.approx(t0)
    np.testing.assert_array_equal(rec.x.values, rel_x)
    np.testing.assert_array_equal(rec.y.values, rel_y)
    assert rec.channel.values[:3].tolist() == ["AP0", "AP1", "AP2"]
    assert set(rec.group.values.tolist()) == {0} and set(rec.group_name.values.tolist()) == {"NeuropixelsImec0"}
    assert rec.attrs["source"] == {"format": "nwb", "path": str(path.resolve()),
                                   "stream": "acquisition/ElectricalSeriesAP", "electrical_series": "ElectricalSeriesAP"}
    sub = rec.isel(time=slice(100, 900, 3), channel=[383, 0, 7])
    np.testing.assert_array_equal(sub.values, raw[100:900:3][:, [383, 0, 7]])
    back = pickle.loads(pickle.dumps(rec.data))
    np.testing.assert_array_equal(back.compute(), raw)


def test_noise4sam_nwb_equals_the_spikeglx_source(shared_data):
    """The NWB file is NeuroConv's conversion of the SpikeGLX file: same samples, gain, clock and probe."""
    from spkfn.io.neo_io import read_spikeglx

    nwb = read_nwb(shared_data("nwb_noise4sam_neuroconv") / "Noise4Sam_test.nwb")
    glx = read_spikeglx(shared_data("spikeglx_noise4sam_truncated") / "Noise4Sam_g0")
    np.testing.assert_array_equal(nwb.values, glx.values)
    np.testing.assert_allclose(nwb.gain_to_uV.values, glx.gain_to_uV.values)
    np.testing.assert_array_equal(np.column_stack([nwb.x, nwb.y]), np.column_stack([glx.x, glx.y]))
    assert float(nwb.time[0]) == pytest.approx(float(glx.time[0]))
    assert nwb.channel.values.tolist() == glx.channel_name.values.tolist()


def _write_nwb(path, *, with_timestamps=False):
    """A small NWB file: 2 shanks x 3 electrodes, an acquisition series and an LFP series."""
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.ecephys import LFP, ElectricalSeries

    rng = np.random.default_rng(0)
    f = NWBFile("test", "id", datetime(2024, 1, 1, tzinfo=UTC))
    dev = f.create_device("probe")
    groups = [f.create_electrode_group(f"shank{k}", "", "CA1", dev) for k in range(2)]
    f.add_electrode_column("channel_name", "names")
    for k in range(6):
        f.add_electrode(x=float(10 * k), y=float(-5 * k), z=0.0, location="CA1", group=groups[k // 3],
                        channel_name=f"ch{k}")
    region = f.create_electrode_table_region(list(range(6)), "all")
    ap = rng.integers(-500, 500, size=(400, 6)).astype("int16")
    kw = {"timestamps": 2.5 + np.arange(400) / 20000.0} if with_timestamps else {"rate": 20000.0, "starting_time": 2.5}
    lfp_data = rng.normal(size=(50, 3)).astype("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # hdmf's notes on a region built before its parent is set
        f.add_acquisition(ElectricalSeries(name="ap", data=ap, electrodes=region, conversion=1e-6, offset=-1e-4,
                                           channel_conversion=np.linspace(1.0, 2.0, 6), **kw))
        lfp = LFP(ElectricalSeries(name="lfp", data=lfp_data, rate=1000.0,
                                   electrodes=f.create_electrode_table_region([0, 2, 4], "some")))
        f.create_processing_module("ecephys", "").add(lfp)
        with NWBHDF5IO(str(path), "w") as io:
            io.write(f)
    return ap, lfp_data


def test_written_file_series_choice_scaling_groups(tmp_path):
    path = tmp_path / "two.nwb"
    ap, lfp = _write_nwb(path)
    table = list_electrical_series(path)
    assert table["series"].tolist() == ["acquisition/ap", "processing/ecephys/LFP/lfp"]
    assert table["num_channels"].tolist() == [6, 3]
    with pytest.raises(ValueError, match=r"(?s)holds 2 ElectricalSeries.*processing/ecephys/LFP/lfp.*electrical_series="):
        read_nwb(path)
    rec = read_nwb(path, electrical_series="ap")
    np.testing.assert_array_equal(rec.values, ap)
    np.testing.assert_allclose(rec.gain_to_uV.values, np.linspace(1.0, 2.0, 6))  # 1e-6 V × conv × 1e6
    np.testing.assert_allclose(rec.offset_to_uV.values, -100.0)
    assert float(rec.time[0]) == pytest.approx(2.5) and rec.attrs["sampling_frequency"] == 20000.0
    assert rec.channel.values.tolist() == [f"ch{k}" for k in range(6)]
    assert rec.group.values.tolist() == [0, 0, 0, 1, 1, 1]
    assert rec.group_name.values.tolist() == ["shank0"] * 3 + ["shank1"] * 3
    np.testing.assert_array_equal(rec.x.values, 10.0 * np.arange(6))  # no rel_x: x/y columns
    np.testing.assert_array_equal(rec.y.values, -5.0 * np.arange(6))
    sub = read_nwb(path, electrical_series="processing/ecephys/LFP/lfp")
    np.testing.assert_array_equal(sub.values, lfp)
    assert sub.channel.values.tolist() == ["ch0", "ch2", "ch4"] and sub.dtype == np.float32
    with pytest.raises(ValueError, match="'nope' is not in the file"):
        read_nwb(path, electrical_series="nope")


def test_written_file_with_timestamps(tmp_path):
    path = tmp_path / "ts.nwb"
    ap, _ = _write_nwb(path, with_timestamps=True)
    rec = read_nwb(path, electrical_series="acquisition/ap", chunk_size=64)
    assert rec.attrs["sampling_frequency"] == pytest.approx(20000.0)
    assert float(rec.time[0]) == pytest.approx(2.5)
    assert len(rec.data.chunks[0]) == 7
    np.testing.assert_array_equal(rec.values, ap)


def test_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError):
        read_nwb(tmp_path / "missing.nwb")
    bad = tmp_path / "bad.nwb"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="pynwb could not read .*bad.nwb"):
        read_nwb(bad)
    monkeypatch.setitem(sys.modules, "pynwb", None)
    with pytest.raises(ImportError, match=r"spkfn\[nwb\]"):
        read_nwb(bad)


def test_file_without_series(tmp_path):
    from pynwb import NWBHDF5IO, NWBFile

    path = tmp_path / "empty.nwb"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with NWBHDF5IO(str(path), "w") as io:
            io.write(NWBFile("x", "y", datetime(2024, 1, 1, tzinfo=UTC)))
    with pytest.raises(ValueError, match="holds no ElectricalSeries"):
        read_nwb(path)
