import numpy as np
import pytest

from spkfn.detection import PEAK_DTYPE, select_peaks


def _peaks(channels, amplitudes=None):
    p = np.zeros(len(channels), PEAK_DTYPE)
    p["sample_index"] = np.arange(len(channels)) * 7
    p["channel_index"] = channels
    p["amplitude"] = -50.0 if amplitudes is None else amplitudes
    return p


def test_uniform_is_a_sorted_seeded_subset(rng):
    peaks = _peaks(rng.integers(0, 10, 5000))
    sub, idx = select_peaks(peaks, n_peaks=300, seed=1, return_indices=True)
    assert sub.size == 300 and np.unique(idx).size == 300
    assert np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(sub, peaks[idx])
    np.testing.assert_array_equal(select_peaks(peaks, n_peaks=300, seed=1), sub)
    assert not np.array_equal(select_peaks(peaks, n_peaks=300, seed=2), sub)
    # every peak has the same chance: over many seeds each one is kept ~300/5000 of the time
    hits = np.zeros(peaks.size)
    for seed in range(200):
        hits[select_peaks(peaks, n_peaks=300, seed=seed, return_indices=True)[1]] += 1
    assert abs(hits.mean() / 200 - 0.06) < 1e-9 and hits.std() / 200 < 0.03


def test_by_channel_balances_and_redistributes():
    # channel 0: 1000 peaks, channel 1: 5, channel 2: 100
    peaks = _peaks(np.r_[np.zeros(1000, int), np.ones(5, int), np.full(100, 2)])
    sub = select_peaks(peaks, method="by_channel", n_peaks=105, seed=0)
    assert np.bincount(sub["channel_index"]).tolist() == [50, 5, 50]
    sub = select_peaks(peaks, method="by_channel", n_peaks=106, seed=0)
    assert sub.size == 106 and sorted(np.bincount(sub["channel_index"]).tolist()) == [5, 50, 51]


def test_smart_sampling_flattens_amplitudes(rng):
    # 95 % small peaks near threshold, 5 % large ones
    amp = np.where(rng.random(20000) < 0.95, rng.uniform(-60, -50, 20000), rng.uniform(-400, -300, 20000))
    peaks = _peaks(np.zeros(20000, int), amp.astype("float32"))
    uni = select_peaks(peaks, method="uniform", n_peaks=1000, seed=0)
    smart = select_peaks(peaks, method="smart_sampling_amplitudes", n_peaks=1000, seed=0)
    large = lambda p: np.mean(p["amplitude"] < -200)  # noqa: E731
    assert large(uni) < 0.1
    assert large(smart) > 0.5  # the 5 % of large amplitudes span most of the range


def test_all_peaks_when_asking_for_more_and_empty_input():
    peaks = _peaks([0, 1, 1])
    for method in ("uniform", "by_channel", "smart_sampling_amplitudes"):
        np.testing.assert_array_equal(select_peaks(peaks, method=method, n_peaks=10), peaks)
        empty = select_peaks(peaks[:0], method=method, n_peaks=10)
        assert empty.dtype == PEAK_DTYPE and empty.size == 0
    assert select_peaks(peaks, n_peaks=0).size == 0


@pytest.mark.parametrize("kwargs, match", [
    ({"method": "random"}, "method"),
    ({"n_peaks": -1}, "n_peaks"),
    ({"n_peaks": 2.5}, "n_peaks"),
])
def test_bad_arguments(kwargs, match):
    kwargs.setdefault("n_peaks", 2)
    with pytest.raises(ValueError, match=match):
        select_peaks(_peaks([0, 1]), **kwargs)


def test_needs_a_peaks_array():
    with pytest.raises(ValueError, match="structured array"):
        select_peaks(np.arange(5), n_peaks=2)
    with pytest.raises(ValueError, match="channel_index"):
        select_peaks(np.zeros(3, [("sample_index", "int64")]), method="by_channel", n_peaks=2)
