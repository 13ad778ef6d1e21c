"""Seeded noise in fixed blocks (private): white or band-limited, optionally spatially correlated.

Block ``b`` covers samples ``[b * NOISE_BLOCK_SAMPLES, (b + 1) * NOISE_BLOCK_SAMPLES)`` and is a
pure function of ``(seed, b)`` and the noise parameters: its generator is seeded with
``np.random.SeedSequence(seed, spawn_key=(STREAM_NOISE, b))``. Any window of samples is cut from
the blocks it overlaps, so the noise never depends on how the recording is chunked.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ._kernels import sos_filter, sparse_mix

#: Samples per noise block (part of the reproducibility contract: changing it changes the noise).
NOISE_BLOCK_SAMPLES = 16384

# Independent random streams of one seed (SeedSequence spawn keys).
STREAM_NOISE = 0
STREAM_UNITS = 1
STREAM_TRAINS = 2
STREAM_AMPLITUDES = 3
STREAM_DRIFT = 4
STREAM_JITTER = 5

#: Entries of the spatial mixing matrix below this fraction of their row's largest are dropped.
MIXING_TOLERANCE = 1e-3
#: Noise blocks kept in memory per recording (for reads in windows smaller than a block).
CACHED_BLOCKS = 2
#: Butterworth order of the band-limited noise filter.
BAND_ORDER = 2


def rng_for(seed: int, *key: int) -> np.random.Generator:
    """The generator of stream ``key`` of ``seed`` (SFC64 bit generator, SeedSequence-seeded)."""
    return np.random.Generator(np.random.SFC64(np.random.SeedSequence(seed, spawn_key=tuple(key))))


def spatial_mixing(locations: np.ndarray, groups: np.ndarray, corr_um: float):
    """CSR rows ``(indptr, indices, data)`` of a mixing matrix ``M`` with ``M M^T ~= C``.

    ``C_ij = exp(-d_ij / corr_um)`` within a group, 0 across groups. ``M`` is the Cholesky factor
    of ``C`` with entries below ``MIXING_TOLERANCE`` of the row's largest dropped and each row
    renormalised to unit norm, so every channel keeps exactly unit variance.
    """
    diff = locations[:, None, :] - locations[None, :, :]
    d = np.sqrt((diff ** 2).sum(-1))
    cov = np.exp(-d / corr_um) * (groups[:, None] == groups[None, :])
    cov[np.diag_indices_from(cov)] += 1e-9
    chol = np.linalg.cholesky(cov)
    keep = np.abs(chol) >= MIXING_TOLERANCE * np.abs(chol).max(axis=1, keepdims=True)
    chol = np.where(keep, chol, 0.0)
    chol /= np.sqrt((chol ** 2).sum(axis=1, keepdims=True))
    indptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))]).astype(np.int64)
    indices = np.concatenate([np.flatnonzero(r) for r in keep]).astype(np.int64)
    data = chol[keep].astype(np.float32)  # row-major order matches indices
    return indptr, indices, data


def band_filter(band_hz: tuple[float, float], sampling_frequency: float):
    """``(sos, gain, margin)`` of the band-limited noise, or ``None`` when the band is everything.

    A causal Butterworth filter of order ``BAND_ORDER`` (``scipy.signal.butter``): band-pass
    ``[lo, hi]``, high-pass when ``hi >= fs / 2``, low-pass when ``lo == 0``. ``gain`` rescales
    its output to unit variance for unit white input (``1 / sqrt(sum h^2)``, ``h`` the impulse
    response); ``margin`` is the warm-up (``20 tau`` of the slowest pole, at most one block) drawn
    before each block and discarded.
    """
    import scipy.signal

    lo, hi = float(band_hz[0]), float(band_hz[1])
    fs = float(sampling_frequency)
    has_lo, has_hi = lo > 0, hi < fs / 2
    if not (has_lo or has_hi):
        return None
    if has_lo and has_hi:
        sos = scipy.signal.butter(BAND_ORDER, [lo, hi], btype="bandpass", fs=fs, output="sos")
    elif has_lo:
        sos = scipy.signal.butter(BAND_ORDER, lo, btype="highpass", fs=fs, output="sos")
    else:
        sos = scipy.signal.butter(BAND_ORDER, hi, btype="lowpass", fs=fs, output="sos")
    poles = np.concatenate([np.roots([1.0, s[4], s[5]]) for s in sos])
    tau_samples = 1.0 / max(1e-12, -np.log(np.abs(poles).max()))
    margin = int(min(NOISE_BLOCK_SAMPLES, math.ceil(20.0 * tau_samples)))
    impulse = np.zeros(max(int(fs), 50 * int(math.ceil(tau_samples))))
    impulse[0] = 1.0
    h = scipy.signal.sosfilt(sos, impulse)
    return sos.astype(np.float64), float(1.0 / np.sqrt((h ** 2).sum())), margin


class NoiseModel:
    """Noise of one recording: ``window(start, stop)`` -> float32 ``(stop - start, n_channels)`` µV."""

    def __init__(self, *, seed: int, std_uV: np.ndarray, mixing=None, band=None):
        self.seed = int(seed)
        self.std = np.asarray(std_uV, dtype=np.float64)
        self.n_channels = self.std.size
        self.mixing = mixing
        self.band = band
        self.scale = (self.std * (1.0 if band is None else band[1])).astype(np.float32)
        # The last blocks made, so that reading a block in several small windows makes it once.
        # Thread-safe; entries are never modified (window() copies out of them).
        self._cached_block = functools.lru_cache(maxsize=CACHED_BLOCKS)(self.block)

    def block(self, b: int) -> np.ndarray:
        B = NOISE_BLOCK_SAMPLES
        rng = rng_for(self.seed, STREAM_NOISE, int(b))
        if self.band is None:
            z = rng.standard_normal((B, self.n_channels), dtype=np.float32)
        else:
            sos, gain, margin = self.band
            z = rng.standard_normal((margin + B, self.n_channels), dtype=np.float32)
            z = sos_filter(z, sos)[margin:]
        if self.mixing is not None:
            z = sparse_mix(np.ascontiguousarray(z), *self.mixing)
        z *= self.scale[None, :]
        return z

    def window(self, start: int, stop: int) -> np.ndarray:
        B = NOISE_BLOCK_SAMPLES
        if start % B == 0 and stop - start == B:
            return self.block(start // B)  # a fresh array: the caller may add spikes in place
        out = np.empty((stop - start, self.n_channels), dtype=np.float32)
        if stop <= start:
            return out
        for b in range(start // B, (stop - 1) // B + 1):
            a, e = max(start, b * B), min(stop, (b + 1) * B)
            whole = a == b * B and e == (b + 1) * B
            # A block read whole is not cached: chunks aligned on blocks never come back to it.
            blk = self.block(b) if whole else self._cached_block(b)
            out[a - start:e - start] = blk[a - b * B:e - b * B]
        return out
