"""spkfn.preprocessing: lazy, chunked preprocessing steps and their plain-numpy kernels.

Every step is ``step(recording, *, keyword-only params) -> recording``; nothing is computed until
the result is written (``spkfn.io.write_binary`` / ``write_zarr``). :func:`apply_pipeline` runs a
list of steps from a config. See docs/preprocessing.md.
"""

from .artifacts import remove_artifacts, silence_periods
from .bad_channels import (
    detect_and_interpolate_bad_channels,
    detect_and_remove_bad_channels,
    detect_bad_channels,
    interpolate_bad_channels,
    remove_channels,
)
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
from .phase_shift import inter_sample_shift_from_probe, phase_shift, phase_shift_kernel
from .pipeline import STEPS, apply_pipeline, resolve_pipeline, step_parameters
from .reference import (
    common_reference,
    common_reference_traces,
    local_reference_traces,
    median_across_channels,
    median_network,
    ring_neighbours,
)
from .resample import decimate, resample
from .spatial import depth_order, highpass_spatial_filter, zero_channel_pad
from .utils import (
    channel_distances,
    closest_channels,
    neighbours_within,
    random_chunk_bounds,
    random_chunks,
)
from .whiten import whiten, whitening_matrix

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
    # whitening, phase, bad channels, spatial, artifacts, resampling
    "whiten", "whitening_matrix", "phase_shift", "phase_shift_kernel", "inter_sample_shift_from_probe",
    "detect_bad_channels", "interpolate_bad_channels", "remove_channels", "detect_and_remove_bad_channels",
    "detect_and_interpolate_bad_channels", "highpass_spatial_filter", "depth_order", "zero_channel_pad",
    "remove_artifacts", "silence_periods", "resample", "decimate",
    # pipeline
    "STEPS", "apply_pipeline", "resolve_pipeline", "step_parameters",
    # helpers
    "random_chunks", "random_chunk_bounds", "channel_distances", "closest_channels", "neighbours_within",
]
