"""Spike sorting: one front door (:func:`run_sorter`) over registered sorters.

- :func:`run_sorter` — validate, run a sorter in a folder, return a sorting ``Dataset``;
- :func:`default_params`, :func:`describe_params`, :func:`validate_params`,
  :func:`params_json_schema` — the parameter registry (``spkfn.sorting.params``);
- :data:`SORTERS` — registered sorters (external: ``"kilosort4"``, ``"mountainsort5"``; the
  native ``"spkfn"`` when ``spkfn.sorting.native`` is part of the build).
"""

import importlib.util as _ilu

from .params import (
    SORTERS,
    Param,
    SorterNotInstalledError,
    SorterSpec,
    default_params,
    describe_params,
    get_sorter_spec,
    is_installed,
    params_json_schema,
    register_sorter,
    validate_params,
)
from .run import SorterError, run_sorter

# The native sorter registers itself (register_sorter) when its package is importable.
if _ilu.find_spec(__name__ + ".native") is not None:  # pragma: no cover - until it lands
    from . import native as _native  # noqa: F401

__all__ = [
    "run_sorter", "SorterError", "SorterNotInstalledError",
    "default_params", "describe_params", "validate_params", "params_json_schema",
    "SORTERS", "SorterSpec", "Param", "register_sorter", "get_sorter_spec", "is_installed",
]
