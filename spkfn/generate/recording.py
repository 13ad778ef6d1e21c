"""Seeded ground-truth recordings: a lazy recording, its true sorting and its noiseless templates.

docs/generate.md describes the model (spike shapes, spatial decay, amplitudes, trains, noise,
drift) with its formulas, and how reproducibility is guaranteed.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass

import dask.array as da
import numpy as np
import probeinterface as pi
import xarray as xr
from dask.base import tokenize

from ..core.chunks import default_chunk_size
from ..core.validate import check_choice, check_int, check_number
from ..io.probes import linear_probe, multi_shank_probe, neuropixels1_probe, tetrode_probe
from ..io.recording import channel_locations, from_array
from ..io.sorting import sorting_from_arrays
from ..io.templates import templates_from_array
from ._kernels import add_spikes
from ._noise import (
    NOISE_BLOCK_SAMPLES,
    STREAM_AMPLITUDES,
    STREAM_JITTER,
    STREAM_TRAINS,
    STREAM_UNITS,
    NoiseModel,
    band_filter,
    rng_for,
    spatial_mixing,
)
from ._waveforms import UnitShape, draw_shape, spatial_gain, unit_templates_at
from .drift import _as_components, drift_displacement, resolve_drift

__all__ = ["ground_truth_recording", "poisson_spike_trains", "PROBE_NAMES"]

logger = logging.getLogger(__name__)

#: Probe names accepted by ``probe=`` (handy in YAML configs), with their default channel counts.
PROBE_NAMES = {"linear": 32, "tetrode": 4, "neuropixels1": 384, "multi_shank": 64}
#: A unit's templates are stored only on contacts reaching this fraction of its best contact's
#: amplitude at some position it visits; other contacts get nothing from it.
CHANNEL_CUTOFF = 0.01
#: Refuse banks of drifted templates larger than this (bytes); raise ``drift_step_um`` instead.
MAX_BANK_BYTES = 2 * 1024 ** 3
#: int16 gain when none is given (µV per bit; Intan RHD2000 headstages).
DEFAULT_INT16_GAIN_UV = 0.195


def _pair(name: str, value, *, min_value: float, min_inclusive: bool, hint: str = "") -> tuple[float, float]:
    """A ``(lo, hi)`` range (a scalar means ``(v, v)``), checked ``lo <= hi`` and both in bounds."""
    if np.ndim(value) == 0:
        value = (value, value)
    vals = tuple(value)
    if len(vals) != 2:
        raise ValueError(f"{name} must be a number or a (low, high) pair; got {value!r}.")
    lo = check_number(f"{name}[0]", vals[0], min_value=min_value, min_inclusive=min_inclusive, hint=hint)
    hi = check_number(f"{name}[1]", vals[1], min_value=min_value, min_inclusive=min_inclusive, hint=hint)
    if lo > hi:
        raise ValueError(f"{name} must be (low, high) with low <= high; got {value!r}. Swap the two values.")
    return lo, hi


def _log_uniform(rng: np.random.Generator, lo: float, hi: float, u: float | None = None) -> float:
    u = rng.uniform() if u is None else u
    return float(lo * (hi / lo) ** u) if hi > lo else float(lo)


def _resolve_probe(probe, num_channels):
    if num_channels is not None:
        num_channels = check_int("num_channels", num_channels, min_value=1)
    if probe is None:
        probe = "linear"
    if isinstance(probe, str):
        name = check_choice("probe", probe, tuple(PROBE_NAMES))
        n = PROBE_NAMES[name] if num_channels is None else num_channels
        if name == "linear":
            return linear_probe(num_channels=n), name
        if name == "tetrode":
            if n != 4:
                raise ValueError(f"num_channels={n} does not match probe='tetrode' (4 contacts); leave num_channels=None.")
            return tetrode_probe(), name
        if name == "neuropixels1":
            if not 1 <= n <= 384:
                raise ValueError(f"num_channels must be in [1, 384] for probe='neuropixels1'; got {n}.")
            return neuropixels1_probe(num_channels=n), name
        if n % 4:
            raise ValueError(f"num_channels must be a multiple of 4 for probe='multi_shank' (4 shanks); got {n}.")
        return multi_shank_probe(num_shanks=4, num_channels_per_shank=n // 4), name
    if isinstance(probe, pi.Probe | pi.ProbeGroup):
        probes = probe.probes if isinstance(probe, pi.ProbeGroup) else [probe]
        n = sum(p.get_contact_count() for p in probes)
        if num_channels is not None and num_channels != n:
            raise ValueError(
                f"num_channels={num_channels} does not match the probe's {n} contacts; "
                "leave num_channels=None (it follows the probe) or pass a probe with that many contacts."
            )
        return probe, "custom"
    raise ValueError(
        f"probe must be None, one of {sorted(PROBE_NAMES)} or a probeinterface Probe/ProbeGroup; got {probe!r}."
    )


@dataclass(frozen=True)
class _Units:
    positions: np.ndarray      # (n_units, 3) x, y, z µm
    shapes: list[UnitShape]
    amplitudes: np.ndarray     # µV, trough on the nearest contact at the reference position
    rates: np.ndarray          # Hz


def _draw_units(*, num_units, seed, locations, groups, rate_hz, amplitude_uV, distance_um, depth_range_um,
                margin_um, narrow_fraction) -> _Units:
    labels, counts = np.unique(groups, return_counts=True)
    weights = counts / counts.sum()
    # Stratified (Latin-hypercube) draw of amplitudes: every seed spans the whole range.
    rng_a = rng_for(seed, STREAM_AMPLITUDES)
    strata = (rng_a.permutation(num_units) + rng_a.uniform(size=num_units)) / num_units
    positions = np.empty((num_units, 3))
    shapes, amps, rates = [], np.empty(num_units), np.empty(num_units)
    for u in range(num_units):
        rng = rng_for(seed, STREAM_UNITS, u)
        rates[u] = _log_uniform(rng, *rate_hz)  # first draw: same rates as poisson_spike_trains
        narrow = bool(rng.uniform() < narrow_fraction)
        shapes.append(draw_shape(rng, narrow=narrow))
        g = labels[int(rng.choice(labels.size, p=weights))]
        loc = locations[groups == g]
        xlo, xhi = loc[:, 0].min() - margin_um, loc[:, 0].max() + margin_um
        if depth_range_um is None:
            ylo, yhi = loc[:, 1].min(), loc[:, 1].max()
            if yhi - ylo < 2 * margin_um:
                c = 0.5 * (ylo + yhi)
                ylo, yhi = c - margin_um, c + margin_um
        else:
            ylo, yhi = depth_range_um
        positions[u] = (rng.uniform(xlo, xhi), rng.uniform(ylo, yhi), rng.uniform(*distance_um))
        amps[u] = _log_uniform(rng_a, *amplitude_uV, u=float(strata[u]))
    return _Units(positions=positions, shapes=shapes, amplitudes=amps, rates=rates)


def _train(rng: np.random.Generator, *, rate_hz: float, num_samples: int, refractory_samples: int,
           sampling_frequency: float) -> np.ndarray:
    """Renewal process in samples: ISI = refractory + (Geometric - 1); mean ISI = fs / rate exactly."""
    mean_isi = sampling_frequency / rate_hz
    p = 1.0 / (mean_isi - refractory_samples + 1.0)
    first = int(rng.geometric(min(1.0, 1.0 / mean_isi))) - 1
    expected = num_samples / mean_isi
    chunks = [np.array([first], dtype=np.int64)]
    last = first
    while last < num_samples:
        n = int(expected + 6.0 * math.sqrt(expected) + 16)
        isi = rng.geometric(p, size=n).astype(np.int64) + (refractory_samples - 1)
        times = last + np.cumsum(isi)
        chunks.append(times)
        last = int(times[-1])
    t = np.concatenate(chunks)
    return t[t < num_samples]


def _trains(*, seed, rates, num_samples, refractory_samples, sampling_frequency, lo, hi):
    samples, units = [], []
    for u, r in enumerate(rates):
        t = _train(rng_for(seed, STREAM_TRAINS, u), rate_hz=float(r), num_samples=num_samples,
                   refractory_samples=refractory_samples, sampling_frequency=sampling_frequency)
        t = t[(t >= lo) & (t <= hi)]
        samples.append(t)
        units.append(np.full(t.size, u, dtype=np.int64))
    s = np.concatenate(samples) if samples else np.zeros(0, np.int64)
    un = np.concatenate(units) if units else np.zeros(0, np.int64)
    order = np.lexsort((un, s))
    return s[order], un[order]


def poisson_spike_trains(*, num_units: int, duration_s: float, sampling_frequency: float = 30000.0,
                         firing_rate_hz=(1.0, 20.0), refractory_ms: float = 2.0, seed: int = 0) -> xr.Dataset:
    """Seeded Poisson spike trains with an absolute refractory period, as a sorting.

    Unit ``u`` fires at a rate drawn log-uniformly in ``firing_rate_hz`` (stored as the
    ``firing_rate_hz`` unit property); its inter-spike intervals in samples are
    ``R + G - 1`` with ``R = max(1, ceil(refractory_ms * fs / 1000))`` and ``G`` geometric of mean
    ``fs / rate - R + 1`` (the sampled analogue of a dead-time Poisson process), so no two
    spikes of a unit are closer than ``refractory_ms`` and the mean rate is exactly the drawn one.
    These are the trains :func:`ground_truth_recording` plants (before it drops the spikes whose
    template would cross the recording's edges).

    Parameters
    ----------
    num_units : int
        >= 1.
    duration_s : float
        Length in seconds, > 0.
    sampling_frequency : float, default 30000.0
        Hz.
    firing_rate_hz : float or (float, float), default (1.0, 20.0)
        Range of the units' mean rates (Hz), ``0 < low <= high``.
    refractory_ms : float, default 2.0
        Absolute refractory period (ms), ``>= 0`` and shorter than the mean ISI of the fastest unit.
    seed : int, default 0
        Same seed, same trains. Unit ``u`` draws its rate from ``SeedSequence(seed, spawn_key=(1, u))``
        and its train from ``SeedSequence(seed, spawn_key=(2, u))``.

    Returns
    -------
    xarray.Dataset
        A sorting (docs/data_model.md) with unit property ``firing_rate_hz``.

    Examples
    --------
    >>> s = poisson_spike_trains(num_units=3, duration_s=10.0, firing_rate_hz=5.0, seed=1)
    >>> s.sizes["unit"], s.firing_rate_hz.values.tolist()
    (3, [5.0, 5.0, 5.0])
    """
    num_units = check_int("num_units", num_units, min_value=1)
    fs = check_number("sampling_frequency", sampling_frequency, min_value=0, min_inclusive=False)
    T = check_number("duration_s", duration_s, min_value=0, min_inclusive=False)
    rate = _pair("firing_rate_hz", firing_rate_hz, min_value=0, min_inclusive=False)
    refr = _check_refractory(refractory_ms, rate[1], fs)
    n = int(round(T * fs))
    rates = np.array([_log_uniform(rng_for(int(seed), STREAM_UNITS, u), *rate) for u in range(num_units)])
    s, u = _trains(seed=int(seed), rates=rates, num_samples=n, refractory_samples=refr,
                   sampling_frequency=fs, lo=0, hi=n - 1)
    out = sorting_from_arrays(s, u, sampling_frequency=fs, unit_ids=np.arange(num_units), num_samples=n)
    return out.assign(firing_rate_hz=("unit", rates))


def _check_refractory(refractory_ms, max_rate_hz: float, fs: float) -> int:
    r = check_number("refractory_ms", refractory_ms, min_value=0)
    mean_isi_ms = 1000.0 / max_rate_hz
    # At least one sample: a unit never fires twice in the same sample.
    refr = max(1, int(math.ceil(r * fs / 1000.0 - 1e-9)))
    if r >= mean_isi_ms or refr > fs / max_rate_hz:
        raise ValueError(
            f"refractory_ms={refractory_ms} must be shorter than the mean inter-spike interval of the fastest "
            f"unit ({mean_isi_ms:g} ms at {max_rate_hz:g} Hz); lower refractory_ms or the upper firing_rate_hz."
        )
    return refr


def ground_truth_recording(
    *,
    duration_s: float,
    probe=None,
    num_channels: int | None = None,
    num_units: int = 20,
    sampling_frequency: float = 30000.0,
    noise_uV=5.0,
    firing_rate_hz=(1.0, 20.0),
    refractory_ms: float = 2.0,
    drift=None,
    seed: int = 0,
    amplitude_uV=(10.0, 150.0),
    unit_distance_um=(10.0, 50.0),
    unit_depth_range_um=None,
    unit_margin_um: float = 30.0,
    decay_length_um: float | None = 80.0,
    narrow_fraction: float = 0.25,
    amplitude_jitter: float = 0.05,
    ms_before: float = 1.0,
    ms_after: float = 2.5,
    noise_spatial_corr_um: float = 0.0,
    noise_band_hz=(300.0, 6000.0),
    drift_step_um: float = 1.0,
    sparsity_fraction: float = 0.05,
    dtype: str = "float32",
    gain_to_uV: float | None = None,
    chunk_size: int | None = None,
) -> tuple[xr.DataArray, xr.Dataset, xr.DataArray]:
    """A seeded, lazily generated recording with planted units: ``(recording, gt_sorting, templates)``.

    Traces are Gaussian noise plus the units' spikes, produced chunk by chunk on demand (nothing
    of the size of the recording is held in memory), and bit-identical for the same arguments
    whatever the chunking. docs/generate.md gives the model and its formulas.

    Parameters
    ----------
    duration_s : float
        Length (s), > 0; ``round(duration_s * sampling_frequency)`` samples.
    probe : None, str, probeinterface.Probe or ProbeGroup, default None
        ``None`` or ``"linear"``: single-column probe, 25 µm pitch; ``"tetrode"``;
        ``"neuropixels1"`` (staggered 2-column, bank 0); ``"multi_shank"`` (4 linear shanks
        250 µm apart); or any probe with one contact per channel.
    num_channels : int, optional
        Channel count. ``None``: 32 for the default linear probe, 4 / 384 / 64 for the named
        probes, the contact count of a given probe (which it must match otherwise).
    num_units : int, default 20
        >= 1.
    sampling_frequency : float, default 30000.0
        Hz, >= 1000.
    noise_uV : float or array_like, default 5.0
        Standard deviation of the noise per channel (µV, > 0): a scalar or one value per channel.
    firing_rate_hz : float or (float, float), default (1.0, 20.0)
        Mean rates are drawn log-uniformly in this range (Hz), ``0 < low <= high``.
    refractory_ms : float, default 2.0
        Absolute refractory period: no two spikes of a unit are closer (ms).
    drift : None, Drift, dict or list of them, default None
        Probe drift along ``y`` (see :mod:`spkfn.generate.drift`); e.g.
        ``{"kind": "sine", "amplitude_um": 20, "period_s": 60}``.
    seed : int, default 0
        Everything random derives from ``np.random.SeedSequence(seed)``.
    amplitude_uV : (float, float), default (10.0, 150.0)
        Trough amplitude on the nearest contact at the start (µV), drawn log-uniformly with one
        unit per stratum (so each seed spans the range); with 5 µV noise about 15 % of units
        have SNR < 3, 60 % 4-20, 15 % > 20.
    unit_distance_um : (float, float), default (10.0, 50.0)
        Distance ``z`` of the somata from the probe plane (µm), > 0.
    unit_depth_range_um : (float, float), optional
        Range of the units' ``y`` (µm). Default: the contacts' ``y`` extent of the unit's shank
        (widened to ``± unit_margin_um`` around its centre when shorter than that).
    unit_margin_um : float, default 30.0
        Units' ``x`` spans the shank's contact ``x`` extent widened by this (µm) on each side.
    decay_length_um : float or None, default 80.0
        ``lambda`` of the spatial decay ``g(d) = exp(-d / lambda) / d``; ``None``: ``1 / d``.
    narrow_fraction : float, default 0.25
        Probability that a unit is narrow-spiking (short trough-to-peak) rather than broad.
    amplitude_jitter : float, default 0.05
        Spike-to-spike amplitude variability: each spike is its template times
        ``1 + amplitude_jitter * clip(N(0, 1), -3, 3)`` (in ``[0, 0.3]``; 0: identical spikes).
    ms_before, ms_after : float, default 1.0 and 2.5
        Template window around the trough (ms).
    noise_spatial_corr_um : float, default 0.0
        Length ``l`` of a spatial noise correlation ``exp(-d / l)`` within a shank (µm); 0:
        independent channels.
    noise_band_hz : (float, float) or None, default (300.0, 6000.0)
        Band of the noise: white noise through a causal order-2 Butterworth band-pass, rescaled
        to keep the standard deviation ``noise_uV`` (like an AP-band recording; a high edge at or
        above Nyquist means high-pass only). ``None``: white noise.
    drift_step_um : float, default 1.0
        Spacing of the displacement grid on which drifted templates are precomputed (µm); each
        spike uses the nearest grid displacement.
    sparsity_fraction : float, default 0.05
        ``templates.sparsity`` marks the channels whose peak ``|template|`` reaches this fraction
        of the unit's peak.
    dtype : {"float32", "int16"}, default "float32"
        ``"float32"``: µV (gain 1). ``"int16"``: ``clip(rint(µV / gain_to_uV), -32768, 32767)``.
    gain_to_uV : float, optional
        µV per bit of the int16 output (default 0.195); only with ``dtype="int16"``.
    chunk_size : int, optional
        Samples per dask chunk. Default: about 32 MB of float32, rounded to a multiple of the
        16384-sample noise block. Any value gives the same data.

    Returns
    -------
    recording : xarray.DataArray
        Lazy (dask) recording ``("time", "channel")`` with the probe attached and
        ``attrs["generator_params"]`` (JSON of every parameter).
    gt_sorting : xarray.Dataset
        The planted spikes (sample of each trough on the unit's best channel), with unit
        properties ``x_um``, ``y_um``, ``z_um`` (reference position), ``amplitude_uV`` (trough
        depth on the best channel, > 0), ``snr`` (``amplitude_uV / noise_uV`` of that channel),
        ``firing_rate_hz`` (the drawn rate), ``best_channel`` (index), ``best_channel_id``, ``group``,
        ``cell_type`` (``"narrow"``/``"broad"``), ``trough_to_peak_ms``; per spike
        ``displacement_um`` (grid displacement used) and ``amplitude_scale`` (the spike's gain
        on its template); attrs ``num_samples``, ``noise_uV``,
        ``seed``, ``generator_params`` and ``drift`` (JSON of the realised drift, ``"null"`` without).
    templates : xarray.DataArray
        Noiseless templates (µV) at the reference positions, ``nbefore`` samples before the
        trough, with a ``sparsity`` mask and the channel locations.

    Examples
    --------
    >>> rec, gt, templates = ground_truth_recording(duration_s=2.0, num_units=5, seed=1)
    >>> rec.sizes["time"], rec.sizes["channel"], gt.sizes["unit"], templates.shape[0]
    (60000, 32, 5, 5)
    >>> u = gt.unit_index.values[0]
    >>> int(gt.best_channel.values[u]) == int(templates.values[u].min(axis=0).argmin())
    True
    """
    # ---- validation -------------------------------------------------------------------------
    T = check_number("duration_s", duration_s, min_value=0, min_inclusive=False)
    fs = check_number("sampling_frequency", sampling_frequency, min_value=1000.0,
                      hint="(Hz; spike waveforms need at least 1 kHz, typically 20-40 kHz)")
    num_units = check_int("num_units", num_units, min_value=1)
    seed = check_int("seed", seed, min_value=0)
    rate = _pair("firing_rate_hz", firing_rate_hz, min_value=0, min_inclusive=False)
    refr = _check_refractory(refractory_ms, rate[1], fs)
    amp = _pair("amplitude_uV", amplitude_uV, min_value=0, min_inclusive=False)
    dist = _pair("unit_distance_um", unit_distance_um, min_value=0, min_inclusive=False,
                 hint="(distance of the somata from the probe plane, µm)")
    depth = None if unit_depth_range_um is None else _pair("unit_depth_range_um", unit_depth_range_um,
                                                          min_value=-math.inf, min_inclusive=True)
    margin = check_number("unit_margin_um", unit_margin_um, min_value=0)
    decay = None if decay_length_um is None else check_number("decay_length_um", decay_length_um, min_value=0,
                                                              min_inclusive=False)
    narrow_fraction = check_number("narrow_fraction", narrow_fraction, min_value=0, max_value=1)
    jitter = check_number("amplitude_jitter", amplitude_jitter, min_value=0, max_value=0.3)
    ms_before = check_number("ms_before", ms_before, min_value=0.5, max_value=10)
    ms_after = check_number("ms_after", ms_after, min_value=1.0, max_value=20)
    corr = check_number("noise_spatial_corr_um", noise_spatial_corr_um, min_value=0)
    step = check_number("drift_step_um", drift_step_um, min_value=0, min_inclusive=False)
    sparsity_fraction = check_number("sparsity_fraction", sparsity_fraction, min_value=0, max_value=1)
    try:
        dtype = str(np.dtype(dtype))
    except TypeError:
        pass
    dtype = check_choice("dtype", dtype, ("float32", "int16"))
    if dtype == "int16":
        gain = DEFAULT_INT16_GAIN_UV if gain_to_uV is None else check_number(
            "gain_to_uV", gain_to_uV, min_value=0, min_inclusive=False)
    else:
        if gain_to_uV is not None and float(gain_to_uV) != 1.0:
            raise ValueError(f"gain_to_uV={gain_to_uV!r} applies to dtype='int16' only; float32 output is in µV.")
        gain = 1.0
    band = None
    if noise_band_hz is not None:
        band = _pair("noise_band_hz", noise_band_hz, min_value=0, min_inclusive=True)
        if not (band[0] < band[1] and band[0] < fs / 2):
            raise ValueError(f"noise_band_hz must be (low, high) with 0 <= low < high and low < sampling_frequency / 2 "
                             f"= {fs / 2:g} Hz; got {noise_band_hz!r}. Use None for white noise.")
    drift_components = _as_components(drift)
    probe_obj, probe_name = _resolve_probe(probe, num_channels)
    geo = from_array(np.zeros((1, sum(p.get_contact_count() for p in (
        probe_obj.probes if isinstance(probe_obj, pi.ProbeGroup) else [probe_obj]))), np.float32),
        sampling_frequency=fs, probe=probe_obj)
    n_ch = geo.sizes["channel"]
    locations = channel_locations(geo)
    groups = geo.coords["group"].values
    noise = np.asarray(noise_uV, dtype=np.float64)
    if noise.ndim == 0:
        noise = np.full(n_ch, float(noise))
    if noise.shape != (n_ch,) or not np.all(np.isfinite(noise)) or np.any(noise <= 0):
        raise ValueError(f"noise_uV must be a number > 0 (µV) or {n_ch} such numbers (one per channel); "
                         f"got {noise_uV!r}.")
    nbefore = int(round(ms_before * fs / 1000.0))
    n_t = nbefore + int(round(ms_after * fs / 1000.0))
    n = int(round(T * fs))
    if n <= n_t:
        raise ValueError(f"duration_s={duration_s} is shorter than one template ({(ms_before + ms_after):g} ms); "
                         "make the recording longer.")
    if chunk_size is None:
        k = max(1, int(round(default_chunk_size(n_ch, sampling_frequency=fs) / NOISE_BLOCK_SAMPLES)))
        chunk = k * NOISE_BLOCK_SAMPLES
    else:
        chunk = check_int("chunk_size", chunk_size, min_value=1)

    params = {
        "duration_s": T, "probe": probe_name, "num_channels": n_ch, "num_units": num_units,
        "sampling_frequency": fs, "noise_uV": noise.tolist() if np.ptp(noise) else float(noise[0]),
        "firing_rate_hz": list(rate), "refractory_ms": float(refractory_ms), "seed": seed,
        "amplitude_uV": list(amp), "unit_distance_um": list(dist),
        "unit_depth_range_um": None if depth is None else list(depth), "unit_margin_um": margin,
        "decay_length_um": decay, "narrow_fraction": narrow_fraction,
        "amplitude_jitter": jitter, "ms_before": ms_before,
        "ms_after": ms_after, "noise_spatial_corr_um": corr, "noise_band_hz": None if band is None else list(band),
        "drift_step_um": step, "sparsity_fraction": sparsity_fraction, "dtype": dtype, "gain_to_uV": gain,
        "noise_block_samples": NOISE_BLOCK_SAMPLES, "generator_version": 1,
    }

    # ---- units, trains, drift, per-spike gains -------------------------------------------------
    units = _draw_units(num_units=num_units, seed=seed, locations=locations, groups=groups, rate_hz=rate,
                        amplitude_uV=amp, distance_um=dist, depth_range_um=depth, margin_um=margin,
                        narrow_fraction=narrow_fraction)
    samples, unit_index = _trains(seed=seed, rates=units.rates, num_samples=n, refractory_samples=refr,
                                  sampling_frequency=fs, lo=nbefore, hi=n - (n_t - nbefore))
    by_unit = _split_by_unit(unit_index, num_units)
    resolved = resolve_drift(drift_components, duration_s=T,
                             depth_range_um=(float(locations[:, 1].min()), float(locations[:, 1].max())), seed=seed)
    params["drift"] = resolved
    scales = np.ones(samples.size, dtype=np.float32)
    grid_k = np.zeros(samples.size, dtype=np.int64)
    for u, idx in enumerate(by_unit):
        if jitter > 0:
            z = rng_for(seed, STREAM_JITTER, u).standard_normal(idx.size)
            scales[idx] = (1.0 + jitter * np.clip(z, -3.0, 3.0)).astype(np.float32)
        if resolved is not None:
            disp = drift_displacement(resolved, times_s=samples[idx] / fs, depths_um=[units.positions[u, 1]])[:, 0]
            grid_k[idx] = np.rint(disp / step).astype(np.int64)

    # ---- template bank, templates at the reference positions ----------------------------------
    bank, bank_channels, bank_units, rows = _template_bank(
        units, by_unit, unit_index, grid_k, locations=locations, step=step, nbefore=nbefore, n_t=n_t, fs=fs,
        decay=decay)
    dense = np.zeros((num_units, n_t, n_ch), dtype=np.float32)
    for u in range(num_units):
        ch = bank_channels[u][bank_channels[u] >= 0]
        dense[u][:, ch] = bank[rows["ref"][u]][:, :ch.size]
    peak = np.abs(dense).max(axis=1)
    channel_ids = geo.coords["channel"].values
    templates = templates_from_array(dense, sampling_frequency=fs, nbefore=nbefore, unit_ids=np.arange(num_units),
                                     channel_ids=channel_ids, channel_locations=locations,
                                     sparsity=peak >= sparsity_fraction * peak.max(axis=1, keepdims=True))
    templates.attrs["generator_params"] = json.dumps(params)

    # ---- lazy traces --------------------------------------------------------------------------
    mixing = spatial_mixing(locations, groups, corr) if corr > 0 else None
    noise_model = NoiseModel(seed=seed, std_uV=noise, mixing=mixing, band=None if band is None else band_filter(band, fs))
    spikes = _Spikes(samples=samples, scales=scales, rows=rows["spike"], bank=bank, bank_channels=bank_channels,
                     bank_units=bank_units, nbefore=nbefore)
    # Same data => same name; the chunking is part of it (dask keys are (name, chunk, 0)).
    name = "spkfn-generate-" + tokenize(json.dumps(params, sort_keys=True), json.dumps(probe_obj.to_dict(
        array_as_list=True), sort_keys=True, default=str), chunk)
    traces = _lazy_traces(noise_model, spikes, num_samples=n, chunk=chunk, dtype=dtype, gain=gain, name=name)
    recording = from_array(traces, sampling_frequency=fs, probe=probe_obj, channel_ids=channel_ids,
                           gain_to_uV=gain, source={"format": "spkfn.generate", "path": "", "stream": ""})
    recording.attrs["generator_params"] = json.dumps(params)

    # ---- ground-truth sorting -------------------------------------------------------------------
    gt = sorting_from_arrays(samples, unit_index, sampling_frequency=fs, unit_ids=np.arange(num_units),
                             num_samples=n)
    gt = gt.assign(displacement_um=("spike", (grid_k * step).astype(np.float32)), amplitude_scale=("spike", scales),
                   **_unit_properties(units, dense, noise=noise, groups=groups, channel_ids=channel_ids,
                                      nbefore=nbefore, fs=fs))
    gt.attrs.update({"noise_uV": params["noise_uV"], "seed": seed, "generator_params": json.dumps(params),
                     "drift": json.dumps(resolved)})
    return recording, gt, templates


def _split_by_unit(unit_index: np.ndarray, num_units: int) -> list[np.ndarray]:
    """Indices of each unit's spikes (in time order), without one pass over all spikes per unit."""
    order = np.argsort(unit_index, kind="stable")
    bounds = np.searchsorted(unit_index[order], np.arange(num_units + 1))
    return [order[bounds[u]:bounds[u + 1]] for u in range(num_units)]


def _unit_properties(units: _Units, dense: np.ndarray, *, noise, groups, channel_ids, nbefore, fs) -> dict:
    """Unit properties of the ground-truth sorting, measured on the reference templates."""
    n_units = dense.shape[0]
    troughs = -dense.min(axis=1)                                    # (units, channels)
    best = troughs.argmax(axis=1)
    amplitude = troughs[np.arange(n_units), best].astype(np.float64)
    best_wave = dense[np.arange(n_units), :, best]
    return {
        "x_um": ("unit", units.positions[:, 0]), "y_um": ("unit", units.positions[:, 1]),
        "z_um": ("unit", units.positions[:, 2]), "amplitude_uV": ("unit", amplitude),
        "snr": ("unit", amplitude / noise[best]), "firing_rate_hz": ("unit", units.rates),
        "best_channel": ("unit", best.astype(np.int64)), "best_channel_id": ("unit", channel_ids[best].astype(str)),
        "group": ("unit", groups[best].astype(np.int64)),
        "cell_type": ("unit", np.array([s.cell_type for s in units.shapes])),
        "trough_to_peak_ms": ("unit", np.argmax(best_wave[:, nbefore:], axis=1) * 1000.0 / fs),
    }


@dataclass(frozen=True)
class _Spikes:
    samples: np.ndarray        # sorted trough samples
    scales: np.ndarray         # per-spike gain (float32)
    rows: np.ndarray           # bank row per spike
    bank: np.ndarray
    bank_channels: np.ndarray
    bank_units: np.ndarray
    nbefore: int


def _lazy_traces(noise_model: NoiseModel, spikes: _Spikes, *, num_samples: int, chunk: int, dtype: str,
                 gain: float, name: str) -> da.Array:
    """The dask array of traces: each chunk = its noise + the spikes overlapping it (+ int16 rounding)."""
    n_t = spikes.bank.shape[1]
    nb = spikes.nbefore

    def _block(block_info=None):
        start, stop = block_info[None]["array-location"][0]
        x = noise_model.window(start, stop)
        i0 = np.searchsorted(spikes.samples, start + nb - n_t + 1, side="left")
        i1 = np.searchsorted(spikes.samples, stop + nb, side="left")
        if i1 > i0:
            add_spikes(x, start, spikes.samples[i0:i1], spikes.scales[i0:i1], spikes.rows[i0:i1], spikes.bank,
                       spikes.bank_channels, spikes.bank_units, nb)
        if dtype == "int16":
            x = np.clip(np.rint(x / np.float32(gain)), -32768, 32767).astype(np.int16)
        return x

    starts = range(0, num_samples, chunk)
    sizes = tuple(min(chunk, num_samples - a) for a in starts)
    return da.map_blocks(_block, chunks=(sizes, (noise_model.n_channels,)), dtype=np.dtype(dtype),
                         meta=np.empty((0, 0), dtype=dtype), name=name)


def _template_bank(units: _Units, by_unit, unit_index, grid_k, *, locations, step, nbefore, n_t, fs, decay):
    """Templates of each unit at every grid displacement it visits, on the contacts it reaches.

    Returns ``bank (n_templates, n_t, max_ch)`` float32, ``bank_channels (n_units, max_ch)``
    (-1 padded), ``bank_units (n_templates,)`` and rows: ``rows["spike"]`` (bank row of each
    spike) and ``rows["ref"]`` (row of each unit at zero displacement).
    """
    n_units = units.positions.shape[0]
    per_unit = []
    for u in range(n_units):
        ks = grid_k[by_unit[u]]
        kmin, kmax = (min(0, int(ks.min())), max(0, int(ks.max()))) if ks.size else (0, 0)
        k = np.arange(kmin, kmax + 1)
        pos = np.repeat(units.positions[u][None, :], k.size, axis=0)
        pos[:, 1] += k * step
        d = np.sqrt(((pos[:, None, :2] - locations[None]) ** 2).sum(-1) + pos[:, None, 2] ** 2)
        g = spatial_gain(d, decay)
        rel = g / g.max(axis=1, keepdims=True)
        chans = np.flatnonzero((rel >= CHANNEL_CUTOFF).any(axis=0))
        d_ref = np.sqrt(((units.positions[u, :2] - locations) ** 2).sum(-1) + units.positions[u, 2] ** 2).min()
        scale = units.amplitudes[u] / float(spatial_gain(np.array([d_ref]), decay)[0])
        per_unit.append((kmin, k.size, chans, pos, scale))
    max_ch = max(p[2].size for p in per_unit)
    n_templates = sum(p[1] for p in per_unit)
    nbytes = n_templates * n_t * max_ch * 4
    if nbytes > MAX_BANK_BYTES:
        raise ValueError(
            f"the drifted templates would need {nbytes / 1024 ** 3:.1f} GiB (> {MAX_BANK_BYTES / 1024 ** 3:.0f} GiB); "
            "raise drift_step_um, lower the drift amplitude or the number of units."
        )
    bank = np.zeros((n_templates, n_t, max_ch), dtype=np.float32)
    bank_channels = np.full((n_units, max_ch), -1, dtype=np.int64)
    bank_units = np.empty(n_templates, dtype=np.int64)
    offsets = np.zeros(n_units, dtype=np.int64)
    ref = np.zeros(n_units, dtype=np.int64)
    row = 0
    for u, (kmin, nk, chans, pos, scale) in enumerate(per_unit):
        t = unit_templates_at(pos, locations[chans], shape=units.shapes[u], scale=scale, nbefore=nbefore,
                              n_samples=n_t, sampling_frequency=fs, decay_length_um=decay)
        bank[row:row + nk, :, :chans.size] = t
        bank_channels[u, :chans.size] = chans
        bank_units[row:row + nk] = u
        offsets[u] = row - kmin
        ref[u] = row - kmin
        row += nk
    logger.debug("template bank: %d templates, %d channels max, %.1f MB", n_templates, max_ch, nbytes / 1e6)
    spike_rows = offsets[unit_index] + grid_k
    return bank, bank_channels, bank_units, {"spike": spike_rows.astype(np.int64), "ref": ref}
