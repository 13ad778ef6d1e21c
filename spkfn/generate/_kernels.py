"""numba kernels of the generator (private): adding spikes to a chunk, sparse spatial mixing."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def add_spikes(out, start, spike_samples, spike_scales, template_rows, bank, bank_channels, bank_units, nbefore):
    """Add ``spike_scales[i] * bank[template_rows[i]]`` at ``spike_samples[i] - nbefore - start`` into ``out``.

    ``out`` is ``(n, n_channels)`` float32; ``bank`` is ``(n_templates, n_samples, max_ch)``;
    ``bank_channels[bank_units[row], j]`` is the channel of column ``j`` (``-1`` pads the end).
    Spikes are added in the given order, so each output sample receives its terms in the same
    order whatever chunk it belongs to (bit-identical results across chunkings).
    """
    n_out = out.shape[0]
    n_t = bank.shape[1]
    n_c = bank.shape[2]
    for i in range(spike_samples.shape[0]):
        row = template_rows[i]
        u = bank_units[row]
        a = spike_scales[i]
        t0 = spike_samples[i] - nbefore - start
        k0 = max(0, -t0)
        k1 = min(n_t, n_out - t0)
        for k in range(k0, k1):
            r = t0 + k
            for j in range(n_c):
                c = bank_channels[u, j]
                if c < 0:
                    break
                out[r, c] += a * bank[row, k, j]


@njit(nogil=True, cache=True)
def sparse_mix(z, indptr, indices, data):
    """``out[t, i] = sum_k data[k] * z[t, indices[k]]`` over row ``i`` of a CSR matrix (float32)."""
    n, n_ch = z.shape
    out = np.empty((n, indptr.shape[0] - 1), dtype=np.float32)
    for t in range(n):
        for i in range(indptr.shape[0] - 1):
            acc = np.float32(0.0)
            for k in range(indptr[i], indptr[i + 1]):
                acc += data[k] * z[t, indices[k]]
            out[t, i] = acc
    return out


@njit(nogil=True, cache=True)
def sos_filter(x, sos):
    """Causal IIR filter of ``x`` (float32 ``(n, n_channels)``) along time, from zero state.

    ``sos`` is a float64 ``(n_sections, 6)`` array of second-order sections ``[b0, b1, b2, 1, a1,
    a2]`` (scipy's layout), applied in direct form II transposed in float32, all channels of a
    sample at a time (vectorised over channels).
    """
    n, m = x.shape
    ns = sos.shape[0]
    z1 = np.zeros((ns, m), np.float32)
    z2 = np.zeros((ns, m), np.float32)
    out = x.copy()
    for t in range(n):
        for s in range(ns):
            b0 = np.float32(sos[s, 0])
            b1 = np.float32(sos[s, 1])
            b2 = np.float32(sos[s, 2])
            a1 = np.float32(sos[s, 4])
            a2 = np.float32(sos[s, 5])
            for c in range(m):
                xi = out[t, c]
                y = b0 * xi + z1[s, c]
                z1[s, c] = b1 * xi - a1 * y + z2[s, c]
                z2[s, c] = b2 * xi - a2 * y
                out[t, c] = y
    return out
