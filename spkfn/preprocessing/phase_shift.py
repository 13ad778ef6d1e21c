"""Phase shift: undo the sub-sample delays between channels of multiplexed ADCs (Neuropixels).

A Neuropixels probe digitises its channels in turn: channel ``c`` of frame ``n`` is sampled at
``(n + d_c) / fs`` with ``d_c`` a fraction of a sample (its *inter-sample shift*). Delaying each
channel by ``d_c`` (a fractional delay, done exactly in the frequency domain) puts every channel on
the same clock, which matters for anything that combines channels at one instant (common
references, whitening, spatial filters).
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import xarray as xr

from ..core.validate import check_number
from ..io.recording import check_recording, num_samples
from ._base import lazy_transform
from .resample import _out_dtype

__all__ = ["phase_shift", "phase_shift_kernel", "inter_sample_shift_from_probe"]


def inter_sample_shift_from_probe(recording: xr.DataArray) -> np.ndarray | None:
    """Per-channel inter-sample shift (fraction of a sample) from the recording's probe, or None.

    Read from the probe's contact annotations, in this order:

    1. ``inter_sample_shift`` (set by older probeinterface readers and by SpikeInterface);
    2. ``adc_sample_order`` with the probe annotations ``num_channels_per_adc``,
       ``ap_sample_frequency_hz`` and ``lf_sample_frequency_hz`` (probeinterface >= 0.3 SpikeGLX
       and Open Ephys readers): ``shift = adc_sample_order / n_cycles``, where the ADC cycles
       through ``n_cycles = num_channels_per_adc * (1 + lf_fs / ap_fs)`` slots per sample on the
       AP band (13 on Neuropixels 1.0: 12 channels + one LFP slot; 16 on 2.0) and
       ``num_channels_per_adc`` slots on the LF band (the same rule SpikeInterface uses).

    Returns ``None`` when the recording has no probe or the probe carries neither annotation.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array, linear_probe
    >>> probe = linear_probe(num_channels=4)
    >>> probe.annotate(num_channels_per_adc=12, ap_sample_frequency_hz=30000.0, lf_sample_frequency_hz=2500.0)
    >>> probe.annotate_contacts(adc_sample_order=np.array([0, 0, 1, 1]))
    >>> rec = from_array(np.zeros((10, 4), "int16"), sampling_frequency=30000.0, probe=probe)
    >>> (inter_sample_shift_from_probe(rec) * 13).round(6).tolist()   # 13 ADC cycles on NP1.0 AP
    [0.0, 0.0, 1.0, 1.0]
    """
    check_recording(recording)
    if not recording.attrs.get("probe"):
        return None
    from ..io.probes import get_probe

    fs = float(recording.attrs["sampling_frequency"])
    n = recording.sizes["channel"]
    shifts = np.full(n, np.nan)
    for probe in get_probe(recording).probes:
        ann = probe.contact_annotations
        chans = np.asarray(probe.device_channel_indices, dtype=np.int64)
        if "inter_sample_shift" in ann:
            shifts[chans] = np.asarray(ann["inter_sample_shift"], dtype=np.float64)
            continue
        order = ann.get("adc_sample_order")
        per_adc = probe.annotations.get("num_channels_per_adc")
        ap_fs = probe.annotations.get("ap_sample_frequency_hz")
        lf_fs = probe.annotations.get("lf_sample_frequency_hz") or 0.0
        if order is None or not per_adc or not ap_fs:
            continue
        is_lf = lf_fs > 0 and abs(fs - lf_fs) < 0.01 * lf_fs
        n_cycles = float(per_adc) if is_lf else round(float(per_adc) * (1.0 + float(lf_fs) / float(ap_fs)))
        shifts[chans] = np.asarray(order, dtype=np.float64) / n_cycles
    if np.all(np.isnan(shifts)):
        return None
    if np.any(np.isnan(shifts)):
        missing = recording.coords["channel"].values[np.isnan(shifts)]
        raise ValueError(
            f"the probe gives inter-sample shifts for some channels but not for {missing[:10].tolist()}; "
            "pass inter_sample_shift= explicitly (one value per channel)."
        )
    return shifts


def _taper(length: int) -> np.ndarray:
    """Half-Hann ramp from 0 (excluded) to 1 over ``length`` samples."""
    k = np.arange(1, length + 1, dtype=np.float64)
    return (0.5 * (1.0 - np.cos(np.pi * k / (length + 1)))).astype(np.float32)


def phase_shift_kernel(traces, *, shifts, margin: int, pad_left: bool = True, pad_right: bool = True) -> np.ndarray:
    """Delay each channel by ``shifts[c]`` samples (fractional) in the frequency domain.

    ``y_c[n] = x_c(n - shifts[c])`` for a band-limited signal: the spectrum is multiplied by
    ``exp(-2 pi i f shifts[c])``. The first and last ``margin`` samples of ``traces`` are context
    (they are tapered with a half-Hann ramp before the FFT so the circular transform sees no jump);
    where ``pad_left`` / ``pad_right``, ``margin`` zeros are added instead (the recording's edges).

    Parameters
    ----------
    traces : ndarray, shape (n_samples, n_channels)
    shifts : ndarray, shape (n_channels,)
        Delay of each channel in samples.
    margin : int
        Context samples tapered on each side.
    pad_left, pad_right : bool, default True
        Add ``margin`` zeros on that side (the side is a recording edge, not context).

    Returns
    -------
    ndarray, float32 (float64 for float64 input), same shape as ``traces``.

    Examples
    --------
    >>> import numpy as np
    >>> n = np.arange(2000)
    >>> x = np.sin(2 * np.pi * 0.01 * (n + 0.5))[:, None]          # sampled half a sample late
    >>> y = phase_shift_kernel(x, shifts=np.array([0.5]), margin=200)
    >>> bool(np.abs(y[300:-300, 0] - np.sin(2 * np.pi * 0.01 * n[300:-300])).max() < 1e-3)
    True
    """
    x = np.asarray(traces)
    work = np.float64 if x.dtype == np.float64 else np.float32
    n_core = x.shape[0]
    left = margin if pad_left else 0
    right = margin if pad_right else 0
    buf = np.zeros((n_core + left + right, x.shape[1]), dtype=work)
    buf[left:left + n_core] = x
    if margin > 0:
        ramp = _taper(min(margin, buf.shape[0] // 2)).astype(work)
        m = ramp.size
        buf[:m] *= ramp[:, None]
        buf[buf.shape[0] - m:] *= ramp[::-1, None]
    nfft = scipy.fft.next_fast_len(buf.shape[0], real=True)
    spec = scipy.fft.rfft(buf, n=nfft, axis=0)
    freqs = scipy.fft.rfftfreq(nfft).astype(work)
    # Few distinct delays (12 or 16 ADC slots on Neuropixels): one phase ramp per distinct value.
    uniq, which = np.unique(np.asarray(shifts, dtype=work), return_inverse=True)
    rot = np.exp((-2j * np.pi) * freqs[:, None] * uniq[None, :]).astype(spec.dtype, copy=False)
    spec *= rot[:, np.ravel(which)]
    out = scipy.fft.irfft(spec, n=nfft, axis=0)
    return out[left:left + n_core].astype(work, copy=False)


def _kernel(block, *, start, n_total, shifts, margin):
    return phase_shift_kernel(block, shifts=shifts, margin=margin, pad_left=start == 0,
                              pad_right=start + block.shape[0] >= n_total)


def phase_shift(recording: xr.DataArray, *, inter_sample_shift: np.ndarray | None = None,
                margin_ms: float = 40.0, dtype=None, chunk_size: int | None = None) -> xr.DataArray:
    """Align all channels on one clock by undoing their ADC inter-sample delays (lazy).

    Parameters
    ----------
    recording : xarray.DataArray
        Recording; wideband or AP band. Apply it first (before filters and references).
    inter_sample_shift : array_like, shape (n_channels,), optional
        Sampling delay of each channel as a fraction of a sample period (``[0, 1)`` on
        Neuropixels). Default: from the probe (see :func:`inter_sample_shift_from_probe`), which
        :func:`spkfn.io.read_probe` gets from a SpikeGLX ``.meta`` file.
    margin_ms : float, default 40.0
        Context read on each side of a chunk (tapered before the FFT). A fractional delay is a
        sinc of infinite support, so chunks differ slightly from one whole-array FFT: by about
        1e-4 of the signal's std for 300-6000 Hz data with 40 ms (tests; SpikeInterface's chunks
        differ by the same amount), more for power near Nyquist (~3 % for white noise). Longer
        margins reduce it.
    dtype : numpy dtype, optional
        Output dtype. Default: float32, float64 for float64 input (int16 input is not rounded
        back, which would add quantisation noise). Integer targets are rounded and clipped.
    chunk_size : int, optional
        Samples per chunk (default: the recording's chunks).

    Returns
    -------
    xarray.DataArray
        Each channel delayed by its shift: ``y_c[n] = x_c(n - d_c)``, so sample ``n`` of every
        channel refers to time ``n / fs``. Gains, offsets, geometry and probe are unchanged.

    Notes
    -----
    Fractional delay by a linear phase ramp, ``Y_c(f) = X_c(f) exp(-2 pi i f d_c / fs)``, on
    each chunk with ``margin_ms`` of context (half-Hann tapered) and zeros beyond the recording's
    edges. The multiplexing scheme is that of the Neuropixels ADCs (SpikeGLX documentation,
    "dmx_vs_gbl"); the correction follows IBL's destriping (``ibldsp.fourier.fshift``, IBL spike
    sorting white paper, 2022) and SpikeInterface's ``phase_shift``.

    Examples
    --------
    >>> import numpy as np
    >>> from spkfn.io import from_array
    >>> fs, n = 30000.0, np.arange(30000)
    >>> d = np.array([0.0, 0.25, 0.5])                            # channel c sampled d[c] late
    >>> x = np.sin(2 * np.pi * 1000 * (n[:, None] + d[None, :]) / fs).astype("float32")
    >>> out = phase_shift(from_array(x, sampling_frequency=fs), inter_sample_shift=d).values
    >>> bool(np.abs(out[2000:-2000] - out[2000:-2000, :1]).max() < 1e-3)   # now in phase
    True
    """
    check_recording(recording)
    fs = float(recording.attrs["sampling_frequency"])
    n_ch = recording.sizes["channel"]
    margin_ms = check_number("margin_ms", margin_ms, min_value=0, min_inclusive=False)
    source = "argument"
    if inter_sample_shift is None:
        shifts = inter_sample_shift_from_probe(recording)
        source = "probe"
        if shifts is None:
            raise ValueError(
                "the recording's probe has no inter-sample shifts (no 'inter_sample_shift' or "
                "'adc_sample_order' contact annotation); attach the probe from the SpikeGLX .meta "
                "(spkfn.io.read_probe) or pass inter_sample_shift=<one delay per channel, in samples>."
            )
    else:
        shifts = np.asarray(inter_sample_shift, dtype=np.float64)
        if shifts.shape != (n_ch,):
            raise ValueError(
                f"inter_sample_shift must have one value per channel ({n_ch}); got shape {shifts.shape}."
            )
    if not np.all(np.isfinite(shifts)) or np.any(np.abs(shifts) > 1.0):
        raise ValueError(
            "inter_sample_shift values must be finite fractions of a sample in [-1, 1]; got range "
            f"[{np.nanmin(shifts):g}, {np.nanmax(shifts):g}]. Give delays in samples, not seconds."
        )
    margin = max(1, int(round(margin_ms * fs / 1000.0)))
    in_dtype = np.dtype(recording.dtype)
    out_dtype = _out_dtype(in_dtype, dtype)

    def kernel(block, *, start):
        y = _kernel(block, start=start, n_total=n_total, shifts=shifts, margin=margin)
        if out_dtype.kind in "iu":
            info = np.iinfo(out_dtype)
            y = np.clip(np.round(y), info.min, info.max)
        return y

    n_total = num_samples(recording)
    return lazy_transform(
        recording, kernel, margin_samples=margin, dtype=out_dtype, with_position=True, chunk_size=chunk_size,
        step="phase_shift",
        params={"inter_sample_shift": shifts, "source": source, "margin_ms": margin_ms, "dtype": str(out_dtype)},
    )
