# %% [markdown]
# # Session summary
#
# What the pipeline produced for one session: the recording before and after preprocessing and,
# for generated sessions, the ground truth.

# %% tags=["parameters"]
session = "demo"
output_dir = ""            # empty: a new temporary folder
raw_path = ""              # empty: the demo session
preprocessed_path = ""
gt_sorting_path = ""
gt_templates_path = ""
snippet_s = 0.05
n_jobs = 1

# %%
import matplotlib.pyplot as plt
import pandas as pd

import spkfn.io
import spkfn.plotting as sp
from spkfn.io.read import open_recording
from spkfn.workflow import demo, provenance

if not raw_path:
    d = demo.demo_session(upto="preprocess")
    raw_path, preprocessed_path = d["recording_ref"], d["preprocessed"]
    gt_sorting_path, gt_templates_path = d["gt_sorting"], d["gt_templates"]
out = demo.output_dir(output_dir)
inputs = [p for p in (raw_path, preprocessed_path, gt_sorting_path, gt_templates_path) if p]
record = provenance.start_stage("summary", params={"snippet_s": snippet_s}, inputs=inputs, path=out / "provenance.json")
raw = open_recording(raw_path)
pre = open_recording(preprocessed_path)
gt = spkfn.io.read_zarr(gt_sorting_path) if gt_sorting_path else None
templates = spkfn.io.read_zarr(gt_templates_path) if gt_templates_path else None

# %%
rows = {"channels": raw.sizes["channel"], "duration (s)": round(spkfn.io.duration_s(raw), 3),
        "sampling frequency (Hz)": raw.attrs["sampling_frequency"],
        "preprocessing": " → ".join(s["step"] for s in pre.attrs.get("preprocessing", []))}
if gt is not None:
    rows.update({"ground-truth units": gt.sizes["unit"], "ground-truth spikes": gt.sizes["spike"]})
pd.Series(rows, name=session).to_frame()

# %%
ncols = 4 if gt is not None else 2
fig, axes = plt.subplots(1, ncols, figsize=(4.5 * ncols, 6), layout="constrained")
sp.plot_traces(raw, duration_s=snippet_s, ax=axes[0]); axes[0].set_title("raw")
sp.plot_traces(pre, duration_s=snippet_s, ax=axes[1]); axes[1].set_title("preprocessed")
if gt is not None:
    sp.plot_templates(templates, ax=axes[2])
    sp.plot_raster(gt, ax=axes[3]); axes[3].set_title("ground-truth spikes")
fig.savefig(out / "summary.png", dpi=100)

# %%
prov = record.finish(outputs=[out / "summary.png"])
{k: prov[k] for k in ("wall_time_s", "peak_memory_mb")}
