"""Figures of comparisons: agreement and confusion matrices, performance, collisions, studies.

Each figure has a data-preparation function (pure, tested on its output) and a drawing function
that takes an optional ``ax`` and returns it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ._common import axes_or_new as _axes

__all__ = [
    "order_agreement",
    "plot_agreement_matrix",
    "plot_confusion_matrix",
    "performance_by_rank",
    "plot_performance",
    "performance_vs_snr_data",
    "plot_performance_vs_snr",
    "collision_recall_curves",
    "plot_collision_recall",
    "unit_category_counts",
    "plot_unit_categories",
]

_MAX_TICKS = 40


def order_agreement(agreement: xr.DataArray) -> xr.DataArray:
    """Reorder an agreement matrix so that matched units lie on the diagonal.

    Rows are sorted by their best score (descending); each row then takes, in that order, its
    best still-unused column with a score > 0; the remaining columns follow in their original
    order.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> agr = xr.DataArray(np.array([[0.1, 0.0, 0.6], [0.0, 0.9, 0.0]]), dims=("unit1", "unit2"),
    ...                    coords={"unit1": [0, 1], "unit2": ["a", "b", "c"]})
    >>> o = order_agreement(agr)
    >>> o.unit1.values.tolist(), o.unit2.values.tolist()
    ([1, 0], ['b', 'c', 'a'])
    """
    if not isinstance(agreement, xr.DataArray) or agreement.dims != ("unit1", "unit2"):
        raise ValueError("agreement must be the DataArray of spkfn.comparison.agreement_matrix (dims unit1, unit2).")
    scores = np.asarray(agreement.values, dtype=np.float64)
    n1, n2 = scores.shape
    if n1 == 0 or n2 == 0:
        return agreement
    order1 = np.argsort(-scores.max(axis=1), kind="stable")
    used = np.zeros(n2, dtype=bool)
    order2 = []
    for i in order1:  # one iteration per unit (not per spike)
        row = np.where(used, -np.inf, scores[i])
        j = int(np.argmax(row))
        if row[j] > 0:
            used[j] = True
            order2.append(j)
    order2 = np.array(order2 + np.flatnonzero(~used).tolist(), dtype=np.int64)
    return agreement.isel(unit1=order1, unit2=order2)


def _ticks(ax, axis: str, labels):
    labels = [str(v) for v in labels]
    if len(labels) > _MAX_TICKS:
        return
    positions = np.arange(len(labels))
    if axis == "x":
        ax.set_xticks(positions, labels, rotation=90)
    else:
        ax.set_yticks(positions, labels)


def plot_agreement_matrix(agreement: xr.DataArray, *, ordered: bool = True, ax=None, cmap: str = "Greys",
                          label1: str = "sorting 1 units", label2: str = "sorting 2 units", colorbar: bool = True):
    """Agreement scores as an image (rows: sorting 1 units, columns: sorting 2 units).

    Parameters
    ----------
    agreement : xarray.DataArray
        From :func:`spkfn.comparison.agreement_matrix` (or ``result.agreement``).
    ordered : bool, default True
        Reorder with :func:`order_agreement` so that matches lie on the diagonal.
    ax : matplotlib.axes.Axes, optional
    cmap, label1, label2 : str
    colorbar : bool, default True

    Returns
    -------
    matplotlib.axes.Axes
    """
    data = order_agreement(agreement) if ordered else agreement
    ax = _axes(ax, figsize=(5.0, 4.0))
    im = ax.imshow(np.asarray(data.values, dtype=np.float64), cmap=cmap, vmin=0.0, vmax=1.0,
                   aspect="auto", interpolation="nearest")
    _ticks(ax, "x", data.unit2.values)
    _ticks(ax, "y", data.unit1.values)
    ax.set_xlabel(label2)
    ax.set_ylabel(label1)
    ax.set_title(f"agreement (delta {data.attrs.get('delta_ms', '?')} ms)")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, label="agreement score")
    return ax


def plot_confusion_matrix(confusion: pd.DataFrame, *, ax=None, cmap: str = "viridis", annotate: bool | None = None):
    """Spike confusion matrix (``result.confusion``), counts on a log colour scale.

    ``annotate`` writes the counts in the cells (default: when the matrix is at most 15 x 15).

    Returns
    -------
    matplotlib.axes.Axes
    """
    from matplotlib.colors import LogNorm

    if not isinstance(confusion, pd.DataFrame):
        raise ValueError("confusion must be the DataFrame result.confusion of compare_to_ground_truth.")
    values = confusion.to_numpy(dtype=np.float64)
    ax = _axes(ax, figsize=(5.0, 4.0))
    shown = np.where(values > 0, values, np.nan)
    vmax = np.nanmax(shown) if np.any(values > 0) else 1.0
    ax.imshow(shown, cmap=cmap, norm=LogNorm(vmin=1.0, vmax=max(vmax, 1.0)), aspect="auto",
              interpolation="nearest")
    _ticks(ax, "x", confusion.columns)
    _ticks(ax, "y", confusion.index)
    ax.set_xlabel("tested units")
    ax.set_ylabel("ground-truth units")
    if annotate is None:
        annotate = values.shape[0] <= 15 and values.shape[1] <= 15
    if annotate:
        for (i, j), v in np.ndenumerate(values):
            if v > 0:
                ax.text(j, i, f"{int(v)}", ha="center", va="center", fontsize=7, color="w")
    return ax


_METRICS = ("accuracy", "recall", "precision")


def performance_by_rank(performance: pd.DataFrame, *, metrics=_METRICS, sort_by: str = "accuracy") -> pd.DataFrame:
    """Per-unit performance sorted by ``sort_by`` (descending), with a ``rank`` column.

    Examples
    --------
    >>> import pandas as pd
    >>> perf = pd.DataFrame({"accuracy": [0.5, 0.9], "recall": [0.6, 0.95], "precision": [0.7, 0.92]},
    ...                     index=pd.Index([3, 8], name="gt_unit"))
    >>> performance_by_rank(perf)[["gt_unit", "rank", "accuracy"]].to_dict("list")
    {'gt_unit': [8, 3], 'rank': [0, 1], 'accuracy': [0.9, 0.5]}
    """
    metrics = list(metrics)
    missing = [m for m in [*metrics, sort_by] if m not in performance]
    if missing:
        raise ValueError(f"performance has no columns {missing}; expected result.performance of compare_to_ground_truth.")
    out = performance[metrics].sort_values(sort_by, ascending=False, kind="stable")
    out = out.reset_index().rename(columns={out.index.name or "index": "gt_unit"})
    out.insert(1, "rank", np.arange(len(out)))
    return out


def plot_performance(performance: pd.DataFrame, *, metrics=_METRICS, sort_by: str = "accuracy", ax=None):
    """Per-GT-unit accuracy, recall and precision, units sorted by accuracy (one line per metric).

    Returns
    -------
    matplotlib.axes.Axes
    """
    data = performance_by_rank(performance, metrics=metrics, sort_by=sort_by)
    ax = _axes(ax, figsize=(5.0, 4.0))
    for m in metrics:
        ax.plot(data["rank"], data[m], marker="o", markersize=3, label=m)
    ax.set_xlabel(f"GT units (sorted by {sort_by})")
    ax.set_ylabel("score")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="lower left")
    return ax


def performance_vs_snr_data(units: pd.DataFrame, *, metric: str = "accuracy", snr=None) -> pd.DataFrame:
    """Points ``(snr, metric, sorter)`` of a study ``units`` table or of one performance table.

    Parameters
    ----------
    units : pandas.DataFrame
        ``StudyTables.units`` (columns ``snr``, ``sorter``, ``metric``), or ``result.performance``
        indexed by GT unit with ``snr`` given separately.
    metric : str, default "accuracy"
    snr : mapping or pandas.Series, optional
        GT unit id -> SNR, when ``units`` has no ``snr`` column.

    Returns
    -------
    pandas.DataFrame
        Columns ``snr``, ``<metric>``, ``sorter``; rows with a NaN SNR are dropped.

    Examples
    --------
    >>> import pandas as pd
    >>> perf = pd.DataFrame({"accuracy": [0.5, 0.9]}, index=[3, 8])
    >>> performance_vs_snr_data(perf, snr={3: 4.0, 8: 12.0}).values.tolist()
    [[4.0, 0.5, ''], [12.0, 0.9, '']]
    """
    if metric not in units:
        raise ValueError(f"the table has no {metric!r} column.")
    if "snr" in units and snr is None:
        s = units["snr"].to_numpy(dtype=np.float64)
    elif snr is not None:
        s = pd.Series(snr).reindex(units.index).to_numpy(dtype=np.float64)
    else:
        raise ValueError("no SNR: pass snr= (GT unit -> SNR) or a study units table with an 'snr' column "
                         "(run_study with templates + noise_levels_uV, or snr).")
    out = pd.DataFrame({"snr": s, metric: units[metric].to_numpy(dtype=np.float64),
                        "sorter": units["sorter"].astype(str).to_numpy() if "sorter" in units else ""})
    return out[np.isfinite(out["snr"])].reset_index(drop=True)


def plot_performance_vs_snr(units: pd.DataFrame, *, metric: str = "accuracy", snr=None, ax=None):
    """Scatter of a per-unit metric against the GT unit SNR, one colour per sorter.

    Returns
    -------
    matplotlib.axes.Axes
    """
    data = performance_vs_snr_data(units, metric=metric, snr=snr)
    ax = _axes(ax, figsize=(5.0, 4.0))
    for sorter, d in data.groupby("sorter", sort=False):
        ax.scatter(d["snr"], d[metric], s=12, alpha=0.8, label=sorter or None)
    ax.set_xlabel("SNR")
    ax.set_ylabel(metric)
    ax.set_ylim(-0.02, 1.02)
    if data["sorter"].nunique() > 1 or (len(data) and data["sorter"].iloc[0]):
        ax.legend(loc="lower right")
    return ax


def collision_recall_curves(table: pd.DataFrame, *, similarity_bins=None) -> pd.DataFrame:
    """Pooled collision recall per lag bin, overall or per template-similarity range.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`spkfn.comparison.collision_recall`.
    similarity_bins : sequence of float, optional
        Edges of similarity ranges ``[b_k, b_k+1)``; needs a ``similarity`` column.

    Returns
    -------
    pandas.DataFrame
        The rows of :func:`spkfn.comparison.collision_recall_curve` for each range, with a
        ``similarity_range`` label column ("all" without bins).
    """
    from ..comparison.collision import collision_recall_curve

    if similarity_bins is None:
        out = collision_recall_curve(table)
        out.insert(0, "similarity_range", "all")
        return out
    edges = np.asarray(similarity_bins, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"similarity_bins must be >= 2 increasing edges; got {similarity_bins!r}.")
    parts = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        c = collision_recall_curve(table, min_similarity=lo, max_similarity=hi)
        c.insert(0, "similarity_range", f"[{lo:g}, {hi:g})")
        parts.append(c)
    return pd.concat(parts, ignore_index=True)


def plot_collision_recall(table: pd.DataFrame, *, similarity_bins=None, ax=None):
    """Recall of colliding GT spikes against the lag to the other unit's spike.

    One line per similarity range (``similarity_bins``), or one line for all pairs.

    Returns
    -------
    matplotlib.axes.Axes
    """
    data = collision_recall_curves(table, similarity_bins=similarity_bins)
    ax = _axes(ax, figsize=(5.0, 4.0))
    for label, d in data.groupby("similarity_range", sort=False):
        ax.plot(d["lag_ms"], d["recall"], marker="o", markersize=3, label=f"similarity {label}")
    ax.set_xlabel("lag to the other unit's spike (ms)")
    ax.set_ylabel("recall")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="lower right")
    return ax


_CATEGORIES = ("num_well_detected", "num_redundant", "num_overmerged", "num_false_positive")


def unit_category_counts(summary: pd.DataFrame, *, by: str = "sorter") -> pd.DataFrame:
    """Tested-unit category counts per sorter from ``StudyTables.sorters`` or ``.cases``.

    Returns a DataFrame indexed by ``by`` with the columns ``num_well_detected``,
    ``num_redundant``, ``num_overmerged``, ``num_false_positive`` (summed over rows).

    Examples
    --------
    >>> import pandas as pd
    >>> cases = pd.DataFrame({"sorter": ["a", "a", "b"], "num_well_detected": [3, 4, 5],
    ...                       "num_redundant": [0, 1, 0], "num_overmerged": [1, 0, 0], "num_false_positive": [2, 2, 0]})
    >>> unit_category_counts(cases).to_dict("index")["a"]
    {'num_well_detected': 7, 'num_redundant': 1, 'num_overmerged': 1, 'num_false_positive': 4}
    """
    table = summary.reset_index() if by not in summary.columns and summary.index.name == by else summary
    missing = [c for c in (by, *_CATEGORIES) if c not in table]
    if missing:
        raise ValueError(f"the table has no columns {missing}; pass StudyTables.cases or .sorters.")
    return table.groupby(by, sort=False)[list(_CATEGORIES)].sum()


def plot_unit_categories(summary: pd.DataFrame, *, by: str = "sorter", ax=None):
    """Grouped bars: well-detected, redundant, overmerged and false-positive units per sorter.

    Returns
    -------
    matplotlib.axes.Axes
    """
    data = unit_category_counts(summary, by=by)
    ax = _axes(ax, figsize=(5.0, 4.0))
    n = len(_CATEGORIES)
    width = 0.8 / n
    x = np.arange(len(data))
    for k, col in enumerate(_CATEGORIES):
        ax.bar(x + (k - (n - 1) / 2) * width, data[col].to_numpy(dtype=np.float64), width,
               label=col.removeprefix("num_").replace("_", " "))
    ax.set_xticks(x, [str(v) for v in data.index])
    ax.set_ylabel("units")
    ax.legend()
    return ax
