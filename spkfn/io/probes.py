"""Probes: attach a probeinterface ``Probe``/``ProbeGroup`` to a recording and get it back.

The recording keeps the probe as probeinterface JSON text in ``attrs["probe"]``; each contact is
annotated with the id of the channel it is wired to (``contact_annotations["channel_id"]``), so
the probe stays right after any channel selection or reordering done with plain xarray.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import probeinterface as pi
import xarray as xr

__all__ = [
    "set_probe",
    "get_probe",
    "read_probe",
    "linear_probe",
    "tetrode_probe",
    "neuropixels1_probe",
    "multi_shank_probe",
]


def _as_probegroup(probe) -> pi.ProbeGroup:
    if isinstance(probe, pi.ProbeGroup):
        return pi.ProbeGroup.from_dict(probe.to_dict(array_as_list=True))
    if isinstance(probe, pi.Probe):
        pg = pi.ProbeGroup()
        pg.add_probe(probe.copy() if probe.device_channel_indices is None else _copy_probe(probe))
        return pg
    raise TypeError(
        f"probe must be a probeinterface Probe or ProbeGroup; got {type(probe).__name__}. "
        "Read one with spkfn.io.read_probe(path) or build one with probeinterface."
    )


def _copy_probe(probe: pi.Probe) -> pi.Probe:
    # Probe.copy() drops the wiring; a dict round trip keeps everything.
    return pi.Probe.from_dict(probe.to_dict(array_as_list=True))


def set_probe(rec: xr.DataArray, probe, *, keep_group: bool = False) -> xr.DataArray:
    """Return a copy of ``rec`` with ``probe`` attached: ``x``, ``y``, ``group`` coords and ``attrs["probe"]``.

    Parameters
    ----------
    rec : xarray.DataArray
        Recording.
    probe : probeinterface.Probe or probeinterface.ProbeGroup
        Must have exactly one contact per channel. When the probe is wired
        (``device_channel_indices`` set), contact ``k`` goes to the channel of rank
        ``device_channel_indices[k]``; otherwise contacts map to channels in order.
    keep_group : bool, default False
        Keep the recording's ``group`` coord instead of deriving it from shanks and probes.

    Returns
    -------
    xarray.DataArray
        ``group`` numbers each distinct (probe, shank) pair in order of appearance.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> rec = from_array(np.zeros((10, 8), "int16"), sampling_frequency=1000.0)
    >>> rec = set_probe(rec, multi_shank_probe(num_shanks=2, num_channels_per_shank=4))
    >>> rec.coords["group"].values.tolist()
    [0, 0, 0, 0, 1, 1, 1, 1]
    """
    pg = _as_probegroup(probe)
    n_channels = rec.sizes["channel"]
    n_contacts = sum(p.get_contact_count() for p in pg.probes)
    if n_contacts != n_channels:
        raise ValueError(
            f"the probe has {n_contacts} contacts but the recording has {n_channels} channels; "
            "select the recorded contacts with probe.get_slice(indices) or select the matching "
            "channels with rec.isel(channel=...)."
        )
    dci = [p.device_channel_indices for p in pg.probes]
    if all(d is not None for d in dci) and np.all(np.concatenate(dci) >= 0):
        wiring = np.concatenate(dci).astype(np.int64)
        if np.unique(wiring).size != wiring.size:
            raise ValueError("the probe's device_channel_indices are not unique; fix the probe's wiring.")
        # Ranks, so that wiring to a subset of a larger device (e.g. 384 of 385) still maps 1:1.
        channel_pos = np.argsort(np.argsort(wiring))
    else:
        channel_pos = np.arange(n_contacts)
    ids = rec.coords["channel"].values
    positions = np.concatenate([p.contact_positions[:, :2] for p in pg.probes]).astype(np.float64)
    if not np.all(np.isfinite(positions)):
        raise ValueError("the probe has non-finite contact positions.")
    pair_group: dict[tuple[int, str], int] = {}
    contact_group = []
    for i, p in enumerate(pg.probes):
        shanks = p.shank_ids if p.shank_ids is not None else np.array([""] * p.get_contact_count())
        for s in shanks:
            contact_group.append(pair_group.setdefault((i, str(s)), len(pair_group)))
    contact_group = np.asarray(contact_group, dtype=np.int64)

    start = 0
    for p in pg.probes:
        n = p.get_contact_count()
        p.annotate_contacts(channel_id=ids[channel_pos[start:start + n]].astype(str))
        p.set_device_channel_indices(channel_pos[start:start + n])
        start += n
    x = np.empty(n_channels)
    y = np.empty(n_channels)
    group = np.empty(n_channels, dtype=np.int64)
    x[channel_pos] = positions[:, 0]
    y[channel_pos] = positions[:, 1]
    group[channel_pos] = contact_group
    out = rec.assign_coords(x=("channel", x), y=("channel", y))
    if not keep_group:
        out = out.assign_coords(group=("channel", group))
    out.attrs = dict(rec.attrs)
    out.attrs["probe"] = json.dumps(pg.to_dict(array_as_list=True))
    return out


def get_probe(rec: xr.DataArray) -> pi.ProbeGroup:
    """The probe of ``rec`` as a ``ProbeGroup`` whose contacts follow the recording's current channels.

    Contact ``k`` of the result is wired to channel position ``k`` (``device_channel_indices``).
    A recording with geometry but no probe attr gets a generic probe (5 µm circular contacts,
    one shank per group). Raises ``ValueError`` when the recording has no geometry at all.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> rec = from_array(np.zeros((10, 4), "int16"), sampling_frequency=1000.0, probe=tetrode_probe())
    >>> pg = get_probe(rec.isel(channel=[3, 1]))
    >>> pg.get_global_device_channel_indices()["device_channel_indices"].tolist()
    [0, 1]
    """
    ids = rec.coords["channel"].values.astype(str)
    text = rec.attrs.get("probe")
    if not text:
        from .recording import channel_locations

        loc = channel_locations(rec)
        groups = rec.coords["group"].values
        pg = pi.ProbeGroup()
        for g in np.unique(groups):
            sel = np.flatnonzero(groups == g)
            p = pi.Probe(ndim=2, si_units="um")
            p.set_contacts(positions=loc[sel], shapes="circle", shape_params={"radius": 5})
            p.set_device_channel_indices(sel)
            p.annotate_contacts(channel_id=ids[sel])
            pg.add_probe(p)
        return pg
    full = pi.ProbeGroup.from_dict(json.loads(text))
    where: dict[str, tuple[int, int]] = {}
    for i, p in enumerate(full.probes):
        cid = p.contact_annotations.get("channel_id")
        if cid is None:
            raise ValueError("attrs['probe'] was not written by spkfn.io.set_probe (no channel_id annotation).")
        for k, c in enumerate(np.asarray(cid).astype(str)):
            where[c] = (i, k)
    missing = [c for c in ids if c not in where]
    if missing:
        raise ValueError(f"channels {missing[:10]} are not on the attached probe; re-attach it with set_probe.")
    out = pi.ProbeGroup()
    for i, p in enumerate(full.probes):
        chans = [pos for pos, c in enumerate(ids) if where[c][0] == i]
        if not chans:
            continue
        sub = p.get_slice(np.array([where[ids[pos]][1] for pos in chans]))
        sub.set_device_channel_indices(np.array(chans))
        sub.annotate_contacts(channel_id=ids[chans])
        out.add_probe(sub)
    return out


def read_probe(path) -> pi.ProbeGroup:
    """Read a probe file: probeinterface ``.json``, ``.prb``, SpikeGLX ``.meta``/``.imro``.

    Raises ``ValueError`` naming the supported formats for anything else.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"probe file {str(path)!r} does not exist.")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return pi.read_probeinterface(path)
    if suffix == ".prb":
        return pi.read_prb(path)
    if suffix == ".meta":
        return _as_probegroup(pi.read_spikeglx(path))
    if suffix == ".imro":
        return _as_probegroup(pi.read_imro(path))
    raise ValueError(
        f"unsupported probe file {path.name!r}; use a probeinterface .json, a .prb, "
        "a SpikeGLX .meta or an .imro file."
    )


def linear_probe(*, num_channels: int = 32, pitch_um: float = 25.0, radius_um: float = 6.0) -> pi.Probe:
    """Single-column linear probe, contacts at ``y = 0, pitch, 2 pitch, ...`` µm.

    >>> linear_probe(num_channels=4, pitch_um=20).contact_positions[:, 1].tolist()
    [0.0, 20.0, 40.0, 60.0]
    """
    p = pi.generate_linear_probe(num_elec=num_channels, ypitch=pitch_um, contact_shapes="circle",
                                 contact_shape_params={"radius": radius_um})
    p.set_device_channel_indices(np.arange(num_channels))
    return p


def tetrode_probe(*, radius_um: float = 6.0) -> pi.Probe:
    """Four contacts on a 10 µm-radius circle (a tetrode seen end on)."""
    p = pi.generate_tetrode(r=10.0)
    p.set_device_channel_indices(np.arange(4))
    return p


def neuropixels1_probe(*, num_channels: int = 384) -> pi.Probe:
    """Neuropixels 1.0 (bank 0) layout, built offline: staggered 2-column, 20 µm rows, 16 µm pitch.

    Uses probeinterface's Neuropixels builder (no download); ``num_channels`` < 384 keeps the
    deepest ``num_channels`` contacts.
    """
    from probeinterface.neuropixels_tools import build_neuropixels_probe

    if not 1 <= num_channels <= 384:
        raise ValueError(f"num_channels must be in [1, 384] for a Neuropixels 1.0 bank; got {num_channels}.")
    p = build_neuropixels_probe("NP1000").get_slice(np.arange(num_channels))
    p.set_device_channel_indices(np.arange(num_channels))
    return p


def multi_shank_probe(*, num_shanks: int = 4, num_channels_per_shank: int = 16, shank_pitch_um: float = 250.0,
                      pitch_um: float = 25.0) -> pi.Probe:
    """Several linear shanks side by side, with ``shank_ids`` set (one ``group`` per shank)."""
    p = pi.generate_multi_shank(num_shank=num_shanks, shank_pitch=[shank_pitch_um, 0], num_columns=1,
                                num_contact_per_column=num_channels_per_shank, ypitch=pitch_um)
    p.set_device_channel_indices(np.arange(p.get_contact_count()))
    return p
