import json

import numpy as np
import probeinterface as pi
import pytest

from spkfn.io import (
    from_array,
    get_probe,
    linear_probe,
    multi_shank_probe,
    neuropixels1_probe,
    read_probe,
    set_probe,
    tetrode_probe,
)


def rec_of(n_channels, **kw):
    return from_array(np.zeros((100, n_channels), "int16"), sampling_frequency=30000.0, **kw)


def test_set_probe_sets_geometry_groups_and_json():
    probe = multi_shank_probe(num_shanks=2, num_channels_per_shank=4, shank_pitch_um=200.0, pitch_um=25.0)
    rec = set_probe(rec_of(8), probe)
    assert rec.group.values.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    np.testing.assert_allclose(rec.x.values, probe.contact_positions[:, 0])
    np.testing.assert_allclose(rec.y.values, probe.contact_positions[:, 1])
    assert json.loads(rec.attrs["probe"])["probes"]
    back = get_probe(rec)
    np.testing.assert_allclose(back.probes[0].contact_positions, probe.contact_positions)
    assert back.get_global_device_channel_indices()["device_channel_indices"].tolist() == list(range(8))


def test_wired_probe_maps_contacts_to_channels():
    probe = linear_probe(num_channels=4, pitch_um=10.0)
    probe.set_device_channel_indices([3, 2, 1, 0])  # contact 0 is wired to channel 3
    rec = set_probe(rec_of(4), probe)
    assert rec.y.values.tolist() == [30.0, 20.0, 10.0, 0.0]


def test_wiring_to_subset_of_device_uses_ranks():
    probe = linear_probe(num_channels=3, pitch_um=10.0)
    probe.set_device_channel_indices([10, 5, 7])
    rec = set_probe(rec_of(3), probe)
    # ranks: 10 -> 2, 5 -> 0, 7 -> 1
    assert rec.y.values.tolist() == [10.0, 20.0, 0.0]


def test_probe_survives_channel_selection():
    rec = set_probe(rec_of(4), tetrode_probe())
    sub = rec.isel(channel=[3, 1])
    pg = get_probe(sub)
    positions = np.concatenate([p.contact_positions for p in pg.probes])
    np.testing.assert_allclose(positions, np.column_stack([sub.x.values, sub.y.values]))
    ids = np.concatenate([p.contact_annotations["channel_id"] for p in pg.probes])
    assert ids.tolist() == ["3", "1"]


def test_contact_count_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="4 contacts but the recording has 8 channels"):
        set_probe(rec_of(8), tetrode_probe())
    with pytest.raises(ValueError, match="contacts"):
        from_array(np.zeros((10, 3), "int16"), sampling_frequency=1.0, probe=tetrode_probe())


def test_not_a_probe():
    with pytest.raises(TypeError, match="probeinterface Probe or ProbeGroup"):
        set_probe(rec_of(4), {"positions": []})


def test_generic_probe_from_geometry():
    rec = rec_of(3, channel_locations=[[0, 0], [0, 10], [0, 20]], group=[0, 0, 1])
    pg = get_probe(rec)
    assert len(pg.probes) == 2
    assert [p.get_contact_count() for p in pg.probes] == [2, 1]


def test_get_probe_without_geometry():
    with pytest.raises(ValueError, match="no channel geometry"):
        get_probe(rec_of(3))


def test_builtin_probes():
    np1 = neuropixels1_probe()
    assert np1.get_contact_count() == 384
    y = np1.contact_positions[:, 1]
    assert np.isclose(np.diff(np.unique(y)).min(), 20.0)  # 20 µm rows
    assert len(np.unique(np1.contact_positions[:, 0])) == 4  # staggered 2-column layout
    assert neuropixels1_probe(num_channels=64).get_contact_count() == 64
    with pytest.raises(ValueError, match="num_channels"):
        neuropixels1_probe(num_channels=500)
    assert tetrode_probe().get_contact_count() == 4
    lin = linear_probe(num_channels=32)
    assert np.allclose(np.diff(lin.contact_positions[:, 1]), 25.0)


def test_read_probe_files(tmp_path, shared_data):
    p = tmp_path / "probe.json"
    pg = pi.ProbeGroup()
    pg.add_probe(linear_probe(num_channels=4))
    pi.write_probeinterface(p, pg)
    assert read_probe(p).probes[0].get_contact_count() == 4
    meta_dir = shared_data("spikeglx_noise4sam_truncated")
    meta = sorted(meta_dir.rglob("*.ap.meta"))
    if meta:
        got = read_probe(meta[0])
        assert sum(q.get_contact_count() for q in got.probes) == 384
    with pytest.raises(FileNotFoundError):
        read_probe(tmp_path / "missing.json")
    bad = tmp_path / "probe.txt"
    bad.write_text("x")
    with pytest.raises(ValueError, match="unsupported probe file"):
        read_probe(bad)
