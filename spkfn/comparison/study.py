"""Studies: ground-truth comparisons of many sorters on many recordings, as tidy tables.

A *case* is one sorter run on one recording with its ground truth. :func:`run_study` compares
every case (one at a time, so memory holds one comparison) and returns tables ready for figures:

- ``units``: one row per (recording, sorter, GT unit): counts, rates, agreement, SNR;
- ``cases``: one row per (recording, sorter): unit categories and aggregate rates;
- ``sorters``: one row per sorter over all its recordings;
- ``recordings``: one row per recording over all sorters.

Tables are stored as CSV (:func:`save_study_tables`, :func:`load_study_tables`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..core.atomic import atomic_path
from ..io.templates import check_templates
from .groundtruth import PERFORMANCE_COLUMNS, compare_to_ground_truth, performance_from_counts
from .matching import _py

__all__ = ["StudyCase", "StudyTables", "run_study", "snr_from_templates", "save_study_tables", "load_study_tables"]

logger = logging.getLogger(__name__)

_TABLES = ("units", "cases", "sorters", "recordings")


@dataclass(frozen=True)
class StudyCase:
    """One sorter on one recording, with the ground truth.

    Attributes
    ----------
    recording : str
        Recording (session) name.
    sorter : str
        Sorter name (or sorter + parameter set).
    gt_sorting, sorting : xarray.Dataset
        Ground truth and tested sorting.
    templates : xarray.DataArray, optional
        GT templates (µV), for the per-unit ``amplitude_uV`` and, with ``noise_levels_uV``, the SNR.
    noise_levels_uV : array_like, optional
        Noise level of each template channel (µV), for the SNR.
    snr : mapping or pandas.Series, optional
        GT unit id -> SNR, used as given (takes precedence over templates).
    """

    recording: str
    sorter: str
    gt_sorting: xr.Dataset
    sorting: xr.Dataset
    templates: xr.DataArray | None = None
    noise_levels_uV: object = None
    snr: object = None


@dataclass(frozen=True)
class StudyTables:
    """Tidy tables of a study (see :mod:`spkfn.comparison.study`)."""

    units: pd.DataFrame
    cases: pd.DataFrame
    sorters: pd.DataFrame
    recordings: pd.DataFrame


def snr_from_templates(templates: xr.DataArray, noise_levels_uV) -> pd.DataFrame:
    """Peak amplitude and SNR of each unit from its template.

    ``amplitude_uV = max |T(sample, c*)|`` on the channel ``c*`` where ``|T|`` is largest, and
    ``snr = amplitude_uV / noise_levels_uV[c*]`` (SpikeInterface's ``snr`` quality metric with
    ``peak_sign="both"``).

    Parameters
    ----------
    templates : xarray.DataArray
        ``(unit, sample, channel)`` in µV.
    noise_levels_uV : array_like or None
        Per-channel noise (µV), shape ``(n_channels,)``; None gives NaN SNRs.

    Returns
    -------
    pandas.DataFrame
        Index ``unit``; columns ``amplitude_uV``, ``peak_channel``, ``snr``.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import templates_from_array
    >>> t = templates_from_array(np.array([[[0.0, -50.0], [0.0, 20.0]]]), sampling_frequency=30000.0, nbefore=0)
    >>> snr_from_templates(t, [10.0, 5.0]).to_dict("records")
    [{'amplitude_uV': 50.0, 'peak_channel': '1', 'snr': 10.0}]
    """
    check_templates(templates)
    values = np.abs(np.asarray(templates.values, dtype=np.float64))
    n_units, _, n_channels = values.shape
    peak_per_channel = values.max(axis=1) if values.shape[1] else np.zeros((n_units, n_channels))
    best = np.argmax(peak_per_channel, axis=1) if n_channels else np.zeros(n_units, dtype=np.int64)
    amplitude = peak_per_channel[np.arange(n_units), best] if n_channels else np.full(n_units, np.nan)
    if noise_levels_uV is None:
        snr = np.full(n_units, np.nan)
    else:
        noise = np.asarray(noise_levels_uV, dtype=np.float64)
        if noise.shape != (n_channels,):
            raise ValueError(f"noise_levels_uV must have one value per template channel ({n_channels}); got shape {noise.shape}.")
        if np.any(noise[best] <= 0):
            raise ValueError("noise_levels_uV must be > 0 on every unit's peak channel.")
        snr = amplitude / noise[best]
    channels = templates.channel.values
    return pd.DataFrame({"amplitude_uV": amplitude,
                         "peak_channel": [_py(channels[k]) for k in best] if n_channels else [None] * n_units,
                         "snr": snr},
                        index=pd.Index([_py(u) for u in templates.unit.values], name="unit"))


def _as_case(case) -> StudyCase:
    if isinstance(case, StudyCase):
        return case
    if isinstance(case, Mapping):
        names = {f.name for f in fields(StudyCase)}
        unknown = set(case) - names
        if unknown:
            raise ValueError(f"unknown study case keys {sorted(unknown)}; valid keys: {sorted(names)}.")
        try:
            return StudyCase(**case)
        except TypeError as err:
            raise ValueError(f"a study case needs recording, sorter, gt_sorting and sorting: {err}") from None
    raise ValueError(f"a study case must be a StudyCase or a dict; got {type(case).__name__}.")


def _unit_snr(case: StudyCase, gt_ids: list) -> tuple[np.ndarray, np.ndarray]:
    n = len(gt_ids)
    amplitude = np.full(n, np.nan)
    snr = np.full(n, np.nan)
    if case.templates is not None:
        table = snr_from_templates(case.templates, case.noise_levels_uV)
        missing = [u for u in gt_ids if u not in table.index]
        if missing:
            raise ValueError(f"case ({case.recording}, {case.sorter}): templates lack GT units {missing[:10]}.")
        amplitude = table.loc[gt_ids, "amplitude_uV"].to_numpy(dtype=np.float64)
        snr = table.loc[gt_ids, "snr"].to_numpy(dtype=np.float64)
    if case.snr is not None:
        given = pd.Series(case.snr) if isinstance(case.snr, Mapping) else case.snr
        if not isinstance(given, pd.Series):
            raise ValueError("snr must be a mapping or a pandas.Series indexed by GT unit id.")
        snr = given.reindex(gt_ids).to_numpy(dtype=np.float64)
    elif case.templates is None and "snr" in case.gt_sorting and case.gt_sorting["snr"].dims == ("unit",):
        snr = np.asarray(case.gt_sorting["snr"].values, dtype=np.float64)
    return amplitude, snr


def run_study(
    cases: Iterable,
    *,
    delta_ms: float = 0.4,
    match_score: float = 0.5,
    chance_score: float = 0.1,
    well_detected_score: float = 0.8,
    redundant_score: float = 0.2,
    overmerged_score: float = 0.2,
    match_mode: str = "hungarian",
    exhaustive_gt: bool = True,
) -> StudyTables:
    """Compare every case with its ground truth and gather tidy tables.

    Parameters
    ----------
    cases : iterable of StudyCase or dict
        Each names a ``recording`` and a ``sorter`` and gives ``gt_sorting`` and ``sorting``
        (optionally ``templates`` + ``noise_levels_uV`` or ``snr``). A (recording, sorter) pair
        may appear once.
    delta_ms, match_score, chance_score, well_detected_score, redundant_score, overmerged_score, match_mode
        As in :func:`compare_to_ground_truth`.
    exhaustive_gt : bool, default True
        Studies usually run on simulated recordings whose ground truth is complete.

    Returns
    -------
    StudyTables
        ``units`` (columns ``recording``, ``sorter``, ``gt_unit``, ``tested_unit``, counts
        ``tp fn fp cl num_gt num_tested``, ``agreement``, the rates, ``well_detected``,
        ``amplitude_uV``, ``snr``); ``cases`` (per recording and sorter: ``num_gt``,
        ``num_tested``, ``num_well_detected``, ``num_false_positive``, ``num_redundant``,
        ``num_overmerged``, ``num_bad``, ``<rate>_averaged``, ``<rate>_pooled``); ``sorters`` and
        ``recordings`` (the same counts summed, ``num_cases``, and the rates averaged over the GT
        units of all their cases or pooled over their summed counts).

    Examples
    --------
    >>> from spkfn.io import sorting_from_arrays
    >>> gt = sorting_from_arrays([100, 200, 300, 400], [0, 0, 1, 1], sampling_frequency=30000.0)
    >>> good = sorting_from_arrays([101, 201, 301, 401], [0, 0, 1, 1], sampling_frequency=30000.0)
    >>> half = sorting_from_arrays([101, 201], [5, 5], sampling_frequency=30000.0)
    >>> tables = run_study([
    ...     {"recording": "sim1", "sorter": "good", "gt_sorting": gt, "sorting": good},
    ...     {"recording": "sim1", "sorter": "half", "gt_sorting": gt, "sorting": half},
    ... ])
    >>> tables.units[["sorter", "gt_unit", "tested_unit", "accuracy"]].values.tolist()
    [['good', 0, 0, 1.0], ['good', 1, 1, 1.0], ['half', 0, 5, 1.0], ['half', 1, None, 0.0]]
    >>> tables.sorters[["num_cases", "num_well_detected", "accuracy_averaged"]].to_dict("index")
    {'good': {'num_cases': 1, 'num_well_detected': 2, 'accuracy_averaged': 1.0}, 'half': {'num_cases': 1, 'num_well_detected': 1, 'accuracy_averaged': 0.5}}
    """
    cases = [_as_case(c) for c in cases]
    if not cases:
        raise ValueError("run_study needs at least one case.")
    keys = [(str(c.recording), str(c.sorter)) for c in cases]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError(f"each (recording, sorter) pair may appear once; repeated: {dup[:5]}.")
    kw = dict(delta_ms=delta_ms, match_score=match_score, chance_score=chance_score,
              well_detected_score=well_detected_score, redundant_score=redundant_score,
              overmerged_score=overmerged_score, match_mode=match_mode, exhaustive_gt=exhaustive_gt)
    unit_tables, case_rows = [], []
    for case, (rec, sorter) in zip(cases, keys, strict=True):
        logger.info("study: comparing %s on %s", sorter, rec)
        res = compare_to_ground_truth(case.gt_sorting, case.sorting, **kw)
        gt_ids = list(res.counts.index)
        amplitude, snr = _unit_snr(case, gt_ids)
        u = res.counts.join(res.performance).reset_index()
        u.insert(0, "sorter", sorter)
        u.insert(0, "recording", rec)
        well = set(res.well_detected_units)
        u["well_detected"] = [t in well and t is not None for t in u["tested_unit"]]
        u["amplitude_uV"] = amplitude
        u["snr"] = snr
        unit_tables.append(u)
        row = {"recording": rec, "sorter": sorter}
        row.update(res.summary().to_dict())
        case_rows.append(row)
    units = pd.concat(unit_tables, ignore_index=True)
    units["tested_unit"] = units["tested_unit"].astype(object).where(units["tested_unit"].notna(), None)
    cases_table = pd.DataFrame(case_rows)
    for col in cases_table.columns:
        if col.startswith("num_") and cases_table[col].isna().any():
            cases_table[col] = cases_table[col].astype("Int64")
    return StudyTables(units=units, cases=cases_table,
                       sorters=_group_summary(units, cases_table, "sorter"),
                       recordings=_group_summary(units, cases_table, "recording"))


def _group_summary(units: pd.DataFrame, cases: pd.DataFrame, by: str) -> pd.DataFrame:
    count_cols = ["num_gt", "num_tested", "num_well_detected", "num_false_positive", "num_redundant",
                  "num_overmerged", "num_bad"]
    g = cases.groupby(by, sort=False)
    out = g[count_cols].sum(min_count=1)
    for col in count_cols:
        out[col] = out[col].astype("Int64") if out[col].isna().any() else out[col].astype(np.int64)
    out.insert(0, "num_cases", g.size())
    averaged = units.groupby(by, sort=False)[list(PERFORMANCE_COLUMNS)].mean()
    pooled = performance_from_counts(units.groupby(by, sort=False)[["tp", "fn", "fp"]].sum())
    for col in PERFORMANCE_COLUMNS:
        out[f"{col}_averaged"] = averaged[col]
        out[f"{col}_pooled"] = pooled[col]
    out["accuracy_median"] = units.groupby(by, sort=False)["accuracy"].median()
    out.index.name = by
    return out


def save_study_tables(tables: StudyTables, folder) -> dict:
    """Write the study tables as CSV files ``<folder>/<table>.csv`` (atomically).

    Returns
    -------
    dict
        Table name -> path written.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> t = StudyTables(*(pd.DataFrame({"a": [1]}) for _ in range(4)))
    >>> sorted(save_study_tables(t, tempfile.mkdtemp()))
    ['cases', 'recordings', 'sorters', 'units']
    """
    if not isinstance(tables, StudyTables):
        raise ValueError(f"tables must be the StudyTables of run_study; got {type(tables).__name__}.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in _TABLES:
        df = getattr(tables, name)
        path = folder / f"{name}.csv"
        keep_index = df.index.name is not None
        with atomic_path(path) as tmp:
            df.to_csv(tmp, index=keep_index)
        written[name] = path
    return written


def _restore_ids(col: pd.Series) -> pd.Series:
    """Unit ids back from CSV: empty cells -> None, integer-looking values -> int, others str."""
    values = []
    for v in col.tolist():  # one value per unit row
        if v is None or (isinstance(v, float) and np.isnan(v)):
            values.append(None)
        elif isinstance(v, float) and v.is_integer():
            values.append(int(v))
        elif isinstance(v, str) and v.strip().lstrip("-").isdigit():
            values.append(int(v))
        else:
            values.append(v)
    return pd.Series(values, index=col.index, dtype=object, name=col.name)


def load_study_tables(folder) -> StudyTables:
    """Read the CSV tables written by :func:`save_study_tables`.

    Recording and sorter names are read as strings. Unit ids (``gt_unit``, ``tested_unit``) that
    look like integers are read as ints, the others as strings, empty cells as None (CSV keeps no
    types: a string id such as ``"7"`` comes back as the int 7).
    """
    folder = Path(folder)
    out = {}
    for name in _TABLES:
        path = folder / f"{name}.csv"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing; write the tables with save_study_tables.")
        df = pd.read_csv(path, dtype={"recording": str, "sorter": str})
        if name in ("sorters", "recordings"):
            key = name[:-1]
            if key in df:
                df = df.set_index(key)
        for col in ("gt_unit", "tested_unit"):
            if col in df:
                df[col] = _restore_ids(df[col])
        out[name] = df
    return StudyTables(**out)
