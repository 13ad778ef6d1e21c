"""Spike-train matching: spike-level matches, the agreement matrix, unit matchings.

Definitions (see ``docs/comparison.md``):

- two spikes match when ``|t1 - t2| <= delta_frames``, each spike matched at most once, and the
  number of matched pairs between two trains is the *maximum* possible (a greedy in time order
  that takes the earliest free partner achieves it);
- agreement score of units ``i`` (sorting 1) and ``j`` (sorting 2):
  ``A_ij = m_ij / (n_i + n_j - m_ij)`` with ``m_ij`` matched pairs and ``n_i``, ``n_j`` spike
  counts (0 when both units are empty);
- ``delta_frames = floor(delta_ms * sampling_frequency / 1000)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..core.validate import check_int, check_number
from ..io.sorting import check_sorting
from . import _kernels

__all__ = [
    "SpikeMatch",
    "match_spikes",
    "agreement_matrix",
    "delta_frames_from_ms",
    "hungarian_matching",
    "best_matching",
]


@dataclass(frozen=True)
class SpikeMatch:
    """Result of :func:`match_spikes`.

    Attributes
    ----------
    pairs : numpy.ndarray of int64, shape (n_matches, 2)
        Indices ``(i1, i2)`` into ``train1`` and ``train2`` of each matched pair, in time order.
    labels1 : numpy.ndarray of str
        ``"TP"`` (matched) or ``"FN"`` for each spike of ``train1``.
    labels2 : numpy.ndarray of str
        ``"TP"`` (matched) or ``"FP"`` for each spike of ``train2``.
    """

    pairs: np.ndarray
    labels1: np.ndarray
    labels2: np.ndarray

    @property
    def num_matches(self) -> int:
        return int(self.pairs.shape[0])


def delta_frames_from_ms(delta_ms: float, sampling_frequency: float) -> int:
    """The matching window in samples: ``floor(delta_ms * sampling_frequency / 1000)``.

    A tolerance of 1e-9 sample guards against floating-point round-off (``0.3 * 20000 / 1000`` is
    6 samples, not 5).

    >>> delta_frames_from_ms(0.4, 30000.0)
    12
    >>> delta_frames_from_ms(0.3, 20000.0)
    6
    """
    delta_ms = check_number("delta_ms", delta_ms, min_value=0.0, hint="It is the matching window in ms (default 0.4).")
    fs = check_number("sampling_frequency", sampling_frequency, min_value=0.0, min_inclusive=False)
    return int(math.floor(delta_ms * fs / 1000.0 + 1e-9))


def _check_train(name: str, train) -> np.ndarray:
    arr = np.asarray(train)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of spike times in samples; got shape {arr.shape}.")
    if arr.size and arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integer sample indices; got dtype {arr.dtype}. "
                             "Convert times in seconds with np.round(t * sampling_frequency).astype(int).")
    arr = arr.astype(np.int64, copy=False)
    if arr.size:
        if arr.min() < 0:
            raise ValueError(f"{name} has negative spike times (min {arr.min()}); spike times must be >= 0 samples.")
        if np.any(np.diff(arr) < 0):
            raise ValueError(f"{name} is not sorted in time; pass np.sort({name}).")
    return arr


def match_spikes(train1, train2, *, delta_frames: int) -> SpikeMatch:
    """Match the spikes of two spike trains within ``delta_frames`` samples.

    Parameters
    ----------
    train1, train2 : array_like of int
        Spike times in samples, sorted, >= 0. ``train1`` is the reference (ground truth).
    delta_frames : int
        Two spikes may match when ``|t1 - t2| <= delta_frames`` (inclusive), >= 0.

    Returns
    -------
    SpikeMatch
        ``pairs`` (indices of matched spikes), ``labels1`` (TP/FN), ``labels2`` (TP/FP).

    Notes
    -----
    Each spike is matched at most once and the number of matches is the maximum possible. Spikes
    of ``train1`` are visited in time order and each takes the earliest unmatched spike of
    ``train2`` in ``[t1 - delta_frames, t1 + delta_frames]``; with windows of equal width this
    greedy is optimal, so ``num_matches`` does not depend on which train comes first. When a spike
    has two possible partners (a tie), it takes the earlier one.

    Examples
    --------
    >>> m = match_spikes([100, 200, 300], [95, 210, 213, 400], delta_frames=12)
    >>> m.pairs.tolist()
    [[0, 0], [1, 1]]
    >>> m.labels1.tolist(), m.labels2.tolist()
    (['TP', 'TP', 'FN'], ['TP', 'TP', 'FP', 'FP'])
    """
    t1 = _check_train("train1", train1)
    t2 = _check_train("train2", train2)
    delta_frames = check_int("delta_frames", delta_frames, min_value=0)
    ui1 = np.zeros(t1.size, dtype=np.int64)
    ui2 = np.zeros(t2.size, dtype=np.int64)
    lab1, lab2, partner, _, _, _ = _kernels.label_spikes(t1, ui1, t2, ui2, np.zeros(1, dtype=np.int64), 1, 1,
                                                          delta_frames)
    i1 = np.flatnonzero(lab1 == _kernels.TP)
    pairs = np.column_stack([i1, partner[i1]]).astype(np.int64)
    labels1 = np.where(lab1 == _kernels.TP, "TP", "FN")
    labels2 = np.where(lab2 == _kernels.TP, "TP", "FP")
    return SpikeMatch(pairs=pairs, labels1=labels1, labels2=labels2)


def _check_pair(sorting1, sorting2, name1: str = "sorting1", name2: str = "sorting2") -> float:
    for name, s in ((name1, sorting1), (name2, sorting2)):
        try:
            check_sorting(s)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
    fs1 = float(sorting1.attrs["sampling_frequency"])
    fs2 = float(sorting2.attrs["sampling_frequency"])
    if not math.isclose(fs1, fs2, rel_tol=1e-9):
        raise ValueError(
            f"{name1} and {name2} have different sampling frequencies ({fs1} Hz and {fs2} Hz); spike "
            "times in samples are not comparable. Compare sortings of the same recording, or rebuild "
            "one with spkfn.io.sorting_from_arrays(np.round(times_s * fs).astype(int), ..., sampling_frequency=fs)."
        )
    return fs1


def _spike_vector(sorting: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    return (np.ascontiguousarray(sorting.sample_index.values, dtype=np.int64),
            np.ascontiguousarray(sorting.unit_index.values, dtype=np.int64))


def _unit_counts(unit_index: np.ndarray, n_units: int) -> np.ndarray:
    return np.bincount(unit_index, minlength=n_units).astype(np.int64)


def _scores_from_counts(match_count: np.ndarray, n1: np.ndarray, n2: np.ndarray) -> np.ndarray:
    denom = n1[:, None] + n2[None, :] - match_count
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.where(denom > 0, match_count / np.where(denom > 0, denom, 1), 0.0)
    return scores.astype(np.float64)


def _agreement_arrays(sorting1, sorting2, delta_frames: int):
    """(match_count, n1, n2, scores) as numpy arrays in the order of the ``unit`` coords."""
    t1, ui1 = _spike_vector(sorting1)
    t2, ui2 = _spike_vector(sorting2)
    nu1 = sorting1.sizes["unit"]
    nu2 = sorting2.sizes["unit"]
    counts = _kernels.match_count_matrix(t1, ui1, t2, ui2, nu1, nu2, delta_frames)
    n1 = _unit_counts(ui1, nu1)
    n2 = _unit_counts(ui2, nu2)
    return counts, n1, n2, _scores_from_counts(counts, n1, n2)


def _agreement_dataarray(sorting1, sorting2, counts, n1, n2, scores, *, delta_ms, delta_frames, fs) -> xr.DataArray:
    return xr.DataArray(
        scores,
        dims=("unit1", "unit2"),
        coords={
            "unit1": sorting1.unit.values,
            "unit2": sorting2.unit.values,
            "num_spikes1": ("unit1", n1),
            "num_spikes2": ("unit2", n2),
            "match_count": (("unit1", "unit2"), counts),
        },
        attrs={"delta_ms": float(delta_ms), "delta_frames": int(delta_frames), "sampling_frequency": fs},
        name="agreement",
    )


def agreement_matrix(sorting1: xr.Dataset, sorting2: xr.Dataset, *, delta_ms: float = 0.4) -> xr.DataArray:
    """Agreement scores and match counts between every unit of two sortings.

    Parameters
    ----------
    sorting1, sorting2 : xarray.Dataset
        Sortings of the same recording (same sampling frequency).
    delta_ms : float, default 0.4
        Matching window: spikes within ``delta_frames = floor(delta_ms * fs / 1000)`` samples match.

    Returns
    -------
    xarray.DataArray
        dims ``("unit1", "unit2")``, the agreement score ``m / (n1 + n2 - m)`` in [0, 1]; coords
        ``match_count`` ``(unit1, unit2)`` (matched spike pairs ``m``), ``num_spikes1``,
        ``num_spikes2``; attrs ``delta_ms``, ``delta_frames``, ``sampling_frequency``.

    Notes
    -----
    ``m`` is the maximum number of one-to-one pairs of spikes within ``delta_frames`` (see
    :func:`match_spikes`), computed for all unit pairs in one pass linear in the number of spikes
    (numba). It is symmetric: ``agreement_matrix(b, a)`` is the transpose of ``agreement_matrix(a, b)``.
    This is the agreement score of SpikeInterface and SpikeForest (Magland et al. 2020, eLife 9:e55167).

    Examples
    --------
    >>> from spkfn.io import sorting_from_arrays
    >>> s1 = sorting_from_arrays([100, 200, 300, 400], [0, 0, 1, 1], sampling_frequency=30000.0)
    >>> s2 = sorting_from_arrays([102, 205, 301], ["a", "a", "b"], sampling_frequency=30000.0)
    >>> agr = agreement_matrix(s1, s2)
    >>> agr.match_count.values.tolist()
    [[2, 0], [0, 1]]
    >>> agr.values.round(2).tolist()
    [[1.0, 0.0], [0.0, 0.5]]
    """
    fs = _check_pair(sorting1, sorting2)
    delta_frames = delta_frames_from_ms(delta_ms, fs)
    counts, n1, n2, scores = _agreement_arrays(sorting1, sorting2, delta_frames)
    return _agreement_dataarray(sorting1, sorting2, counts, n1, n2, scores, delta_ms=delta_ms,
                                delta_frames=delta_frames, fs=fs)


def _check_agreement(agreement) -> xr.DataArray:
    if not isinstance(agreement, xr.DataArray) or agreement.dims != ("unit1", "unit2"):
        raise ValueError("agreement must be the xarray.DataArray returned by agreement_matrix (dims ('unit1', 'unit2')).")
    return agreement


def _py(v):
    return v.item() if hasattr(v, "item") else v


def _hungarian_indices(scores: np.ndarray, min_score: float) -> np.ndarray:
    """Row -> column index (or -1) of the assignment maximising the sum of scores >= min_score."""
    from scipy.optimize import linear_sum_assignment

    match = np.full(scores.shape[0], -1, dtype=np.int64)
    if scores.size == 0:
        return match
    thresholded = np.where(scores < min_score, 0.0, scores)
    rows, cols = linear_sum_assignment(-thresholded)
    keep = scores[rows, cols] >= min_score
    match[rows[keep]] = cols[keep]
    return match


def _best_indices(scores: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """Best column per row and best row per column (first one on ties), -1 below ``min_score``."""
    n1, n2 = scores.shape
    best12 = np.full(n1, -1, dtype=np.int64)
    best21 = np.full(n2, -1, dtype=np.int64)
    if n2:
        arg = np.argmax(scores, axis=1)
        ok = scores[np.arange(n1), arg] >= min_score
        best12[ok] = arg[ok]
    if n1:
        arg = np.argmax(scores, axis=0)
        ok = scores[arg, np.arange(n2)] >= min_score
        best21[ok] = arg[ok]
    return best12, best21


def _as_dict(ids_from, ids_to, index: np.ndarray) -> dict:
    return {_py(u): (_py(ids_to[k]) if k >= 0 else None) for u, k in zip(ids_from, index, strict=True)}


def hungarian_matching(agreement: xr.DataArray, *, match_score: float = 0.5) -> dict:
    """One-to-one unit matching that maximises the total agreement (Hungarian algorithm).

    Scores below ``match_score`` are set to 0 before the assignment
    (``scipy.optimize.linear_sum_assignment``), and assigned pairs whose score is below
    ``match_score`` are dropped.

    Returns
    -------
    dict
        unit1 id -> matched unit2 id, or ``None``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> agr = xr.DataArray(np.array([[0.9, 0.6], [0.8, 0.1]]), dims=("unit1", "unit2"),
    ...                    coords={"unit1": [0, 1], "unit2": ["a", "b"]})
    >>> hungarian_matching(agr)
    {0: 'b', 1: 'a'}
    """
    agreement = _check_agreement(agreement)
    match_score = check_number("match_score", match_score, min_value=0.0, max_value=1.0)
    idx = _hungarian_indices(np.asarray(agreement.values, dtype=np.float64), match_score)
    return _as_dict(agreement.unit1.values, agreement.unit2.values, idx)


def best_matching(agreement: xr.DataArray, *, min_score: float = 0.1) -> tuple[dict, dict]:
    """Best partner of each unit, independently of the others (may be many-to-one).

    Returns
    -------
    best12, best21 : dict
        unit1 id -> unit2 id with the highest score (``None`` when below ``min_score``; the first
        unit on ties), and unit2 id -> unit1 id likewise.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> agr = xr.DataArray(np.array([[0.9, 0.6], [0.8, 0.05]]), dims=("unit1", "unit2"),
    ...                    coords={"unit1": [0, 1], "unit2": ["a", "b"]})
    >>> best_matching(agr)
    ({0: 'a', 1: 'a'}, {'a': 0, 'b': 0})
    """
    agreement = _check_agreement(agreement)
    min_score = check_number("min_score", min_score, min_value=0.0, max_value=1.0)
    b12, b21 = _best_indices(np.asarray(agreement.values, dtype=np.float64), min_score)
    return (_as_dict(agreement.unit1.values, agreement.unit2.values, b12),
            _as_dict(agreement.unit2.values, agreement.unit1.values, b21))
