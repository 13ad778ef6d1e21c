"""Read acquisition formats through neo's RawIO layer as lazy recordings.

Every reader here returns a recording laid out as in ``docs/data_model.md``: an
``xarray.DataArray`` ``("time", "channel")`` whose values are a dask array over neo's
``get_analogsignal_chunk`` (nothing is read when the file is opened, apart from the header
and one sample used to check that the file can be read), the per-channel scaling to µV, string
channel ids, the probe geometry when the format carries it, ``source`` attrs and the
session-clock start time of the segment.

Supported formats are listed by :func:`neo_formats` (friendly names such as ``"spikeglx"``,
``"openephys"``, ``"intan"``, ``"blackrock"``, or any neo RawIO class name); docs/io.md says
which were tested on which file.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize
from dask.utils import SerializableLock

from ..core.chunks import default_chunk_size
from ..core.validate import check_bool, check_int
from .recording import from_array

__all__ = [
    "read_neo",
    "list_streams",
    "detect_format",
    "neo_formats",
    "read_spikeglx",
    "read_openephys",
    "read_intan",
    "read_blackrock",
    "NeoReadError",
]

logger = logging.getLogger(__name__)


class NeoReadError(ValueError):
    """neo could not open or read a file; the message names the file, the format tried and neo's error."""


# --------------------------------------------------------------------------------------------
# Format registry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Format:
    rawio: str  # neo.rawio class name
    path_arg: str  # "filename" or "dirname"
    description: str
    defaults: dict = field(default_factory=dict)  # RawIO keyword defaults spkfn sets
    probe: str | None = None  # how the probe is read from the files ("spikeglx", "openephys", ...)


_FORMATS: dict[str, _Format] = {
    "spikeglx": _Format("SpikeGLXRawIO", "dirname", "SpikeGLX .bin/.meta (Neuropixels, NI-DAQ)", probe="spikeglx"),
    "openephys_legacy": _Format("OpenEphysRawIO", "dirname", "Open Ephys legacy .continuous", probe="openephys"),
    "openephys_binary": _Format("OpenEphysBinaryRawIO", "dirname", "Open Ephys binary (structure.oebin)",
                                probe="openephys"),
    "intan": _Format("IntanRawIO", "filename", "Intan .rhd/.rhs"),
    "blackrock": _Format("BlackrockRawIO", "filename", "Blackrock .nsX/.nev (Utah arrays)"),
    "plexon": _Format("PlexonRawIO", "filename", "Plexon .plx", defaults={"progress_bar": False}),
    "plexon2": _Format("Plexon2RawIO", "filename", "Plexon .pl2 (needs Plexon's DLL)"),
    "neuralynx": _Format("NeuralynxRawIO", "dirname", "Neuralynx .ncs/.nev folder"),
    "biocam": _Format("BiocamRawIO", "filename", "3Brain BioCAM .brw (HD-MEA)", probe="biocam"),
    "maxwell": _Format("MaxwellRawIO", "filename", "MaxWell MaxOne/MaxTwo .raw.h5 (HD-MEA)", probe="maxwell"),
    "mearec": _Format("MEArecRawIO", "filename", "MEArec simulated .h5", defaults={"load_spiketrains": False}),
    "spikegadgets": _Format("SpikeGadgetsRawIO", "filename", "SpikeGadgets .rec"),
    "tdt": _Format("TdtRawIO", "dirname", "Tucker-Davis tank folder"),
    "axona": _Format("AxonaRawIO", "filename", "Axona .bin/.set"),
    "axon": _Format("AxonRawIO", "filename", "Axon .abf"),
    "edf": _Format("EDFRawIO", "filename", "EDF/EDF+ (needs pyedflib)"),
    "ced": _Format("CedRawIO", "filename", "CED Spike2 .smr/.smrx (needs sonpy)"),
    "spike2": _Format("Spike2RawIO", "filename", "CED Spike2 .smr"),
    "neuroscope": _Format("NeuroScopeRawIO", "filename", "NeuroScope .xml/.dat"),
    "neuronexus": _Format("NeuroNexusRawIO", "filename", "NeuroNexus Allego .xdat"),
    "alphaomega": _Format("AlphaOmegaRawIO", "dirname", "AlphaOmega .lsx/.mpx folder"),
    "mcsraw": _Format("RawMCSRawIO", "filename", "Multi Channel Systems .raw"),
    "brainvision": _Format("BrainVisionRawIO", "filename", "BrainVision .vhdr"),
    "rawbinary": _Format("RawBinarySignalRawIO", "filename",
                         "flat interleaved binary; a folder with info.json = one segment per file"),
}
# "openephys" is resolved to openephys_legacy or openephys_binary from the folder's content.
_ALIASES = {"open_ephys": "openephys", "openephys-legacy": "openephys_legacy", "openephys-binary": "openephys_binary",
            "neuropixels": "spikeglx", "raw": "rawbinary", "binary_neo": "rawbinary", "3brain": "biocam",
            "maxone": "maxwell", "maxtwo": "maxwell", "nsx": "blackrock", "plx": "plexon", "rhd": "intan",
            "rhs": "intan"}

# RawIOs whose chunk reads were measured safe to run from several threads at once on one
# reader (memmap / buffer-API based; see docs/io.md). Every other RawIO is read under a
# per-reader lock (reads of one file are serialised, different files still run in parallel).
_THREAD_SAFE = frozenset({
    "SpikeGLXRawIO", "OpenEphysRawIO", "OpenEphysBinaryRawIO", "IntanRawIO", "BlackrockRawIO",
    "PlexonRawIO", "NeuralynxRawIO", "BiocamRawIO", "RawBinarySignalRawIO",
})

_UNIT_TO_UV = {"uv": 1.0, "µv": 1.0, "μv": 1.0, "microvolt": 1.0, "microvolts": 1.0,
               "mv": 1e3, "millivolt": 1e3, "millivolts": 1e3,
               "v": 1e6, "volt": 1e6, "volts": 1e6, "nv": 1e-3, "nanovolt": 1e-3, "nanovolts": 1e-3}

_SYNC_STREAM = re.compile(r"sync|digital", re.IGNORECASE)
_SYNC_CHANNEL = re.compile(r"^(SY\d*|SYNC.*|.*[_\-#]SYNC|XD\d+|DW\d+)$", re.IGNORECASE)


def _rawio_classes() -> dict[str, type]:
    import neo.rawio

    return {cls.__name__: cls for cls in neo.rawio.rawiolist}


def neo_formats() -> pd.DataFrame:
    """The friendly format names :func:`read_neo` accepts, with their neo RawIO and what they read.

    Any other neo RawIO can be used by its class name (``format="TdtRawIO"``).

    Examples
    --------
    >>> table = neo_formats()
    >>> table.loc["spikeglx", "rawio"]
    'SpikeGLXRawIO'
    >>> "openephys" in table.index
    True
    """
    rows = [{"format": "openephys", "rawio": "OpenEphysRawIO / OpenEphysBinaryRawIO", "path": "dirname",
             "description": "Open Ephys, legacy or binary (chosen from the folder's content)", "probe_from_files": True}]
    for name, f in _FORMATS.items():
        rows.append({"format": name, "rawio": f.rawio, "path": f.path_arg, "description": f.description,
                     "probe_from_files": f.probe is not None})
    return pd.DataFrame(rows).set_index("format")


def _format_from_rawio(rawio_name: str) -> str | None:
    for name, f in _FORMATS.items():
        if f.rawio == rawio_name:
            return name
    return None


def _normalise_format(fmt: str) -> str:
    """Friendly name for ``fmt`` (friendly, alias or RawIO class name); ValueError if unknown."""
    if not isinstance(fmt, str) or not fmt:
        raise ValueError(f"format must be a non-empty string such as 'spikeglx' or 'SpikeGLXRawIO'; got {fmt!r}.")
    key = fmt.strip()
    low = key.lower()
    if low in _FORMATS or low == "openephys":
        return low
    if low in _ALIASES:
        return _ALIASES[low]
    classes = _rawio_classes()
    for cls_name in classes:
        if cls_name.lower() == low:
            return _format_from_rawio(cls_name) or cls_name
    known = sorted([*_FORMATS, "openephys"])
    raise ValueError(
        f"unknown format {fmt!r}. Use one of the friendly names {known} (spkfn.io.neo_formats() describes them), "
        f"or a neo RawIO class name such as {sorted(classes)[:6]}... (neo.rawio.rawiolist), or 'nwb' with "
        "spkfn.io.read_nwb."
    )


def _format_spec(fmt: str) -> tuple[str, type, str]:
    """(rawio class name, class, path arg) for a normalised format."""
    classes = _rawio_classes()
    if fmt in _FORMATS:
        spec = _FORMATS[fmt]
        if spec.rawio not in classes:  # pragma: no cover - depends on the neo version
            raise ValueError(f"format {fmt!r} needs neo.rawio.{spec.rawio}, which this neo version lacks.")
        return spec.rawio, classes[spec.rawio], spec.path_arg
    cls = classes[fmt]
    return fmt, cls, ("dirname" if cls.rawmode == "one-dir" else "filename")


# --------------------------------------------------------------------------------------------
# Format detection
# --------------------------------------------------------------------------------------------

_SUFFIX_FORMAT = {
    ".rhd": "intan", ".rhs": "intan", ".plx": "plexon", ".pl2": "plexon2", ".brw": "biocam", ".bw": "biocam",
    ".nev": "blackrock", ".ns1": "blackrock", ".ns2": "blackrock", ".ns3": "blackrock", ".ns4": "blackrock",
    ".ns5": "blackrock", ".ns6": "blackrock", ".ncs": "neuralynx", ".continuous": "openephys_legacy",
    ".oebin": "openephys_binary", ".meta": "spikeglx", ".abf": "axon", ".edf": "edf", ".smrx": "ced",
    ".smr": "spike2", ".xdat": "neuronexus", ".vhdr": "brainvision", ".rec": "spikegadgets", ".tev": "tdt",
    ".tsq": "tdt",
}


def _h5_kind(path: Path) -> str | None:
    try:
        import h5py
    except ImportError:
        return None
    try:
        with h5py.File(path, "r") as f:
            keys = set(f.keys())
            if "data_store" in keys or "sig" in keys or ("mapping" in keys and "settings" in keys):
                return "maxwell"
            if "3BRecInfo" in keys or "3BData" in keys or any(k.startswith("Well_") for k in keys):
                return "biocam"
            if "recordings" in keys and "channel_positions" in keys:
                return "mearec"
            if "acquisition" in keys and "general" in keys:
                return "nwb"
    except OSError:
        return None
    return None


def _spikeglx_stream_from_name(name: str) -> str | None:
    m = re.search(r"\.(imec\d*\.(?:ap|lf)|nidq|obx\d*)\.(?:bin|meta)$", name, flags=re.IGNORECASE)
    if m:
        return m.group(1)
    m = re.search(r"\.(imec\d*)\.(?:bin|meta)$", name, flags=re.IGNORECASE)  # NP2 files have no ap/lf part
    return m.group(1) if m else None


def detect_format(path) -> str:
    """Guess the format of ``path`` (a file or a folder) from its name and content.

    Returns a friendly format name usable as ``read_neo(path, format=...)``, or ``"nwb"``
    (read those with :func:`spkfn.io.read_nwb`).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Nothing recognisable; the message lists the file types found.

    Examples
    --------
    >>> import json, tempfile, pathlib, numpy as np
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> np.zeros((10, 2), "int16").tofile(d / "trial_01.raw")
    >>> _ = (d / "info.json").write_text(json.dumps({"sample_rate": 1000.0, "shape": [-1, 2], "dtype": "int16"}))
    >>> detect_format(d)
    'rawbinary'
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{str(path)!r} does not exist; give the recording's file or folder.")
    if path.is_file():
        name = path.name.lower()
        suffix = path.suffix.lower()
        if name.endswith(".nwb"):
            return "nwb"
        if name == "structure.oebin" or name == "settings.xml" and any(path.parent.rglob("structure.oebin")):
            return "openephys_binary"
        if name == "settings.xml" and any(path.parent.glob("*.continuous")):
            return "openephys_legacy"
        if suffix in (".bin", ".meta") and _spikeglx_stream_from_name(path.name):
            return "spikeglx"
        if suffix in (".h5", ".hdf5"):
            kind = _h5_kind(path)
            if kind:
                return kind
        if suffix in _SUFFIX_FORMAT and not (suffix == ".meta" and not _spikeglx_stream_from_name(path.name)):
            return _SUFFIX_FORMAT[suffix]
        if name == "continuous.dat":
            return "openephys_binary"
        if suffix in (".raw", ".bin", ".dat") and (path.parent / "info.json").is_file():
            return "rawbinary"
        hint = _neo_guess(path)
        raise ValueError(
            f"cannot tell the format of {path.name!r} from its name"
            + (f" (neo suggests {hint})" if hint else "")
            + "; pass format=..., e.g. format='rawbinary' with neo_kwargs={'dtype': 'int16', 'sampling_rate': 30000.0, "
            "'nb_channel': 32} for a flat binary file (spkfn.io.neo_formats() lists formats)."
        )
    # a folder
    files = [p for p in path.rglob("*") if p.is_file()]
    top = [p for p in path.iterdir() if p.is_file()]
    names = {p.name.lower() for p in files}
    if any(p.suffix.lower() == ".meta" and _spikeglx_stream_from_name(p.name) for p in files):
        return "spikeglx"
    if "structure.oebin" in names:
        return "openephys_binary"
    if any(p.suffix.lower() == ".continuous" for p in top):
        return "openephys_legacy"
    if any(p.suffix.lower() == ".ncs" for p in top):
        return "neuralynx"
    if (path / "info.json").is_file() and any(p.suffix.lower() in (".raw", ".bin", ".dat") for p in top):
        return "rawbinary"
    if any(p.suffix.lower() in (".tev", ".tsq", ".sev") for p in top):
        return "tdt"
    if any(p.suffix.lower() == ".continuous" for p in files):
        subs = sorted({str(p.parent.relative_to(path)) for p in files if p.suffix.lower() == ".continuous"})
        raise ValueError(
            f"{path} holds Open Ephys legacy recordings in sub-folders {subs}; give one of them "
            f"(e.g. {str(path / subs[0])!r})."
        )
    if any(p.suffix.lower() == ".ncs" for p in files):
        subs = sorted({str(p.parent.relative_to(path)) for p in files if p.suffix.lower() == ".ncs"})
        raise ValueError(
            f"{path} holds Neuralynx .ncs files in sub-folders {subs}; give one of them "
            f"(e.g. {str(path / subs[0])!r}): neo reads one folder of channels sharing a sampling rate at a time."
        )
    if len(top) == 1:
        return detect_format(top[0])
    suffixes = sorted({p.suffix.lower() or p.name for p in top})[:15]
    raise ValueError(
        f"cannot tell the format of folder {str(path)!r} (file types: {suffixes}); pass format=... "
        "(spkfn.io.neo_formats() lists them) or give the recording's main file."
    )


def _neo_guess(path: Path) -> str | None:
    try:
        import neo.rawio

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            guesses = neo.rawio.get_rawio(path, exclusive_rawio=False)
    except Exception:  # noqa: BLE001 - only a hint
        return None
    return ", ".join(c.__name__ for c in (guesses or [])[:4]) or None


# --------------------------------------------------------------------------------------------
# Opening
# --------------------------------------------------------------------------------------------


@dataclass
class _Opened:
    """One or several parsed RawIOs: several when a rawbinary folder has one file per segment."""

    fmt: str
    rawio_name: str
    path: Path
    specs: list[dict]  # RawIO init kwargs, one per reader
    readers: list

    @property
    def header_reader(self):
        return self.readers[0]

    def block_count(self) -> int:
        return 1 if len(self.readers) > 1 else int(self.readers[0].block_count())

    def segment_count(self, block_index: int) -> int:
        if len(self.readers) > 1:
            return len(self.readers)
        return int(self.readers[0].segment_count(block_index))

    def locate(self, block_index: int, segment_index: int) -> tuple[Any, dict, int, int]:
        if len(self.readers) > 1:
            return self.readers[segment_index], self.specs[segment_index], 0, 0
        return self.readers[0], self.specs[0], block_index, segment_index


def _rawbinary_specs(path: Path, neo_kwargs: dict) -> tuple[Path, list[dict]]:
    """RawBinarySignalRawIO kwargs per file; a folder is one segment per data file, in name order."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in (".raw", ".bin", ".dat"))
        if not files:
            raise FileNotFoundError(f"no .raw/.bin/.dat file in {path}.")
        info_path = path / "info.json"
    else:
        files = [path]
        info_path = path.parent / "info.json"
    kwargs: dict[str, Any] = {}
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        shape = info.get("shape")
        if "sample_rate" in info:
            kwargs["sampling_rate"] = float(info["sample_rate"])
        if "dtype" in info:
            kwargs["dtype"] = str(info["dtype"])
        if isinstance(shape, list) and len(shape) == 2:
            kwargs["nb_channel"] = int(shape[1])
    kwargs.update(neo_kwargs)
    missing = [k for k in ("dtype", "sampling_rate", "nb_channel") if k not in kwargs]
    if missing:
        raise ValueError(
            f"reading {path.name} as flat binary needs {missing}: put an info.json beside it "
            "({'sample_rate': Hz, 'shape': [-1, n_channels], 'dtype': 'int16'}) or pass "
            "neo_kwargs={'dtype': 'int16', 'sampling_rate': 30000.0, 'nb_channel': 32}; "
            "spkfn.io.read_binary also opens flat binary files."
        )
    return path, [{"filename": str(f), **kwargs} for f in files]


def _default_specs(fmt: str, path_arg: str, path: Path, neo_kwargs: dict) -> tuple[Path, dict]:
    """Init kwargs for a single-reader format, after adapting ``path`` to what the RawIO wants."""
    kwargs = dict(_FORMATS[fmt].defaults) if fmt in _FORMATS else {}
    target = path
    if path_arg == "dirname":
        if path.is_file():
            if fmt == "openephys_binary":
                # continuous.dat / structure.oebin / settings.xml -> the Record Node folder
                node = next((p for p in path.parents if (p / "settings.xml").is_file()), path.parent)
                target = node
            else:
                target = path.parent
    else:
        if path.is_dir():
            raise ValueError(
                f"format {fmt!r} reads one file, but {str(path)!r} is a folder; give the file itself "
                f"(files here: {sorted(p.name for p in path.iterdir() if p.is_file())[:10]})."
            )
    if fmt == "blackrock":
        m = re.fullmatch(r"\.ns([1-6])", path.suffix.lower())
        if m and "nsx_to_load" not in neo_kwargs:
            kwargs["nsx_to_load"] = int(m.group(1))
    kwargs[path_arg] = str(target)
    kwargs.update(neo_kwargs)
    return target, kwargs


def _open(path, fmt: str | None, neo_kwargs: dict | None) -> _Opened:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{str(path)!r} does not exist; give the recording's file or folder "
            "(a relative path is taken from the current working directory)."
        )
    neo_kwargs = dict(neo_kwargs or {})
    if fmt is None:
        fmt = detect_format(path)
    if fmt.lower() == "nwb" or (fmt.lower() == "nwbio"):
        raise ValueError(f"{path.name} is an NWB file: read it with spkfn.io.read_nwb(path, electrical_series=...).")
    fmt = _normalise_format(fmt)
    if fmt == "openephys":
        if path.is_dir():
            fmt = "openephys_legacy" if any(path.glob("*.continuous")) else "openephys_binary"
        else:
            fmt = "openephys_legacy" if path.suffix.lower() == ".continuous" else "openephys_binary"
    rawio_name, cls, path_arg = _format_spec(fmt)
    if fmt == "rawbinary":
        target, specs = _rawbinary_specs(path, neo_kwargs)
    else:
        target, kw = _default_specs(fmt, path_arg, path, neo_kwargs)
        specs = [kw]
    readers = [_parse(cls, spec, path, fmt) for spec in specs]
    return _Opened(fmt=fmt, rawio_name=rawio_name, path=Path(target), specs=specs, readers=readers)


def _hint_for(exc: BaseException, fmt: str) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ImportError) or "No module named" in text:
        return " This format needs an optional package: install the one named above (e.g. pip install h5py)."
    if "plugin" in text.lower() and fmt == "maxwell":
        return (" MaxWell traces are compressed with MaxWell's proprietary HDF5 filter ('mxw-data'); install "
                "MaxWell's decompression plugin and point HDF5_PLUGIN_PATH at it before starting Python.")
    if "rec_name" in text:
        return " Choose the recording with neo_kwargs={'rec_name': 'rec0000'}."
    if "gap" in text.lower() and fmt == "neuralynx":
        return (" The files have timestamp gaps; read them with neo_kwargs={'gap_tolerance_ms': <ms>}: gaps longer "
                "than the tolerance then start new segments (segment_index=...).")
    if "Incompatible section structures" in text:
        return " Put channels that share a sampling rate in their own folder, or choose them with neo_kwargs={'include_filenames': [...]}."
    if fmt == "intan" and "custom_channel_name" in text:
        return (" This is a known neo bug with RHD files that store temperature-sensor channels (RHD v1.x); "
                "convert the file with Intan's own loader and read the amplifier data with spkfn.io.read_binary.")
    if fmt == "plexon" and "bl_header" in text:
        return " neo cannot parse this PLX header (no continuous-data block was found); the file may hold no continuous signals."
    return ""


class _IntanHeaderAttached:
    """A small RawIO-like reader for header-attached Intan files whose header neo parses but rejects.

    neo 0.14's ``IntanRawIO.parse_header`` fails with ``KeyError: 'custom_channel_name'`` on RHD
    files with temperature-sensor channels (RHD v1.x), after its own header parser
    (``neo.rawio.intanrawio.read_rhd``/``read_rhs``) has read the header correctly. This class
    takes that parser's result (channels, gains, the per-block record layout) and reads the
    analog channels from a memmap of the data blocks; digital words are left out. The layout is
    checked on the first and last blocks' timestamps before any trace is trusted.
    """

    def __init__(self, filename: str):
        self.filename = filename

    def has_buffer_description_api(self) -> bool:
        return False

    def parse_header(self) -> None:
        from neo.rawio import baserawio
        from neo.rawio import intanrawio as ir

        path = Path(self.filename)
        if path.suffix.lower() == ".rhs":
            info, chans, dtype, header_size, _, _ = ir.read_rhs(path, "header-attached")
            stream_names = ir.stream_id_to_stream_name_rhs
        else:
            info, chans, dtype, header_size, _, _ = ir.read_rhd(path, "header-attached")
            stream_names = ir.stream_id_to_stream_name_rhd
        dtype = np.dtype(dtype)
        payload = path.stat().st_size - header_size
        if payload % dtype.itemsize:
            raise ValueError(f"{path.name}: {payload} data bytes are not a whole number of {dtype.itemsize}-byte data blocks.")
        self._mm = np.memmap(path, dtype=dtype, mode="r", offset=header_size)
        n_blocks = self._mm.shape[0]
        ts = self._mm["timestamp"]
        per_block_ts = int(np.prod(dtype["timestamp"].shape))
        if n_blocks and int(ts[-1].reshape(-1)[-1]) - int(ts[0].reshape(-1)[0]) != n_blocks * per_block_ts - 1:
            raise ValueError(f"{path.name}: data-block timestamps are not contiguous; the block layout is not the expected one.")
        fields = set(dtype.names)
        rows, self._fields, self._per_block = [], {}, {}
        for c in chans:
            name = c["native_channel_name"]
            if name not in fields:
                continue  # digital words, packed per stream
            sid = str(int(c["signal_type"]))
            rows.append((c.get("custom_channel_name", name), name, float(c["sampling_rate"]), str(dtype[name].base),
                         c["units"], float(c["gain"]), float(c["offset"]), sid, ""))
            self._fields.setdefault(sid, []).append(name)
            self._per_block[sid] = int(np.prod(dtype[name].shape))
        sids = sorted(self._fields, key=int)
        streams = np.array([(stream_names.get(s, "temperature sensor" if s == "20" else s), s, "") for s in sids],
                           dtype=baserawio._signal_stream_dtype)
        self._n_blocks = n_blocks
        self.header = {
            "nb_block": 1, "nb_segment": [1],
            "signal_buffers": np.array([], dtype=baserawio._signal_buffer_dtype),
            "signal_streams": streams,
            "signal_channels": np.array(rows, dtype=baserawio._signal_channel_dtype),
            "spike_channels": np.array([], dtype=baserawio._spike_channel_dtype),
            "event_channels": np.array([], dtype=baserawio._event_channel_dtype),
        }

    def block_count(self) -> int:
        return 1

    def segment_count(self, block_index: int) -> int:
        return 1

    def get_signal_size(self, block_index: int, seg_index: int, stream_index: int) -> int:
        return self._n_blocks * self._per_block[str(self.header["signal_streams"]["id"][stream_index])]

    def get_signal_t_start(self, block_index: int, seg_index: int, stream_index: int) -> float:
        return 0.0  # as neo's IntanRawIO

    def get_analogsignal_chunk(self, block_index=0, seg_index=0, i_start=None, i_stop=None, stream_index=0,
                               channel_indexes=None):
        sid = str(self.header["signal_streams"]["id"][stream_index])
        k = self._per_block[sid]
        fields = np.asarray(self._fields[sid])
        if channel_indexes is not None:
            fields = np.atleast_1d(fields[channel_indexes])
        i_start = 0 if i_start is None else int(i_start)
        i_stop = self.get_signal_size(0, 0, stream_index) if i_stop is None else int(i_stop)
        b0, b1 = i_start // k, -(-i_stop // k)
        s0 = i_start - b0 * k
        out = np.empty((i_stop - i_start, fields.size), dtype=self._mm.dtype[fields[0]].base)
        for j, name in enumerate(fields):  # one strided copy per channel
            out[:, j] = self._mm[name][b0:b1].reshape(-1)[s0:s0 + i_stop - i_start]
        return out


def _parse(cls, spec: dict, path: Path, fmt: str):
    try:
        reader = cls(**spec)
        reader.parse_header()
    except KeyError as e:
        name = Path(str(spec.get("filename", ""))).name.lower()
        if cls.__name__ == "IntanRawIO" and "custom_channel_name" in str(e) and name not in ("info.rhd", "info.rhs"):
            try:
                reader = _IntanHeaderAttached(spec["filename"])
                reader.parse_header()
            except Exception as e2:  # noqa: BLE001 - report neo's error, which is the real cause
                raise NeoReadError(
                    f"neo's IntanRawIO could not read {str(path)!r} (format 'intan'): KeyError: {e}; spkfn's "
                    f"fallback failed too ({type(e2).__name__}: {e2})." + _hint_for(e, fmt)) from e
            logger.warning("%s: neo's IntanRawIO fails on this file (KeyError %s, a temperature-sensor channel); "
                           "read with spkfn's header-attached fallback over neo's header parser.", path.name, e)
            return reader
        raise NeoReadError(
            f"neo's {cls.__name__} could not read {str(path)!r} (format {fmt!r}): {type(e).__name__}: {e}."
            + _hint_for(e, fmt)
        ) from e
    except Exception as e:  # neo raises many types for a broken file: wrap them all with context
        raise NeoReadError(
            f"neo's {cls.__name__} could not read {str(path)!r} (format {fmt!r}): {type(e).__name__}: {str(e).rstrip('. ')}."
            + _hint_for(e, fmt)
        ) from e
    return reader


# --------------------------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------------------------


def _stream_table(opened: _Opened) -> pd.DataFrame:
    r = opened.header_reader
    streams = r.header["signal_streams"]
    chans = r.header["signal_channels"]
    rows = []
    n_seg = opened.segment_count(0) if opened.block_count() else 0
    for k in range(streams.size):
        sid = str(streams["id"][k])
        sel = chans[chans["stream_id"] == streams["id"][k]]
        fs = float(sel["sampling_rate"][0]) if sel.size else float("nan")
        reader, _, b, s = opened.locate(0, 0)
        try:
            n = int(reader.get_signal_size(b, s, k))
            t0 = float(reader.get_signal_t_start(b, s, k))
        except Exception:  # noqa: BLE001 - a listing must not fail on one stream
            n, t0 = -1, float("nan")
        rows.append({
            "stream_index": k,
            "stream_id": sid,
            "stream_name": str(streams["name"][k]),
            "num_channels": int(sel.size),
            "sampling_frequency": fs,
            "dtype": str(sel["dtype"][0]) if sel.size else "",
            "units": ",".join(sorted({str(u) for u in sel["units"]})),
            "num_segments": n_seg,
            "num_samples": n,
            "duration_s": n / fs if n >= 0 and fs > 0 else float("nan"),
            "t_start_s": t0,
            "is_sync": _is_sync_stream(streams["id"][k], streams["name"][k], sel),
        })
    cols = ["stream_index", "stream_id", "stream_name", "num_channels", "sampling_frequency", "dtype", "units",
            "num_segments", "num_samples", "duration_s", "t_start_s", "is_sync"]
    return pd.DataFrame(rows, columns=cols)


def _is_sync_stream(sid, name, chans) -> bool:
    if _SYNC_STREAM.search(str(sid)) or _SYNC_STREAM.search(str(name)):
        return True
    return bool(chans.size) and all(_SYNC_CHANNEL.match(str(n)) for n in chans["name"])


def list_streams(path, *, format: str | None = None, neo_kwargs: dict | None = None) -> pd.DataFrame:
    """The signal streams of a file: one row per stream (block 0, sizes of segment 0).

    Parameters
    ----------
    path : str or Path
        The recording's file or folder.
    format : str, optional
        Friendly format name or neo RawIO class name; detected from ``path`` when None.
    neo_kwargs : dict, optional
        Extra keyword arguments for the neo RawIO (e.g. ``{"rec_name": "rec0000"}`` for MaxWell).

    Returns
    -------
    pandas.DataFrame
        Columns ``stream_index``, ``stream_id``, ``stream_name``, ``num_channels``,
        ``sampling_frequency`` (Hz), ``dtype``, ``units`` (neo's), ``num_segments``,
        ``num_samples`` and ``duration_s`` (segment 0), ``t_start_s``, ``is_sync``
        (a sync/digital stream, skipped by :func:`read_neo` when it picks a stream).

    Examples
    --------
    >>> import json, tempfile, pathlib, numpy as np
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> np.zeros((100, 4), "int16").tofile(d / "trial_01.raw")
    >>> _ = (d / "info.json").write_text(json.dumps({"sample_rate": 1000.0, "shape": [-1, 4], "dtype": "int16"}))
    >>> list_streams(d)[["stream_id", "num_channels", "sampling_frequency", "num_samples"]].values.tolist()
    [['0', 4, 1000.0, 100]]
    """
    opened = _open(path, format, neo_kwargs)
    return _stream_table(opened)


def _streams_text(table: pd.DataFrame) -> str:
    lines = []
    for row in table.itertuples():
        sync = "  [sync/digital]" if row.is_sync else ""
        lines.append(
            f"  id {row.stream_id!r}  name {row.stream_name!r}: {row.num_channels} ch @ {row.sampling_frequency:g} Hz"
            f", {row.num_samples} samples{sync}"
        )
    return "\n".join(lines)


def _select_stream(opened: _Opened, stream, exclude_sync: bool) -> int:
    table = _stream_table(opened)
    where = f"{opened.path}"
    if table.empty:
        r = opened.header_reader
        n_spk = r.header["spike_channels"].size if "spike_channels" in r.header else 0
        n_evt = r.header["event_channels"].size if "event_channels" in r.header else 0
        extra = ""
        if opened.path.is_dir():
            subs = sorted(p.name for p in opened.path.iterdir() if p.is_dir())
            if subs:
                extra = f" It has sub-folders {subs[:10]}: give the one holding the recording."
        raise NeoReadError(
            f"{where} has no continuous signal stream for neo's {opened.rawio_name} "
            f"({n_spk} spike channels, {n_evt} event channels): there are no traces to read.{extra}"
        )
    if stream is None:
        candidates = table[~table["is_sync"]] if exclude_sync else table
        if len(candidates) == 1:
            return int(candidates["stream_index"].iloc[0])
        if len(candidates) == 0:
            candidates = table
            if len(candidates) == 1:
                return int(candidates["stream_index"].iloc[0])
        ids = candidates["stream_id"].tolist()
        raise ValueError(
            f"{where} has {len(table)} signal streams and none was chosen:\n{_streams_text(table)}\n"
            f"Choose one with stream=<id or name>, e.g. stream={ids[0]!r} "
            "(spkfn.io.list_streams(path) returns this table)."
        )
    if isinstance(stream, (int, np.integer)) and not isinstance(stream, bool):
        # an int that is not a stream id is a stream index
        if str(stream) not in table["stream_id"].values:
            if 0 <= int(stream) < len(table):
                return int(stream)
            raise ValueError(f"stream index {stream} is out of range: {where} has {len(table)} streams:\n"
                             f"{_streams_text(table)}")
    key = str(stream)
    for col in ("stream_id", "stream_name"):
        hit = table[table[col] == key]
        if len(hit) == 1:
            return int(hit["stream_index"].iloc[0])
    low = key.lower()
    for col in ("stream_id", "stream_name"):
        hit = table[table[col].str.lower() == low]
        if len(hit) == 1:
            return int(hit["stream_index"].iloc[0])
    hit = table[table["stream_name"].str.lower().str.contains(low, regex=False)
                | table["stream_id"].str.lower().str.contains(low, regex=False)]
    if exclude_sync and len(hit) > 1:
        hit = hit[~hit["is_sync"]] if (~hit["is_sync"]).any() else hit
    if len(hit) == 1:
        return int(hit["stream_index"].iloc[0])
    what = "matches several streams" if len(hit) > 1 else "matches no stream"
    raise ValueError(
        f"stream={stream!r} {what} of {where}:\n{_streams_text(table)}\nGive a stream id or name from this list."
    )


# --------------------------------------------------------------------------------------------
# Lazy chunk reads
# --------------------------------------------------------------------------------------------


class _NeoTraces:
    """Array-like over one stream/segment of a neo RawIO; ``[time, channel]`` reads via neo.

    Picklable: the RawIO is re-opened from its class name and keyword arguments after unpickling
    (for process-based schedulers).
    """

    ndim = 2

    def __init__(self, reader, rawio_name: str, spec: dict, *, block_index: int, segment_index: int,
                 stream_index: int, channel_indexes: np.ndarray, num_stream_channels: int, num_samples: int,
                 dtype):
        self._reader = reader
        self._cls = type(reader)  # re-opened from this class after unpickling
        self._rawio_name = rawio_name
        self._spec = dict(spec)
        self._block = int(block_index)
        self._seg = int(segment_index)
        self._stream = int(stream_index)
        self._channels = np.asarray(channel_indexes, dtype=np.int64)
        self._n_stream_channels = int(num_stream_channels)
        self.shape = (int(num_samples), int(self._channels.size))
        self.dtype = np.dtype(dtype)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_reader"] = None
        return state

    def _rawio(self):
        if self._reader is None:
            reader = self._cls(**self._spec)
            reader.parse_header()
            self._reader = reader
        return self._reader

    def _neo_channels(self, sel: np.ndarray):
        if sel.size == self._n_stream_channels and np.array_equal(sel, np.arange(self._n_stream_channels)):
            return None
        if sel.size > 1 and np.all(np.diff(sel) == 1):
            return slice(int(sel[0]), int(sel[-1]) + 1)
        return sel

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        if len(key) > 2:
            raise IndexError(f"too many indices for a 2-D recording: {key!r}")
        key = key + (slice(None),) * (2 - len(key))
        tkey, ckey = key
        n = self.shape[0]
        # time: read the covering range [lo, hi), then index within it
        if isinstance(tkey, slice):
            start, stop, step = tkey.indices(n)
            rows = range(start, stop, step)
            if len(rows) == 0:
                lo = hi = 0
                post_t: Any = slice(0, 0)
            elif step == 1:
                lo, hi, post_t = start, stop, slice(None)
            else:
                lo, hi = min(rows), max(rows) + 1
                post_t = np.asarray(rows) - lo
        elif isinstance(tkey, (int, np.integer)):
            i = int(tkey) + (n if tkey < 0 else 0)
            if not 0 <= i < n:
                raise IndexError(f"time index {tkey} out of range for {n} samples")
            lo, hi, post_t = i, i + 1, 0
        else:
            idx = np.asarray(tkey, dtype=np.int64)
            idx = np.where(idx < 0, idx + n, idx)
            if idx.size == 0:
                lo = hi = 0
                post_t = slice(0, 0)
            else:
                lo, hi, post_t = int(idx.min()), int(idx.max()) + 1, idx - int(idx.min())
        scalar_channel = isinstance(ckey, (int, np.integer))
        sel = np.atleast_1d(self._channels[ckey])
        if hi <= lo or sel.size == 0:
            out = np.empty((0 if hi <= lo else hi - lo, sel.size), dtype=self.dtype)
        else:
            reader = self._rawio()
            own = _CHUNK_READERS.get(self._cls.__name__)
            raw = own(reader, self._stream, lo, hi, sel) if own is not None else None
            if raw is None:
                raw = reader.get_analogsignal_chunk(
                    block_index=self._block, seg_index=self._seg, i_start=lo, i_stop=hi,
                    stream_index=self._stream, channel_indexes=self._neo_channels(sel),
                )
            # memmap-based RawIOs return read-only views (like spkfn.io.read_binary): no copy here
            out = np.asarray(raw)
            if out.dtype != self.dtype:
                out = out.astype(self.dtype)
        out = out[post_t]
        if scalar_channel:
            out = out[..., 0]
        return out


def _plexon_chunk(reader, stream_index: int, lo: int, hi: int, sel: np.ndarray) -> np.ndarray | None:
    """Samples ``[lo, hi)`` of a PLX stream, read from neo's parsed data-block table.

    neo 0.14's ``PlexonRawIO._get_analogsignal_chunk`` places block borders with a running sum
    that adds each block's own size instead of the previous one's, so a read that does not start
    at 0 is shifted or fails whenever blocks differ in size (as in most OmniPlex files). Here each
    block's first sample is the exclusive cumulative sum of the block sizes, and samples are
    gathered with one vectorised index per channel. Returns None when neo's internals are not
    the expected ones (the caller then uses neo's own read).
    """
    blocks = getattr(reader, "_data_blocks", None)
    mm = getattr(reader, "_memmap", None)
    if not isinstance(blocks, dict) or 5 not in blocks or mm is None or mm.dtype != np.uint8:
        return None
    hdr = reader.header
    sid = hdr["signal_streams"]["id"][stream_index]
    chan_ids = hdr["signal_channels"]["id"][hdr["signal_channels"]["stream_id"] == sid][sel]
    out = np.empty((hi - lo, chan_ids.size), dtype=np.int16)
    want = np.arange(lo, hi, dtype=np.int64)
    for c, cid in enumerate(chan_ids):
        table = blocks[5].get(np.int32(cid), blocks[5].get(int(cid)))
        if table is None or "pos" not in table.dtype.names or "size" not in table.dtype.names:
            return None
        counts = table["size"].astype(np.int64) // 2
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        if hi > starts[-1] + counts[-1]:
            return None
        k = np.searchsorted(starts, want, side="right") - 1
        byte = table["pos"].astype(np.int64)[k] + 2 * (want - starts[k])
        pair = np.empty((want.size, 2), dtype=np.uint8)
        pair[:, 0] = mm[byte]
        pair[:, 1] = mm[byte + 1]
        out[:, c] = pair.view("<i2")[:, 0]
    return out


# RawIOs whose chunk reads spkfn does itself (neo's are wrong for some chunk borders).
_CHUNK_READERS = {"PlexonRawIO": _plexon_chunk}


def _units_factor(units) -> tuple[np.ndarray, list[str]]:
    factors = np.ones(len(units))
    unknown = []
    for i, u in enumerate(units):
        f = _UNIT_TO_UV.get(str(u).strip().lower())
        if f is None:
            unknown.append(str(u))
        else:
            factors[i] = f
    return factors, sorted(set(unknown))


def _as_str(values) -> np.ndarray:
    return np.array([str(v) for v in values])  # shortest fixed-width unicode, not neo's U64


def _channel_ids(ids: np.ndarray, names: np.ndarray) -> np.ndarray:
    ids = _as_str(ids)
    if np.unique(ids).size == ids.size and all(ids):
        return ids
    names = _as_str(names)
    if np.unique(names).size == names.size and all(names):
        return names
    return np.array([str(i) for i in range(ids.size)])


# --------------------------------------------------------------------------------------------
# Probes from the files
# --------------------------------------------------------------------------------------------


def _buffer_file(reader, block_index: int, segment_index: int, stream_index: int) -> Path | None:
    try:
        if not reader.has_buffer_description_api():
            return None
        buffer_id = reader.header["signal_streams"]["buffer_id"][stream_index]
        desc = reader.get_analogsignal_buffer_description(block_index, segment_index, buffer_id)
        return Path(desc["file_path"])
    except Exception:  # noqa: BLE001 - only used to find probe metadata
        return None


def _probe_from_files(opened: _Opened, reader, spec: dict, block_index: int, segment_index: int,
                      stream_index: int):
    """The probe stored with the recording, or None (with the reason logged)."""
    import probeinterface as pi

    kind = _FORMATS[opened.fmt].probe if opened.fmt in _FORMATS else None
    if kind is None:
        return None
    stream_id = str(reader.header["signal_streams"]["id"][stream_index])
    stream_name = str(reader.header["signal_streams"]["name"][stream_index])
    if kind == "spikeglx":
        if "imec" not in stream_id or "SYNC" in stream_id.upper():
            return None
        data_file = _buffer_file(reader, block_index, segment_index, stream_index)
        meta = data_file.with_suffix(".meta") if data_file is not None else None
        if meta is None or not meta.is_file():
            metas = sorted(opened.path.rglob(f"*.{stream_id.replace('-SYNC', '')}.meta"))
            meta = metas[0] if metas else None
        if meta is None:
            return None
        return pi.read_spikeglx(meta)
    if kind == "openephys":
        if opened.fmt == "openephys_binary":
            data_file = _buffer_file(reader, block_index, segment_index, stream_index)
            settings = None
            if data_file is not None:
                exp = next((p for p in data_file.parents if p.name.startswith("experiment")), None)
                if exp is not None:
                    num = exp.name.removeprefix("experiment")
                    settings = exp.parent / ("settings.xml" if num in ("", "1") else f"settings_{num}.xml")
                    if not settings.is_file():
                        settings = exp.parent / "settings.xml"
                name = data_file.parent.name
            else:
                name = stream_name.split("#")[-1]
            if settings is None or not settings.is_file():
                found = sorted(opened.path.rglob("settings.xml"))
                settings = found[0] if found else None
        else:
            settings = opened.path / "settings.xml"
            name = None
        if settings is None or not settings.is_file():
            return None
        has_np = getattr(pi, "has_neuropixels_probes", None)
        if has_np is not None and not has_np(settings, stream_name=name):
            logger.info("%s describes no Neuropixels probe for stream %r: no geometry attached.", settings, stream_name)
            return None
        read = getattr(pi, "read_openephys_neuropixels", None) or pi.read_openephys
        return read(settings, stream_name=name)
    if kind == "biocam":
        return pi.read_3brain(spec["filename"])
    if kind == "maxwell":
        return pi.read_maxwell(spec["filename"], well_name=stream_id, rec_name=spec.get("rec_name") or "rec0000")
    return None  # pragma: no cover


def _attach_probe(rec: xr.DataArray, probe, *, opened: _Opened, reader, spec, block_index, segment_index,
                  stream_index) -> xr.DataArray:
    from .probes import read_probe, set_probe

    if probe is False:
        return rec
    if probe is not None:
        if isinstance(probe, (str, Path)):
            probe = read_probe(probe)
        return set_probe(rec, probe)
    try:
        found = _probe_from_files(opened, reader, spec, block_index, segment_index, stream_index)
    except Exception as e:  # noqa: BLE001 - geometry is optional: warn, keep the traces
        warnings.warn(
            f"could not read the probe stored with {opened.path.name} ({type(e).__name__}: {e}); the recording "
            "has no geometry. Attach one with probe=... or spkfn.io.set_probe.", UserWarning, stacklevel=3)
        return rec
    if found is None:
        return rec
    n_contacts = found.get_contact_count()
    if n_contacts != rec.sizes["channel"]:
        warnings.warn(
            f"the probe stored with {opened.path.name} has {n_contacts} contacts but the stream has "
            f"{rec.sizes['channel']} channels; no geometry attached (pass probe=... to set one).",
            UserWarning, stacklevel=3)
        return rec
    return set_probe(rec, found)


# --------------------------------------------------------------------------------------------
# read_neo
# --------------------------------------------------------------------------------------------


def read_neo(
    path,
    *,
    format: str | None = None,
    stream: str | int | None = None,
    segment_index: int = 0,
    block_index: int = 0,
    probe=None,
    exclude_sync: bool = True,
    chunk_size: int | None = None,
    neo_kwargs: dict | None = None,
) -> xr.DataArray:
    """Open one stream of one segment of any neo-readable file as a lazy recording.

    Opening reads the header (and one sample, to fail early on files whose traces cannot be
    decoded); traces are read chunk by chunk through neo's ``get_analogsignal_chunk`` only when
    computed, so opening a 100 GB file costs nothing.

    Parameters
    ----------
    path : str or Path
        The recording's file or folder (SpikeGLX / Open Ephys / Neuralynx: the folder, or a file
        inside it).
    format : str, optional
        Friendly name (``"spikeglx"``, ``"openephys"``, ``"openephys_legacy"``,
        ``"openephys_binary"``, ``"intan"``, ``"blackrock"``, ``"plexon"``, ``"neuralynx"``,
        ``"biocam"``, ``"maxwell"``, ``"rawbinary"``, ...; :func:`neo_formats` lists them) or a neo
        RawIO class name (``"SpikeGLXRawIO"``). Detected from ``path`` when None
        (:func:`detect_format`).
    stream : str or int, optional
        Stream id or name (case-insensitive; a unique substring of the name also works, e.g.
        ``"amplifier"`` for Intan), or a stream index. Needed when the file has several
        streams besides sync/digital ones; the error lists them (as does :func:`list_streams`).
    segment_index, block_index : int, default 0
        Which segment (neo: a continuous piece; gaps or separate files start new ones) and block.
        ``attrs["source"]["num_segments"]`` says how many there are.
    probe : probeinterface.Probe, ProbeGroup, str, Path, False or None
        None: attach the probe the files carry (SpikeGLX ``.meta``, Open Ephys ``settings.xml`` with
        Neuropixels, BioCAM, MaxWell), if any. A probe or a probe file (``.json``, ``.prb``,
        ``.meta``): attach that one. False: attach none.
    exclude_sync : bool, default True
        Skip sync/digital streams (e.g. SpikeGLX ``imec0.ap-SYNC``) when choosing a stream, and drop
        sync/digital channels (``SY0``, ``*SYNC``, ``XD*``) from a stream that also holds other
        channels. A stream asked for by name is returned whole if all its channels are sync.
    chunk_size : int, optional
        Samples per dask chunk; default about 32 MB of float32 per chunk (0.1 s to 10 s).
    neo_kwargs : dict, optional
        Extra keyword arguments for the neo RawIO (e.g. ``{"rec_name": "rec0000"}`` for MaxWell,
        ``{"gap_tolerance_ms": 1.0}`` for Neuralynx, ``{"dtype": "int16", "sampling_rate": 30000.0,
        "nb_channel": 32}`` for ``rawbinary`` without info.json).

    Returns
    -------
    xarray.DataArray
        Recording ``("time", "channel")`` in the acquisition dtype. ``channel`` holds neo's channel
        ids (names when ids repeat), ``channel_name`` neo's channel names; ``gain_to_uV`` /
        ``offset_to_uV`` are neo's gain and offset converted from the stream's units to µV;
        ``time`` starts at neo's ``t_start`` of the segment (session clock). ``attrs["source"]``:
        ``format``, ``rawio``, ``path``, ``stream``, ``stream_name``, ``block_index``,
        ``segment_index``, ``num_segments``, ``units``, ``neo_version``.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Unknown format, ambiguous or unknown stream, segment or block out of range.
    NeoReadError
        neo cannot parse or read the file (a ``ValueError``; the message names the file, the
        format tried and neo's own error, with a hint when the cause is known).

    Notes
    -----
    When neo reports units it cannot map to volts (e.g. ``""`` for raw binary, Plexon, or
    Blackrock NSx 2.1 without its .nev), ``gain_to_uV`` holds neo's gain unchanged and a
    ``UserWarning`` says so; ``attrs["source"]["units"]`` keeps neo's units.

    Chunks are computed by dask's threaded scheduler. RawIOs whose reads were measured
    thread-safe (memmap based) run unlocked; others are read under a lock per opened file.

    Examples
    --------
    >>> import json, tempfile, pathlib, numpy as np
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for k in range(2):  # two trials = two segments
    ...     np.arange(40, dtype="int16").reshape(10, 4).__add__(k).tofile(d / f"trial_{k}.raw")
    >>> _ = (d / "info.json").write_text(json.dumps({"sample_rate": 1000.0, "shape": [-1, 4], "dtype": "int16"}))
    >>> rec = read_neo(d, segment_index=1)
    >>> rec.shape, rec.attrs["source"]["num_segments"], rec.values[0].tolist()
    ((10, 4), 2, [1, 2, 3, 4])
    """
    check_bool("exclude_sync", exclude_sync)
    segment_index = check_int("segment_index", segment_index, min_value=0)
    block_index = check_int("block_index", block_index, min_value=0)
    if chunk_size is not None:
        chunk_size = check_int("chunk_size", chunk_size, min_value=1)
    if neo_kwargs is not None and not isinstance(neo_kwargs, dict):
        raise ValueError(f"neo_kwargs must be a dict of RawIO keyword arguments; got {type(neo_kwargs).__name__}.")
    if not (probe is None or probe is False or isinstance(probe, (str, Path)) or hasattr(probe, "get_contact_count")
            or hasattr(probe, "probes")):
        raise ValueError(
            f"probe must be None (the files' probe), False (none), a probeinterface Probe/ProbeGroup or a probe "
            f"file path; got {type(probe).__name__}."
        )
    p = Path(path)
    if (p.is_file() and stream is None and not neo_kwargs and _spikeglx_stream_from_name(p.name)
            and (format is None or _normalise_format(format) == "spikeglx")):
        # one SpikeGLX file names its stream (and gate/trigger segment)
        return read_spikeglx(p, stream=None, segment_index=segment_index, probe=probe, exclude_sync=exclude_sync,
                             chunk_size=chunk_size)
    opened = _open(path, format, neo_kwargs)
    if stream is None and opened.fmt == "openephys_binary" and p.is_file() and p.name == "continuous.dat":
        stream = p.parent.name  # continuous/<stream folder>/continuous.dat
    return _recording_from_opened(opened, stream=stream, segment_index=segment_index, block_index=block_index,
                                  probe=probe, exclude_sync=exclude_sync, chunk_size=chunk_size)


def _recording_from_opened(opened: _Opened, *, stream, segment_index: int, block_index: int, probe,
                           exclude_sync: bool, chunk_size: int | None) -> xr.DataArray:
    import neo

    check_bool("exclude_sync", exclude_sync)
    segment_index = check_int("segment_index", segment_index, min_value=0)
    block_index = check_int("block_index", block_index, min_value=0)
    if chunk_size is not None:
        chunk_size = check_int("chunk_size", chunk_size, min_value=1)
    n_blocks = opened.block_count()
    if block_index >= n_blocks:
        raise ValueError(
            f"block_index={block_index} is out of range: {opened.path} has {n_blocks} block(s) "
            f"(valid: 0..{n_blocks - 1})."
        )
    n_seg = opened.segment_count(block_index)
    if segment_index >= n_seg:
        raise ValueError(
            f"segment_index={segment_index} is out of range: {opened.path} has {n_seg} segment(s) in block "
            f"{block_index} (valid: 0..{n_seg - 1}); read each with segment_index=0..{n_seg - 1}."
        )
    stream_index = _select_stream(opened, stream, exclude_sync)
    reader, spec, b, s = opened.locate(block_index, segment_index)
    hdr = reader.header
    sid = hdr["signal_streams"]["id"][stream_index]
    sname = str(hdr["signal_streams"]["name"][stream_index])
    chans = hdr["signal_channels"][hdr["signal_channels"]["stream_id"] == sid]
    keep = np.arange(chans.size)
    if exclude_sync:
        is_sync = np.array([bool(_SYNC_CHANNEL.match(str(n))) for n in chans["name"]], dtype=bool)
        if is_sync.any() and not is_sync.all():
            dropped = chans["name"][is_sync].astype(str).tolist()
            logger.info("excluded sync/digital channels %s from stream %r (exclude_sync=False keeps them).",
                        dropped, str(sid))
            keep = np.flatnonzero(~is_sync)
    chans_kept = chans[keep]
    dtypes = {str(d) for d in chans_kept["dtype"]}
    if len(dtypes) != 1:  # pragma: no cover - neo guarantees one dtype per stream
        raise NeoReadError(f"stream {sid!r} of {opened.path} mixes dtypes {sorted(dtypes)}.")
    dtype = np.dtype(dtypes.pop())
    fs = float(chans_kept["sampling_rate"][0])
    try:
        n_samples = int(reader.get_signal_size(b, s, stream_index))
        t_start = float(reader.get_signal_t_start(b, s, stream_index))
    except Exception as e:
        raise NeoReadError(
            f"neo's {opened.rawio_name} could not size stream {str(sid)!r} of {str(opened.path)!r}: "
            f"{type(e).__name__}: {e}.") from e
    factors, unknown = _units_factor(chans_kept["units"])
    if unknown:
        warnings.warn(
            f"{opened.path.name}, stream {str(sid)!r}: neo reports units {unknown} that are not volts; gain_to_uV "
            "holds neo's gain unchanged, so values are NOT known to be µV. Set the right scaling with "
            "rec.assign_coords(gain_to_uV=('channel', gains)) if you know it.", UserWarning, stacklevel=3)
    gain = chans_kept["gain"].astype(np.float64) * factors
    offset = chans_kept["offset"].astype(np.float64) * factors
    ids = _channel_ids(chans_kept["id"], chans_kept["name"])

    proxy = _NeoTraces(reader, opened.rawio_name, spec, block_index=b, segment_index=s,
                       stream_index=stream_index, channel_indexes=keep, num_stream_channels=chans.size,
                       num_samples=n_samples, dtype=dtype)
    if n_samples > 0:  # fail now, not at compute time, when traces cannot be decoded
        try:
            proxy[0:1]
        except Exception as e:
            raise NeoReadError(
                f"neo's {opened.rawio_name} parsed {str(opened.path)!r} (format {opened.fmt!r}) but could not read "
                f"traces of stream {str(sid)!r}: {type(e).__name__}: {str(e).rstrip('. ')}." + _hint_for(e, opened.fmt)
            ) from e
    if chunk_size is None:
        chunk_size = default_chunk_size(keep.size, sampling_frequency=fs)
    chunk_size = max(1, min(chunk_size, max(n_samples, 1)))
    lock = False if opened.rawio_name in _THREAD_SAFE else SerializableLock()
    stat = opened.path.stat()
    name = "neo-" + tokenize(opened.rawio_name, spec, str(opened.path.resolve()), stat.st_mtime_ns, b, s,
                             stream_index, keep.tobytes(), chunk_size)
    data = da.from_array(proxy, chunks=(chunk_size, keep.size), lock=lock, name=name, fancy=False,
                         asarray=False, meta=np.empty((0, 0), dtype=dtype))
    source = {
        "format": opened.fmt,
        "rawio": type(reader).__name__,
        "path": str(Path(spec.get("filename") or spec.get("dirname") or opened.path).resolve()),
        "stream": str(sid),
        "stream_name": sname,
        "block_index": int(block_index),
        "segment_index": int(segment_index),
        "num_segments": int(n_seg),
        "units": ",".join(sorted({str(u) for u in chans_kept["units"]})),
        "neo_version": str(neo.__version__),
    }
    if n_seg > 1:
        logger.info("%s has %d segments in block %d; read segment %d (choose with segment_index=).",
                    opened.path, n_seg, block_index, segment_index)
    rec = from_array(data, sampling_frequency=fs, channel_ids=ids, gain_to_uV=gain, offset_to_uV=offset,
                     t_start_s=t_start, source=source)
    rec = rec.assign_coords(channel_name=("channel", _as_str(chans_kept["name"])))
    return _attach_probe(rec, probe, opened=opened, reader=reader, spec=spec, block_index=b, segment_index=s,
                         stream_index=stream_index)


# --------------------------------------------------------------------------------------------
# Friendly wrappers
# --------------------------------------------------------------------------------------------


def read_spikeglx(folder_or_bin, *, stream: str | None = "imec0.ap", segment_index: int = 0, probe=None,
                  exclude_sync: bool = True, chunk_size: int | None = None) -> xr.DataArray:
    """Open a SpikeGLX recording (Neuropixels ``.bin`` + ``.meta``) with its probe from the ``.meta``.

    Parameters
    ----------
    folder_or_bin : str or Path
        The run folder (e.g. ``Noise4Sam_g0``), a probe folder inside it, or one ``.bin``/``.meta``
        file. A file sets the stream (``*.imec0.ap.bin`` -> ``"imec0.ap"``) and, when the folder
        holds several gates/triggers, the segment.
    stream : str, default "imec0.ap"
        ``"imec0.ap"``, ``"imec0.lf"``, ``"imec1.ap"``, ``"nidq"``, ...; ignored when a file is given.
        None: the only non-sync stream, or an error listing them.
    segment_index : int, default 0
        Gate/trigger file (neo segment), when several.
    probe, exclude_sync, chunk_size
        As in :func:`read_neo`. The sync channel (``SY0``, neo's ``-SYNC`` stream) is excluded, so an
        AP stream has 384 channels matching the probe's contacts.

    Returns
    -------
    xarray.DataArray
        Recording in int16 with ``gain_to_uV`` from the ``.meta`` (imAiRange / gain), ``x``/``y``
        from the probe, ``time`` starting at the file's first sample on the session clock.

    Examples
    --------
    Run from the repository root (the shared test data lives in ``../shared/data``):

    >>> rec = read_spikeglx("../shared/data/spikeglx_noise4sam_truncated/Noise4Sam_g0")
    >>> rec.sizes["channel"], rec.attrs["sampling_frequency"], float(rec.gain_to_uV[0])
    (384, 30000.0, 2.34375)
    >>> float(rec.y.max())
    3820.0
    """
    path = Path(folder_or_bin)
    if not path.exists():
        raise FileNotFoundError(f"SpikeGLX path {str(path)!r} does not exist; give the run folder or a .bin file.")
    if path.is_file():
        from_name = _spikeglx_stream_from_name(path.name)
        if from_name is None:
            raise ValueError(
                f"{path.name} is not a SpikeGLX file name (expected <run>_g<G>_t<T>.imec<N>.ap.bin, .lf.bin or "
                ".nidq.bin); give the run folder instead."
            )
        stream = from_name
        opened = _open(path.parent, "spikeglx", None)
        segment_index = _spikeglx_segment_of(opened, path, stream, segment_index)
        return _recording_from_opened(opened, stream=stream, segment_index=segment_index, block_index=0,
                                      probe=probe, exclude_sync=exclude_sync, chunk_size=chunk_size)
    opened = _open(path, "spikeglx", None)
    if stream is not None:
        table = _stream_table(opened)
        if str(stream) not in table["stream_id"].values and str(stream) not in table["stream_name"].values:
            raise ValueError(
                f"SpikeGLX stream {stream!r} is not in {path}:\n{_streams_text(table)}\nChoose one with stream=..."
            )
    return _recording_from_opened(opened, stream=stream, segment_index=segment_index, block_index=0, probe=probe,
                                  exclude_sync=exclude_sync, chunk_size=chunk_size)


def _spikeglx_segment_of(opened: _Opened, file: Path, stream: str, default: int) -> int:
    """The segment whose data file is ``file`` (the .bin beside a .meta), else ``default``."""
    reader = opened.header_reader
    bin_file = file.with_suffix(".bin").resolve()
    ids = [str(x) for x in reader.header["signal_streams"]["id"]]
    if stream not in ids:
        return default
    k = ids.index(stream)
    for seg in range(opened.segment_count(0)):
        f = _buffer_file(reader, 0, seg, k)
        if f is not None and f.resolve() == bin_file:
            return seg
    return default


def read_openephys(folder, *, stream: str | int | None = None, block_index: int = 0, segment_index: int = 0,
                   probe=None, exclude_sync: bool = True, chunk_size: int | None = None) -> xr.DataArray:
    """Open an Open Ephys recording, legacy (``.continuous``) or binary (``structure.oebin``).

    The Neuropixels probe is read from the Record Node's ``settings.xml`` (``settings_N.xml`` for
    experiment N) when the plugin wrote one; other Open Ephys hardware carries no geometry.

    Parameters
    ----------
    folder : str or Path
        Legacy: the folder with the ``.continuous`` files (one Record Node). Binary: the recording's
        top folder or a Record Node folder (neo: experiments are blocks, recordings are segments).
    stream, block_index, segment_index, probe, exclude_sync, chunk_size
        As in :func:`read_neo`.

    Returns
    -------
    xarray.DataArray

    Examples
    --------
    Run from the repository root (the shared test data lives in ``../shared/data``):

    >>> rec = read_openephys("../shared/data/openephys_legacy_v067_example/Record Node 101")
    >>> rec.sizes["channel"], rec.attrs["sampling_frequency"], round(float(rec.time[0]), 6)
    (16, 40000.0, 6.290875)
    """
    return read_neo(folder, format="openephys", stream=stream, block_index=block_index, segment_index=segment_index,
                    probe=probe, exclude_sync=exclude_sync, chunk_size=chunk_size)


def read_intan(file, *, stream: str | int | None = "amplifier", probe=None,
               chunk_size: int | None = None) -> xr.DataArray:
    """Open an Intan ``.rhd``/``.rhs`` file (header-attached, or ``info.rhd`` of a split recording).

    Parameters
    ----------
    file : str or Path
        The ``.rhd``/``.rhs`` file.
    stream : str or int, default "amplifier"
        The amplifier channels by default; ``"auxiliary"``, ``"supply"``, ``"ADC"``, ... for the
        others (see :func:`list_streams`).
    probe : probeinterface.Probe, ProbeGroup, str, Path or None
        Intan files carry no geometry; pass the probe wired to the headstage to attach one.
    chunk_size : int, optional
        As in :func:`read_neo`.

    Returns
    -------
    xarray.DataArray
        uint16 (RHD amplifiers) with ``gain_to_uV`` 0.195 and ``offset_to_uV`` -6389.76.

    Notes
    -----
    neo 0.14 cannot open RHD v1.x files that store temperature-sensor channels
    (``KeyError: 'custom_channel_name'``). For those header-attached files spkfn reads the header
    with neo's own RHD/RHS header parser and the analog channels from a memmap of the data blocks
    (``attrs["source"]["rawio"]`` is then ``"_IntanHeaderAttached"``; a warning is logged).

    Examples
    --------
    Run from the repository root (the shared test data lives in ``../shared/data``):

    >>> rec = read_intan("../shared/data/intan_rhd_samples/example_intan_file.rhd")
    >>> rec.sizes["channel"], rec.attrs["sampling_frequency"], float(rec.gain_to_uV[0])
    (2, 20000.0, 0.195)
    """
    path = Path(file)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give the .rhd/.rhs file (info.rhd for split recordings).")
    return read_neo(path, format="intan", stream=stream, probe=probe, chunk_size=chunk_size)


def read_blackrock(file, *, stream: str | int | None = None, nev_file=None, segment_index: int = 0, probe=None,
                   chunk_size: int | None = None) -> xr.DataArray:
    """Open a Blackrock ``.nsX`` file (Utah arrays, Cerebus/NeuroPort).

    Parameters
    ----------
    file : str or Path
        An ``.ns1``...``.ns6`` file (only that one is loaded), or the common basename without
        extension (every ``.nsX`` with that name becomes a stream).
    stream : str or int, optional
        ``"nsx5"``, ``"nsx6"``, ...; needed only when several ``.nsX`` are loaded.
    nev_file : str or Path, optional
        The ``.nev`` file when its name differs from the ``.nsX`` basename (NSx 2.1 files take their
        scaling to µV from it).
    segment_index : int, default 0
        Pauses in the recording start new segments.
    probe : probeinterface.Probe, ProbeGroup, str, Path or None
        Blackrock files carry no geometry; pass the array's map (e.g. a ``.prb``/``.json``).
    chunk_size : int, optional
        As in :func:`read_neo`.

    Returns
    -------
    xarray.DataArray

    Examples
    --------
    Run from the repository root (the shared test data lives in ``../shared/data``):

    >>> rec = read_blackrock("../shared/data/blackrock_mne_nsx_headers/test_BRSMPGRP_raw.ns3", segment_index=1)
    >>> rec.sizes["channel"], rec.attrs["source"]["num_segments"], rec.sizes["time"]
    (128, 2, 150)
    """
    path = Path(file)
    neo_kwargs: dict[str, Any] = {}
    if nev_file is not None:
        nev = Path(nev_file)
        if not nev.exists() and not nev.with_suffix(".nev").exists():
            raise FileNotFoundError(f"nev_file {str(nev)!r} does not exist.")
        neo_kwargs["nev_override"] = str(nev.with_suffix("") if nev.suffix.lower() == ".nev" else nev)
    if not path.exists():
        siblings = list(path.parent.glob(path.name + ".ns[1-6]")) if path.parent.is_dir() else []
        if not siblings:
            raise FileNotFoundError(f"Blackrock file {str(path)!r} does not exist (nor {path.name}.ns1-6).")
        return _recording_from_opened(
            _open_blackrock_basename(path, neo_kwargs), stream=stream, segment_index=segment_index,
            block_index=0, probe=probe, exclude_sync=True, chunk_size=chunk_size)
    return read_neo(path, format="blackrock", stream=stream, segment_index=segment_index, probe=probe,
                    chunk_size=chunk_size, neo_kwargs=neo_kwargs)


def _open_blackrock_basename(path: Path, neo_kwargs: dict) -> _Opened:
    rawio_name, cls, _ = _format_spec("blackrock")
    spec = {"filename": str(path), **neo_kwargs}
    reader = _parse(cls, spec, path, "blackrock")
    return _Opened(fmt="blackrock", rawio_name=rawio_name, path=path.parent, specs=[spec], readers=[reader])
