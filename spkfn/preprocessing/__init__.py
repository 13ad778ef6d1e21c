"""spkfn.preprocessing: lazy, chunked preprocessing steps and their plain-numpy kernels.

Every step is ``step(recording, *, keyword-only params) -> recording``; nothing is computed until
the result is written (``spkfn.io.write_binary`` / ``write_zarr``). :func:`apply_pipeline` runs a
list of steps from a config. See docs/preprocessing.md.
"""

from .elementwise import (
    astype,
    blank_saturation,
    cast_traces,
    center,
    clip,
    normalize_by_quantile,
    rectify,
    scale,
    scale_traces,
    unsigned_to_signed,
)
from .filters import (
    bandpass_filter,
    design_filter,
    design_notch,
    filter,  # noqa: F401  (see the note on __all__)
    filter_margin_samples,
    filter_traces,
    highpass_filter,
    notch_filter,
)
from .pipeline import STEPS, apply_pipeline, resolve_pipeline, step_parameters
from .reference import (
    common_reference,
    common_reference_traces,
    local_reference_traces,
    median_across_channels,
    median_network,
    ring_neighbours,
)
from .utils import (
    channel_distances,
    closest_channels,
    neighbours_within,
    random_chunk_bounds,
    random_chunks,
)

# ``filter`` is importable (``spkfn.preprocessing.filter``) but left out of ``__all__`` so that
# ``from spkfn.preprocessing import *`` does not shadow the builtin ``filter``.
__all__ = [
    # filters
    "bandpass_filter", "highpass_filter", "notch_filter",
    "design_filter", "design_notch", "filter_margin_samples", "filter_traces",
    # references
    "common_reference", "common_reference_traces", "local_reference_traces", "median_across_channels",
    "median_network", "ring_neighbours",
    # sample-wise
    "scale", "center", "normalize_by_quantile", "rectify", "clip", "blank_saturation", "astype",
    "unsigned_to_signed", "cast_traces", "scale_traces",
    # pipeline
    "STEPS", "apply_pipeline", "resolve_pipeline", "step_parameters",
    # helpers
    "random_chunks", "random_chunk_bounds", "channel_distances", "closest_channels", "neighbours_within",
]
