"""Run a list of preprocessing steps from a config: ``[{step_name: {params}}, ...]``.

The registry :data:`STEPS` maps a step name to its function. Parameters are validated against
the function's own signature (so adding a step is one line: its name and function), and the
values are validated by the step itself; every error names the step's position and name.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType

import xarray as xr

from ..io.recording import check_recording
from ._base import _plain
from .artifacts import remove_artifacts, silence_periods
from .bad_channels import (
    detect_and_interpolate_bad_channels,
    detect_and_remove_bad_channels,
    interpolate_bad_channels,
    remove_channels,
)
from .elementwise import (
    astype,
    blank_saturation,
    center,
    clip,
    normalize_by_quantile,
    rectify,
    scale,
    unsigned_to_signed,
)
from .filters import bandpass_filter, highpass_filter, notch_filter
from .filters import filter as filter_
from .phase_shift import phase_shift
from .reference import common_reference
from .resample import decimate, resample
from .spatial import depth_order, highpass_spatial_filter, zero_channel_pad
from .whiten import whiten


def _whiten_step(recording: xr.DataArray, **params) -> xr.DataArray:
    # whiten returns (recording, matrix); the matrix is kept in the step's own record.
    return whiten(recording, **params)[0]


_whiten_step.__signature__ = inspect.signature(whiten)
_whiten_step.__doc__ = whiten.__doc__

__all__ = ["STEPS", "PIPELINE_ATTR", "apply_pipeline", "resolve_pipeline", "step_parameters"]

#: ``attrs`` key where :func:`apply_pipeline` records the steps with all parameters (defaults filled).
PIPELINE_ATTR = "pipeline"

#: Step name -> function ``step(recording, *, keyword-only params) -> recording``.
STEPS: Mapping[str, Callable[..., xr.DataArray]] = MappingProxyType({
    # filters
    "filter": filter_,
    "bandpass_filter": bandpass_filter,
    "highpass_filter": highpass_filter,
    "notch_filter": notch_filter,
    # references
    "common_reference": common_reference,
    # sample-wise
    "scale": scale,
    "center": center,
    "normalize_by_quantile": normalize_by_quantile,
    "rectify": rectify,
    "clip": clip,
    "blank_saturation": blank_saturation,
    "astype": astype,
    "unsigned_to_signed": unsigned_to_signed,
    # whitening, phase, channels, spatial, artifacts, resampling
    "whiten": _whiten_step,
    "phase_shift": phase_shift,
    "interpolate_bad_channels": interpolate_bad_channels,
    "remove_channels": remove_channels,
    "detect_and_remove_bad_channels": detect_and_remove_bad_channels,
    "detect_and_interpolate_bad_channels": detect_and_interpolate_bad_channels,
    "highpass_spatial_filter": highpass_spatial_filter,
    "depth_order": depth_order,
    "zero_channel_pad": zero_channel_pad,
    "remove_artifacts": remove_artifacts,
    "silence_periods": silence_periods,
    "resample": resample,
    "decimate": decimate,
})


def step_parameters(name: str) -> dict[str, inspect.Parameter]:
    """The keyword-only parameters of step ``name`` (name -> :class:`inspect.Parameter`).

    >>> list(step_parameters("bandpass_filter"))[:3]
    ['freq_min_hz', 'freq_max_hz', 'order']
    """
    if name not in STEPS:
        raise ValueError(_unknown_step_message(name))
    sig = inspect.signature(STEPS[name])
    return {p.name: p for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _unknown_step_message(name, position: int | None = None) -> str:
    where = f"step {position} ({name!r})" if position is not None else f"{name!r}"
    close = difflib.get_close_matches(str(name), list(STEPS), n=3)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"{where} is not a preprocessing step.{hint} Valid steps: {sorted(STEPS)}."


def _normalise_steps(steps) -> list[tuple[str, dict]]:
    if isinstance(steps, Mapping) or isinstance(steps, str) or not hasattr(steps, "__iter__"):
        raise ValueError("steps must be a list of {step_name: {params}} items (as in config.yaml), e.g. "
                         "[{'bandpass_filter': {'freq_min_hz': 300}}, {'common_reference': {}}]; "
                         f"got {type(steps).__name__}.")
    out = []
    for i, item in enumerate(steps, start=1):
        if isinstance(item, str):
            out.append((item, {}))
            continue
        if not isinstance(item, Mapping) or len(item) != 1:
            raise ValueError(f"step {i} must be a mapping with exactly one step name, like "
                             f"{{'bandpass_filter': {{'freq_min_hz': 300}}}}; got {item!r}.")
        (name, params), = item.items()
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise ValueError(f"step {i} ({name}): parameters must be a mapping of name: value; got {params!r}.")
        out.append((name, dict(params)))
    return out


def resolve_pipeline(steps) -> list[dict]:
    """Check step names and parameter names, and fill in defaults, without a recording.

    Returns ``[{"step": name, "params": {every parameter: value used}}, ...]``. Values are
    checked later by the steps themselves (some checks need the recording, e.g. Nyquist).

    Examples
    --------
    >>> resolve_pipeline([{"bandpass_filter": {"freq_min_hz": 400}}])[0]["params"]["freq_max_hz"]
    6000.0
    >>> try:
    ...     resolve_pipeline([{"bandpass_filter": {"freq_min": 400}}])
    ... except ValueError as e:
    ...     print(str(e).split(". ")[0])
    step 1 (bandpass_filter): unknown parameter 'freq_min'
    """
    resolved = []
    for i, (name, params) in enumerate(_normalise_steps(steps), start=1):
        if name not in STEPS:
            raise ValueError(_unknown_step_message(name, i))
        accepted = step_parameters(name)
        unknown = [k for k in params if k not in accepted]
        if unknown:
            parts = []
            for k in unknown:
                close = difflib.get_close_matches(str(k), list(accepted), n=2)
                parts.append(f"{k!r}" + (f". Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""))
            raise ValueError(f"step {i} ({name}): unknown parameter{'s' if len(unknown) > 1 else ''} "
                             f"{'; '.join(parts)} {name} takes: {_describe(accepted)}.")
        missing = [k for k, p in accepted.items() if p.default is inspect.Parameter.empty and k not in params]
        if missing:
            raise ValueError(f"step {i} ({name}): missing required parameter{'s' if len(missing) > 1 else ''} "
                             f"{missing}. {name} takes: {_describe(accepted)}.")
        full = {k: params.get(k, p.default) for k, p in accepted.items()}
        resolved.append({"step": name, "params": full})
    return resolved


def _describe(accepted: dict[str, inspect.Parameter]) -> str:
    return ", ".join(k if p.default is inspect.Parameter.empty else f"{k}={p.default!r}" for k, p in accepted.items())


def apply_pipeline(recording: xr.DataArray, steps) -> xr.DataArray:
    """Apply preprocessing steps in order, lazily; nothing is computed until the result is written.

    Parameters
    ----------
    recording : xarray.DataArray
    steps : list
        ``[{step_name: {param: value}}, ...]`` as in ``config/config.yaml`` (a bare step name or
        ``{step_name: None}`` means default parameters). Valid names are the keys of
        :data:`STEPS`; parameters are the step function's keyword arguments.

    Returns
    -------
    xarray.DataArray
        The preprocessed (lazy) recording. ``attrs["pipeline"]`` lists every step with all its
        parameters, defaults filled in (for provenance); ``attrs["preprocessing"]`` holds each
        step's own record (including values it derived, e.g. a filter's margin).

    Raises
    ------
    ValueError
        Unknown step (lists the valid ones), unknown or missing parameter (lists the step's
        parameters), or a value the step refuses (its message, prefixed by ``step i (name)``).

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> rec = from_array(np.random.default_rng(0).normal(size=(30000, 4)).astype("float32"), sampling_frequency=30000.0)
    >>> out = apply_pipeline(rec, [{"bandpass_filter": {"freq_min_hz": 300.0}}, {"common_reference": {"operator": "median"}}])
    >>> [s["step"] for s in out.attrs["pipeline"]], out.attrs["pipeline"][0]["params"]["order"]
    (['bandpass_filter', 'common_reference'], 5)
    >>> try:
    ...     apply_pipeline(rec, [{"bandpass_filter": {"freq_max_hz": 20000.0}}])
    ... except ValueError as e:
    ...     print(str(e).split(";")[0])
    step 1 (bandpass_filter): freq_max_hz must be in (0, 15000)
    """
    check_recording(recording)
    resolved = resolve_pipeline(steps)
    given = _normalise_steps(steps)
    out = recording
    for i, (entry, (_, params)) in enumerate(zip(resolved, given, strict=True), start=1):
        name = entry["step"]
        try:
            result = STEPS[name](out, **params)
        except (ValueError, TypeError) as e:
            raise ValueError(f"step {i} ({name}): {e}") from e
        if not isinstance(result, xr.DataArray):
            raise TypeError(f"step {i} ({name}) returned {type(result).__name__}, not a recording; a registered "
                            "step must return the recording (put extra results in its step record).")
        out = result
    out = out.copy(deep=False)
    out.attrs = dict(out.attrs)
    out.attrs[PIPELINE_ATTR] = list(recording.attrs.get(PIPELINE_ATTR, [])) + _plain(resolved)
    return out
