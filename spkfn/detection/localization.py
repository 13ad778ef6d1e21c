"""Peak localisation: where on (and off) the probe each peak comes from, in µm."""

from __future__ import annotations

import numpy as np
import xarray as xr
from numba import njit

from ..core.validate import check_bool, check_choice, check_number
from ..io.recording import check_recording, num_samples
from ._common import (
    _gather_features,
    _neighbours_from_locations,
    check_peaks,
    check_streaming,
    map_peaks,
    ms_to_samples,
    require_geometry,
    scaling,
    sorted_peaks,
)

__all__ = ["localize_peaks", "LOCALIZATION_METHODS", "LOCATION_DTYPES"]

#: Supported methods.
LOCALIZATION_METHODS = ("center_of_mass", "monopolar_triangulation", "grid_convolution")

#: Output fields per method (µm; ``alpha`` in µV·µm).
LOCATION_DTYPES = {
    "center_of_mass": np.dtype([("x", "float64"), ("y", "float64")]),
    "monopolar_triangulation": np.dtype([("x", "float64"), ("y", "float64"), ("z", "float64"),
                                         ("alpha", "float64")]),
    "grid_convolution": np.dtype([("x", "float64"), ("y", "float64"), ("z", "float64")]),
}

_FEATURES = {"ptp": 0, "energy": 1, "peak_voltage": 2}


def localize_peaks(
    recording: xr.DataArray,
    peaks,
    *,
    method: str = "center_of_mass",
    radius_um: float = 50.0,
    ms_before: float = 0.5,
    ms_after: float = 0.5,
    feature: str = "energy",
    max_distance_um: float = 150.0,
    grid_step_um: float = 5.0,
    grid_radius_um: float = 40.0,
    source_depths_um=(0.0, 15.0, 30.0, 60.0, 120.0),
    percentile: float = 0.5,
    enforce_decrease: bool = False,
    chunk_size: int | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Position of each peak's source, from its amplitudes on the channels around it.

    For each peak, a feature (the waveform's energy by default) is measured on the channels
    within ``radius_um`` of its channel (same group) over ``[t - ms_before, t + ms_after)``; the
    position is then estimated from these amplitudes and the channel positions.

    Parameters
    ----------
    recording : xarray.DataArray
        Preprocessed recording with geometry (``x``, ``y`` coords).
    peaks : numpy structured array
        Peaks with ``sample_index`` and ``channel_index`` (:func:`detect_peaks`).
    method : {"center_of_mass", "monopolar_triangulation", "grid_convolution"}
        - ``"center_of_mass"``: the feature-weighted mean of the channel positions.
        - ``"monopolar_triangulation"``: least-squares fit of a point source ``alpha / r``
          (``r`` the distance from ``(x, y, z)`` to each contact; ``z`` off the probe plane)
          to the features (Boussard et al. 2021), by Levenberg-Marquardt with an analytic
          Jacobian, started from the centre of mass at ``z = 20`` µm.
        - ``"grid_convolution"``: correlation of the features with the unit-norm footprints
          ``1 / sqrt(d² + z²)`` of point sources on a grid (``grid_step_um``, within
          ``grid_radius_um`` of the peak channel) at each depth of ``source_depths_um``; the
          position is the score-weighted mean of the best ``percentile`` % grid sources (after
          SpikeInterface's grid convolution and Kilosort's grid of spatial templates, Pachitariu
          et al. 2024).
    radius_um : float, default 50.0
        Channels used around each peak's channel (µm). Must select at least one other channel.
    ms_before, ms_after : float, default 0.5, 0.5
        Window in which the feature is measured.
    feature : {"energy", "ptp", "peak_voltage"}, default "energy"
        L2 norm of the waveform over the window (µV), peak-to-peak amplitude, or ``|value|`` at
        the peak sample. The energy averages noise over the window and gave 25-35 % lower median
        errors than the peak-to-peak amplitude (SpikeInterface's default) for every method on
        ground truth from two generators (docs/detection.md).
    max_distance_um : float, default 150.0
        ``monopolar_triangulation``: bound on ``|x - x0|``, ``|y - y0|`` (``x0, y0`` the centre
        of mass); ``z`` is bounded to ``[1, 10 × max_distance_um]``.
    grid_step_um, grid_radius_um, source_depths_um, percentile
        ``grid_convolution``: grid spacing, extent around the peak channel, source depths (µm), and
        the share (%) of best-scoring sources averaged.
    enforce_decrease : bool, default False
        ``monopolar_triangulation``: before the fit, cap each channel's feature at the largest
        feature of its adjacent channels (within its nearest-contact distance) that are closer to
        the peak channel, so amplitudes decrease away from the peak channel (limits the pull of an
        overlapping spike on outer channels; after SpikeInterface's ``enforce_decrease``). Off by
        default: on ground truth it changed the median error by -0.04 µm (SpikeInterface's
        generator) and +0.36 µm (``spkfn.generate``).
    chunk_size, n_jobs, progress
        Streaming (see :func:`spkfn.core.chunks.map_chunks`).

    Returns
    -------
    numpy.ndarray
        Structured array, one row per peak in the order given, fields
        :data:`LOCATION_DTYPES` ``[method]``: ``x``, ``y`` (µm, probe plane), and ``z`` (µm from the
        plane) and ``alpha`` (µV·µm) for triangulation, ``z`` for grid convolution. Peaks whose
        features are all zero get the peak channel's position (``z``, ``alpha`` NaN).

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> from spkfn.detection import PEAK_DTYPE
    >>> loc = np.array([[0, 0], [0, 20], [0, 40], [30, 20]], float)
    >>> x = np.zeros((100, 4), "float32")
    >>> x[50] = -100.0 / np.sqrt(((loc - [10.0, 25.0]) ** 2).sum(1) + 15.0 ** 2)  # source at (10, 25, 15)
    >>> rec = from_array(x, sampling_frequency=30000.0, channel_locations=loc)
    >>> peaks = np.zeros(1, PEAK_DTYPE); peaks["sample_index"] = 50; peaks["channel_index"] = 1
    >>> out = localize_peaks(rec, peaks, method="monopolar_triangulation", progress=False)
    >>> np.round([out["x"][0], out["y"][0], out["z"][0]], 1).tolist()
    [10.0, 25.0, 15.0]
    """
    check_recording(recording)
    check_choice("method", method, LOCALIZATION_METHODS)
    check_choice("feature", feature, tuple(_FEATURES))
    check_streaming(chunk_size, n_jobs, progress)
    check_bool("enforce_decrease", enforce_decrease)
    radius_um = check_number("radius_um", radius_um, min_value=0)
    fs = float(recording.attrs["sampling_frequency"])
    nbefore = ms_to_samples(check_number("ms_before", ms_before, min_value=0), fs)
    nafter = ms_to_samples(check_number("ms_after", ms_after, min_value=0), fs)
    if nbefore + nafter < 1:
        raise ValueError(f"ms_before + ms_after must span at least one sample; got {ms_before} + {ms_after} ms.")
    max_distance_um = check_number("max_distance_um", max_distance_um, min_value=0, min_inclusive=False)
    loc = require_geometry(recording, f"localize_peaks(method={method!r})")
    n_ch = loc.shape[0]
    peaks = check_peaks(peaks, n_channels=n_ch, n_samples=num_samples(recording))
    dtype = LOCATION_DTYPES[method]
    if peaks.size == 0:
        return np.zeros(0, dtype=dtype)
    neighbours = _neighbours_from_locations(loc, recording.coords["group"].values, radius_um)
    n_nb = (neighbours >= 0).sum(1)
    used = np.unique(peaks["channel_index"])
    if np.all(n_nb[used] < 2):
        raise ValueError(
            f"radius_um={radius_um:g} selects no channel besides the peak's own channel; a position needs "
            "several channels: increase radius_um (e.g. 75 µm).")
    grid = None
    if method == "grid_convolution":
        grid = _grid_weights(loc, neighbours, recording.coords["group"].values,
                             step_um=check_number("grid_step_um", grid_step_um, min_value=0, min_inclusive=False),
                             radius_um=check_number("grid_radius_um", grid_radius_um, min_value=0),
                             depths=_check_depths(source_depths_um))
        percentile = check_number("percentile", percentile, min_value=0, max_value=100, min_inclusive=False)
    parents = _radial_parents(loc, neighbours) if (method == "monopolar_triangulation" and enforce_decrease) else None
    peaks_sorted, order = sorted_peaks(peaks)
    gain, offset = scaling(recording)
    code = _FEATURES[feature]
    width = len(dtype.names)

    def _chunk(traces, rel, sub):
        chans = sub["channel_index"].astype(np.int64)
        feats = _gather_features(traces, gain, offset, rel, chans, neighbours, nbefore, nafter, code)
        out = np.empty((rel.size, width), dtype=np.float64)
        if method == "center_of_mass":
            _center_of_mass(feats, chans, neighbours, loc, out)
        elif method == "monopolar_triangulation":
            if parents is not None:
                _enforce_decrease(feats, chans, parents)
            _monopolar(feats, chans, neighbours, loc, max_distance_um, out)
        else:
            positions, weights, depths, cand = grid
            _grid(feats, chans, neighbours, loc, positions, weights, depths, cand, percentile, out)
        return out

    parts = map_peaks(_chunk, recording, peaks_sorted, margin_samples=max(nbefore, nafter), chunk_size=chunk_size,
                      n_jobs=n_jobs, progress=progress, desc=f"localize ({method})")
    values = np.concatenate(parts)
    if order is not None:
        inv = np.empty_like(order)
        inv[order] = np.arange(order.size)
        values = values[inv]
    result = np.zeros(values.shape[0], dtype=dtype)
    for k, name in enumerate(dtype.names):
        result[name] = values[:, k]
    return result


def _check_depths(source_depths_um) -> np.ndarray:
    d = np.atleast_1d(np.asarray(source_depths_um, dtype=np.float64))
    if d.ndim != 1 or d.size == 0 or not np.all(np.isfinite(d)) or np.any(d < 0):
        raise ValueError(f"source_depths_um must be a non-empty list of distances >= 0 µm; got {source_depths_um!r}.")
    return d


def _radial_parents(loc: np.ndarray, neighbours: np.ndarray, factor: float = 1.0) -> np.ndarray:
    """``(n_ch, k_max, p_max)`` slots (in each channel's neighbour row) of the "parents" of each
    neighbour: the channels of the row that are closer to the row's channel and within ``factor``
    × the neighbour's nearest-contact distance of it. ``-1`` padded."""
    d = np.sqrt(((loc[:, None] - loc[None]) ** 2).sum(-1))
    dd = d.copy()
    np.fill_diagonal(dd, np.inf)
    nn = dd.min(1) if loc.shape[0] > 1 else np.ones(1)
    n_ch, kmax = neighbours.shape
    valid = neighbours >= 0
    nb = np.where(valid, neighbours, 0)
    d0 = np.where(valid, np.take_along_axis(d, nb, axis=1), np.inf)      # distance to the row's channel
    dpair = d[nb[:, :, None], nb[:, None, :]]                             # (n_ch, k, k)
    is_parent = ((d0[:, None, :] < d0[:, :, None] - 1e-9)
                 & (dpair <= factor * nn[nb][:, :, None] + 1e-9)
                 & valid[:, None, :] & valid[:, :, None])
    pmax = max(1, int(is_parent.sum(2).max()))
    # parents' slots first (stable order), padded with -1
    order = np.argsort(~is_parent, axis=2, kind="stable")[:, :, :pmax]
    ok = np.take_along_axis(is_parent, order, axis=2)
    return np.where(ok, order, -1).astype(np.int64)


# --------------------------------------------------------------------------------------------
# kernels


@njit(nogil=True, cache=True)
def _enforce_decrease(feats, chans, parents):
    """In place: each neighbour's feature is capped at the max over its parents (rows are ordered
    by distance to the peak channel, so parents are final when a child is visited)."""
    kmax = parents.shape[1]
    pmax = parents.shape[2]
    for p in range(feats.shape[0]):
        par = parents[chans[p]]
        for k in range(1, kmax):
            mx = -1.0
            for j in range(pmax):
                q = par[k, j]
                if q < 0:
                    break
                if feats[p, q] > mx:
                    mx = feats[p, q]
            if mx >= 0 and feats[p, k] > mx:
                feats[p, k] = mx


@njit(nogil=True, cache=True)
def _center_of_mass(feats, chans, neighbours, loc, out):
    for p in range(feats.shape[0]):
        row = neighbours[chans[p]]
        sw = 0.0
        sx = 0.0
        sy = 0.0
        for k in range(row.shape[0]):
            c = row[k]
            if c < 0:
                break
            w = feats[p, k]
            sw += w
            sx += w * loc[c, 0]
            sy += w * loc[c, 1]
        if sw > 0:
            out[p, 0] = sx / sw
            out[p, 1] = sy / sw
        else:
            out[p, 0] = loc[chans[p], 0]
            out[p, 1] = loc[chans[p], 1]


@njit(nogil=True, cache=True)
def _solve4(a, b):
    """Solve the 4×4 symmetric positive system ``a x = b`` (Gaussian elimination, partial pivoting).
    Returns ``(x, ok)``."""
    m = a.copy()
    v = b.copy()
    n = 4
    for i in range(n):
        piv = i
        for r in range(i + 1, n):
            if abs(m[r, i]) > abs(m[piv, i]):
                piv = r
        if abs(m[piv, i]) < 1e-300:
            return v, False
        if piv != i:
            for cc in range(n):
                t = m[i, cc]
                m[i, cc] = m[piv, cc]
                m[piv, cc] = t
            t = v[i]
            v[i] = v[piv]
            v[piv] = t
        for r in range(i + 1, n):
            f = m[r, i] / m[i, i]
            for cc in range(i, n):
                m[r, cc] -= f * m[i, cc]
            v[r] -= f * v[i]
    x = np.zeros(n)
    for i in range(n - 1, -1, -1):
        s = v[i]
        for cc in range(i + 1, n):
            s -= m[i, cc] * x[cc]
        x[i] = s / m[i, i]
    return x, True


@njit(nogil=True, cache=True)
def _cost(theta, a, px, py, k):
    s = 0.0
    for i in range(k):
        dx = theta[0] - px[i]
        dy = theta[1] - py[i]
        d = np.sqrt(dx * dx + dy * dy + theta[2] * theta[2])
        r = theta[3] / d - a[i]
        s += r * r
    return s


@njit(nogil=True, cache=True)
def _monopolar(feats, chans, neighbours, loc, max_distance, out):
    """Levenberg-Marquardt fit of ``a_i ≈ alpha / sqrt((x-x_i)² + (y-y_i)² + z²)`` per peak.

    Data are scaled by their maximum (alpha is scaled back); bounds are enforced by projection."""
    kmax = neighbours.shape[1]
    px = np.empty(kmax)
    py = np.empty(kmax)
    a = np.empty(kmax)
    jac = np.empty((kmax, 4))
    res = np.empty(kmax)
    lo = np.empty(4)
    hi = np.empty(4)
    for p in range(feats.shape[0]):
        row = neighbours[chans[p]]
        k = 0
        amax = 0.0
        for j in range(kmax):
            c = row[j]
            if c < 0:
                break
            px[k] = loc[c, 0]
            py[k] = loc[c, 1]
            a[k] = feats[p, j]
            if a[k] > amax:
                amax = a[k]
            k += 1
        if amax <= 0 or k < 2:
            out[p, 0] = loc[chans[p], 0]
            out[p, 1] = loc[chans[p], 1]
            out[p, 2] = np.nan
            out[p, 3] = np.nan
            continue
        sw = 0.0
        x0 = 0.0
        y0 = 0.0
        for i in range(k):
            a[i] /= amax
            sw += a[i]
            x0 += a[i] * px[i]
            y0 += a[i] * py[i]
        x0 /= sw
        y0 /= sw
        z0 = 20.0
        # Initial alpha: linear least squares given (x0, y0, z0).
        num = 0.0
        den = 0.0
        for i in range(k):
            q = 1.0 / np.sqrt((x0 - px[i]) ** 2 + (y0 - py[i]) ** 2 + z0 * z0)
            num += q * a[i]
            den += q * q
        theta = np.array([x0, y0, z0, num / den])
        lo[0] = x0 - max_distance
        hi[0] = x0 + max_distance
        lo[1] = y0 - max_distance
        hi[1] = y0 + max_distance
        lo[2] = 1.0
        hi[2] = 10.0 * max_distance
        lo[3] = 0.0
        hi[3] = 100.0 * max_distance
        cost = _cost(theta, a, px, py, k)
        lam = 1e-3
        rel = 1.0
        for _it in range(100):
            # Residuals r_i = alpha / d_i - a_i and their Jacobian.
            for i in range(k):
                dx = theta[0] - px[i]
                dy = theta[1] - py[i]
                d2 = dx * dx + dy * dy + theta[2] * theta[2]
                d = np.sqrt(d2)
                inv3 = 1.0 / (d2 * d)
                res[i] = theta[3] / d - a[i]
                jac[i, 0] = -theta[3] * dx * inv3
                jac[i, 1] = -theta[3] * dy * inv3
                jac[i, 2] = -theta[3] * theta[2] * inv3
                jac[i, 3] = 1.0 / d
            jtj = np.zeros((4, 4))
            g = np.zeros(4)
            for i in range(k):
                for u in range(4):
                    g[u] += jac[i, u] * res[i]
                    for v in range(u, 4):
                        jtj[u, v] += jac[i, u] * jac[i, v]
            for u in range(4):
                for v in range(u):
                    jtj[u, v] = jtj[v, u]
            improved = False
            while lam < 1e10:
                m = jtj.copy()
                for u in range(4):
                    m[u, u] += lam * max(jtj[u, u], 1e-12)
                step, ok = _solve4(m, -g)
                if not ok:
                    lam *= 10.0
                    continue
                cand = theta + step
                for u in range(4):
                    cand[u] = min(max(cand[u], lo[u]), hi[u])
                new_cost = _cost(cand, a, px, py, k)
                if new_cost < cost:
                    rel = (cost - new_cost) / max(cost, 1e-300)
                    theta = cand
                    cost = new_cost
                    lam = max(lam * 0.3, 1e-12)
                    improved = True
                    break
                lam *= 10.0
            if not improved or rel < 1e-10:
                break
        out[p, 0] = theta[0]
        out[p, 1] = theta[1]
        out[p, 2] = theta[2]
        out[p, 3] = theta[3] * amax


def _grid_weights(loc, neighbours, groups, *, step_um, radius_um, depths):
    """Grid sources and their footprints.

    Returns ``positions (n_grid, 2)``, ``weights (n_ch, n_depths, g_max, k_max)`` float32
    (unit-norm ``1/sqrt(d² + z²)`` over each channel's neighbours), ``depths`` and the candidate
    table ``cand (n_ch, g_max)`` (grid indices within ``radius_um`` of each channel, ``-1`` padded).
    """
    lo = loc.min(0) - radius_um
    hi = loc.max(0) + radius_um
    gx = np.arange(lo[0], hi[0] + step_um / 2, step_um)
    gy = np.arange(lo[1], hi[1] + step_um / 2, step_um)
    positions = np.column_stack([np.repeat(gx, gy.size), np.tile(gy, gx.size)])
    d = np.sqrt(((loc[:, None, :] - positions[None, :, :]) ** 2).sum(-1))  # (n_ch, n_grid)
    within = d <= radius_um + 1e-9
    gmax = max(1, int(within.sum(1).max()))
    cand = np.full((loc.shape[0], gmax), -1, dtype=np.int64)
    for c in range(loc.shape[0]):  # one row per channel
        idx = np.flatnonzero(within[c])
        cand[c, :idx.size] = idx
    valid_nb = neighbours >= 0
    nb = np.where(valid_nb, neighbours, 0)
    valid_g = cand >= 0
    g = np.where(valid_g, cand, 0)
    # squared distance from each candidate source to each neighbour channel: (n_ch, g_max, k_max)
    d2 = ((positions[g][:, :, None, :] - loc[nb][:, None, :, :]) ** 2).sum(-1)
    w = 1.0 / np.sqrt(d2[:, None, :, :] + np.maximum(depths, 1.0)[None, :, None, None] ** 2)
    w *= valid_nb[:, None, None, :] & valid_g[:, None, :, None]
    norm = np.linalg.norm(w, axis=3, keepdims=True)
    w = np.divide(w, norm, out=np.zeros_like(w), where=norm > 0)
    return positions, w.astype(np.float32), depths, cand


@njit(nogil=True, cache=True)
def _grid(feats, chans, neighbours, loc, positions, weights, depths, cand, percentile, out):
    nz = weights.shape[1]
    gmax = weights.shape[2]
    kmax = weights.shape[3]
    scores = np.empty(nz * gmax)
    for p in range(feats.shape[0]):
        c = chans[p]
        n_valid = 0
        for z in range(nz):
            for j in range(gmax):
                if cand[c, j] < 0:
                    scores[z * gmax + j] = -np.inf
                    continue
                s = 0.0
                for k in range(kmax):
                    s += weights[c, z, j, k] * feats[p, k]
                scores[z * gmax + j] = s
                n_valid += 1
        if n_valid == 0:
            out[p, 0] = loc[c, 0]
            out[p, 1] = loc[c, 1]
            out[p, 2] = np.nan
            continue
        srt = np.sort(scores)  # -inf first
        m = scores.shape[0]
        keep = max(1, int(np.ceil(n_valid * percentile / 100.0)))
        thr = srt[m - keep - 1] if keep < n_valid else srt[m - n_valid] - 1e-12
        if not np.isfinite(thr):
            thr = srt[m - n_valid] - 1e-12
        sw = 0.0
        sx = 0.0
        sy = 0.0
        sz = 0.0
        for z in range(nz):
            for j in range(gmax):
                s = scores[z * gmax + j]
                if s > thr:
                    w = s - thr
                    gi = cand[c, j]
                    sw += w
                    sx += w * positions[gi, 0]
                    sy += w * positions[gi, 1]
                    sz += w * depths[z]
        if sw > 0:
            out[p, 0] = sx / sw
            out[p, 1] = sy / sw
            out[p, 2] = sz / sw
        else:
            out[p, 0] = loc[c, 0]
            out[p, 1] = loc[c, 1]
            out[p, 2] = np.nan
