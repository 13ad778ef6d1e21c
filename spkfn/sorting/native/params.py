"""The native sorter's parameter table (one :class:`~spkfn.sorting.params.Param` per knob)."""

from __future__ import annotations

from ..params import Param

__all__ = ["NATIVE_PARAMS"]

NATIVE_PARAMS: tuple[Param, ...] = (
    # preprocessing
    Param("filter", str, "auto", "preprocessing", "Band-pass filter the traces: 'auto' unless attrs['pipeline'] says the recording is already filtered, 'always', or 'never'.", choices=("auto", "always", "never")),
    Param("freq_min_hz", float, 300.0, "preprocessing", "Low cut-off of the band-pass filter.", min=0, min_exclusive=True, unit="Hz"),
    Param("freq_max_hz", float, 6000.0, "preprocessing", "High cut-off of the band-pass filter.", min=0, min_exclusive=True, unit="Hz"),
    Param("reference", str, "median", "preprocessing", "Common reference subtracted per group (shank) unless already applied: 'median', 'average' or 'none'.", choices=("median", "average", "none")),
    Param("reference_when", str, "auto", "preprocessing", "'auto': skip the reference when attrs['pipeline'] already has one or a group has fewer than reference_min_channels channels; 'always'.", choices=("auto", "always")),
    Param("reference_min_channels", int, 16, "preprocessing", "With reference_when='auto', no common reference on groups (shanks) with fewer channels: on a tetrode every unit is on most channels and the reference would subtract the spikes.", min=1),
    Param("whiten", bool, False, "preprocessing", "Whiten the traces locally (ZCA over the channels within whiten_radius_um) before sorting."),
    Param("whiten_radius_um", float, 100.0, "preprocessing", "Radius of the local whitening.", min=0, min_exclusive=True, unit="µm"),
    Param("cache_preprocessed", bool, True, "preprocessing", "Write the preprocessed traces to the sorter's folder once (float32) instead of recomputing the filters at every pass."),
    Param("keep_preprocessed", bool, False, "preprocessing", "Keep the preprocessed (and motion-corrected) traces cached in the sorter's folder after the run; by default they are deleted at the end."),
    # detection
    Param("detect_threshold", float, 5.0, "detection", "Peak detection threshold, in multiples of each channel's noise level (MAD).", min=0, min_exclusive=True),
    Param("detect_radius_um", float, 100.0, "detection", "A peak must be the largest within this radius (locally exclusive detection).", min=0, unit="µm"),
    Param("exclude_sweep_ms", float, 0.5, "detection", "A peak must be the extremum within ± this time.", min=0, max=10, unit="ms"),
    # motion
    Param("motion_correction", str, "auto", "motion", "'auto': estimate the motion from the larger peaks and correct the traces when the displacement spans at least motion_min_um; 'always'; 'never'. Needs spkfn.detection.motion.", choices=("auto", "always", "never")),
    Param("motion_min_um", float, 10.0, "motion", "With motion_correction='auto', the traces are corrected when the estimated displacement spans at least this (max - min over time, at any depth).", min=0, unit="µm"),
    Param("motion_peak_threshold", float, 7.0, "motion", "Peaks at least this multiple of the noise are localised (monopolar triangulation) for the motion estimate.", min=0, min_exclusive=True),
    Param("motion_max_peaks", int, 100000, "motion", "Most peaks localised for the motion estimate (uniform seeded draw).", min=100),
    Param("motion_bin_s", float, 2.0, "motion", "Time bin of the motion estimate (DREDge, Windolf et al. 2023).", min=0, min_exclusive=True, unit="s"),
    Param("motion_rigid", bool, False, "motion", "Estimate one displacement for the whole probe instead of non-rigid windows along depth."),
    # features
    Param("max_peaks", int, 200000, "features", "Most peaks used for clustering (balanced across channels, seeded draw).", min=100),
    Param("feature_ms_before", float, 0.5, "features", "Feature window before the peak.", min=0, unit="ms"),
    Param("feature_ms_after", float, 1.0, "features", "Feature window after the peak.", min=0, min_exclusive=True, unit="ms"),
    Param("feature_radius_um", float, 75.0, "features", "Channels within this radius of a peak's channel carry its features.", min=0, unit="µm"),
    Param("n_svd_components", int, 5, "features", "Temporal SVD components per channel.", min=1, max=20),
    # clustering
    Param("clustering_method", str, "isosplit", "clustering", "Clustering of each part: 'isosplit' (isosplit6 package; needs no number of clusters).", choices=("isosplit",)),
    Param("min_cluster_size", int, 20, "clustering", "Smallest cluster kept.", min=2),
    Param("n_pca", int, 6, "clustering", "Principal components each part is clustered in.", min=1, max=50),
    Param("max_split_depth", int, 4, "clustering", "Most levels of recursive splitting.", min=1, max=20),
    Param("merge_radius_um", float, 50.0, "clustering", "Clusters whose peak channels are farther apart are not merged.", min=0, unit="µm"),
    Param("dip_threshold", float, 2.0, "clustering", "Two clusters merge when the isocut dip score of their spikes projected on the axis between them is below this.", min=0, min_exclusive=True),
    # templates
    Param("template_ms_before", float, 1.0, "templates", "Template window before the spike.", min=0, unit="ms"),
    Param("template_ms_after", float, 2.0, "templates", "Template window after the spike.", min=0, min_exclusive=True, unit="ms"),
    Param("template_radius_um", float, 250.0, "templates", "Templates are estimated on the channels within this radius of the cluster's main channel.", min=0, unit="µm"),
    Param("template_sparsity", float, 1.0, "templates", "Template channels whose peak |amplitude| is below this multiple of the channel's noise are dropped.", min=0),
    Param("mixture_max_residual", float, 0.2, "templates", "A template is dropped as a duplicate or a collision of two larger clusters when one or two of their templates (shifted, scaled) leave less than this fraction of its energy.", min=0, max=1),
    Param("mixture_amplitude_ratio", float, 1.4, "templates", "Scale range [1/r, r] allowed for the templates explaining another in the mixture test.", min=1),
    Param("max_spikes_per_template", int, 300, "templates", "Spikes averaged per template (seeded draw).", min=1),
    # matching
    Param("matching_threshold", float, 4.0, "matching", "Residual peaks larger than this (× noise) are matched to templates.", min=0, min_exclusive=True),
    Param("matching_radius_um", float, 50.0, "matching", "Residual peaks are locally exclusive within this radius; templates whose main channel is within it are tried.", min=0, unit="µm"),
    Param("matching_z", float, 6.0, "matching", "A template fit is accepted when <r, w> / (|w| sigma) reaches this.", min=0, min_exclusive=True),
    Param("amplitude_min", float, 0.5, "matching", "Smallest amplitude scale of a fitted template.", min=0, min_exclusive=True),
    Param("amplitude_max", float, 2.0, "matching", "Largest amplitude scale of a fitted template.", min=0, min_exclusive=True),
    # clean-up
    Param("duplicate_ms", float, 0.4, "cleanup", "Spikes of one unit closer than this are duplicates (the later is removed).", min=0, unit="ms"),
    Param("cleanup_radius_um", float, 100.0, "cleanup", "Only units whose largest channels are within this distance are compared for merges and fragments.", min=0, unit="µm"),
    Param("merge_max_distance", float, 0.25, "cleanup", "Units whose templates differ by less than this (||a - b|| / max(||a||, ||b||) at the best lag within ±2 samples) are merged.", min=0),
    Param("merge_max_distance_ccg", float, 0.4, "cleanup", "Units whose templates differ by less than this are merged when their cross-correlogram respects the refractory period (see merge_max_ccg_ratio).", min=0),
    Param("merge_max_ccg_ratio", float, 0.25, "cleanup", "... i.e. when the pairs of their spikes closer than refractory_ms are at most this fraction of those expected from independent trains.", min=0),
    Param("refractory_ms", float, 1.5, "cleanup", "Refractory period used by the merge test.", min=0, unit="ms"),
    Param("redundant_ms", float, 0.4, "cleanup", "Spikes of two units closer than this coincide.", min=0, unit="ms"),
    Param("redundant_fraction", float, 0.5, "cleanup", "A unit is redundant when more than this fraction of its spikes coincide with another unit's.", min=0, max=1),
    Param("fragment_min_similarity", float, 0.8, "cleanup", "A unit whose template has at least this cosine similarity (best lag within ±1 ms) with another unit's ...", min=0, max=1),
    Param("fragment_max_ratio", float, 0.1, "cleanup", "... and fewer than this fraction of that unit's spikes is a fragment of it and is removed.", min=0, max=1),
    Param("min_amplitude_median", float, 0.75, "cleanup", "Units whose spikes were fitted at a median scale below this fraction of their template are removed (noise fitted by a template).", min=0),
    Param("min_spikes", int, 20, "cleanup", "Units with fewer spikes are removed.", min=0),
    Param("min_snr", float, 2.5, "cleanup", "Units whose template peak is below this multiple of the noise are removed.", min=0),
    # output
    Param("save_intermediate", bool, False, "output", "Also write the clusters, templates and matched spikes before clean-up to the sorter's folder (.npz), for inspection."),
)
