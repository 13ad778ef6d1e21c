# %% [markdown]
# # Preprocess
#
# Applies the configured pipeline (`config.yaml: preprocess.steps`) with
# `spkfn.preprocessing.apply_pipeline`, lazily and chunk by chunk, then writes the result once
# (streamed, atomic). Later stages read this file; nothing is recomputed.

# %% tags=["parameters"]
session = "demo"
output_dir = ""          # empty: a new temporary folder
recording_path = ""      # empty: the demo session
steps = [{"bandpass_filter": {"freq_min_hz": 300.0, "freq_max_hz": 6000.0}},
         {"common_reference": {"reference": "global", "operator": "median"}}]
dtype = "float32"
format = "zarr"
n_jobs = 1

# %%
import matplotlib.pyplot as plt

import spkfn.io
import spkfn.preprocessing
import spkfn.plotting as sp
from spkfn.io.read import open_recording
from spkfn.preprocessing import apply_pipeline
from spkfn.workflow import demo, provenance

if not recording_path:
    recording_path = demo.demo_session(upto="read")["recording_ref"]
out = demo.output_dir(output_dir)
record = provenance.start_stage("preprocess", params={"steps": steps, "dtype": dtype, "format": format},
                                inputs=[recording_path], path=out / "provenance.json")
raw = open_recording(recording_path)
preprocessed = apply_pipeline(raw, steps)
steps_used = preprocessed.attrs["pipeline"]  # every parameter, defaults filled in
steps_used

# %%
target = out / ("recording.zarr" if format == "zarr" else "recording.bin")
if format == "zarr":
    spkfn.io.write_zarr(spkfn.preprocessing.astype(preprocessed, dtype=dtype), target, n_jobs=n_jobs)
else:
    spkfn.io.write_binary(preprocessed, target, dtype=dtype, n_jobs=n_jobs)
written = spkfn.io.read_zarr(target) if format == "zarr" else spkfn.io.read_binary_folder(target)

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 6), layout="constrained", sharey=False)
sp.plot_traces(raw, duration_s=0.05, ax=axes[0])
axes[0].set_title("raw")
sp.plot_traces(written, duration_s=0.05, ax=axes[1])
axes[1].set_title("preprocessed (as written)");

# %%
prov = record.finish(outputs=[target], params_used={"steps": steps_used, "dtype": dtype, "format": format})
{k: prov[k] for k in ("wall_time_s", "peak_memory_mb")}
