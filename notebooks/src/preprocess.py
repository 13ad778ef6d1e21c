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
quicklook_peaks = 50_000  # peaks localised for the drift quick-look
n_jobs = 1

# %%
import matplotlib.pyplot as plt
import numpy as np

import spkfn.detection
import spkfn.io
import spkfn.plotting as sp
import spkfn.plotting.detection as pdet
import spkfn.preprocessing
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

# %% [markdown]
# ## Drift quick-look
#
# Peaks detected on the written recording (threshold 5 × noise, locally exclusive) and localised
# by monopolar triangulation: a drift map (peak depth over time), where the peaks sit on the probe,
# and the noise of each channel.

# %%
noise = spkfn.detection.noise_levels(written, seed=0)
peaks = spkfn.detection.detect_peaks(written, noise_levels=noise, n_jobs=n_jobs)
shown = spkfn.detection.select_peaks(peaks, n_peaks=min(quicklook_peaks, peaks.size), seed=0) if peaks.size else peaks
locations = spkfn.detection.localize_peaks(written, shown, method="monopolar_triangulation", n_jobs=n_jobs)
fig, axes = plt.subplots(1, 3, figsize=(15, 6), layout="constrained", width_ratios=[4, 1, 2])
pdet.plot_drift_map(shown, written, peak_locations=locations, ax=axes[0])
pdet.plot_peak_locations(written, locations, peaks=shown, ax=axes[1])
pdet.plot_noise_levels(written, noise, ax=axes[2])
print(f"{peaks.size} peaks ({peaks.size / spkfn.io.duration_s(written):.0f}/s); median noise {float(np.median(noise)):.2f} µV")

# %%
prov = record.finish(outputs=[target], params_used={"steps": steps_used, "dtype": dtype, "format": format},
                     extra={"num_peaks": int(peaks.size), "median_noise_uV": float(np.median(noise))})
{k: prov[k] for k in ("wall_time_s", "peak_memory_mb")}
