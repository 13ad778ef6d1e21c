"""spkfn.comparison: spike-train matching, ground-truth comparison, multi-sorter agreement, studies.

Every score is defined, with its formula, in ``docs/comparison.md``.
"""

from .collision import collision_recall, collision_recall_curve, template_similarity
from .groundtruth import GroundTruthResult, compare_to_ground_truth, performance_from_counts
from .matching import (
    SpikeMatch,
    agreement_matrix,
    best_matching,
    delta_frames_from_ms,
    hungarian_matching,
    match_spikes,
)
from .sorters import (
    MultiSorterComparison,
    SorterComparison,
    compare_multiple_sorters,
    compare_sorters,
    consensus_sorting,
)
from .study import (
    StudyCase,
    StudyTables,
    load_study_tables,
    run_study,
    save_study_tables,
    snr_from_templates,
)

__all__ = [
    "SpikeMatch", "match_spikes", "agreement_matrix", "delta_frames_from_ms", "hungarian_matching",
    "best_matching",
    "GroundTruthResult", "compare_to_ground_truth", "performance_from_counts",
    "SorterComparison", "MultiSorterComparison", "compare_sorters", "compare_multiple_sorters",
    "consensus_sorting",
    "collision_recall", "collision_recall_curve", "template_similarity",
    "StudyCase", "StudyTables", "run_study", "snr_from_templates", "save_study_tables", "load_study_tables",
]
