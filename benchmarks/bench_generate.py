"""Speed and memory of spkfn.generate.ground_truth_recording, side by side with SpikeInterface.

Generates a Neuropixels-1.0-like recording (384 channels, 30 kHz, 100 units) and materialises
every sample once, chunk by chunk (nothing is kept), timing:

- ``numpy normal``: drawing the same number of float32 Gaussian samples with numpy (a floor);
- ``spkfn``: the default (band-limited noise) with 1 and 2 threads, then white noise, spatially
  correlated noise and drift;
- ``spikeinterface``: ``generate_ground_truth_recording`` (on-the-fly noise) read in the same
  chunks, when SpikeInterface is importable (it needs zarr < 3, so run this script from an
  environment with SpikeInterface and spkfn installed with ``--no-deps``).

Timings depend on the machine's load; compare the columns of one run (ratios), not runs.

Usage: ``python benchmarks/bench_generate.py [--duration-s 60] [--units 100] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc

import numpy as np

from spkfn.core.chunks import map_chunks
from spkfn.generate import ground_truth_recording

CHUNK = 32768  # samples per read (~1.1 s), the same for every generator


def _touch(x, **_):
    return float(x[:1].sum())


def run_spkfn(duration_s, units, n_jobs, **kw):
    tracemalloc.start()
    t0 = time.perf_counter()
    rec, gt, _ = ground_truth_recording(duration_s=duration_s, probe="neuropixels1", num_units=units, seed=0,
                                        chunk_size=CHUNK, **kw)
    t1 = time.perf_counter()
    map_chunks(_touch, rec, n_jobs=n_jobs, progress=False)
    t2 = time.perf_counter()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"setup_s": t1 - t0, "traces_s": t2 - t1, "total_s": t2 - t0, "peak_mb": peak / 1e6,
            "spikes": int(gt.sizes["spike"])}


def run_numpy(duration_s):
    n = int(duration_s * 30000)
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    for a in range(0, n, CHUNK):
        rng.standard_normal((min(CHUNK, n - a), 384), dtype=np.float32)
    return {"setup_s": 0.0, "traces_s": time.perf_counter() - t0, "total_s": time.perf_counter() - t0,
            "peak_mb": float("nan"), "spikes": 0}


def run_spikeinterface(duration_s, units):
    from spikeinterface.core import generate_ground_truth_recording

    tracemalloc.start()
    t0 = time.perf_counter()
    rec, sorting = generate_ground_truth_recording(durations=[duration_s], sampling_frequency=30000.0,
                                                   num_channels=384, num_units=units, seed=0,
                                                   generate_sorting_kwargs={"firing_rates": 6.0,
                                                                            "refractory_period_ms": 2.0},
                                                   noise_kwargs={"noise_levels": 5.0, "strategy": "on_the_fly"})
    t1 = time.perf_counter()
    n = rec.get_num_samples()
    for a in range(0, n, CHUNK):
        rec.get_traces(start_frame=a, end_frame=min(n, a + CHUNK))
    t2 = time.perf_counter()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"setup_s": t1 - t0, "traces_s": t2 - t1, "total_s": t2 - t0, "peak_mb": peak / 1e6,
            "spikes": int(sorting.to_spike_vector().size)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration-s", type=float, default=60.0)
    ap.add_argument("--units", type=int, default=100)
    ap.add_argument("--quick", action="store_true", help="only the default spkfn case, numpy and SpikeInterface")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    T, U = args.duration_s, args.units
    # compile the numba kernels outside the timings
    ground_truth_recording(duration_s=0.5, num_units=2, noise_spatial_corr_um=20.0)[0].values  # noqa: B018
    cases = [("numpy normal (floor), 1 thread", lambda: run_numpy(T)),
             ("spkfn default (band 300-6000 Hz), 1 thread", lambda: run_spkfn(T, U, 1)),
             ("spkfn default (band 300-6000 Hz), 2 threads", lambda: run_spkfn(T, U, 2))]
    if not args.quick:
        cases += [("spkfn white noise, 1 thread", lambda: run_spkfn(T, U, 1, noise_band_hz=None)),
                  ("spkfn spatial corr 30 um, 1 thread", lambda: run_spkfn(T, U, 1, noise_spatial_corr_um=30.0)),
                  ("spkfn sine drift 20 um, 1 thread", lambda: run_spkfn(
                      T, U, 1, drift={"kind": "sine", "amplitude_um": 20.0, "period_s": 30.0}))]
    try:
        import spikeinterface  # noqa: F401

        cases.append(("spikeinterface generate_ground_truth_recording, 1 thread", lambda: run_spikeinterface(T, U)))
    except ImportError:
        print("SpikeInterface not importable: its column is skipped.")
    results = {}
    print(f"{T:g} s x 384 channels x {U} units at 30 kHz ({T * 30000 * 384 / 1e6:.0f} M samples)")
    print("| case | setup (s) | traces (s) | total (s) | ns / sample | peak traced MB | spikes |")
    print("|---|---|---|---|---|---|---|")
    for name, fn in cases:
        r = fn()
        r["ns_per_sample"] = r["traces_s"] / (T * 30000 * 384) * 1e9
        results[name] = r
        print(f"| {name} | {r['setup_s']:.2f} | {r['traces_s']:.2f} | {r['total_s']:.2f} | {r['ns_per_sample']:.1f} | "
              f"{r['peak_mb']:.0f} | {r['spikes']} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
