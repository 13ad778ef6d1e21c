"""Whitening: decorrelate channels so the noise has (about) identity covariance.

The covariance is estimated from seeded random chunks, per group (shank / probe): the whitening
matrix is block-diagonal and never mixes groups. ``mode="local"`` whitens each channel against
its neighbours within ``radius_um`` only (as Kilosort does), which keeps the operator sparse and
local.
"""

from __future__ import annotations

import dask
import numpy as np
import xarray as xr

from ..core.chunks import resolve_n_jobs
from ..core.validate import check_choice, check_int, check_number
from ..io.recording import channel_locations, check_recording, get_traces, num_samples
from ._base import lazy_transform
from .utils import neighbours_within, random_chunk_bounds

__all__ = ["whiten", "whitening_matrix", "covariance_moments", "ledoit_wolf_shrinkage"]


def _chunk_moments(chunk, mean: np.ndarray | None = None, fourth: bool = False) -> dict:
    """Moments of one chunk: count, mean, scatter about the chunk's own mean (stable in float32)."""
    x = np.asarray(chunk, dtype=np.float32)
    if mean is not None:
        x = x - mean[None, :].astype(np.float32)
    m = x.mean(axis=0, dtype=np.float64)
    xc = x - m[None, :].astype(np.float32)
    out = {"n": x.shape[0], "mean": m, "scatter": (xc.T @ xc).astype(np.float64), "g": None}
    if fourth:
        q = x * x
        out["g"] = (q.T @ q).astype(np.float64)
    return out


def _combine_moments(parts: list) -> dict:
    """Merge per-chunk moments (Chan et al.'s pairwise update, all at once)."""
    parts = [p for p in parts if p["n"] > 0]
    if not parts:
        raise ValueError("no samples to estimate a covariance from.")
    n = sum(p["n"] for p in parts)
    mean = sum(p["n"] * p["mean"] for p in parts) / n
    scatter = sum(p["scatter"] for p in parts)
    for p in parts:
        d = p["mean"] - mean
        scatter = scatter + p["n"] * np.outer(d, d)
    out = {"n": n, "sum": mean * n, "xtx": scatter + n * np.outer(mean, mean), "scatter": scatter, "g": None}
    if parts[0]["g"] is not None:
        out["g"] = sum(p["g"] for p in parts)
    return out


def covariance_moments(chunks, *, mean: np.ndarray | None = None, fourth: bool = False) -> dict:
    """Accumulate second moments (and the 4th-moment matrix Ledoit-Wolf needs) over chunks.

    Parameters
    ----------
    chunks : iterable of ndarray, each (n_samples, n_channels)
        Traces (float).
    mean : ndarray, shape (n_channels,), optional
        Subtracted from every sample before accumulating.
    fourth : bool, default False
        Also accumulate ``G = sum_t (x_t**2)(x_t**2)^T`` so that, for any channel subset ``J``,
        ``sum_t ||x_tJ||^4 = 1_J^T G 1_J``.

    Returns
    -------
    dict
        ``n`` (samples), ``sum`` (per channel), ``xtx`` (``sum_t x_t x_t^T``), ``scatter``
        (``sum_t (x_t - m)(x_t - m)^T`` about the overall mean ``m``), optionally ``g``. Each
        chunk's products are taken about its own mean (float32, fast and accurate even with
        large offsets) and merged in float64.

    Examples
    --------
    >>> import numpy as np
    >>> m = covariance_moments([np.ones((3, 2)), 2 * np.ones((1, 2))])
    >>> m["n"], m["xtx"].tolist()
    (4, [[7.0, 7.0], [7.0, 7.0]])
    """
    return _combine_moments([_chunk_moments(c, mean=mean, fourth=fourth) for c in chunks])


def ledoit_wolf_shrinkage(cov: np.ndarray, fourth_sum: float, n: int) -> float:
    """Ledoit-Wolf shrinkage intensity towards ``mean(diag) * I`` (Ledoit & Wolf, 2004).

    Parameters
    ----------
    cov : ndarray (p, p)
        Sample covariance ``S = X^T X / n`` of centred data.
    fourth_sum : float
        ``sum_t ||x_t||^4`` over the same samples.
    n : int
        Number of samples.

    Returns
    -------
    float in [0, 1]: ``alpha`` such that ``(1 - alpha) S + alpha mu I`` is the estimator.

    Notes
    -----
    With ``mu = tr(S) / p``, ``d2 = ||S - mu I||_F^2``,
    ``b2 = min(d2, (sum_t ||x_t||^4 - n ||S||_F^2) / n^2)`` and ``alpha = b2 / d2``.

    Examples
    --------
    >>> import numpy as np
    >>> ledoit_wolf_shrinkage(np.eye(3), 3.0, 1)      # already spherical: nothing to shrink
    0.0
    """
    p = cov.shape[0]
    mu = np.trace(cov) / p
    d2 = float(np.sum((cov - mu * np.eye(p)) ** 2))
    if d2 <= 0:
        return 0.0
    b2 = (fourth_sum - n * float(np.sum(cov ** 2))) / (n * n)
    b2 = min(max(b2, 0.0), d2)
    return float(b2 / d2)


def _zca(cov: np.ndarray, eps: float) -> np.ndarray:
    evals, evecs = np.linalg.eigh(cov)
    evals = np.clip(evals, 0.0, None)
    return (evecs / np.sqrt(evals + eps)[None, :]) @ evecs.T


def whitening_matrix(moments: dict, *, groups: np.ndarray, mode: str = "global",
                     locations: np.ndarray | None = None, radius_um: float = 100.0,
                     eps: float | None = None, regularization: str = "none",
                     apply_mean: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Whitening matrix ``W`` and mean from accumulated moments (see :func:`covariance_moments`).

    ``whitened = (x - mean) @ W.T``. ``W`` is the symmetric (ZCA) inverse square root
    ``U diag(1 / sqrt(lambda + eps)) U^T`` of the covariance of each group (``mode="global"``), or,
    with ``mode="local"``, row ``i`` of the ZCA matrix of channel ``i``'s neighbourhood (channels of
    its group within ``radius_um``).

    Parameters
    ----------
    moments : dict
        From :func:`covariance_moments` (with ``fourth=True`` for Ledoit-Wolf). When
        ``apply_mean``, the moments must be of the centred data.
    groups : ndarray (n_channels,)
    mode : {"global", "local"}
    locations : ndarray (n_channels, 2), optional
        Needed for ``mode="local"``.
    radius_um : float
    eps : float, optional
        Added to the eigenvalues; default ``1e-6 * mean(diag(C))`` per group.
    regularization : {"none", "ledoit_wolf"}
        Shrink each covariance block towards a scaled identity (Ledoit & Wolf, 2004) before
        inverting: better conditioned when the chunks are short relative to the channel count.
    apply_mean : bool
        Whether the moments were centred (the returned mean is then their mean).

    Returns
    -------
    W : ndarray (n_channels, n_channels), mean : ndarray (n_channels,)

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(5000, 2)) @ np.array([[2.0, 1.0], [0.0, 1.0]])
    >>> W, _ = whitening_matrix(covariance_moments([x]), groups=np.zeros(2))
    >>> (np.cov((x @ W.T).T, bias=True).round(2) + 0.0).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    n = moments["n"]
    xtx = moments["xtx"]
    c = xtx.shape[0]
    mean = moments["sum"] / n if apply_mean else np.zeros(c)
    cov = xtx / n  # centred data when apply_mean (see covariance_moments(mean=...))
    groups = np.asarray(groups)
    W = np.zeros((c, c))

    def _block(idx: np.ndarray) -> np.ndarray:
        sub = cov[np.ix_(idx, idx)]
        if regularization == "ledoit_wolf":
            fourth_sum = float(moments["g"][np.ix_(idx, idx)].sum())
            alpha = ledoit_wolf_shrinkage(sub, fourth_sum, n)
            mu = np.trace(sub) / idx.size
            sub = (1 - alpha) * sub + alpha * mu * np.eye(idx.size)
        scale = float(np.mean(np.diag(sub)))
        e = eps if eps is not None else 1e-6 * scale if scale > 0 else 1e-12
        return _zca(sub, e)

    if mode == "global":
        for g in np.unique(groups):
            idx = np.flatnonzero(groups == g)
            W[np.ix_(idx, idx)] = _block(idx)
    else:
        neigh = neighbours_within(locations, radius_um=radius_um, groups=groups)
        for i in range(c):
            idx = np.flatnonzero(neigh[i])
            Wi = _block(idx)
            W[i, idx] = Wi[int(np.flatnonzero(idx == i)[0])]
    return W, mean


def whiten(
    recording: xr.DataArray,
    *,
    mode: str = "global",
    radius_um: float = 100.0,
    eps: float | None = None,
    regularization: str = "none",
    num_chunks: int = 20,
    chunk_duration_s: float = 0.5,
    seed: int = 0,
    apply_mean: bool = False,
    int_scale: float | None = None,
    dtype="float32",
    matrix: np.ndarray | None = None,
    mean_uV: np.ndarray | None = None,
    chunk_size: int | None = None,
    n_jobs: int | None = None,
) -> tuple[xr.DataArray, np.ndarray]:
    """Whiten a recording: ``(x_uV - mean) @ W.T`` with ``W`` estimated from random chunks (lazy).

    Parameters
    ----------
    recording : xarray.DataArray
        Recording, usually band-pass filtered and referenced first.
    mode : {"global", "local"}, default "global"
        ``"global"``: one ZCA matrix per group (block-diagonal over groups). ``"local"``: each
        channel is whitened against the channels of its group within ``radius_um`` (needs
        geometry).
    radius_um : float, default 100.0
        Neighbourhood radius for ``mode="local"`` (µm).
    eps : float, optional
        Regulariser added to the covariance eigenvalues (µV²). Default ``1e-6`` times the mean
        channel variance of the block, so dead (flat) channels stay finite.
    regularization : {"none", "ledoit_wolf"}, default "none"
        Covariance shrinkage before inversion (Ledoit & Wolf, 2004), useful with few samples
        per channel.
    num_chunks : int, default 20
    chunk_duration_s : float, default 0.5
        Random chunks used for the covariance (``num_chunks * chunk_duration_s`` seconds, drawn
        with ``seed`` by :func:`spkfn.preprocessing.utils.random_chunks`).
    seed : int, default 0
    apply_mean : bool, default False
        Subtract the per-channel mean (from the same chunks) and use the centred covariance.
        Without it the second moment ``E[x x^T]`` is used (right for filtered, zero-mean data).
    int_scale : float, optional
        Multiply the whitened traces by this factor (e.g. 200 to store them as int16 with noise
        std 200, as Kilosort does).
    dtype : numpy dtype, default "float32"
        Output dtype. Integer types are rounded and clipped to the type's range (use
        ``int_scale``).
    matrix : ndarray (n_channels, n_channels), optional
        Use this whitening matrix (e.g. from another part of the session) instead of
        estimating one; ``mean_uV`` then gives the mean to remove (default zeros).
    mean_uV : ndarray (n_channels,), optional
        Only with ``matrix``.
    chunk_size : int, optional
        Samples per chunk of the output (default: the recording's chunks).
    n_jobs : int, optional
        Threads reading the random chunks (default: all cores); the matrix does not depend on it.

    Returns
    -------
    recording : xarray.DataArray
        Whitened traces, in units of the noise (``gain_to_uV`` is ``1 / int_scale`` or 1, offset 0).
    matrix : ndarray (n_channels, n_channels)
        ``W`` with ``whitened = (x_uV - mean) @ W.T`` (before ``int_scale``); zero between groups.

    Notes
    -----
    ZCA whitening: for the covariance ``C = U diag(lambda) U^T`` of a block,
    ``W = U diag(1 / sqrt(lambda + eps)) U^T`` (the symmetric choice, which changes each channel the
    least; Bell & Sejnowski 1997). ``mode="local"`` follows Kilosort (Pachitariu et al., 2016,
    ``whiteningLocal``). The estimate uses seeded random chunks, so it is reproducible and does not
    depend on the chunking of the output.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> rng = np.random.default_rng(0)
    >>> mix = np.array([[1.0, 0.8, 0.0], [0.0, 0.6, 0.5], [0.0, 0.0, 1.0]])
    >>> rec = from_array((rng.normal(size=(60000, 3)) @ mix).astype("float32"), sampling_frequency=30000.0)
    >>> out, W = whiten(rec, num_chunks=10, chunk_duration_s=0.1, seed=1)
    >>> (np.cov(out.values.T).round(1) + 0.0).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    check_recording(recording)
    n_ch = recording.sizes["channel"]
    check_choice("mode", mode, ("global", "local"))
    check_choice("regularization", regularization, ("none", "ledoit_wolf"))
    num_chunks = check_int("num_chunks", num_chunks, min_value=1)
    chunk_duration_s = check_number("chunk_duration_s", chunk_duration_s, min_value=0, min_inclusive=False)
    seed = check_int("seed", seed)
    if eps is not None:
        eps = check_number("eps", eps, min_value=0)
    if int_scale is not None:
        int_scale = check_number("int_scale", int_scale, min_value=0, min_inclusive=False)
    try:
        out_dtype = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype {dtype!r} is not a numpy dtype (e.g. 'float32', 'int16').") from None
    if out_dtype.kind not in "fiu":
        raise ValueError(f"dtype must be a float or integer type; got {out_dtype}.")
    groups = recording.coords["group"].values
    locations = None
    if mode == "local":
        radius_um = check_number("radius_um", radius_um, min_value=0, min_inclusive=False)
        locations = channel_locations(recording)
        _check_radius(locations, groups, radius_um)

    if matrix is not None:
        W = np.asarray(matrix, dtype=np.float64)
        if W.shape != (n_ch, n_ch) or not np.all(np.isfinite(W)):
            raise ValueError(f"matrix must be a finite ({n_ch}, {n_ch}) array; got shape {W.shape}.")
        mean = np.zeros(n_ch) if mean_uV is None else np.asarray(mean_uV, dtype=np.float64)
        if mean.shape != (n_ch,) or not np.all(np.isfinite(mean)):
            raise ValueError(f"mean_uV must be a finite array of {n_ch} values; got shape {mean.shape}.")
        source = "given"
    else:
        if mean_uV is not None:
            raise ValueError("mean_uV is only used with matrix=; with an estimated matrix use apply_mean=True.")
        W, mean = _estimate(recording, mode=mode, groups=groups, locations=locations, radius_um=radius_um,
                            eps=eps, regularization=regularization, num_chunks=num_chunks,
                            chunk_duration_s=chunk_duration_s, seed=seed, apply_mean=apply_mean, n_jobs=n_jobs)
        source = "estimated"

    scale = 1.0 if int_scale is None else int_scale
    gain = recording.coords["gain_to_uV"].values.astype(np.float64)
    offset = recording.coords["offset_to_uV"].values.astype(np.float64)
    # (x * gain + offset - mean) @ W.T * scale  ==  x @ A + b
    A = (gain[:, None] * W.T * scale).astype(np.float32)
    b = (((offset - mean) @ W.T) * scale).astype(np.float32)

    def kernel(block):
        y = np.asarray(block, dtype=np.float32) @ A
        if np.any(b != 0):
            y += b[None, :]
        if out_dtype.kind in "iu":
            info = np.iinfo(out_dtype)
            y = np.clip(np.round(y), info.min, info.max)
        return y

    params = {"mode": mode, "radius_um": radius_um if mode == "local" else None, "eps": eps,
              "regularization": regularization, "num_chunks": num_chunks,
              "chunk_duration_s": chunk_duration_s, "seed": seed, "apply_mean": apply_mean,
              "int_scale": int_scale, "dtype": str(out_dtype), "matrix": source}
    if apply_mean or mean_uV is not None:
        params["mean_uV"] = mean
    out = lazy_transform(recording, kernel, margin_samples=0, dtype=out_dtype, chunk_size=chunk_size,
                         step="whiten", params=params)
    out = out.assign_coords(gain_to_uV=("channel", np.full(n_ch, 1.0 / scale)),
                            offset_to_uV=("channel", np.zeros(n_ch)))
    return out, W


def _check_radius(locations: np.ndarray, groups: np.ndarray, radius_um: float) -> None:
    from .utils import channel_distances

    d = channel_distances(locations)
    same = groups[:, None] == groups[None, :]
    np.fill_diagonal(same, False)
    if not same.any():
        return  # single-channel groups: nothing to whiten against, whatever the radius
    nearest = float(d[same].min())
    if radius_um < nearest:
        raise ValueError(
            f"radius_um={radius_um:g} selects no neighbour for any channel (the closest contacts of a "
            f"group are {nearest:g} µm apart); use radius_um >= {nearest:g} or mode='global'."
        )


def _estimate(recording, *, mode, groups, locations, radius_um, eps, regularization, num_chunks,
              chunk_duration_s, seed, apply_mean, n_jobs):
    fs = float(recording.attrs["sampling_frequency"])
    size = max(1, int(round(chunk_duration_s * fs)))
    # The chunks random_chunks(..., seed=seed) would return; each read and reduced in its own
    # task (threads), so memory is n_jobs chunks and lazy upstream steps run in parallel.
    bounds = random_chunk_bounds(num_samples(recording), num_chunks=num_chunks, chunk_size=size, seed=seed)

    def _one(a, b, mean, fourth):
        return _chunk_moments(get_traces(recording, start=a, end=b, return_uV=True), mean=mean, fourth=fourth)

    def _pass(mean, fourth):
        # pure=False: hashing the closure would hash the recording
        tasks = [dask.delayed(_one, pure=False)(int(a), int(b), mean, fourth) for a, b in bounds]
        return _combine_moments(list(dask.compute(*tasks, scheduler="threads", num_workers=resolve_n_jobs(n_jobs))))

    fourth = regularization == "ledoit_wolf"
    moments = _pass(None, fourth and not apply_mean)
    if apply_mean:
        mean = moments["sum"] / moments["n"]
        centred = {"n": moments["n"], "sum": moments["sum"], "xtx": moments["scatter"], "g": None}
        if fourth:  # the 4th moments must be about the overall mean: a second pass
            centred["g"] = _pass(mean, True)["g"]
        moments = centred
    W, m = whitening_matrix(moments, groups=groups, mode=mode, locations=locations, radius_um=radius_um,
                            eps=eps, regularization=regularization, apply_mean=apply_mean)
    return W, m
