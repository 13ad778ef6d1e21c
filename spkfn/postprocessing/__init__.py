"""Postprocessing: templates, amplitudes and other per-unit summaries from a recording and a sorting."""

from .amplitudes import best_channels, spike_amplitudes
from .templates import estimate_templates, select_spikes_per_unit

__all__ = ["estimate_templates", "select_spikes_per_unit", "spike_amplitudes", "best_channels"]
