"""Matplotlib figures. Each figure has a data-preparation function separate from its drawing."""

from .comparison import (
    collision_recall_curves,
    order_agreement,
    performance_by_rank,
    performance_vs_snr_data,
    plot_agreement_matrix,
    plot_collision_recall,
    plot_confusion_matrix,
    plot_performance,
    plot_performance_vs_snr,
    plot_unit_categories,
    unit_category_counts,
)
from .detection import (
    plot_drift_map,
    plot_noise_levels,
    plot_peak_locations,
    prepare_drift_map,
    prepare_noise_levels,
    prepare_peak_locations,
)
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
    "order_agreement", "plot_agreement_matrix", "plot_confusion_matrix", "performance_by_rank",
    "plot_performance", "performance_vs_snr_data", "plot_performance_vs_snr", "collision_recall_curves",
    "plot_collision_recall", "unit_category_counts", "plot_unit_categories",
    "prepare_drift_map", "plot_drift_map", "prepare_peak_locations", "plot_peak_locations", "prepare_noise_levels", "plot_noise_levels",
]
