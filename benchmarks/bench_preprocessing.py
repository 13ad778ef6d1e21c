"""Preprocessing benchmark: spkfn vs SpikeInterface, side by side, on the same generated data.

Stage timed (both tools, same input file, same settings): read a float32 flat binary recording,
band-pass (Butterworth order 5, 300-6000 Hz, forward-backward), global common median reference,
write float32 flat binary. Each tool runs in its own subprocess (so memory is measured per tool)
after a warm-up on a tiny recording (imports, numba cache); the timed part is the stage only.

Usage::

    python benchmarks/bench_preprocessing.py --channels 384 --duration-s 60
    python benchmarks/bench_preprocessing.py --channels 32 --duration-s 300
    python benchmarks/bench_preprocessing.py --channels 384 --duration-s 600 --tools spkfn   # memory vs duration

Prints throughput (x real time), wall time, CPU time (user + system, children included), peak
memory (RSS summed over the tool's process and
its children, sampled every 20 ms; and the anonymous part, i.e. without file pages mapped from
the page cache), the ratio spkfn / SpikeInterface, and how far the two outputs differ (and how
far each is from a whole-array scipy/numpy reference on a window in the middle). Results are
appended to ``benchmarks/results/bench_preprocessing.jsonl`` and ``.csv`` (git-ignored).

SpikeInterface is optional: without it the SI part is skipped with a message.

Timings on a shared machine are provisional: compare the two tools within one run.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
FS = 30000.0
FREQ_MIN, FREQ_MAX, ORDER = 300.0, 6000.0, 5


# ----------------------------------------------------------------------------------------------
# data


def generate(path: Path, *, n_channels: int, duration_s: float, dtype: str, seed: int) -> None:
    """Seeded synthetic recording, written chunk by chunk: white noise (10 units), a common-mode
    signal shared by all channels, per-channel DC offsets, a slow (LFP-like) oscillation, and
    spikes (1 ms biphasic waveforms on ~8 neighbouring channels, 40 per second)."""
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * FS))
    offsets = rng.uniform(-200, 200, n_channels).astype(np.float32)
    lfp_phase = rng.uniform(0, 2 * np.pi, n_channels)
    wave_t = np.arange(30) / FS
    wave = (-np.sin(2 * np.pi * 1000 * wave_t) * np.exp(-wave_t / 4e-4) * 60).astype(np.float32)
    chunk = int(FS)
    out_dtype = np.dtype(dtype)
    with open(path, "wb") as f:
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            x = rng.standard_normal((m, n_channels), dtype=np.float32) * 10
            x += (rng.standard_normal(m, dtype=np.float32) * 8)[:, None]
            t = (start + np.arange(m)) / FS
            x += (40 * np.sin(2 * np.pi * 7 * t[:, None] + lfp_phase[None, :])).astype(np.float32)
            x += offsets
            k = rng.poisson(40 * m / FS)
            for s, c in zip(rng.integers(0, max(1, m - 30), k), rng.integers(0, n_channels, k), strict=True):
                lo, hi = max(0, c - 4), min(n_channels, c + 4)
                x[s:s + 30, lo:hi] += wave[: min(30, m - s), None]
            if out_dtype.kind in "iu":
                x = np.clip(np.rint(x), np.iinfo(out_dtype).min, np.iinfo(out_dtype).max)
            x.astype(out_dtype).tofile(f)


# ----------------------------------------------------------------------------------------------
# workers (run in a subprocess: python bench_preprocessing.py --worker TOOL ...)


def _cpu_s() -> float:
    """User + system CPU seconds of this process and its finished children (SI's pool workers)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _generated_recording(n_channels: int, duration_s: float, seed: int):
    """A lazily generated recording (noise, common mode, offsets, slow wave; seeded per block), for
    memory-versus-duration runs that should not need an input file on disk."""
    import dask.array as da

    from spkfn.core.chunks import default_chunk_size
    from spkfn.io import from_array

    n = int(round(duration_s * FS))
    block = default_chunk_size(n_channels, sampling_frequency=FS)  # the chunks a file read would have
    chunks = ((block,) * (n // block) + ((n % block,) if n % block else ()), (n_channels,))
    offsets = np.random.default_rng(seed).uniform(-200, 200, n_channels).astype(np.float32)

    def make(block_info=None):
        (lo, hi), _ = block_info[None]["array-location"]
        rng = np.random.default_rng([seed, lo])
        m = hi - lo
        x = rng.standard_normal((m, n_channels), dtype=np.float32) * 10
        x += (rng.standard_normal(m, dtype=np.float32) * 8)[:, None]
        t = ((lo + np.arange(m)) / FS).astype(np.float32)
        x += 40 * np.sin(np.float32(2 * np.pi * 7) * t[:, None] + np.arange(n_channels, dtype=np.float32)[None, :])
        x += offsets
        return x

    data = da.map_blocks(make, dtype=np.float32, chunks=chunks, meta=np.empty((0, 0), np.float32))
    return from_array(data, sampling_frequency=FS)


def _worker_spkfn(a) -> dict:
    from spkfn.io import from_array, read_binary, write_binary
    from spkfn.preprocessing import apply_pipeline

    steps = [{"bandpass_filter": {"freq_min_hz": FREQ_MIN, "freq_max_hz": FREQ_MAX, "order": ORDER}},
             {"common_reference": {"reference": "global", "operator": "median"}}]
    t0 = time.perf_counter()
    tiny = from_array(np.random.default_rng(0).normal(size=(20000, a.channels)).astype(a.dtype), sampling_frequency=FS)
    write_binary(apply_pipeline(tiny, steps), Path(a.output).with_suffix(".warmup.bin"), dtype="float32",
                 n_jobs=a.n_jobs, progress=False)
    warmup = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), _cpu_s()
    if a.input == "generated":
        rec = _generated_recording(a.channels, a.duration_s, a.seed)
    else:
        rec = read_binary(a.input, sampling_frequency=FS, num_channels=a.channels, dtype=a.dtype)
    out = apply_pipeline(rec, steps)
    write_binary(out, a.output, dtype="float32", n_jobs=a.n_jobs, progress=False)
    wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    import spkfn

    return {"wall_s": wall, "cpu_s": cpu, "warmup_s": warmup, "version": getattr(spkfn, "__version__", "dev")}


def _worker_si(a) -> dict:
    import spikeinterface as si
    import spikeinterface.core as sc
    import spikeinterface.preprocessing as spre

    def chain(rec):
        rec = spre.bandpass_filter(rec, freq_min=FREQ_MIN, freq_max=FREQ_MAX, filter_order=ORDER)
        return spre.common_reference(rec, reference="global", operator="median")

    job = {"n_jobs": a.n_jobs, "chunk_duration": "1s", "progress_bar": False}
    t0 = time.perf_counter()
    tiny = sc.NumpyRecording(np.random.default_rng(0).normal(size=(20000, a.channels)).astype(a.dtype), FS)
    chain(tiny).save(folder=Path(a.output).with_suffix(".warmup"), format="binary", overwrite=True, **job)
    warmup = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), _cpu_s()
    rec = sc.read_binary(a.input, sampling_frequency=FS, dtype=a.dtype, num_channels=a.channels)
    chain(rec).save(folder=a.output, format="binary", overwrite=True, **job)
    wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    return {"wall_s": wall, "cpu_s": cpu, "warmup_s": warmup, "version": si.__version__}


def _worker_main(a) -> None:
    fn = {"spkfn": _worker_spkfn, "si": _worker_si}[a.worker]
    res = fn(a)
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                res["self_vmhwm_mb"] = int(line.split()[1]) / 1024
    print("RESULT " + json.dumps(res), flush=True)


# ----------------------------------------------------------------------------------------------
# parent: run, monitor memory, compare


def _tree_memory(pid: int) -> tuple[float, float]:
    """(rss, anon rss) in bytes summed over ``pid`` and its descendants."""
    pids = [pid]
    try:
        import psutil

        pids += [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except Exception:  # psutil missing or process gone: the worker alone
        pass
    rss = anon = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) * 1024
                elif line.startswith("RssAnon:"):
                    anon += int(line.split()[1]) * 1024
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    return rss, anon


def run_tool(tool: str, a, inp: Path, out: Path) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", tool, "--input", str(inp), "--output", str(out),
           "--channels", str(a.channels), "--dtype", a.dtype, "--n-jobs", str(a.n_jobs),
           "--duration-s", str(a.duration_s), "--seed", str(a.seed)]
    env = dict(os.environ)
    # one thread per BLAS/numba pool per job, as SpikeInterface's workers do
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("MKL_NUM_THREADS", "1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = {"rss": 0, "anon": 0}
    stop = threading.Event()

    def monitor():
        while not stop.is_set():
            rss, anon = _tree_memory(proc.pid)
            peak["rss"] = max(peak["rss"], rss)
            peak["anon"] = max(peak["anon"], anon)
            time.sleep(0.02)

    th = threading.Thread(target=monitor, daemon=True)
    th.start()
    stdout, stderr = proc.communicate()
    stop.set()
    th.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} worker failed ({proc.returncode}):\n{stderr[-4000:]}")
    line = [x for x in stdout.splitlines() if x.startswith("RESULT ")][-1]
    res = json.loads(line[len("RESULT "):])
    res["peak_rss_mb"] = peak["rss"] / 2**20
    res["peak_anon_mb"] = peak["anon"] / 2**20
    return res


def _si_output_file(folder: Path) -> Path:
    cands = sorted(folder.glob("traces_cached_seg0.raw")) or sorted(folder.glob("*.raw"))
    if not cands:
        raise FileNotFoundError(f"no .raw file in {folder}")
    return cands[0]


def _read_rows(path: Path, start: int, stop: int, n_channels: int, dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    count = (stop - start) * n_channels
    return np.fromfile(path, dtype=dtype, count=count, offset=start * n_channels * dtype.itemsize).reshape(-1, n_channels)


def compare_outputs(p1: Path, p2: Path, *, n_samples: int, n_channels: int) -> dict:
    """Max |a - b| over the whole recording, chunk by chunk, relative to b's std."""
    step = max(1, int(2**25 // (n_channels * 4)))
    max_abs = 0.0
    argmax = 0
    sq = 0.0
    for s in range(0, n_samples, step):
        e = min(n_samples, s + step)
        a = _read_rows(p1, s, e, n_channels, np.float32)
        b = _read_rows(p2, s, e, n_channels, np.float32)
        d = np.abs(a.astype(np.float64) - b)
        k = int(np.argmax(d))
        if d.flat[k] > max_abs:
            max_abs = float(d.flat[k])
            argmax = s + k // n_channels
        sq += float((b.astype(np.float64) ** 2).sum())
    std = (sq / (n_samples * n_channels)) ** 0.5
    return {"max_abs_diff": max_abs, "std": std, "max_rel_diff": max_abs / std, "argmax_sample": argmax}


def reference_window(inp: Path, outputs: dict[str, Path], *, n_samples: int, n_channels: int, dtype: str) -> dict:
    """Whole-array reference (scipy sosfiltfilt in float64 + numpy median) on 1 s in the middle,
    computed with 2 s of context on each side; max error of each output relative to its std."""
    import scipy.signal

    mid = n_samples // 2
    lo, hi = max(0, mid - int(2.5 * FS)), min(n_samples, mid + int(2.5 * FS))
    a, b = max(lo, mid - int(0.5 * FS)), min(hi, mid + int(0.5 * FS))
    x = _read_rows(inp, lo, hi, n_channels, dtype).astype(np.float64)
    sos = scipy.signal.butter(ORDER, [FREQ_MIN, FREQ_MAX], btype="bandpass", fs=FS, output="sos")
    y = scipy.signal.sosfiltfilt(sos, x, axis=0)
    y = y - np.median(y, axis=1, keepdims=True)
    ref = y[a - lo:b - lo]
    res = {}
    for name, p in outputs.items():
        o = _read_rows(p, a, b, n_channels, np.float32)
        res[name] = float(np.abs(o - ref).max() / ref.std())
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--channels", type=int, default=384)
    ap.add_argument("--duration-s", type=float, default=60.0)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--dtype", default="float32", help="input dtype (the issue's benchmark: float32)")
    ap.add_argument("--tools", default="spkfn,si", help="comma-separated: spkfn, si")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=None, help="where the (large) data files go; default a temp dir")
    ap.add_argument("--keep", action="store_true", help="keep the data files")
    ap.add_argument("--no-compare", action="store_true", help="skip the output comparison")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run the tools alternately this many times and keep each tool's fastest run "
                         "(shared machines: other jobs slow some runs down)")
    ap.add_argument("--tag", default="", help="free text stored with the results")
    ap.add_argument("--json", default=None, help="also write this run's record to this JSON file")
    ap.add_argument("--source", choices=["file", "generated"], default="file",
                    help="'generated': spkfn reads a lazily generated recording instead of an input file "
                         "(memory-versus-duration runs without a large input file; spkfn only)")
    # worker mode
    ap.add_argument("--worker", choices=["spkfn", "si"], help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    ap.add_argument("--output", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        _worker_main(a)
        return 0

    tools = [t.strip() for t in a.tools.split(",") if t.strip()]
    if a.source == "generated":
        if "si" in tools:
            print("--source generated runs spkfn only (SpikeInterface reads the file): skipping the SI side.")
            tools = [t for t in tools if t != "si"]
        a.no_compare = True
    if "si" in tools:
        try:
            import spikeinterface  # noqa: F401
        except ImportError:
            print("SpikeInterface is not installed (pip install 'spkfn[reference]'): skipping the SI side.")
            tools.remove("si")
    n_samples = int(round(a.duration_s * FS))
    itemsize = np.dtype(a.dtype).itemsize
    in_bytes = 0 if a.source == "generated" else n_samples * a.channels * itemsize
    out_bytes = n_samples * a.channels * 4
    work = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="spkfn-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    need = in_bytes + out_bytes * (len(tools) if not a.no_compare else 1) + 2**30
    free = shutil.disk_usage(work).free
    if free < need:
        print(f"not enough disk in {work}: need {need / 2**30:.1f} GiB, have {free / 2**30:.1f} GiB. "
              "Use --workdir elsewhere, --no-compare, or fewer tools.")
        return 2
    inp = work / f"input_{a.channels}ch_{a.duration_s:g}s_{a.dtype}.bin" if a.source == "file" else Path("generated")
    print(f"# {a.channels} channels x {a.duration_s:g} s at {FS:g} Hz, {a.dtype} input "
          f"({'generated on the fly' if a.source == 'generated' else f'{in_bytes / 1e9:.2f} GB'}), "
          f"float32 output ({out_bytes / 1e9:.2f} GB), n_jobs={a.n_jobs}")
    t0 = time.perf_counter()
    if a.source == "file" and not (inp.exists() and inp.stat().st_size == in_bytes):
        generate(inp, n_channels=a.channels, duration_s=a.duration_s, dtype=a.dtype, seed=a.seed)
    os.sync()  # flush the input so writeback does not land inside a timed run
    print(f"# data ready in {time.perf_counter() - t0:.1f} s: {inp}")

    results = {}
    runs: dict[str, list] = {}
    outputs = {}
    try:
        for rep in range(max(1, a.repeat)):
            for tool in tools:
                out = work / (f"out_{tool}.bin" if tool == "spkfn" else f"out_{tool}")
                res = run_tool(tool, a, inp, out)
                os.sync()  # written pages reach the disk outside the next timed run
                res["x_realtime"] = a.duration_s / res["wall_s"]
                res["cpu_x_realtime"] = a.duration_s / res["cpu_s"]
                runs.setdefault(tool, []).append(res)
                if tool not in results or res["wall_s"] < results[tool]["wall_s"]:
                    results[tool] = res
                outputs[tool] = out if tool == "spkfn" else _si_output_file(out)
                print(f"{tool:>6}: {res['wall_s']:7.2f} s  {res['x_realtime']:6.1f}x real time  "
                      f"CPU {res['cpu_s']:7.2f} s  peak RSS {res['peak_rss_mb']:6.0f} MB (anon {res['peak_anon_mb']:5.0f} MB)"
                      f"  [run {rep + 1}, warm-up {res['warmup_s']:.1f} s, {res['version']}, "
                      f"load {os.getloadavg()[0]:.1f}]", flush=True)
                if a.no_compare and len(tools) > 1:
                    # keep only one output on disk at a time
                    shutil.rmtree(out) if out.is_dir() else out.unlink()
                    outputs.pop(tool)
        for tool in results:
            # peak memory: the largest over the runs
            results[tool]["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs[tool])
            results[tool]["peak_anon_mb"] = max(r["peak_anon_mb"] for r in runs[tool])
            results[tool]["all_wall_s"] = [r["wall_s"] for r in runs[tool]]
            results[tool]["all_cpu_s"] = [r["cpu_s"] for r in runs[tool]]
        summary = {}
        if "spkfn" in results and "si" in results:
            summary["speedup_vs_si"] = results["si"]["wall_s"] / results["spkfn"]["wall_s"]
            summary["cpu_ratio_vs_si"] = min(results["si"]["all_cpu_s"]) / min(results["spkfn"]["all_cpu_s"])
            print(f" ratio: spkfn is {summary['speedup_vs_si']:.2f}x SpikeInterface's throughput (best wall times); "
                  f"SI uses {summary['cpu_ratio_vs_si']:.2f}x spkfn's CPU time")
        if not a.no_compare and outputs:
            if len(outputs) == 2:
                cmp = compare_outputs(outputs["spkfn"], outputs["si"], n_samples=n_samples, n_channels=a.channels)
                summary["spkfn_vs_si"] = cmp
                print(f"  diff: max |spkfn - SI| = {cmp['max_abs_diff']:.3g} ({cmp['max_rel_diff']:.2e} of the "
                      f"output std {cmp['std']:.3g}) at sample {cmp['argmax_sample']}")
            ref = reference_window(inp, outputs, n_samples=n_samples, n_channels=a.channels, dtype=a.dtype)
            summary["max_rel_error_vs_whole_array_reference"] = ref
            print("   ref: max error vs whole-array scipy/numpy reference (1 s mid window, rel. to std): "
                  + ", ".join(f"{k} {v:.2e}" for k, v in ref.items()))
    finally:
        if not a.keep:
            for p in [*([inp] if a.source == "file" else []), work / "out_spkfn.bin", work / "out_si"]:
                for q in [p, Path(str(p) + ".json"), p.with_suffix(".warmup.bin"), p.with_suffix(".warmup")]:
                    if q.is_dir():
                        shutil.rmtree(q, ignore_errors=True)
                    elif q.exists():
                        q.unlink()
            if not a.workdir:
                shutil.rmtree(work, ignore_errors=True)

    record = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "channels": a.channels, "duration_s": a.duration_s, "sampling_frequency": FS, "input_dtype": a.dtype,
        "n_jobs": a.n_jobs, "source": a.source, "tag": a.tag, "host": platform.node(), "cpus": os.cpu_count(),
        "load_avg_1min": os.getloadavg()[0], "results": results, **summary,
    }
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / "bench_preprocessing.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(record, indent=1) + "\n")
    csv_path = RESULTS / "bench_preprocessing.csv"
    new = not csv_path.exists()
    with open(csv_path, "a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(["date", "tool", "channels", "duration_s", "n_jobs", "wall_s", "x_realtime", "cpu_s",
                        "peak_rss_mb", "peak_anon_mb", "speedup_vs_si", "cpu_ratio_vs_si", "max_rel_diff_vs_si",
                        "load_avg_1min", "tag"])
        for tool, r in results.items():
            w.writerow([record["date"], tool, a.channels, a.duration_s, a.n_jobs, f"{r['wall_s']:.3f}",
                        f"{r['x_realtime']:.2f}", f"{r['cpu_s']:.2f}", f"{r['peak_rss_mb']:.0f}", f"{r['peak_anon_mb']:.0f}",
                        f"{summary.get('speedup_vs_si', float('nan')):.3f}",
                        f"{summary.get('cpu_ratio_vs_si', float('nan')):.3f}",
                        f"{summary.get('spkfn_vs_si', {}).get('max_rel_diff', float('nan')):.3g}",
                        f"{record['load_avg_1min']:.2f}", a.tag])
    print(f"# results appended to {RESULTS / 'bench_preprocessing.jsonl'} (load average {record['load_avg_1min']:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
