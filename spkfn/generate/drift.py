"""Probe drift for the ground-truth generator: specification, realisation and true displacement.

A drift is one component or a list of components whose displacements add up. Each component is
a :class:`Drift` (or a plain dict with the same keys, e.g. from a YAML config):

=============== ======================================================================
``kind``        displacement ``D(t)`` along the probe (``y``, µm) at time ``t`` (s)
=============== ======================================================================
``"sine"``      ``A sin(2 pi t / period_s)``
``"linear"``    ``A t / T`` (``T`` = recording duration): moves by ``A`` over the recording
``"steps"``     piecewise constant: ``num_steps`` jumps at uniformly drawn times, each new
                level uniform in ``[-A, A]`` (abrupt probe movements)
``"random_walk"`` Gaussian increments every ``interval_s``, linearly interpolated, scaled so
                that the standard deviation of ``D(T)`` is ``A``
=============== ======================================================================

with ``A = amplitude_um``. Every component is 0 at ``t = 0``, so the units' reference positions
are their positions at the start. Depth dependence (non-rigid drift): a unit whose reference
depth is ``y`` moves by ``D(t) * (1 + depth_gradient * (y - y_c) / span)``, where ``y_c`` and
``span`` are the centre and the extent of the probe's contact depths; ``depth_gradient = 0`` is
rigid drift (all units move alike).

Random components (``steps``, ``random_walk``) are realised once with the generator's seed by
:func:`resolve_drift`; the realised drift is a plain JSON-able dict, stored in
``gt_sorting.attrs["drift"]`` (JSON text), from which :func:`drift_displacement` and
:func:`drift_motion` give the true displacement at any time and depth.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

import numpy as np
import xarray as xr

from ..core.validate import check_choice, check_int, check_number
from ._noise import STREAM_DRIFT, rng_for

__all__ = ["Drift", "resolve_drift", "drift_displacement", "drift_motion"]

DRIFT_KINDS = ("sine", "linear", "steps", "random_walk")


@dataclass(frozen=True)
class Drift:
    """One drift component (see the module docstring for the formulas).

    Parameters
    ----------
    kind : {"sine", "linear", "steps", "random_walk"}, default "sine"
    amplitude_um : float, default 20.0
        ``A`` in µm (>= 0): sine amplitude, total linear displacement, step-level bound, or the
        random walk's standard deviation at the end of the recording.
    period_s : float, default 60.0
        Period of a sine (s).
    num_steps : int, default 3
        Number of jumps of a ``steps`` drift.
    interval_s : float, default 1.0
        Knot spacing of a random walk (s).
    depth_gradient : float, default 0.0
        Non-rigid factor in ``[-2, 2]``: the displacement is scaled by
        ``1 + depth_gradient * (y - y_c) / span``; 0 = rigid.
    """

    kind: str = "sine"
    amplitude_um: float = 20.0
    period_s: float = 60.0
    num_steps: int = 3
    interval_s: float = 1.0
    depth_gradient: float = 0.0


def _as_components(drift) -> list[Drift]:
    if drift is None:
        return []
    if isinstance(drift, Drift | dict):
        drift = [drift]
    if not isinstance(drift, list | tuple):
        raise ValueError(
            f"drift must be None, a spkfn.generate.Drift, a dict or a list of them; got {type(drift).__name__}."
        )
    names = {f.name for f in fields(Drift)}
    out = []
    for i, c in enumerate(drift):
        if isinstance(c, dict):
            unknown = sorted(set(c) - names)
            if unknown:
                raise ValueError(f"drift component {i} has unknown keys {unknown}; valid keys: {sorted(names)}.")
            c = Drift(**c)
        elif not isinstance(c, Drift):
            raise ValueError(f"drift component {i} must be a Drift or a dict; got {type(c).__name__}.")
        check_choice(f"drift[{i}].kind", c.kind, DRIFT_KINDS)
        check_number(f"drift[{i}].amplitude_um", c.amplitude_um, min_value=0)
        check_number(f"drift[{i}].period_s", c.period_s, min_value=0, min_inclusive=False)
        check_int(f"drift[{i}].num_steps", c.num_steps, min_value=1)
        check_number(f"drift[{i}].interval_s", c.interval_s, min_value=0, min_inclusive=False)
        check_number(f"drift[{i}].depth_gradient", c.depth_gradient, min_value=-2, max_value=2,
                     hint="(0 = rigid; 1 scales the displacement from 0.5x at the bottom to 1.5x at the top)")
        out.append(c)
    return out


def resolve_drift(drift, *, duration_s: float, depth_range_um: tuple[float, float], seed: int = 0) -> dict | None:
    """Realise a drift specification: draw the random parts and return a plain, JSON-able dict.

    Parameters
    ----------
    drift : None, Drift, dict or list of them
        Specification (see the module docstring). ``None`` returns ``None``.
    duration_s : float
        Recording duration (s), > 0.
    depth_range_um : (float, float)
        Lowest and highest contact depth ``y`` (µm): the reference of ``depth_gradient``.
    seed : int, default 0
        Component ``i`` draws from ``SeedSequence(seed, spawn_key=(4, i))``.

    Returns
    -------
    dict or None
        ``{"duration_s", "depth_center_um", "depth_span_um", "components": [...]}``; random
        components carry their realised ``times_s`` and ``values_um`` knots.

    Examples
    --------
    >>> d = resolve_drift(Drift(kind="steps", amplitude_um=10, num_steps=2), duration_s=100.0,
    ...                   depth_range_um=(0.0, 775.0), seed=1)
    >>> len(d["components"][0]["times_s"])
    3
    """
    comps = _as_components(drift)
    if not comps:
        return None
    T = check_number("duration_s", duration_s, min_value=0, min_inclusive=False)
    lo, hi = (float(v) for v in depth_range_um)
    out = []
    for i, c in enumerate(comps):
        item = asdict(c)
        item["num_steps"] = int(item["num_steps"])
        A = float(c.amplitude_um)
        if c.kind == "steps":
            rng = rng_for(seed, STREAM_DRIFT, i)
            times = np.sort(rng.uniform(0.0, T, size=int(c.num_steps)))
            levels = rng.uniform(-A, A, size=int(c.num_steps))
            item["times_s"] = [0.0, *times.tolist()]
            item["values_um"] = [0.0, *levels.tolist()]
        elif c.kind == "random_walk":
            rng = rng_for(seed, STREAM_DRIFT, i)
            n = max(1, int(np.ceil(T / c.interval_s)))
            times = np.minimum(np.arange(n + 1) * c.interval_s, T)
            steps = rng.standard_normal(n) * np.sqrt(np.diff(times) / T) * A
            item["times_s"] = times.tolist()
            item["values_um"] = np.concatenate([[0.0], np.cumsum(steps)]).tolist()
        out.append(item)
    return {"duration_s": T, "depth_center_um": 0.5 * (lo + hi), "depth_span_um": max(hi - lo, 1.0),
            "components": out}


def _load(drift):
    if isinstance(drift, xr.Dataset):
        if "drift" not in drift.attrs:
            raise ValueError("this sorting has no 'drift' attribute; it was not made by spkfn.generate.")
        drift = drift.attrs["drift"]
    if isinstance(drift, str):
        drift = json.loads(drift)
    if drift is None:
        return None
    if not isinstance(drift, dict) or "components" not in drift:
        raise ValueError(
            "drift must be a realised drift (the dict returned by resolve_drift, gt_sorting.attrs['drift'] "
            "or the gt_sorting itself); realise a specification with resolve_drift(drift, duration_s=..., "
            "depth_range_um=..., seed=...)."
        )
    return drift


def _component_time(c: dict, t: np.ndarray, T: float) -> np.ndarray:
    A = float(c["amplitude_um"])
    kind = c["kind"]
    if kind == "sine":
        return A * np.sin(2.0 * np.pi * t / float(c["period_s"]))
    if kind == "linear":
        return A * t / T
    knots_t = np.asarray(c["times_s"], dtype=np.float64)
    knots_v = np.asarray(c["values_um"], dtype=np.float64)
    if kind == "steps":
        idx = np.searchsorted(knots_t, t, side="right") - 1
        return knots_v[np.clip(idx, 0, knots_v.size - 1)]
    return np.interp(t, knots_t, knots_v)  # random_walk


def drift_displacement(drift, *, times_s, depths_um) -> np.ndarray:
    """True displacement (µm, along ``y``) of a unit of reference depth ``depths_um`` at ``times_s``.

    Parameters
    ----------
    drift : dict, str, xarray.Dataset or None
        A realised drift: the dict from :func:`resolve_drift`, its JSON text
        (``gt_sorting.attrs["drift"]``) or the ground-truth sorting itself. ``None`` (or JSON
        ``"null"``): no drift, zeros.
    times_s : array_like, shape (n_times,)
        Times from the recording start (s).
    depths_um : array_like, shape (n_depths,)
        Reference depths ``y`` (µm).

    Returns
    -------
    numpy.ndarray, shape (n_times, n_depths)
        ``D(t) * (1 + depth_gradient * (y - y_c) / span)`` summed over components; a unit at
        reference depth ``y`` is at ``y + displacement`` at time ``t``.

    Examples
    --------
    >>> d = resolve_drift({"kind": "sine", "amplitude_um": 10.0, "period_s": 4.0}, duration_s=8.0,
    ...                   depth_range_um=(0.0, 100.0))
    >>> drift_displacement(d, times_s=[0.0, 1.0, 3.0], depths_um=[50.0]).round(6).ravel().tolist()
    [0.0, 10.0, -10.0]
    """
    t = np.atleast_1d(np.asarray(times_s, dtype=np.float64))
    y = np.atleast_1d(np.asarray(depths_um, dtype=np.float64))
    if t.ndim != 1 or y.ndim != 1:
        raise ValueError(f"times_s and depths_um must be 1-D; got shapes {t.shape} and {y.shape}.")
    d = _load(drift)
    out = np.zeros((t.size, y.size))
    if d is None:
        return out
    T = float(d["duration_s"])
    rel = (y - float(d["depth_center_um"])) / float(d["depth_span_um"])
    for c in d["components"]:
        out += _component_time(c, t, T)[:, None] * (1.0 + float(c["depth_gradient"]) * rel)[None, :]
    return out


def drift_motion(drift, *, time_bins_s, depth_bins_um) -> xr.DataArray:
    """The true motion as a motion ``DataArray`` (dims ``("time_bin", "depth_bin")``, µm).

    Same values as :func:`drift_displacement` at the bin centres, in the layout motion
    estimators return (docs/data_model.md), so the two can be subtracted directly.

    Examples
    --------
    >>> d = resolve_drift({"kind": "linear", "amplitude_um": 30.0}, duration_s=3.0, depth_range_um=(0, 300))
    >>> m = drift_motion(d, time_bins_s=[0.5, 1.5, 2.5], depth_bins_um=[100.0, 200.0])
    >>> m.dims, m.values[:, 0].tolist()
    (('time_bin', 'depth_bin'), [5.0, 15.0, 25.0])
    """
    t = np.asarray(time_bins_s, dtype=np.float64)
    y = np.asarray(depth_bins_um, dtype=np.float64)
    values = drift_displacement(drift, times_s=t, depths_um=y)
    return xr.DataArray(values, dims=("time_bin", "depth_bin"), coords={"time_bin": t, "depth_bin": y},
                        name="motion", attrs={"units": "um", "source": "spkfn.generate (ground truth)"})
