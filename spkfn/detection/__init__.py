"""spkfn.detection: noise levels, peak detection, peak selection, snippets, localisation, motion.

Peaks are a structured numpy array (:data:`PEAK_DTYPE`: ``sample_index``, ``channel_index``,
``amplitude`` in µV, ``segment_index``), sorted by time. See ``docs/detection.md``.
"""

from ._common import PEAK_DTYPE, neighbour_table
from .localization import LOCALIZATION_METHODS, LOCATION_DTYPES, localize_peaks
from .noise import NOISE_METHODS, noise_levels
from .peaks import DETECTION_METHODS, detect_peaks, estimate_prototype
from .selection import SELECTION_METHODS, select_peaks
from .snippets import extract_snippets

# --- motion (estimation / correction): exports are added below by motion*.py ---

__all__ = [
    "PEAK_DTYPE",
    "noise_levels", "NOISE_METHODS",
    "detect_peaks", "estimate_prototype", "DETECTION_METHODS",
    "select_peaks", "SELECTION_METHODS",
    "extract_snippets", "neighbour_table",
    "localize_peaks", "LOCALIZATION_METHODS", "LOCATION_DTYPES",
]
