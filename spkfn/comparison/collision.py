"""Collision analysis: recall of ground-truth spikes as a function of the lag to another unit's spike.

Sorters lose spikes that overlap in time with a spike of another neuron, more so when the two
templates are similar (Garcia et al. 2022, "How do spike collisions affect spike sorting
performance?", eNeuro 9(5)). These functions measure it from a ground-truth comparison.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import xarray as xr

from ..core.validate import check_int, check_number
from ..io.sorting import check_sorting
from ..io.templates import check_templates
from . import _kernels
from .groundtruth import GroundTruthResult, compare_to_ground_truth
from .matching import _py

__all__ = ["collision_recall", "collision_recall_curve", "template_similarity"]


def template_similarity(templates: xr.DataArray) -> xr.DataArray:
    """Cosine similarity between the templates of every pair of units.

    ``S_ij = <T_i, T_j> / (||T_i|| ||T_j||)`` over all samples and channels (no time shift); 0 when
    a template is all zeros.

    Parameters
    ----------
    templates : xarray.DataArray
        dims ``("unit", "sample", "channel")``.

    Returns
    -------
    xarray.DataArray
        dims ``("unit1", "unit2")``, values in [-1, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import templates_from_array
    >>> t = templates_from_array(np.array([[[1.0], [0.0]], [[2.0], [0.0]], [[0.0], [1.0]]]),
    ...                          sampling_frequency=30000.0, nbefore=0)
    >>> template_similarity(t).values.tolist()
    [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    check_templates(templates)
    flat = np.asarray(templates.values, dtype=np.float64).reshape(templates.sizes["unit"], -1)
    norm = np.linalg.norm(flat, axis=1)
    safe = np.where(norm > 0, norm, 1.0)
    unit = flat / safe[:, None]
    sim = np.clip(unit @ unit.T, -1.0, 1.0)
    sim[norm == 0, :] = 0.0
    sim[:, norm == 0] = 0.0
    ids = templates.unit.values
    return xr.DataArray(sim, dims=("unit1", "unit2"), coords={"unit1": ids, "unit2": ids}, name="similarity")


def _similarity_matrix(similarity, ids) -> np.ndarray:
    ids_list = [_py(u) for u in ids]
    if isinstance(similarity, xr.DataArray):
        if similarity.dims != ("unit1", "unit2"):
            raise ValueError(f"similarity must have dims ('unit1', 'unit2'); got {similarity.dims}.")
        try:
            return np.asarray(similarity.sel(unit1=ids_list, unit2=ids_list).values, dtype=np.float64)
        except KeyError:
            raise ValueError("similarity does not cover every ground-truth unit id.") from None
    if isinstance(similarity, pd.DataFrame):
        try:
            return similarity.loc[ids_list, ids_list].to_numpy(dtype=np.float64)
        except KeyError:
            raise ValueError("similarity does not cover every ground-truth unit id.") from None
    raise ValueError("similarity must be an xarray.DataArray (unit1, unit2) or a pandas.DataFrame indexed by unit id.")


def collision_recall(
    gt_sorting: xr.Dataset,
    sorting: xr.Dataset,
    *,
    collision_lag_ms: float = 2.0,
    num_bins: int = 11,
    delta_ms: float = 0.4,
    match_score: float = 0.5,
    comparison: GroundTruthResult | None = None,
    templates: xr.DataArray | None = None,
    similarity=None,
) -> pd.DataFrame:
    """Recall of GT spikes that collide with a spike of another GT unit, by lag.

    Parameters
    ----------
    gt_sorting : xarray.Dataset
        Ground truth.
    sorting : xarray.Dataset
        Tested sorting.
    collision_lag_ms : float, default 2.0
        Spikes of two GT units within this lag (ms) collide.
    num_bins : int, default 11
        Lag bins over ``[-L, L]`` with ``L = floor(collision_lag_ms * fs / 1000)`` samples.
    delta_ms, match_score : float
        Passed to :func:`compare_to_ground_truth` (Hungarian matching) when ``comparison`` is None.
    comparison : GroundTruthResult, optional
        A comparison of the same pair made with ``compute_labels=True``, to reuse its labels.
    templates : xarray.DataArray, optional
        GT templates, to add the cosine ``similarity`` of each pair (:func:`template_similarity`).
    similarity : xarray.DataArray or pandas.DataFrame, optional
        A GT unit x GT unit similarity to use instead of ``templates``.

    Returns
    -------
    pandas.DataFrame
        Tidy table, one row per (``gt_unit``, ``other_unit``, lag bin) with at least one collision:
        ``lag_bin`` (0 .. num_bins - 1), ``lag_ms`` (bin centre), ``lag_min_ms``, ``lag_max_ms``, ``num_collisions``,
        ``num_detected``, ``recall`` (= num_detected / num_collisions), and ``similarity`` when
        given. ``attrs["lag_edges_ms"]`` holds the bin edges.

    Notes
    -----
    Every pair of spikes ``(s, o)`` of two different GT units with ``|t_o - t_s| <= L`` is a
    collision for the unit of ``s`` at lag ``t_o - t_s`` (and one for the unit of ``o`` at the
    opposite lag). It is detected when ``s`` is a true positive of the comparison (matched by its
    tested unit; CL spikes count as missed). Lags are binned like SpikeInterface's
    ``CollisionGTComparison``: ``bin = floor((lag + L) / (2L / num_bins))``, ``+L`` in the last bin.
    SpikeInterface only counts pairs of spikes adjacent in time; here all pairs within ``L`` count.
    Memory: two ``(n_gt_units, n_gt_units, num_bins)`` int64 arrays.

    Examples
    --------
    >>> from spkfn.io import sorting_from_arrays
    >>> gt = sorting_from_arrays([1000, 1010, 5000, 5020, 9000], [0, 1, 0, 1, 0], sampling_frequency=30000.0)
    >>> tested = sorting_from_arrays([1001, 5001, 5021, 9000], [0, 0, 1, 0], sampling_frequency=30000.0)
    >>> tab = collision_recall(gt, tested, collision_lag_ms=2.0, num_bins=4)
    >>> tab[["gt_unit", "other_unit", "lag_ms", "num_collisions", "num_detected"]].values.tolist()
    [[0, 1, 0.5, 2, 2], [1, 0, -0.5, 2, 1]]
    """
    check_sorting(gt_sorting)
    fs = float(gt_sorting.attrs["sampling_frequency"])
    collision_lag_ms = check_number("collision_lag_ms", collision_lag_ms, min_value=0.0, min_inclusive=False)
    num_bins = check_int("num_bins", num_bins, min_value=1)
    max_lag = int(math.floor(collision_lag_ms * fs / 1000.0 + 1e-9))
    if max_lag < 1:
        raise ValueError(f"collision_lag_ms={collision_lag_ms} is shorter than one sample at {fs} Hz; "
                         "use a lag of at least 1000 / sampling_frequency ms.")
    if comparison is None:
        comparison = compare_to_ground_truth(gt_sorting, sorting, delta_ms=delta_ms, match_score=match_score,
                                             compute_labels=True)
    elif not isinstance(comparison, GroundTruthResult) or comparison.labels_gt is None:
        raise ValueError("comparison must be a GroundTruthResult made with compute_labels=True.")
    elif comparison.labels_gt.size != gt_sorting.sizes["spike"]:
        raise ValueError("comparison was not made with this gt_sorting (different number of spikes).")
    ids = gt_sorting.unit.values
    sim = None
    if similarity is not None:
        sim = _similarity_matrix(similarity, ids)
    elif templates is not None:
        sim = _similarity_matrix(template_similarity(templates), ids)

    t = np.ascontiguousarray(gt_sorting.sample_index.values, dtype=np.int64)
    ui = np.ascontiguousarray(gt_sorting.unit_index.values, dtype=np.int64)
    is_tp = comparison.labels_gt == "TP"
    total, tp = _kernels.collision_counts(t, ui, is_tp, ids.size, max_lag, num_bins)

    edges_samples = np.linspace(-max_lag, max_lag, num_bins + 1)
    edges_ms = edges_samples * 1000.0 / fs
    u, v, b = np.nonzero(total)
    table = pd.DataFrame({
        "gt_unit": pd.Series([_py(ids[k]) for k in u], dtype=object),
        "other_unit": pd.Series([_py(ids[k]) for k in v], dtype=object),
        "lag_bin": b.astype(np.int64),
        "lag_ms": (edges_ms[b] + edges_ms[b + 1]) / 2.0,
        "lag_min_ms": edges_ms[b],
        "lag_max_ms": edges_ms[b + 1],
        "num_collisions": total[u, v, b],
        "num_detected": tp[u, v, b],
    })
    table["recall"] = table["num_detected"] / table["num_collisions"]
    if sim is not None:
        table["similarity"] = sim[u, v]
    table.attrs["lag_edges_ms"] = edges_ms.tolist()
    return table


def collision_recall_curve(table: pd.DataFrame, *, min_similarity: float | None = None,
                           max_similarity: float | None = None) -> pd.DataFrame:
    """Pooled recall per lag bin over the unit pairs of a :func:`collision_recall` table.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`collision_recall`.
    min_similarity, max_similarity : float, optional
        Keep pairs with ``min_similarity <= similarity < max_similarity`` (needs a ``similarity``
        column).

    Returns
    -------
    pandas.DataFrame
        One row per lag bin (``lag_ms`` centre, ``lag_min_ms``, ``lag_max_ms``): ``num_collisions``,
        ``num_detected``, ``recall`` (= sum detected / sum collisions, NaN without collisions),
        ``num_pairs`` (ordered unit pairs contributing).

    Examples
    --------
    >>> import pandas as pd
    >>> tab = pd.DataFrame({"gt_unit": [0, 1, 0], "other_unit": [1, 0, 2], "lag_bin": [1, 0, 1],
    ...                     "num_collisions": [2, 2, 2], "num_detected": [2, 1, 0]})
    >>> tab.attrs["lag_edges_ms"] = [-1.0, 0.0, 1.0]
    >>> curve = collision_recall_curve(tab)
    >>> curve[["lag_ms", "num_collisions", "num_pairs"]].values.tolist(), curve["recall"].tolist()
    ([[-0.5, 2.0, 1.0], [0.5, 4.0, 2.0]], [0.5, 0.5])
    """
    needed = {"lag_bin", "num_collisions", "num_detected"}
    if not isinstance(table, pd.DataFrame) or not needed <= set(table.columns) or "lag_edges_ms" not in table.attrs:
        raise ValueError(f"table must be the DataFrame of collision_recall (columns {sorted(needed)} "
                         "and attrs['lag_edges_ms']).")
    sel = table
    if min_similarity is not None or max_similarity is not None:
        if "similarity" not in table:
            raise ValueError("the table has no 'similarity' column; pass templates= or similarity= to collision_recall.")
        lo = -np.inf if min_similarity is None else float(min_similarity)
        hi = np.inf if max_similarity is None else float(max_similarity)
        sel = table[(table["similarity"] >= lo) & (table["similarity"] < hi)]
    edges = np.asarray(table.attrs["lag_edges_ms"], dtype=np.float64)
    n_bins = edges.size - 1
    b = sel["lag_bin"].to_numpy(dtype=np.int64)
    num_collisions = np.bincount(b, weights=sel["num_collisions"].to_numpy(dtype=np.float64), minlength=n_bins)
    num_detected = np.bincount(b, weights=sel["num_detected"].to_numpy(dtype=np.float64), minlength=n_bins)
    out = pd.DataFrame({
        "lag_ms": (edges[:-1] + edges[1:]) / 2.0,
        "lag_min_ms": edges[:-1],
        "lag_max_ms": edges[1:],
        "num_collisions": num_collisions.astype(np.int64),
        "num_detected": num_detected.astype(np.int64),
        "num_pairs": np.bincount(b, minlength=n_bins).astype(np.int64),
    })
    with np.errstate(invalid="ignore", divide="ignore"):
        out["recall"] = np.where(num_collisions > 0, num_detected / np.maximum(num_collisions, 1), np.nan)
    return out
