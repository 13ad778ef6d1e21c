# %% [markdown]
# # Compare
#
# Each sorter against the ground truth (generated sessions) with `spkfn.comparison`, and the
# sorters against each other. Every score is defined in `docs/comparison.md`: accuracy =
# tp / (tp + fn + fp), precision = tp / (tp + fp), recall = tp / (tp + fn), spikes matching within
# `delta_ms`.
#
# Outputs (in `output_dir`): study tables `units.csv`, `cases.csv`, `sorters.csv`,
# `recordings.csv` (with ground truth); `agreement_<a>_<b>.csv` and `consensus_units.csv` (two or
# more sorters); `provenance.json`.

# %% tags=["parameters"]
session = "demo"
output_dir = ""            # empty: a new temporary folder
sorting_paths = {}         # {sorter: path to sorting.zarr}; empty: the native sorter on the demo session
gt_sorting_path = ""
gt_templates_path = ""
recording_path = ""
delta_ms = 0.4
match_score = 0.5
chance_score = 0.1
well_detected_score = 0.8
redundant_score = 0.2
overmerged_score = 0.2
match_mode = "hungarian"
min_agreement_sorters = 2
n_jobs = 1

# %%
import itertools

import matplotlib.pyplot as plt
import pandas as pd

import spkfn.comparison as cmp
import spkfn.detection
import spkfn.io
import spkfn.plotting as sp
from spkfn.io.read import open_recording
from spkfn.workflow import demo, provenance

if not sorting_paths:
    d = demo.demo_session(upto="sort")
    gt_sorting_path, gt_templates_path, recording_path = d["gt_sorting"], d["gt_templates"], d["preprocessed"]
    sorting_paths = {"spkfn": d["sorting"]}
out = demo.output_dir(output_dir)
inputs = [*sorting_paths.values(), *(p for p in (gt_sorting_path, gt_templates_path) if p)]
settings = dict(delta_ms=delta_ms, match_score=match_score, chance_score=chance_score)
gt_settings = dict(settings, well_detected_score=well_detected_score, redundant_score=redundant_score,
                   overmerged_score=overmerged_score, match_mode=match_mode)
record = provenance.start_stage("compare", params={**gt_settings, "min_agreement_sorters": min_agreement_sorters},
                                inputs=inputs, path=out / "provenance.json")
sortings = {name: spkfn.io.read_zarr(path) for name, path in sorting_paths.items()}
pd.Series({name: s.sizes["unit"] for name, s in sortings.items()}, name="units").to_frame()

# %% [markdown]
# ## Against the ground truth

# %%
written = []
if gt_sorting_path:
    gt = spkfn.io.read_zarr(gt_sorting_path)
    cases = [cmp.StudyCase(recording=session, sorter=name, gt_sorting=gt, sorting=s, snr=gt["snr"].to_series())
             for name, s in sortings.items()]
    tables = cmp.run_study(cases, **gt_settings)
    written += list(cmp.save_study_tables(tables, out).values())
    results = {name: cmp.compare_to_ground_truth(gt, s, **gt_settings) for name, s in sortings.items()}
    display(tables.sorters)
else:
    print("this session has no ground truth")

# %%
if gt_sorting_path:
    n = len(results)
    fig, axes = plt.subplots(1, n + 1, figsize=(5.5 * (n + 1), 4.5), layout="constrained")
    for k, (name, res) in enumerate(results.items()):
        sp.plot_performance(res.performance, ax=axes[k])
        axes[k].set_title(f"{name}: {len(res.well_detected_units)} of {gt.sizes['unit']} well detected")
    sp.plot_performance_vs_snr(tables.units, ax=axes[n])
    axes[n].set_title("accuracy vs SNR")

# %%
if gt_sorting_path:
    for name, res in results.items():
        sp.plot_agreement_matrix(res.agreement)
        plt.gca().set_title(f"ground truth vs {name}")

# %% [markdown]
# ## Sorters against each other

# %%
if len(sortings) >= 2:
    for a, b in itertools.combinations(sortings, 2):
        c = cmp.compare_sorters(sortings[a], sortings[b], **settings)
        path = out / f"agreement_{a}_{b}.csv"
        c.agreement.to_pandas().to_csv(path)
        written.append(path)
        sp.plot_agreement_matrix(c.agreement)
        plt.gca().set_title(f"{a} vs {b}")
    multi = cmp.compare_multiple_sorters(sortings, min_agreement_count=min(min_agreement_sorters, len(sortings)), **settings)
    multi.units.to_csv(out / "consensus_units.csv")
    written.append(out / "consensus_units.csv")
    display(multi.units)
else:
    print("one sorter: nothing to compare between sorters")

# %%
prov = record.finish(outputs=written)
{k: prov[k] for k in ("wall_time_s", "peak_memory_mb")}
