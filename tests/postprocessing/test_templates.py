import numpy as np
import pytest

from spkfn.generate import ground_truth_recording
from spkfn.io import from_array, sorting_from_arrays
from spkfn.postprocessing import estimate_templates, select_spikes_per_unit


@pytest.fixture(scope="module")
def gt():
    return ground_truth_recording(duration_s=10.0, num_channels=16, num_units=5, noise_uV=0.01, seed=2,
                                  amplitude_jitter=0.0, firing_rate_hz=(2.0, 5.0))


def test_recovers_generated_templates(gt):
    rec, sorting, truth = gt
    ms_before = truth.attrs["nbefore"] / 30.0
    ms_after = (truth.sizes["sample"] - truth.attrs["nbefore"]) / 30.0
    est = estimate_templates(rec, sorting, ms_before=ms_before, ms_after=ms_after, max_spikes_per_unit=None,
                             progress=False)
    assert est.shape == truth.shape
    assert est.unit.values.tolist() == truth.unit.values.tolist()
    # Near-noiseless data: the mean equals the planted template up to spikes of other units
    # that overlap the window (a few % of the largest template).
    biggest = float(np.abs(truth.values).max())
    for u in truth.unit.values:
        t = truth.sel(unit=u).values
        e = est.sel(unit=u).values
        assert np.abs(e - t).max() < 0.05 * biggest
        assert np.corrcoef(e.ravel(), t.ravel())[0, 1] > 0.99
        assert est.sparsity.sel(unit=u).values[np.argmax(np.ptp(t, axis=0))]


def test_chunking_and_jobs_do_not_change_the_result(gt):
    rec, sorting, _ = gt
    a = estimate_templates(rec, sorting, max_spikes_per_unit=20, seed=1, progress=False, chunk_size=7000, n_jobs=1)
    b = estimate_templates(rec, sorting, max_spikes_per_unit=20, seed=1, progress=False, chunk_size=30011, n_jobs=2)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.num_spikes.values.tolist() == [min(20, n) for n in np.bincount(sorting.unit_index.values)]


def test_std_and_edges():
    x = np.zeros((1000, 2), "float32")
    x[100, 0], x[500, 0] = -4.0, -8.0
    rec = from_array(x, sampling_frequency=10000.0, gain_to_uV=[0.5, 1.0])
    s = sorting_from_arrays([2, 100, 500, 999], [0, 0, 0, 0], sampling_frequency=10000.0)
    t, sd = estimate_templates(rec, s, ms_before=1.0, ms_after=1.0, return_std=True, progress=False)
    assert int(t.num_spikes[0]) == 2  # spikes at 2 and 999 are too close to the edges
    assert float(t[0, 10, 0]) == pytest.approx(-3.0)  # mean of -2 and -4 µV (gain 0.5)
    assert float(sd[0, 10, 0]) == pytest.approx(1.0)


def test_select_spikes_per_unit_is_seeded_and_bounded():
    rng = np.random.default_rng(0)
    s = sorting_from_arrays(np.sort(rng.integers(0, 10**6, 5000)), rng.integers(0, 7, 5000), sampling_frequency=1.0)
    a = select_spikes_per_unit(s, max_spikes_per_unit=100, seed=3)
    assert np.array_equal(a, select_spikes_per_unit(s, max_spikes_per_unit=100, seed=3))
    assert not np.array_equal(a, select_spikes_per_unit(s, max_spikes_per_unit=100, seed=4))
    assert np.bincount(s.unit_index.values[a]).tolist() == [100] * 7


def test_mismatched_rates():
    rec = from_array(np.zeros((100, 1), "float32"), sampling_frequency=1000.0)
    s = sorting_from_arrays([10], [0], sampling_frequency=2000.0)
    with pytest.raises(ValueError, match="sampling rate"):
        estimate_templates(rec, s, progress=False)
