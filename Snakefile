# spkfn workflow: generate -> read -> preprocess -> sort (per sorter) -> compare -> summary,
# one papermill notebook per stage.
#
#   snakemake --cores 2            # run everything for every session in config/sessions.tsv
#   snakemake -n                   # list the jobs
#   snakemake results/demo/preprocess/provenance.json --cores 2   # one stage of one session
#
# The executed notebook of each job is declared as a log: Snakemake keeps it when a cell fails,
# with its traceback. Stage logic lives in spkfn (spkfn.workflow.rules decides each stage's
# parameters); notebooks only call spkfn and draw.

import re
import sys
from pathlib import Path

from spkfn.workflow import rules as R


configfile: "config/config.yaml"


CFG, SESSIONS = R.prepare(config, schema=Path(workflow.basedir) / "config" / "config.schema.yaml")
RES = CFG["results_dir"]
NB = Path(workflow.basedir) / "notebooks"
PYTHON = sys.executable
GENERATED = [s for s in SESSIONS.index if R.has_ground_truth(SESSIONS, s)]


SORTERS = CFG["sort"]["sorters"]


wildcard_constraints:
    session="|".join(re.escape(s) for s in SESSIONS.index),
    sorter="|".join(re.escape(s) for s in SORTERS) or "no-sorter",


def read_inputs(wildcards):
    return R.read_input(CFG, SESSIONS, wildcards.session)


def summary_inputs(wildcards):
    s = wildcards.session
    out = {
        "read": f"{RES}/{s}/read/provenance.json",
        "preprocess": f"{RES}/{s}/preprocess/provenance.json",
    }
    if R.has_ground_truth(SESSIONS, s):
        out["generate"] = f"{RES}/{s}/generate/provenance.json"
    return out


def sort_inputs(wildcards):
    return {"recording": R.sort_input(CFG, wildcards.session)}


def compare_inputs(wildcards):
    s = wildcards.session
    out = {f"sort_{name}": f"{RES}/{s}/sort/{name}/provenance.json" for name in SORTERS}
    if R.has_ground_truth(SESSIONS, s):
        out["generate"] = f"{RES}/{s}/generate/provenance.json"
    return out


rule all:
    input:
        expand(f"{RES}/{{session}}/summary/provenance.json", session=SESSIONS.index),
        expand(f"{RES}/{{session}}/compare/provenance.json", session=SESSIONS.index) if SORTERS else [],
    default_target: True


rule generate:
    message:
        "Generating the ground-truth recording of session {wildcards.session}"
    input:
        notebook=NB / "generate.ipynb",
    output:
        recording=directory(f"{RES}/{{session}}/generate/recording.zarr"),
        sorting=directory(f"{RES}/{{session}}/generate/gt_sorting.zarr"),
        templates=directory(f"{RES}/{{session}}/generate/templates.zarr"),
        units=f"{RES}/{{session}}/generate/units.csv",
        provenance=f"{RES}/{{session}}/generate/provenance.json",
    log:
        notebook=f"{RES}/{{session}}/generate/generate.ipynb",
        papermill=f"{RES}/{{session}}/generate/papermill.log",
    params:
        parameters=R.notebook_parameters(CFG, SESSIONS, "generate"),
    threads: 2
    shell:
        "{PYTHON:q} -m papermill {input.notebook:q} {log.notebook:q} -k python3 --cwd . "
        "--no-progress-bar -y {params.parameters:q} > {log.papermill:q} 2>&1"


rule read:
    message:
        "Reading session {wildcards.session}"
    input:
        unpack(read_inputs),
        notebook=NB / "read.ipynb",
    output:
        reference=f"{RES}/{{session}}/read/recording.json",
        provenance=f"{RES}/{{session}}/read/provenance.json",
    log:
        notebook=f"{RES}/{{session}}/read/read.ipynb",
        papermill=f"{RES}/{{session}}/read/papermill.log",
    params:
        parameters=R.notebook_parameters(CFG, SESSIONS, "read"),
    shell:
        "{PYTHON:q} -m papermill {input.notebook:q} {log.notebook:q} -k python3 --cwd . "
        "--no-progress-bar -y {params.parameters:q} > {log.papermill:q} 2>&1"


rule preprocess:
    message:
        "Preprocessing session {wildcards.session}"
    input:
        reference=f"{RES}/{{session}}/read/recording.json",
        notebook=NB / "preprocess.ipynb",
    output:
        recording=directory(f"{RES}/{{session}}/preprocess/recording.zarr")
        if CFG["preprocess"]["format"] == "zarr"
        else f"{RES}/{{session}}/preprocess/recording.bin",
        provenance=f"{RES}/{{session}}/preprocess/provenance.json",
    log:
        notebook=f"{RES}/{{session}}/preprocess/preprocess.ipynb",
        papermill=f"{RES}/{{session}}/preprocess/papermill.log",
    params:
        parameters=R.notebook_parameters(CFG, SESSIONS, "preprocess"),
    threads: 2
    shell:
        "{PYTHON:q} -m papermill {input.notebook:q} {log.notebook:q} -k python3 --cwd . "
        "--no-progress-bar -y {params.parameters:q} > {log.papermill:q} 2>&1"


rule sort:
    message:
        "Sorting session {wildcards.session} with {wildcards.sorter}"
    input:
        unpack(sort_inputs),
        notebook=NB / "sort.ipynb",
    output:
        sorting=directory(f"{RES}/{{session}}/sort/{{sorter}}/sorting.zarr"),
        templates=directory(f"{RES}/{{session}}/sort/{{sorter}}/templates.zarr"),
        units=f"{RES}/{{session}}/sort/{{sorter}}/units.csv",
        provenance=f"{RES}/{{session}}/sort/{{sorter}}/provenance.json",
    log:
        notebook=f"{RES}/{{session}}/sort/{{sorter}}/sort.ipynb",
        papermill=f"{RES}/{{session}}/sort/{{sorter}}/papermill.log",
    params:
        parameters=R.notebook_parameters(CFG, SESSIONS, "sort"),
    threads: 2
    shell:
        "{PYTHON:q} -m papermill {input.notebook:q} {log.notebook:q} -k python3 --cwd . "
        "--no-progress-bar -y {params.parameters:q} > {log.papermill:q} 2>&1"


rule compare:
    message:
        "Comparing the sortings of session {wildcards.session}"
    input:
        unpack(compare_inputs),
        notebook=NB / "compare.ipynb",
    output:
        provenance=f"{RES}/{{session}}/compare/provenance.json",
    log:
        notebook=f"{RES}/{{session}}/compare/compare.ipynb",
        papermill=f"{RES}/{{session}}/compare/papermill.log",
    params:
        parameters=R.notebook_parameters(CFG, SESSIONS, "compare"),
    shell:
        "{PYTHON:q} -m papermill {input.notebook:q} {log.notebook:q} -k python3 --cwd . "
        "--no-progress-bar -y {params.parameters:q} > {log.papermill:q} 2>&1"


rule summary:
    message:
        "Summarising session {wildcards.session}"
    input:
        unpack(summary_inputs),
        notebook=NB / "summary.ipynb",
    output:
        figure=f"{RES}/{{session}}/summary/summary.png",
        provenance=f"{RES}/{{session}}/summary/provenance.json",
    log:
        notebook=f"{RES}/{{session}}/summary/summary.ipynb",
        papermill=f"{RES}/{{session}}/summary/papermill.log",
    params:
        parameters=R.notebook_parameters(CFG, SESSIONS, "summary"),
    shell:
        "{PYTHON:q} -m papermill {input.notebook:q} {log.notebook:q} -k python3 --cwd . "
        "--no-progress-bar -y {params.parameters:q} > {log.papermill:q} 2>&1"
