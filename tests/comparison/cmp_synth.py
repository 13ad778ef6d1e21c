"""Synthetic sortings for the comparison tests (seeded, with known structure)."""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from spkfn.io import sorting_from_arrays

FS = 30000.0


def poisson_train(rng, n_spikes: int, duration: int, refractory: int) -> np.ndarray:
    """Sorted train with inter-spike intervals >= refractory (samples)."""
    isi = rng.exponential(duration / max(n_spikes, 1), n_spikes) + refractory
    t = np.cumsum(isi).astype(np.int64)
    return t[t < duration]


def gt_and_tested(seed: int, *, n_gt: int = 12, n_spikes: int = 400, duration: int = 3_000_000,
                  refractory: int = 60, jitter: int = 6, unit_ids_tested=None):
    """A GT sorting and a tested sorting with matched, lossy, split, merged and noise units.

    n_gt + 1 tested units (by position): 0..n_gt-5 copy GT units with jitter, 10 % misses and 5 % extra
    spikes; then one split of the next GT unit in two parts (70/30); one merge of the two next GT
    units; two noise units.
    """
    rng = np.random.default_rng(seed)
    gt = [poisson_train(rng, int(n_spikes * rng.uniform(0.5, 1.5)), duration, refractory) for _ in range(n_gt)]
    tested = []
    for u in range(n_gt - 4):
        t = gt[u]
        keep = rng.random(t.size) > 0.1
        t = t[keep] + rng.integers(-jitter, jitter + 1, keep.sum())
        extra = rng.integers(0, duration, int(0.05 * t.size))
        tested.append(np.sort(np.clip(np.concatenate([t, extra]), 0, None)))
    t = gt[n_gt - 4]
    part = rng.random(t.size) < 0.7
    tested.append(t[part])
    tested.append(t[~part])
    tested.append(np.sort(np.concatenate([gt[n_gt - 3], gt[n_gt - 2]])))
    tested.append(np.sort(rng.integers(0, duration, 300)))
    tested.append(np.sort(rng.integers(0, duration, 50)))
    gt_s = sorting_from_arrays(np.concatenate(gt), np.repeat(np.arange(n_gt), [x.size for x in gt]),
                               sampling_frequency=FS)
    ids = np.arange(len(tested)) if unit_ids_tested is None else np.asarray(unit_ids_tested)
    tested_s = sorting_from_arrays(np.concatenate(tested), np.repeat(ids, [x.size for x in tested]),
                                   sampling_frequency=FS, unit_ids=ids)
    return gt_s, tested_s


def max_matching_size(t1, t2, delta) -> int:
    """Reference: maximum bipartite matching of spikes within delta (scipy), independent of spkfn."""
    if len(t1) == 0 or len(t2) == 0:
        return 0
    adj = np.abs(np.subtract.outer(np.asarray(t1), np.asarray(t2))) <= delta
    match = maximum_bipartite_matching(csr_matrix(adj.astype(np.int8)), perm_type="column")
    return int(np.sum(match >= 0))
