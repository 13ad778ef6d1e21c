"""read_binary must stay lazy, and writing a long recording's sidecar must not materialise its time axis."""

import re
import resource
import sys
from pathlib import Path

import dask.array as da
import numpy as np
import pytest

from spkfn.io import from_array, read_binary
from spkfn.io.binary import _sidecar

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads RssAnon from /proc")


def _anon_mib() -> float:
    return int(re.search(r"RssAnon:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024


def test_read_binary_does_not_load_the_file(tmp_path):
    path = tmp_path / "big.bin"
    n, c = 200_000, 160  # 64 MB of int16
    mm = np.memmap(path, dtype="int16", mode="w+", shape=(n, c))
    mm[::1000] = 7
    mm.flush()
    del mm
    before = _anon_mib()
    rec = read_binary(path, sampling_frequency=30000.0, num_channels=c, dtype="int16", chunk_size=10_000)
    grown = _anon_mib() - before
    assert grown < 16, f"read_binary allocated {grown:.0f} MiB for a 64 MiB file"
    assert int(rec.isel(time=slice(2000, 2001)).values[0, 0]) == 7  # and reads the right block
    assert rec.values.sum() == 7 * 200 * c


def test_sidecar_of_an_hour_long_lazy_recording_stays_small():
    n = 30000 * 3600
    rec = from_array(da.zeros((n, 1), dtype="int16", chunks=(1_000_000, 1)), sampling_frequency=30000.0,
                     t_start_s=12.0)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux: KiB)
    meta = _sidecar(rec, np.dtype("int16"))
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - peak_before
    assert meta["t_start_s"] == 12.0 and meta["num_samples"] == n
    assert grown < 200, f"the sidecar peaked {grown:.0f} MiB higher (the time axis is {n * 8 / 2**20:.0f} MiB)"
