"""Benchmark: spkfn.detection against SpikeInterface, side by side in one run, on the same data.

A ground-truth recording (default 60 s, 384 channels of a Neuropixels 1.0 layout, 200 units
firing at 4 Hz, 5 µV noise) is generated with SpikeInterface's generator (``--generator
spikeinterface``, default) or ``spkfn.generate`` (``--generator spkfn``: band-limited noise,
``exp(-d/80)/d`` footprints, amplitudes 10-150 µV), written once to a float32 binary file, and
read back by both libraries (spkfn.io.read_binary / SpikeInterface's BinaryRecordingExtractor).

Measured, for each library:

- noise levels (MAD): time, and the agreement between the two;
- peak detection, locally exclusive, threshold 5, sweep 0.1 ms, radius 50 µm: the first call in
  the process (noise estimation + detection, including numba compilation or cache loading), and
  the best of ``--repeats`` warm runs of noise and of detection (medians are in the JSON); recall of ground-truth spikes above 5 × noise and
  precision, with one-to-one matching within 0.4 ms and 60 µm;
- localisation of the same peaks (spkfn's): centre of mass and monopolar triangulation (time,
  median distance in the probe plane to the true unit position, over peaks matched to a spike),
  SpikeInterface at its defaults (peak-to-peak, 75 µm), spkfn at its defaults (energy, 50 µm) and
  at SpikeInterface's settings;
- spkfn only: by_channel and matched_filtering detection, grid_convolution localisation, and the
  peak traced memory of detection (streaming).

Run: ``python benchmarks/bench_detection.py [--duration-s 60] [--json out.json]``; needs
``spikeinterface`` (the ``reference`` extra). Timings on a shared machine are provisional; only
the ratios, measured in the same run, are meaningful.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np


def _timed(func, *args, **kwargs):
    t = time.perf_counter()
    out = func(*args, **kwargs)
    return out, time.perf_counter() - t


def make_data(workdir: Path, *, duration_s, num_channels, num_units, rate_hz, noise_uV, seed, generator):
    """Write the ground-truth traces to ``workdir/traces.bin``; return geometry and ground truth."""
    from spkfn.io import neuropixels1_probe

    probe = neuropixels1_probe(num_channels=num_channels)
    fs = 30000.0
    if generator == "spkfn":
        from spkfn.generate import ground_truth_recording
        from spkfn.io import get_traces

        rec, gt, _ = ground_truth_recording(duration_s=duration_s, probe=probe, num_units=num_units,
                                            firing_rate_hz=rate_hz, noise_uV=noise_uV, seed=seed)
        n = rec.sizes["time"]
        path = workdir / "traces.bin"
        mm = np.memmap(path, dtype="float32", mode="w+", shape=(n, num_channels))
        step = int(fs)
        for a in range(0, n, step):
            mm[a:a + step] = get_traces(rec, start=a, end=min(n, a + step))
        mm.flush()
        del mm
        return {
            "path": path, "fs": fs, "num_samples": n, "locations": probe.contact_positions[:, :2].astype(float),
            "times": gt.sample_index.values.astype(np.int64), "units": gt.unit_index.values.astype(np.int64),
            "unit_xyz": np.column_stack([gt.x_um.values, gt.y_um.values, gt.z_um.values]),
            "best_channel": gt.best_channel.values.astype(np.int64),
            "trough_uV": gt.amplitude_uV.values.astype(float),
        }
    from spikeinterface.core import generate_ground_truth_recording

    rec, sorting = generate_ground_truth_recording(
        durations=[duration_s], sampling_frequency=fs, probe=probe, num_units=num_units,
        generate_sorting_kwargs=dict(firing_rates=rate_hz, refractory_period_ms=4.0),
        noise_kwargs=dict(noise_levels=noise_uV, strategy="on_the_fly"), seed=seed)
    n = rec.get_num_samples()
    path = workdir / "traces.bin"
    mm = np.memmap(path, dtype="float32", mode="w+", shape=(n, num_channels))
    step = int(fs)
    for a in range(0, n, step):
        mm[a:a + step] = rec.get_traces(start_frame=a, end_frame=min(n, a + step))
    mm.flush()
    del mm
    spikes = sorting.to_spike_vector()
    templates = rec.templates if hasattr(rec, "templates") else None
    if templates is None:  # older/newer SpikeInterface: the InjectTemplatesRecording keeps them
        templates = rec._kwargs["templates"]
    templates = np.asarray(templates)
    best = np.argmax(np.abs(templates).max(1), axis=1)
    trough = -templates.min(1)[np.arange(templates.shape[0]), best]
    return {
        "path": path, "fs": fs, "num_samples": n, "locations": probe.contact_positions[:, :2].astype(float),
        "times": spikes["sample_index"].astype(np.int64), "units": spikes["unit_index"].astype(np.int64),
        "unit_xyz": np.asarray(sorting.get_property("gt_unit_locations"), dtype=float),
        "best_channel": best, "trough_uV": trough,
    }


def open_spkfn(data):
    from spkfn.io import read_binary

    return read_binary(data["path"], sampling_frequency=data["fs"], num_channels=data["locations"].shape[0],
                       dtype="float32", channel_locations=data["locations"])


def open_si(data):
    from spikeinterface.core import read_binary

    rec = read_binary(data["path"], sampling_frequency=data["fs"], dtype="float32",
                      num_channels=data["locations"].shape[0])
    rec.set_dummy_probe_from_locations(data["locations"])
    return rec


def score(peaks, data, noise, *, tol_ms=0.4, max_um=60.0, above=5.0):
    """Recall of GT spikes whose trough exceeds ``above`` × the noise on their best channel, and
    precision; greedy one-to-one matching by time (within ``tol_ms``) and space (peak channel within
    ``max_um`` of the unit's x, y)."""
    fs = data["fs"]
    tol = int(round(tol_ms * fs / 1000))
    gt_t, gt_u = data["times"], data["units"]
    order = np.argsort(gt_t, kind="stable")
    gt_t, gt_u = gt_t[order], gt_u[order]
    unit_xy = data["unit_xyz"][:, :2]
    loc = data["locations"]
    taken = np.zeros(gt_t.size, bool)
    matched_unit = np.full(peaks.size, -1)
    s_all = peaks["sample_index"]
    c_all = peaks["channel_index"]
    lo = np.searchsorted(gt_t, s_all - tol, "left")
    hi = np.searchsorted(gt_t, s_all + tol, "right")
    for p in range(peaks.size):  # evaluation only: a plain loop is fine here
        best, bd = -1, tol + 1
        for k in range(lo[p], hi[p]):
            if taken[k]:
                continue
            if np.hypot(*(loc[c_all[p]] - unit_xy[gt_u[k]])) > max_um:
                continue
            d = abs(int(gt_t[k]) - int(s_all[p]))
            if d < bd:
                best, bd = k, d
        if best >= 0:
            taken[best] = True
            matched_unit[p] = gt_u[best]
    big = data["trough_uV"][gt_u] > above * noise[data["best_channel"][gt_u]]
    return {"recall": float(taken[big].mean()), "precision": float((matched_unit >= 0).mean()),
            "n_peaks": int(peaks.size), "n_gt_above": int(big.sum()), "n_gt": int(gt_t.size)}, matched_unit


def loc_error(locs, matched_unit, data):
    ok = matched_unit >= 0
    xy = data["unit_xyz"][matched_unit[ok], :2]
    err = np.hypot(np.asarray(locs["x"])[ok] - xy[:, 0], np.asarray(locs["y"])[ok] - xy[:, 1])
    return float(np.nanmedian(err))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration-s", type=float, default=60.0)
    ap.add_argument("--num-channels", type=int, default=384)
    ap.add_argument("--num-units", type=int, default=200)
    ap.add_argument("--rate-hz", type=float, default=4.0)
    ap.add_argument("--noise-uV", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--generator", choices=["spikeinterface", "spkfn"], default="spikeinterface")
    ap.add_argument("--max-triangulation-peaks", type=int, default=0,
                    help="localise at most this many peaks (seeded subset) with monopolar triangulation "
                         "(0: all); SpikeInterface takes ~4 ms of CPU per peak")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    import spikeinterface
    from spikeinterface.core import get_noise_levels
    from spikeinterface.sortingcomponents.peak_detection import detect_peaks as si_detect_peaks
    from spikeinterface.sortingcomponents.peak_localization import (
        localize_peaks as si_localize_peaks,
    )

    import spkfn
    from spkfn.detection import detect_peaks, localize_peaks, noise_levels, select_peaks

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="spkfn-bench-detection-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results = {"machine": {"python": platform.python_version(), "cpu_count": __import__("os").cpu_count(),
                           "spkfn": spkfn.__version__ if hasattr(spkfn, "__version__") else "dev",
                           "spikeinterface": spikeinterface.__version__},
               "params": vars(args) | {"workdir": str(workdir), "json": str(args.json)}}
    print(f"generating {args.duration_s:g} s x {args.num_channels} channels, {args.num_units} units ...", flush=True)
    data, t_gen = _timed(make_data, workdir, duration_s=args.duration_s, num_channels=args.num_channels,
                         num_units=args.num_units, rate_hz=args.rate_hz, noise_uV=args.noise_uV, seed=args.seed,
                         generator=args.generator)
    print(f"  {t_gen:.1f} s, {data['times'].size} GT spikes, file {data['path'].stat().st_size / 1e9:.2f} GB")
    rec = open_spkfn(data)
    si_rec = open_si(data)
    job = dict(n_jobs=args.n_jobs, chunk_duration="1s", progress_bar=False)
    det = dict(peak_sign="neg", detect_threshold=5.0, exclude_sweep_ms=0.1, radius_um=50.0)
    R = results["runs"] = {}

    # ---- first calls in this process (numba compile / cache load + noise + detection)
    def spkfn_first():
        nl = noise_levels(rec, n_jobs=args.n_jobs)
        return detect_peaks(rec, noise_levels=nl, n_jobs=args.n_jobs, progress=False, **det), nl

    def si_first():
        nl = get_noise_levels(si_rec, return_in_uV=False, force_recompute=True, **job)
        return si_detect_peaks(si_rec, method="locally_exclusive", method_kwargs=det | {"noise_levels": nl},
                               job_kwargs=job), nl

    (peaks, nl), R["spkfn_detect_first_s"] = _timed(spkfn_first)
    (si_peaks, si_nl), R["si_detect_first_s"] = _timed(si_first)
    print(f"first call (noise + detection): spkfn {R['spkfn_detect_first_s']:.2f} s, "
          f"SpikeInterface {R['si_detect_first_s']:.2f} s", flush=True)

    # ---- warm: noise, detection (best of the repeats, alternating libraries)
    t = {k: [] for k in ("spkfn_noise", "si_noise", "spkfn_detect", "si_detect")}
    for _ in range(args.repeats):
        nl, dt = _timed(noise_levels, rec, n_jobs=args.n_jobs)
        t["spkfn_noise"].append(dt)
        si_nl, dt = _timed(get_noise_levels, si_rec, return_in_uV=False, force_recompute=True, **job)
        t["si_noise"].append(dt)
        peaks, dt = _timed(detect_peaks, rec, noise_levels=nl, n_jobs=args.n_jobs, progress=False, **det)
        t["spkfn_detect"].append(dt)
        si_peaks, dt = _timed(si_detect_peaks, si_rec, method="locally_exclusive",
                              method_kwargs=det | {"noise_levels": si_nl}, job_kwargs=job)
        t["si_detect"].append(dt)
    for k, v in t.items():
        # Best of the repeats: on a shared machine the minimum is the least disturbed measurement.
        R[k + "_s"] = min(v)
        R[k + "_median_s"] = statistics.median(v)
    nl_same_data, R["spkfn_noise_0.5s_chunks_s"] = _timed(noise_levels, rec, chunk_duration_s=0.5, n_jobs=args.n_jobs)
    R["noise_rel_diff_median"] = float(np.median(np.abs(nl / si_nl - 1)))
    R["noise_rel_diff_median_0.5s_chunks"] = float(np.median(np.abs(nl_same_data / si_nl - 1)))
    s_spkfn, matched = score(peaks, data, nl)
    s_si, si_matched = score(si_peaks, data, nl)
    R["spkfn_detection"] = s_spkfn
    R["si_detection"] = s_si
    n_min = data["num_samples"] / data["fs"] / 60

    # ---- spkfn only: other detection methods, streaming memory
    for method in ("by_channel", "matched_filtering"):
        p, dt = _timed(detect_peaks, rec, method=method, noise_levels=nl, n_jobs=args.n_jobs, progress=False, **det)
        R[f"spkfn_{method}_s"] = dt
        R[f"spkfn_{method}"] = score(p, data, nl)[0] if method == "matched_filtering" else {"n_peaks": int(p.size)}
    tracemalloc.start()
    detect_peaks(rec, noise_levels=nl, n_jobs=args.n_jobs, progress=False, **det)
    R["spkfn_detect_traced_peak_MB"] = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    R["recording_MB"] = data["path"].stat().st_size / 1e6

    # ---- localisation of the same peaks (spkfn's): SpikeInterface at its defaults (ptp, 75 µm),
    # spkfn at its defaults (energy, 50 µm) and at SpikeInterface's settings
    lk = dict(ms_before=0.5, ms_after=0.5)
    si_set = dict(feature="ptp", radius_um=75.0)
    locs, R["spkfn_com_s"] = _timed(localize_peaks, rec, peaks, method="center_of_mass", n_jobs=args.n_jobs,
                                    progress=False, **lk)
    R["spkfn_com_err_um"] = loc_error(locs, matched, data)
    locs = localize_peaks(rec, peaks, method="center_of_mass", n_jobs=args.n_jobs, progress=False, **lk, **si_set)
    R["spkfn_com_si_settings_err_um"] = loc_error(locs, matched, data)
    si_locs, R["si_com_s"] = _timed(si_localize_peaks, si_rec, peaks, method="center_of_mass",
                                    method_kwargs=dict(radius_um=75.0), job_kwargs=job, **lk)
    R["si_com_err_um"] = loc_error(si_locs, matched, data)
    locs, R["spkfn_grid_s"] = _timed(localize_peaks, rec, peaks, method="grid_convolution", n_jobs=args.n_jobs,
                                     progress=False, **lk)
    R["spkfn_grid_err_um"] = loc_error(locs, matched, data)

    sub_idx = np.arange(peaks.size)
    if args.max_triangulation_peaks and peaks.size > args.max_triangulation_peaks:
        _, sub_idx = select_peaks(peaks, n_peaks=args.max_triangulation_peaks, seed=0, return_indices=True)
    sub, sub_matched = peaks[sub_idx], matched[sub_idx]
    R["triangulation_n_peaks"] = int(sub.size)

    def err3(lo):
        ok = sub_matched >= 0
        xyz = data["unit_xyz"][sub_matched[ok]]
        return float(np.nanmedian(np.sqrt((lo["x"][ok] - xyz[:, 0]) ** 2 + (lo["y"][ok] - xyz[:, 1]) ** 2
                                          + (lo["z"][ok] - xyz[:, 2]) ** 2)))

    locs, R["spkfn_mono_s"] = _timed(localize_peaks, rec, sub, method="monopolar_triangulation",
                                     n_jobs=args.n_jobs, progress=False, **lk)
    R["spkfn_mono_err_um"] = loc_error(locs, sub_matched, data)
    R["spkfn_mono_err_3d_um"] = err3(locs)
    locs, R["spkfn_mono_si_settings_s"] = _timed(localize_peaks, rec, sub, method="monopolar_triangulation",
                                                 n_jobs=args.n_jobs, progress=False, **lk, **si_set)
    R["spkfn_mono_si_settings_err_um"] = loc_error(locs, sub_matched, data)
    R["spkfn_mono_si_settings_err_3d_um"] = err3(locs)
    print(f"SpikeInterface monopolar triangulation of {sub.size} peaks (slow) ...", flush=True)
    si_locs, R["si_mono_s"] = _timed(si_localize_peaks, si_rec, sub, method="monopolar_triangulation",
                                     method_kwargs=dict(radius_um=75.0, max_distance_um=150.0), job_kwargs=job, **lk)
    R["si_mono_err_um"] = loc_error(si_locs, sub_matched, data)
    R["si_mono_err_3d_um"] = err3(si_locs)

    # ---- report
    def ratio(a, b):
        return R[b] / R[a] if R[a] > 0 else float("nan")

    rows = [
        ("noise levels (warm)", R["spkfn_noise_s"], R["si_noise_s"], ""),
        ("noise + detection, first call", R["spkfn_detect_first_s"], R["si_detect_first_s"], ""),
        ("noise + detection (warm)", R["spkfn_noise_s"] + R["spkfn_detect_s"], R["si_noise_s"] + R["si_detect_s"], ""),
        ("detection alone (warm)", R["spkfn_detect_s"], R["si_detect_s"],
         f"recall {s_spkfn['recall']:.3f} / {s_si['recall']:.3f}, precision {s_spkfn['precision']:.3f} / "
         f"{s_si['precision']:.3f}"),
        ("centre of mass", R["spkfn_com_s"], R["si_com_s"],
         f"median error {R['spkfn_com_err_um']:.2f} (SI settings {R['spkfn_com_si_settings_err_um']:.2f}) / "
         f"{R['si_com_err_um']:.2f} µm"),
        (f"monopolar triangulation ({sub.size} peaks)", R["spkfn_mono_s"], R["si_mono_s"],
         f"median error {R['spkfn_mono_err_um']:.2f} (SI settings {R['spkfn_mono_si_settings_err_um']:.2f}) / "
         f"{R['si_mono_err_um']:.2f} µm"),
    ]
    print(f"\n{args.duration_s:g} s x {args.num_channels} ch, {data['times'].size} GT spikes, n_jobs={args.n_jobs} "
          f"(provisional: shared machine)\n")
    print("| step | spkfn (s) | SpikeInterface (s) | SI / spkfn | quality (spkfn / SI) |")
    print("|---|---|---|---|---|")
    for name, a, b, q in rows:
        print(f"| {name} | {a:.2f} | {b:.2f} | {b / a:.1f}x | {q} |")
    print(f"\nnoise agreement: median |spkfn/SI - 1| = {R['noise_rel_diff_median']:.4f} "
          f"(0.5 s chunks: {R['noise_rel_diff_median_0.5s_chunks']:.4f}; spkfn with 0.5 s chunks "
          f"{R['spkfn_noise_0.5s_chunks_s']:.2f} s)")
    print(f"spkfn by_channel {R['spkfn_by_channel_s']:.2f} s; matched_filtering {R['spkfn_matched_filtering_s']:.2f} s "
          f"(recall {R['spkfn_matched_filtering']['recall']:.3f}, precision "
          f"{R['spkfn_matched_filtering']['precision']:.3f}); grid convolution {R['spkfn_grid_s']:.2f} s, "
          f"median error {R['spkfn_grid_err_um']:.2f} µm")
    print(f"spkfn detection traced peak memory {R['spkfn_detect_traced_peak_MB']:.0f} MB for a "
          f"{R['recording_MB']:.0f} MB recording; throughput {n_min / (R['spkfn_noise_s'] + R['spkfn_detect_s']):.1f} "
          f"min of recording per s (noise + detection)")
    print(f"triangulation 3-D median error: spkfn {R['spkfn_mono_err_3d_um']:.2f} µm (SI settings "
          f"{R['spkfn_mono_si_settings_err_3d_um']:.2f}), SI {R['si_mono_err_3d_um']:.2f} µm; spkfn at SI settings took "
          f"{R['spkfn_mono_si_settings_s']:.2f} s")
    R["ratios"] = {"noise_plus_detection_warm": (R["si_noise_s"] + R["si_detect_s"]) / (R["spkfn_noise_s"] + R["spkfn_detect_s"]),
                   "noise_plus_detection_first": ratio("spkfn_detect_first_s", "si_detect_first_s"),
                   "detection_warm": ratio("spkfn_detect_s", "si_detect_s"),
                   "noise": ratio("spkfn_noise_s", "si_noise_s"),
                   "center_of_mass": ratio("spkfn_com_s", "si_com_s"),
                   "monopolar_triangulation": ratio("spkfn_mono_s", "si_mono_s")}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=float))
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
