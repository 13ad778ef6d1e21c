"""Motion estimation: time and error against the generator's truth, spkfn beside SpikeInterface.

A Neuropixels-1.0-like recording (384 channels, 30 kHz, 100 units) is generated with known
drift (``--duration-s``, default 600 s = 10 minutes) for each case:

- ``rigid``: sine, 20 µm, period 120 s;
- ``nonrigid``: random walk (sd 25 µm at the end, knots every 10 s) whose amplitude grows
  linearly with depth (``depth_gradient=1``: 0.5x at the bottom, 1.5x at the top) plus a rigid
  10 µm, 60 s sine.

Peaks come from one of:

- ``--peaks gt`` (default): the ground-truth spikes of units with SNR >= 4 at their drifted
  positions plus localisation error (sd ``100 / SNR`` µm, >= 1 µm) and 20 Hz of uniformly placed
  false peaks (``spkfn.detection._motion_synth.ground_truth_peaks``); no traces are read;
- ``--peaks si``: SpikeInterface's ``detect_peaks`` (locally_exclusive, threshold 8, radius 80 µm,
  its motion presets' settings) and ``localize_peaks`` (``--si-localization``, default
  monopolar_triangulation, the "dredge" and "nonrigid_accurate" presets' choice) run on the
  generated traces (two passes, slow: cached in ``--cache``);
- ``--peaks spkfn``: spkfn's ``detect_peaks`` / ``localize_peaks`` with estimate_motion's defaults.

Every estimator then runs on the same peaks in a fresh subprocess (which loads only the peaks,
so that no estimator pays for another's memory; SpikeInterface calls ``gc.collect()`` 20 times
per window, which costs ~0.2 s each in a process holding the generator's objects), timing the
estimation call alone. BLAS is limited to one thread in every worker (``--blas-threads``):
multi-threaded BLAS on these small matrices collapses on a shared machine. Errors are RMS (µm)
over every time bin and 20 depths spread over the probe, of ``estimate - truth`` after removing
each depth's mean (the reference position is arbitrary); rigid estimates are compared with the
depth-dependent truth too.

Two more modes:

- ``--pipeline``: traces to motion, timing the whole call: spkfn ``estimate_motion(recording)``
  (detection, localisation, dredge) beside SpikeInterface's ``compute_motion(recording,
  preset=...)`` for its numpy presets (and ``dredge_fast`` when torch is importable), on the same
  int16 binary file of the ``nonrigid`` case (written once in ``--cache``);
- ``--correction``: reading a kriging-corrected Neuropixels recording held in memory, spkfn
  ``correct_motion`` beside SpikeInterface's ``interpolate_motion``.

Usage::

    python benchmarks/bench_motion.py [--duration-s 600] [--peaks gt|si|spkfn] [--cases rigid,nonrigid]
        [--estimators all|spkfn|...] [--cache results/bench_motion] [--figures docs/figures]
    python benchmarks/bench_motion.py --pipeline --duration-s 120 --n-jobs 2
    python benchmarks/bench_motion.py --correction --duration-s 10

Timings depend on the machine's load: compare rows of one run (ratios), not runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CASES = {
    "rigid": {"kind": "sine", "amplitude_um": 20.0, "period_s": 120.0},
    "nonrigid": [{"kind": "random_walk", "amplitude_um": 25.0, "interval_s": 10.0, "depth_gradient": 1.0},
                 {"kind": "sine", "amplitude_um": 10.0, "period_s": 60.0}],
}

#: name -> (library, method, rigid, kwargs)
ESTIMATORS = {
    "spkfn dredge": ("spkfn", "dredge", False, {}),
    "spkfn decentralized": ("spkfn", "decentralized", False, {}),
    "spkfn iterative_template": ("spkfn", "iterative_template", False, {}),
    "spkfn dredge rigid": ("spkfn", "dredge", True, {}),
    "spkfn dredge (DREDge preset windows)": ("spkfn", "dredge", False, {"win_step_um": 400.0, "win_scale_um": 400.0,
                                                                         "win_margin_um": 200.0}),
    # SpikeInterface 0.105: the estimators of its numpy presets, with the presets' parameters
    "SI decentralized (nonrigid_accurate)": ("si", "decentralized", False, {"direction": "y", "conv_engine": "numpy"}),
    "SI iterative_template (kilosort_like)": ("si", "iterative_template", False, {
        "bin_s": 2.0, "win_step_um": 200.0, "win_scale_um": 400.0, "hist_margin_um": 0, "win_shape": "rect"}),
    # its default preset ("dredge"), which needs PyTorch (run only when torch is importable)
    "SI dredge_ap (dredge preset; torch CPU)": ("si", "dredge_ap", False, {
        "direction": "y", "win_shape": "gaussian", "win_step_um": 400.0, "win_scale_um": 400.0,
        "win_margin_um": None}),
}


# ------------------------------------------------------------------------------------------ data


def make_case(case: str, duration_s: float, peaks_kind: str, cache: Path, si_localization: str, n_jobs: int):
    """Peaks, locations and metadata of one case (cached as .npy/.json in ``cache/<case>-<peaks>``)."""
    out = cache / f"{case}-{peaks_kind}-{int(duration_s)}s"
    if (out / "meta.json").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    from spkfn.generate import ground_truth_recording
    from spkfn.io import channel_locations

    rec, gt, _ = ground_truth_recording(duration_s=duration_s, probe="neuropixels1", num_units=100, seed=0,
                                        drift=CASES[case])
    loc = channel_locations(rec)
    t0 = time.perf_counter()
    if peaks_kind == "gt":
        from spkfn.detection._motion_synth import ground_truth_peaks

        peaks, locs, _ = ground_truth_peaks(gt, loc, seed=0, false_peak_rate_hz=20.0, localization_error_um=100.0)
    elif peaks_kind == "si":
        peaks, locs = _si_peaks(rec, loc, si_localization, n_jobs)
    else:
        from spkfn.detection.motion import (
            DEFAULT_DETECT_KWARGS,
            DEFAULT_LOCALIZE_KWARGS,
            _detect_and_localize,
        )

        peaks, depths = _detect_and_localize(rec, None, None, n_jobs=n_jobs, progress=True)
        locs = np.zeros(peaks.size, [("x", "f8"), ("y", "f8")])
        locs["y"] = depths
        print("spkfn detection", DEFAULT_DETECT_KWARGS, DEFAULT_LOCALIZE_KWARGS)
    np.save(out / "peaks.npy", peaks)
    np.save(out / "locs.npy", locs)
    np.save(out / "channel_locations.npy", loc)
    meta = {"case": case, "drift": gt.attrs["drift"], "duration_s": duration_s, "sampling_frequency": 30000.0,
            "peaks": peaks_kind, "num_peaks": int(peaks.size), "peaks_time_s": time.perf_counter() - t0,
            "num_spikes": int(gt.sizes["spike"])}
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    return out


def _si_recording(rec, loc):
    from spikeinterface.core import BaseRecording, BaseRecordingSegment

    from spkfn.io import get_traces

    fs = float(rec.attrs["sampling_frequency"])
    n = rec.sizes["time"]

    class Segment(BaseRecordingSegment):
        def __init__(self):
            super().__init__(sampling_frequency=fs)

        def get_num_samples(self):
            return n

        def get_traces(self, start_frame=None, end_frame=None, channel_indices=None):
            x = get_traces(rec, start=start_frame or 0, end=n if end_frame is None else end_frame)
            return x if channel_indices is None else x[:, channel_indices]

    class Recording(BaseRecording):
        def __init__(self):
            super().__init__(sampling_frequency=fs, channel_ids=list(rec.channel.values), dtype="float32")
            self.add_recording_segment(Segment())

    r = Recording()
    r.set_dummy_probe_from_locations(loc)
    return r


def _si_peaks(rec, loc, localization, n_jobs):
    from spikeinterface.sortingcomponents.peak_detection import detect_peaks
    from spikeinterface.sortingcomponents.peak_localization import localize_peaks

    r = _si_recording(rec, loc)
    job = {"n_jobs": n_jobs, "pool_engine": "thread", "chunk_duration": "1s", "progress_bar": True}
    peaks = detect_peaks(r, method="locally_exclusive", method_kwargs={
        "peak_sign": "neg", "detect_threshold": 8.0, "exclude_sweep_ms": 0.8, "radius_um": 80.0}, job_kwargs=job)
    locs = localize_peaks(r, peaks, method=localization, method_kwargs={}, job_kwargs=job, seed=0)
    keep = np.isfinite(locs["y"])
    return peaks[keep], locs[keep]


# ------------------------------------------------------------------------------------------ worker


def worker(spec: dict) -> dict:
    """Run one estimator on cached peaks; time the estimation call only."""
    from threadpoolctl import threadpool_limits

    d = Path(spec["data"])
    peaks = np.load(d / "peaks.npy")
    locs = np.load(d / "locs.npy")
    loc = np.load(d / "channel_locations.npy")
    meta = json.loads((d / "meta.json").read_text())
    lib, method, rigid, kw = ESTIMATORS[spec["name"]]
    limits = spec.get("blas_threads")
    with threadpool_limits(limits=limits, user_api="blas") if limits else _null():
        if lib == "spkfn":
            from spkfn.detection.motion import estimate_motion

            t0 = time.perf_counter()
            m = estimate_motion((peaks, locs), method=method, rigid=rigid, sampling_frequency=meta["sampling_frequency"],
                                duration_s=meta["duration_s"], channel_locations=loc, n_jobs=spec.get("n_jobs"), **kw)
            el = time.perf_counter() - t0
            values, tb, db = m.values, m.time_bin.values, m.depth_bin.values
        else:
            import warnings

            warnings.filterwarnings("ignore")
            from spikeinterface.generation import NoiseGeneratorRecording
            from spikeinterface.sortingcomponents.motion import estimate_motion

            r = NoiseGeneratorRecording(num_channels=loc.shape[0], sampling_frequency=meta["sampling_frequency"],
                                        durations=[meta["duration_s"]])
            r.set_dummy_probe_from_locations(loc)
            t0 = time.perf_counter()
            m = estimate_motion(r, peaks, locs, method=method, rigid=rigid, **kw)
            el = time.perf_counter() - t0
            values, tb, db = m.displacement[0], m.temporal_bins_s[0], m.spatial_bins_um
    np.savez(spec["out"], values=values, time_bins=tb, depth_bins=db)
    return {"seconds": el}


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def run_worker(name: str, data: Path, out: Path, blas_threads: int | None, n_jobs: int, timeout_s: float):
    spec = {"name": name, "data": str(data), "out": str(out), "blas_threads": blas_threads, "n_jobs": n_jobs}
    cmd = [sys.executable, __file__, "--worker", json.dumps(spec)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=os.environ.copy())
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout_s:.0f} s"}
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------ scoring


def rms_error(npz: Path, drift_json: str, probe_depths: np.ndarray) -> tuple[float, float]:
    """(RMS over time bins × 20 depths, RMS at the estimate's own depth bins), per-depth offset removed."""
    from spkfn.detection._motion_kernels import interp_motion
    from spkfn.generate import drift_displacement

    z = np.load(npz)
    v, tb, db = z["values"], z["time_bins"], z["depth_bins"]
    depths = np.linspace(probe_depths.min() + 50, probe_depths.max() - 50, 20)
    tt, yy = np.meshgrid(tb, depths, indexing="ij")
    est = interp_motion(v, tb, np.atleast_1d(db).astype(float), tt.ravel(), yy.ravel()).reshape(tt.shape)
    truth = drift_displacement(drift_json, times_s=tb, depths_um=depths)
    err = est - truth
    err -= err.mean(0, keepdims=True)
    truth_own = drift_displacement(drift_json, times_s=tb, depths_um=np.atleast_1d(db).astype(float))
    err2 = v - truth_own
    err2 -= err2.mean(0, keepdims=True)
    return float(np.sqrt((err ** 2).mean())), float(np.sqrt((err2 ** 2).mean()))


def figures(data: Path, results: dict, fig_dir: Path, case: str, peaks_kind: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import xarray as xr

    from spkfn.generate import drift_motion
    from spkfn.plotting.motion import plot_motion, plot_motion_drift_map

    meta = json.loads((data / "meta.json").read_text())
    peaks = np.load(data / "peaks.npy")
    locs = np.load(data / "locs.npy")
    fig_dir.mkdir(parents=True, exist_ok=True)
    npz = np.load(results["spkfn dredge"]["npz"])
    m = xr.DataArray(npz["values"], dims=("time_bin", "depth_bin"),
                     coords={"time_bin": npz["time_bins"], "depth_bin": npz["depth_bins"]},
                     attrs={"sampling_frequency": meta["sampling_frequency"], "t_start_s": 0.0})
    truth = drift_motion(meta["drift"], time_bins_s=m.time_bin.values, depth_bins_um=m.depth_bin.values)
    truth = truth - truth.mean("time_bin") + m.mean("time_bin")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), layout="constrained")
    zoom = (1500.0, 2400.0)  # 900 µm of the probe, so that 20-30 µm of motion is visible
    sel = (locs["y"] > zoom[0] - 50) & (locs["y"] < zoom[1] + 50)
    mz = m.sel(depth_bin=slice(*zoom))
    plot_motion_drift_map(peaks[sel], locs[sel], motion=mz, ax=axes[0], max_peaks=None,
                   title=f"{case}: peaks and the spkfn dredge motion")
    keep = slice(None, None, 4)
    plot_motion(m.isel(depth_bin=keep), truth=truth.isel(depth_bin=keep), ax=axes[1])
    axes[1].set_title("estimate (colour, every 4th window), truth (dashed)")
    plot_motion_drift_map(peaks[sel], locs[sel], motion=mz, corrected=True, ax=axes[2], max_peaks=None)
    for ax in (axes[0], axes[2]):
        ax.set_ylim(*zoom)
    path = fig_dir / f"motion_{case}_{peaks_kind}.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------ correction


def bench_correction(duration_s: float = 10.0, blas_threads: int | None = 1) -> list[dict]:
    """Time to read a motion-corrected recording (kriging), spkfn beside SpikeInterface's
    ``interpolate_motion`` (kriging, sigma 20 µm, p=2, force_extrapolate: its presets' settings).

    The traces are a numpy array in memory (Neuropixels 1.0 layout, Gaussian noise), so only the
    correction is timed; both are read in the same 1-s windows, on one thread. The motion is the
    ``nonrigid`` case's truth at 2-s bins and 20 depths.
    """
    import warnings

    from threadpoolctl import threadpool_limits

    from spkfn.detection.motion import correct_motion
    from spkfn.generate import drift_motion, resolve_drift
    from spkfn.io import from_array, get_traces, neuropixels1_probe

    warnings.filterwarnings("ignore")
    fs = 30000.0
    n = int(duration_s * fs)
    x = np.random.default_rng(0).standard_normal((n, 384), dtype=np.float32)
    probe = neuropixels1_probe()
    rec = from_array(x, sampling_frequency=fs, probe=probe)
    loc = np.asarray(probe.contact_positions[:, :2], float)
    drift = resolve_drift(CASES["nonrigid"], duration_s=duration_s, depth_range_um=(0.0, 3820.0), seed=0)
    m = drift_motion(drift, time_bins_s=np.arange(1.0, duration_s, 2.0), depth_bins_um=np.linspace(100, 3720, 20))
    m.attrs["bin_s"] = 2.0
    rows = []
    step = int(fs)
    with threadpool_limits(limits=blas_threads, user_api="blas") if blas_threads else _null():
        out = correct_motion(rec, m, chunk_size=step)
        get_traces(out, start=0, end=1000)  # numba compile outside the timing
        t0 = time.perf_counter()
        for a in range(0, n, step):
            get_traces(out, start=a, end=min(n, a + step))
        rows.append({"library": "spkfn correct_motion (kriging)", "seconds": time.perf_counter() - t0})
        try:
            from spikeinterface.core import NumpyRecording
            from spikeinterface.core.motion import Motion
            from spikeinterface.sortingcomponents.motion import interpolate_motion
        except ImportError:
            return rows
        r = NumpyRecording([x], sampling_frequency=fs)
        r.set_dummy_probe_from_locations(loc)
        sim = Motion([m.values], [m.time_bin.values], m.depth_bin.values, direction="y")
        c = interpolate_motion(r, sim, border_mode="force_extrapolate", spatial_interpolation_method="kriging",
                               sigma_um=20.0, p=2)
        t0 = time.perf_counter()
        for a in range(0, n, step):
            c.get_traces(start_frame=a, end_frame=min(n, a + step))
        rows.append({"library": "SpikeInterface interpolate_motion (kriging)", "seconds": time.perf_counter() - t0})
    for r_ in rows:
        r_["ms_per_s_of_data"] = 1000 * r_["seconds"] / duration_s
    return rows


# ------------------------------------------------------------------------------------------ pipeline


SI_PRESETS = ("nonrigid_accurate", "nonrigid_fast_and_accurate", "kilosort_like", "dredge_fast")


def bench_pipeline(duration_s: float, cache: Path, n_jobs: int, presets=SI_PRESETS,
                   spkfn_localizations=("grid_convolution", "monopolar_triangulation")) -> list[dict]:
    """Peaks to motion from the traces: spkfn ``estimate_motion(recording)`` (detection,
    localisation, dredge) beside SpikeInterface's ``compute_motion(recording, preset=...)`` on the
    same int16 binary file (written once from the ``nonrigid`` case), timing the whole call."""
    import warnings

    from spkfn.detection.motion import estimate_motion
    from spkfn.generate import ground_truth_recording
    from spkfn.io import channel_locations, get_traces, read_binary_folder, write_binary

    warnings.filterwarnings("ignore")
    folder = cache / f"pipeline-{int(duration_s)}s"
    path = folder / "traces.bin"
    if not (folder / "drift.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        rec, gt, _ = ground_truth_recording(duration_s=duration_s, probe="neuropixels1", num_units=100, seed=0,
                                            drift=CASES["nonrigid"], dtype="int16")
        write_binary(rec, path, n_jobs=n_jobs)
        (folder / "drift.json").write_text(gt.attrs["drift"])
    drift = (folder / "drift.json").read_text()
    rec = read_binary_folder(path)
    loc = channel_locations(rec)
    rows = []

    def _score(values, tb, db):
        npz = folder / "tmp.npz"
        np.savez(npz, values=values, time_bins=tb, depth_bins=db)
        return rms_error(npz, drift, loc[:, 1])

    get_traces(rec, start=0, end=3000)  # open the file outside the timings
    for label in spkfn_localizations:
        lk = {"method": label}
        t0 = time.perf_counter()
        m = estimate_motion(rec, n_jobs=n_jobs, progress=False, localize_kwargs=lk)
        el = time.perf_counter() - t0
        rms, _ = _score(m.values, m.time_bin.values, m.depth_bin.values)
        rows.append({"pipeline": f"spkfn estimate_motion(recording) (dredge, {label})", "seconds": el, "rms_um": rms,
                     "num_peaks": m.attrs["num_peaks"]})
        print(json.dumps(rows[-1]), flush=True)
    try:
        import spikeinterface.core as sic
        from spikeinterface.preprocessing import compute_motion
    except ImportError:
        return rows
    g = float(rec.gain_to_uV.values[0])
    srec = sic.read_binary(path, sampling_frequency=float(rec.attrs["sampling_frequency"]), dtype="int16",
                           num_channels=rec.sizes["channel"], gain_to_uV=g, offset_to_uV=0.0)
    srec.set_dummy_probe_from_locations(loc)
    srec = srec.astype("float32")  # presets' detection expects float traces (scaled below)
    from spikeinterface.preprocessing import scale

    srec = scale(srec, gain=g, offset=0.0)
    for preset in presets:
        if "dredge" in preset:
            try:
                import torch  # noqa: F401
            except ImportError:
                continue
        t0 = time.perf_counter()
        try:
            sm = compute_motion(srec, preset=preset, n_jobs=n_jobs, chunk_duration="1s", progress_bar=False)
        except Exception as e:  # noqa: BLE001 - report and go on
            rows.append({"pipeline": f"SpikeInterface compute_motion({preset!r})", "error": repr(e)[:200]})
            continue
        el = time.perf_counter() - t0
        rms, _ = _score(sm.displacement[0], sm.temporal_bins_s[0], sm.spatial_bins_um)
        rows.append({"pipeline": f"SpikeInterface compute_motion({preset!r})", "seconds": el, "rms_um": rms})
        print(json.dumps(rows[-1]), flush=True)
    return rows


# ------------------------------------------------------------------------------------------ main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--duration-s", type=float, default=600.0)
    ap.add_argument("--peaks", default="gt", choices=["gt", "si", "spkfn"])
    ap.add_argument("--si-localization", default="monopolar_triangulation")
    ap.add_argument("--cases", default="rigid,nonrigid")
    ap.add_argument("--estimators", default="all", help="comma-separated names, 'spkfn' or 'all'")
    ap.add_argument("--cache", default="results/bench_motion")
    ap.add_argument("--figures", default=None, help="folder for the drift-map figures (PNG)")
    ap.add_argument("--blas-threads", type=int, default=1)
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--timeout-s", type=float, default=3 * 3600)
    ap.add_argument("--figures-only", action="store_true", help="redraw the figures from a previous run's files")
    ap.add_argument("--correction", action="store_true", help="time the trace correction only")
    ap.add_argument("--pipeline", action="store_true", help="traces -> motion, spkfn vs SpikeInterface presets")
    ap.add_argument("--si-presets", default=",".join(SI_PRESETS), help="SpikeInterface presets of --pipeline")
    ap.add_argument("--spkfn-localizations", default="grid_convolution,monopolar_triangulation",
                    help="localisation methods of the spkfn rows of --pipeline")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    args = ap.parse_args()

    def write_json(rows):
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"params": {k: str(v) for k, v in vars(args).items()}, "rows": rows},
                                            indent=1, default=float))

    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    if args.pipeline:
        presets = [p for p in args.si_presets.split(",") if p]
        rows = bench_pipeline(args.duration_s, Path(args.cache), args.n_jobs, presets=presets,
                              spkfn_localizations=args.spkfn_localizations.split(","))
        print("\n| pipeline | time (s) | RMS error (µm) |\n|---|---|---|")
        for r in rows:
            print(f"| {r['pipeline']} | {r.get('seconds', float('nan')):.1f} | {r.get('rms_um', float('nan')):.2f} |"
                  + (f" {r['error']}" if "error" in r else ""))
        write_json(rows)
        return
    if args.correction:
        rows = list(bench_correction(min(args.duration_s, 20.0), args.blas_threads))
        for row in rows:
            print(json.dumps(row))
        write_json(rows)
        return
    cache = Path(args.cache)
    names = list(ESTIMATORS)
    if args.estimators == "spkfn":
        names = [n for n in names if n.startswith("spkfn")]
    elif args.estimators != "all":
        names = [n.strip() for n in args.estimators.split(",")]
    try:
        import torch  # noqa: F401
    except ImportError:
        names = [n for n in names if "torch" not in n]
    rows = []
    for case in args.cases.split(","):
        data = make_case(case, args.duration_s, args.peaks, cache, args.si_localization, args.n_jobs)
        meta = json.loads((data / "meta.json").read_text())
        loc = np.load(data / "channel_locations.npy")
        print(f"\n## {case} drift, {args.duration_s:g} s, {meta['num_peaks']} peaks ({args.peaks}; "
              f"made in {meta['peaks_time_s']:.0f} s)", flush=True)
        results = {}
        if args.figures_only:
            npz = data / "est-spkfn_dredge.npz"
            print("figure:", figures(data, {"spkfn dredge": {"npz": str(npz)}}, Path(args.figures), case, args.peaks))
            continue
        for name in names:
            out = data / f"est-{name.replace(' ', '_').replace('(', '').replace(')', '').replace(',', '')}.npz"
            r = run_worker(name, data, out, args.blas_threads, args.n_jobs, args.timeout_s)
            if "error" not in r:
                r["rms_um"], r["rms_own_bins_um"] = rms_error(out, meta["drift"], loc[:, 1])
                r["npz"] = str(out)
            results[name] = r
            row = {"case": case, "peaks": args.peaks, "estimator": name, **{k: v for k, v in r.items() if k != "npz"}}
            rows.append(row)
            print(json.dumps(row), flush=True)
        if args.figures and "spkfn dredge" in results and "error" not in results["spkfn dredge"]:
            print("figure:", figures(data, results, Path(args.figures), case, args.peaks))
    print("\n| case | estimator | time (s) | RMS error (µm) | at own bins (µm) |\n|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['case']} | {r['estimator']} | {r['error']} | | |")
        else:
            print(f"| {r['case']} | {r['estimator']} | {r['seconds']:.2f} | {r['rms_um']:.2f} | {r['rms_own_bins_um']:.2f} |")
    (cache / f"results-{args.peaks}-{int(args.duration_s)}s.json").write_text(json.dumps(rows, indent=1))
    write_json(rows)


if __name__ == "__main__":
    main()
