"""Clustering of peak features that needs no number of clusters: local recursive splits, then merges.

1. Peaks are grouped by their peak channel. Within a group every peak has features on the same
   channels (the group's neighbourhood), so the group is clustered in one feature space.
2. Each group is split recursively: project on its leading principal components, cluster with
   isosplit (Magland & Barnett 2015), and split each part again with its own principal
   components, until a part no longer splits (divisive clustering with local PCA, as in
   MountainSort's branch method and SpikeInterface's tridesclous2).
3. A unit whose spikes peak on two neighbouring channels gives a cluster in each group; clusters
   are merged when the distribution of their spikes, projected on the axis joining their means
   on the channels both have features on, is unimodal (an isocut dip test, :func:`isocut`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["split_clusters", "merge_clusters", "isocut", "pca_project", "CLUSTERING_METHODS"]

CLUSTERING_METHODS = ("isosplit",)


def pca_project(x: np.ndarray, n_components: int) -> np.ndarray:
    """Rows of ``x`` (centred) projected on their ``n_components`` leading principal axes (float64).

    The axes' signs are fixed (largest loading positive), so the result is deterministic.

    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(100, 5)) * [10, 1, 1, 1, 1]
    >>> y = pca_project(x, 2)
    >>> y.shape, bool(y[:, 0].std() > 5 * y[:, 1].std())
    ((100, 2), True)
    """
    x = np.asarray(x, dtype=np.float64)
    xc = x - x.mean(axis=0)
    k = int(min(n_components, x.shape[1], max(1, x.shape[0] - 1)))
    # Covariance eigen-decomposition: cheaper than an SVD of the data when n >> d.
    cov = xc.T @ xc
    w, v = np.linalg.eigh(cov)
    v = v[:, ::-1][:, :k]
    idx = np.abs(v).argmax(axis=0)
    v = v * np.where(v[idx, np.arange(k)] < 0, -1.0, 1.0)
    return xc @ v


def _cluster_once(y: np.ndarray, *, method: str, min_cluster_size: int) -> np.ndarray:
    """Labels (>= 0) or -1 for noise, for the points ``y``."""
    if method == "isosplit":
        from isosplit6 import isosplit6

        lab = np.asarray(isosplit6(np.ascontiguousarray(y, dtype=np.float64))).astype(np.int64) - 1
        counts = np.bincount(lab[lab >= 0], minlength=1)
        small = counts < min_cluster_size
        lab[small[lab]] = -1
        return lab
    raise ValueError(f"method must be one of {CLUSTERING_METHODS}; got {method!r}.")


def split_clusters(features: np.ndarray, *, method: str = "isosplit", min_cluster_size: int = 20,
                   n_pca: int = 6, max_depth: int = 4) -> np.ndarray:
    """Divisive clustering of one group of peaks: cluster, then cluster each part again, recursively.

    Parameters
    ----------
    features : numpy.ndarray
        ``(n_peaks, n_features)`` features of the group (e.g. local SVD features, flattened).
    method : {"isosplit"}, default "isosplit"
        isosplit (Magland & Barnett 2015, package ``isosplit6``). scikit-learn's HDBSCAN was
        tried and dropped: with ``allow_single_cluster`` it merges well separated clusters, without
        it a single Gaussian becomes noise.
    min_cluster_size : int, default 20
        Smallest cluster kept; smaller parts are noise (-1).
    n_pca : int, default 6
        Principal components each part is clustered in.
    max_depth : int, default 4
        Most levels of splitting.

    Returns
    -------
    numpy.ndarray
        ``(n_peaks,)`` int64 labels ``0 .. k-1`` (in order of first appearance) or -1 (noise).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(0, 1, (300, 4)), rng.normal(8, 1, (300, 4))])
    >>> lab = split_clusters(x, min_cluster_size=20)
    >>> sorted(np.unique(lab[lab >= 0]).tolist()), bool((lab[:300] != lab[300:].max()).all())
    ([0, 1], True)
    """
    x = np.asarray(features, dtype=np.float64)
    n = x.shape[0]
    labels = np.full(n, -1, dtype=np.int64)
    if n < min_cluster_size:
        return labels
    final: list[np.ndarray] = []
    stack = [(np.arange(n), 0)]
    while stack:
        idx, depth = stack.pop()
        if idx.size < 2 * min_cluster_size or depth >= max_depth:
            final.append(idx)
            continue
        y = pca_project(x[idx], n_pca)
        lab = _cluster_once(y, method=method, min_cluster_size=min_cluster_size)
        kept = np.unique(lab[lab >= 0])
        if kept.size <= 1:
            # One cluster: its noise points stay out of it (they are not like its spikes).
            final.append(idx[lab >= 0] if kept.size == 1 else idx)
            continue
        # Push in reverse so that parts are processed (and numbered) in label order.
        for lbl in kept[::-1]:
            stack.append((idx[lab == lbl], depth + 1))
    # Number clusters by their first peak: independent of the traversal order.
    final = [f for f in final if f.size >= min_cluster_size]
    final.sort(key=lambda f: int(f.min()))
    for k, f in enumerate(final):
        labels[f] = k
    return labels


# --------------------------------------------------------------------------------------------
# isocut: a unimodality test in 1-D (Magland & Barnett 2015, arXiv:1508.04841)


@njit(cache=True, nogil=True)
def _pava(y, w):
    """Weighted isotonic (non-decreasing) regression of ``y`` (pool-adjacent-violators).
    Returns the fit and, for every prefix length ``k``, the weighted squared error of the
    fit of ``y[:k]`` (used to find the best peak of an up-down fit)."""
    n = y.size
    val = np.empty(n)
    wt = np.empty(n)
    cnt = np.empty(n, dtype=np.int64)
    sse_blocks = np.empty(n)
    sumy = np.empty(n)
    sumy2 = np.empty(n)
    err = np.zeros(n + 1)
    m = 0
    total = 0.0
    for i in range(n):
        val[m] = y[i]
        wt[m] = w[i]
        cnt[m] = 1
        sumy[m] = w[i] * y[i]
        sumy2[m] = w[i] * y[i] * y[i]
        sse_blocks[m] = 0.0
        m += 1
        while m > 1 and val[m - 2] > val[m - 1]:
            total -= sse_blocks[m - 2]
            wt[m - 2] += wt[m - 1]
            cnt[m - 2] += cnt[m - 1]
            sumy[m - 2] += sumy[m - 1]
            sumy2[m - 2] += sumy2[m - 1]
            val[m - 2] = sumy[m - 2] / wt[m - 2]
            sse_blocks[m - 2] = sumy2[m - 2] - sumy[m - 2] * sumy[m - 2] / wt[m - 2]
            m -= 1
        total += sse_blocks[m - 1]
        err[i + 1] = total
    fit = np.empty(n)
    i = 0
    for b in range(m):
        for _ in range(cnt[b]):
            fit[i] = val[b]
            i += 1
    return fit, err


@njit(cache=True, nogil=True)
def _updown(y, w):
    """Best unimodal (non-decreasing then non-increasing) weighted least-squares fit of ``y``."""
    n = y.size
    _, err_up = _pava(y, w)
    _, err_down_rev = _pava(y[::-1].copy(), w[::-1].copy())
    best = 0
    best_err = np.inf
    for k in range(n + 1):  # y[:k] increasing, y[k:] decreasing
        e = err_up[k] + err_down_rev[n - k]
        if e < best_err:
            best_err = e
            best = k
    fit = np.empty(n)
    if best > 0:
        f1, _ = _pava(y[:best].copy(), w[:best].copy())
        fit[:best] = f1
    if best < n:
        f2, _ = _pava(y[best:][::-1].copy(), w[best:][::-1].copy())
        fit[best:] = f2[::-1]
    return fit


@njit(cache=True, nogil=True)
def _ks_side(c1, c2):
    """Max over prefixes (lengths 4, 8, 16, ..., n) of the scaled KS distance between two count
    profiles: ``sqrt(n_prefix) * max |F1 - F2|`` with both normalised within the prefix."""
    n = c1.size
    best = 0.0
    L = 4
    while True:
        if L > n:
            L = n
        s1 = 0.0
        s2 = 0.0
        for i in range(L):
            s1 += c1[i]
            s2 += c2[i]
        if s1 > 0 and s2 > 0:
            a = 0.0
            b = 0.0
            m = 0.0
            for i in range(L):
                a += c1[i] / s1
                b += c2[i] / s2
                d = abs(a - b)
                if d > m:
                    m = d
            v = m * np.sqrt(s1)
            if v > best:
                best = v
        if L == n:
            break
        L *= 2
    return best


@njit(cache=True, nogil=True)
def _isocut_sorted(x):
    n = x.size
    spacings = np.empty(n - 1)
    for i in range(n - 1):
        spacings[i] = max(x[i + 1] - x[i], 1e-12)
    counts = np.ones(n - 1)
    logd = np.log(counts / spacings)
    fit = _updown(logd, spacings)
    fitted_counts = np.exp(fit) * spacings
    fitted_counts *= counts.sum() / fitted_counts.sum()
    peak = int(np.argmax(fit))
    left = _ks_side(counts[:peak + 1].copy(), fitted_counts[:peak + 1].copy())
    right = _ks_side(counts[peak:][::-1].copy(), fitted_counts[peak:][::-1].copy())
    return max(left, right)


def isocut(values: np.ndarray) -> float:
    """Dip score of a 1-D sample: how far it is from the best unimodal distribution.

    The log-density (from the spacings of the sorted sample) is fitted by the best unimodal
    (up-down isotonic) function; the score is the largest Kolmogorov-Smirnov distance between
    the sample and that fit, over windows growing from either end towards the mode, times the
    square root of the window's count (Magland & Barnett 2015, "isocut"). Scores above ~2 (about
    a 2-sigma deviation) indicate more than one mode.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> bool(isocut(rng.normal(0, 1, 1000)) < 2.0), bool(isocut(np.r_[rng.normal(0, 1, 500), rng.normal(6, 1, 500)]) > 2.0)
    (True, True)
    """
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if x.size < 8:
        return 0.0
    return float(_isocut_sorted(x))


# --------------------------------------------------------------------------------------------
# merging of clusters across groups


def merge_clusters(features: np.ndarray, labels: np.ndarray, home_channel: np.ndarray, neighbours: np.ndarray,
                   channel_locations: np.ndarray, *, max_distance_um: float = 50.0, max_template_distance: float = 0.5,
                   dip_threshold: float = 2.0, max_spikes: int = 1000, seed: int = 0) -> np.ndarray:
    """Merge clusters whose spikes form one mode on the axis joining their means.

    Parameters
    ----------
    features : numpy.ndarray
        ``(n_peaks, k, n_components)`` features (:func:`extract_features`); peak ``p``'s column
        ``j`` is channel ``neighbours[home_channel[p], j]``.
    labels : numpy.ndarray
        ``(n_peaks,)`` cluster of each peak (-1: none). Every cluster's peaks share one home
        channel (the output of per-channel :func:`split_clusters`).
    home_channel : numpy.ndarray
        ``(n_peaks,)`` peak channel of each peak.
    neighbours : numpy.ndarray
        ``(n_channels, k)`` the table the features were extracted with.
    channel_locations : numpy.ndarray
        ``(n_channels, 2)`` µm.
    max_distance_um : float, default 50.0
        Clusters whose home channels are farther apart are never merged.
    max_template_distance : float, default 0.5
        Pairs are tested only when ``||m1 - m2|| / max(||m1||, ||m2||) <`` this, ``m`` the mean
        features on the shared channels.
    dip_threshold : float, default 2.0
        Merge when the :func:`isocut` score of the projected spikes is below this.
    max_spikes : int, default 1000
        Spikes per cluster used in the test (seeded draw).

    Returns
    -------
    numpy.ndarray
        New labels ``0 .. k-1`` (-1 kept).
    """
    labels = np.asarray(labels, dtype=np.int64)
    uniq = np.unique(labels[labels >= 0])
    if uniq.size < 2:
        return _relabel(labels)
    rng = np.random.default_rng(seed)
    members = {}
    home = {}
    for lbl in uniq:
        idx = np.flatnonzero(labels == lbl)
        if idx.size > max_spikes:
            idx = np.sort(rng.choice(idx, size=max_spikes, replace=False))
        members[int(lbl)] = idx
        home[int(lbl)] = int(home_channel[idx[0]])
    means = {lbl: features[idx].mean(axis=0) for lbl, idx in members.items()}
    n_ch = neighbours.shape[0]
    pos_in = np.full((n_ch, n_ch), -1, dtype=np.int64)  # pos_in[h, c] = column of channel c for home h
    for h in range(n_ch):
        row = neighbours[h]
        ok = row >= 0
        pos_in[h, row[ok]] = np.flatnonzero(ok)
    loc = np.asarray(channel_locations, dtype=np.float64)
    # Candidate pairs, nearest templates first.
    cands = []
    labs = [int(v) for v in uniq]
    for a_i, a in enumerate(labs):
        for b in labs[a_i + 1:]:
            ha, hb = home[a], home[b]
            if np.linalg.norm(loc[ha] - loc[hb]) > max_distance_um:
                continue
            common = np.flatnonzero((pos_in[ha] >= 0) & (pos_in[hb] >= 0))
            if common.size == 0:
                continue
            ma = means[a][pos_in[ha, common]].ravel()
            mb = means[b][pos_in[hb, common]].ravel()
            d = np.linalg.norm(ma - mb) / max(np.linalg.norm(ma), np.linalg.norm(mb), 1e-12)
            if d < max_template_distance:
                cands.append((d, a, b))
    cands.sort()
    parent = {lbl: lbl for lbl in labs}

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    group_members = {lbl: [lbl] for lbl in labs}
    for _, a, b in cands:
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        ga, gb = group_members[ra], group_members[rb]
        homes = {home[g] for g in ga + gb}
        common = np.ones(n_ch, dtype=bool)
        for h in homes:
            common &= pos_in[h] >= 0
        common = np.flatnonzero(common)
        if common.size == 0:
            continue
        xa = np.concatenate([features[members[g]][:, pos_in[home[g], common]].reshape(members[g].size, -1) for g in ga])
        xb = np.concatenate([features[members[g]][:, pos_in[home[g], common]].reshape(members[g].size, -1) for g in gb])
        v = xa.mean(axis=0) - xb.mean(axis=0)
        nv = np.linalg.norm(v)
        if nv == 0:
            score = 0.0
        else:
            proj = np.concatenate([xa, xb]) @ (v / nv)
            score = isocut(proj)
        if score < dip_threshold:
            parent[rb] = ra
            group_members[ra] = ga + gb
            del group_members[rb]
    out = labels.copy()
    for lbl in labs:
        out[labels == lbl] = find(lbl)
    return _relabel(out)


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered ``0 .. k-1`` in order of first appearance (-1 kept)."""
    out = np.full(labels.shape, -1, dtype=np.int64)
    ok = labels >= 0
    if not ok.any():
        return out
    uniq, first = np.unique(labels[ok], return_index=True)
    order = np.argsort(first)
    remap = np.empty(uniq.size, dtype=np.int64)
    remap[order] = np.arange(uniq.size)
    out[ok] = remap[np.searchsorted(uniq, labels[ok])]
    return out
