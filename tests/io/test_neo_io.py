"""Readers over neo: real public files from ../shared/data, compared with neo's own reads."""

import json
import pickle
import shutil
import warnings

import dask
import dask.array as da
import neo.rawio
import numpy as np
import pytest

from spkfn.io import check_recording, get_probe, read_binary
from spkfn.io.neo_io import (
    NeoReadError,
    detect_format,
    list_streams,
    neo_formats,
    read_blackrock,
    read_intan,
    read_neo,
    read_openephys,
    read_spikeglx,
)


def _neo(cls, **kw):
    r = getattr(neo.rawio, cls)(**kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r.parse_header()
    return r


def _neo_uV(r, stream_index, seg=0, block=0):
    raw = r.get_analogsignal_chunk(block, seg, None, None, stream_index)
    units = {str(u) for u in r.header["signal_channels"][r.header["signal_channels"]["stream_id"]
                                                         == r.header["signal_streams"]["id"][stream_index]]["units"]}
    factor = {"uV": 1.0, "mV": 1e3, "V": 1e6}[units.pop()]
    return raw, r.rescale_signal_raw_to_float(raw, dtype="float64", stream_index=stream_index) * factor


def _uV(rec):
    return rec.values.astype(np.float64) * rec.gain_to_uV.values + rec.offset_to_uV.values


# ------------------------------------------------------------------ SpikeGLX


def test_spikeglx_values_gains_probe_tstart(shared_data):
    folder = shared_data("spikeglx_noise4sam_truncated") / "Noise4Sam_g0"
    rec = read_spikeglx(folder)
    check_recording(rec)
    assert isinstance(rec.data, da.Array)
    r = _neo("SpikeGLXRawIO", dirname=str(folder))
    raw, uv = _neo_uV(r, 0)
    assert rec.shape == (1155, 384) and rec.dtype == np.int16
    np.testing.assert_array_equal(rec.values, raw)
    np.testing.assert_allclose(_uV(rec), uv, rtol=1e-6)
    # raw bytes: 385 interleaved int16 channels, the last is SY0 (excluded)
    bin_file = next(folder.rglob("*.ap.bin"))
    on_disk = np.fromfile(bin_file, dtype="int16").reshape(-1, 385)
    np.testing.assert_array_equal(rec.values, on_disk[:, :384])
    assert rec.attrs["sampling_frequency"] == 30000.0
    assert float(rec.gain_to_uV[0]) == pytest.approx(1e6 * 0.6 / 512 / 500)  # imAiRangeMax / 2^9 / gain 500
    assert float(rec.time[0]) == pytest.approx(r.get_signal_t_start(0, 0, 0))
    assert float(rec.time[0]) > 5.9  # the file's first sample on the session clock
    assert "SY0" not in rec.channel_name.values.tolist()
    # geometry: the NP1.0 probe of the .meta, wired to the 384 AP channels
    import probeinterface as pi

    probe = pi.read_spikeglx(next(folder.rglob("*.ap.meta")))
    np.testing.assert_array_equal(np.column_stack([rec.x, rec.y]), probe.contact_positions)
    assert get_probe(rec).probes[0].get_contact_count() == 384
    src = rec.attrs["source"]
    assert src["format"] == "spikeglx" and src["stream"] == "imec0.ap" and src["rawio"] == "SpikeGLXRawIO"


def test_spikeglx_bin_path_and_streams(shared_data):
    folder = shared_data("spikeglx_noise4sam_truncated")
    bin_file = next(folder.rglob("*.ap.bin"))
    a = read_spikeglx(bin_file)
    b = read_neo(folder)  # auto-detected; the SYNC stream is skipped when choosing
    c = read_neo(bin_file.with_suffix(".meta"))  # one file names its stream
    assert c.attrs["source"]["stream"] == "imec0.ap" and "x" in c.coords
    assert a.attrs["source"]["stream"] == b.attrs["source"]["stream"] == "imec0.ap"
    np.testing.assert_array_equal(a.values, b.values)
    table = list_streams(folder)
    assert table["stream_id"].tolist() == ["imec0.ap", "imec0.ap-SYNC"]
    assert table["num_channels"].tolist() == [384, 1]
    assert table["is_sync"].tolist() == [False, True]
    assert table["num_samples"].tolist() == [1155, 1155]
    # the sync stream asked for by name is returned whole
    sync = read_neo(folder, stream="imec0.ap-SYNC")
    assert sync.sizes["channel"] == 1 and sync.channel_name.values.tolist() == ["SY0"]
    # exclude_sync=False: both streams are candidates, so the choice is ambiguous
    with pytest.raises(ValueError, match=r"(?s)2 signal streams.*imec0\.ap-SYNC.*stream="):
        read_neo(folder, exclude_sync=False)
    with pytest.raises(ValueError, match="imec1.ap"):
        read_spikeglx(folder, stream="imec1.ap")


def test_lazy_slicing_matches_neo_and_pickles(shared_data):
    folder = shared_data("spikeglx_noise4sam_truncated")
    rec = read_neo(folder, chunk_size=100)
    assert len(rec.data.chunks[0]) == 12
    r = _neo("SpikeGLXRawIO", dirname=str(folder))
    full = r.get_analogsignal_chunk(0, 0, None, None, 0)
    sub = rec.isel(time=slice(37, 1003, 7), channel=[200, 3, 17])
    np.testing.assert_array_equal(sub.values, full[37:1003:7][:, [200, 3, 17]])
    assert int(rec[5, 9]) == full[5, 9]
    assert rec.isel(time=slice(0, 0)).values.shape == (0, 384)
    back = pickle.loads(pickle.dumps(rec.data))  # re-opens the file in a fresh reader
    np.testing.assert_array_equal(back.compute(), full)
    # threaded scheduler, many small chunks, same values
    x = rec.data.compute(scheduler="threads", num_workers=4)
    np.testing.assert_array_equal(x, full)


# ------------------------------------------------------------------ Open Ephys


def test_openephys_legacy(shared_data):
    node = shared_data("openephys_legacy_v067_example") / "Record Node 101"
    rec = read_openephys(node)
    r = _neo("OpenEphysRawIO", dirname=str(node))
    raw, uv = _neo_uV(r, 0)
    np.testing.assert_array_equal(rec.values, raw)
    np.testing.assert_allclose(_uV(rec), uv, rtol=1e-6)
    assert rec.shape == (133120, 16)
    assert rec.attrs["sampling_frequency"] == 40000.0
    assert float(rec.time[0]) == pytest.approx(6.290875)
    assert float(rec.gain_to_uV[0]) == pytest.approx(0.05)
    assert rec.channel_name.values.tolist() == [f"CH{i}" for i in range(1, 17)]
    assert "x" not in rec.coords  # File Reader data: no Neuropixels geometry in settings.xml
    # raw bytes of a legacy .continuous record: 1024-byte header, then records of
    # int64 timestamp, uint16 n, uint16 rec no, 1024 big-endian int16, 10-byte marker
    rec_dtype = np.dtype([("ts", "<i8"), ("n", "<u2"), ("rec", "<u2"), ("x", ">i2", 1024), ("m", "u1", 10)])
    ch3 = np.fromfile(node / "100_example-data_CH3.continuous", dtype=rec_dtype, offset=1024)["x"].ravel()
    np.testing.assert_array_equal(rec.sel(channel=rec.channel.values[2]).values, ch3)
    assert detect_format(node) == "openephys_legacy"


def test_openephys_top_folder_names_the_record_nodes(shared_data):
    top = shared_data("openephys_legacy_v067_example")
    with pytest.raises(ValueError, match="Record Node 10"):
        read_neo(top)


def _synthetic_openephys_binary(shared_data, tmp_path):
    """An Open Ephys binary recording with real rig metadata (oebin + settings.xml) and synthetic data."""
    src = shared_data("probe_metadata_samples_probeinterface") / "openephys" / "OE_Neuropix-PXI-NP1-binary" / "Record_Node_101"
    node = tmp_path / "oe" / "Record Node 101"
    folder = node / "experiment1" / "recording1"
    folder.mkdir(parents=True)
    shutil.copy(src / "settings.xml", node / "settings.xml")
    oebin = json.loads((src / "experiment1" / "recording1" / "structure.oebin").read_text())
    oebin["events"], oebin["spikes"] = [], []
    (folder / "structure.oebin").write_text(json.dumps(oebin))
    (info,) = oebin["continuous"]
    d = folder / "continuous" / info["folder_name"]
    d.mkdir(parents=True)
    x = np.random.default_rng(0).integers(-2000, 2000, size=(3000, info["num_channels"])).astype("int16")
    x.tofile(d / "continuous.dat")
    np.save(d / "sample_numbers.npy", np.arange(1500, 1500 + x.shape[0], dtype=np.int64))
    np.save(d / "timestamps.npy", np.arange(1500, 1500 + x.shape[0]) / info["sample_rate"])
    return tmp_path / "oe", x, node / "settings.xml"


def test_openephys_binary_probe_from_settings(shared_data, tmp_path):
    import probeinterface as pi

    top, x, settings = _synthetic_openephys_binary(shared_data, tmp_path)
    assert detect_format(top) == "openephys_binary"
    rec = read_openephys(top)
    np.testing.assert_array_equal(rec.values, x)
    assert rec.shape == (3000, 384)
    assert float(rec.gain_to_uV[0]) == pytest.approx(0.195)
    assert float(rec.time[0]) == pytest.approx(1500 / 30000.0)
    probe = pi.read_openephys_neuropixels(settings)
    wired = np.empty((384, 2))
    wired[probe.device_channel_indices] = probe.contact_positions
    np.testing.assert_array_equal(np.column_stack([rec.x, rec.y]), wired)
    # a file inside the recording opens the same stream
    dat = next(top.rglob("continuous.dat"))
    np.testing.assert_array_equal(read_neo(dat).values, x)


# ------------------------------------------------------------------ Intan


@pytest.mark.parametrize("name, n_ch, n", [("example_intan_file.rhd", 2, 19840),
                                           ("sampledata_py_7a2429c.rhd", 64, 17664),
                                           ("sampledata_r_30243eb.rhd", 32, 19440)])
def test_intan(shared_data, name, n_ch, n):
    path = shared_data("intan_rhd_samples") / name
    rec = read_intan(path)
    r = _neo("IntanRawIO", filename=str(path))
    raw, uv = _neo_uV(r, 0)
    assert rec.shape == (n, n_ch) and rec.dtype == np.uint16
    np.testing.assert_array_equal(rec.values, raw)
    np.testing.assert_allclose(_uV(rec), uv, rtol=1e-6, atol=1e-6)
    assert rec.attrs["sampling_frequency"] == 20000.0
    assert float(rec.gain_to_uV[0]) == pytest.approx(0.195)
    assert float(rec.offset_to_uV[0]) == pytest.approx(-6389.76)


def test_intan_streams_and_aux_in_volts(shared_data):
    path = shared_data("intan_rhd_samples") / "example_intan_file.rhd"
    table = list_streams(path)
    assert table["stream_name"].tolist() == ["RHD2000 amplifier channel", "RHD2000 auxiliary input channel",
                                             "RHD2000 supply voltage channel"]
    assert table["sampling_frequency"].tolist() == [20000.0, 5000.0, 156.25]
    with pytest.raises(ValueError, match="3 signal streams") as e:
        read_neo(path)
    assert "RHD2000 auxiliary input channel" in str(e.value) and "stream=" in str(e.value)
    aux = read_neo(path, stream="auxiliary")
    r = _neo("IntanRawIO", filename=str(path))
    _, volts = _neo_uV(r, 1)
    np.testing.assert_allclose(_uV(aux), volts, rtol=1e-6)  # V -> µV
    assert float(aux.gain_to_uV[0]) == pytest.approx(37.4)
    with pytest.raises(ValueError, match="matches no stream"):
        read_neo(path, stream="nonsense")


def test_intan_file_that_crashes_neo_is_read(shared_data, caplog):
    """neo 0.14.6 raises KeyError('custom_channel_name') on this RHD v1.5 file (temperature sensor)."""
    path = shared_data("intan_rhd_samples") / "sampledata_py_9f2022b.rhd"
    with pytest.raises(KeyError, match="custom_channel_name"):
        _neo("IntanRawIO", filename=str(path))
    rec = read_intan(path)
    assert "fallback" in caplog.text
    assert rec.shape == (672 * 60, 32) and rec.dtype == np.uint16
    assert rec.attrs["source"]["rawio"] == "_IntanHeaderAttached"
    assert float(rec.gain_to_uV[0]) == pytest.approx(0.195) and float(rec.offset_to_uV[0]) == pytest.approx(-6389.76)
    # independent reference from Intan's documented RHD block layout: per 60-sample block,
    # 60 int32 timestamps, then 32 amplifier channels x 60 uint16, then aux/supply/temp/ADC/digital
    block_bytes = 240 + 32 * 120 + 3 * 30 + 2 + 2 + 2 * 120 + 120 + 120
    size = path.stat().st_size
    assert (size - 672 * block_bytes) > 0
    blocks = np.fromfile(path, dtype=np.uint8, offset=size - 672 * block_bytes).reshape(672, block_bytes)
    ts = blocks[:, :240].copy().view("<i4").ravel()
    np.testing.assert_array_equal(ts, np.arange(ts.size) + ts[0])
    amp = blocks[:, 240:240 + 32 * 120].copy().view("<u2").reshape(672, 32, 60).transpose(0, 2, 1).reshape(-1, 32)
    np.testing.assert_array_equal(rec.values, amp)
    np.testing.assert_array_equal(rec.isel(time=slice(59, 181), channel=[31, 2]).values, amp[59:181][:, [31, 2]])
    assert set(list_streams(path)["stream_id"]) == {"0", "1", "2", "3", "20"}


@pytest.mark.parametrize("name", ["example_intan_file.rhd", "sampledata_py_7a2429c.rhd", "sampledata_r_30243eb.rhd"])
def test_intan_fallback_equals_neo_where_neo_works(shared_data, name):
    from spkfn.io.neo_io import _IntanHeaderAttached

    path = shared_data("intan_rhd_samples") / name
    ours = _IntanHeaderAttached(str(path))
    ours.parse_header()
    r = _neo("IntanRawIO", filename=str(path))
    assert ours.header["signal_streams"].tolist() == r.header["signal_streams"].tolist()
    assert ours.header["signal_channels"].tolist() == r.header["signal_channels"].tolist()
    for k in range(r.header["signal_streams"].size):
        n = r.get_signal_size(0, 0, k)
        assert ours.get_signal_size(0, 0, k) == n
        np.testing.assert_array_equal(ours.get_analogsignal_chunk(0, 0, 0, n, k), r.get_analogsignal_chunk(0, 0, 0, n, k))
        np.testing.assert_array_equal(ours.get_analogsignal_chunk(0, 0, 7, n - 3, k, [0]),
                                      r.get_analogsignal_chunk(0, 0, 7, n - 3, k, [0]))


# ------------------------------------------------------------------ Blackrock


def test_blackrock_segments_and_units(shared_data):
    path = shared_data("blackrock_mne_nsx_headers") / "test_BRSMPGRP_raw.ns3"
    r = _neo("BlackrockRawIO", filename=str(path), nsx_to_load=3)
    assert r.segment_count(0) == 2
    for seg in (0, 1):
        rec = read_blackrock(path, segment_index=seg)
        raw, uv = _neo_uV(r, 0, seg=seg)
        np.testing.assert_array_equal(rec.values, raw)
        np.testing.assert_allclose(_uV(rec), uv, rtol=1e-6)  # mV -> µV
        assert float(rec.time[0]) == pytest.approx(r.get_signal_t_start(0, seg, 0))
        assert rec.attrs["source"]["num_segments"] == 2
    assert read_blackrock(path, segment_index=1).sizes["time"] == 150
    assert read_blackrock(path.with_suffix(""), segment_index=1).sizes["time"] == 150  # basename: every .nsX
    with pytest.raises(ValueError, match=r"segment_index=2 is out of range.*2 segment\(s\).*0\.\.1"):
        read_blackrock(path, segment_index=2)


def test_blackrock_utah_with_nev_and_no_scaling(shared_data):
    folder = shared_data("blackrock_l101210_utah")
    rec = read_blackrock(folder / "l101210-001.ns2", nev_file=folder / "l101210-001-02.nev")
    r = _neo("BlackrockRawIO", filename=str(folder / "l101210-001"), nsx_to_load=2,
             nev_override=str(folder / "l101210-001-02"))
    raw, uv = _neo_uV(r, 0)
    assert rec.shape == (3640, 6) and rec.attrs["sampling_frequency"] == 1000.0
    np.testing.assert_array_equal(rec.values, raw)
    np.testing.assert_allclose(_uV(rec), uv, rtol=1e-6)
    # NSx 2.1 without a matching .nev: no scaling, said loudly
    with pytest.warns(UserWarning, match="NOT known to be µV"):
        bare = read_neo(shared_data("blackrock_mne_nsx_headers") / "test_NEURALSG_raw.ns3")
    assert bare.attrs["source"]["units"] == "" and np.all(bare.gain_to_uV.values == 1.0)


# ------------------------------------------------------------------ Plexon


def _plx_blocks_reference(r, stream_id):
    """Reference traces: neo's parsed PLX data blocks concatenated in file order (a plain loop)."""
    sc = r.header["signal_channels"]
    cols = []
    for cid in sc[sc["stream_id"] == stream_id]["id"]:
        blocks = r._data_blocks[5][int(cid)]
        cols.append(np.concatenate([r._memmap[b["pos"]:b["pos"] + b["size"]].view("<i2") for b in blocks]))
    return np.column_stack(cols)


def test_plexon_chunks_match_file_blocks(shared_data):
    path = shared_data("plexon_sdk_plx_samples") / "opx141ch1to3analogOnly003.plx"
    r = _neo("PlexonRawIO", filename=str(path), progress_bar=False)
    table = list_streams(path)
    assert table["stream_id"].tolist() == ["FP", "SPKC", "WB"]
    assert table["num_samples"].tolist() == [7950, 317600, 318000]
    for sid in ("WB", "FP"):
        with pytest.warns(UserWarning, match="not volts"):
            rec = read_neo(path, stream=sid, chunk_size=997)  # chunk borders fall inside blocks
        ref = _plx_blocks_reference(r, sid)
        np.testing.assert_array_equal(rec.values, ref)
        np.testing.assert_array_equal(rec.isel(channel=[-1]).values, ref[:, [-1]])
    # neo's own chunked read is wrong when PLX blocks differ in size (spkfn reads around it):
    # here neo's whole-stream read equals the blocks for WB ...
    wb_index = table["stream_id"].tolist().index("WB")
    np.testing.assert_array_equal(r.get_analogsignal_chunk(0, 0, None, None, wb_index), _plx_blocks_reference(r, "WB"))
    # ... but a read starting inside the stream is shifted (or fails)
    try:
        part = r.get_analogsignal_chunk(0, 0, 9936, 14904, wb_index)
    except ValueError:
        part = None
    assert part is None or not np.array_equal(part, _plx_blocks_reference(r, "WB")[9936:14904])


def test_plexon_broken_headers_and_spike_only(shared_data):
    folder = shared_data("plexon_sdk_plx_samples")
    with pytest.raises(NeoReadError, match=r"PlexonRawIO could not read .*ts_freq_zero\.plx.*'plexon'.*UnboundLocalError"):
        read_neo(folder / "ts_freq_zero.plx")
    with pytest.raises(NeoReadError, match="no continuous signal stream"):
        read_neo(folder / "opx141spkOnly004.plx")


# ------------------------------------------------------------------ Neuralynx


def test_neuralynx_segments(shared_data):
    folder = shared_data("neuralynx_mne_unconnected") / "csc_2kHz_macro"
    r = _neo("NeuralynxRawIO", dirname=str(folder))
    assert r.segment_count(0) == 3
    sizes = []
    for seg in range(3):
        rec = read_neo(folder, segment_index=seg)
        raw, uv = _neo_uV(r, 0, seg=seg)
        np.testing.assert_array_equal(rec.values, raw)
        np.testing.assert_allclose(_uV(rec), uv, rtol=1e-6)
        assert float(rec.time[0]) == pytest.approx(r.get_signal_t_start(0, seg, 0))
        sizes.append(rec.sizes["time"])
    assert sizes == [3072, 5120, 3499]
    assert rec.channel_name.values.tolist() == ["LAHC1", "LAHC2", "LAHC3", "xAIR1", "xEKG1"]
    assert rec.attrs["sampling_frequency"] == 2000.0
    with pytest.raises(ValueError, match="segment_index=3 is out of range"):
        read_neo(folder, segment_index=3)


def test_neuralynx_gaps_and_mixed_rates_explained(shared_data):
    root = shared_data("neuralynx_mne_unconnected")
    with pytest.raises(NeoReadError, match=r"(?s)with_gaps.*3 timestamp gaps.*neo_kwargs=\{'gap_tolerance_ms'"):
        read_neo(root / "with_gaps")
    rec = read_neo(root / "with_gaps", neo_kwargs={"gap_tolerance_ms": 1000.0})
    assert rec.sizes["channel"] == 2
    with pytest.raises(ValueError, match="sub-folders"):
        read_neo(root)


# ------------------------------------------------------------------ MEAs


@pytest.mark.parametrize("name, n_ch, n", [("biocam_hw3.0_fw1.6.brw", 36, 19754),
                                           ("biocam_hw3.0_fw1.7.0.12_raw.brw", 100, 5000)])
def test_biocam(shared_data, name, n_ch, n):
    pytest.importorskip("h5py")
    import probeinterface as pi

    path = shared_data("biocam_probeinterface_test") / name
    rec = read_neo(path)
    r = _neo("BiocamRawIO", filename=str(path))
    raw, uv = _neo_uV(r, 0)
    assert rec.shape == (n, n_ch) and rec.dtype == np.uint16
    np.testing.assert_array_equal(rec.values, raw)
    np.testing.assert_allclose(_uV(rec), uv, rtol=1e-5, atol=1e-3)
    probe = pi.read_3brain(path)
    np.testing.assert_array_equal(np.column_stack([rec.x, rec.y]), probe.contact_positions)


def test_maxwell_fails_clearly(shared_data):
    pytest.importorskip("h5py")
    path = shared_data("maxwell_probeinterface_test") / "data.raw.h5"
    assert detect_format(path) == "maxwell"
    with pytest.raises(NeoReadError, match="rec_name"):
        read_neo(path)
    table = list_streams(path, neo_kwargs={"rec_name": "rec0000"})
    assert table["stream_id"].tolist() == [f"well00{i}" for i in range(6)]
    assert set(table["num_channels"]) == {16} and set(table["num_samples"]) == {10000}
    with pytest.raises(NeoReadError, match=r"could not read traces.*HDF5_PLUGIN_PATH"):
        read_neo(path, stream="well000", neo_kwargs={"rec_name": "rec0000"})


# ------------------------------------------------------------------ raw binary + info.json


def test_locust_two_segments_equal_raw_bytes(shared_data):
    folder = shared_data("tridesclous_locust_tetrode")
    assert detect_format(folder) == "rawbinary"
    table = list_streams(folder)
    assert table["num_segments"].tolist() == [2] and table["num_channels"].tolist() == [4]
    for seg, name in enumerate(["locust_trial_01.raw", "locust_trial_02.raw"]):
        with pytest.warns(UserWarning, match="not volts"):
            rec = read_neo(folder, segment_index=seg)
        raw = np.fromfile(folder / name, dtype="int16").reshape(-1, 4)
        np.testing.assert_array_equal(rec.values, raw)
        assert rec.shape == (431548, 4) and rec.attrs["sampling_frequency"] == 15000.0
        same = read_binary(folder / name, sampling_frequency=15000.0, num_channels=4, dtype="int16")
        np.testing.assert_array_equal(rec.isel(time=slice(1000, 31000)).values,
                                      same.isel(time=slice(1000, 31000)).values)
        assert rec.attrs["source"]["path"].endswith(name)
    with pytest.raises(ValueError, match=r"segment_index=2 is out of range.*2 segment\(s\)"):
        read_neo(folder, segment_index=2)


def test_rawbinary_without_info_json(tmp_path):
    x = np.arange(60, dtype="float32").reshape(20, 3)
    x.tofile(tmp_path / "x.dat")
    with pytest.raises(ValueError, match="needs.*nb_channel"):
        read_neo(tmp_path / "x.dat", format="rawbinary")
    with pytest.warns(UserWarning, match="not volts"):
        rec = read_neo(tmp_path / "x.dat", format="RawBinarySignalRawIO",
                       neo_kwargs={"dtype": "float32", "sampling_rate": 100.0, "nb_channel": 3})
    np.testing.assert_array_equal(rec.values, x)


# ------------------------------------------------------------------ errors and formats


def test_errors_missing_unknown_nwb(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_neo(tmp_path / "nothing.bin")
    (tmp_path / "a.xyz").write_bytes(b"\0" * 10)
    with pytest.raises(ValueError, match="unknown format 'nosuchformat'.*spikeglx"):
        read_neo(tmp_path / "a.xyz", format="nosuchformat")
    with pytest.raises(ValueError, match="cannot tell the format of 'a.xyz'.*format="):
        read_neo(tmp_path / "a.xyz")
    (tmp_path / "f.nwb").write_bytes(b"\0")
    with pytest.raises(ValueError, match="read_nwb"):
        read_neo(tmp_path / "f.nwb")
    with pytest.raises(ValueError, match="segment_index must be an integer in"):
        read_neo(tmp_path / "a.xyz", format="rawbinary", segment_index=-1)


def test_neo_parse_failure_names_file_and_format(tmp_path):
    bad = tmp_path / "junk.rhd"
    bad.write_bytes(b"not an intan file at all" * 10)
    with pytest.raises(NeoReadError, match=r"IntanRawIO could not read .*junk\.rhd.*format 'intan'"):
        read_neo(bad)


def test_formats_table_and_aliases():
    table = neo_formats()
    for name in ("spikeglx", "openephys", "openephys_legacy", "intan", "blackrock", "plexon", "neuralynx",
                 "biocam", "maxwell", "rawbinary"):
        assert name in table.index
        if name != "openephys":
            assert table.loc[name, "rawio"] in {c.__name__ for c in neo.rawio.rawiolist}
    assert table.loc["spikeglx", "probe_from_files"]


def test_thread_safe_list_is_rawios():
    from spkfn.io.neo_io import _THREAD_SAFE

    assert _THREAD_SAFE <= {c.__name__ for c in neo.rawio.rawiolist}


def test_locked_reader_gives_same_values(shared_data, monkeypatch):
    import spkfn.io.neo_io as m

    folder = shared_data("openephys_legacy_v067_example") / "Record Node 101"
    free = read_neo(folder, chunk_size=5000).data.compute(scheduler="threads", num_workers=4)
    monkeypatch.setattr(m, "_THREAD_SAFE", frozenset())
    locked = read_neo(folder, chunk_size=5000)
    with dask.config.set(scheduler="threads", num_workers=4):
        np.testing.assert_array_equal(locked.values, free)


def test_neo_recording_round_trips_through_zarr(shared_data, tmp_path):
    from spkfn.io import read_zarr, write_zarr

    rec = read_spikeglx(shared_data("spikeglx_noise4sam_truncated") / "Noise4Sam_g0", chunk_size=500)
    back = read_zarr(write_zarr(rec, tmp_path / "r.zarr", progress=False))
    np.testing.assert_array_equal(back.values, rec.values)
    assert back.attrs["source"] == rec.attrs["source"]
    assert float(back.time[0]) == pytest.approx(float(rec.time[0]))
    np.testing.assert_array_equal(back.y.values, rec.y.values)
    assert back.channel_name.values.tolist() == rec.channel_name.values.tolist()
