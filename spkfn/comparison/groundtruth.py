"""Comparison of a sorting with a ground-truth sorting.

Every score is defined in ``docs/comparison.md``; the definitions follow SpikeInterface's
``GroundTruthComparison`` (Buccino et al. 2020, eLife 9:e61834) and SpikeForest (Magland et al.
2020, eLife 9:e55167), with the differences listed there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from ..core.validate import check_bool, check_choice, check_number
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

__all__ = ["GroundTruthResult", "compare_to_ground_truth", "performance_from_counts", "PERFORMANCE_COLUMNS"]

PERFORMANCE_COLUMNS = ("accuracy", "precision", "recall", "false_discovery_rate", "miss_rate")
COUNT_COLUMNS = ("tp", "fn", "fp", "cl", "num_gt", "num_tested")


@dataclass(frozen=True)
class GroundTruthResult:
    """Result of :func:`compare_to_ground_truth`. All unit ids are Python ints or strs.

    Attributes
    ----------
    agreement : xarray.DataArray
        ``(unit1, unit2)`` = (GT unit, tested unit) agreement scores, with ``match_count``,
        ``num_spikes1``, ``num_spikes2`` coords (see :func:`agreement_matrix`).
    matching : dict
        GT unit -> tested unit (or ``None``) used for the counts, by ``match_mode``.
    hungarian_matching : dict
        One-to-one GT -> tested matching (agreement >= ``match_score``); the unit classification
        always uses it.
    best_matching : dict
        GT -> tested unit with the highest agreement (>= ``chance_score``), many-to-one allowed.
    best_gt_matching : dict
        Tested -> GT unit with the highest agreement (>= ``chance_score``).
    counts : pandas.DataFrame
        Per GT unit (index ``gt_unit``): ``tp``, ``fn``, ``fp``, ``cl``, ``num_gt``,
        ``num_tested`` (int), ``tested_unit`` (matched unit or None), ``agreement`` (its score).
    performance : pandas.DataFrame
        Per GT unit: ``accuracy``, ``precision``, ``recall``, ``false_discovery_rate``,
        ``miss_rate`` (see :func:`performance_from_counts`).
    aggregate_performance : pandas.DataFrame
        Index ``["averaged", "pooled"]``: the mean of the per-unit rates, and the rates of the
        summed counts.
    confusion : pandas.DataFrame
        Spike confusion matrix: rows GT units (matched first) + ``"FP"``, columns tested units
        (matched first, in the order of their GT unit) + ``"FN"``.
    well_detected_units, false_positive_units, redundant_units, overmerged_units, bad_units : list
        Tested unit ids by category. All but ``well_detected_units`` are ``None`` unless
        ``exhaustive_gt=True`` (with a partial ground truth an unmatched unit may be a real neuron).
    labels_gt, labels_tested : numpy.ndarray of str or None
        Per spike, in the order of the sortings' ``spike`` dimension (``compute_labels=True``):
        GT spikes ``"TP"``, ``"FN"`` or ``"CL"``; tested spikes ``"TP"``, ``"FP"`` or ``"CL"``.
    params : dict
        The parameters used, with ``delta_frames`` and ``sampling_frequency``.
    """

    agreement: xr.DataArray
    matching: dict
    hungarian_matching: dict
    best_matching: dict
    best_gt_matching: dict
    counts: pd.DataFrame
    performance: pd.DataFrame
    aggregate_performance: pd.DataFrame
    confusion: pd.DataFrame
    well_detected_units: list
    false_positive_units: list | None
    redundant_units: list | None
    overmerged_units: list | None
    bad_units: list | None
    labels_gt: np.ndarray | None = field(default=None, repr=False)
    labels_tested: np.ndarray | None = field(default=None, repr=False)
    params: dict = field(default_factory=dict)

    def summary(self) -> pd.Series:
        """Unit-category counts and aggregate performance, as one row for tables.

        ``num_false_positive``, ``num_redundant``, ``num_overmerged``, ``num_bad`` are NaN unless
        ``exhaustive_gt=True``.
        """
        def n(v):
            return np.nan if v is None else len(v)

        out = {
            "num_gt": self.agreement.sizes["unit1"],
            "num_tested": self.agreement.sizes["unit2"],
            "num_well_detected": len(self.well_detected_units),
            "num_false_positive": n(self.false_positive_units),
            "num_redundant": n(self.redundant_units),
            "num_overmerged": n(self.overmerged_units),
            "num_bad": n(self.bad_units),
        }
        for method in self.aggregate_performance.index:
            for col in self.aggregate_performance.columns:
                out[f"{col}_{method}"] = float(self.aggregate_performance.at[method, col])
        return pd.Series(out, dtype=object)


def performance_from_counts(counts: pd.DataFrame) -> pd.DataFrame:
    """Per-row performance rates from ``tp``, ``fn``, ``fp`` counts.

    ``accuracy = tp / (tp + fn + fp)``, ``precision = tp / (tp + fp)``, ``recall = tp / (tp + fn)``,
    ``false_discovery_rate = 1 - precision``, ``miss_rate = 1 - recall``; all rates of a row with
    ``tp = 0`` (an unmatched or empty GT unit) are 0 except the two error rates, which are 1.

    Examples
    --------
    >>> import pandas as pd
    >>> c = pd.DataFrame({"tp": [8, 0], "fn": [2, 5], "fp": [2, 0]}, index=[1, 2])
    >>> performance_from_counts(c).round(3).to_dict("list")["accuracy"]
    [0.667, 0.0]
    """
    for col in ("tp", "fn", "fp"):
        if col not in counts:
            raise ValueError(f"counts has no {col!r} column; expected the counts table of compare_to_ground_truth.")
    tp = counts["tp"].to_numpy(dtype=np.float64)
    fn = counts["fn"].to_numpy(dtype=np.float64)
    fp = counts["fp"].to_numpy(dtype=np.float64)
    ok = tp > 0

    def rate(num, den):
        return np.where(ok, num / np.where(ok, den, 1.0), 0.0)

    accuracy = rate(tp, tp + fn + fp)
    precision = rate(tp, tp + fp)
    recall = rate(tp, tp + fn)
    perf = pd.DataFrame(
        {
            "accuracy": accuracy,
            "precision": precision,
            "recall": recall,
            "false_discovery_rate": 1.0 - precision,
            "miss_rate": 1.0 - recall,
        },
        index=counts.index,
    )
    return perf


def _aggregate(counts: pd.DataFrame, performance: pd.DataFrame) -> pd.DataFrame:
    averaged = performance.mean(axis=0) if len(performance) else pd.Series(np.nan, index=list(PERFORMANCE_COLUMNS))
    pooled = performance_from_counts(counts[["tp", "fn", "fp"]].sum(axis=0).to_frame().T).iloc[0]
    out = pd.DataFrame([averaged, pooled], index=["averaged", "pooled"])[list(PERFORMANCE_COLUMNS)]
    out.index.name = "method"
    return out


def _check_scores(**scores) -> dict:
    return {k: check_number(k, v, min_value=0.0, max_value=1.0, hint="Agreement scores lie in [0, 1].")
            for k, v in scores.items()}


def compare_to_ground_truth(
    gt_sorting: xr.Dataset,
    sorting: xr.Dataset,
    *,
    delta_ms: float = 0.4,
    match_score: float = 0.5,
    chance_score: float = 0.1,
    well_detected_score: float = 0.8,
    redundant_score: float = 0.2,
    overmerged_score: float = 0.2,
    match_mode: str = "hungarian",
    exhaustive_gt: bool = False,
    compute_labels: bool = False,
) -> GroundTruthResult:
    """Compare a tested sorting with a ground-truth sorting.

    Parameters
    ----------
    gt_sorting : xarray.Dataset
        Ground-truth sorting.
    sorting : xarray.Dataset
        Tested sorting of the same recording (same sampling frequency).
    delta_ms : float, default 0.4
        Spikes within ``floor(delta_ms * fs / 1000)`` samples match.
    match_score : float, default 0.5
        Minimum agreement for the one-to-one (Hungarian) matching of units.
    chance_score : float, default 0.1
        Minimum agreement for a "best" match.
    well_detected_score : float, default 0.8
        A matched tested unit with agreement >= this is well detected.
    redundant_score : float, default 0.2
        An unmatched tested unit whose best GT agreement is >= this is redundant (else a false
        positive unit).
    overmerged_score : float, default 0.2
        A tested unit with agreement > this with two or more GT units is overmerged.
    match_mode : {"hungarian", "best"}, default "hungarian"
        Unit matching used for the per-GT-unit counts and performance: one-to-one Hungarian
        assignment, or each GT unit's best tested unit (a tested unit may then serve several GT units).
    exhaustive_gt : bool, default False
        True when every neuron of the recording is in the ground truth (simulations): only then are
        false-positive, redundant, overmerged and bad units computed.
    compute_labels : bool, default False
        Keep the per-spike labels (``labels_gt``, ``labels_tested``).

    Returns
    -------
    GroundTruthResult

    Notes
    -----
    With ``m`` the matched spike pairs between GT unit ``g`` and its tested unit ``t``:
    ``tp = m``, ``fn = num_gt - tp``, ``fp = num_tested - tp`` (0 and ``fn = num_gt`` when ``g`` is
    unmatched). ``cl`` counts the GT spikes in ``fn`` that were detected by another tested unit:
    after the TP pairing, missed GT spikes are matched (same greedy, ``delta_frames``) with tested
    spikes that are not TP, whatever their unit. The rates are those of
    :func:`performance_from_counts`. Unit categories (tested units): *well detected* = matched
    (Hungarian) with agreement >= ``well_detected_score``; *bad* = not matched; *false positive* =
    not matched and best GT agreement < ``redundant_score`` (or < ``chance_score``); *redundant* =
    not matched, best GT agreement >= ``redundant_score``, and not that GT unit's best match;
    *overmerged* = agreement > ``overmerged_score`` with >= 2 GT units. Formulas and the
    differences with SpikeInterface are in ``docs/comparison.md``.

    Examples
    --------
    >>> from spkfn.io import sorting_from_arrays
    >>> gt = sorting_from_arrays([100, 200, 300, 1000, 1100], [0, 0, 0, 1, 1], sampling_frequency=30000.0)
    >>> tested = sorting_from_arrays([101, 203, 305, 500, 1104], [7, 7, 7, 7, 8], sampling_frequency=30000.0)
    >>> res = compare_to_ground_truth(gt, tested, exhaustive_gt=True)
    >>> res.matching
    {0: 7, 1: 8}
    >>> res.counts[["tp", "fn", "fp", "cl"]].to_dict("index")
    {0: {'tp': 3, 'fn': 0, 'fp': 1, 'cl': 0}, 1: {'tp': 1, 'fn': 1, 'fp': 0, 'cl': 0}}
    >>> res.performance["accuracy"].round(2).tolist()
    [0.75, 0.5]
    >>> res.well_detected_units, res.bad_units
    ([], [])
    """
    fs = _check_pair(gt_sorting, sorting, "gt_sorting", "sorting")
    delta_frames = delta_frames_from_ms(delta_ms, fs)
    scores_kw = _check_scores(match_score=match_score, chance_score=chance_score,
                              well_detected_score=well_detected_score, redundant_score=redundant_score,
                              overmerged_score=overmerged_score)
    match_mode = check_choice("match_mode", match_mode, ("hungarian", "best"))
    exhaustive_gt = check_bool("exhaustive_gt", exhaustive_gt)
    compute_labels = check_bool("compute_labels", compute_labels)

    counts_m, n1, n2, scores = _agreement_arrays(gt_sorting, sorting, delta_frames)
    agreement = _agreement_dataarray(gt_sorting, sorting, counts_m, n1, n2, scores, delta_ms=delta_ms,
                                     delta_frames=delta_frames, fs=fs)
    gt_ids = gt_sorting.unit.values
    tested_ids = sorting.unit.values
    hung12 = _hungarian_indices(scores, scores_kw["match_score"])
    best12, best21 = _best_indices(scores, scores_kw["chance_score"])
    match12 = hung12 if match_mode == "hungarian" else best12

    t1, ui1 = gt_sorting.sample_index.values.astype(np.int64, copy=False), gt_sorting.unit_index.values.astype(np.int64, copy=False)
    t2, ui2 = sorting.sample_index.values.astype(np.int64, copy=False), sorting.unit_index.values.astype(np.int64, copy=False)
    lab1, lab2, _, cl, miss1, miss2 = _kernels.label_spikes(t1, ui1, t2, ui2, match12, len(gt_ids),
                                                            len(tested_ids), delta_frames)

    counts = _counts_table(gt_ids, tested_ids, match12, counts_m, n1, n2, scores, cl.sum(axis=1))
    performance = performance_from_counts(counts)
    performance.index.name = "gt_unit"
    confusion = _confusion(gt_ids, tested_ids, match12, counts["tp"].to_numpy(), cl, miss1, miss2)
    categories = _categories(scores, hung12, best12, best21, tested_ids, exhaustive_gt, **scores_kw)

    labels_gt = labels_tested = None
    if compute_labels:
        labels_gt = np.array(["FN", "TP", "CL"])[lab1]
        labels_tested = np.array(["FP", "TP", "CL"])[lab2]
    return GroundTruthResult(
        agreement=agreement,
        matching=_as_dict(gt_ids, tested_ids, match12),
        hungarian_matching=_as_dict(gt_ids, tested_ids, hung12),
        best_matching=_as_dict(gt_ids, tested_ids, best12),
        best_gt_matching=_as_dict(tested_ids, gt_ids, best21),
        counts=counts,
        performance=performance,
        aggregate_performance=_aggregate(counts, performance),
        confusion=confusion,
        labels_gt=labels_gt,
        labels_tested=labels_tested,
        params=dict(delta_ms=float(delta_ms), delta_frames=delta_frames, sampling_frequency=fs,
                    match_mode=match_mode, exhaustive_gt=exhaustive_gt, **scores_kw),
        **categories,
    )


def _counts_table(gt_ids, tested_ids, match12, counts_m, n1, n2, scores, cl) -> pd.DataFrame:
    n_gt = len(gt_ids)
    matched = match12 >= 0
    rows = np.arange(n_gt)
    cols = np.where(matched, match12, 0)
    tp = np.where(matched, counts_m[rows, cols] if n_gt and len(tested_ids) else 0, 0).astype(np.int64)
    num_tested = np.where(matched, n2[cols] if len(tested_ids) else 0, 0).astype(np.int64)
    agreement = np.where(matched, scores[rows, cols] if n_gt and len(tested_ids) else 0.0, 0.0)
    counts = pd.DataFrame(
        {
            "tp": tp,
            "fn": n1 - tp,
            "fp": num_tested - tp,
            "cl": cl,
            "num_gt": n1,
            "num_tested": num_tested,
            "tested_unit": pd.Series([_py(tested_ids[k]) if k >= 0 else None for k in match12], dtype=object),
            "agreement": agreement,
        }
    )
    counts.index = pd.Index([_py(u) for u in gt_ids], name="gt_unit")
    return counts


def _confusion(gt_ids, tested_ids, match12, tp, cl, miss1, miss2) -> pd.DataFrame:
    n_gt, n_tested = len(gt_ids), len(tested_ids)
    gt_order = np.concatenate([np.flatnonzero(match12 >= 0), np.flatnonzero(match12 < 0)])
    matched_tested = list(dict.fromkeys(match12[match12 >= 0].tolist()))  # unique, in GT order
    rest = np.setdiff1d(np.arange(n_tested), np.array(matched_tested, dtype=np.int64), assume_unique=True)
    tested_order = np.concatenate([np.array(matched_tested, dtype=np.int64), rest]).astype(np.int64)

    mat = np.zeros((n_gt + 1, n_tested + 1), dtype=np.int64)
    ok = match12 >= 0
    mat[:n_gt, :n_tested] = cl
    mat[np.flatnonzero(ok), match12[ok]] += tp[ok]
    # FN column: GT spikes neither TP nor CL; FP row: tested spikes neither TP nor CL.
    mat[:n_gt, n_tested] = miss1
    mat[n_gt, :n_tested] = miss2
    mat = mat[np.append(gt_order, n_gt)][:, np.append(tested_order, n_tested)]
    index = [_py(gt_ids[k]) for k in gt_order] + ["FP"]
    columns = [_py(tested_ids[k]) for k in tested_order] + ["FN"]
    return pd.DataFrame(mat, index=pd.Index(index, dtype=object, name="gt_unit"),
                        columns=pd.Index(columns, dtype=object, name="tested_unit"))


def _categories(scores, hung12, best12, best21, tested_ids, exhaustive_gt, *, well_detected_score,
                redundant_score, overmerged_score, **_unused) -> dict:
    n_tested = len(tested_ids)
    hung21 = np.full(n_tested, -1, dtype=np.int64)
    ok = hung12 >= 0
    hung21[hung12[ok]] = np.flatnonzero(ok)
    matched = hung21 >= 0
    idx = np.arange(n_tested)
    matched_score = np.where(matched, scores[np.where(matched, hung21, 0), idx] if scores.size else 0.0, 0.0)
    ids = [_py(u) for u in tested_ids]

    def pick(mask):
        return [ids[k] for k in np.flatnonzero(mask)]

    out = {"well_detected_units": pick(matched & (matched_score >= well_detected_score))}
    if not exhaustive_gt:
        out.update(false_positive_units=None, redundant_units=None, overmerged_units=None, bad_units=None)
        return out
    has_best = best21 >= 0
    best_score = np.where(has_best, scores[np.where(has_best, best21, 0), idx] if scores.size else 0.0, 0.0)
    # a tested unit that is its best GT unit's own best match is not redundant (SpikeInterface rule)
    is_best_of_its_best = has_best & (best12[np.where(has_best, best21, 0)] == idx) if scores.size else has_best
    out["false_positive_units"] = pick(~matched & (~has_best | (best_score < redundant_score)))
    out["redundant_units"] = pick(~matched & has_best & ~is_best_of_its_best & (best_score >= redundant_score))
    out["overmerged_units"] = pick((scores > overmerged_score).sum(axis=0) > 1 if scores.size else np.zeros(n_tested, bool))
    out["bad_units"] = pick(~matched)
    return out
