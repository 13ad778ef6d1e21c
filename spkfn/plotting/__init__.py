"""spkfn.plotting: matplotlib figures (data preparation separate from drawing)."""

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

__all__ = [
    "order_agreement", "plot_agreement_matrix", "plot_confusion_matrix", "performance_by_rank",
    "plot_performance", "performance_vs_snr_data", "plot_performance_vs_snr", "collision_recall_curves",
    "plot_collision_recall", "unit_category_counts", "plot_unit_categories",
]
