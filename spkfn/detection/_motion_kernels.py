"""Numeric kernels of motion estimation and correction (plain numpy / scipy / numba).

Nothing here validates its input: :mod:`spkfn.detection.motion` does, then calls these.

Conventions
-----------
- A *raster* is a ``(n_time_bins, n_depth_bins)`` float32 image of peak activity (depth along the
  probe, ``y``); ``R[t](z) ~ h(z - p[t])`` when the tissue has moved by ``p[t]``.
- Displacements returned by the kernels are in depth bins unless a name says ``_um``.
- A unit of reference depth ``y`` appears at ``y + p`` (the generator's convention).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy import linalg
from scipy.ndimage import gaussian_filter1d

__all__ = [
    "peak_raster",
    "smooth_raster",
    "depth_windows",
    "window_support",
    "pairwise_displacement",
    "solve_displacement",
    "solve_blocks",
    "normal_equations",
    "robust_solve",
    "template_registration",
    "shift_rows",
    "interp_motion",
    "kriging_weights",
    "ChannelInterpolator",
    "apply_channel_weights",
]

#: Window values below this fraction of the window's peak are treated as zero (support cut).
WINDOW_CUT = 1e-3


# --------------------------------------------------------------------------------------------- raster


def peak_raster(time_index: np.ndarray, depth_um: np.ndarray, weights: np.ndarray, *, n_time: int,
                depth_edges_um: np.ndarray, n_extra: int = 1, extra_index: np.ndarray | None = None) -> np.ndarray:
    """``(n_time, n_extra, n_depth)`` histogram of ``weights`` (float32).

    ``time_index`` are time-bin indices (out-of-range rows are dropped); depths outside the edges
    are dropped; ``extra_index`` (e.g. an amplitude class) indexes the middle axis.
    """
    nz = depth_edges_um.size - 1
    bin_um = float(depth_edges_um[1] - depth_edges_um[0])
    zi = np.floor((depth_um - depth_edges_um[0]) / bin_um).astype(np.int64)
    ok = (zi >= 0) & (zi < nz) & (time_index >= 0) & (time_index < n_time) & np.isfinite(depth_um)
    ei = np.zeros(time_index.shape, np.int64) if extra_index is None else extra_index.astype(np.int64)
    flat = (time_index[ok] * n_extra + ei[ok]) * nz + zi[ok]
    out = np.bincount(flat, weights=weights[ok].astype(np.float64), minlength=n_time * n_extra * nz)
    return out.reshape(n_time, n_extra, nz).astype(np.float32)


def smooth_raster(r: np.ndarray, *, sigma_depth_bins: float, sigma_time_bins: float) -> np.ndarray:
    """Gaussian smoothing along depth (last axis) and time (first axis); zero-padded ends."""
    out = r
    if sigma_depth_bins > 0:
        out = gaussian_filter1d(out, sigma_depth_bins, axis=-1, mode="constant", truncate=4.0)
    if sigma_time_bins > 0 and out.shape[0] > 1:
        out = gaussian_filter1d(out, sigma_time_bins, axis=0, mode="nearest", truncate=4.0)
    return np.ascontiguousarray(out, dtype=np.float32)


# --------------------------------------------------------------------------------------------- windows


def depth_windows(depth_centers_um: np.ndarray, window_centers_um: np.ndarray, *, shape: str,
                  scale_um: float) -> np.ndarray:
    """``(n_windows, n_depth_bins)`` window weights (peak 1) evaluated at the raster's bin centres.

    ``"gaussian"``: ``exp(-d² / 2 scale²)`` (``scale`` is the standard deviation), cut below
    :data:`WINDOW_CUT`; ``"rect"``: 1 for ``|d| <= scale / 2``; ``"triangle"``:
    ``max(0, 1 - 2|d| / scale)`` (``scale`` is the full width); ``"flat"``: 1 everywhere (rigid).
    """
    d = depth_centers_um[None, :] - window_centers_um[:, None]
    if shape == "flat":
        return np.ones_like(d)
    if shape == "gaussian":
        w = np.exp(-0.5 * (d / scale_um) ** 2)
        w[w < WINDOW_CUT] = 0.0
    elif shape == "rect":
        w = (np.abs(d) <= 0.5 * scale_um).astype(np.float64)
    else:  # triangle
        w = np.clip(1.0 - 2.0 * np.abs(d) / scale_um, 0.0, None)
    return w


def window_support(w: np.ndarray) -> tuple[int, int]:
    """``[lo, hi)`` indices of the non-zero part of a window (``(0, 0)`` when empty)."""
    nz = np.flatnonzero(w > 0)
    if nz.size == 0:
        return 0, 0
    return int(nz[0]), int(nz[-1]) + 1


# --------------------------------------------------------------------------------------------- pairwise


def _parabola_offset(c_minus, c0, c_plus):
    """Sub-bin offset of a sampled maximum from three samples (0 where undefined), in [-0.5, 0.5]."""
    den = c_minus - 2.0 * c0 + c_plus
    with np.errstate(invalid="ignore", divide="ignore"):
        off = 0.5 * (c_minus - c_plus) / den
    off = np.where(np.isfinite(off) & (den < 0), off, 0.0)
    return np.clip(off, -0.5, 0.5)


def pairwise_displacement(r: np.ndarray, w: np.ndarray, *, max_lag: int, horizon: int | None = None,
                          block_rows: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise displacements and correlations of the rows of a raster, seen through a window.

    For every pair of time bins ``(i, j)`` and lag ``k`` in ``[-max_lag, max_lag]``, the weighted
    Pearson correlation over depth of ``r[i](z)`` and ``r[j](z + k)`` with weights ``w(z)``
    (``r`` zero outside its depth range). The best lag ``k*`` (refined below one bin by a parabola
    through the correlation at ``k* - 1, k*, k* + 1``) estimates ``p[j] - p[i]``.

    Parameters
    ----------
    r : (T, Z) float32
    w : (Z,) window weights (>= 0)
    max_lag : int
        Largest lag searched (bins).
    horizon : int, optional
        Only pairs with ``|i - j| <= horizon`` are correlated (others get ``C = 0``).

    Returns
    -------
    D : (T, T) float32
        ``D[i, j] = p[i] - p[j]`` in bins (antisymmetric up to noise).
    C : (T, T) float32
        Correlation at the best lag, in [-1, 1]; 0 where a row is empty or the pair not computed.
    """
    T, Z = r.shape
    lo, hi = window_support(w)
    D = np.zeros((T, T), np.float32)
    C = np.zeros((T, T), np.float32)
    if hi <= lo or T == 0:
        return D, C
    K = int(max_lag)
    wv = w[lo:hi].astype(np.float32)
    N = float(wv.sum())
    # zero-padded raster so that every shifted slice exists
    pad_lo = max(0, K - lo)
    pad_hi = max(0, hi + K - Z)
    rp = np.pad(r, ((0, 0), (pad_lo, pad_hi)))
    off = pad_lo
    a = r[:, lo:hi]
    aw = a * wv
    et = aw.sum(1, dtype=np.float64) / N
    vt = (aw * a).sum(1, dtype=np.float64) / N - et ** 2
    lags = np.arange(-K, K + 1)
    # statistics of every shifted row: (2K+1, T)
    ex = np.empty((lags.size, T))
    vx = np.empty((lags.size, T))
    for m, k in enumerate(lags):
        xk = rp[:, off + lo + k: off + hi + k]
        ex[m] = xk @ wv / N
        vx[m] = (xk * xk) @ wv / N - ex[m] ** 2
    tiny = 1e-12
    ok_t = vt > tiny * max(1.0, float(np.abs(et).max(initial=0.0)) ** 2)
    sd_t = np.sqrt(np.where(ok_t, vt, 1.0))
    ok_x = vx > tiny * max(1.0, float(np.abs(ex).max(initial=0.0)) ** 2)
    sd_x = np.sqrt(np.where(ok_x, vx, 1.0))
    H = T if horizon is None else int(horizon)
    for i0 in range(0, T, block_rows):
        i1 = min(T, i0 + block_rows)
        j0, j1 = max(0, i0 - H), min(T, i1 + H)
        awb = aw[i0:i1]
        best = np.full((i1 - i0, j1 - j0), -np.inf, np.float32)
        best_k = np.zeros(best.shape, np.int32)
        best_prev = np.full(best.shape, np.nan, np.float32)
        best_next = np.full(best.shape, np.nan, np.float32)
        prev = np.full(best.shape, np.nan, np.float32)
        for m, k in enumerate(lags):
            xk = rp[j0:j1, off + lo + k: off + hi + k]
            s = awb @ xk.T  # (bi, bj) float32 GEMM
            s /= N
            s -= (et[i0:i1, None] * ex[m, None, j0:j1]).astype(np.float32)
            s /= (sd_t[i0:i1, None] * sd_x[m, None, j0:j1]).astype(np.float32)
            s[~ok_x[m, None, j0:j1] | ~ok_t[i0:i1, None]] = 0.0
            np.copyto(best_next, s, where=best_k == m - 1)
            up = s > best
            np.copyto(best, s, where=up)
            best_k[up] = m
            np.copyto(best_prev, prev, where=up)
            best_next[up] = np.nan
            prev = s
        sub = _parabola_offset(best_prev, best, best_next)
        lag = lags[best_k] + sub
        D[i0:i1, j0:j1] = -lag
        C[i0:i1, j0:j1] = best
    if horizon is not None and H < T:
        ii, jj = np.indices((T, T), sparse=True)
        far = np.abs(ii - jj) > H
        C[far] = 0.0
        D[far] = 0.0
    return D, C


# --------------------------------------------------------------------------------------------- solve


def _laplacian(T: int) -> np.ndarray:
    """Path-graph Laplacian (T x T): ``sum_t (p[t+1] - p[t])² = p' L p``."""
    L = np.zeros((T, T))
    if T > 1:
        idx = np.arange(T - 1)
        L[idx, idx] += 1.0
        L[idx + 1, idx + 1] += 1.0
        L[idx, idx + 1] -= 1.0
        L[idx + 1, idx] -= 1.0
    return L


def normal_equations(D: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(A, r)`` with ``A p = r`` the minimiser of ``sum_ij U_ij (p_i - p_j - D_ij)²`` (float64).

    ``A = diag((U + U') 1) - (U + U')`` (a weighted graph Laplacian), ``r_i = sum_j U_ij D_ij -
    sum_j U_ji D_ji``.
    """
    U = U.astype(np.float64)
    M = U + U.T
    A = -M
    A[np.diag_indices_from(A)] += M.sum(1)
    UD = U * D.astype(np.float64)
    rhs = UD.sum(1) - UD.sum(0)
    return A, rhs


def solve_displacement(Ds: np.ndarray, Us: np.ndarray, *, lambda_t: float, lambda_s: float,
                       eps: float = 1e-3) -> np.ndarray:
    """Minimise the decentralised objective over all windows at once (see :func:`solve_blocks`)."""
    eqs = [normal_equations(Ds[b], Us[b]) for b in range(Ds.shape[0])]
    return solve_blocks([e[0] for e in eqs], [e[1] for e in eqs], lambda_t=lambda_t, lambda_s=lambda_s, eps=eps)


def solve_blocks(As: list, rs: list, *, lambda_t: float, lambda_s: float, eps: float = 1e-3) -> np.ndarray:
    """Solve the decentralised problem of ``B`` windows from their data normal equations.

    Minimises ``sum_b sum_ij U[b,i,j] (p[b,i] - p[b,j] - D[b,i,j])² + lambda_t sum_b sum_t
    (p[b,t+1] - p[b,t])² + lambda_s sum_b sum_t (p[b+1,t] - p[b,t])² + eps |p|²`` given each
    window's ``(A_b, r_b)`` (:func:`normal_equations`): a block-tridiagonal linear system (one
    ``T x T`` block per window, coupled by the spatial prior), solved exactly by block Gaussian
    elimination (the block Thomas algorithm) with Cholesky factorisations. The blocks of ``As``
    are modified in place and released. Returns ``P`` of shape ``(B, T)``.
    """
    B = len(As)
    T = rs[0].size
    L = lambda_t * _laplacian(T)
    diag = np.diag_indices(T)
    for b in range(B):
        A = As[b]
        A += L
        A[diag] += eps
        if B > 1 and lambda_s > 0:
            A[diag] += lambda_s * (1.0 if b in (0, B - 1) else 2.0)
    if B == 1 or lambda_s <= 0:
        return np.stack([_spd_solve(As[b], rs[b]) for b in range(B)])
    # Block Thomas: the off-diagonal blocks are -lambda_s * I.
    gam = []  # lambda_s * A~_b^{-1} (T x T)
    ys = []
    for b in range(B):
        a_t = As[b]
        y = rs[b]
        if b > 0:
            a_t -= lambda_s * gam[b - 1]
            y = rs[b] + lambda_s * ys[b - 1]
        fac = linalg.cho_factor(a_t, check_finite=False, overwrite_a=True)
        sol = linalg.cho_solve(fac, np.column_stack([lambda_s * np.eye(T), y]), check_finite=False)
        gam.append(sol[:, :T])
        ys.append(sol[:, T])
        As[b] = None  # release the factorised block
    P = np.empty((B, T))
    P[-1] = ys[-1]
    for b in range(B - 2, -1, -1):
        P[b] = ys[b] + gam[b] @ P[b + 1]
    return P


def _spd_solve(A: np.ndarray, r: np.ndarray) -> np.ndarray:
    try:
        return linalg.solve(A, r, assume_a="pos", check_finite=False)
    except linalg.LinAlgError:  # pragma: no cover - eps keeps A positive definite
        return linalg.lstsq(A, r, check_finite=False)[0]


def robust_solve(D: np.ndarray, U: np.ndarray, *, lambda_t: float, n_iter: int, sigma: float,
                 min_scale: float, eps: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """One window's solution with iterative trimming of outlying pairs.

    After each solve, pairs whose residual ``p_i - p_j - D_ij`` exceeds both ``sigma`` robust
    standard deviations (1.4826 x the weighted median absolute residual, at least ``min_scale``)
    and half the largest residual get weight 0, and the problem is solved again (``n_iter`` solves
    in all). Returns ``(p, U_final)``.
    """
    Uc = U.astype(np.float64, copy=True)
    p = solve_displacement(D[None], Uc[None], lambda_t=lambda_t, lambda_s=0.0, eps=eps)[0]
    for _ in range(max(0, n_iter - 1)):
        active = Uc > 0
        if not active.any():
            break
        res = np.abs(p[:, None] - p[None, :] - D)
        scale = max(1.4826 * _weighted_median(res[active], Uc[active]), min_scale)
        # trim gradually: a gross outlier inflates the residuals of every pair of its time bins
        # in the first solve, so only the worst pairs go at each round
        drop = active & (res > max(sigma * scale, 0.5 * float(res[active].max())))
        if not drop.any():
            break
        Uc[drop] = 0.0
        p = solve_displacement(D[None], Uc[None], lambda_t=lambda_t, lambda_s=0.0, eps=eps)[0]
    return p, Uc


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(x)
    cw = np.cumsum(w[order])
    return float(x[order][np.searchsorted(cw, 0.5 * cw[-1])])


# --------------------------------------------------------------------------------------------- template


def shift_rows(r: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """``out[t](z) = r[t](z + shifts[t])`` for integer shifts (zero fill), any leading shape.

    ``r`` has shape ``(T, ..., Z)``.
    """
    T, Z = r.shape[0], r.shape[-1]
    out = np.zeros_like(r)
    for t in range(T):
        s = int(shifts[t])
        if s >= Z or s <= -Z:
            continue
        if s >= 0:
            out[t, ..., : Z - s] = r[t, ..., s:]
        else:
            out[t, ..., -s:] = r[t, ..., : Z + s]
    return out


def _spectra(r: np.ndarray, max_lag: int) -> dict:
    """Real FFTs along depth of a ``(T, A, Z)`` raster zero-padded by ``max_lag`` on both sides
    (and of its sums over ``A`` of ``x`` and ``x²``), long enough for non-circular correlations."""
    from scipy import fft as sfft

    T, A, Z = r.shape
    K = int(max_lag)
    n = sfft.next_fast_len(Z + 2 * K + Z, real=True)
    rp = np.pad(r.astype(np.float64), ((0, 0), (0, 0), (K, K)))
    return {
        "X": sfft.rfft(rp, n, axis=-1).astype(np.complex64),
        "x1": sfft.rfft(rp.sum(1), n, axis=-1),
        "x2": sfft.rfft((rp * rp).sum(1), n, axis=-1),
        "n": n, "K": K, "shape": r.shape,
    }


def _template_corr(spec: dict, f: np.ndarray, w: np.ndarray, lags: np.ndarray,
                   max_bytes: int = 64 * 1024 * 1024) -> np.ndarray:
    """Weighted Pearson correlation of ``r[t](a, z + k)`` with ``f(a, z)`` for each window and lag.

    ``spec``: :func:`_spectra` of ``r`` (T, A, Z); ``f``: (A, Z); ``w``: (B, Z). Returns
    (T, B, n_lags), ``|lags| <= spec["K"]``. The three sums needed (``Σ w x``, ``Σ w x²``,
    ``Σ w x f`` at every lag) are cross-correlations along depth, done with real FFTs in blocks
    of time bins of bounded memory.
    """
    from scipy import fft as sfft

    T, A, Z = spec["shape"]
    n, K = spec["n"], spec["K"]
    B = w.shape[0]
    N = A * w.sum(1)  # (B,)
    N = np.where(N > 0, N, 1.0)
    ef = (f.sum(0) @ w.T) / N  # E_w[f] per window (B,)
    vf = ((f * f).sum(0) @ w.T) / N - ef ** 2
    G = np.conj(sfft.rfft(f[None, :, :] * w[:, None, :], n, axis=-1)).astype(np.complex64)  # (B, A, F)
    Wc = np.conj(sfft.rfft(w, n, axis=-1))  # (B, F)
    m = K + lags  # positions of the lags in the correlation
    out = np.zeros((T, B, lags.size))
    F = n // 2 + 1
    tc = max(1, int(max_bytes // max(1, 16 * F * (2 * B + 2))))
    scale = float(np.abs(spec["x2"][:, 0]).max(initial=0.0)) / max(1, n)
    for t0 in range(0, T, tc):
        t1 = min(T, t0 + tc)
        exf = sfft.irfft(np.einsum("taf,baf->tbf", spec["X"][t0:t1], G), n, axis=-1)[..., m] / N[None, :, None]
        ex = sfft.irfft(spec["x1"][t0:t1, None, :] * Wc[None], n, axis=-1)[..., m] / N[None, :, None]
        ex2 = sfft.irfft(spec["x2"][t0:t1, None, :] * Wc[None], n, axis=-1)[..., m] / N[None, :, None]
        cov = exf - ex * ef[None, :, None]
        den = np.sqrt(np.clip(ex2 - ex ** 2, 0, None) * np.clip(vf, 0, None)[None, :, None])
        with np.errstate(invalid="ignore", divide="ignore"):
            out[t0:t1] = np.where(den > 1e-6 * max(scale, 1e-30), cov / den, 0.0)
    return out


def _best_lag(corr: np.ndarray, lags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Argmax over the last axis with parabolic refinement; returns (lag, value)."""
    m = np.argmax(corr, axis=-1)
    c0 = np.take_along_axis(corr, m[..., None], -1)[..., 0]
    cm = np.take_along_axis(corr, np.clip(m - 1, 0, None)[..., None], -1)[..., 0]
    cp = np.take_along_axis(corr, np.clip(m + 1, None, lags.size - 1)[..., None], -1)[..., 0]
    cm = np.where(m > 0, cm, np.nan)
    cp = np.where(m < lags.size - 1, cp, np.nan)
    return lags[m] + _parabola_offset(cm, c0, cp), c0


def template_registration(r: np.ndarray, windows: np.ndarray, *, max_lag: int, residual_lag: int,
                          n_iter: int, smooth_time_bins: float, rigid: bool, smooth_windows: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Kilosort 2.5-style registration of each time bin to an iteratively built template.

    ``r`` is ``(T, A, Z)`` (time, amplitude class, depth). Rigid stage: ``n_iter`` rounds of
    (template = mean of the rows shifted by the current integer estimate; each row's shift = best
    lag of its correlation with the template, over ``[-max_lag, max_lag]``). Non-rigid stage (when
    ``rigid`` is false): each rigidly aligned row is correlated with the template through each
    window over ``[-residual_lag, residual_lag]``; the correlations are smoothed over time
    (Gaussian, ``smooth_time_bins``) and over neighbouring windows (``smooth_windows``, in
    windows, as Kilosort smooths its blocks' correlations) before the best lag is taken. Shifts are refined below a bin
    by a parabola.

    Returns ``(P, quality)``: ``P`` (B, T) displacements in bins, ``quality`` (B, T) the peak
    correlation.
    """
    T, A, Z = r.shape
    flat = np.ones((1, Z))
    lags = np.arange(-max_lag, max_lag + 1)
    shifts = np.zeros(T, np.int64)
    active = r.reshape(T, -1).sum(1) > 0
    if not active.any():
        return np.zeros((windows.shape[0] if not rigid else 1, T)), np.zeros((1, T))
    spec = _spectra(r, max_lag)
    for _ in range(max(1, n_iter)):
        f = shift_rows(r[active], shifts[active]).mean(0)
        corr = _template_corr(spec, f, flat, lags)[:, 0, :]
        lag, q = _best_lag(corr, lags)
        new = np.round(lag).astype(np.int64)
        new[~active] = 0
        # keep the template centred: median shift is the reference
        new -= int(np.round(np.median(new[active])))
        if np.array_equal(new, shifts):
            break
        shifts = new
    f = shift_rows(r[active], shifts[active]).mean(0)
    corr = _template_corr(spec, f, flat, lags)[:, 0, :]
    if smooth_time_bins > 0 and T > 1:
        corr = gaussian_filter1d(corr, smooth_time_bins, axis=0, mode="nearest")
    rigid_p, q = _best_lag(corr, lags)
    rigid_p = np.where(active, rigid_p, np.nan)
    if rigid:
        return rigid_p[None, :], np.where(active, q, 0.0)[None, :]
    base = np.round(np.nan_to_num(rigid_p)).astype(np.int64)
    aligned = shift_rows(r, base)
    f = aligned[active].mean(0)
    rl = np.arange(-residual_lag, residual_lag + 1)
    corr = _template_corr(_spectra(aligned, residual_lag), f, windows, rl)  # (T, B, L)
    if smooth_time_bins > 0 and T > 1:
        corr = gaussian_filter1d(corr, smooth_time_bins, axis=0, mode="nearest")
    if smooth_windows > 0 and corr.shape[1] > 1:
        corr = gaussian_filter1d(corr, smooth_windows, axis=1, mode="nearest")
    res, q = _best_lag(corr, rl)  # (T, B)
    P = (base[:, None] + res).T
    P[:, ~active] = np.nan
    return P, np.where(active[None, :], q.T, 0.0)


# --------------------------------------------------------------------------------------------- interpolation


def interp_motion(values: np.ndarray, time_bins: np.ndarray, depth_bins: np.ndarray, t: np.ndarray,
                  y: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of a ``(n_time_bins, n_depth_bins)`` grid at points ``(t, y)``.

    Outside the bin centres the nearest edge value is used (no extrapolation).
    """
    t = np.asarray(t, np.float64)
    y = np.asarray(y, np.float64)
    ti, tw = _lin_index(time_bins, t)
    zi, zw = _lin_index(depth_bins, y)
    v00 = values[ti, zi]
    v01 = values[ti, np.minimum(zi + 1, depth_bins.size - 1)]
    v10 = values[np.minimum(ti + 1, time_bins.size - 1), zi]
    v11 = values[np.minimum(ti + 1, time_bins.size - 1), np.minimum(zi + 1, depth_bins.size - 1)]
    return (1 - tw) * ((1 - zw) * v00 + zw * v01) + tw * ((1 - zw) * v10 + zw * v11)


def _lin_index(centres: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = centres.size
    if n == 1:
        return np.zeros(x.shape, np.int64), np.zeros(x.shape)
    i = np.clip(np.searchsorted(centres, x, side="right") - 1, 0, n - 2)
    w = (x - centres[i]) / (centres[i + 1] - centres[i])
    w = np.clip(w, 0.0, 1.0)
    return i, w


class ChannelInterpolator:
    """Interpolation weights from fixed contacts to moving target points, per group.

    The contacts' kriging matrix is inverted once (at construction); each call then evaluates
    ``K(targets, contacts)`` (numpy, elementwise) and multiplies its non-negligible entries with
    the inverse in a numba loop, so the weights never depend on BLAS threading (calls from several
    threads give identical results).

    - ``"kriging"``: ``W = K(target, source) (K(source, source) + 1e-6 I)^-1`` (simple kriging,
      i.e. the Gaussian-process posterior mean), with ``K = exp(-d² / 2σ²)`` (``kernel="gaussian"``)
      or ``exp(-d / σ)`` (``"exponential"``); weights below ``cut`` (absolute) are set to 0 and
      each row renormalised to sum to 1 (a constant signal is kept). At the contacts ``W = I``.
    - ``"linear"``: inverse-distance weights of the (up to) 3 nearest contacts (exact at a contact).
    - ``"nearest"``: the nearest contact.

    Each target uses only the contacts of its own group.
    """

    def __init__(self, source: np.ndarray, source_group: np.ndarray, *, method: str, sigma_um: float = 20.0,
                 kernel: str = "gaussian", cut: float = 1e-3):
        self.source = np.asarray(source, np.float64)
        self.source_group = np.asarray(source_group)
        self.method, self.sigma, self.kernel, self.cut = method, float(sigma_um), kernel, float(cut)
        self.inverse = {}
        if method == "kriging":
            for g in np.unique(self.source_group):
                idx = np.flatnonzero(self.source_group == g)
                d = np.sqrt(((self.source[idx, None, :] - self.source[None, idx, :]) ** 2).sum(-1))
                kss = self._k(d)
                kss[np.diag_indices(idx.size)] += 1e-6
                fac = linalg.cho_factor(kss, lower=True, check_finite=False)
                self.inverse[g] = np.ascontiguousarray(linalg.cho_solve(fac, np.eye(idx.size), check_finite=False))

    def _k(self, d):
        if self.kernel == "gaussian":
            return np.exp(-0.5 * (d / self.sigma) ** 2)
        return np.exp(-d / self.sigma)

    def weights(self, target: np.ndarray, target_group: np.ndarray) -> np.ndarray:
        """``(n_target, n_source)`` weights."""
        target = np.asarray(target, np.float64)
        target_group = np.asarray(target_group)
        nt, ns = target.shape[0], self.source.shape[0]
        W = np.zeros((nt, ns))
        for g in np.unique(target_group):
            rows = np.flatnonzero(target_group == g)
            cols = np.flatnonzero(self.source_group == g)
            if cols.size == 0:
                continue
            d = np.sqrt(((target[rows, None, :] - self.source[None, cols, :]) ** 2).sum(-1))
            if self.method == "nearest":
                W[rows, cols[np.argmin(d, axis=1)]] = 1.0
            elif self.method == "linear":
                k = min(3, cols.size)
                idx = np.argsort(d, axis=1, kind="stable")[:, :k]
                dk = np.take_along_axis(d, idx, 1)
                inv = 1.0 / np.maximum(dk, 1e-12)
                exact = dk[:, 0] < 1e-6
                inv[exact] = 0.0
                inv[exact, 0] = 1.0
                inv /= inv.sum(1, keepdims=True)
                sub = np.zeros((rows.size, cols.size))
                np.put_along_axis(sub, idx, inv, 1)
                W[np.ix_(rows, cols)] = sub
            else:
                kts = self._k(d)
                kts[kts < 1e-12] = 0.0  # exp underflow region: no contribution
                sub = _sparse_left_matmul(kts, self.inverse[g])
                sub[np.abs(sub) < self.cut] = 0.0
                ssum = sub.sum(1, keepdims=True)
                sub = np.divide(sub, ssum, out=np.zeros_like(sub), where=np.abs(ssum) > 1e-12)
                W[np.ix_(rows, cols)] = sub
        return W


@njit(nogil=True, cache=True)
def _sparse_left_matmul(a, b):  # pragma: no cover - numba
    """``a @ b`` skipping the zeros of ``a`` (fixed summation order: deterministic)."""
    out = np.zeros((a.shape[0], b.shape[1]))
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            v = a[i, j]
            if v != 0.0:
                for k in range(b.shape[1]):
                    out[i, k] += v * b[j, k]
    return out


def kriging_weights(source: np.ndarray, target: np.ndarray, *, source_group: np.ndarray,
                    target_group: np.ndarray, method: str, sigma_um: float, kernel: str,
                    cut: float = 1e-3) -> np.ndarray:
    """One-off :class:`ChannelInterpolator` weights."""
    return ChannelInterpolator(source, source_group, method=method, sigma_um=sigma_um, kernel=kernel,
                               cut=cut).weights(target, target_group)


def sparse_weights(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(idx, val)`` ``(n_target, k)`` tables of the non-zero weights (padded with index 0, value 0)."""
    nnz = (W != 0).sum(1)
    k = max(1, int(nnz.max(initial=1)))
    order = np.argsort(W == 0, axis=1, kind="stable")[:, :k]
    val = np.take_along_axis(W, order, 1)
    idx = np.where(val != 0, order, 0)
    return idx.astype(np.int64), val.astype(np.float32)


@njit(nogil=True, cache=True, fastmath=True, boundscheck=False)
def _apply_weights_t(xt, out_t, row0, row1, idx, val):  # pragma: no cover - numba
    # channel-major: the inner loop runs over contiguous samples (a vectorised AXPY)
    n = row1 - row0
    for c in range(idx.shape[0]):
        o = out_t[c, row0:row1]
        o[:] = 0.0
        for m in range(idx.shape[1]):
            w = val[c, m]
            if w == 0.0:
                continue
            xr = xt[idx[c, m], row0:row1]
            for s in range(n):
                o[s] += w * xr[s]


def apply_channel_weights(xt: np.ndarray, out_t: np.ndarray, row0: int, row1: int, idx: np.ndarray,
                          val: np.ndarray) -> None:
    """``out_t[c, s] = sum_m val[c, m] * xt[idx[c, m], s]`` for samples ``row0 <= s < row1``, in
    place, on channel-major (transposed) arrays."""
    _apply_weights_t(xt, out_t, int(row0), int(row1), idx, val)
