# %% [markdown]
# # Generate a ground-truth recording
#
# A seeded synthetic recording with known spikes (`spkfn.generate.ground_truth_recording`):
# realistic extracellular waveforms on a probe, Poisson trains with a refractory period, Gaussian
# noise, optional drift. Its ground truth lets every later stage be checked against the truth.
#
# Outputs (in `output_dir`): `recording.zarr`, `gt_sorting.zarr`, `templates.zarr`, `units.csv`,
# `provenance.json`.

# %% tags=["parameters"]
session = "demo"
output_dir = ""  # empty: a new temporary folder
generator = {"duration_s": 6.0, "num_channels": 16, "num_units": 8, "probe": "linear"}
seed = 0
n_jobs = 1

# %%
import json

import matplotlib.pyplot as plt

import spkfn.generate
import spkfn.io
import spkfn.plotting as sp
from spkfn.workflow import demo, provenance
from spkfn.workflow.rules import generator_kwargs

out = demo.output_dir(output_dir)
record = provenance.start_stage("generate", params={"generator": generator, "seed": seed}, seed=seed,
                                path=out / "provenance.json")
recording, gt_sorting, templates = spkfn.generate.ground_truth_recording(
    **generator_kwargs(generator), seed=seed)
recording

# %% [markdown]
# ## Ground-truth units

# %%
units = spkfn.io.unit_table(gt_sorting)
units

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 5), layout="constrained", width_ratios=[1, 2, 2])
sp.plot_probe(recording, ax=axes[0])
sp.plot_templates(templates, ax=axes[1])
sp.plot_raster(gt_sorting, duration_s=min(5.0, spkfn.io.duration_s(recording)), ax=axes[2])
axes[2].set_title("ground-truth spikes");

# %%
ax = sp.plot_traces(recording, duration_s=0.1)
ax.set_title("generated traces (first 100 ms)");

# %% [markdown]
# ## Write (streamed, atomic) and record provenance

# %%
spkfn.io.write_zarr(gt_sorting, out / "gt_sorting.zarr")
spkfn.io.write_zarr(templates, out / "templates.zarr")
units.to_csv(out / "units.csv")
spkfn.io.write_zarr(recording, out / "recording.zarr", n_jobs=n_jobs)
prov = record.finish(outputs=[out / "recording.zarr", out / "gt_sorting.zarr", out / "templates.zarr", out / "units.csv"],
                     params_used={"generator": json.loads(gt_sorting.attrs["generator_params"]), "seed": seed})
{k: prov[k] for k in ("wall_time_s", "peak_memory_mb")}
