"""Reading and writing recordings, sortings and templates; probes; the data model's constructors.

See docs/data_model.md for the layout of each object.
"""

from .binary import read_binary, read_binary_folder, write_binary
from .neo_io import (
    NeoReadError,
    detect_format,
    list_streams,
    neo_formats,
    read_blackrock,
    read_intan,
    read_neo,
    read_openephys,
    read_spikeglx,
)
from .nwb import list_electrical_series, read_nwb
from .phy import read_kilosort, read_phy_params
from .probes import (
    get_probe,
    linear_probe,
    multi_shank_probe,
    neuropixels1_probe,
    read_probe,
    set_probe,
    tetrode_probe,
)
from .recording import (
    channel_locations,
    check_recording,
    duration_s,
    from_array,
    get_traces,
    has_geometry,
    num_samples,
    scale_to_uV,
    time_coordinate,
)
from .sorting import (
    check_sorting,
    sorting_from_arrays,
    spike_times_s,
    spike_trains,
    spike_unit_ids,
    unit_counts,
    unit_table,
)
from .templates import check_templates, templates_from_array
from .zarr_io import kind_of, read_zarr, write_zarr

__all__ = [
    "from_array", "check_recording", "has_geometry", "channel_locations", "duration_s", "num_samples",
    "get_traces", "scale_to_uV", "time_coordinate",
    "set_probe", "get_probe", "read_probe", "linear_probe", "tetrode_probe", "neuropixels1_probe",
    "multi_shank_probe",
    "sorting_from_arrays", "check_sorting", "spike_trains", "spike_unit_ids", "spike_times_s", "unit_counts", "unit_table",
    "templates_from_array", "check_templates",
    "read_kilosort", "read_phy_params",
    "read_binary", "write_binary", "read_binary_folder", "read_zarr", "write_zarr", "kind_of",
    "read_neo", "list_streams", "detect_format", "neo_formats", "read_spikeglx", "read_openephys",
    "read_intan", "read_blackrock", "NeoReadError", "read_nwb", "list_electrical_series",
]
