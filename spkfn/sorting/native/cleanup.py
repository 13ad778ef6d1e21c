"""Clean-up after template matching: duplicate spikes, merges, redundant and noise units; unit properties."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["remove_duplicate_spikes", "coincidence_counts", "template_pair_scores", "near_pairs", "cross_violations",
           "clean_units", "unit_properties"]


@njit(nogil=True, cache=True)
def _dup_mask(samples, units, n_units, window):
    keep = np.ones(samples.size, dtype=np.bool_)
    last = np.full(n_units, -(1 << 60), dtype=np.int64)
    for i in range(samples.size):
        u = units[i]
        if samples[i] - last[u] <= window:
            keep[i] = False
        else:
            last[u] = samples[i]
    return keep


def remove_duplicate_spikes(samples: np.ndarray, units: np.ndarray, *, window_samples: int) -> np.ndarray:
    """Mask of spikes to keep: a spike of a unit within ``window_samples`` after a kept spike of the
    same unit is a duplicate. ``samples`` sorted.

    >>> import numpy as np
    >>> remove_duplicate_spikes(np.array([10, 12, 12, 40]), np.array([0, 0, 1, 0]), window_samples=5).tolist()
    [True, False, True, True]
    """
    units = np.asarray(units, dtype=np.int64)
    n_units = int(units.max()) + 1 if units.size else 0
    return _dup_mask(np.asarray(samples, dtype=np.int64), units, n_units, int(window_samples))


@njit(nogil=True, cache=True)
def _coincidences(samples, units, n_units, window):
    out = np.zeros((n_units, n_units), dtype=np.int64)
    n = samples.size
    for i in range(n):
        j = i + 1
        while j < n and samples[j] - samples[i] <= window:
            if units[j] != units[i]:
                out[units[i], units[j]] += 1
                out[units[j], units[i]] += 1
            j += 1
    return out


def coincidence_counts(samples: np.ndarray, units: np.ndarray, n_units: int, *, window_samples: int) -> np.ndarray:
    """``(n_units, n_units)`` counts of spike pairs of two different units within ``window_samples``.

    >>> import numpy as np
    >>> coincidence_counts(np.array([10, 11, 50]), np.array([0, 1, 1]), 2, window_samples=2).tolist()
    [[0, 1], [1, 0]]
    """
    return _coincidences(np.asarray(samples, np.int64), np.asarray(units, np.int64), int(n_units), int(window_samples))


@njit(nogil=True, cache=True)
def _pair_scores(dense, norms2, pa, pb, support, max_lag):
    """For each pair: best cosine similarity and smallest normalised distance over lags."""
    n_pairs = pa.size
    n_t = dense.shape[1]
    sim = np.empty(n_pairs)
    dist = np.empty(n_pairs)
    for q in range(n_pairs):
        a = pa[q]
        b = pb[q]
        chans = np.flatnonzero(support[a] | support[b])
        best_dot = -np.inf
        for lag in range(-max_lag, max_lag + 1):
            dot = 0.0
            for i in range(n_t):
                k = i - lag
                if k < 0 or k >= n_t:
                    continue
                for c in chans:
                    dot += dense[a, i, c] * dense[b, k, c]
            if dot > best_dot:
                best_dot = dot
        na = np.sqrt(max(norms2[a], 1e-24))
        nb = np.sqrt(max(norms2[b], 1e-24))
        sim[q] = best_dot / (na * nb)
        # ||a - b(lag)||^2 = |a|^2 + |b|^2 - 2 <a, b(lag)> (parts shifted out of the window count in full)
        dist[q] = np.sqrt(max(norms2[a] + norms2[b] - 2.0 * best_dot, 0.0)) / max(na, nb)
    return sim, dist


def template_pair_scores(tpl: np.ndarray, tchans: np.ndarray, n_channels: int, *, max_lag: int = 2,
                         pairs: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity and normalised distance of pairs of sparse templates, at their best lag.

    ``sim = max_lag <a, b(lag)> / (|a| |b|)``; ``dist = |a - b(lag*)| / max(|a|, |b|)`` at the lag
    of best similarity (so amplitude matters for ``dist``, not for ``sim``). Returns two
    ``(n_units, n_units)`` arrays (``-inf`` / ``inf`` for pairs not computed; ``pairs`` is an
    ``(m, 2)`` array of the pairs to compute, default all).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.zeros((2, 10, 1), "float32"); t[0, 4, 0] = -1; t[1, 5, 0] = -0.5
    >>> sim, dist = template_pair_scores(t, np.array([[0], [0]]), 1, max_lag=1)
    >>> float(sim[0, 1]), float(dist[0, 1])
    (1.0, 0.5)
    """
    from .templates import dense_from_sparse

    n_units = tpl.shape[0]
    dense = dense_from_sparse(tpl, tchans, n_channels).astype(np.float64)
    norms2 = (dense ** 2).sum(axis=(1, 2))
    support = np.abs(dense).max(axis=1) > 0
    if pairs is None:
        ia, ib = np.triu_indices(n_units, k=1)
    else:
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        ia, ib = pairs[:, 0], pairs[:, 1]
    sim = np.full((n_units, n_units), -np.inf)
    dist = np.full((n_units, n_units), np.inf)
    np.fill_diagonal(sim, 1.0)
    np.fill_diagonal(dist, 0.0)
    if ia.size:
        s, d = _pair_scores(dense, norms2, ia.astype(np.int64), ib.astype(np.int64), support, int(max_lag))
        sim[ia, ib] = sim[ib, ia] = s
        dist[ia, ib] = dist[ib, ia] = d
    return sim, dist


def near_pairs(tpl: np.ndarray, tchans: np.ndarray, locations: np.ndarray, *, max_distance_um: float) -> np.ndarray:
    """``(m, 2)`` pairs ``a < b`` of templates whose largest channels are within ``max_distance_um``."""
    n = tpl.shape[0]
    if n < 2:
        return np.zeros((0, 2), np.int64)
    best = tchans[np.arange(n), np.abs(tpl).max(axis=1).argmax(axis=1)]
    xy = np.asarray(locations, dtype=np.float64)[best]
    d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
    ia, ib = np.triu_indices(n, k=1)
    ok = d[ia, ib] <= max_distance_um
    return np.column_stack([ia[ok], ib[ok]]).astype(np.int64)


@njit(nogil=True, cache=True)
def _cross_violations(ta, tb, lo, hi):
    count = 0
    j0 = 0
    for i in range(ta.size):
        while j0 < tb.size and tb[j0] < ta[i] - hi:
            j0 += 1
        j = j0
        while j < tb.size and tb[j] <= ta[i] + hi:
            d = abs(tb[j] - ta[i])
            if lo < d < hi:
                count += 1
            j += 1
    return count


def cross_violations(ta: np.ndarray, tb: np.ndarray, *, lo: int, hi: int) -> int:
    """Pairs of spikes (one of each sorted train) with ``lo < |t_a - t_b| < hi`` samples.

    >>> import numpy as np
    >>> cross_violations(np.array([100, 500]), np.array([90, 103, 510, 900]), lo=4, hi=20)
    2
    """
    return int(_cross_violations(np.asarray(ta, np.int64), np.asarray(tb, np.int64), int(lo), int(hi)))


def refractory_violations(train: np.ndarray, *, refractory_samples: int) -> float:
    """Fraction of inter-spike intervals shorter than ``refractory_samples`` (train sorted).

    >>> import numpy as np
    >>> refractory_violations(np.array([0, 10, 100, 103]), refractory_samples=5)
    0.3333333333333333
    """
    if train.size < 2:
        return 0.0
    return float(np.mean(np.diff(train) < refractory_samples))


def clean_units(spikes: np.ndarray, tpl: np.ndarray, tchans: np.ndarray, *, noise: np.ndarray, fs: float,
                n_samples: int, locations: np.ndarray, params: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Remove duplicate spikes, merge split units, drop redundant and noise units; renumber units."""
    info: dict = {}
    tpl, tchans = tpl.copy(), tchans.copy()  # merged groups take their largest unit's template
    n_units = tpl.shape[0]
    n_ch = noise.size
    if spikes.size == 0:
        return spikes, tpl[:0], tchans[:0], {"num_units": 0}
    # 1. duplicate spikes
    keep = remove_duplicate_spikes(spikes["sample_index"], spikes["unit_index"],
                                   window_samples=int(round(params["duplicate_ms"] * fs / 1000.0)))
    info["duplicate_spikes_removed"] = int((~keep).sum())
    spikes = spikes[keep]
    counts = np.bincount(spikes["unit_index"], minlength=n_units)
    # 2. merges: near-identical templates (amplitude included) whose trains do not violate each
    # other's refractory period (the cross-correlogram has a dip at 0, as the same neuron's would).
    pairs_near = near_pairs(tpl, tchans, locations, max_distance_um=params["cleanup_radius_um"])
    _, dist = template_pair_scores(tpl, tchans, n_ch, max_lag=2, pairs=pairs_near)
    refr = int(round(params["refractory_ms"] * fs / 1000.0))
    dup = int(round(params["duplicate_ms"] * fs / 1000.0))
    duration = max(1.0, float(n_samples))
    label = np.arange(n_units)
    pairs = [(dist[a, b], a, b) for a in range(n_units) for b in range(a + 1, n_units)
             if dist[a, b] <= params["merge_max_distance_ccg"]]
    pairs.sort()
    merges = 0
    trains = [np.sort(spikes["sample_index"][spikes["unit_index"] == u]) for u in range(n_units)]
    for d, a, b in pairs:
        ra, rb = label[a], label[b]
        if ra == rb:
            continue
        if d > params["merge_max_distance"]:
            # Templates alike but not identical: merge only if the trains respect each other's
            # refractory period (few pairs within it compared with independent trains).
            ta = np.sort(np.concatenate([trains[u] for u in np.flatnonzero(label == ra)]))
            tb = np.sort(np.concatenate([trains[u] for u in np.flatnonzero(label == rb)]))
            if ta.size == 0 or tb.size == 0:
                continue
            n_viol = cross_violations(ta, tb, lo=dup, hi=refr)
            expected = ta.size * tb.size * 2.0 * max(refr - dup, 1) / duration
            if n_viol > params["merge_max_ccg_ratio"] * expected:
                continue
        label[label == rb] = ra
        merges += 1
    info["units_merged"] = merges
    if merges:
        new_units = label[spikes["unit_index"]]
        spikes = spikes.copy()
        spikes["unit_index"] = new_units
        # the kept template of a merged group: that of its unit with most spikes
        for r in np.unique(label):
            group = np.flatnonzero(label == r)
            if group.size > 1:
                best = group[np.argmax(counts[group])]
                tpl[r] = tpl[best]
                tchans[r] = tchans[best]
        order = np.lexsort((spikes["unit_index"], spikes["sample_index"]))
        spikes = spikes[order]
        keep = remove_duplicate_spikes(spikes["sample_index"], spikes["unit_index"],
                                       window_samples=int(round(params["duplicate_ms"] * fs / 1000.0)))
        spikes = spikes[keep]
    alive = np.zeros(n_units, bool)
    alive[np.unique(spikes["unit_index"])] = True
    counts = np.bincount(spikes["unit_index"], minlength=n_units)
    # 3. redundant units: most of a unit's spikes coincide with another unit's
    co = coincidence_counts(spikes["sample_index"], spikes["unit_index"], n_units,
                            window_samples=int(round(params["redundant_ms"] * fs / 1000.0)))
    amp = _template_snr(tpl, tchans, noise)
    redundant = 0
    for a in np.argsort(counts):
        if not alive[a] or counts[a] == 0:
            continue
        for b in np.flatnonzero(alive):
            if b != a and co[a, b] > params["redundant_fraction"] * counts[a] and amp[a] <= amp[b] * 1.0 + 1e9:
                alive[a] = False
                redundant += 1
                break
    info["redundant_units_removed"] = redundant
    # 4. fragments: a unit with far fewer spikes than a unit with a similar template (a few of
    # that unit's spikes, e.g. collisions, fitted by a template of their own)
    sim, _ = template_pair_scores(tpl, tchans, n_ch, max_lag=int(round(fs / 1000.0)), pairs=pairs_near)
    fragment = np.zeros(n_units, bool)
    for a in np.flatnonzero(alive):
        near = np.flatnonzero(alive & (sim[a] >= params["fragment_min_similarity"]))
        near = near[near != a]
        if near.size and counts[a] < params["fragment_max_ratio"] * counts[near].max():
            fragment[a] = True
    alive &= ~fragment
    info["fragment_units_removed"] = int(fragment.sum())
    # 5. noise units: too few spikes, too small, or fitted at a fraction of their own template
    few = alive & (counts < params["min_spikes"])
    small = alive & (amp < params["min_snr"])
    med = np.array([np.median(spikes["amplitude"][spikes["unit_index"] == u]) if counts[u] else 0.0
                    for u in range(n_units)])
    scaled = alive & (med < params["min_amplitude_median"])
    alive &= ~(few | small | scaled)
    info["small_units_removed"] = int(small.sum())
    info["few_spike_units_removed"] = int(few.sum())
    info["low_amplitude_units_removed"] = int(scaled.sum())
    kept = np.flatnonzero(alive)
    remap = np.full(n_units, -1, np.int64)
    remap[kept] = np.arange(kept.size)
    spikes = spikes[alive[spikes["unit_index"]]].copy()
    spikes["unit_index"] = remap[spikes["unit_index"]]
    info["num_units"] = int(kept.size)
    return spikes, tpl[kept], tchans[kept], info


def _template_snr(tpl: np.ndarray, tchans: np.ndarray, noise: np.ndarray) -> np.ndarray:
    amp = np.abs(tpl).max(axis=1)  # (units, k)
    nz = np.where(tchans >= 0, noise[np.maximum(tchans, 0)], np.inf)
    return (amp / nz).max(axis=1) if tpl.size else np.zeros(0)


def unit_properties(spikes: np.ndarray, tpl: np.ndarray, tchans: np.ndarray, *, noise: np.ndarray,
                    locations: np.ndarray, nbefore: int, fs: float, n_samples: int, channel_ids) -> dict:
    """Per-unit properties: best channel, position (µm), amplitude (µV), SNR, number of spikes, rate."""
    n_units = tpl.shape[0]
    amp = -tpl[:, nbefore, :] if tpl.size else np.zeros((0, 1))
    peak = np.abs(tpl).max(axis=1)
    j = peak.argmax(axis=1)
    best = tchans[np.arange(n_units), j]
    trough = np.abs(tpl.min(axis=1))  # (units, k)
    w = np.where(tchans >= 0, trough, 0.0) ** 2
    ch = np.maximum(tchans, 0)
    wsum = np.maximum(w.sum(1), 1e-12)
    x = (w * locations[ch, 0]).sum(1) / wsum
    y = (w * locations[ch, 1]).sum(1) / wsum
    counts = np.bincount(spikes["unit_index"], minlength=n_units)
    amplitude = trough[np.arange(n_units), j]
    del amp
    return {
        "best_channel": best.astype(np.int64),
        "best_channel_id": np.asarray(channel_ids)[best].astype(str),
        "x_um": x, "y_um": y,
        "amplitude_uV": amplitude.astype(np.float64),
        "snr": (amplitude / noise[best]).astype(np.float64),
        "num_spikes": counts.astype(np.int64),
        "firing_rate_hz": counts / (n_samples / fs),
    }


@njit(nogil=True, cache=True)
def _best_fit(r, t, chans, max_lag, norm2, amin, amax):
    """Best lag and amplitude of template ``t`` in residual ``r`` (both ``(n_t, C)``), on ``chans``:
    maximises ``<r, a t(lag)>`` reduction ``dot^2 / norm2`` with ``a`` in bounds."""
    n_t = r.shape[0]
    best = 0.0
    best_lag = 0
    best_a = 0.0
    for lag in range(-max_lag, max_lag + 1):
        dot = 0.0
        for i in range(n_t):
            k = i - lag
            if k < 0 or k >= n_t:
                continue
            for c in chans:
                dot += r[i, c] * t[k, c]
        if dot <= 0:
            continue
        a = dot / norm2
        if a < amin or a > amax:
            continue
        red = dot * dot / norm2
        if red > best:
            best = red
            best_lag = lag
            best_a = a
    return best, best_lag, best_a


def find_mixtures(dense: np.ndarray, *, order: np.ndarray, candidates: list, max_lag: int, amplitude_range=(0.5, 2.0),
                  max_residual: float = 0.2, max_components: int = 2, duplicates: bool = True) -> np.ndarray:
    """Templates explained by one or two other templates (duplicates and collision clusters).

    Templates are visited in ``order`` (e.g. fewest spikes first); each is fitted greedily by up to
    ``max_components`` of its ``candidates`` that are still kept (each at its best lag within
    ``± max_lag`` and amplitude within ``amplitude_range``); when the residual energy falls below
    ``max_residual`` of the template's, it is a mixture and is removed. With ``duplicates=False``
    a template explained by a single other one is kept (two neighbouring neurons can have nearly
    the same template; the clean-up after matching merges true duplicates by their spike trains).

    Returns a boolean mask of the templates kept.

    >>> import numpy as np
    >>> t = np.zeros((3, 30, 2), "float32"); t[0, 10, 0] = -5; t[1, 10, 1] = -4
    >>> t[2] = t[0] + np.roll(t[1], 3, axis=0)
    >>> find_mixtures(t, order=np.array([2, 0, 1]), candidates=[[1, 2], [0, 2], [0, 1]], max_lag=5).tolist()
    [True, True, False]
    """
    n = dense.shape[0]
    keep = np.ones(n, dtype=bool)
    norms2 = (dense.astype(np.float64) ** 2).sum(axis=(1, 2))
    support = np.abs(dense).max(axis=1) > 0
    for k in order:
        cands = [j for j in candidates[k] if keep[j] and j != k]
        if not cands or norms2[k] == 0:
            continue
        r = dense[k].astype(np.float64)
        for comp in range(max_components):
            best = (0.0, -1, 0, 0.0)
            for j in cands:
                chans = np.flatnonzero(support[k] | support[j]).astype(np.int64)
                red, lag, a = _best_fit(r, dense[j].astype(np.float64), chans, max_lag, norms2[j], amplitude_range[0],
                                        amplitude_range[1])
                if red > best[0]:
                    best = (red, j, lag, a)
            if best[1] < 0:
                break
            _, j, lag, a = best
            shifted = np.zeros_like(r)
            if lag >= 0:
                shifted[lag:] = dense[j][:dense.shape[1] - lag]
            else:
                shifted[:lag] = dense[j][-lag:]
            r = r - a * shifted
            if (r ** 2).sum() < max_residual * norms2[k]:
                if comp > 0 or duplicates:
                    keep[k] = False
                break
    return keep
