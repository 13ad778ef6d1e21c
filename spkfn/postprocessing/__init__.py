"""Postprocessing: templates and other per-unit summaries computed from a recording and a sorting."""

from .templates import estimate_templates, select_spikes_per_unit

__all__ = ["estimate_templates", "select_spikes_per_unit"]
