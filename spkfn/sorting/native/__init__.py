"""spkfn's native spike sorter (``run_sorter(rec, sorter="spkfn")``); see ``docs/sorting.md``.

Phases: preprocessing, noise levels, peak detection, motion correction (when the recording
drifts), local SVD features, clustering that needs no number of clusters, templates, template
matching, clean-up, unit properties.
"""

from ..params import SorterSpec, register_sorter
from .params import NATIVE_PARAMS

__all__ = ["NATIVE_PARAMS"]

register_sorter(SorterSpec(
    name="spkfn",
    runner="spkfn.sorting.native.pipeline:run",
    params=NATIVE_PARAMS,
    import_name=None,
    dist_name="spkfn",
    min_duration_s=1.0,
    description="spkfn's native sorter: local SVD features, recursive density clustering with isocut merges, "
                "greedy template matching, clean-up.",
    install_hint="The native sorter is part of spkfn.",
), replace=True)
