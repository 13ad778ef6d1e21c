"""numba kernels shared by the comparison functions.

All kernels take spike vectors sorted by time (``sample_index`` ascending, as in every spkfn
sorting) and are linear in the number of spikes for a bounded spike density: each spike of the
first sorting scans only the spikes of the second one that lie within ``[t - delta, t + delta]``.

Matching rule (used everywhere): between a spike train ``A`` and a spike train ``B`` two spikes
``a``, ``b`` may be matched when ``|a - b| <= delta``; each spike is matched at most once. Spikes
of ``A`` are visited in time order and each one is matched with the *earliest* still unmatched
spike of ``B`` within its window. Because all windows have the same width, this greedy gives a
maximum matching (a maximum number of matched pairs), so the count is symmetric in ``A`` and ``B``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# label codes of the per-spike labels
TP = 1
MISS = 0  # FN for the first (ground-truth) sorting, FP for the second (tested) one
CL = 2


@njit(nogil=True, cache=True)
def match_count_matrix(t1, ui1, t2, ui2, n_units1, n_units2, delta):
    """Number of matched spike pairs for every unit pair ``(u1, u2)``.

    Runs the greedy matching of every unit pair at once in one pass over the spikes of sorting 1.
    For a pair, the greedy matches spike ``i`` (unit ``u1``) with the earliest spike ``j`` of
    ``u2`` in its window that comes after the last spike of ``u2`` already matched to ``u1``
    (``last2``), and at most once per spike ``i`` (``last1``). Spikes of ``u2`` before that last
    match and still unmatched all lie before ``t[i] - delta`` (they were in an earlier window and
    were skipped), so this is exactly the per-pair greedy.
    """
    counts = np.zeros((n_units1, n_units2), dtype=np.int64)
    last1 = np.full((n_units1, n_units2), -1, dtype=np.int64)
    last2 = np.full((n_units1, n_units2), -1, dtype=np.int64)
    n2 = t2.size
    start = 0
    for i in range(t1.size):
        a = t1[i]
        u = ui1[i]
        while start < n2 and t2[start] < a - delta:
            start += 1
        j = start
        while j < n2 and t2[j] <= a + delta:
            v = ui2[j]
            if last1[u, v] != i and last2[u, v] < j:
                counts[u, v] += 1
                last1[u, v] = i
                last2[u, v] = j
            j += 1
    return counts


@njit(nogil=True, cache=True)
def label_spikes(t1, ui1, t2, ui2, match12, n_units1, n_units2, delta):
    """Per-spike labels, partners and confusion counts for a unit matching ``match12`` (index or -1).

    Pass 1: for each matched unit pair, the greedy matching of its spikes -> ``TP`` on both sides.
    Pass 2: the remaining spikes of sorting 1 (``FN``) are matched greedily with the remaining
    spikes of sorting 2 (``FP``) of any unit -> ``CL`` (classification errors) on both sides.

    Returns ``lab1``, ``lab2`` (int8 codes), ``partner1`` (index in sorting 2 of the spike matched
    to each spike of sorting 1, or -1), ``cl[u, v]`` (CL spikes of unit ``u`` paired with a spike
    of unit ``v``), ``miss1[u]`` and ``miss2[v]`` (spikes neither TP nor CL).
    """
    n1 = t1.size
    n2 = t2.size
    lab1 = np.zeros(n1, dtype=np.int8)
    lab2 = np.zeros(n2, dtype=np.int8)
    partner1 = np.full(n1, -1, dtype=np.int64)
    cl = np.zeros((n_units1, n_units2), dtype=np.int64)
    miss1 = np.zeros(n_units1, dtype=np.int64)
    miss2 = np.zeros(n_units2, dtype=np.int64)
    last = np.full(n_units1, -1, dtype=np.int64)
    start = 0
    for i in range(n1):
        a = t1[i]
        u = ui1[i]
        m = match12[u]
        while start < n2 and t2[start] < a - delta:
            start += 1
        if m < 0:
            continue
        j = start
        while j < n2 and t2[j] <= a + delta:
            if ui2[j] == m and j > last[u]:
                lab1[i] = TP
                lab2[j] = TP
                partner1[i] = j
                last[u] = j
                break
            j += 1
    start = 0
    for i in range(n1):
        if lab1[i] != MISS:
            continue
        a = t1[i]
        while start < n2 and t2[start] < a - delta:
            start += 1
        j = start
        found = False
        while j < n2 and t2[j] <= a + delta:
            if lab2[j] == MISS:
                lab1[i] = CL
                lab2[j] = CL
                partner1[i] = j
                cl[ui1[i], ui2[j]] += 1
                found = True
                break
            j += 1
        if not found:
            miss1[ui1[i]] += 1
    for j in range(n2):
        if lab2[j] == MISS:
            miss2[ui2[j]] += 1
    return lab1, lab2, partner1, cl, miss1, miss2


@njit(nogil=True, cache=True)
def collision_counts(t, ui, is_tp, n_units, max_lag, n_bins):
    """Collisions between spikes of different units within ``max_lag`` samples, by lag bin.

    For every pair of spikes ``i < j`` of different units with ``t[j] - t[i] <= max_lag``, the
    lag ``t[j] - t[i]`` is binned for unit ``ui[i]`` (against ``ui[j]``) and ``-lag`` for unit
    ``ui[j]`` (against ``ui[i]``). Returns ``total[u, v, bin]`` (collisions of spikes of ``u``
    with spikes of ``v``) and ``tp[u, v, bin]`` (those where the spike of ``u`` was detected).
    Bins split ``[-max_lag, max_lag]`` in ``n_bins`` equal parts; ``+max_lag`` falls in the last.
    """
    total = np.zeros((n_units, n_units, n_bins), dtype=np.int64)
    tp = np.zeros((n_units, n_units, n_bins), dtype=np.int64)
    width = 2.0 * max_lag / n_bins
    n = t.size
    for i in range(n):
        for j in range(i + 1, n):
            lag = t[j] - t[i]
            if lag > max_lag:
                break
            u = ui[i]
            v = ui[j]
            if u == v:
                continue
            b = int(np.floor((lag + max_lag) / width)) if width > 0 else 0
            if b > n_bins - 1:
                b = n_bins - 1
            c = int(np.floor((max_lag - lag) / width)) if width > 0 else 0
            if c > n_bins - 1:
                c = n_bins - 1
            total[u, v, b] += 1
            total[v, u, c] += 1
            if is_tp[i]:
                tp[u, v, b] += 1
            if is_tp[j]:
                tp[v, u, c] += 1
    return total, tp

