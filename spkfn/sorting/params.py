"""Sorter parameter registry: one declarative table per sorter, and the ``SORTERS`` mapping.

Each sorter is described once, by a :class:`SorterSpec`: its runner (an import path, so that
describing a sorter never imports its heavy package), its table of :class:`Param` entries (name,
type, default, bounds or choices, stage, description), the package that must be importable, and
the install hint shown when it is not. Defaults, validation, the docs table
(:func:`describe_params`) and the workflow's config schema (:func:`params_json_schema`) all come
from that one table, after Kilosort4's ``parameters.py``.

The native sorter ("spkfn") registers itself here with :func:`register_sorter` when its package
is present; until then :func:`spkfn.sorting.run_sorter` says it is not available in this build.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = [
    "Param",
    "SorterSpec",
    "SORTERS",
    "register_sorter",
    "get_sorter_spec",
    "default_params",
    "describe_params",
    "validate_params",
    "params_json_schema",
    "is_installed",
    "SorterNotInstalledError",
    "KILOSORT4_PARAMS",
    "MOUNTAINSORT5_PARAMS",
]

_TYPES = (int, float, bool, str, list)
_JSON_TYPE = {int: "integer", float: "number", bool: "boolean", str: "string", list: "array"}


@dataclass(frozen=True)
class Param:
    """One sorter parameter.

    ``min``/``max`` bound numbers (inclusive unless ``min_exclusive``/``max_exclusive``);
    ``choices`` lists the allowed values; ``nullable`` allows ``None`` (meaning "automatic", as
    the description says); ``length`` fixes the length of a ``list`` parameter whose items are
    numbers within the bounds.
    """

    name: str
    type: type
    default: Any
    stage: str
    description: str
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    choices: tuple | None = None
    nullable: bool = False
    length: int | None = None
    unit: str = ""

    def __post_init__(self):
        if self.type not in _TYPES:
            raise TypeError(f"Param {self.name!r}: type must be one of {[t.__name__ for t in _TYPES]}.")
        if self.default is None and not self.nullable:
            raise ValueError(f"Param {self.name!r}: a default of None needs nullable=True.")
        if self.default is not None:
            _check_value(self, self.default, sorter="<table>")

    def range_text(self) -> str:
        """Human-readable valid range, e.g. ``(0, inf)``, ``[1, 10]``, ``one of ['a', 'b']``."""
        if self.choices is not None:
            text = f"one of {list(self.choices)}"
        elif self.type in (int, float) or (self.type is list and (self.min is not None or self.max is not None)):
            lo = "-inf" if self.min is None else _fmt(self.min)
            hi = "inf" if self.max is None else _fmt(self.max)
            left = "(" if (self.min is None or self.min_exclusive) else "["
            right = ")" if (self.max is None or self.max_exclusive) else "]"
            text = f"{left}{lo}, {hi}{right}"
            if self.type is list:
                text = f"list of {self.length or 'any number of'} numbers in {text}"
        elif self.type is bool:
            text = "true or false"
        else:
            text = "any " + self.type.__name__
        return text + (" or None" if self.nullable else "")


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


@dataclass(frozen=True)
class SorterSpec:
    """A registered sorter.

    ``runner`` is ``"module:function"`` (imported only when the sorter runs) or a callable; it is
    called as
    ``runner(recording, *, params, folder, seed, n_jobs, progress)`` and returns a sorting
    ``xarray.Dataset``. ``import_name`` is the package whose presence makes the sorter available;
    ``dist_name`` the distribution whose version is recorded. ``min_duration_s`` is the shortest
    recording the sorter accepts.
    """

    name: str
    runner: str | Callable
    params: tuple[Param, ...]
    install_hint: str
    description: str = ""
    import_name: str | None = None
    dist_name: str | None = None
    min_duration_s: float = 1.0
    extra_checks: Callable | None = field(default=None, compare=False)

    def __post_init__(self):
        names = [p.name for p in self.params]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"sorter {self.name!r}: duplicated parameter names {sorted(dup)}.")

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)


class SorterNotInstalledError(ImportError):
    """The sorter's package is not importable; the message says how to install it."""


#: name -> SorterSpec. Add sorters with :func:`register_sorter`.
SORTERS: dict[str, SorterSpec] = {}


def register_sorter(spec: SorterSpec, *, replace: bool = False) -> SorterSpec:
    """Add ``spec`` to :data:`SORTERS` (refuses to overwrite a name unless ``replace``)."""
    if not isinstance(spec, SorterSpec):
        raise TypeError(f"register_sorter takes a SorterSpec; got {type(spec).__name__}.")
    if spec.name in SORTERS and not replace:
        raise ValueError(f"a sorter named {spec.name!r} is already registered; pass replace=True to replace it.")
    SORTERS[spec.name] = spec
    return spec


def get_sorter_spec(sorter: str) -> SorterSpec:
    """The :class:`SorterSpec` of ``sorter``, or a ``ValueError`` listing the registered names."""
    if not isinstance(sorter, str):
        raise ValueError(f"sorter must be a name (str); got {sorter!r}. Registered sorters: {sorted(SORTERS)}.")
    if sorter not in SORTERS:
        raise ValueError(f"unknown sorter {sorter!r}; registered sorters: {sorted(SORTERS)}.")
    return SORTERS[sorter]


def is_installed(sorter: str) -> bool:
    """True when the sorter's package can be imported (without importing it).

    >>> is_installed("kilosort4") in (True, False)
    True
    """
    spec = get_sorter_spec(sorter)
    if spec.import_name is None:
        return True
    return importlib.util.find_spec(spec.import_name) is not None


def default_params(sorter: str) -> dict:
    """The default parameters of ``sorter`` as a new dict (name -> value).

    Examples
    --------
    >>> p = default_params("kilosort4")
    >>> p["Th_universal"], p["batch_size"]
    (9.0, 60000)
    """
    spec = get_sorter_spec(sorter)
    return {p.name: _copy(p.default) for p in spec.params}


def _copy(v):
    return list(v) if isinstance(v, list) else v


def describe_params(sorter: str) -> pd.DataFrame:
    """A table of the parameters of ``sorter``: type, default, valid range, unit, stage, description.

    Indexed by parameter name, in the order of the registry.

    Examples
    --------
    >>> df = describe_params("mountainsort5")
    >>> df.loc["detect_threshold", ["type", "default", "range"]].tolist()
    ['float', 5.5, '(0, inf)']
    """
    spec = get_sorter_spec(sorter)
    rows = [
        {
            "name": p.name,
            "type": p.type.__name__,
            "default": p.default,
            "range": p.range_text(),
            "unit": p.unit,
            "stage": p.stage,
            "description": p.description,
        }
        for p in spec.params
    ]
    return pd.DataFrame(rows, columns=["name", "type", "default", "range", "unit", "stage", "description"]).set_index("name")


def validate_params(sorter: str, params: Mapping | None = None) -> dict:
    """Check ``params`` against the registry and return the full set used (defaults filled in).

    Integers are accepted for float parameters (and converted); anything else of the wrong type,
    out of range, or not among the choices raises ``ValueError`` naming the parameter, the value
    received and the valid range. An unknown name raises ``ValueError`` listing the valid names.

    Examples
    --------
    >>> validate_params("kilosort4", {"Th_learned": 7})["Th_learned"]
    7.0
    >>> validate_params("kilosort4", {"Th_lerned": 7})
    Traceback (most recent call last):
    ...
    ValueError: unknown parameter 'Th_lerned' for sorter 'kilosort4' (did you mean 'Th_learned'?). Valid names: ...
    """
    spec = get_sorter_spec(sorter)
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a dict of parameter name -> value; got {type(params).__name__}.")
    valid = [p.name for p in spec.params]
    for name in params:
        if name not in valid:
            import difflib

            close = difflib.get_close_matches(str(name), valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"unknown parameter {name!r} for sorter {sorter!r}{hint}. Valid names: {', '.join(valid)}. "
                f"See spkfn.sorting.describe_params({sorter!r})."
            )
    out = {}
    for p in spec.params:
        value = params[p.name] if p.name in params else _copy(p.default)
        out[p.name] = _check_value(p, value, sorter=sorter)
    return out


def _check_value(p: Param, value, *, sorter: str):
    where = f"parameter {p.name!r} of sorter {sorter!r}"
    if value is None:
        if p.nullable:
            return None
        raise ValueError(f"{where} must not be None; valid: {p.range_text()}.")
    if p.type is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false; got {value!r}.")
        return value
    if p.type is str:
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string, {p.range_text()}; got {value!r}.")
        if p.choices is not None and value not in p.choices:
            raise ValueError(f"{where} must be {p.range_text()}; got {value!r}.")
        return value
    if p.type is list:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{where} must be a {p.range_text()}; got {value!r}.")
        if p.length is not None and len(value) != p.length:
            raise ValueError(f"{where} must be a {p.range_text()}; got {len(value)} values ({value!r}).")
        items = []
        for v in value:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise ValueError(f"{where} must be a {p.range_text()}; got item {v!r}.")
            _check_bounds(p, float(v), value, where)
            items.append(float(v))
        return items
    # numbers
    if isinstance(value, bool) or not _is_number(value):
        raise ValueError(f"{where} must be {'an integer' if p.type is int else 'a number'} in {p.range_text()}; got {value!r}.")
    if p.type is int:
        if isinstance(value, float) or type(value).__name__.startswith("float"):
            if not float(value).is_integer():
                raise ValueError(f"{where} must be an integer in {p.range_text()}; got {value!r}.")
        v = int(value)
    else:
        v = float(value)
        if math.isnan(v):
            raise ValueError(f"{where} must be a number in {p.range_text()}; got nan.")
    if p.choices is not None:
        if v not in p.choices:
            raise ValueError(f"{where} must be {p.range_text()}; got {value!r}.")
        return v
    _check_bounds(p, v, value, where)
    return v


def _is_number(value) -> bool:
    if isinstance(value, int | float):
        return True
    name = type(value).__name__
    return name.startswith(("int", "uint", "float")) and hasattr(value, "item")


def _check_bounds(p: Param, v: float, value, where: str) -> None:
    ok = True
    if p.min is not None:
        ok &= v > p.min if p.min_exclusive else v >= p.min
    if p.max is not None:
        ok &= v < p.max if p.max_exclusive else v <= p.max
    if not ok:
        what = "an integer in" if p.type is int else "in"
        raise ValueError(f"{where} must be {what} {p.range_text()}; got {value!r}.")


def params_json_schema(sorter: str) -> dict:
    """The JSON-schema fragment (draft 2020-12) for the parameters of ``sorter``.

    An ``object`` whose ``properties`` carry each parameter's type, default, bounds or choices and
    description, with ``additionalProperties: false``; the workflow's config schema embeds it.
    Infinite defaults (JSON has none) are left out of ``default`` and stated in the description.

    Examples
    --------
    >>> s = params_json_schema("kilosort4")
    >>> s["properties"]["Th_learned"]["exclusiveMinimum"], s["additionalProperties"]
    (0, False)
    """
    spec = get_sorter_spec(sorter)
    props = {}
    for p in spec.params:
        schema: dict[str, Any] = {}
        if p.type is list:
            item: dict[str, Any] = {"type": "number"}
            _bounds_schema(p, item)
            schema = {"type": "array", "items": item}
            if p.length is not None:
                schema["minItems"] = schema["maxItems"] = p.length
        else:
            schema["type"] = _JSON_TYPE[p.type]
            if p.choices is not None:
                schema["enum"] = list(p.choices)
            elif p.type in (int, float):
                _bounds_schema(p, schema)
        if p.nullable:
            schema = {"anyOf": [schema, {"type": "null"}]}
        desc = p.description + (f" Unit: {p.unit}." if p.unit else "")
        if isinstance(p.default, float) and not math.isfinite(p.default):
            desc += f" Default: {p.default} (JSON has no infinity; leave the key out to use it)."
        else:
            schema["default"] = p.default
        schema["description"] = desc
        props[p.name] = schema
    return {
        "type": "object",
        "title": f"{spec.name} parameters",
        "description": spec.description,
        "properties": props,
        "additionalProperties": False,
    }


def _bounds_schema(p: Param, schema: dict) -> None:
    if p.min is not None and math.isfinite(p.min):
        schema["exclusiveMinimum" if p.min_exclusive else "minimum"] = p.min
    if p.max is not None and math.isfinite(p.max):
        schema["exclusiveMaximum" if p.max_exclusive else "maximum"] = p.max


# ---------------------------------------------------------------------------------------------
# Kilosort4 (https://github.com/MouseLand/Kilosort, kilosort/parameters.py). Names, defaults and
# bounds follow Kilosort 4.1's own table so that users can move between the two; descriptions are
# ours. Settings that spkfn fills in from the recording (n_chan_bin, fs) or that locate files
# (filename, results_dir, probe) are not parameters here. ``tmax = inf`` means "to the end".
# ---------------------------------------------------------------------------------------------
_INF = math.inf
KILOSORT4_PARAMS: tuple[Param, ...] = (
    Param("batch_size", int, 60000, "data", "Samples per batch of data processed at once (2 s at 30 kHz).", min=1, unit="samples"),
    Param("nblocks", int, 1, "preprocessing", "Number of blocks for drift correction: 0 turns it off, 1 is rigid, >1 non-rigid (use 5 for long probes).", min=0),
    Param("Th_universal", float, 9.0, "spike detection", "Detection threshold for the universal templates (Th(1) in older Kilosorts), in whitened units.", min=0, min_exclusive=True),
    Param("Th_learned", float, 8.0, "spike detection", "Detection threshold for the learned templates (Th(2) in older Kilosorts), in whitened units.", min=0, min_exclusive=True),
    Param("tmin", float, 0.0, "data", "Time from which the data are sorted.", min=0, unit="s"),
    Param("tmax", float, _INF, "data", "Time up to which the data are sorted (inf: to the end).", min=0, min_exclusive=True, unit="s"),
    Param("nt", int, 61, "data", "Samples per waveform (odd), also the padding used for filtering.", min=1, unit="samples"),
    Param("shift", float, None, "data", "Constant added to the data after scaling (data * scale + shift); None: none.", nullable=True),
    Param("scale", float, None, "data", "Factor applied to the data before anything else; None: none (spkfn writes µV for float recordings).", nullable=True),
    Param("batch_downsampling", int, 1, "data", "Use only every n-th batch for sorting (1: all batches).", min=1),
    Param("artifact_threshold", float, _INF, "preprocessing", "Batches with an absolute value above this are zeroed as artifacts (inf: never).", min=0),
    Param("nskip", int, 25, "preprocessing", "Batch stride used to estimate the whitening matrix.", min=1),
    Param("whitening_range", int, 32, "preprocessing", "Number of nearby channels used for local whitening.", min=1),
    Param("highpass_cutoff", float, 300.0, "preprocessing", "Cut-off of the high-pass Butterworth filter.", min=0, unit="Hz"),
    Param("binning_depth", float, 5.0, "preprocessing", "Vertical bin size of the 2D histogram used for drift correction.", min=0, min_exclusive=True, unit="µm"),
    Param("sig_interp", float, 20.0, "preprocessing", "Spatial smoothness scale for interpolating drift-corrected data.", min=0, min_exclusive=True, unit="µm"),
    Param("drift_smoothing", list, [0.5, 0.5, 0.5], "preprocessing", "Gaussian smoothing of the drift estimate: [correlation, time (blocks), depth (bins)].", min=0, length=3),
    Param("nt0min", int, None, "spike detection", "Sample at which waveforms are aligned; None: int(20 * nt / 61).", min=0, nullable=True, unit="samples"),
    Param("dmin", float, None, "spike detection", "Vertical spacing of template centres; None: from the probe.", min=0, min_exclusive=True, nullable=True, unit="µm"),
    Param("dminx", float, 32.0, "spike detection", "Horizontal spacing of template centres.", min=0, min_exclusive=True, unit="µm"),
    Param("min_template_size", float, 10.0, "spike detection", "Standard deviation of the smallest spatial envelope of the universal templates.", min=0, min_exclusive=True, unit="µm"),
    Param("template_sizes", int, 5, "spike detection", "Number of universal template sizes (multiples of min_template_size).", min=1),
    Param("nearest_chans", int, 10, "spike detection", "Nearest channels considered when finding local maxima in detection.", min=1),
    Param("nearest_templates", int, 100, "spike detection", "Nearest template positions considered when finding local maxima in detection.", min=1),
    Param("max_channel_distance", float, 32.0, "spike detection", "Templates farther than this from their nearest channel are dropped.", min=1, unit="µm"),
    Param("max_peels", int, 100, "spike detection", "Matching-pursuit iterations per batch.", min=1, max=10000),
    Param("templates_from_data", bool, True, "spike detection", "Learn the single-channel template shapes from the data (else use Kilosort's built-in ones).",),
    Param("n_templates", int, 6, "spike detection", "Single-channel templates for the universal templates.", min=1),
    Param("n_pcs", int, 6, "spike detection", "Single-channel principal components for spike features.", min=1),
    Param("Th_single_ch", float, 6.0, "spike detection", "Single-channel threshold used to learn the universal templates, in whitened units.", min=0, min_exclusive=True),
    Param("acg_threshold", float, 0.2, "clustering", "Fraction of refractory violations allowed in the auto-correlogram for a 'good' label.", min=0, min_exclusive=True),
    Param("ccg_threshold", float, 0.25, "clustering", "Fraction of refractory violations allowed in a cross-correlogram for splits and merges.", min=0, min_exclusive=True),
    Param("cluster_neighbors", int, 10, "clustering", "Nearest neighbours per spike in the clustering graph.", min=2),
    Param("cluster_downsampling", int, 20, "clustering", "Inverse fraction of spikes used as landmarks in clustering.", min=1),
    Param("max_cluster_subset", int, 25000, "clustering", "Maximum spikes used to build the clustering graph of a centre.", min=1),
    Param("x_centers", int, None, "clustering", "Number of x positions of template groupings; None: from the probe.", min=1, nullable=True),
    Param("cluster_init_seed", int, None, "clustering", "Seed of Kilosort's k-means++ initialisation; None: 5 + run_sorter's seed (5 is Kilosort's default).", min=1, nullable=True),
    Param("duplicate_spike_ms", float, 0.25, "postprocessing", "Spikes of one cluster closer than this are treated as duplicates and removed (0: keep all).", min=0, unit="ms"),
    Param("position_limit", float, 100.0, "postprocessing", "Maximum channel distance used to estimate spike positions.", min=0, unit="µm"),
    Param("do_CAR", bool, True, "preprocessing", "Subtract the common average reference before sorting."),
    Param("invert_sign", bool, False, "preprocessing", "Flip the sign of the data (for recordings whose spikes are positive)."),
)

# ---------------------------------------------------------------------------------------------
# MountainSort5 (https://github.com/flatironinstitute/mountainsort5), scheme 1/2. Names follow
# MountainSort5's own parameters (scheme2_ prefix for scheme-2-only ones, as SpikeInterface's
# wrapper does); filter/whiten are applied by the runner before MountainSort5, which expects
# filtered, whitened traces. Radii are in µm (the units of the channel locations).
# ---------------------------------------------------------------------------------------------
MOUNTAINSORT5_PARAMS: tuple[Param, ...] = (
    Param("scheme", str, "2", "clustering", "MountainSort5 scheme: '1' (cluster everything at once) or '2' (train on a subset, classify the rest).", choices=("1", "2")),
    Param("filter", bool, True, "preprocessing", "Band-pass filter the traces before sorting (off if already filtered)."),
    Param("freq_min_hz", float, 300.0, "preprocessing", "Low cut-off of the band-pass filter.", min=0, min_exclusive=True, unit="Hz"),
    Param("freq_max_hz", float, 6000.0, "preprocessing", "High cut-off of the band-pass filter.", min=0, min_exclusive=True, unit="Hz"),
    Param("whiten", bool, True, "preprocessing", "Whiten the traces before sorting (MountainSort5 expects whitened data)."),
    Param("detect_threshold", float, 5.5, "spike detection", "Detection threshold on whitened traces.", min=0, min_exclusive=True),
    Param("detect_sign", int, -1, "spike detection", "Sign of the detected peaks: -1 negative, 1 positive, 0 both.", choices=(-1, 0, 1)),
    Param("detect_time_radius_msec", float, 0.5, "spike detection", "Events closer than this in time (within the channel radius) are merged.", min=0, min_exclusive=True, max=1e4, unit="ms"),
    Param("snippet_T1", int, 20, "features", "Samples before the event in each snippet.", min=0, unit="samples"),
    Param("snippet_T2", int, 20, "features", "Samples after the event in each snippet.", min=0, unit="samples"),
    Param("snippet_mask_radius", float, 250.0, "features", "Channels farther than this from the peak channel are zeroed in snippets; None: no mask.", min=0, nullable=True, unit="µm"),
    Param("npca_per_channel", int, 3, "clustering", "PCA components per channel for the first reduction.", min=1, max=1000),
    Param("npca_per_subdivision", int, 10, "clustering", "PCA components for each subdivision during clustering.", min=1, max=1000),
    Param("scheme1_detect_channel_radius", float, 150.0, "spike detection", "Scheme 1: radius for merging detections across channels; None: all channels.", min=0, min_exclusive=True, nullable=True, unit="µm"),
    Param("scheme2_phase1_detect_channel_radius", float, 200.0, "spike detection", "Scheme 2, phase 1: radius for merging detections across channels.", min=0, min_exclusive=True, nullable=True, unit="µm"),
    Param("scheme2_detect_channel_radius", float, 50.0, "spike detection", "Scheme 2, phase 2: radius for merging detections across channels.", min=0, min_exclusive=True, nullable=True, unit="µm"),
    Param("scheme2_max_num_snippets_per_training_batch", int, 200, "clustering", "Scheme 2: maximum snippets per training batch of the classifier.", min=1),
    Param("scheme2_training_duration_sec", float, 300.0, "clustering", "Scheme 2: duration of the training data.", min=0, min_exclusive=True, unit="s"),
    Param("scheme2_training_recording_sampling_mode", str, "uniform", "clustering", "Scheme 2: take the training data from the start ('initial') or in 10 s pieces across the recording ('uniform').", choices=("initial", "uniform")),
)


def _check_mountainsort5(recording, params: dict) -> None:
    """Checks of MountainSort5's parameters against the recording (before anything runs)."""
    fs = float(recording.attrs["sampling_frequency"])
    if params["filter"] and params["freq_max_hz"] >= fs / 2:
        raise ValueError(
            f"parameter 'freq_max_hz' of sorter 'mountainsort5' ({params['freq_max_hz']:g} Hz) must be below the "
            f"Nyquist frequency ({fs / 2:g} Hz); lower it or set filter=False."
        )
    if params["filter"] and params["freq_min_hz"] >= params["freq_max_hz"]:
        raise ValueError(
            f"parameter 'freq_min_hz' of sorter 'mountainsort5' ({params['freq_min_hz']:g} Hz) must be below "
            f"freq_max_hz ({params['freq_max_hz']:g} Hz)."
        )


def _check_kilosort4(recording, params: dict) -> None:
    """Checks of Kilosort4's parameters against the recording (before anything runs)."""
    if params["nt"] % 2 == 0:
        raise ValueError(f"parameter 'nt' of sorter 'kilosort4' must be odd (Kilosort4 requires it); got {params['nt']}.")
    if params["tmax"] <= params["tmin"]:
        raise ValueError(f"parameter 'tmax' of sorter 'kilosort4' ({params['tmax']:g} s) must be above tmin "
                         f"({params['tmin']:g} s).")


def _register_builtin() -> None:
    register_sorter(SorterSpec(
        name="kilosort4",
        runner="spkfn.sorting.external.kilosort4:run_kilosort4",
        params=KILOSORT4_PARAMS,
        import_name="kilosort",
        dist_name="kilosort",
        min_duration_s=2.0,
        extra_checks=_check_kilosort4,
        description="Kilosort 4 (Pachitariu et al. 2024, Nature Methods), run on CPU through its Python API.",
        install_hint=(
            "Kilosort4 is not installed. Install PyTorch's CPU build first, then Kilosort: "
            "`pip install torch==2.13.0` (an unpinned torch pulls several GB of CUDA packages), then "
            "`pip install 'spkfn[kilosort4]'` (or `pip install kilosort`); with conda: "
            "`conda env create -f envs/kilosort4.yaml`."
        ),
    ))
    register_sorter(SorterSpec(
        name="mountainsort5",
        runner="spkfn.sorting.external.mountainsort5:run_mountainsort5",
        params=MOUNTAINSORT5_PARAMS,
        import_name="mountainsort5",
        dist_name="mountainsort5",
        min_duration_s=1.0,
        extra_checks=_check_mountainsort5,
        description="MountainSort 5 (Magland et al.), through its Python API; filtering and whitening by spkfn.preprocessing.",
        install_hint=(
            "MountainSort5 is not installed: `pip install 'spkfn[mountainsort5]'` (or `pip install mountainsort5`); "
            "with conda: `conda env create -f envs/mountainsort5.yaml`. MountainSort5 requires SpikeInterface, "
            "which spkfn then uses inside this runner only."
        ),
    ))


_register_builtin()
