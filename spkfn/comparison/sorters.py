"""Comparison of sorters with each other: pairs, and an agreement graph over many sorters.

Definitions are in ``docs/comparison.md``; they follow SpikeInterface's
``SymmetricSortingComparison`` and ``MultiSortingComparison`` (Buccino et al. 2020, eLife 9:e61834)
with a deterministic cleaning of the agreement graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from ..core.validate import check_choice, check_int, check_number
from ..io.sorting import sorting_from_arrays
from . import _kernels
from .matching import (
    _agreement_arrays,
    _agreement_dataarray,
    _as_dict,
    _best_indices,
    _check_pair,
    _hungarian_indices,
    _py,
    delta_frames_from_ms,
)

__all__ = [
    "SorterComparison",
    "MultiSorterComparison",
    "compare_sorters",
    "compare_multiple_sorters",
    "consensus_sorting",
]


@dataclass(frozen=True)
class SorterComparison:
    """Result of :func:`compare_sorters`.

    Attributes
    ----------
    agreement : xarray.DataArray
        ``(unit1, unit2)`` agreement scores with ``match_count``, ``num_spikes1``, ``num_spikes2``.
    matching12, matching21 : dict
        One-to-one (Hungarian) matching, agreement >= ``match_score``: unit1 -> unit2 and back
        (``None`` when unmatched).
    best12, best21 : dict
        Best partner of each unit (agreement >= ``chance_score``), not necessarily one-to-one.
    matched_pairs : pandas.DataFrame
        One row per matched pair: ``unit1``, ``unit2``, ``agreement``, ``match_count``,
        ``num_spikes1``, ``num_spikes2``; sorted by decreasing agreement.
    params : dict
    """

    agreement: xr.DataArray
    matching12: dict
    matching21: dict
    best12: dict
    best21: dict
    matched_pairs: pd.DataFrame
    params: dict = field(default_factory=dict)


def _pair(sorting1, sorting2, *, delta_ms, match_score, chance_score, names=("sorting1", "sorting2")):
    fs = _check_pair(sorting1, sorting2, *names)
    delta_frames = delta_frames_from_ms(delta_ms, fs)
    counts, n1, n2, scores = _agreement_arrays(sorting1, sorting2, delta_frames)
    agreement = _agreement_dataarray(sorting1, sorting2, counts, n1, n2, scores, delta_ms=delta_ms,
                                     delta_frames=delta_frames, fs=fs)
    ids1, ids2 = sorting1.unit.values, sorting2.unit.values
    h12 = _hungarian_indices(scores, match_score)
    h21 = np.full(len(ids2), -1, dtype=np.int64)
    h21[h12[h12 >= 0]] = np.flatnonzero(h12 >= 0)
    b12, b21 = _best_indices(scores, chance_score)
    i1 = np.flatnonzero(h12 >= 0)
    i2 = h12[i1]
    pairs = pd.DataFrame({
        "unit1": pd.Series([_py(ids1[k]) for k in i1], dtype=object),
        "unit2": pd.Series([_py(ids2[k]) for k in i2], dtype=object),
        "agreement": scores[i1, i2],
        "match_count": counts[i1, i2],
        "num_spikes1": n1[i1],
        "num_spikes2": n2[i2],
    }).sort_values("agreement", ascending=False, kind="stable").reset_index(drop=True)
    return SorterComparison(
        agreement=agreement,
        matching12=_as_dict(ids1, ids2, h12),
        matching21=_as_dict(ids2, ids1, h21),
        best12=_as_dict(ids1, ids2, b12),
        best21=_as_dict(ids2, ids1, b21),
        matched_pairs=pairs,
        params=dict(delta_ms=float(delta_ms), delta_frames=delta_frames, sampling_frequency=fs,
                    match_score=match_score, chance_score=chance_score),
    )


def _check_thresholds(match_score, chance_score):
    return (check_number("match_score", match_score, min_value=0.0, max_value=1.0),
            check_number("chance_score", chance_score, min_value=0.0, max_value=1.0))


def compare_sorters(sorting1: xr.Dataset, sorting2: xr.Dataset, *, delta_ms: float = 0.4,
                    match_score: float = 0.5, chance_score: float = 0.1) -> SorterComparison:
    """Compare two sortings with each other, neither being the ground truth.

    Parameters
    ----------
    sorting1, sorting2 : xarray.Dataset
        Sortings of the same recording.
    delta_ms : float, default 0.4
        Matching window (ms).
    match_score : float, default 0.5
        Minimum agreement for the one-to-one matching.
    chance_score : float, default 0.1
        Minimum agreement for a best match.

    Returns
    -------
    SorterComparison

    Notes
    -----
    The comparison is symmetric: the agreement matrix of ``(sorting2, sorting1)`` is exactly the
    transpose of that of ``(sorting1, sorting2)`` (the match count is the maximum matching, which
    does not depend on the order), and so are the matchings unless two assignments have exactly
    equal total scores.

    Examples
    --------
    >>> from spkfn.io import sorting_from_arrays
    >>> a = sorting_from_arrays([100, 200, 300, 400], [0, 0, 1, 1], sampling_frequency=30000.0)
    >>> b = sorting_from_arrays([101, 199, 402], ["x", "x", "y"], sampling_frequency=30000.0)
    >>> cmp = compare_sorters(a, b)
    >>> cmp.matching12, cmp.matching21
    ({0: 'x', 1: 'y'}, {'x': 0, 'y': 1})
    >>> cmp.matched_pairs[["unit1", "unit2", "agreement"]].values.tolist()
    [[0, 'x', 1.0], [1, 'y', 0.5]]
    """
    match_score, chance_score = _check_thresholds(match_score, chance_score)
    return _pair(sorting1, sorting2, delta_ms=delta_ms, match_score=match_score, chance_score=chance_score)


@dataclass(frozen=True)
class MultiSorterComparison:
    """Result of :func:`compare_multiple_sorters`.

    Attributes
    ----------
    sorter_names : list of str
    pairwise : dict
        ``(name_i, name_j) -> SorterComparison`` for every pair ``i < j``.
    edges : pandas.DataFrame
        The agreement graph: one row per one-to-one match of a pairwise comparison (``sorter1``,
        ``unit1``, ``sorter2``, ``unit2``, ``agreement``), and ``kept`` (False for the edges
        removed so that no consensus unit holds two units of one sorter).
    units : pandas.DataFrame
        One row per consensus unit (connected component of the kept edges, single units
        included), index ``consensus_unit``: ``agreement_number`` (number of sorters),
        ``avg_agreement`` (mean agreement of its kept edges, 0 for a single unit), and one
        column per sorter with its unit id (None when absent).
    consensus : xarray.Dataset
        Sorting of the consensus units found by at least ``min_agreement_count`` sorters (see
        :func:`consensus_sorting`).
    params : dict
    """

    sorter_names: list
    pairwise: dict
    edges: pd.DataFrame
    units: pd.DataFrame
    consensus: xr.Dataset
    params: dict = field(default_factory=dict)


def _as_named(sortings) -> dict:
    if isinstance(sortings, Mapping):
        named = {str(k): v for k, v in sortings.items()}
        if len(named) != len(sortings):
            raise ValueError("sorter names must be distinct once converted to str.")
    elif isinstance(sortings, list | tuple):
        named = {f"sorting{i}": s for i, s in enumerate(sortings)}
    else:
        raise ValueError("sortings must be a dict {sorter name: sorting} or a list of sortings; "
                         f"got {type(sortings).__name__}.")
    if len(named) < 2:
        raise ValueError(f"compare_multiple_sorters needs at least 2 sortings; got {len(named)}.")
    return named


class _DisjointSets:
    """Union-find over graph nodes that tracks which sorters each set holds."""

    def __init__(self, sorter_of_node: np.ndarray):
        self.parent = np.arange(sorter_of_node.size)
        self.sorters = [{int(s)} for s in sorter_of_node]

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return int(root)

    def try_union(self, i: int, j: int) -> bool:
        ri, rj = self.find(i), self.find(j)
        if ri == rj:
            return True
        if self.sorters[ri] & self.sorters[rj]:
            return False
        self.parent[rj] = ri
        self.sorters[ri] |= self.sorters[rj]
        return True


def compare_multiple_sorters(
    sortings,
    *,
    delta_ms: float = 0.4,
    match_score: float = 0.5,
    chance_score: float = 0.1,
    min_agreement_count: int = 2,
    spike_train_mode: str = "union",
) -> MultiSorterComparison:
    """Agreement graph of several sortings and the consensus of units found by several sorters.

    Parameters
    ----------
    sortings : dict or list
        ``{sorter name: sorting}`` (or a list, named ``sorting0``, ``sorting1``, ...), >= 2
        sortings of the same recording.
    delta_ms, match_score, chance_score : float
        As in :func:`compare_sorters`, for every pair.
    min_agreement_count : int, default 2
        The consensus sorting keeps units found by at least this many sorters.
    spike_train_mode : {"union", "intersection"}, default "union"
        Spike train of a consensus unit (see :func:`consensus_sorting`).

    Returns
    -------
    MultiSorterComparison

    Notes
    -----
    Nodes are ``(sorter, unit)``; an edge joins two units matched one-to-one by the pairwise
    comparison of their sorters, weighted by their agreement. Edges are then taken by decreasing
    agreement (ties: in sorter order) and an edge is kept unless it would join two components that
    both hold a unit of the same sorter; the consensus units are the connected components of the
    kept edges (Kruskal-like: strong agreements win, and a consensus unit never holds two units of
    one sorter). SpikeInterface builds the same graph but cleans it differently (see
    ``docs/comparison.md``).

    Examples
    --------
    >>> from spkfn.io import sorting_from_arrays
    >>> a = sorting_from_arrays([100, 200, 300, 900], [0, 0, 0, 1], sampling_frequency=30000.0)
    >>> b = sorting_from_arrays([101, 202, 299], [5, 5, 5], sampling_frequency=30000.0)
    >>> c = sorting_from_arrays([99, 201, 5000], [3, 3, 4], sampling_frequency=30000.0)
    >>> multi = compare_multiple_sorters({"a": a, "b": b, "c": c}, min_agreement_count=2)
    >>> multi.units[["agreement_number", "a", "b", "c"]].values.tolist()
    [[3, 0, 5, 3], [1, 1, None, None], [1, None, None, 4]]
    >>> multi.consensus.unit.values.tolist(), multi.consensus.agreement_number.values.tolist()
    ([0], [3])
    """
    named = _as_named(sortings)
    match_score, chance_score = _check_thresholds(match_score, chance_score)
    names = list(named)
    min_agreement_count = check_int("min_agreement_count", min_agreement_count, min_value=1,
                                    max_value=len(names))
    spike_train_mode = check_choice("spike_train_mode", spike_train_mode, ("union", "intersection"))

    pairwise = {}
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            pairwise[(names[i], names[j])] = _pair(
                named[names[i]], named[names[j]], delta_ms=delta_ms, match_score=match_score,
                chance_score=chance_score, names=(names[i], names[j]))

    # nodes: (sorter index, unit position)
    offsets = np.cumsum([0] + [named[n].sizes["unit"] for n in names])
    sorter_of_node = np.repeat(np.arange(len(names)), np.diff(offsets))
    rows = []
    for (n1, n2), cmp in pairwise.items():
        s1, s2 = names.index(n1), names.index(n2)
        ids1 = [_py(u) for u in named[n1].unit.values]
        ids2 = [_py(u) for u in named[n2].unit.values]
        pos1 = {u: k for k, u in enumerate(ids1)}
        pos2 = {u: k for k, u in enumerate(ids2)}
        for _, r in cmp.matched_pairs.iterrows():  # small: one row per matched unit pair
            rows.append((n1, r["unit1"], n2, r["unit2"], float(r["agreement"]),
                         offsets[s1] + pos1[r["unit1"]], offsets[s2] + pos2[r["unit2"]]))
    edges = pd.DataFrame(rows, columns=["sorter1", "unit1", "sorter2", "unit2", "agreement", "_n1", "_n2"])
    edges = edges.astype({"unit1": object, "unit2": object})
    order = np.argsort(-edges["agreement"].to_numpy(), kind="stable")
    dsu = _DisjointSets(sorter_of_node)
    kept = np.zeros(len(edges), dtype=bool)
    for e in order:
        kept[e] = dsu.try_union(int(edges["_n1"].iat[e]), int(edges["_n2"].iat[e]))
    edges["kept"] = kept

    roots = np.array([dsu.find(i) for i in range(sorter_of_node.size)], dtype=np.int64)
    _, comp = np.unique(roots, return_inverse=True)
    # number components by their first node (sorter order, then unit order)
    first_node = np.full(comp.max() + 1 if comp.size else 0, np.iinfo(np.int64).max)
    np.minimum.at(first_node, comp, np.arange(comp.size))
    rank = np.empty_like(first_node)
    rank[np.argsort(first_node)] = np.arange(first_node.size)
    comp = rank[comp]
    n_comp = first_node.size
    node_ids = [_py(u) for n in names for u in named[n].unit.values]
    table = {name: [None] * n_comp for name in names}
    for node, c in enumerate(comp):
        table[names[sorter_of_node[node]]][c] = node_ids[node]
    agreement_number = np.bincount(comp, minlength=n_comp)
    sums = np.zeros(n_comp)
    nedges = np.zeros(n_comp)
    k = edges[edges["kept"]]
    if len(k):
        c_edge = comp[k["_n1"].to_numpy(dtype=np.int64)]
        np.add.at(sums, c_edge, k["agreement"].to_numpy())
        np.add.at(nedges, c_edge, 1)
    units = pd.DataFrame({"agreement_number": agreement_number,
                          "avg_agreement": np.where(nedges > 0, sums / np.maximum(nedges, 1), 0.0)})
    for name in names:
        units[name] = pd.Series(table[name], dtype=object)
    units.index.name = "consensus_unit"
    edges = edges.drop(columns=["_n1", "_n2"])

    params = dict(delta_ms=float(delta_ms), match_score=match_score, chance_score=chance_score,
                  min_agreement_count=min_agreement_count, spike_train_mode=spike_train_mode)
    partial = MultiSorterComparison(sorter_names=names, pairwise=pairwise, edges=edges, units=units,
                                    consensus=xr.Dataset(), params=params)
    consensus = consensus_sorting(partial, named, min_agreement_count=min_agreement_count,
                                  spike_train_mode=spike_train_mode)
    return MultiSorterComparison(sorter_names=names, pairwise=pairwise, edges=edges, units=units,
                                 consensus=consensus, params=params)


def _train(sorting: xr.Dataset, unit_id) -> np.ndarray:
    pos = int(np.flatnonzero(sorting.unit.values == unit_id)[0])
    return sorting.sample_index.values[sorting.unit_index.values == pos]


def consensus_sorting(multi: MultiSorterComparison, sortings, *, min_agreement_count: int = 2,
                      spike_train_mode: str = "union") -> xr.Dataset:
    """The sorting of the consensus units found by at least ``min_agreement_count`` sorters.

    Parameters
    ----------
    multi : MultiSorterComparison
        From :func:`compare_multiple_sorters`.
    sortings : dict or list
        The same sortings, in the same order.
    min_agreement_count : int, default 2
    spike_train_mode : {"union", "intersection"}, default "union"
        A consensus unit's spikes come from its strongest kept edge (units ``u`` of the earlier
        sorter and ``v``): "union" = spikes of ``u`` plus the spikes of ``v`` not matched to ``u``;
        "intersection" = the spikes of ``u`` matched to ``v`` (matching within ``delta_ms``). A
        unit found by one sorter keeps its own spikes.

    Returns
    -------
    xarray.Dataset
        Sorting with consensus unit ids and unit properties ``agreement_number``,
        ``avg_agreement`` and ``unit_<sorter>`` (the member unit id as a string, "" when absent).

    Examples
    --------
    >>> from spkfn.io import sorting_from_arrays
    >>> a = sorting_from_arrays([100, 200, 300], [0, 0, 0], sampling_frequency=30000.0)
    >>> b = sorting_from_arrays([101, 250, 299], [9, 9, 9], sampling_frequency=30000.0)
    >>> multi = compare_multiple_sorters([a, b])
    >>> consensus_sorting(multi, [a, b], spike_train_mode="union").sample_index.values.tolist()
    [100, 200, 250, 300]
    >>> consensus_sorting(multi, [a, b], spike_train_mode="intersection").sample_index.values.tolist()
    [100, 300]
    """
    named = _as_named(sortings)
    if list(named) != list(multi.sorter_names):
        raise ValueError(f"sortings are named {list(named)} but the comparison was made on {multi.sorter_names}; "
                         "pass the same sortings in the same order.")
    min_agreement_count = check_int("min_agreement_count", min_agreement_count, min_value=1,
                                    max_value=len(named))
    spike_train_mode = check_choice("spike_train_mode", spike_train_mode, ("union", "intersection"))
    names = list(named)
    first = named[names[0]]
    fs = float(first.attrs["sampling_frequency"])
    delta_frames = delta_frames_from_ms(multi.params["delta_ms"], fs)

    keep = multi.units[multi.units["agreement_number"] >= min_agreement_count]
    kept_edges = multi.edges[multi.edges["kept"]]
    times, labels = [], []
    for cu, row in keep.iterrows():  # one iteration per consensus unit; spike work is vectorised
        members = {n: row[n] for n in names if row[n] is not None}
        if len(members) == 1:
            (n, u), = members.items()
            st = _train(named[n], u)
        else:
            mask = np.zeros(len(kept_edges), dtype=bool)
            for n1, u1 in members.items():
                mask |= ((kept_edges["sorter1"] == n1) & (kept_edges["unit1"] == u1)).to_numpy()
            e = kept_edges[mask].sort_values("agreement", ascending=False, kind="stable").iloc[0]
            st1 = _train(named[e["sorter1"]], e["unit1"])
            st2 = _train(named[e["sorter2"]], e["unit2"])
            z1 = np.zeros(st1.size, np.int64)
            z2 = np.zeros(st2.size, np.int64)
            lab1, lab2, _, _, _, _ = _kernels.label_spikes(st1, z1, st2, z2, np.zeros(1, np.int64), 1, 1, delta_frames)
            if spike_train_mode == "union":
                st = np.sort(np.concatenate([st1, st2[lab2 != _kernels.TP]]))
            else:
                st = st1[lab1 == _kernels.TP]
        times.append(st)
        labels.append(np.full(st.size, cu, dtype=np.int64))
    unit_ids = keep.index.to_numpy(dtype=np.int64)
    lengths = {named[n].attrs.get("num_samples") for n in names}
    out = sorting_from_arrays(
        np.concatenate(times) if times else np.zeros(0, np.int64),
        np.concatenate(labels) if labels else np.zeros(0, np.int64),
        sampling_frequency=fs, unit_ids=unit_ids,
        num_samples=lengths.pop() if len(lengths) == 1 else None, t_start_s=first.attrs.get("t_start_s", 0.0),
    )
    out["agreement_number"] = ("unit", keep["agreement_number"].to_numpy(dtype=np.int64))
    out["avg_agreement"] = ("unit", keep["avg_agreement"].to_numpy(dtype=np.float64))
    for n in names:
        out[f"unit_{n}"] = ("unit", np.array(["" if v is None else str(v) for v in keep[n]], dtype=str))
    return out
