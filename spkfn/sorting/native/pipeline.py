"""The native sorter's pipeline: :func:`run` (registered as ``"spkfn"``)."""

from __future__ import annotations

import json
import logging
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import xarray as xr
from threadpoolctl import threadpool_limits

from ...core.atomic import write_json_atomic
from ...detection import detect_peaks, extract_snippets, neighbour_table, noise_levels, select_peaks
from ...io.recording import channel_locations, num_samples, scale_to_uV
from ...io.sorting import sorting_from_arrays

logger = logging.getLogger(__name__)

__all__ = ["run", "PhaseLog"]


class PhaseLog:
    """Wall time of each phase, logged and written to ``folder/phases.json``."""

    def __init__(self, folder: Path | None):
        self.folder = folder
        self.phases: dict[str, float] = {}
        self.info: dict[str, object] = {}

    @contextmanager
    def phase(self, name: str):
        t0 = time.perf_counter()
        logger.info("phase %s ...", name)
        try:
            yield
        finally:
            dt = time.perf_counter() - t0
            self.phases[name] = round(self.phases.get(name, 0.0) + dt, 3)
            logger.info("phase %s: %.2f s", name, dt)
            self.write()

    def write(self):
        if self.folder is not None:
            write_json_atomic({"phases_s": self.phases, "info": self.info}, self.folder / "phases.json")


def _already(recording: xr.DataArray) -> tuple[bool, bool, bool]:
    """(filtered, referenced, whitened) according to ``attrs["pipeline"]``."""
    steps = recording.attrs.get("pipeline") or []
    if isinstance(steps, str):
        try:
            steps = json.loads(steps)
        except ValueError:
            steps = []
    names = []
    for s in steps:
        if isinstance(s, dict):
            name = s.get("step")
            p = s.get("params") or {}
            if name == "filter" and p.get("btype") in ("bandpass", "highpass"):
                name = "bandpass_filter"
            names.append(name)
    filtered = any(n in ("bandpass_filter", "highpass_filter") for n in names)
    referenced = "common_reference" in names
    whitened = "whiten" in names
    return filtered, referenced, whitened


def preprocess(recording: xr.DataArray, params: dict, *, seed: int, n_jobs: int, log: PhaseLog) -> tuple[xr.DataArray, list]:
    """The lazy preprocessing chain the sorter applies (steps already in ``attrs["pipeline"]`` skipped)."""
    from ...preprocessing import bandpass_filter, common_reference
    from ...preprocessing.whiten import whiten

    filtered, referenced, whitened = _already(recording)
    applied = []
    rec = recording
    if params["filter"] == "always" or (params["filter"] == "auto" and not filtered):
        rec = bandpass_filter(rec, freq_min_hz=params["freq_min_hz"], freq_max_hz=params["freq_max_hz"])
        applied.append("bandpass_filter")
    if params["reference"] != "none" and (params["reference_when"] == "always" or not referenced):
        # On a few channels (a tetrode) every unit is on most of them: a common reference would
        # subtract the spikes themselves.
        _, per_group = np.unique(rec.coords["group"].values, return_counts=True)
        if params["reference_when"] == "auto" and per_group.min() < params["reference_min_channels"]:
            log.info["reference_skipped"] = (f"{int(per_group.min())} channels in a group "
                                             f"< reference_min_channels={params['reference_min_channels']}")
        else:
            rec = common_reference(rec, operator=params["reference"])
            applied.append("common_reference")
    if params["whiten"] and not whitened:
        rec, _ = whiten(rec, mode="local", radius_um=params["whiten_radius_um"], seed=seed, n_jobs=n_jobs)
        applied.append("whiten")
    if applied and np.any(rec.coords["gain_to_uV"].values != 1):
        rec = scale_to_uV(rec)
    log.info["preprocessing_applied"] = applied
    return rec, applied


#: Trace caches the sorter writes to its folder (removed at the end unless keep_preprocessed).
_CACHES = ("preprocessed.bin", "motion_corrected.bin")


def run(recording: xr.DataArray, *, params: dict, folder=None, seed: int = 0, n_jobs: int = 1,
        progress: bool = True) -> xr.Dataset:
    """Sort ``recording`` with the native sorter (see ``docs/sorting.md``); called by ``run_sorter``."""
    try:
        return _run(recording, params=params, folder=folder, seed=seed, n_jobs=n_jobs, progress=progress)
    finally:
        if folder is not None and not params["keep_preprocessed"]:
            for name in _CACHES:
                for path in (Path(folder) / name, Path(folder) / (name + ".json")):
                    path.unlink(missing_ok=True)


def _run(recording: xr.DataArray, *, params: dict, folder=None, seed: int = 0, n_jobs: int = 1,
         progress: bool = True) -> xr.Dataset:
    from ...io.binary import read_binary_folder, write_binary
    from .cleanup import clean_units, find_mixtures, unit_properties
    from .clustering import merge_clusters, split_clusters
    from .features import extract_features, temporal_basis
    from .matching import match_templates
    from .templates import align_templates, dense_from_sparse, select_per_cluster, sparse_templates

    folder = Path(folder) if folder is not None else None
    log = PhaseLog(folder)
    fs = float(recording.attrs["sampling_frequency"])
    n = num_samples(recording)
    n_ch = recording.sizes["channel"]
    loc = channel_locations(recording)
    p = params
    ms = lambda v: int(round(v * fs / 1000.0))  # noqa: E731

    def empty(reason: str) -> xr.Dataset:
        warnings.warn(f"spkfn sorter: {reason}; returning an empty sorting.", stacklevel=3)
        log.info["empty_reason"] = reason
        log.write()
        out = sorting_from_arrays(np.zeros(0, np.int64), np.zeros(0, np.int64), sampling_frequency=fs,
                                  num_samples=n)
        return out.assign_attrs(phases_s=json.dumps(log.phases))

    # 1. preprocessing (+ cache)
    with log.phase("preprocessing"):
        rec, applied = preprocess(recording, p, seed=seed, n_jobs=n_jobs, log=log)
        if applied and p["cache_preprocessed"] and folder is not None:
            path = write_binary(rec, folder / "preprocessed.bin", dtype="float32", n_jobs=n_jobs, progress=progress)
            rec = read_binary_folder(path)
    # 2. noise
    with log.phase("noise"):
        noise = noise_levels(rec, seed=seed, n_jobs=n_jobs).astype(np.float64)
        noise = np.where(noise > 0, noise, np.median(noise[noise > 0]) if np.any(noise > 0) else 1.0)
    # 3. detection
    with log.phase("detection"):
        peaks = detect_peaks(rec, method="locally_exclusive", peak_sign="neg", detect_threshold=p["detect_threshold"],
                             exclude_sweep_ms=p["exclude_sweep_ms"], radius_um=p["detect_radius_um"],
                             noise_levels=noise, seed=seed, n_jobs=n_jobs, progress=progress)
        log.info["num_peaks"] = int(peaks.size)
    if peaks.size < p["min_cluster_size"]:
        return empty(f"only {peaks.size} peaks were detected (threshold {p['detect_threshold']:g} × noise)")
    # 4. motion: estimated from the larger peaks; the traces are corrected when the recording drifts
    if p["motion_correction"] != "never":
        with log.phase("motion"):
            corrected = _motion_phase(rec, peaks, noise, p, folder=folder, seed=seed, n_jobs=n_jobs,
                                      progress=progress, log=log)
        if corrected is not None:
            rec = corrected
            with log.phase("noise"):
                noise = noise_levels(rec, seed=seed, n_jobs=n_jobs).astype(np.float64)
                noise = np.where(noise > 0, noise, np.median(noise[noise > 0]) if np.any(noise > 0) else 1.0)
            with log.phase("detection"):
                peaks = detect_peaks(rec, method="locally_exclusive", peak_sign="neg",
                                     detect_threshold=p["detect_threshold"], exclude_sweep_ms=p["exclude_sweep_ms"],
                                     radius_um=p["detect_radius_um"], noise_levels=noise, seed=seed, n_jobs=n_jobs,
                                     progress=progress)
                log.info["num_peaks_corrected"] = int(peaks.size)
            if peaks.size < p["min_cluster_size"]:
                return empty(f"only {peaks.size} peaks were detected after motion correction")

    # 5. features
    with log.phase("features"):
        sel = select_peaks(peaks, method="by_channel", n_peaks=min(peaks.size, p["max_peaks"]), seed=seed)
        nb_f = ms(p["feature_ms_before"])
        wf_sub = select_peaks(sel, method="uniform", n_peaks=min(sel.size, 5000), seed=seed + 1)
        wf = extract_snippets(rec, wf_sub, ms_before=p["feature_ms_before"], ms_after=p["feature_ms_after"],
                              radius_um=0.0, n_jobs=n_jobs, progress=False)[:, :, 0]
        basis = temporal_basis(wf, n_components=p["n_svd_components"])
        neigh = neighbour_table(rec, radius_um=p["feature_radius_um"])
        shape = (sel.size, neigh.shape[1], basis.shape[1])
        if folder is not None:
            feats = np.lib.format.open_memmap(folder / "features.npy", mode="w+", dtype=np.float32, shape=shape)
        else:
            feats = np.zeros(shape, np.float32)
        extract_features(rec, sel, neighbours=neigh, basis=basis, nbefore=nb_f, out=feats.view(np.ndarray),
                         n_jobs=n_jobs, progress=progress)
    # 6. clustering (many small linear-algebra calls: one BLAS thread is several times faster)
    with log.phase("clustering"), threadpool_limits(limits=1, user_api="blas"):
        labels = np.full(sel.size, -1, dtype=np.int64)
        ch = sel["channel_index"]
        next_label = 0
        for c in range(n_ch):
            idx = np.flatnonzero(ch == c)
            if idx.size < p["min_cluster_size"]:
                continue
            x = np.asarray(feats[idx]).reshape(idx.size, -1)
            lab = split_clusters(x, method=p["clustering_method"], min_cluster_size=p["min_cluster_size"],
                                 n_pca=p["n_pca"], max_depth=p["max_split_depth"])
            ok = lab >= 0
            labels[idx[ok]] = lab[ok] + next_label
            next_label += int(lab.max()) + 1 if ok.any() else 0
        log.info["num_clusters_split"] = int(next_label)
        labels = merge_clusters(np.asarray(feats), labels, ch, neigh, loc, max_distance_um=p["merge_radius_um"],
                                dip_threshold=p["dip_threshold"], seed=seed)
        n_clusters = int(labels.max()) + 1 if (labels >= 0).any() else 0
        log.info["num_clusters"] = n_clusters
        if folder is not None and p["save_intermediate"]:
            np.savez(folder / "clusters_intermediate.npz", peaks=sel, merged=labels)
    if n_clusters == 0:
        return empty("clustering found no cluster")
    # 7. templates
    with log.phase("templates"):
        nb_t, na_t = ms(p["template_ms_before"]), ms(p["template_ms_after"])
        extra = ms(0.5)
        pick = select_per_cluster(labels, max_per_cluster=p["max_spikes_per_template"], seed=seed)
        # Channels of each cluster: within template_radius_um of its most common peak channel.
        home = np.array([np.bincount(ch[labels == k], minlength=n_ch).argmax() for k in range(n_clusters)])
        tneigh = neighbour_table(rec, radius_um=p["template_radius_um"])
        tchans = tneigh[home]
        tpl, counts = sparse_templates(rec, sel["sample_index"][pick], labels[pick], tchans, nbefore=nb_t + extra,
                                       nafter=na_t + extra, n_jobs=n_jobs, progress=progress)
        tpl, _ = align_templates(tpl, nbefore=nb_t, extra=extra)
        sizes = np.bincount(labels[labels >= 0], minlength=n_clusters)
        keep = counts >= max(1, p["min_cluster_size"] // 2)
        tpl, tchans, counts, sizes = tpl[keep], tchans[keep], counts[keep], sizes[keep]
        tpl, tchans = _sparsify(tpl, tchans, noise, p["template_sparsity"])
        # Duplicates and collision clusters: templates explained by one or two others.
        dense = dense_from_sparse(tpl, tchans, n_ch)
        best_ch = tchans[np.arange(tpl.shape[0]), np.abs(tpl).max(axis=1).argmax(axis=1)]
        dist = np.sqrt(((loc[best_ch][:, None] - loc[best_ch][None]) ** 2).sum(-1))
        # A template can only be explained by templates of larger clusters (collision clusters and
        # duplicates found on a neighbouring channel are the smaller ones).
        order = np.lexsort((np.arange(sizes.size), sizes))
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        cands = [np.flatnonzero((dist[k] <= p["template_radius_um"]) & (rank > rank[k])).tolist()
                 for k in range(tpl.shape[0])]
        keep = find_mixtures(dense, order=order, candidates=cands, max_lag=ms(1.0),
                             amplitude_range=(1.0 / p["mixture_amplitude_ratio"], p["mixture_amplitude_ratio"]),
                             max_residual=p["mixture_max_residual"], duplicates=False)
        log.info["mixtures_removed"] = int((~keep).sum())
        if folder is not None and p["save_intermediate"]:
            np.savez(folder / "templates_intermediate.npz", dense=dense, counts=counts, keep=keep)
        tpl, tchans = tpl[keep], tchans[keep]
        del dense
        log.info["num_templates"] = int(tpl.shape[0])
    if tpl.shape[0] == 0:
        return empty("no cluster had enough spikes for a template")
    # 8. matching
    with log.phase("matching"):
        spikes = match_templates(rec, tpl, tchans, nbefore=nb_t, noise_levels=noise,
                                 detect_threshold=p["matching_threshold"], z_threshold=p["matching_z"],
                                 amplitude_range=(p["amplitude_min"], p["amplitude_max"]),
                                 candidate_radius_um=p["matching_radius_um"], n_jobs=n_jobs, progress=progress)
        log.info["num_spikes_matched"] = int(spikes.size)
    # 9. clean-up
    if folder is not None and p["save_intermediate"]:
        np.savez(folder / "matching_intermediate.npz", spikes=spikes, tpl=tpl, tchans=tchans, noise=noise)
    with log.phase("cleanup"):
        spikes, tpl, tchans, info = clean_units(spikes, tpl, tchans, noise=noise, fs=fs, n_samples=n, locations=loc, params=p)
        log.info.update(info)
    if spikes.size == 0:
        return empty("no spikes were left after matching and clean-up")
    with log.phase("properties"):
        props = unit_properties(spikes, tpl, tchans, noise=noise, locations=loc, nbefore=nb_t, fs=fs, n_samples=n,
                                channel_ids=rec.coords["channel"].values)
        sorting = sorting_from_arrays(spikes["sample_index"], spikes["unit_index"], sampling_frequency=fs,
                                      unit_ids=np.arange(tpl.shape[0]), num_samples=n)
        sorting = sorting.assign(amplitude=("spike", spikes["amplitude"].astype(np.float32)),
                                 **{k: ("unit", v) for k, v in props.items()})
    log.write()
    return sorting.assign_attrs(phases_s=json.dumps(log.phases), sorter_info=json.dumps(log.info, default=str))


def _motion_phase(rec: xr.DataArray, peaks: np.ndarray, noise: np.ndarray, p: dict, *, folder, seed: int,
                  n_jobs: int, progress: bool, log: PhaseLog) -> xr.DataArray | None:
    """Estimate the motion from the larger peaks (``spkfn.detection.motion``, DREDge, non-rigid) and
    return the motion-corrected recording when the displacement spans more than ``motion_min_um``
    (always with ``motion_correction="always"``); None when nothing is corrected."""
    try:
        from ...detection import motion as motion_mod
    except ImportError:  # spkfn.detection.motion not in this build
        motion_mod = None
    if motion_mod is None:
        log.info["motion"] = "not available in this build (spkfn.detection.motion)"
        if p["motion_correction"] == "always":
            warnings.warn("spkfn sorter: motion_correction='always' but spkfn.detection.motion is not available; "
                          "sorting without motion correction.", stacklevel=4)
        return None
    from ...detection import localize_peaks

    fs = float(rec.attrs["sampling_frequency"])
    duration_s = num_samples(rec) / fs
    if duration_s < 4 * p["motion_bin_s"]:
        log.info["motion"] = f"recording too short ({duration_s:.0f} s) to estimate motion"
        return None
    strong = peaks[np.abs(peaks["amplitude"]) >= p["motion_peak_threshold"] * noise[peaks["channel_index"]]]
    strong = select_peaks(strong, method="uniform", n_peaks=min(strong.size, p["motion_max_peaks"]), seed=seed + 2)
    if strong.size < 100:
        log.info["motion"] = f"too few large peaks ({strong.size}) to estimate motion"
        return None
    locs = localize_peaks(rec, strong, method="monopolar_triangulation", n_jobs=n_jobs, progress=progress)
    ok = np.isfinite(locs["y"])
    motion = motion_mod.estimate_motion((strong[ok], locs["y"][ok]), recording=rec, method="dredge",
                                        rigid=p["motion_rigid"], bin_s=p["motion_bin_s"], n_jobs=n_jobs,
                                        progress=progress)
    values = np.asarray(motion.values, dtype=np.float64)
    span = float(np.nanmax(np.nanmax(values, axis=-2) - np.nanmin(values, axis=-2))) if values.size else 0.0
    log.info["motion_span_um"] = round(span, 2)
    if folder is not None:
        np.savez(folder / "motion.npz", displacement_um=values, time_bin_s=motion.coords["time_bin"].values,
                 depth_bin_um=motion.coords["depth_bin"].values)
    if p["motion_correction"] == "auto" and span < p["motion_min_um"]:
        log.info["motion"] = f"no correction: displacement span {span:.1f} µm < motion_min_um"
        return None
    log.info["motion"] = f"corrected (displacement span {span:.1f} µm)"
    corrected = motion_mod.correct_motion(rec, motion)
    if folder is not None and p["cache_preprocessed"]:
        from ...io.binary import read_binary_folder, write_binary

        path = write_binary(corrected, folder / "motion_corrected.bin", dtype="float32", n_jobs=n_jobs,
                            progress=progress)
        corrected = read_binary_folder(path)
    return corrected


def _sparsify(tpl: np.ndarray, tchans: np.ndarray, noise: np.ndarray, snr: float):
    """Drop template channels whose peak |amplitude| is below ``snr`` times the channel's noise
    (the channel with the largest amplitude is always kept)."""
    amp = np.abs(tpl).max(axis=1)  # (units, k)
    nz = noise[np.maximum(tchans, 0)]
    keep = ((amp >= snr * nz) | (amp == amp.max(axis=1, keepdims=True))) & (tchans >= 0)
    k = int(keep.sum(1).max()) if keep.size else 0
    new_t = np.zeros((tpl.shape[0], tpl.shape[1], max(k, 1)), np.float32)
    new_c = np.full((tpl.shape[0], max(k, 1)), -1, np.int64)
    for u in range(tpl.shape[0]):
        j = np.flatnonzero(keep[u])
        new_t[u, :, :j.size] = tpl[u][:, j]
        new_c[u, :j.size] = tchans[u, j]
    return new_t, new_c
