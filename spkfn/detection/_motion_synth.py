"""Peaks and locations derived from a ground-truth sorting, for tests and benchmarks of motion.

Not a model of any detector: it mimics what detection + localisation return on a generated
recording, with known truth, without reading a single sample of traces.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["ground_truth_peaks"]

PEAK_DTYPE = np.dtype([("sample_index", "int64"), ("channel_index", "int64"), ("amplitude", "float32"),
                       ("segment_index", "int64")])
LOCATION_DTYPE = np.dtype([("x", "float64"), ("y", "float64")])


def ground_truth_peaks(gt_sorting: xr.Dataset, channel_locations: np.ndarray, *, min_snr: float = 4.0,
                       localization_error_um: float = 40.0, min_error_um: float = 1.0,
                       false_peak_rate_hz: float = 0.0, seed: int = 0):
    """Peaks ``(PEAK_DTYPE)`` and locations ``(x, y)`` of the spikes of a generated recording.

    Each spike of a unit with ``snr >= min_snr`` becomes a peak at its unit's drifted position
    ``(x_um, y_um + displacement_um)`` plus Gaussian localisation error of standard deviation
    ``max(min_error_um, localization_error_um / snr)`` on each axis; its channel is the contact
    nearest the drifted position, its amplitude ``-amplitude_uV * amplitude_scale``.
    ``false_peak_rate_hz`` adds uniformly placed noise peaks (amplitude 5 noise sd).

    Returns ``(peaks, locations, true_y)`` with ``true_y`` the noiseless depth (NaN for false peaks).
    """
    rng = np.random.default_rng(seed)
    fs = float(gt_sorting.attrs["sampling_frequency"])
    n_samples = int(gt_sorting.attrs["num_samples"])
    unit = gt_sorting.unit_index.values
    snr = gt_sorting.snr.values[unit]
    keep = snr >= min_snr
    unit = unit[keep]
    s = gt_sorting.sample_index.values[keep]
    disp = gt_sorting.displacement_um.values[keep].astype(np.float64)
    x = gt_sorting.x_um.values[unit]
    y = gt_sorting.y_um.values[unit] + disp
    sd = np.maximum(min_error_um, localization_error_um / snr[keep])
    amp = -gt_sorting.amplitude_uV.values[unit] * gt_sorting.amplitude_scale.values[keep]
    lx = x + rng.normal(size=x.size) * sd
    ly = y + rng.normal(size=y.size) * sd
    n_false = rng.poisson(false_peak_rate_hz * n_samples / fs) if false_peak_rate_hz > 0 else 0
    if n_false:
        lo, hi = channel_locations.min(0), channel_locations.max(0)
        s = np.concatenate([s, rng.integers(0, n_samples, n_false)])
        lx = np.concatenate([lx, rng.uniform(lo[0], hi[0], n_false)])
        ly = np.concatenate([ly, rng.uniform(lo[1], hi[1], n_false)])
        y = np.concatenate([y, np.full(n_false, np.nan)])
        amp = np.concatenate([amp, np.full(n_false, -5.0 * float(gt_sorting.attrs.get("noise_uV", 5.0)))])
        x = np.concatenate([x, lx[-n_false:]])
    order = np.argsort(s, kind="stable")
    from scipy.spatial import cKDTree

    nearest = cKDTree(channel_locations).query(np.column_stack([x, np.where(np.isfinite(y), y, ly)])[order])[1]
    peaks = np.zeros(order.size, PEAK_DTYPE)
    peaks["sample_index"] = s[order]
    peaks["channel_index"] = nearest
    peaks["amplitude"] = amp[order]
    locs = np.zeros(order.size, LOCATION_DTYPE)
    locs["x"] = lx[order]
    locs["y"] = ly[order]
    return peaks, locs, y[order]
