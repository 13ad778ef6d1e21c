"""Matplotlib figures. Each figure has a data-preparation function separate from its drawing."""

from .recording import (
    plot_probe,
    plot_raster,
    plot_templates,
    plot_traces,
    plot_unit_positions,
    prepare_raster,
    prepare_traces,
)

__all__ = [
    "prepare_traces", "plot_traces", "plot_probe", "prepare_raster", "plot_raster", "plot_templates",
    "plot_unit_positions",
]
