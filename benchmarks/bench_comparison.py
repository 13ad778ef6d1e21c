"""Benchmark: spkfn.comparison against SpikeInterface, side by side in one run.

Ground-truth comparison of 100 GT units x 120 sorted units with 1 M spikes per sorting (default),
plus the symmetric two-sorter comparison. Prints the time of each (median of ``--repeats`` warm
runs, and the first, cold call that includes numba compilation or cache loading), the ratio
SpikeInterface / spkfn, and whether the results agree.

Run: ``python benchmarks/bench_comparison.py [--repeats 9] [--json out.json]``
(needs ``spikeinterface``: ``pip install --no-deps spikeinterface deprecated threadpoolctl``).
Timings on a shared machine are provisional; only the ratio, measured in the same run, is meaningful.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np


def make_data(seed: int, n_gt: int, n_tested: int, n_spikes: int, duration_s: float, fs: float):
    """GT trains with a 2 ms refractory period, and a tested sorting with known errors.

    Tested units: most copy a GT unit (jitter +-6 samples, 10 % misses, 5 % extra spikes), 5 GT
    units are split in two (70/30), 5 tested units merge two GT units, the rest is noise; the
    remaining GT units are not found.
    """
    rng = np.random.default_rng(seed)
    n_samples = int(duration_s * fs)
    refractory = int(0.002 * fs)
    counts = rng.multinomial(n_spikes, rng.dirichlet(np.full(n_gt, 5.0)))
    gt = []
    for n in counts:
        isi = rng.exponential(max(n_samples / max(n, 1) - refractory, 1.0), n) + refractory
        t = np.cumsum(isi).astype(np.int64)
        gt.append(t[t < n_samples])
    n_split, n_merge = 5, 5
    n_copy = min(n_tested - 2 * n_split - n_merge - 20, n_gt - n_split - 2 * n_merge - 5)
    n_noise = n_tested - n_copy - 2 * n_split - n_merge
    tested = []
    g = 0
    for _ in range(n_copy):
        t = gt[g]
        keep = rng.random(t.size) > 0.1
        t = t[keep] + rng.integers(-6, 7, keep.sum())
        extra = rng.integers(0, n_samples, int(0.05 * t.size))
        tested.append(np.sort(np.clip(np.concatenate([t, extra]), 0, n_samples - 1)))
        g += 1
    for _ in range(n_split):
        t = gt[g]
        part = rng.random(t.size) < 0.7
        tested += [t[part], t[~part]]
        g += 1
    for _ in range(n_merge):
        tested.append(np.sort(np.concatenate([gt[g], gt[g + 1]])))
        g += 2
    # noise units: as many spikes as the GT left over, spread at random
    left = max(n_spikes - sum(t.size for t in tested), 1000)
    for n in rng.multinomial(left, np.full(n_noise, 1.0 / n_noise)):
        tested.append(np.sort(rng.integers(0, n_samples, n)))
    return gt, tested


def spkfn_sorting(trains, fs):
    from spkfn.io import sorting_from_arrays

    return sorting_from_arrays(np.concatenate(trains), np.repeat(np.arange(len(trains)), [t.size for t in trains]),
                               sampling_frequency=fs, unit_ids=np.arange(len(trains)))


def si_sorting(trains, fs):
    from spikeinterface.core import NumpySorting

    times = np.concatenate(trains)
    labels = np.repeat(np.arange(len(trains)), [t.size for t in trains])
    order = np.argsort(times, kind="stable")
    return NumpySorting.from_samples_and_labels([times[order]], [labels[order]], fs, unit_ids=np.arange(len(trains)))


def timed_pair(ours, theirs, repeats: int):
    """Cold first call of each, then ``repeats`` warm runs alternating the two (so that load from
    other jobs on a shared machine affects both alike); medians of the warm runs."""
    outs, cold, warm = [], [], [[], []]
    for func in (ours, theirs):
        t0 = time.perf_counter()
        outs.append(func())
        cold.append(time.perf_counter() - t0)
    for _ in range(repeats):
        for k, func in enumerate((ours, theirs)):
            t0 = time.perf_counter()
            outs[k] = func()
            warm[k].append(time.perf_counter() - t0)
    return outs, cold, [statistics.median(w) for w in warm]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-gt", type=int, default=100)
    parser.add_argument("--n-tested", type=int, default=120)
    parser.add_argument("--n-spikes", type=int, default=1_000_000)
    parser.add_argument("--duration-s", type=float, default=1000.0)
    parser.add_argument("--fs", type=float, default=30000.0)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    import spikeinterface
    from spikeinterface.comparison import GroundTruthComparison, SymmetricSortingComparison

    import spkfn
    from spkfn.comparison import compare_sorters, compare_to_ground_truth

    gt_trains, tested_trains = make_data(args.seed, args.n_gt, args.n_tested, args.n_spikes, args.duration_s, args.fs)
    gt, tested = spkfn_sorting(gt_trains, args.fs), spkfn_sorting(tested_trains, args.fs)
    si_gt, si_tested = si_sorting(gt_trains, args.fs), si_sorting(tested_trains, args.fs)
    print(f"data: {gt.sizes['unit']} GT units / {gt.sizes['spike']:,} spikes; "
          f"{tested.sizes['unit']} tested units / {tested.sizes['spike']:,} spikes; "
          f"{args.duration_s:g} s at {args.fs:g} Hz")

    def ours_gt():
        return compare_to_ground_truth(gt, tested, exhaustive_gt=True)

    def si_gt_run():
        c = GroundTruthComparison(si_gt, si_tested, exhaustive_gt=True)
        perf = c.get_performance(method="by_unit")
        cats = dict(well=c.get_well_detected_units(), redundant=c.get_redundant_units(),
                    overmerged=c.get_overmerged_units(), fp=c.get_false_positive_units(), bad=c.get_bad_units())
        c.get_confusion_matrix()
        return c, perf, cats

    def ours_sym():
        return compare_sorters(gt, tested)

    def si_sym():
        return SymmetricSortingComparison(si_gt, si_tested)

    results = {}
    (o_gt, (c, perf, cats)), (o_cold, s_cold), (o_warm, s_warm) = timed_pair(ours_gt, si_gt_run, args.repeats)
    results["ground_truth"] = dict(spkfn_s=o_warm, spikeinterface_s=s_warm, ratio=s_warm / o_warm,
                                   spkfn_cold_s=o_cold, spikeinterface_cold_s=s_cold)
    (o_sym, s_sym), (o_cold2, s_cold2), (o_warm2, s_warm2) = timed_pair(ours_sym, si_sym, args.repeats)
    results["symmetric"] = dict(spkfn_s=o_warm2, spikeinterface_s=s_warm2, ratio=s_warm2 / o_warm2,
                                spkfn_cold_s=o_cold2, spikeinterface_cold_s=s_cold2)

    perf = perf.astype(float)
    agree = {
        "match_count_equal": bool(np.array_equal(o_gt.agreement.match_count.values,
                                                 c.match_event_count.values.astype(np.int64))),
        "max_abs_diff_accuracy": float(np.abs(o_gt.performance["accuracy"].to_numpy() - perf["accuracy"].to_numpy()).max()),
        "max_abs_diff_precision": float(np.abs(o_gt.performance["precision"].to_numpy() - perf["precision"].to_numpy()).max()),
        "max_abs_diff_recall": float(np.abs(o_gt.performance["recall"].to_numpy() - perf["recall"].to_numpy()).max()),
        "unit_categories_equal": bool(
            o_gt.well_detected_units == list(cats["well"]) and o_gt.redundant_units == list(cats["redundant"])
            and o_gt.overmerged_units == list(cats["overmerged"]) and o_gt.false_positive_units == list(cats["fp"])
            and o_gt.bad_units == list(cats["bad"])),
        "symmetric_agreement_equal": bool(np.array_equal(o_sym.agreement.values, s_sym.agreement_scores.values)),
        "num_well_detected": len(o_gt.well_detected_units),
        "num_redundant": len(o_gt.redundant_units),
        "num_overmerged": len(o_gt.overmerged_units),
        "num_false_positive": len(o_gt.false_positive_units),
    }
    results["agreement"] = agree
    results["versions"] = dict(spkfn=spkfn.__version__, spikeinterface=spikeinterface.__version__,
                               numpy=np.__version__, python=platform.python_version(), machine=platform.machine())
    results["params"] = vars(args)

    print(f"\n{'comparison':<22}{'spkfn (s)':>11}{'SI (s)':>10}{'SI/spkfn':>10}{'spkfn cold':>12}{'SI cold':>10}")
    for name in ("ground_truth", "symmetric"):
        r = results[name]
        print(f"{name:<22}{r['spkfn_s']:>11.4f}{r['spikeinterface_s']:>10.4f}{r['ratio']:>9.1f}x"
              f"{r['spkfn_cold_s']:>12.3f}{r['spikeinterface_cold_s']:>10.3f}")
    print("\nagreement of results:")
    for k, v in agree.items():
        print(f"  {k}: {v}")
    print("\n(warm = median of", args.repeats, "runs; cold = first call, with numba compilation / cache load; "
          "timings on a shared machine are provisional)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
