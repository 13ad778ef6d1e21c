"""Common references: global (per group), single (given channels) and local (ring), median or average.

Kernel
------
The per-sample median across channels is the hot loop of common median referencing. Here it is a
*median network*: Batcher's odd-even merge sort network for the number of channels, truncated to
the channel count (comparators touching absent wires are dropped, which is exact because absent
wires would hold +inf and never move) and pruned backwards to the comparators that can reach the
two middle outputs. The network runs on blocks of 64 samples at once (``min``/``max`` on rows of
a ``(n_channels, 64)`` buffer, which vectorise), so the cost per sample is data-independent and
about 5x below ``numpy.median`` for 384 channels, 15x for 32. Results are exactly
``numpy.median`` (same two middle values, same float32 mean).

Batcher, K. E. (1968) Sorting networks and their applications. AFIPS Spring Joint Computer
Conference 32, 307-314.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import xarray as xr
from numba import njit

from ..core.validate import check_choice, check_number
from ..io.recording import channel_locations, check_recording
from ._base import lazy_transform
from .elementwise import _output_dtype, cast_traces

__all__ = [
    "median_network",
    "median_across_channels",
    "common_reference_traces",
    "local_reference_traces",
    "ring_neighbours",
    "common_reference",
]

logger = logging.getLogger(__name__)

REFERENCES = ("global", "single", "local")
OPERATORS = ("median", "average")
_BLOCK = 64  # samples processed together by the median network


# --------------------------------------------------------------------------------------------
# median network


def _batcher_pairs(n: int) -> list[tuple[int, int]]:
    """Comparators of Batcher's odd-even merge sort for ``n`` wires (any ``n``), in order."""
    pairs = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


def median_network(n: int) -> tuple[np.ndarray, int, int]:
    """Comparators ``(m, 2)`` that put the two middle order statistics of ``n`` values in place.

    After applying comparator ``(a, b)`` as ``(v[a], v[b]) = (min, max)`` in order, ``v[k_lo]`` and
    ``v[k_hi]`` hold the ``k_lo``-th and ``k_hi``-th smallest values (``k_lo = (n - 1) // 2``,
    ``k_hi = n // 2``; equal for odd ``n``).

    >>> pairs, k_lo, k_hi = median_network(5)
    >>> v = [5.0, 1.0, 4.0, 2.0, 3.0]
    >>> for a, b in pairs:
    ...     v[a], v[b] = min(v[a], v[b]), max(v[a], v[b])
    >>> v[k_lo], k_lo == k_hi
    (3.0, True)
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"median_network needs at least one value; got n={n}.")
    return _median_network(n)


@functools.lru_cache(maxsize=64)
def _median_network(n: int) -> tuple[np.ndarray, int, int]:
    # Built once per size (~4 ms of Python holding the GIL for 384 inputs: per chunk, it would
    # stall the other workers); read-only, since every caller shares it.
    k_lo, k_hi = (n - 1) // 2, n // 2
    need = {k_lo, k_hi}
    keep = []
    for a, b in reversed(_batcher_pairs(n)):
        if a in need or b in need:
            keep.append((a, b))
            need.add(a)
            need.add(b)
    keep.reverse()
    pairs = np.array(keep, dtype=np.int64).reshape(-1, 2)
    pairs.flags.writeable = False
    return pairs, k_lo, k_hi


@njit(nogil=True, cache=True, inline="always")
def _apply_network(T, pairs, start, stop):  # pragma: no cover - compiled
    R = T.shape[1]
    for q in range(start, stop):
        ta = T[pairs[q, 0]]
        tb = T[pairs[q, 1]]
        for r in range(R):
            u = ta[r]
            v = tb[r]
            lt = u < v
            ta[r] = u if lt else v
            tb[r] = v if lt else u


@njit(nogil=True, cache=True)
def _increasing(a):  # pragma: no cover - compiled
    for i in range(1, a.size):
        if a[i] <= a[i - 1]:
            return False
    return True


@njit(nogil=True, cache=True)
def _group_median_reference(x, out, targets, refs, pairs, k_lo, k_hi, average):  # pragma: no cover - compiled
    """out[:, targets] = x[:, targets] - median_or_mean(x[:, refs]) per sample."""
    n = x.shape[0]
    m = refs.size
    R = 64
    T = np.zeros((m, R), np.float32)
    ref = np.empty(R, np.float32)
    # targets sorted and contiguous (the usual single-group case): a plain vectorised row loop
    t_first = targets[0]
    t_contig = targets[targets.size - 1] - t_first + 1 == targets.size
    r_first = refs[0]
    r_contig = refs[m - 1] - r_first + 1 == m and _increasing(refs)
    for t0 in range(0, n, R):
        rn = min(R, n - t0)
        if average:
            for r in range(rn):
                row = x[t0 + r]
                s = 0.0
                for j in range(m):
                    s += row[refs[j]]
                ref[r] = s / m
        else:
            for r in range(rn):
                row = x[t0 + r]
                if r_contig:  # the usual case (all channels of the group): no gather
                    for j in range(m):
                        T[j, r] = row[r_first + j]
                else:
                    for j in range(m):
                        T[j, r] = row[refs[j]]
            _apply_network(T, pairs, 0, pairs.shape[0])
            for r in range(rn):
                ref[r] = np.float32(0.5) * (T[k_lo, r] + T[k_hi, r])
        for r in range(rn):
            row = x[t0 + r]
            orow = out[t0 + r]
            v = ref[r]
            if t_contig:
                for c in range(t_first, t_first + targets.size):
                    orow[c] = row[c] - v
            else:
                for j in range(targets.size):
                    c = targets[j]
                    orow[c] = row[c] - v


@njit(nogil=True, cache=True)
def _local_reference(x, out, neigh, counts, net_pairs, net_start, net_stop, net_lo, net_hi, average):  # pragma: no cover
    """out[:, i] = x[:, i] - median_or_mean(x[:, neigh[i, :counts[i]]]) per sample.

    Works on blocks of R samples transposed to channel-major, so gathering a channel's
    neighbours copies contiguous rows.
    """
    n, c = x.shape
    kmax = neigh.shape[1]
    R = 64
    XT = np.zeros((c, R), np.float32)
    OT = np.zeros((c, R), np.float32)
    T = np.zeros((max(kmax, 1), R), np.float32)
    for t0 in range(0, n, R):
        rn = min(R, n - t0)
        for r in range(rn):
            row = x[t0 + r]
            for j in range(c):
                XT[j, r] = row[j]
        for i in range(c):
            k = counts[i]
            oi = OT[i]
            xi = XT[i]
            if average:
                for r in range(R):
                    oi[r] = 0.0
                for j in range(k):
                    src = XT[neigh[i, j]]
                    for r in range(R):
                        oi[r] += src[r]
                inv = np.float32(1.0 / k)
                for r in range(R):
                    oi[r] = xi[r] - oi[r] * inv
            else:
                for j in range(k):
                    src = XT[neigh[i, j]]
                    dst = T[j]
                    for r in range(R):
                        dst[r] = src[r]
                _apply_network(T, net_pairs, net_start[k], net_stop[k])
                tlo = T[net_lo[k]]
                thi = T[net_hi[k]]
                for r in range(R):
                    oi[r] = xi[r] - np.float32(0.5) * (tlo[r] + thi[r])
        for r in range(rn):
            orow = out[t0 + r]
            for j in range(c):
                orow[j] = OT[j, r]


def _as_traces(traces) -> np.ndarray:
    x = np.asarray(traces)
    if x.ndim != 2:
        raise ValueError(f"traces must be 2-D (n_samples, n_channels); got shape {x.shape}.")
    if x.dtype.kind not in "iuf":
        raise ValueError(f"traces must be a real numeric array; got dtype {x.dtype}.")
    if x.dtype != np.float32:
        x = x.astype(np.float32)
    return np.ascontiguousarray(x)


def median_across_channels(traces: np.ndarray, *, channel_indices=None) -> np.ndarray:
    """Per-sample median over channels, as float32: equals ``numpy.median(traces[:, idx], axis=1)``.

    Parameters
    ----------
    traces : numpy.ndarray, shape (n_samples, n_channels)
    channel_indices : array_like of int, optional
        Channels to take the median over (default all).

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(1000, 7)).astype("float32")
    >>> bool(np.array_equal(median_across_channels(x), np.median(x, axis=1)))
    True
    """
    x = _as_traces(traces)
    idx = np.arange(x.shape[1]) if channel_indices is None else np.asarray(channel_indices, dtype=np.int64)
    if idx.size == 0:
        raise ValueError("channel_indices is empty: the median needs at least one channel.")
    if idx.min() < 0 or idx.max() >= x.shape[1]:
        raise ValueError(f"channel_indices must be in [0, {x.shape[1]}); got {idx.tolist()[:10]}.")
    pairs, k_lo, k_hi = median_network(idx.size)
    out = np.empty(x.shape[0], np.float32)
    _median_only(x, out, idx, pairs, k_lo, k_hi)
    return out


@njit(nogil=True, cache=True)
def _median_only(x, med, refs, pairs, k_lo, k_hi):  # pragma: no cover - compiled
    n = x.shape[0]
    m = refs.size
    R = 64
    T = np.zeros((m, R), np.float32)
    for t0 in range(0, n, R):
        rn = min(R, n - t0)
        for r in range(rn):
            row = x[t0 + r]
            for j in range(m):
                T[j, r] = row[refs[j]]
        _apply_network(T, pairs, 0, pairs.shape[0])
        for r in range(rn):
            med[t0 + r] = np.float32(0.5) * (T[k_lo, r] + T[k_hi, r])


# --------------------------------------------------------------------------------------------
# numpy kernels


def common_reference_traces(traces: np.ndarray, *, operator: str = "median", groups=None, reference_indices=None,
                            dtype="float32") -> np.ndarray:
    """Subtract, per sample and per group, the median (or mean) of the group's reference channels.

    Parameters
    ----------
    traces : numpy.ndarray, shape (n_samples, n_channels)
    operator : {"median", "average"}
    groups : array_like (n_channels,), optional
        Group of each channel (default: one group). Groups never mix.
    reference_indices : array_like of int, optional
        Channels the reference is computed from (default: all). Each group uses those of its
        own channels that are listed; a group with none is an error.
    dtype : str, default "float32"

    Returns
    -------
    numpy.ndarray, shape (n_samples, n_channels)

    Examples
    --------
    >>> x = np.array([[1.0, 2.0, 10.0, 3.0]], "float32")
    >>> common_reference_traces(x).tolist()          # median 2.5
    [[-1.5, -0.5, 7.5, 0.5]]
    >>> common_reference_traces(x, groups=[0, 0, 1, 1], operator="average").tolist()
    [[-0.5, 0.5, 3.5, -3.5]]
    """
    check_choice("operator", operator, OPERATORS)
    x = _as_traces(traces)
    sets = _group_sets(x.shape[1], groups, reference_indices)
    out = np.empty_like(x)
    for targets, refs in sets:
        pairs, k_lo, k_hi = median_network(refs.size)
        _group_median_reference(x, out, targets, refs, pairs, k_lo, k_hi, operator == "average")
    return cast_traces(out, dtype)


def _group_sets(n_channels: int, groups, reference_indices) -> list[tuple[np.ndarray, np.ndarray]]:
    g = np.zeros(n_channels, np.int64) if groups is None else np.asarray(groups)
    if g.shape != (n_channels,):
        raise ValueError(f"groups must have one value per channel ({n_channels}); got shape {g.shape}.")
    is_ref = np.ones(n_channels, bool)
    if reference_indices is not None:
        ri = np.asarray(reference_indices, dtype=np.int64).ravel()
        if ri.size == 0 or ri.min() < 0 or ri.max() >= n_channels:
            raise ValueError(f"reference_indices must be non-empty channel positions in [0, {n_channels}); got {ri.tolist()[:10]}.")
        is_ref = np.zeros(n_channels, bool)
        is_ref[ri] = True
    sets = []
    for grp in np.unique(g):
        targets = np.flatnonzero(g == grp)
        refs = targets[is_ref[targets]]
        if refs.size == 0:
            raise ValueError(f"group {np.asarray(grp).item()!r} has no reference channel: each group is referenced to its own "
                             "channels, so give at least one reference channel per group.")
        sets.append((targets.astype(np.int64), refs.astype(np.int64)))
    return sets


def ring_neighbours(locations, *, inner_radius_um: float, outer_radius_um: float, groups=None,
                    channel_ids=None) -> np.ndarray:
    """Channels in the ring ``inner < distance <= outer`` around each channel, same group only.

    Returns an ``(n_channels, k_max)`` int array padded with -1 (neighbours by increasing distance).
    Raises ``ValueError`` naming the channels whose ring is empty.

    >>> ring_neighbours([[0, 0], [0, 20], [0, 40]], inner_radius_um=0.0, outer_radius_um=25.0).tolist()
    [[1, -1], [0, 2], [1, -1]]
    """
    from .utils import channel_distances

    loc = np.asarray(locations, dtype=np.float64)
    d = channel_distances(loc)
    n = d.shape[0]
    g = np.zeros(n, np.int64) if groups is None else np.asarray(groups)
    same = g[:, None] == g[None, :]
    ring = (d > inner_radius_um) & (d <= outer_radius_um) & same
    counts = ring.sum(axis=1)
    if np.any(counts == 0):
        empty = np.flatnonzero(counts == 0)
        names = (np.asarray(channel_ids)[empty] if channel_ids is not None else empty).tolist()
        others = np.where(same & ~np.eye(n, dtype=bool), d, np.inf)[empty]
        nearest = others.min(axis=1)
        hint = (f" The nearest same-group channel is {np.nanmin(nearest[np.isfinite(nearest)]):.1f}"
                f"-{np.max(nearest[np.isfinite(nearest)]):.1f} µm away from them." if np.any(np.isfinite(nearest))
                else " They are alone in their group.")
        raise ValueError(f"local_radius_um=({inner_radius_um:g}, {outer_radius_um:g}) selects no channel around "
                         f"channels {names[:10]}{' ...' if len(names) > 10 else ''} (ring inner < distance <= outer, "
                         f"same group).{hint} Widen the ring or remove those channels.")
    kmax = int(counts.max())
    out = np.full((n, kmax), -1, np.int64)
    for i in range(n):
        idx = np.flatnonzero(ring[i])
        idx = idx[np.argsort(d[i, idx], kind="stable")]
        out[i, :idx.size] = idx
    return out


def _network_table(kmax: int):
    """All median networks for 1..kmax values, concatenated, indexed by size."""
    pairs_list, start, stop, lo, hi = [], np.zeros(kmax + 1, np.int64), np.zeros(kmax + 1, np.int64), \
        np.zeros(kmax + 1, np.int64), np.zeros(kmax + 1, np.int64)
    pos = 0
    for k in range(1, kmax + 1):
        p, k_lo, k_hi = median_network(k)
        pairs_list.append(p)
        start[k], stop[k], lo[k], hi[k] = pos, pos + len(p), k_lo, k_hi
        pos += len(p)
    pairs = np.concatenate(pairs_list) if pairs_list else np.zeros((0, 2), np.int64)
    return np.ascontiguousarray(pairs.reshape(-1, 2)), start, stop, lo, hi


def local_reference_traces(traces: np.ndarray, *, neighbours: np.ndarray, operator: str = "median",
                           dtype="float32") -> np.ndarray:
    """Subtract from each channel the median (or mean) of its neighbours, per sample.

    Parameters
    ----------
    traces : numpy.ndarray, shape (n_samples, n_channels)
    neighbours : numpy.ndarray, shape (n_channels, k_max)
        Neighbour channel indices per channel, padded with -1 (see :func:`ring_neighbours`);
        each channel needs at least one.
    operator : {"median", "average"}
    dtype : str, default "float32"

    Examples
    --------
    >>> x = np.array([[1.0, 2.0, 4.0]], "float32")
    >>> local_reference_traces(x, neighbours=np.array([[1, -1], [0, 2], [1, -1]])).tolist()
    [[-1.0, -0.5, 2.0]]
    """
    check_choice("operator", operator, OPERATORS)
    x = _as_traces(traces)
    neigh = np.ascontiguousarray(neighbours, dtype=np.int64)
    if neigh.ndim != 2 or neigh.shape[0] != x.shape[1]:
        raise ValueError(f"neighbours must have shape (n_channels={x.shape[1]}, k_max); got {neigh.shape}.")
    counts = (neigh >= 0).sum(axis=1).astype(np.int64)
    if np.any(counts == 0):
        raise ValueError(f"channels {np.flatnonzero(counts == 0)[:10].tolist()} have no neighbour.")
    if np.any(neigh >= x.shape[1]):
        raise ValueError("neighbours holds channel indices beyond n_channels.")
    # compact: valid entries first in each row
    order = np.argsort(neigh < 0, axis=1, kind="stable")
    neigh = np.ascontiguousarray(np.take_along_axis(neigh, order, axis=1))
    pairs, start, stop, lo, hi = _network_table(int(counts.max()))
    out = np.empty_like(x)
    _local_reference(x, out, neigh, counts, pairs, start, stop, lo, hi, operator == "average")
    return cast_traces(out, dtype)


# --------------------------------------------------------------------------------------------
# lazy step


def _global_block(block, *, sets, out_dtype, average):
    x = _as_traces(block)
    out = np.empty_like(x)
    for targets, refs, pairs, k_lo, k_hi in sets:
        _group_median_reference(x, out, targets, refs, pairs, k_lo, k_hi, average)
    return cast_traces(out, out_dtype)


def _local_block(block, *, neigh, counts, table, out_dtype, average):
    x = _as_traces(block)
    out = np.empty_like(x)
    _local_reference(x, out, neigh, counts, *table, average)
    return cast_traces(out, out_dtype)


def common_reference(recording: xr.DataArray, *, reference: str = "global", operator: str = "median",
                     reference_channel_ids=None, local_radius_um=(30.0, 55.0),
                     dtype: str | None = None) -> xr.DataArray:
    """Re-reference each sample: subtract the median (CMR) or mean (CAR) of reference channels.

    - ``"global"``: per group (the ``group`` coord: shank / probe), the reference is the
      median/mean of the group's channels (or of the group's channels listed in
      ``reference_channel_ids``); groups never mix.
    - ``"single"``: the reference is the given channel(s) of each group (median/mean when a
      group has several); every group needs one. The reference channels become 0.
    - ``"local"``: for each channel, the channels of its group at a distance ``d`` with
      ``inner < d <= outer`` (``local_radius_um``; a ring that excludes the channel itself and its
      closest neighbours, as in SpikeInterface). Needs channel geometry.

    Parameters
    ----------
    recording : xarray.DataArray
    reference : {"global", "single", "local"}, default "global"
    operator : {"median", "average"}, default "median"
    reference_channel_ids : list, optional
        Channel ids: required for "single", optional for "global", not used by "local".
    local_radius_um : (float, float), default (30.0, 55.0)
        Inner and outer radius of the ring (µm), ``0 <= inner < outer``.
    dtype : str, optional
        Output dtype (default: the input's float dtype, else float32).

    Returns
    -------
    xarray.DataArray
        Lazily referenced recording. The reference removes the common offset, so
        ``offset_to_uV`` is 0. Referencing works on stored values: channels of a group are
        assumed to share one gain (scale to µV first otherwise).

    Notes
    -----
    The median of an even number of channels is the mean of the two middle values, as
    :func:`numpy.median` (and SpikeInterface's ``common_reference``).

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> x = np.random.default_rng(0).normal(size=(1000, 8)).astype("float32") + 50.0  # common offset
    >>> out = common_reference(from_array(x, sampling_frequency=30000.0, group=[0] * 4 + [1] * 4))
    >>> bool(np.allclose(np.median(out.values[:, :4], axis=1), 0, atol=1e-5))
    True
    """
    check_recording(recording)
    check_choice("reference", reference, REFERENCES)
    check_choice("operator", operator, OPERATORS)
    out_dtype = _output_dtype(dtype, recording.dtype)
    ids = recording.coords["channel"].values.astype(str)
    groups = recording.coords["group"].values
    params = {"reference": reference, "operator": operator, "reference_channel_ids": reference_channel_ids,
              "local_radius_um": local_radius_um,
              "dtype": out_dtype.name}
    average = operator == "average"
    gains = recording.coords["gain_to_uV"].values
    for grp in np.unique(groups):
        gg = gains[groups == grp]
        if np.ptp(gg) > 1e-9 * np.abs(gg).max():
            logger.warning("common_reference: channels of group %s have different gain_to_uV; the reference is "
                           "computed on stored values. Scale to µV first (spkfn.io.scale_to_uV) to reference in µV.",
                           grp)
    if reference in ("global", "single"):
        ref_idx = None
        if reference == "single" and reference_channel_ids is None:
            raise ValueError("reference='single' needs reference_channel_ids: the reference channel(s), at least one "
                             "per group.")
        if reference_channel_ids is not None:
            ref_idx = _channel_positions(ids, reference_channel_ids)
        sets = []
        for targets, refs in _group_sets(ids.size, groups, ref_idx):
            pairs, k_lo, k_hi = median_network(refs.size)
            sets.append((targets, refs, pairs, k_lo, k_hi))
        out = lazy_transform(recording, _global_block, dtype=out_dtype, step="common_reference", params=params,
                             sets=sets, out_dtype=out_dtype, average=average)
    else:
        if reference_channel_ids is not None:
            raise ValueError("reference_channel_ids is not used by reference='local' (the ring defines the "
                             "reference); remove it or use reference='global' / 'single'.")
        inner, outer = _check_radius(local_radius_um)
        neigh = ring_neighbours(channel_locations(recording), inner_radius_um=inner, outer_radius_um=outer,
                                groups=groups, channel_ids=ids)
        counts = (neigh >= 0).sum(axis=1).astype(np.int64)
        table = _network_table(int(counts.max()))
        out = lazy_transform(recording, _local_block, dtype=out_dtype, step="common_reference", params=params,
                             neigh=neigh, counts=counts, table=table, out_dtype=out_dtype, average=average)
    attrs = out.attrs
    out = out.assign_coords(offset_to_uV=("channel", np.zeros(ids.size)))
    out.attrs = attrs
    return out


def _channel_positions(ids: np.ndarray, wanted) -> np.ndarray:
    if isinstance(wanted, str | int | np.integer):
        wanted = [wanted]
    wanted = [str(w) for w in wanted]
    if not wanted:
        raise ValueError("reference_channel_ids is empty; give at least one channel id.")
    pos = {c: i for i, c in enumerate(ids.tolist())}
    unknown = [w for w in wanted if w not in pos]
    if unknown:
        raise ValueError(f"reference_channel_ids {unknown[:10]} are not channels of the recording "
                         f"(channel ids look like {ids[:5].tolist()}).")
    return np.array([pos[w] for w in wanted], dtype=np.int64)


def _check_radius(local_radius_um) -> tuple[float, float]:
    try:
        inner, outer = local_radius_um
    except (TypeError, ValueError):
        raise ValueError(f"local_radius_um must be (inner, outer) in µm, e.g. (30, 55); got {local_radius_um!r}.") from None
    inner = check_number("local_radius_um[0] (inner radius, µm)", inner, min_value=0)
    outer = check_number("local_radius_um[1] (outer radius, µm)", outer, min_value=0, min_inclusive=False)
    if not inner < outer:
        raise ValueError(f"local_radius_um must have inner < outer; got ({inner:g}, {outer:g}).")
    return inner, outer
