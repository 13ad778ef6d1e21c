"""run_sorter: recording checks, the run record, folders, errors, install messages."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from spkfn.io import from_array, linear_probe, sorting_from_arrays
from spkfn.sorting import SORTERS, SorterError, SorterNotInstalledError, SorterSpec, run_sorter
from spkfn.sorting.params import Param
from spkfn.sorting.run import check_recording_for_sorting, log_tail

FS = 30000.0


def _rec(n_samples=60000, n_channels=4, *, geometry=True, dtype="int16", seed=0):
    x = np.random.default_rng(seed).normal(0, 20, size=(n_samples, n_channels)).astype(dtype)
    kw = {"probe": linear_probe(num_channels=n_channels)} if geometry else {}
    return from_array(x, sampling_frequency=FS, **kw)


def _fake_runner(recording, *, params, folder, seed, n_jobs, progress):
    """Plants one spike per `every` samples on the first channel; unit ids from the params."""
    n = recording.sizes["time"]
    st = np.arange(100, n, params["every"])
    units = np.where(np.arange(st.size) % 2 == 0, 7, 3)
    (folder / "fake.log").write_text(f"channels={recording.sizes['channel']} seed={seed} n_jobs={n_jobs}\n")
    if params["fail"]:
        raise SorterError(f"fake sorter failed\n{log_tail(folder / 'fake.log')}")
    if params["every"] > n:
        return sorting_from_arrays([], [], sampling_frequency=FS, num_samples=n)
    return sorting_from_arrays(st, units, sampling_frequency=FS, num_samples=n)


FAKE = SorterSpec(
    name="fake",
    runner=_fake_runner,
    params=(Param("every", int, 3000, "detection", "spike spacing", min=1),
            Param("fail", bool, False, "other", "raise a SorterError")),
    install_hint="",
    min_duration_s=1.0,
)


@pytest.fixture
def fake_sorter(monkeypatch):
    monkeypatch.setitem(SORTERS, "fake", FAKE)
    return "fake"


def test_run_records_params_seed_and_version(fake_sorter, tmp_path):
    rec = _rec()
    s = run_sorter(rec, sorter=fake_sorter, params={"every": 6000}, folder=tmp_path / "run", seed=3, n_jobs=1)
    assert s.sizes["spike"] == 10
    assert s.unit.values.tolist() == [3, 7]
    assert json.loads(s.attrs["sorter_params"]) == {"every": 6000, "fail": False}
    assert s.attrs["sorter"] == "fake" and s.attrs["seed"] == 3 and s.attrs["n_jobs"] == 1
    assert s.attrs["num_samples"] == 60000 and s.attrs["wall_time_s"] >= 0
    record = json.loads((tmp_path / "run" / "spkfn_run.json").read_text())
    assert record["params"] == {"every": 6000, "fail": False} and record["num_spikes"] == 10
    assert (tmp_path / "run" / "fake.log").read_text() == "channels=4 seed=3 n_jobs=1\n"
    assert s.attrs["folder"] == str(tmp_path / "run")


def test_sorting_round_trips_through_zarr(fake_sorter, tmp_path):
    from spkfn.io import read_zarr, write_zarr

    s = run_sorter(_rec(), sorter=fake_sorter, params={"every": 6000})
    assert "folder" not in s.attrs
    back = read_zarr(write_zarr(s, tmp_path / "s.zarr", progress=False))
    assert np.array_equal(back.sample_index.values, s.sample_index.values)
    assert json.loads(back.attrs["sorter_params"]) == {"every": 6000, "fail": False}


def test_temporary_folder_removed_after_success_kept_after_failure(fake_sorter, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    run_sorter(_rec(), sorter=fake_sorter)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SorterError, match=r"(?s)fake sorter failed\nchannels=4.*folder is kept for inspection"):
        run_sorter(_rec(), sorter=fake_sorter, params={"fail": True})
    kept = list(tmp_path.iterdir())
    assert len(kept) == 1 and (kept[0] / "fake.log").exists()


def test_no_spikes_gives_empty_sorting_with_warning(fake_sorter):
    with pytest.warns(UserWarning, match="fake found no spikes"):
        s = run_sorter(_rec(), sorter=fake_sorter, params={"every": 10**9})
    assert s.sizes["spike"] == 0 and s.sizes["unit"] == 0


def test_params_are_validated_before_anything_runs(fake_sorter):
    with pytest.raises(ValueError, match=r"unknown parameter 'evry'.*did you mean 'every'"):
        run_sorter(_rec(), sorter=fake_sorter, params={"evry": 2})
    with pytest.raises(ValueError, match=r"'every' of sorter 'fake' must be an integer in \[1, inf\); got 0"):
        run_sorter(_rec(), sorter=fake_sorter, params={"every": 0})


def test_no_geometry_is_a_clear_error(fake_sorter):
    with pytest.raises(ValueError, match=r"no channel geometry.*spkfn.io.set_probe"):
        run_sorter(_rec(geometry=False), sorter=fake_sorter)


def test_too_short_is_a_clear_error(fake_sorter):
    with pytest.raises(ValueError, match=r"too short to sort: 15000 samples \(0.5 s\).*at least 1 s \(30000 samples\)"):
        run_sorter(_rec(n_samples=15000), sorter=fake_sorter)


def test_kilosort4_needs_two_seconds():
    with pytest.raises(ValueError, match=r"too short.*at least 2 s"):
        run_sorter(_rec(n_samples=45000), sorter="kilosort4")


@pytest.mark.parametrize("value", [0, 32767])
def test_all_constant_is_a_clear_error(fake_sorter, value):
    rec = from_array(np.full((60000, 4), value, "int16"), sampling_frequency=FS, probe=linear_probe(num_channels=4))
    with pytest.raises(ValueError, match="every channel of the recording is constant"):
        run_sorter(rec, sorter=fake_sorter)


def test_constant_channels_are_dropped_with_warning(fake_sorter, tmp_path):
    x = np.random.default_rng(0).normal(0, 20, size=(60000, 5)).astype("int16")
    x[:, 1] = 0
    x[:, 3] = 32767  # saturated
    rec = from_array(x, sampling_frequency=FS, probe=linear_probe(num_channels=5))
    with pytest.warns(UserWarning, match=r"2 channel\(s\) are constant.*\['1', '3'\]"):
        s = run_sorter(rec, sorter=fake_sorter, folder=tmp_path)
    assert json.loads(s.attrs["dropped_channels"]) == ["1", "3"]
    assert (tmp_path / "fake.log").read_text().startswith("channels=3 ")


def test_nan_is_a_clear_error():
    x = np.random.default_rng(0).normal(size=(60000, 3)).astype("float32")
    x[100, 2] = np.nan
    rec = from_array(x, sampling_frequency=FS, probe=linear_probe(num_channels=3))
    with pytest.raises(ValueError, match=r"NaN or infinite values \(channels \['2'\]\)"):
        check_recording_for_sorting(rec)


def test_check_recording_is_seeded_and_keeps_good_recordings():
    rec = _rec()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, dropped = check_recording_for_sorting(rec, seed=5)
    assert dropped == [] and out is rec


def test_missing_package_gives_install_message(monkeypatch):
    spec = SorterSpec("ghost", "spkfn_no_such_module.runner:run", (), import_name="spkfn_no_such_module",
                      install_hint="Ghost is not installed: `pip install ghost-sorter`.")
    monkeypatch.setitem(SORTERS, "ghost", spec)
    with pytest.raises(SorterNotInstalledError, match=r"pip install ghost-sorter"):
        run_sorter(_rec(), sorter="ghost")


def test_install_messages_of_external_sorters_say_how(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("kilosort", "mountainsort5") else real(name, *a))
    with pytest.raises(SorterNotInstalledError, match=r"pip install torch==2\.13\.0.*spkfn\[kilosort4\]"):
        run_sorter(_rec(), sorter="kilosort4")
    with pytest.raises(SorterNotInstalledError, match=r"spkfn\[mountainsort5\].*SpikeInterface"):
        run_sorter(_rec(), sorter="mountainsort5")


def test_native_sorter_is_registered_and_unknown_names_are_refused():
    assert "spkfn" in SORTERS
    with pytest.raises(ValueError, match=r"unknown sorter 'spkfm'; registered sorters: \[.*'spkfn'"):
        run_sorter(_rec(), sorter="spkfm")


def test_bad_seed_and_n_jobs(fake_sorter):
    with pytest.raises(ValueError, match="seed must be an integer"):
        run_sorter(_rec(), sorter=fake_sorter, seed=1.5)
    with pytest.raises(ValueError, match="n_jobs must be >= 1"):
        run_sorter(_rec(), sorter=fake_sorter, n_jobs=0)
