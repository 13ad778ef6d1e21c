import numpy as np
import pytest

from spkfn.generate import ground_truth_recording
from spkfn.postprocessing import best_channels, estimate_templates, spike_amplitudes


def test_amplitudes_match_generated_truth():
    rec, gt, truth = ground_truth_recording(duration_s=5.0, num_channels=16, num_units=4, noise_uV=0.01, seed=5,
                                           amplitude_jitter=0.1)
    amps = spike_amplitudes(rec, gt, truth, progress=False)
    chan, _ = best_channels(truth)
    np.testing.assert_array_equal(chan, gt.best_channel.values)
    # Each isolated spike's amplitude is its template's trough scaled by the spike's jitter.
    trough = truth.values.min(axis=(1, 2))
    expected = trough[gt.unit_index.values] * gt.amplitude_scale.values
    si = gt.sample_index.values
    gap = np.minimum(np.diff(si, prepend=-10**9), np.diff(si, append=10**12))
    isolated = (gap > 150) & ~np.isnan(amps)  # no other spike within 5 ms
    assert isolated.sum() > 50
    np.testing.assert_allclose(amps[isolated], expected[isolated], rtol=1e-3, atol=0.05)


def test_subsampling_and_chunk_invariance():
    rec, gt, _ = ground_truth_recording(duration_s=4.0, num_channels=8, num_units=3, seed=1)
    t = estimate_templates(rec, gt, progress=False)
    a = spike_amplitudes(rec, gt, t, max_spikes_per_unit=10, seed=2, progress=False, n_jobs=1)
    b = spike_amplitudes(rec.chunk({"time": 5000}), gt, t, max_spikes_per_unit=10, seed=2, progress=False, n_jobs=2)
    np.testing.assert_array_equal(a, b)
    assert np.bincount(gt.unit_index.values[~np.isnan(a)]).max() <= 10


def test_unit_mismatch():
    rec, gt, t = ground_truth_recording(duration_s=2.0, num_channels=8, num_units=3, seed=1)
    with pytest.raises(ValueError, match="same units"):
        spike_amplitudes(rec, gt, t.isel(unit=[0, 1]), progress=False)
