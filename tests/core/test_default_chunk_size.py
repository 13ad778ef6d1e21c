"""The default chunk keeps float32 arrays, filter margins included, under glibc's 32 MiB mmap limit."""

from spkfn.core.chunks import DEFAULT_CHUNK_BYTES, default_chunk_size
from spkfn.preprocessing import design_filter, filter_margin_samples


def test_default_chunk_with_filter_margins_stays_below_32_mib():
    margin = filter_margin_samples(design_filter(sampling_frequency=30000.0, freq_min_hz=300.0, freq_max_hz=6000.0))
    for n_channels in (32, 64, 128, 384, 768):
        n = default_chunk_size(n_channels, sampling_frequency=30000.0)
        assert (n + 2 * margin) * n_channels * 4 < 32 * 2**20, n_channels
        assert n >= 3000  # at least 0.1 s: margins stay a small overhead
    assert DEFAULT_CHUNK_BYTES <= 24 * 2**20
