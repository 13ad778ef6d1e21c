"""apply_pipeline: the registry contract, clear errors, recorded parameters, same result as chaining."""

import inspect

import numpy as np
import pytest
import xarray as xr

from spkfn.io import from_array
from spkfn.preprocessing import (
    STEPS,
    apply_pipeline,
    bandpass_filter,
    common_reference,
    resolve_pipeline,
    step_parameters,
)

FS = 30000.0


def _rec(n=20000, c=6):
    x = np.random.default_rng(0).normal(size=(n, c)).astype("float32")
    return from_array(x, sampling_frequency=FS, channel_locations=np.column_stack([np.zeros(c), np.arange(c) * 20.0]))


@pytest.mark.parametrize("name", sorted(STEPS))
def test_every_registered_step_follows_the_contract(name):
    """step(recording, *, keyword-only params): one positional parameter, then keyword-only ones."""
    params = list(inspect.signature(STEPS[name]).parameters.values())
    assert params[0].kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:]), name
    assert STEPS[name].__doc__ and "Examples" in STEPS[name].__doc__


def test_same_result_as_chaining_and_parameters_recorded():
    rec = _rec()
    steps = [{"bandpass_filter": {"freq_min_hz": 400.0, "freq_max_hz": 5000.0}}, {"common_reference": {"operator": "median"}}]
    out = apply_pipeline(rec, steps)
    manual = common_reference(bandpass_filter(rec, freq_min_hz=400.0, freq_max_hz=5000.0), operator="median")
    assert np.array_equal(out.values, manual.values)
    pipeline = out.attrs["pipeline"]
    assert [s["step"] for s in pipeline] == ["bandpass_filter", "common_reference"]
    assert pipeline[0]["params"] == {"freq_min_hz": 400.0, "freq_max_hz": 5000.0, "order": 5, "ftype": "butter",
                                     "direction": "forward-backward", "ripple_db": None, "attenuation_db": None,
                                     "margin_ms": None, "dtype": "float32"}
    assert pipeline[1]["params"]["reference"] == "global"  # default filled in
    assert [s["step"] for s in out.attrs["preprocessing"]] == ["bandpass_filter", "common_reference"]
    assert "pipeline" not in rec.attrs  # input untouched


def test_bare_names_and_none_params():
    rec = _rec(n=3000)
    out = apply_pipeline(rec, ["rectify", {"clip": {"max_value": 1.0}}, {"common_reference": None}])
    assert [s["step"] for s in out.attrs["pipeline"]] == ["rectify", "clip", "common_reference"]
    assert out.attrs["pipeline"][2]["params"]["operator"] == "median"


def test_empty_pipeline_is_identity():
    rec = _rec(n=100)
    out = apply_pipeline(rec, [])
    assert out.attrs["pipeline"] == [] and np.array_equal(out.values, rec.values)


def test_unknown_step_lists_valid_steps():
    with pytest.raises(ValueError, match=r"step 2 \('bandpass'\) is not a preprocessing step\. Did you mean "
                                         r"'bandpass_filter'.*Valid steps: \[.*'common_reference'"):
        apply_pipeline(_rec(), [{"rectify": {}}, {"bandpass": {}}])


def test_unknown_parameter_lists_the_step_parameters():
    with pytest.raises(ValueError, match=r"step 1 \(bandpass_filter\): unknown parameter 'freq_min'\. Did you mean "
                                         r"'freq_min_hz'.*bandpass_filter takes: freq_min_hz=300\.0, freq_max_hz=6000\.0"):
        apply_pipeline(_rec(), [{"bandpass_filter": {"freq_min": 300.0}}])


def test_missing_required_parameter():
    with pytest.raises(ValueError, match=r"step 1 \(notch_filter\): missing required parameter \['freq_hz'\]"):
        resolve_pipeline([{"notch_filter": {}}])
    assert resolve_pipeline([{"notch_filter": {"freq_hz": 50}}])[0]["params"]["quality"] == 30.0


def test_value_errors_name_position_and_step():
    with pytest.raises(ValueError, match=r"step 2 \(common_reference\): local_radius_um=\(100, 110\) selects no channel"):
        apply_pipeline(_rec(), [{"bandpass_filter": {}},
                                {"common_reference": {"reference": "local", "local_radius_um": [100, 110]}}])
    with pytest.raises(ValueError, match=r"step 1 \(highpass_filter\): order must be an integer in \[1, 20\]; got -1"):
        apply_pipeline(_rec(), [{"highpass_filter": {"order": -1}}])


def test_malformed_steps():
    with pytest.raises(ValueError, match="steps must be a list"):
        apply_pipeline(_rec(), {"bandpass_filter": {}})
    with pytest.raises(ValueError, match="step 1 must be a mapping with exactly one step name"):
        apply_pipeline(_rec(), [{"bandpass_filter": {}, "common_reference": {}}])
    with pytest.raises(ValueError, match=r"step 1 \(bandpass_filter\): parameters must be a mapping"):
        apply_pipeline(_rec(), [{"bandpass_filter": [300, 6000]}])


def test_step_parameters():
    assert list(step_parameters("common_reference")) == ["reference", "operator", "reference_channel_ids",
                                                         "local_radius_um", "dtype"]
    with pytest.raises(ValueError, match="is not a preprocessing step"):
        step_parameters("whitening")


def test_registry_is_read_only():
    with pytest.raises(TypeError):
        STEPS["mine"] = lambda rec: rec  # type: ignore[index]


def test_result_stays_lazy():
    import dask.array as da

    out = apply_pipeline(_rec(), [{"bandpass_filter": {}}, {"common_reference": {}}])
    assert isinstance(out, xr.DataArray) and isinstance(out.data, da.Array)
