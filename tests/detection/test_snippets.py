import numpy as np
import pytest

from spkfn.detection import PEAK_DTYPE, extract_snippets, neighbour_table
from spkfn.io import from_array, sorting_from_arrays

FS = 10000.0
LOC = [[0, 0], [0, 20], [0, 40], [30, 0], [30, 20]]


def _rec(rng, n=5000, **kw):
    x = rng.normal(size=(n, 5)).astype("float32")
    return x, from_array(x, sampling_frequency=FS, channel_locations=LOC, **kw)


def _peaks(samples, channels=0):
    p = np.zeros(len(samples), PEAK_DTYPE)
    p["sample_index"] = samples
    p["channel_index"] = channels
    return p


def test_channels_mode_equals_numpy_slicing_in_input_order(rng):
    x, rec = _rec(rng)
    samples = [4000, 20, 2500, 2501, 999]  # unsorted on purpose
    wf = extract_snippets(rec, _peaks(samples), ms_before=1.0, ms_after=2.0, channels=[4, 0], chunk_size=1000,
                          progress=False)
    assert wf.shape == (5, 30, 2) and wf.dtype == np.float32
    for k, s in enumerate(samples):
        np.testing.assert_array_equal(wf[k], x[s - 10:s + 20][:, [4, 0]])


def test_radius_mode_follows_the_neighbour_table(rng):
    x, rec = _rec(rng)
    peaks = _peaks([100, 3000], channels=[0, 4])
    table = neighbour_table(rec, radius_um=25.0)
    assert table[0].tolist() == [0, 1, -1] and table[4].tolist() == [4, 3, -1]
    wf = extract_snippets(rec, peaks, ms_before=0.5, ms_after=0.5, radius_um=25.0, progress=False)
    assert wf.shape == (2, 10, 3)
    np.testing.assert_array_equal(wf[0, :, :2], x[95:105][:, [0, 1]])
    assert np.all(wf[0, :, 2] == 0)  # padding
    np.testing.assert_array_equal(wf[1, :, :2], x[2995:3005][:, [4, 3]])


def test_scaled_to_uV_and_zero_beyond_edges():
    x = np.arange(40, dtype="int16").reshape(20, 2)
    rec = from_array(x, sampling_frequency=1000.0, gain_to_uV=[2.0, 1.0], offset_to_uV=[1.0, 0.0])
    wf = extract_snippets(rec, _peaks([1, 19]), ms_before=3, ms_after=2, channels=[0], progress=False)
    assert wf[0, :, 0].tolist() == [0.0, 0.0, 1.0, 5.0, 9.0]
    assert wf[1, :, 0].tolist() == [65.0, 69.0, 73.0, 77.0, 0.0]


def test_chunking_does_not_change_snippets(rng):
    _, rec = _rec(rng)
    peaks = _peaks(np.sort(rng.choice(5000, 300, replace=False)), rng.integers(0, 5, 300))
    a = extract_snippets(rec, peaks, radius_um=40, chunk_size=5000, progress=False)
    b = extract_snippets(rec, peaks, radius_um=40, chunk_size=333, n_jobs=2, progress=False)
    np.testing.assert_array_equal(a, b)


def test_from_a_sorting(rng):
    x, rec = _rec(rng)
    sorting = sorting_from_arrays([50, 400], [0, 1], sampling_frequency=FS)
    wf = extract_snippets(rec, sorting, ms_before=0.2, ms_after=0.3, progress=False)
    np.testing.assert_array_equal(wf[1], x[398:403])
    with pytest.raises(ValueError, match="radius_um cannot be used"):
        extract_snippets(rec, sorting, radius_um=30, progress=False)


def test_empty_peaks_give_a_typed_empty_array(rng):
    _, rec = _rec(rng)
    wf = extract_snippets(rec, _peaks([]), ms_before=1, ms_after=1, radius_um=25, progress=False)
    assert wf.shape == (0, 20, 3) and wf.dtype == np.float32


@pytest.mark.parametrize("kwargs, match", [
    ({"channels": [7]}, "channels must be"),
    ({"channels": [0], "radius_um": 20}, "either"),
    ({"ms_before": 0, "ms_after": 0}, "at least one sample"),
    ({"ms_before": -1}, "ms_before"),
    ({"radius_um": -1}, "radius_um"),
])
def test_bad_arguments(rng, kwargs, match):
    _, rec = _rec(rng)
    with pytest.raises(ValueError, match=match):
        extract_snippets(rec, _peaks([10]), progress=False, **kwargs)


def test_peaks_outside_the_recording_or_without_geometry(rng):
    _, rec = _rec(rng)
    with pytest.raises(ValueError, match="sample_index must be in"):
        extract_snippets(rec, _peaks([5000]), progress=False)
    with pytest.raises(ValueError, match="channel_index must be in"):
        extract_snippets(rec, _peaks([10], channels=9), radius_um=30, progress=False)
    bare = from_array(np.zeros((100, 2), "float32"), sampling_frequency=FS)
    with pytest.raises(ValueError, match="no geometry"):
        extract_snippets(bare, _peaks([10]), radius_um=30, progress=False)
