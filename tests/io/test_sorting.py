import numpy as np
import pytest

from spkfn.io import (
    check_sorting,
    sorting_from_arrays,
    spike_times_s,
    spike_trains,
    spike_unit_ids,
    unit_counts,
    unit_table,
)


def test_sorting_layout_and_trains():
    s = sorting_from_arrays([50, 10, 30, 20, 10], ["b", "a", "b", "a", "b"], sampling_frequency=1000.0,
                            unit_ids=["a", "b", "c"], t_start_s=2.0)
    assert s.unit.values.tolist() == ["a", "b", "c"]
    assert s.sample_index.values.tolist() == [10, 10, 20, 30, 50]
    assert s.sample_index.dtype == np.int64
    assert spike_unit_ids(s).tolist() == ["a", "b", "a", "b", "b"]
    trains = spike_trains(s)
    assert trains["a"].tolist() == [10, 20]
    assert trains["b"].tolist() == [10, 30, 50]
    assert trains["c"].tolist() == []
    assert unit_counts(s).tolist() == [2, 3, 0]
    np.testing.assert_allclose(spike_times_s(s), 2.0 + np.array([10, 10, 20, 30, 50]) / 1000.0)
    check_sorting(s)


def test_unit_table_rates():
    s = sorting_from_arrays([1, 2, 3], [5, 5, 6], sampling_frequency=100.0, num_samples=200)
    t = unit_table(s)
    assert t.index.tolist() == [5, 6]
    assert t["num_spikes"].tolist() == [2, 1]
    assert t["firing_rate_hz"].tolist() == [1.0, 0.5]


def test_empty_sorting():
    s = sorting_from_arrays([], [], sampling_frequency=30000.0)
    assert s.sizes["spike"] == 0 and s.sizes["unit"] == 0
    assert spike_trains(s) == {}


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (([-1, 2], [0, 0]), {}, "negative"),
        (([1, 2], [0]), {}, "equal length"),
        (([1.5, 2], [0, 0]), {}, "integers"),
        (([1, 2], [0, 1]), {"unit_ids": [0, 0, 1]}, "unique"),
        (([1, 2], [0, 3]), {"unit_ids": [0, 1]}, "not in unit_ids"),
        (([1, 200], [0, 0]), {"num_samples": 100}, "num_samples"),
        (([1, 2], [0, 0]), {"sampling_frequency": 0}, "sampling_frequency"),
    ],
)
def test_bad_input(args, kwargs, message):
    kwargs = {"sampling_frequency": 1000.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        sorting_from_arrays(*args, **kwargs)


def test_check_sorting_detects_problems():
    s = sorting_from_arrays([1, 2, 3], [0, 1, 0], sampling_frequency=10.0)
    with pytest.raises(ValueError, match="not sorted"):
        check_sorting(s.assign(sample_index=("spike", np.array([3, 2, 1]))))
    with pytest.raises(ValueError, match="duplicate unit ids"):
        check_sorting(s.assign_coords(unit=[0, 0]))
    with pytest.raises(ValueError, match="xarray.Dataset"):
        check_sorting({"sample_index": [1]})
