"""Extracellular spike-shape model used by the ground-truth generator (private).

A unit's waveform on a contact at distance ``d`` (µm) from its soma is

    v(t) = alpha * g(d) * s((t - delta(d)) / omega(d))

with ``s`` the unit's unit-trough shape (trough exactly ``-1`` at ``t = 0``), ``g`` the spatial
decay, ``delta`` a propagation delay and ``omega`` a widening factor, both zero / one on the
contact nearest to the soma. docs/generate.md has the formulas and the parameter ranges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Shape-parameter ranges (ms, or relative to the trough) for broad (putative pyramidal) and
#: narrow (putative fast-spiking) units. Each unit draws uniformly inside its type's ranges.
SHAPE_RANGES = {
    "broad": {
        "sigma_fall_ms": (0.08, 0.14),     # trough onset (depolarisation) width
        "sigma_rise_ms": (0.14, 0.26),     # trough recovery width
        "peak_ms": (0.45, 0.80),           # repolarisation peak time after the trough
        "peak_ratio": (0.15, 0.40),        # repolarisation peak / trough depth
        "peak_rise_ms": (0.15, 0.28),      # width of the peak's rising side
        "peak_decay_ms": (0.30, 0.60),     # width of the peak's decaying side (slow tail)
    },
    "narrow": {
        "sigma_fall_ms": (0.05, 0.08),
        "sigma_rise_ms": (0.07, 0.12),
        "peak_ms": (0.22, 0.38),
        "peak_ratio": (0.30, 0.60),
        "peak_rise_ms": (0.08, 0.14),
        "peak_decay_ms": (0.18, 0.35),
    },
}
#: Small positive pre-trough bump (capacitive / axonal), common to both types.
PRE_RANGES = {"pre_ratio": (0.0, 0.12), "pre_ms": (-0.35, -0.20), "pre_sigma_ms": (0.08, 0.15)}
#: Per-unit spatial parameters: widening per µm of extra distance, propagation speed (µm/ms).
WIDENING_PER_UM = (0.001, 0.003)
PROPAGATION_UM_PER_MS = (300.0, 600.0)
#: Extra distance beyond which widening and delay stop growing (µm).
DELAY_CAP_UM = 150.0
#: Length of the cosine tapers at both ends of the template window (ms).
TAPER_MS = 0.25


@dataclass(frozen=True)
class UnitShape:
    """Parameters of one unit's waveform (times in ms)."""

    cell_type: str
    sigma_fall_ms: float
    sigma_rise_ms: float
    peak_ms: float
    peak_ratio: float
    peak_rise_ms: float
    peak_decay_ms: float
    pre_ratio: float
    pre_ms: float
    pre_sigma_ms: float
    widening_per_um: float
    propagation_um_per_ms: float
    trough_shift_ms: float = 0.0  # set by align_shape: argmin of the raw shape
    trough_depth: float = 1.0     # set by align_shape: -min of the raw shape


def draw_shape(rng: np.random.Generator, *, narrow: bool) -> UnitShape:
    """Draw one unit's shape parameters (fixed order of draws, so seeded results are stable)."""
    kind = "narrow" if narrow else "broad"
    ranges = SHAPE_RANGES[kind]
    vals = {k: float(rng.uniform(*ranges[k])) for k in sorted(ranges)}
    vals.update({k: float(rng.uniform(*PRE_RANGES[k])) for k in sorted(PRE_RANGES)})
    widening = float(rng.uniform(*WIDENING_PER_UM))
    speed = float(rng.uniform(*PROPAGATION_UM_PER_MS))
    return align_shape(UnitShape(cell_type=kind, widening_per_um=widening, propagation_um_per_ms=speed, **vals))


def _half_gauss(t, sigma_left, sigma_right):
    sig = np.where(t < 0, sigma_left, sigma_right)
    return np.exp(-0.5 * (t / sig) ** 2)


def raw_shape(t_ms: np.ndarray, shape: UnitShape) -> np.ndarray:
    """The unaligned shape: asymmetric Gaussian trough + asymmetric repolarisation peak + pre-bump."""
    t = np.asarray(t_ms, dtype=np.float64)
    trough = -_half_gauss(t, shape.sigma_fall_ms, shape.sigma_rise_ms)
    peak = shape.peak_ratio * _half_gauss(t - shape.peak_ms, shape.peak_rise_ms, shape.peak_decay_ms)
    pre = shape.pre_ratio * np.exp(-0.5 * ((t - shape.pre_ms) / shape.pre_sigma_ms) ** 2)
    return trough + peak + pre


def align_shape(shape: UnitShape) -> UnitShape:
    """Locate the raw shape's minimum (to ~1e-12 ms) so that ``unit_shape`` has its trough at 0."""
    from dataclasses import replace

    from scipy.optimize import minimize_scalar

    grid = np.linspace(-0.3, 0.3, 6001)
    k = int(np.argmin(raw_shape(grid, shape)))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    res = minimize_scalar(lambda x: float(raw_shape(np.array([x]), shape)[0]), bounds=(lo, hi),
                          method="bounded", options={"xatol": 1e-12})
    t0 = float(res.x)
    depth = -float(raw_shape(np.array([t0]), shape)[0])
    return replace(shape, trough_shift_ms=t0, trough_depth=depth)


def unit_shape(t_ms: np.ndarray, shape: UnitShape) -> np.ndarray:
    """Aligned, normalised shape ``s(t)``: global minimum exactly ``-1`` at ``t = 0``."""
    return raw_shape(np.asarray(t_ms, dtype=np.float64) + shape.trough_shift_ms, shape) / shape.trough_depth


def spatial_gain(d_um: np.ndarray, decay_length_um: float | None) -> np.ndarray:
    """``g(d) = 1/d * exp(-d / lambda)`` (a monopole, optionally screened); ``lambda=None``: ``1/d``."""
    d = np.asarray(d_um, dtype=np.float64)
    g = 1.0 / d
    if decay_length_um is not None:
        g = g * np.exp(-d / decay_length_um)
    return g


def taper(n_samples: int, nbefore: int, sampling_frequency: float) -> np.ndarray:
    """Window equal to 1 except cosine ramps of ``TAPER_MS`` at both ends (never touches sample nbefore)."""
    w = np.ones(n_samples)
    n_t = int(round(TAPER_MS * sampling_frequency / 1000.0))
    n_t = max(0, min(n_t, nbefore, n_samples - nbefore - 1))
    if n_t > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n_t) + 0.5) / n_t)
        w[:n_t] = ramp
        w[n_samples - n_t:] = ramp[::-1]
    return w


def unit_templates_at(
    positions_um: np.ndarray,
    channel_locations_um: np.ndarray,
    *,
    shape: UnitShape,
    scale: float,
    nbefore: int,
    n_samples: int,
    sampling_frequency: float,
    decay_length_um: float | None,
) -> np.ndarray:
    """Templates ``(n_positions, n_samples, n_channels)`` (µV) of one unit at several 3-D positions.

    ``positions_um`` is ``(n_positions, 3)`` (x, y, z; contacts lie in the plane z = 0).
    The contact nearest to each position gets ``-scale * g(d_min)`` exactly at sample ``nbefore``.
    """
    pos = np.atleast_2d(np.asarray(positions_um, dtype=np.float64))
    loc = np.asarray(channel_locations_um, dtype=np.float64)
    dxy = pos[:, None, :2] - loc[None, :, :]
    d = np.sqrt((dxy ** 2).sum(-1) + pos[:, None, 2] ** 2)            # (P, C)
    extra = d - d.min(axis=1, keepdims=True)                           # 0 on the nearest contact
    capped = np.minimum(extra, DELAY_CAP_UM)
    omega = 1.0 + shape.widening_per_um * capped                      # widening factor
    delay_ms = capped / shape.propagation_um_per_ms                   # propagation delay
    t_ms = (np.arange(n_samples) - nbefore) * (1000.0 / sampling_frequency)
    arg = (t_ms[None, :, None] - delay_ms[:, None, :]) / omega[:, None, :]
    wave = unit_shape(arg, shape)                                      # (P, T, C)
    gain = scale * spatial_gain(d, decay_length_um)                    # (P, C)
    out = wave * gain[:, None, :] * taper(n_samples, nbefore, sampling_frequency)[None, :, None]
    return out
