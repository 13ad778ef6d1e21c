"""spkfn.detection: noise levels, peak detection, peak selection, snippets, localisation, motion.

Peaks are a structured numpy array (:data:`PEAK_DTYPE`: ``sample_index``, ``channel_index``,
``amplitude`` in µV, ``segment_index``), sorted by time. See ``docs/detection.md``.
"""

from ._common import PEAK_DTYPE, neighbour_table
from .localization import LOCALIZATION_METHODS, LOCATION_DTYPES, localize_peaks
from .motion import (
    INTERPOLATION_METHODS,
    MOTION_METHODS,
    check_motion,
    clean_motion,
    correct_motion,
    correct_peak_locations,
    estimate_motion,
    interpolate_motion,
)
from .noise import NOISE_METHODS, noise_levels
from .peaks import DETECTION_METHODS, detect_peaks, estimate_prototype
from .selection import SELECTION_METHODS, select_peaks
from .snippets import extract_snippets

__all__ = [
    "PEAK_DTYPE",
    "noise_levels", "NOISE_METHODS",
    "detect_peaks", "estimate_prototype", "DETECTION_METHODS",
    "select_peaks", "SELECTION_METHODS",
    "extract_snippets", "neighbour_table",
    "localize_peaks", "LOCALIZATION_METHODS", "LOCATION_DTYPES",
    "estimate_motion", "clean_motion", "correct_motion", "correct_peak_locations", "interpolate_motion",
    "check_motion", "MOTION_METHODS", "INTERPOLATION_METHODS",
]
