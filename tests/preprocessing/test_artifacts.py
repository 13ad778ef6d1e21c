import dask.array as da
import numpy as np
import pytest

from spkfn.io import from_array
from spkfn.preprocessing.artifacts import (
    intervals_mask,
    merge_intervals,
    remove_artifacts,
    silence_periods,
)

FS = 30000.0


def _rec(x, chunk=None, **kw):
    data = x if chunk is None else da.from_array(x, chunks=(chunk, x.shape[1]))
    return from_array(data, sampling_frequency=FS, **kw)


def _artifact(L=60):
    k = np.arange(L)
    return (800 * np.exp(-k / 10.0) * np.cos(k / 3.0))[:, None] * np.array([1.0, -0.5, 2.0])[None, :]


TRIG = np.array([1000, 4000, 7000, 7030, 12000, 29990])  # two overlap; the last is cut by the end


def _with_artifacts(base, trig=TRIG, nb=15, L=60, scale=None):
    x = base.astype(np.float64).copy()
    art = _artifact(L)
    for k, t in enumerate(trig):
        a, b = t - nb, min(t - nb + L, x.shape[0])
        x[a:b] += art[: b - a] * (1.0 if scale is None else scale[k])
    return x.astype("float32")


def test_zeros_blank_exactly_the_windows():
    x = np.random.default_rng(0).normal(size=(30000, 3)).astype("float32")
    out = remove_artifacts(_rec(x, chunk=5000), trigger_samples=TRIG, ms_before=0.5, ms_after=1.5).values
    mask = np.zeros(30000, dtype=bool)
    for t in TRIG:
        mask[max(0, t - 15):min(30000, t + 45)] = True
    assert np.all(out[mask] == 0)
    assert np.array_equal(out[~mask], x[~mask])


def test_trigger_times_on_the_session_clock():
    x = np.random.default_rng(1).normal(size=(30000, 3)).astype("float32")
    rec = _rec(x, t_start_s=100.0)
    by_time = remove_artifacts(rec, triggers_s=100.0 + TRIG / FS, mode="zeros").values
    by_sample = remove_artifacts(rec, trigger_samples=TRIG, mode="zeros").values
    assert np.array_equal(by_time, by_sample)


def test_zeros_means_zero_microvolts_on_integer_data_with_offset():
    x = np.full((3000, 2), 2048, dtype="int16")
    rec = _rec(x, gain_to_uV=0.5, offset_to_uV=-1024.0)  # raw 2048 -> 0 µV
    out = remove_artifacts(rec, trigger_samples=[100], ms_before=0, ms_after=1.0)
    assert out.dtype == np.int16
    assert np.all(out.values[100:130] == 2048)


def test_linear_bridge_restores_a_ramp():
    ramp = np.linspace(-100, 100, 30000)[:, None] * np.array([1.0, 2.0, -1.0])[None, :]
    x = _with_artifacts(ramp)
    out = remove_artifacts(_rec(x, chunk=4000), trigger_samples=TRIG[:-1], ms_before=0.5, ms_after=1.5,
                           mode="linear").values
    assert np.abs(out[:29900] - ramp[:29900]).max() < 1e-3


def test_cubic_bridge_restores_a_cubic_and_beats_linear():
    t = np.linspace(-1, 1, 30000)
    cubic = (300 * t**3 - 200 * t**2 + 50 * t)[:, None] * np.ones((1, 3))
    x = _with_artifacts(cubic)
    kw = dict(trigger_samples=TRIG[:-1], ms_before=0.5, ms_after=1.5)
    out = remove_artifacts(_rec(x, chunk=4000), mode="cubic", fit_ms=1.0, **kw).values
    assert np.abs(out[:29900] - cubic[:29900]).max() < 1e-2
    lin = remove_artifacts(_rec(x, chunk=4000), mode="linear", **kw).values
    assert np.abs(lin - cubic).max() > np.abs(out[:29900] - cubic[:29900]).max()


def test_average_subtracts_the_template_and_keeps_the_signal():
    rng = np.random.default_rng(2)
    signal = rng.normal(size=(60000, 3)) * 10
    trig = np.arange(500, 59000, 997)
    x = _with_artifacts(signal, trig=trig)
    out = remove_artifacts(_rec(x, chunk=7000), trigger_samples=trig, ms_before=0.5, ms_after=1.5,
                           mode="average").values
    # the template is the artifact plus the average signal (about 10 / sqrt(59) µV of noise)
    assert np.abs(out - signal).max() < 10.0
    assert np.abs(x - signal).max() > 500


def test_average_with_labels_uses_one_template_per_label():
    rng = np.random.default_rng(3)
    signal = rng.normal(size=(60000, 3))
    trig = np.arange(500, 59000, 997)
    labels = np.where(np.arange(trig.size) % 2 == 0, "low", "high")
    scale = np.where(labels == "low", 1.0, 3.0)
    x = _with_artifacts(signal, trig=trig, scale=scale)
    kw = dict(trigger_samples=trig, ms_before=0.5, ms_after=1.5, mode="average")
    out = remove_artifacts(_rec(x), labels=labels, **kw).values
    assert np.abs(out - signal).max() < 2.0
    pooled = remove_artifacts(_rec(x), **kw).values  # one template for both amplitudes: residuals remain
    assert np.abs(pooled - signal).max() > 100


@pytest.mark.parametrize("mode", ["zeros", "linear", "cubic", "average"])
def test_chunk_size_invariance(mode):
    rng = np.random.default_rng(4)
    x = _with_artifacts(rng.normal(size=(30000, 3)) * 10)
    a = remove_artifacts(_rec(x, chunk=1000), trigger_samples=TRIG, mode=mode).values
    b = remove_artifacts(_rec(x, chunk=13000), trigger_samples=TRIG, mode=mode).values
    c = remove_artifacts(_rec(x), trigger_samples=TRIG, mode=mode, chunk_size=30000).values
    assert np.array_equal(a, b)
    assert np.array_equal(a, c)


def test_remove_artifacts_bad_input():
    rec = _rec(np.zeros((3000, 2), "float32"), t_start_s=5.0)
    with pytest.raises(ValueError, match="outside the recording"):
        remove_artifacts(rec, triggers_s=[5.01, 4.9])
    with pytest.raises(ValueError, match=r"trigger_samples has 1 value\(s\) outside the recording \[0, 3000\)"):
        remove_artifacts(rec, trigger_samples=[10, 3000])
    with pytest.raises(ValueError, match="exactly one"):
        remove_artifacts(rec, triggers_s=[5.01], trigger_samples=[1])
    with pytest.raises(ValueError, match="exactly one"):
        remove_artifacts(rec)
    with pytest.raises(ValueError, match="ms_before"):
        remove_artifacts(rec, trigger_samples=[10], ms_before=-1)
    with pytest.raises(ValueError, match="labels"):
        remove_artifacts(rec, trigger_samples=[10, 20], labels=["a"], mode="average")
    with pytest.raises(ValueError, match="mode"):
        remove_artifacts(rec, trigger_samples=[10], mode="spline")
    with pytest.raises(ValueError, match="whole window"):
        remove_artifacts(rec, trigger_samples=[2], mode="average")


def test_interval_helpers():
    s, e = merge_intervals([5, 0, 8, 20], [9, 3, 10, 21])
    assert s.tolist() == [0, 5, 20] and e.tolist() == [3, 10, 21]
    assert intervals_mask(s, e, block_start=2, block_len=5).tolist() == [True, False, False, True, True]


# ----------------------------------------------------------------------------- silence_periods


def test_silence_zeros():
    x = np.random.default_rng(5).normal(size=(30000, 2)).astype("float32")
    rec = _rec(x, chunk=4000, t_start_s=2.0)
    out = silence_periods(rec, periods_s=[[2.1, 2.2], [2.15, 2.3], [2.9, 3.0]]).values
    mask = np.zeros(30000, dtype=bool)
    mask[3000:9000] = True
    mask[27000:30000] = True
    assert np.all(out[mask] == 0)
    assert np.array_equal(out[~mask], x[~mask])


def test_silence_noise_levels_seed_and_chunking():
    rng = np.random.default_rng(6)
    x = (rng.normal(size=(60000, 3)) * np.array([5.0, 10.0, 20.0])).astype("float32")
    periods = [[1000, 20000], [30000, 30010]]
    a = silence_periods(_rec(x, chunk=3000), period_samples=periods, mode="noise", seed=7).values
    b = silence_periods(_rec(x, chunk=25000), period_samples=periods, mode="noise", seed=7).values
    c = silence_periods(_rec(x), period_samples=periods, mode="noise", seed=8).values
    assert np.array_equal(a, b)
    assert not np.array_equal(a[1000:20000], c[1000:20000])
    assert np.allclose(a[1000:20000].std(axis=0), [5.0, 10.0, 20.0], rtol=0.05)
    assert np.abs(a[1000:20000] - x[1000:20000]).mean() > 1.0  # replaced, not kept
    assert np.array_equal(a[:1000], x[:1000]) and np.array_equal(a[20000:30000], x[20000:30000])
    given = silence_periods(_rec(x), period_samples=periods, mode="noise", noise_levels=[1.0, 1.0, 1.0], seed=7)
    assert np.allclose(given.values[1000:20000].std(axis=0), 1.0, rtol=0.05)


def test_silence_bad_input():
    rec = _rec(np.zeros((3000, 2), "float32"))
    with pytest.raises(ValueError, match="outside the recording"):
        silence_periods(rec, periods_s=[[0.05, 0.2]])
    with pytest.raises(ValueError, match="start < end"):
        silence_periods(rec, period_samples=[[100, 50]])
    with pytest.raises(ValueError, match="pairs"):
        silence_periods(rec, period_samples=[1, 2, 3])
    with pytest.raises(ValueError, match="noise_levels"):
        silence_periods(rec, period_samples=[[1, 2]], mode="noise", noise_levels=[1.0])
    with pytest.raises(ValueError, match="exactly one"):
        silence_periods(rec)
