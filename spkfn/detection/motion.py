"""Motion (drift) of the tissue along the probe: estimation from peaks, cleaning, correction.

The motion is an ``xarray.DataArray`` with dims ``("time_bin", "depth_bin")`` holding the
displacement (µm) of the tissue along the probe's depth axis ``y``: a unit whose reference depth is
``y`` appears at ``y + motion(t, y)``. Coords: ``time_bin`` (s, bin centres, on the recording's
clock), ``depth_bin`` (µm, centres of the spatial windows; one bin for rigid motion). A recording
with several groups (shanks, probes) gets one motion per group, stacked along a leading ``group``
dim: ``("group", "time_bin", "depth_bin")``. See ``docs/motion.md``.

Functions
---------
- :func:`estimate_motion`: from a recording (peaks are detected and localised first) or from
  ``(peaks, peak_locations)``, by ``"dredge"`` (default), ``"decentralized"`` or
  ``"iterative_template"``.
- :func:`clean_motion`: fill gaps, remove glitches, smooth, re-reference.
- :func:`interpolate_motion`: the displacement at any times and depths.
- :func:`correct_peak_locations`: peak depths in the reference frame (``y - motion(t, y)``).
- :func:`correct_motion`: a motion-corrected recording, lazily, chunk by chunk.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import xarray as xr

from ..core.chunks import resolve_n_jobs
from ..core.validate import check_bool, check_choice, check_int, check_number
from ..io.recording import channel_locations as _channel_locations
from ..io.recording import check_recording, has_geometry, num_samples, scale_to_uV
from . import _motion_kernels as K

__all__ = [
    "MOTION_METHODS",
    "INTERPOLATION_METHODS",
    "DEFAULT_DETECT_KWARGS",
    "DEFAULT_LOCALIZE_KWARGS",
    "estimate_motion",
    "clean_motion",
    "interpolate_motion",
    "correct_peak_locations",
    "correct_motion",
    "check_motion",
]

logger = logging.getLogger(__name__)

#: Motion estimation methods.
MOTION_METHODS = ("dredge", "decentralized", "iterative_template")
#: Spatial interpolation methods of :func:`correct_motion`.
INTERPOLATION_METHODS = ("kriging", "linear", "nearest")
_WIN_SHAPES = ("gaussian", "rect", "triangle")
_WEIGHTS = ("amplitude", "log_amplitude", "count")
_BORDER_MODES = ("extrapolate", "zeros", "remove_channels")

#: Detection and localisation used when :func:`estimate_motion` is given a recording.
DEFAULT_DETECT_KWARGS = {"method": "locally_exclusive", "peak_sign": "neg", "detect_threshold": 8.0,
                         "exclude_sweep_ms": 0.4, "radius_um": 80.0}
DEFAULT_LOCALIZE_KWARGS = {"method": "monopolar_triangulation"}


# ============================================================================================ estimate


def estimate_motion(
    data,
    *,
    method: str = "dredge",
    rigid: bool = False,
    bin_s: float = 2.0,
    bin_um: float = 5.0,
    win_shape: str = "gaussian",
    win_step_um: float = 200.0,
    win_scale_um: float = 200.0,
    win_margin_um: float = 100.0,
    max_displacement_um: float = 100.0,
    max_residual_um: float | None = 30.0,
    time_horizon_s: float | None = None,
    min_correlation: float = 0.1,
    weight: str = "amplitude",
    depth_smooth_um: float = 5.0,
    time_smooth_s: float = 0.0,
    lambda_t: float = 0.03,
    lambda_s: float = 4.0,
    robust_iterations: int = 5,
    robust_sigma: float = 2.0,
    num_iterations: int = 10,
    num_amplitude_bins: int = 5,
    reference: str | float | None = "median",
    recording: xr.DataArray | None = None,
    sampling_frequency: float | None = None,
    duration_s: float | None = None,
    t_start_s: float = 0.0,
    channel_locations=None,
    channel_groups=None,
    by_group: bool = True,
    detect_kwargs: dict | None = None,
    localize_kwargs: dict | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
) -> xr.DataArray:
    """Estimate the motion of the tissue along the probe from the peaks' depths over time.

    The peaks are binned into a raster (time bins of ``bin_s`` × depth bins of ``bin_um``,
    weighted by ``weight``, smoothed along depth); the raster's rows are registered to each other:

    - ``"decentralized"`` (Varol et al. 2021): for every pair of time bins ``(i, j)`` the
      displacement ``D_ij`` maximising their normalised cross-correlation over depth (within
      ``max_displacement_um``) and that correlation ``C_ij``; then the displacements ``p`` that
      best explain all pairs, ``min_p Σ C_ij (p_i - p_j - D_ij)² + lambda_t Σ (p_t+1 - p_t)²``,
      with pairs whose residual exceeds ``robust_sigma`` robust standard deviations dropped and the
      problem solved again (``robust_iterations`` solves). Pairs with ``C_ij < min_correlation``
      are left out. Each non-rigid window is solved on its own.
    - ``"dredge"`` (Windolf et al. 2023, DREDge): the same pairwise displacements, with soft
      weights ``U_ij = 1 / (1 / C_ij² + 1 / n_i + 1 / n_j)`` (``C_ij² = 0`` below
      ``min_correlation``; ``n_t`` the number of peaks in the window at time ``t``, so that
      sparse time bins count less), a temporal prior ``lambda_t`` and a spatial prior
      ``lambda_s`` coupling neighbouring windows (``Σ (p_b+1,t - p_b,t)²``), solved jointly and
      exactly (a block-tridiagonal system); no trimming. Numpy/scipy only (no PyTorch).
    - ``"iterative_template"`` (Kilosort 2.5, Steinmetz et al. 2021): a raster per time bin of
      depth × amplitude class (``num_amplitude_bins`` quantile classes of ``log |amplitude|``);
      each time bin is registered to a template (the mean of the registered rasters), rebuilt over
      ``num_iterations`` rounds (rigid); then each window of each registered time bin is
      registered to the template over ``±max_residual_um`` (non-rigid), its correlations
      smoothed over neighbouring windows (Gaussian, one window) and, with ``time_smooth_s``,
      over time before the best shift is taken.

    Non-rigid motion (``rigid=False``) uses overlapping windows along depth, centred every
    ``win_step_um`` (at most) from ``win_margin_um`` inside the top and bottom contacts, of shape
    ``win_shape`` and scale ``win_scale_um``. For ``"dredge"`` and ``"decentralized"`` a rigid
    registration (over ``±max_displacement_um``) comes first and the windows register the
    remainder over ``±max_residual_um`` (``max_residual_um=None``: the windows search the whole
    ``±max_displacement_um`` themselves, ~5× slower). Best shifts are refined below one bin by a
    parabola through the correlation.

    Parameters
    ----------
    data : xarray.DataArray or (peaks, peak_locations)
        A preprocessed recording (peaks are then detected with
        ``spkfn.detection.detect_peaks(recording, **detect_kwargs)`` and localised with
        ``localize_peaks(recording, peaks, **localize_kwargs)``), or a pair: ``peaks`` (structured
        array with ``sample_index``; ``amplitude`` (µV) for amplitude weights; ``channel_index``
        for per-group motion) and ``peak_locations`` (structured array with a ``y`` field, or a
        1-D array of depths, µm), one row per peak.
    method : {"dredge", "decentralized", "iterative_template"}, default "dredge"
    rigid : bool, default False
        One displacement per time bin for the whole probe (one ``depth_bin``).
    bin_s : float, default 2.0
        Time bin (s).
    bin_um : float, default 5.0
        Depth bin of the raster (µm); displacements are resolved below it.
    win_shape : {"gaussian", "rect", "triangle"}, default "gaussian"
    win_step_um : float, default 200.0
        Largest spacing of window centres (µm).
    win_scale_um : float, default 200.0
        Gaussian: standard deviation; rect and triangle: full width (µm).
    win_margin_um : float, default 100.0
        Distance of the outer window centres from the extreme contacts, inwards (µm; may be < 0).
    max_displacement_um : float, default 100.0
        Largest displacement searched between two time bins (rigid stage) (µm).
    max_residual_um : float or None, default 30.0
        Largest non-rigid departure from the rigid motion searched in each window (µm).
    time_horizon_s : float, optional
        ``"dredge"``/``"decentralized"``: only time bins closer than this are compared.
    min_correlation : float, default 0.1
        Pairs (or, for ``"iterative_template"``, time bins) whose best correlation is below this
        are ignored.
    weight : {"amplitude", "log_amplitude", "count"}, default "amplitude"
        What each peak adds to the raster: ``|amplitude|`` (µV), ``log(1 + |amplitude|)``, or 1.
    depth_smooth_um : float, default 5.0
        Gaussian smoothing (standard deviation, µm) of the raster along depth.
    time_smooth_s : float, default 0.0
        Gaussian smoothing (standard deviation, s) of the raster along time
        (``"iterative_template"``: of the correlations with the template).
    lambda_t, lambda_s : float, default 0.03, 4.0
        Temporal and spatial prior strengths (``lambda_s``: ``"dredge"`` only), in units of the
        mean total pair weight of a time bin, so that their effect does not depend on the number
        of time bins: ``lambda_t = 0.03`` weighs a jump between consecutive bins like 3 % of a
        bin's evidence.
    robust_iterations : int, default 5
        ``"decentralized"``: number of solves with outlier trimming.
    robust_sigma : float, default 2.0
        ``"decentralized"``: trimming threshold (robust standard deviations).
    num_iterations : int, default 10
        ``"iterative_template"``: rounds of template building.
    num_amplitude_bins : int, default 5
        ``"iterative_template"``: amplitude classes of the raster.
    reference : "median", "mean", float or None, default "median"
        What zero displacement means: the median (or mean) position over time, per depth bin; a
        time (s), at which the motion is 0 at every depth; ``None``: as solved.
    recording : xarray.DataArray, optional
        With ``(peaks, peak_locations)``: the recording they come from, which gives
        ``sampling_frequency``, ``duration_s``, ``t_start_s``, the geometry and the groups.
    sampling_frequency : float, optional
        Hz; required with ``(peaks, peak_locations)`` when no ``recording`` is given.
    duration_s : float, optional
        Recording duration (s); default: the last peak's time.
    t_start_s : float, default 0.0
        Session time of sample 0 (s); ``time_bin`` is on this clock.
    channel_locations : array_like (n_channels, 2), optional
        Contact positions (µm): the depth range covered by the windows. Default: the range of the
        peak depths.
    channel_groups : array_like (n_channels,), optional
        Group of each channel; with ``peaks["channel_index"]`` it splits the peaks by group.
    by_group : bool, default True
        One motion per group (a ``group`` dim when there are several); ``False``: one motion
        from all peaks.
    detect_kwargs, localize_kwargs : dict, optional
        Recording input only: arguments of ``detect_peaks`` and ``localize_peaks`` (defaults
        :data:`DEFAULT_DETECT_KWARGS`, :data:`DEFAULT_LOCALIZE_KWARGS`).
    n_jobs : int, optional
        Threads (default: all cores): detection and localisation, and the non-rigid windows'
        correlations. The result does not depend on it.
    progress : bool, default True
        Recording input only: progress bars of detection and localisation.

    Returns
    -------
    xarray.DataArray
        Motion, dims ``("time_bin", "depth_bin")`` (``("group", "time_bin", "depth_bin")`` with
        several groups), float64 µm. attrs: ``units``, ``method``, ``rigid``, ``direction``
        (``"y"``), ``bin_s``, ``sampling_frequency``, ``t_start_s``, ``duration_s``,
        ``num_peaks``, ``params`` (JSON of every parameter). Without any peak the motion is
        zero (a warning is logged).

    Notes
    -----
    Time bins are ``[t_start_s + k bin_s, t_start_s + (k + 1) bin_s)``, ``k < ceil(duration_s /
    bin_s)``. Pairwise correlations are weighted Pearson correlations over depth, computed for
    all lags at once as matrix products (BLAS), so the cost is ``T² × lags × depth bins`` for
    ``T`` time bins; ``time_horizon_s`` makes it linear in ``T``.

    References
    ----------
    Varol E. et al. (2021) Decentralized motion inference and registration of Neuropixel data.
    ICASSP 2021, 1085-1089. Windolf C. et al. (2023) DREDge: robust motion correction for
    high-density extracellular recordings across species. bioRxiv 2023.10.24.563768 (Nature
    Methods 2025). Steinmetz N. A. et al. (2021) Neuropixels 2.0. Science 372:eabf4588 (the
    Kilosort 2.5 registration).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> fs, n = 1000.0, 60
    >>> depths = np.repeat(rng.uniform(0, 400, 30), n)           # 30 units, 60 spikes each
    >>> times = np.tile(np.linspace(0, 59.9, n), 30)
    >>> shift = np.where(times >= 30, 10.0, 0.0)                  # the tissue moves 10 µm at t = 30 s
    >>> peaks = np.zeros(times.size, [("sample_index", "int64"), ("amplitude", "float32")])
    >>> peaks["sample_index"] = np.round(times * fs)
    >>> peaks["amplitude"] = -50.0
    >>> motion = estimate_motion((peaks, depths + shift), rigid=True, bin_s=5.0,
    ...                          sampling_frequency=fs, duration_s=60.0, reference=0.0)
    >>> motion.dims, motion.sizes["time_bin"]
    (('time_bin', 'depth_bin'), 12)
    >>> np.abs(motion.values[:, 0].round()).tolist()
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0]
    """
    check_choice("method", method, MOTION_METHODS)
    check_bool("rigid", rigid)
    check_bool("by_group", by_group)
    bin_s = check_number("bin_s", bin_s, min_value=0, min_inclusive=False)
    bin_um = check_number("bin_um", bin_um, min_value=0, min_inclusive=False)
    check_choice("win_shape", win_shape, _WIN_SHAPES)
    win_step_um = check_number("win_step_um", win_step_um, min_value=0, min_inclusive=False)
    win_scale_um = check_number("win_scale_um", win_scale_um, min_value=0, min_inclusive=False)
    win_margin_um = check_number("win_margin_um", win_margin_um)
    max_displacement_um = check_number("max_displacement_um", max_displacement_um, min_value=bin_um,
                                       hint="(it must span at least one depth bin, bin_um)")
    if max_residual_um is not None:
        max_residual_um = check_number("max_residual_um", max_residual_um, min_value=bin_um,
                                       hint="(at least one depth bin, bin_um; None searches max_displacement_um)")
    if time_horizon_s is not None:
        time_horizon_s = check_number("time_horizon_s", time_horizon_s, min_value=bin_s,
                                      hint="(at least one time bin, bin_s)")
    min_correlation = check_number("min_correlation", min_correlation, min_value=-1, max_value=1)
    check_choice("weight", weight, _WEIGHTS)
    depth_smooth_um = check_number("depth_smooth_um", depth_smooth_um, min_value=0)
    time_smooth_s = check_number("time_smooth_s", time_smooth_s, min_value=0)
    lambda_t = check_number("lambda_t", lambda_t, min_value=0)
    lambda_s = check_number("lambda_s", lambda_s, min_value=0)
    robust_iterations = check_int("robust_iterations", robust_iterations, min_value=1)
    robust_sigma = check_number("robust_sigma", robust_sigma, min_value=0, min_inclusive=False)
    num_iterations = check_int("num_iterations", num_iterations, min_value=1)
    num_amplitude_bins = check_int("num_amplitude_bins", num_amplitude_bins, min_value=1, max_value=100)
    _check_reference(reference)
    t_start_s = check_number("t_start_s", t_start_s)

    params = {
        "method": method, "rigid": rigid, "bin_s": bin_s, "bin_um": bin_um, "win_shape": win_shape,
        "win_step_um": win_step_um, "win_scale_um": win_scale_um, "win_margin_um": win_margin_um,
        "max_displacement_um": max_displacement_um, "max_residual_um": max_residual_um,
        "time_horizon_s": time_horizon_s, "min_correlation": min_correlation, "weight": weight,
        "depth_smooth_um": depth_smooth_um, "time_smooth_s": time_smooth_s, "lambda_t": lambda_t,
        "lambda_s": lambda_s, "robust_iterations": robust_iterations, "robust_sigma": robust_sigma,
        "num_iterations": num_iterations, "num_amplitude_bins": num_amplitude_bins,
        "reference": reference, "by_group": by_group,
    }

    # ---- inputs -> peaks, depths, context
    if isinstance(data, xr.DataArray):
        if recording is not None:
            raise ValueError("recording= is only for (peaks, peak_locations) input; the recording is already `data`.")
        recording = data
        peaks, depths = _detect_and_localize(recording, detect_kwargs, localize_kwargs, n_jobs=n_jobs,
                                             progress=progress)
        params["detect_kwargs"] = {**DEFAULT_DETECT_KWARGS, **(detect_kwargs or {})}
        params["localize_kwargs"] = {**DEFAULT_LOCALIZE_KWARGS, **(localize_kwargs or {})}
    elif isinstance(data, tuple | list) and len(data) == 2:
        if detect_kwargs or localize_kwargs:
            raise ValueError("detect_kwargs / localize_kwargs apply to recording input only; these peaks are already localised.")
        peaks, depths = _as_peaks_and_depths(data[0], data[1])
    else:
        raise ValueError(
            "data must be a recording (xarray.DataArray, dims ('time', 'channel')) or a pair "
            f"(peaks, peak_locations); got {type(data).__name__}"
            + (f" of length {len(data)}" if isinstance(data, tuple | list) else "") + "."
        )
    ctx = _context(peaks, depths, recording=recording, sampling_frequency=sampling_frequency, duration_s=duration_s,
                   t_start_s=t_start_s, channel_locations=channel_locations, channel_groups=channel_groups,
                   by_group=by_group)

    n_time = max(1, int(np.ceil(ctx["duration_s"] / bin_s - 1e-9)))
    time_bins = ctx["t_start_s"] + (np.arange(n_time) + 0.5) * bin_s
    times = peaks["sample_index"].astype(np.float64) / ctx["fs"]
    time_index = np.floor(times / bin_s).astype(np.int64)
    amp = np.abs(peaks["amplitude"].astype(np.float64)) if "amplitude" in peaks.dtype.names else None
    if weight != "count" and amp is None:
        raise ValueError(f"weight={weight!r} needs a peaks 'amplitude' field; use weight='count' for peaks without amplitudes.")
    wts = {"amplitude": amp, "log_amplitude": None if amp is None else np.log1p(amp),
           "count": np.ones(peaks.size)}[weight]

    lo_all, hi_all = ctx["depth_range_um"]
    if rigid:
        win_centres = np.array([0.5 * (lo_all + hi_all)])
    else:
        win_centres = _window_centres(lo_all + win_margin_um, hi_all - win_margin_um, win_step_um)

    groups = ctx["groups"]
    results = []
    n_threads = resolve_n_jobs(n_jobs)
    for g in groups:
        sel = ctx["peak_group"] == g if len(groups) > 1 else slice(None)
        glo, ghi = ctx["group_range_um"][g]
        values = _estimate_one(
            time_index[sel], depths[sel], wts[sel], None if amp is None else amp[sel], n_time=n_time,
            depth_range_um=(glo, ghi), win_centres=win_centres, method=method, rigid=rigid, bin_s=bin_s,
            bin_um=bin_um, win_shape=win_shape, win_scale_um=win_scale_um,
            max_displacement_um=max_displacement_um, max_residual_um=max_residual_um,
            time_horizon_s=time_horizon_s, min_correlation=min_correlation, depth_smooth_um=depth_smooth_um,
            time_smooth_s=time_smooth_s, lambda_t=lambda_t, lambda_s=lambda_s,
            robust_iterations=robust_iterations, robust_sigma=robust_sigma, num_iterations=num_iterations,
            num_amplitude_bins=num_amplitude_bins, n_jobs=n_threads,
        )
        values = _fill_nan(values, time_bins, win_centres)
        values = _apply_reference(values, time_bins, reference)
        results.append(values)

    attrs = {
        "units": "um", "method": method, "rigid": bool(rigid), "direction": "y", "bin_s": bin_s,
        "sampling_frequency": ctx["fs"], "t_start_s": ctx["t_start_s"], "duration_s": ctx["duration_s"],
        "num_peaks": int(peaks.size), "params": json.dumps(params),
    }
    coords = {"time_bin": time_bins, "depth_bin": win_centres}
    if len(groups) > 1:
        return xr.DataArray(np.stack(results), dims=("group", "time_bin", "depth_bin"),
                            coords={"group": np.asarray(groups), **coords}, name="motion", attrs=attrs)
    attrs["group"] = int(groups[0]) if ctx["has_groups"] else 0
    return xr.DataArray(results[0], dims=("time_bin", "depth_bin"), coords=coords, name="motion", attrs=attrs)


def _window_centres(lo: float, hi: float, step: float) -> np.ndarray:
    if hi <= lo:
        return np.array([0.5 * (lo + hi)])
    n = int(np.ceil((hi - lo) / step - 1e-9)) + 1
    return np.linspace(lo, hi, n)


def _estimate_one(time_index, depths, wts, amp, *, n_time, depth_range_um, win_centres, method, rigid, bin_s,
                  bin_um, win_shape, win_scale_um, max_displacement_um, max_residual_um, time_horizon_s,
                  min_correlation, depth_smooth_um, time_smooth_s, lambda_t, lambda_s, robust_iterations,
                  robust_sigma, num_iterations, num_amplitude_bins, n_jobs) -> np.ndarray:
    """Motion ``(n_time, n_windows)`` (µm, NaN where unknown) of one group's peaks.

    BLAS runs single-threaded inside (multi-threaded BLAS on small matrices is slower, and
    collapses when the cores are shared); windows run on ``n_jobs`` threads instead.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _estimate_one_kernel(
            time_index, depths, wts, amp, n_time=n_time, depth_range_um=depth_range_um, win_centres=win_centres,
            method=method, rigid=rigid, bin_s=bin_s, bin_um=bin_um, win_shape=win_shape, win_scale_um=win_scale_um,
            max_displacement_um=max_displacement_um, max_residual_um=max_residual_um, time_horizon_s=time_horizon_s,
            min_correlation=min_correlation, depth_smooth_um=depth_smooth_um, time_smooth_s=time_smooth_s,
            lambda_t=lambda_t, lambda_s=lambda_s, robust_iterations=robust_iterations, robust_sigma=robust_sigma,
            num_iterations=num_iterations, num_amplitude_bins=num_amplitude_bins, n_jobs=n_jobs)


def _estimate_one_kernel(time_index, depths, wts, amp, *, n_time, depth_range_um, win_centres, method, rigid, bin_s,
                         bin_um, win_shape, win_scale_um, max_displacement_um, max_residual_um, time_horizon_s,
                         min_correlation, depth_smooth_um, time_smooth_s, lambda_t, lambda_s, robust_iterations,
                         robust_sigma, num_iterations, num_amplitude_bins, n_jobs) -> np.ndarray:
    B = win_centres.size
    if depths.size == 0:
        logger.warning("estimate_motion: no peaks (in this group); returning zero motion.")
        return np.zeros((n_time, B))
    lo, hi = depth_range_um
    margin = max_displacement_um
    edges = np.arange(lo - margin, hi + margin + bin_um, bin_um)
    if edges.size < 3:
        edges = np.array([lo - margin - bin_um, lo, hi + margin + bin_um])
    centres = 0.5 * (edges[1:] + edges[:-1])
    sig_z = depth_smooth_um / bin_um
    if rigid:
        windows = K.depth_windows(centres, win_centres, shape="flat", scale_um=1.0)
    else:
        windows = K.depth_windows(centres, win_centres, shape=win_shape, scale_um=win_scale_um)
    max_lag = max(1, int(round(max_displacement_um / bin_um)))
    res_lag = max_lag if max_residual_um is None else max(1, int(round(max_residual_um / bin_um)))

    if method == "iterative_template":
        if amp is None or num_amplitude_bins == 1:
            cls = np.zeros(depths.size, np.int64)
            n_cls = 1
        else:
            la = np.log(np.maximum(amp, 1e-12))
            q = np.quantile(la, np.linspace(0, 1, num_amplitude_bins + 1)[1:-1])
            cls = np.searchsorted(q, la, side="right")
            n_cls = num_amplitude_bins
        r = K.peak_raster(time_index, depths, wts, n_time=n_time, depth_edges_um=edges, n_extra=n_cls,
                          extra_index=cls)
        r = K.smooth_raster(r, sigma_depth_bins=sig_z, sigma_time_bins=0.0)
        sm = time_smooth_s / bin_s
        P, q = K.template_registration(r, windows, max_lag=max_lag, residual_lag=res_lag, n_iter=num_iterations,
                                       smooth_time_bins=sm, rigid=rigid, smooth_windows=1.0)
        P = P * bin_um
        P[q < min_correlation] = np.nan
        out = P.T
        if not rigid:
            counts = K.peak_raster(time_index, depths, np.ones(depths.size), n_time=n_time, depth_edges_um=edges)[:, 0]
            out = _invalidate_empty_windows(out, counts, windows, n_time)
        return out

    r = K.peak_raster(time_index, depths, wts, n_time=n_time, depth_edges_um=edges)[:, 0]
    counts = K.peak_raster(time_index, depths, np.ones(depths.size), n_time=n_time, depth_edges_um=edges)[:, 0]
    r = K.smooth_raster(r, sigma_depth_bins=sig_z, sigma_time_bins=time_smooth_s / bin_s)
    horizon = None if time_horizon_s is None else max(1, int(np.floor(time_horizon_s / bin_s)))

    kw = {"method": method, "bin_um": bin_um, "horizon": horizon, "min_correlation": min_correlation,
          "lambda_t": lambda_t, "lambda_s": lambda_s, "robust_iterations": robust_iterations,
          "robust_sigma": robust_sigma, "n_jobs": n_jobs}
    # rigid stage: one flat window over the whole raster
    flat = np.ones((1, r.shape[1]))
    p_rigid, known = _register(r, flat, counts.sum(1, dtype=np.float64)[None, :], max_lag=max_lag, **kw)
    p_rigid, known = p_rigid[0], known[0]
    if rigid:
        return np.where(known, p_rigid, np.nan)[:, None]

    if max_residual_um is None:
        base = np.zeros(n_time, np.int64)
        aligned, aligned_counts = r, counts
    else:
        base = np.round(np.nan_to_num(p_rigid - np.median(p_rigid[known]) if known.any() else p_rigid) / bin_um)
        base = base.astype(np.int64)
        aligned = K.shift_rows(r, base)
        aligned_counts = K.shift_rows(counts, base)
    n_win = windows @ aligned_counts.T.astype(np.float64)  # (B, T) window-weighted peak counts
    P, known = _register(aligned, windows, n_win, max_lag=res_lag, **kw)
    out = (P + base[None, :] * bin_um).T
    out[~known.T] = np.nan
    return _invalidate_empty_windows(out, counts, windows, n_time)


def _register(r, windows, n_peaks, *, max_lag, method, bin_um, horizon, min_correlation, lambda_t, lambda_s,
              robust_iterations, robust_sigma, n_jobs):
    """Decentralised registration of the raster's rows in each window: ``(P, known)``, ``(B, T)``,
    ``P`` in µm, ``known`` the time bins that took part in some pair (others are set by priors).

    Each window's pairwise matrices live only while its normal equations are formed, so memory is
    ``O(B T²)`` float64 (the normal equations) plus ``O(T²)`` per thread.
    """
    B, T = windows.shape[0], r.shape[0]
    As, rs = [None] * B, [None] * B
    P = np.zeros((B, T))
    known = np.zeros((B, T), bool)
    row_sum = np.zeros(B)
    row_cnt = np.zeros(B)
    diag = np.arange(T)

    def _one(b):
        D, C = K.pairwise_displacement(r, windows[b], max_lag=max_lag, horizon=horizon)
        D *= bin_um
        if method == "dredge":
            S = np.where(C >= min_correlation, C.astype(np.float64) ** 2, 0.0)
            n = n_peaks[b]
            with np.errstate(divide="ignore"):
                inv = 1.0 / S + (1.0 / n)[:, None] + (1.0 / n)[None, :]
            U = np.where(np.isfinite(inv) & (S > 0), 1.0 / inv, 0.0)
            U[diag, diag] = 0.0
            As[b], rs[b] = K.normal_equations(D, U)
            rows = np.diag(As[b])
            known[b] = rows > 0
            row_sum[b], row_cnt[b] = rows[rows > 0].sum(), (rows > 0).sum()
            return
        U = np.where(C >= max(min_correlation, 0.0), C.astype(np.float64), 0.0)
        U[diag, diag] = 0.0
        rows = (U + U.T).sum(1)
        scale = float(rows[rows > 0].mean()) if (rows > 0).any() else 1.0
        P[b], Uf = K.robust_solve(D, U, lambda_t=lambda_t * scale, n_iter=robust_iterations, sigma=robust_sigma,
                                  min_scale=bin_um, eps=1e-6 * scale)
        known[b] = (Uf > 0).any(1) | (Uf > 0).any(0)

    _run_threads(_one, range(B), n_jobs)
    if method == "dredge":
        # priors in units of the mean total pair weight of a time bin (see estimate_motion)
        scale = float(row_sum.sum() / row_cnt.sum()) if row_cnt.sum() else 1.0
        P = K.solve_blocks(As, rs, lambda_t=lambda_t * scale, lambda_s=lambda_s * scale, eps=1e-6 * scale)
    if lambda_t > 0:
        known |= known.any(1, keepdims=True)  # the temporal prior bridges gaps inside a window
    return P, known


def _run_threads(fn, items, n_jobs: int) -> None:
    """``fn(item)`` for every item, on ``n_jobs`` threads (results are written by ``fn``)."""
    items = list(items)
    if n_jobs <= 1 or len(items) <= 1:
        for it in items:
            fn(it)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=n_jobs) as ex:
        list(ex.map(fn, items))


def _invalidate_empty_windows(out, counts, windows, n_time):
    """NaN for windows that saw fewer than one peak per time bin on average (filled later)."""
    per_window = windows @ counts.sum(0).astype(np.float64)
    weak = per_window < max(n_time, 10)
    if weak.all():
        return out
    out = out.copy()
    out[:, weak] = np.nan
    return out


def _fill_nan(values: np.ndarray, time_bins: np.ndarray, depth_bins: np.ndarray) -> np.ndarray:
    """Fill NaN: along time by linear interpolation (edges held), then empty depth bins from the
    nearest filled one; all NaN -> 0."""
    v = np.array(values, dtype=np.float64)
    good_cols = []
    for c in range(v.shape[1]):
        ok = np.isfinite(v[:, c])
        if ok.all():
            good_cols.append(c)
        elif ok.any():
            v[~ok, c] = np.interp(time_bins[~ok], time_bins[ok], v[ok, c])
            good_cols.append(c)
    if not good_cols:
        return np.zeros_like(v)
    good = np.asarray(good_cols)
    for c in range(v.shape[1]):
        if c not in good_cols:
            v[:, c] = v[:, good[np.argmin(np.abs(depth_bins[good] - depth_bins[c]))]]
    return v


def _check_reference(reference):
    if reference is None or reference in ("median", "mean"):
        return
    if isinstance(reference, str) or isinstance(reference, bool):
        raise ValueError(f"reference must be 'median', 'mean', a time in s, or None; got {reference!r}.")
    check_number("reference", reference)


def _apply_reference(values: np.ndarray, time_bins: np.ndarray, reference) -> np.ndarray:
    if reference is None:
        return values
    if reference == "median":
        return values - np.median(values, axis=0, keepdims=True)
    if reference == "mean":
        return values - values.mean(axis=0, keepdims=True)
    at = np.array([np.interp(float(reference), time_bins, values[:, c]) for c in range(values.shape[1])])
    return values - at[None, :]


# -------------------------------------------------------------------------------------------- inputs


def _as_peaks_and_depths(peaks, locations) -> tuple[np.ndarray, np.ndarray]:
    peaks = np.asarray(peaks)
    if peaks.dtype.names is None or "sample_index" not in peaks.dtype.names:
        raise ValueError(
            "peaks must be a structured array with a 'sample_index' field (spkfn.detection.detect_peaks "
            f"output); got dtype {peaks.dtype}."
        )
    peaks = peaks.reshape(-1)
    loc = np.asarray(locations)
    if loc.dtype.names is not None:
        if "y" not in loc.dtype.names:
            raise ValueError(
                f"peak_locations must have a 'y' field (depth along the probe, µm); got fields {loc.dtype.names}."
            )
        depths = loc["y"].reshape(-1).astype(np.float64)
    else:
        try:
            depths = loc.astype(np.float64).reshape(-1) if loc.ndim == 1 else None
        except (TypeError, ValueError):
            depths = None
        if depths is None:
            raise ValueError(
                "peak_locations must be a structured array with a 'y' field (localize_peaks output) or a "
                f"1-D array of depths (µm); got shape {loc.shape}, dtype {loc.dtype}."
            )
    if depths.size != peaks.size:
        raise ValueError(f"peak_locations has {depths.size} rows but peaks has {peaks.size}; give one location per peak.")
    if peaks.size and not np.all(np.isfinite(depths)):
        raise ValueError(
            f"peak_locations has {int((~np.isfinite(depths)).sum())} non-finite depths; drop those peaks first."
        )
    if peaks.size and peaks["sample_index"].min() < 0:
        raise ValueError("peaks sample_index must be >= 0 (samples from the recording's start).")
    return peaks, depths


def _context(peaks, depths, *, recording, sampling_frequency, duration_s, t_start_s, channel_locations, channel_groups,
             by_group) -> dict:
    """Sampling rate, clock, depth ranges and peak groups for the peaks."""
    ctx = {}
    loc = groups = None
    if recording is not None:
        check_recording(recording)
        ctx["fs"] = float(recording.attrs["sampling_frequency"])
        ctx["duration_s"] = num_samples(recording) / ctx["fs"]
        ctx["t_start_s"] = float(recording.coords["time"].values[0]) if num_samples(recording) else float(t_start_s)
        if has_geometry(recording):
            loc = _channel_locations(recording)
        groups = recording.coords["group"].values
        if peaks.size and peaks["sample_index"].max() >= num_samples(recording):
            raise ValueError(
                f"peaks sample_index goes up to {int(peaks['sample_index'].max())} but the recording has "
                f"{num_samples(recording)} samples; were these peaks found on another recording?"
            )
    else:
        if sampling_frequency is None:
            raise ValueError(
                "estimate_motion((peaks, peak_locations)) needs sampling_frequency= (Hz) or recording= to "
                "convert sample indices to seconds."
            )
        ctx["fs"] = check_number("sampling_frequency", sampling_frequency, min_value=0, min_inclusive=False)
        ctx["t_start_s"] = float(t_start_s)
        if duration_s is None:
            if peaks.size == 0:
                raise ValueError("no peaks and no duration_s: give duration_s= (or recording=) so the time bins are known.")
            duration_s = (float(peaks["sample_index"].max()) + 1.0) / ctx["fs"]
        ctx["duration_s"] = duration_s
    if duration_s is not None:
        ctx["duration_s"] = check_number("duration_s", duration_s, min_value=0, min_inclusive=False)
    if channel_locations is not None:
        loc = np.asarray(channel_locations, dtype=np.float64)
        if loc.ndim != 2 or loc.shape[1] < 2 or not np.all(np.isfinite(loc)):
            raise ValueError(f"channel_locations must be a finite (n_channels, 2) array (µm); got shape {loc.shape}.")
    if channel_groups is not None:
        groups = np.asarray(channel_groups).reshape(-1)
        if loc is not None and groups.size != loc.shape[0]:
            raise ValueError(f"channel_groups has {groups.size} values for {loc.shape[0]} channel locations.")
    has_ch = "channel_index" in peaks.dtype.names
    n_ch = groups.size if groups is not None else (loc.shape[0] if loc is not None else None)
    if has_ch and n_ch is not None and peaks.size:
        c = peaks["channel_index"]
        if c.min() < 0 or c.max() >= n_ch:
            raise ValueError(f"peaks channel_index must be in [0, {n_ch}); got values in [{c.min()}, {c.max()}].")
    uniq = np.unique(groups) if groups is not None else np.array([0])
    per_group = groups is not None and uniq.size > 1 and by_group
    if per_group and not has_ch:
        raise ValueError(
            "the channels belong to several groups but peaks have no 'channel_index' to split them; "
            "add it, or pass by_group=False for one motion over all groups."
        )
    ctx["has_groups"] = groups is not None and (per_group or uniq.size == 1)
    ctx["groups"] = uniq.tolist() if per_group else [uniq[0]]
    ctx["peak_group"] = groups[peaks["channel_index"]] if per_group else None
    if loc is None and not depths.size:
        raise ValueError(
            "no peaks and no geometry: give channel_locations= (or a recording with a probe) so the depth "
            "range is known."
        )
    ranges = {}
    for g in ctx["groups"]:
        if loc is not None:
            yy = loc[groups == g, 1] if per_group else loc[:, 1]
        else:
            yy = depths[ctx["peak_group"] == g] if per_group else depths
        ranges[g] = (float(yy.min()), float(yy.max())) if yy.size else (0.0, 0.0)
    ctx["group_range_um"] = ranges
    ctx["depth_range_um"] = (min(r[0] for r in ranges.values()), max(r[1] for r in ranges.values()))
    return ctx


def _detect_and_localize(recording, detect_kwargs, localize_kwargs, *, n_jobs, progress):
    check_recording(recording)
    if not has_geometry(recording):
        raise ValueError(
            "estimate_motion needs channel positions to localise peaks but the recording has no geometry "
            "(no 'x'/'y' coords); attach a probe with spkfn.io.set_probe(rec, probe)."
        )
    try:
        from .localization import localize_peaks
        from .peaks import detect_peaks
    except ImportError as e:  # pragma: no cover - until detection is merged
        raise ImportError(
            "estimate_motion(recording) needs spkfn.detection.detect_peaks and localize_peaks, which this "
            "installation lacks; pass (peaks, peak_locations) instead."
        ) from e
    dk = {**DEFAULT_DETECT_KWARGS, **(detect_kwargs or {})}
    lk = {**DEFAULT_LOCALIZE_KWARGS, **(localize_kwargs or {})}
    peaks = detect_peaks(recording, n_jobs=n_jobs, progress=progress, **dk)
    locs = localize_peaks(recording, peaks, n_jobs=n_jobs, progress=progress, **lk)
    keep = np.isfinite(locs["y"])
    return peaks[keep], locs["y"][keep].astype(np.float64)


# ============================================================================================ motion object


def check_motion(motion) -> xr.DataArray:
    """Check that ``motion`` follows the motion layout; return it unchanged.

    Dims ``("time_bin", "depth_bin")`` or ``("group", "time_bin", "depth_bin")``, increasing
    ``time_bin`` and ``depth_bin`` coords, finite values.

    >>> import numpy as np, xarray as xr
    >>> m = xr.DataArray(np.zeros((2, 1)), dims=("time_bin", "depth_bin"),
    ...                  coords={"time_bin": [0.5, 1.5], "depth_bin": [100.0]})
    >>> check_motion(m) is m
    True
    """
    if not isinstance(motion, xr.DataArray):
        raise ValueError(f"motion must be an xarray.DataArray (estimate_motion's result); got {type(motion).__name__}.")
    if motion.dims not in (("time_bin", "depth_bin"), ("group", "time_bin", "depth_bin")):
        raise ValueError(
            f"motion dims must be ('time_bin', 'depth_bin') or ('group', 'time_bin', 'depth_bin'); got {motion.dims}."
        )
    for c in ("time_bin", "depth_bin"):
        if c not in motion.coords:
            raise ValueError(f"motion has no {c!r} coordinate (bin centres).")
        v = np.asarray(motion.coords[c].values, dtype=np.float64)
        if v.size == 0:
            raise ValueError(f"motion has no {c} (empty {c!r} coordinate).")
        if not np.all(np.isfinite(v)) or np.any(np.diff(v) <= 0):
            raise ValueError(f"motion coordinate {c!r} must be finite and strictly increasing.")
    if not np.all(np.isfinite(motion.values)):
        raise ValueError("motion has non-finite values; fill them with clean_motion(motion).")
    return motion


def _motion_groups(motion: xr.DataArray):
    """``[(group or None, values (T, Z))]``."""
    if motion.dims[0] == "group":
        return [(g, motion.values[i]) for i, g in enumerate(motion.coords["group"].values.tolist())]
    return [(None, motion.values)]


def interpolate_motion(motion: xr.DataArray, *, times_s, depths_um, groups=None) -> np.ndarray:
    """Displacement (µm) at the given times and depths, by bilinear interpolation of the motion.

    Between bin centres the motion is interpolated linearly in time and depth; beyond the first or
    last centre it is held constant.

    Parameters
    ----------
    motion : xarray.DataArray
    times_s, depths_um : array_like
        Broadcastable arrays of times (s, on the motion's clock) and depths (µm).
    groups : array_like, optional
        Group of each point; required when the motion has a ``group`` dim.

    Returns
    -------
    numpy.ndarray
        float64, the broadcast shape of the inputs.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> m = xr.DataArray([[0.0, 10.0], [20.0, 30.0]], dims=("time_bin", "depth_bin"),
    ...                  coords={"time_bin": [0.0, 1.0], "depth_bin": [0.0, 100.0]})
    >>> interpolate_motion(m, times_s=[0.5, 2.0], depths_um=[50.0, 50.0]).tolist()
    [15.0, 25.0]
    """
    check_motion(motion)
    t, y = np.broadcast_arrays(np.asarray(times_s, np.float64), np.asarray(depths_um, np.float64))
    tb = motion.coords["time_bin"].values.astype(np.float64)
    zb = motion.coords["depth_bin"].values.astype(np.float64)
    parts = _motion_groups(motion)
    if parts[0][0] is None:
        return K.interp_motion(parts[0][1], tb, zb, t.ravel(), y.ravel()).reshape(t.shape)
    if groups is None:
        raise ValueError("this motion has one estimate per group; give groups= (the group of each point).")
    g = np.broadcast_to(np.asarray(groups), t.shape).ravel()
    out = np.zeros(t.size)
    known = np.zeros(t.size, bool)
    for grp, vals in parts:
        sel = g == grp
        out[sel] = K.interp_motion(vals, tb, zb, t.ravel()[sel], y.ravel()[sel])
        known |= sel
    if not known.all():
        missing = np.unique(g[~known])[:5].tolist()
        raise ValueError(f"groups {missing} have no motion; the motion's groups are {[p[0] for p in parts]}.")
    return out.reshape(t.shape)


def correct_peak_locations(peaks, peak_locations, motion: xr.DataArray, *, channel_groups=None,
                           sampling_frequency: float | None = None, t_start_s: float | None = None):
    """Peak depths in the reference frame: ``y - motion(t, y)`` (a new array; inputs unchanged).

    Parameters
    ----------
    peaks : structured array
        With ``sample_index`` (and ``channel_index`` when the motion has a ``group`` dim).
    peak_locations : structured array with ``y`` or 1-D array of depths (µm)
    motion : xarray.DataArray
    channel_groups : array_like, optional
        Group of each channel, for a per-group motion.
    sampling_frequency, t_start_s : float, optional
        Default: the motion's attrs (set by :func:`estimate_motion`).

    Returns
    -------
    Same kind as ``peak_locations``: a copy with ``y`` corrected.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> m = xr.DataArray([[0.0], [10.0]], dims=("time_bin", "depth_bin"),
    ...                  coords={"time_bin": [0.5, 1.5], "depth_bin": [0.0]},
    ...                  attrs={"sampling_frequency": 100.0, "t_start_s": 0.0})
    >>> peaks = np.zeros(2, [("sample_index", "int64")]); peaks["sample_index"] = [50, 150]
    >>> correct_peak_locations(peaks, np.array([100.0, 110.0]), m).tolist()
    [100.0, 100.0]
    """
    check_motion(motion)
    peaks, depths = _as_peaks_and_depths(peaks, peak_locations)
    fs = sampling_frequency if sampling_frequency is not None else motion.attrs.get("sampling_frequency")
    if fs is None:
        raise ValueError("the motion has no 'sampling_frequency' attribute; pass sampling_frequency= (Hz).")
    fs = check_number("sampling_frequency", fs, min_value=0, min_inclusive=False)
    t0 = float(t_start_s if t_start_s is not None else motion.attrs.get("t_start_s", 0.0))
    times = t0 + peaks["sample_index"].astype(np.float64) / fs
    groups = None
    if motion.dims[0] == "group":
        if channel_groups is None or "channel_index" not in peaks.dtype.names:
            raise ValueError(
                "this motion has one estimate per group: pass channel_groups= (the group of each channel, e.g. "
                "rec.group.values) and peaks with a 'channel_index' field."
            )
        cg = np.asarray(channel_groups).reshape(-1)
        if peaks.size and (peaks["channel_index"].min() < 0 or peaks["channel_index"].max() >= cg.size):
            raise ValueError(f"peaks channel_index must be in [0, {cg.size}) (channel_groups has {cg.size} values).")
        groups = cg[peaks["channel_index"]]
    new_y = depths - interpolate_motion(motion, times_s=times, depths_um=depths, groups=groups)
    loc = np.asarray(peak_locations)
    if loc.dtype.names is not None:
        out = loc.copy().reshape(-1)
        out["y"] = new_y
        return out
    return new_y


def clean_motion(motion: xr.DataArray, *, despike_um: float | None = None, despike_window_s: float = 20.0,
                 smooth_s: float | None = None, smooth_um: float | None = None,
                 reference: str | float | None = None) -> xr.DataArray:
    """Clean a motion estimate: fill gaps, remove glitches, smooth, re-reference (a new object).

    Steps, in order, per group and depth bin:

    1. non-finite values are filled by linear interpolation in time (edges held); depth bins
       without any value take the nearest depth bin's values (all missing: 0);
    2. ``despike_um``: values further than this from the running median over ``despike_window_s``
       are glitches, replaced by linear interpolation between the remaining values (a step of the
       probe, lasting longer than half the window, is kept);
    3. ``smooth_s`` / ``smooth_um``: Gaussian smoothing (standard deviation, s / µm) over time /
       depth (weights renormalised at the edges, so a constant stays constant);
    4. ``reference``: ``"median"``/``"mean"`` of each depth bin over time, or a time (s) at which the
       motion becomes 0; ``None`` keeps the offsets.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> v = np.zeros((9, 1)); v[4] = 30.0; v[6] = np.nan         # a glitch and a gap
    >>> m = xr.DataArray(v, dims=("time_bin", "depth_bin"),
    ...                  coords={"time_bin": np.arange(9.0), "depth_bin": [0.0]})
    >>> clean_motion(m, despike_um=10.0, despike_window_s=5.0).values.ravel().tolist()
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """
    if not isinstance(motion, xr.DataArray) or motion.dims not in (("time_bin", "depth_bin"),
                                                                     ("group", "time_bin", "depth_bin")):
        raise ValueError("motion must be a motion DataArray with dims ('time_bin', 'depth_bin') (estimate_motion's result).")
    if despike_um is not None:
        despike_um = check_number("despike_um", despike_um, min_value=0, min_inclusive=False)
    despike_window_s = check_number("despike_window_s", despike_window_s, min_value=0, min_inclusive=False)
    if smooth_s is not None:
        smooth_s = check_number("smooth_s", smooth_s, min_value=0)
    if smooth_um is not None:
        smooth_um = check_number("smooth_um", smooth_um, min_value=0)
    _check_reference(reference)
    tb = np.asarray(motion.coords["time_bin"].values, np.float64)
    zb = np.asarray(motion.coords["depth_bin"].values, np.float64)
    vals = np.array(motion.values, dtype=np.float64)
    flat = vals[None] if vals.ndim == 2 else vals
    out = np.empty_like(flat)
    for g in range(flat.shape[0]):
        v = _fill_nan(flat[g], tb, zb)
        if despike_um is not None and tb.size > 2:
            v = _despike(v, tb, despike_um, despike_window_s)
        if smooth_s:
            v = _gauss_smooth(v, tb, smooth_s, axis=0)
        if smooth_um and zb.size > 1:
            v = _gauss_smooth(v, zb, smooth_um, axis=1)
        out[g] = _apply_reference(v, tb, reference)
    res = motion.copy(data=out[0] if vals.ndim == 2 else out)
    res.attrs = dict(motion.attrs)
    res.attrs["cleaning"] = json.dumps({"despike_um": despike_um, "despike_window_s": despike_window_s,
                                        "smooth_s": smooth_s, "smooth_um": smooth_um, "reference": reference})
    return res


def _despike(v: np.ndarray, tb: np.ndarray, thr: float, window_s: float) -> np.ndarray:
    from scipy.ndimage import median_filter

    dt = float(np.median(np.diff(tb)))
    k = max(3, int(round(window_s / dt)) | 1)
    med = median_filter(v, size=(k, 1), mode="nearest")
    bad = np.abs(v - med) > thr
    out = v.copy()
    for c in range(v.shape[1]):
        b = bad[:, c]
        if b.any() and not b.all():
            out[b, c] = np.interp(tb[b], tb[~b], v[~b, c])
    return out


def _gauss_smooth(v: np.ndarray, x: np.ndarray, sigma: float, *, axis: int) -> np.ndarray:
    if sigma <= 0:
        return v
    w = np.exp(-0.5 * ((x[:, None] - x[None, :]) / sigma) ** 2)
    w /= w.sum(1, keepdims=True)
    return w @ v if axis == 0 else v @ w.T


# ============================================================================================ correction


def correct_motion(
    recording: xr.DataArray,
    motion: xr.DataArray,
    *,
    interpolation: str = "kriging",
    sigma_um: float = 20.0,
    kernel: str = "gaussian",
    border_mode: str = "extrapolate",
    time_step_s: float | None = None,
    chunk_size: int | None = None,
) -> xr.DataArray:
    """A motion-corrected recording: each channel shows what its contact would record if the tissue
    had not moved (lazy, computed chunk by chunk).

    At time ``t`` the tissue that belongs at a contact's reference position ``(x, y)`` is at
    ``(x, y + d)``, ``d = motion(t, y)``; the corrected channel is the traces interpolated at that
    point from the contacts of the same group: ``out[t, c] = Σ_j W_cj(t) x[t, j]``.

    Parameters
    ----------
    recording : xarray.DataArray
        Recording with geometry (``x``, ``y``), on the motion's clock.
    motion : xarray.DataArray
        From :func:`estimate_motion` (per-group motions apply to each group's channels).
    interpolation : {"kriging", "linear", "nearest"}, default "kriging"
        ``"kriging"``: ``W = K(targets, contacts) (K(contacts, contacts) + 1e-6 I)^-1`` with the
        ``kernel`` of length ``sigma_um``, small weights (< 1e-3) cut and rows renormalised to 1;
        ``"linear"``: inverse-distance weights of the 3 nearest contacts; ``"nearest"``: the
        nearest contact.
    sigma_um : float, default 20.0
        Kriging kernel length (µm).
    kernel : {"gaussian", "exponential"}, default "gaussian"
        ``exp(-d² / 2σ²)`` or ``exp(-d / σ)``.
    border_mode : {"extrapolate", "zeros", "remove_channels"}, default "extrapolate"
        Targets beyond the group's top or bottom contact: use the interpolation as is (the nearest
        contacts dominate), output 0 there, or drop the channels whose target ever leaves the
        contacts' depth range (fewer channels).
    time_step_s : float, optional
        The displacement is evaluated (linearly interpolated between motion bins) at the centre
        of consecutive blocks of this duration and held within each. Default: the motion's
        ``bin_s`` / 4 (the ``time_bin`` spacing / 4).
    chunk_size : int, optional
        Samples per chunk (default: the recording's chunks).

    Returns
    -------
    xarray.DataArray
        float32 µV (gain 1, offset 0), same coords (fewer channels with ``"remove_channels"``),
        step recorded in ``attrs["preprocessing"]``.

    Notes
    -----
    Interpolation weights are computed per block and applied by a numba kernel over the few
    contacts with non-zero weight, so the cost is ``O(samples × channels × k)``. With zero motion,
    kriging and nearest return the input exactly. Kriging follows the interpolation step of
    Kilosort 2.5 (Steinmetz et al. 2021) and SpikeInterface's ``interpolate_motion``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from spkfn.io import from_array
    >>> loc = np.column_stack([np.zeros(8), np.arange(8) * 20.0])
    >>> x = np.zeros((100, 8), "float32"); x[:, 3] = 1.0
    >>> rec = from_array(x, sampling_frequency=100.0, channel_locations=loc)
    >>> m = xr.DataArray(np.full((1, 1), 20.0), dims=("time_bin", "depth_bin"),
    ...                  coords={"time_bin": [0.5], "depth_bin": [70.0]}, attrs={"bin_s": 1.0})
    >>> out = correct_motion(rec, m, interpolation="nearest")
    >>> out.values[0].tolist()      # the signal seen on channel 3 belongs 20 µm lower: channel 2
    [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """
    from threadpoolctl import threadpool_limits

    from ..preprocessing._base import lazy_transform

    check_recording(recording)
    check_motion(motion)
    check_choice("interpolation", interpolation, INTERPOLATION_METHODS)
    sigma_um = check_number("sigma_um", sigma_um, min_value=0, min_inclusive=False)
    check_choice("kernel", kernel, ("gaussian", "exponential"))
    check_choice("border_mode", border_mode, _BORDER_MODES)
    if not has_geometry(recording):
        raise ValueError(
            "correct_motion needs channel positions but the recording has no geometry (no 'x'/'y' coords); "
            "attach a probe with spkfn.io.set_probe(rec, probe)."
        )
    tb = np.asarray(motion.coords["time_bin"].values, np.float64)
    if time_step_s is None:
        bin_s = motion.attrs.get("bin_s")
        if bin_s is None:
            bin_s = float(np.median(np.diff(tb))) if tb.size > 1 else 1.0
        time_step_s = float(bin_s) / 4.0
    time_step_s = check_number("time_step_s", time_step_s, min_value=0, min_inclusive=False)
    loc = _channel_locations(recording)
    groups = np.asarray(recording.coords["group"].values)
    if motion.dims[0] == "group":
        missing = sorted(set(np.unique(groups).tolist()) - set(motion.coords["group"].values.tolist()))
        if missing:
            raise ValueError(f"the recording has groups {missing} that the motion does not cover (motion groups: "
                             f"{motion.coords['group'].values.tolist()}).")
    fs = float(recording.attrs["sampling_frequency"])
    t0 = float(recording.coords["time"].values[0]) if num_samples(recording) else 0.0
    n_total = num_samples(recording)
    grp_arg = groups if motion.dims[0] == "group" else None

    # the channels' depth range per group, for border handling
    lo_g = {g: loc[groups == g, 1].min() for g in np.unique(groups)}
    hi_g = {g: loc[groups == g, 1].max() for g in np.unique(groups)}
    ch_lo = np.array([lo_g[g] for g in groups])
    ch_hi = np.array([hi_g[g] for g in groups])
    tol = 1e-6

    keep = np.arange(loc.shape[0])
    if border_mode == "remove_channels":
        # any time: displacement at every motion time bin (the bins' values bound the interpolation)
        tt = np.repeat(tb, loc.shape[0])
        yy = np.tile(loc[:, 1], tb.size)
        gg = None if grp_arg is None else np.tile(groups, tb.size)
        d = interpolate_motion(motion, times_s=tt, depths_um=yy, groups=gg).reshape(tb.size, -1)
        tgt = loc[None, :, 1] + d
        inside = ((tgt >= ch_lo[None] - tol) & (tgt <= ch_hi[None] + tol)).all(0)
        keep = np.flatnonzero(inside)
        if keep.size == 0:
            raise ValueError("border_mode='remove_channels' would remove every channel: the motion moves all of them "
                             "outside the probe at some time. Use border_mode='extrapolate'.")

    parts = dict(_motion_groups(motion))
    zb = np.asarray(motion.coords["depth_bin"].values, np.float64)
    src_loc = loc
    tgt_ref = loc[keep]
    tgt_groups = groups[keep]
    step = max(1, int(round(time_step_s * fs)))
    with threadpool_limits(limits=1, user_api="blas"):  # one factorisation, here, deterministic
        interp = K.ChannelInterpolator(src_loc, groups, method=interpolation, sigma_um=sigma_um, kernel=kernel)

    def _kernel(traces, *, start):
        xt = np.ascontiguousarray(np.asarray(traces, dtype=np.float32).T)
        n = xt.shape[1]
        out_t = np.empty((keep.size, n), np.float32)
        # blocks on a global grid of `step` samples, so results do not depend on chunking
        first = (start // step) * step
        for b0 in range(first, start + n, step):
            r0, r1 = max(b0, start) - start, min(b0 + step, start + n) - start
            centre = min(b0 + 0.5 * step, n_total)
            tc = t0 + centre / fs
            d = _displacement_at(parts, tb, zb, tc, tgt_ref[:, 1], tgt_groups)
            tgt = np.column_stack([tgt_ref[:, 0], tgt_ref[:, 1] + d])
            W = interp.weights(tgt, tgt_groups)  # no BLAS: safe and identical on any thread
            if border_mode == "zeros":
                outside = (tgt[:, 1] < ch_lo[keep] - tol) | (tgt[:, 1] > ch_hi[keep] + tol)
                W[outside] = 0.0
            idx, val = K.sparse_weights(W)
            K.apply_channel_weights(xt, out_t, r0, r1, idx, val)
        return out_t.T

    rec = scale_to_uV(recording) if _needs_scaling(recording) else recording
    if rec.dtype != np.float32:
        rec = rec.copy(data=rec.data.astype(np.float32))
    params = {"interpolation": interpolation, "sigma_um": sigma_um, "kernel": kernel, "border_mode": border_mode,
              "time_step_s": time_step_s, "motion_method": motion.attrs.get("method")}
    if keep.size == loc.shape[0]:
        return lazy_transform(rec, _kernel, margin_samples=0, dtype=np.float32, step="correct_motion", params=params,
                              with_position=True, chunk_size=chunk_size)
    # fewer output channels: map blocks to the kept channels' shape
    return _lazy_select(rec, _kernel, keep, params=params, chunk_size=chunk_size)


def _displacement_at(parts: dict, tb: np.ndarray, zb: np.ndarray, t: float, y: np.ndarray,
                     groups: np.ndarray) -> np.ndarray:
    """Displacement at time ``t`` and depths ``y`` (per-group motions by ``groups``)."""
    tt = np.full(y.shape, float(t))
    if None in parts:
        return K.interp_motion(parts[None], tb, zb, tt, y)
    out = np.zeros(y.shape)
    for g, vals in parts.items():
        sel = groups == g
        if sel.any():
            out[sel] = K.interp_motion(vals, tb, zb, tt[sel], y[sel])
    return out


def _needs_scaling(rec: xr.DataArray) -> bool:
    return bool(np.any(rec.coords["gain_to_uV"].values != 1.0) or np.any(rec.coords["offset_to_uV"].values != 0.0))


def _lazy_select(rec, kernel, keep, *, params, chunk_size):
    import dask.array as da

    from ..core.chunks import as_dask
    from ..preprocessing._base import record_step

    data = as_dask(rec, chunk_size=chunk_size)
    bounds = np.concatenate([[0], np.cumsum(data.chunks[0])])

    def _apply(block, block_info=None):
        k = block_info[None]["chunk-location"][0]
        return kernel(block, start=int(bounds[k]))

    out = da.map_blocks(_apply, data, dtype=np.float32, chunks=(data.chunks[0], (keep.size,)),
                        meta=np.empty((0, 0), np.float32))
    sub = rec.isel(channel=keep)
    res = sub.copy(data=out)
    return record_step(res, "correct_motion", params)
