# %% [markdown]
# # Read a recording
#
# Opens the session's data lazily (nothing is loaded whole), attaches the probe, checks the layout,
# and writes a small *recording reference* (`recording.json`) that later stages re-open. Shows the
# metadata, the probe map and a trace snippet.

# %% tags=["parameters"]
session = "demo"
output_dir = ""        # empty: a new temporary folder
source_format = ""     # empty: the demo session's generated recording
source_path = ""
probe_path = ""
options = {}
snippet_s = 0.1
n_jobs = 1

# %%
import matplotlib.pyplot as plt
import pandas as pd

import spkfn.io
import spkfn.plotting as sp
from spkfn.io.read import open_source, write_recording_ref
from spkfn.workflow import demo, provenance

if not source_format:
    source_format, source_path = "zarr", demo.demo_session(upto="read")["recording"]
out = demo.output_dir(output_dir)
record = provenance.start_stage("read", params={"source_format": source_format, "source_path": source_path,
                                                "probe_path": probe_path, "options": options},
                                inputs=[source_path], path=out / "provenance.json")
recording = open_source(source_format, source_path, probe=probe_path or None, options=options)
recording

# %%
pd.Series({
    "channels": recording.sizes["channel"],
    "samples": recording.sizes["time"],
    "duration (s)": spkfn.io.duration_s(recording),
    "sampling frequency (Hz)": recording.attrs["sampling_frequency"],
    "dtype": str(recording.dtype),
    "groups": int(recording.group.to_series().nunique()),
    "geometry": spkfn.io.has_geometry(recording),
    "format": recording.attrs.get("source", {}).get("format"),
}, name=session).to_frame()

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 6), layout="constrained", width_ratios=[1, 3])
if spkfn.io.has_geometry(recording):
    sp.plot_probe(recording, ax=axes[0], with_channel_ids=recording.sizes["channel"] <= 64)
else:
    axes[0].text(0.5, 0.5, "no geometry:\nadd a probe file to the session", ha="center", va="center")
sp.plot_traces(recording, duration_s=snippet_s, ax=axes[1])
axes[1].set_title(f"raw traces, first {snippet_s * 1000:.0f} ms");

# %%
write_recording_ref(recording, out / "recording.json", format=source_format, source_path=source_path,
                    probe_path=probe_path or None, options=options)
prov = record.finish(outputs=[out / "recording.json"])
{k: prov[k] for k in ("wall_time_s", "peak_memory_mb")}
