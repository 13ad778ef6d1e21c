"""The sorter parameter registry: defaults, descriptions, validation, JSON schema."""

from __future__ import annotations

import math

import jsonschema
import pytest

from spkfn.sorting import (
    SORTERS,
    Param,
    SorterSpec,
    default_params,
    describe_params,
    params_json_schema,
    register_sorter,
    validate_params,
)
from spkfn.sorting.params import KILOSORT4_PARAMS, MOUNTAINSORT5_PARAMS, get_sorter_spec

EXTERNAL = ["kilosort4", "mountainsort5"]


def test_external_sorters_are_registered():
    assert set(EXTERNAL) <= set(SORTERS)
    assert SORTERS["kilosort4"].params is KILOSORT4_PARAMS
    assert SORTERS["mountainsort5"].params is MOUNTAINSORT5_PARAMS


@pytest.mark.parametrize("sorter", EXTERNAL)
def test_defaults_validate_and_are_fresh_copies(sorter):
    d = default_params(sorter)
    assert validate_params(sorter, d) == validate_params(sorter, {}) == validate_params(sorter, None)
    assert list(d) == [p.name for p in SORTERS[sorter].params]
    for v in d.values():  # mutating a returned list must not change the registry
        if isinstance(v, list):
            v.append(99)
    assert default_params(sorter) != d or not any(isinstance(v, list) for v in d.values())


@pytest.mark.parametrize("sorter", EXTERNAL)
def test_describe_params_has_one_row_per_parameter(sorter):
    df = describe_params(sorter)
    assert list(df.columns) == ["type", "default", "range", "unit", "stage", "description"]
    assert df.index.tolist() == [p.name for p in SORTERS[sorter].params]
    assert (df["description"].str.len() > 10).all()


def test_describe_params_ranges():
    df = describe_params("kilosort4")
    assert df.loc["Th_learned", "range"] == "(0, inf)"
    assert df.loc["max_peels", "range"] == "[1, 10000]"
    assert df.loc["nt0min", "range"] == "[0, inf) or None"
    assert df.loc["drift_smoothing", "range"] == "list of 3 numbers in [0, inf)"
    assert describe_params("mountainsort5").loc["detect_sign", "range"] == "one of [-1, 0, 1]"


def test_unknown_parameter_lists_valid_names_and_suggests():
    with pytest.raises(ValueError, match=r"unknown parameter 'Th_lerned'.*did you mean 'Th_learned'.*Valid names: batch_size, nblocks"):
        validate_params("kilosort4", {"Th_lerned": 7})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"Th_learned": 0}, r"'Th_learned' of sorter 'kilosort4' must be in \(0, inf\); got 0"),
        ({"Th_learned": "8"}, r"'Th_learned'.*must be a number in \(0, inf\); got '8'"),
        ({"batch_size": 2.5}, r"'batch_size'.*must be an integer in \[1, inf\); got 2.5"),
        ({"batch_size": True}, r"'batch_size'.*integer"),
        ({"max_peels": 10001}, r"'max_peels'.*integer in \[1, 10000\]; got 10001"),
        ({"templates_from_data": 1}, r"'templates_from_data'.*true or false"),
        ({"drift_smoothing": [0.5, 0.5]}, r"'drift_smoothing'.*list of 3 numbers"),
        ({"drift_smoothing": [0.5, -1, 0.5]}, r"'drift_smoothing'.*list of 3 numbers in \[0, inf\)"),
        ({"Th_universal": None}, r"'Th_universal'.*must not be None"),
        ({"Th_universal": math.nan}, r"'Th_universal'.*got nan"),
    ],
)
def test_bad_values_name_parameter_and_range(params, message):
    with pytest.raises(ValueError, match=message):
        validate_params("kilosort4", params)


def test_choices_and_nullable():
    with pytest.raises(ValueError, match=r"'detect_sign'.*one of \[-1, 0, 1\]; got 2"):
        validate_params("mountainsort5", {"detect_sign": 2})
    with pytest.raises(ValueError, match=r"'scheme'.*one of \['1', '2'\]; got '3'"):
        validate_params("mountainsort5", {"scheme": "3"})
    assert validate_params("mountainsort5", {"snippet_mask_radius": None})["snippet_mask_radius"] is None
    assert validate_params("kilosort4", {"dmin": 20})["dmin"] == 20.0


def test_conversions():
    import numpy as np

    p = validate_params("kilosort4", {"Th_learned": 7, "batch_size": 30000.0, "nblocks": np.int64(5),
                                      "drift_smoothing": (1, 2, 3)})
    assert p["Th_learned"] == 7.0 and isinstance(p["Th_learned"], float)
    assert p["batch_size"] == 30000 and isinstance(p["batch_size"], int)
    assert p["nblocks"] == 5 and type(p["nblocks"]) is int
    assert p["drift_smoothing"] == [1.0, 2.0, 3.0]


def test_params_must_be_a_mapping():
    with pytest.raises(ValueError, match="params must be a dict"):
        validate_params("kilosort4", [("Th_learned", 7)])


def test_unknown_sorter_and_native_not_built():
    with pytest.raises(ValueError, match=r"unknown sorter 'kilosort5'; registered sorters: \['kilosort4'"):
        default_params("kilosort5")
    if "spkfn" not in SORTERS:
        with pytest.raises(ValueError, match="'spkfn' is not available yet in this build"):
            get_sorter_spec("spkfn")


@pytest.mark.parametrize("sorter", EXTERNAL)
def test_json_schema_accepts_defaults_and_rejects_what_validate_rejects(sorter):
    schema = params_json_schema(sorter)
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    defaults = {k: val for k, val in default_params(sorter).items()
                if not (isinstance(val, float) and not math.isfinite(val))}
    assert not list(v.iter_errors(defaults))
    assert list(v.iter_errors({"no_such_param": 1}))
    for p in SORTERS[sorter].params:
        assert schema["properties"][p.name]["description"]
        if p.type in (int, float) and p.min is not None and p.choices is None:
            bad = p.min - 1 if not p.min_exclusive else p.min
            assert list(v.iter_errors({p.name: bad})), p.name
            with pytest.raises(ValueError, match=p.name):
                validate_params(sorter, {p.name: bad})


def test_json_schema_details():
    s = params_json_schema("kilosort4")["properties"]
    assert s["Th_learned"] == {"type": "number", "exclusiveMinimum": 0, "default": 8.0,
                               "description": s["Th_learned"]["description"]}
    assert "default" not in s["tmax"] and "Default: inf" in s["tmax"]["description"]  # JSON has no inf
    assert s["nt0min"]["anyOf"][1] == {"type": "null"}
    assert s["drift_smoothing"]["minItems"] == s["drift_smoothing"]["maxItems"] == 3
    assert params_json_schema("mountainsort5")["properties"]["detect_sign"]["enum"] == [-1, 0, 1]


def test_param_table_checks_itself():
    with pytest.raises(ValueError, match="default of None needs nullable"):
        Param("x", float, None, "s", "d")
    with pytest.raises(ValueError, match="must be in"):
        Param("x", float, -1.0, "s", "d", min=0)
    with pytest.raises(ValueError, match="duplicated parameter names"):
        SorterSpec("s", "m:f", (Param("a", int, 1, "s", "d"), Param("a", int, 2, "s", "d")), install_hint="")


def test_register_refuses_to_overwrite(monkeypatch):
    monkeypatch.setattr("spkfn.sorting.params.SORTERS", dict(SORTERS))
    from spkfn.sorting import params as P

    spec = SorterSpec("kilosort4", "m:f", (), install_hint="")
    with pytest.raises(ValueError, match="already registered"):
        P.register_sorter(spec)
    P.register_sorter(spec, replace=True)
    assert P.SORTERS["kilosort4"] is spec
    assert register_sorter is P.register_sorter


def test_kilosort4_table_matches_kilosort():
    """Names, defaults and bounds agree with the installed Kilosort's own table."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("kilosort")
    if spec is None:
        pytest.skip("kilosort is not installed (optional extra 'kilosort4')")
    # kilosort/parameters.py needs only numpy; loading it alone avoids importing torch (seconds).
    path = Path(spec.submodule_search_locations[0]) / "parameters.py"
    mod_spec = importlib.util.spec_from_file_location("_ks_parameters", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    ks = {**mod.MAIN_PARAMETERS, **mod.EXTRA_PARAMETERS}
    ours = {p.name: p for p in KILOSORT4_PARAMS}
    ours_settings = set(ours) - {"do_CAR", "invert_sign"}  # run_kilosort() arguments
    assert ours_settings == set(ks) - {"n_chan_bin", "fs"}
    for name in ours_settings:
        k, p = ks[name], ours[name]
        if name != "cluster_init_seed":  # ours defaults to None = 5 + seed
            assert p.default == k["default"] or (p.default is None and k["default"] is None), name
        assert p.type.__name__ == k["type"].__name__, name
        if k["min"] is not None and p.min is not None:
            assert p.min == k["min"], name


def test_mountainsort5_table_matches_mountainsort5():
    ms5 = pytest.importorskip("mountainsort5", reason="mountainsort5 is not installed (optional extra)")
    d2 = ms5.Scheme2SortingParameters(phase1_detect_channel_radius=None, detect_channel_radius=None)
    p = default_params("mountainsort5")
    assert p["detect_threshold"] == d2.detect_threshold
    assert p["detect_sign"] == d2.detect_sign
    assert p["snippet_T1"] == d2.snippet_T1 and p["snippet_T2"] == d2.snippet_T2
    assert p["npca_per_channel"] == d2.phase1_npca_per_channel
    assert p["scheme2_max_num_snippets_per_training_batch"] == d2.max_num_snippets_per_training_batch
