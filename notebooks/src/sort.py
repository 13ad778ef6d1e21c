# %% [markdown]
# # Sort
#
# Runs one sorter (`spkfn.sorting.run_sorter`) on the session's recording, writes the sorting,
# and shows what the sorter found: units, their templates, and amplitudes over time.
#
# Outputs (in `output_dir`): `sorting.zarr`, `templates.zarr`, `units.csv`, `provenance.json`,
# and the sorter's own folder `sorter_output/` (inputs, logs).

# %% tags=["parameters"]
session = "demo"
output_dir = ""        # empty: a new temporary folder
recording_path = ""    # empty: the demo session's preprocessed recording
sorter = "spkfn"
params = {}
seed = 0
n_jobs = 1
num_units_shown = 8

# %%
import json

import matplotlib.pyplot as plt
import numpy as np

import spkfn.io
import spkfn.plotting as sp
import spkfn.postprocessing as pp
import spkfn.sorting
from spkfn.io.read import open_recording
from spkfn.workflow import demo, provenance

if not recording_path:
    recording_path = demo.demo_session(upto="preprocess")["preprocessed"]
out = demo.output_dir(output_dir)
record = provenance.start_stage("sort", params={"sorter": sorter, "params": params}, seed=seed,
                                inputs=[recording_path], path=out / "provenance.json")
recording = open_recording(recording_path)
spkfn.sorting.describe_params(sorter)

# %%
sorting = spkfn.sorting.run_sorter(recording, sorter=sorter, params=params, folder=out / "sorter_output",
                                   seed=seed, n_jobs=n_jobs)
params_used = json.loads(sorting.attrs["sorter_params"])
print(f"{sorter}: {sorting.sizes['unit']} units, {sorting.sizes['spike']} spikes in {sorting.attrs['wall_time_s']:.1f} s")

# %% [markdown]
# ## Units

# %%
templates = pp.estimate_templates(recording, sorting, max_spikes_per_unit=300, seed=seed, n_jobs=n_jobs)
channel, _ = pp.best_channels(templates)
units = spkfn.io.unit_table(sorting)
units["best_channel"] = recording.channel.values[channel]
units["amplitude_uV"] = -templates.values.min(axis=(1, 2))
units.sort_values("amplitude_uV", ascending=False)

# %%
amplitudes = pp.spike_amplitudes(recording, sorting, templates, max_spikes_per_unit=2000, seed=seed, n_jobs=n_jobs)
shown = units.sort_values("amplitude_uV", ascending=False).index[:num_units_shown]
fig, axes = plt.subplots(1, 3, figsize=(15, 5), layout="constrained", width_ratios=[1.2, 2, 1.5])
sp.plot_raster(sorting, ax=axes[0], duration_s=min(10.0, spkfn.io.duration_s(recording)))
axes[0].set_title("spikes (first 10 s)")
t_s = sorting.sample_index.values / recording.attrs["sampling_frequency"]
pos = {u: k for k, u in enumerate(sorting.unit.values.tolist())}
for k, u in enumerate(shown):
    sel = (sorting.unit_index.values == pos[u]) & ~np.isnan(amplitudes)
    axes[1].scatter(t_s[sel], amplitudes[sel], s=2, color=f"C{k % 10}", label=str(u))
axes[1].set_xlabel("time (s)"); axes[1].set_ylabel("amplitude (µV)"); axes[1].set_title("amplitudes over time")
axes[1].legend(markerscale=4, fontsize=7, ncol=2)
sp.plot_templates(templates.sel(unit=list(shown)), ax=axes[2]);

# %% [markdown]
# ## Write (atomic) and record provenance

# %%
spkfn.io.write_zarr(sorting, out / "sorting.zarr")
spkfn.io.write_zarr(templates, out / "templates.zarr")
units.to_csv(out / "units.csv")
prov = record.finish(outputs=[out / "sorting.zarr", out / "templates.zarr", out / "units.csv"],
                     params_used={"sorter": sorter, "params": params_used},
                     extra={"sorter_version": sorting.attrs.get("sorter_version"), "num_units": int(sorting.sizes["unit"]),
                            "num_spikes": int(sorting.sizes["spike"])})
{k: prov[k] for k in ("wall_time_s", "peak_memory_mb")}
