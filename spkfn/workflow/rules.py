"""Helpers the Snakefile calls: validated config, sessions, result paths, per-stage notebook parameters.

All logic that decides *what* a stage receives lives here (tested like any other code); the
Snakefile only wires files together, and notebooks only call spkfn and draw.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from .config import ConfigError, load_schema, load_sessions, validate_config

__all__ = [
    "STAGES",
    "prepare",
    "stage_dir",
    "stage_params",
    "notebook_parameters",
    "params_yaml",
    "read_input",
    "has_ground_truth",
]

#: The stages, in order; each has a notebook ``notebooks/<stage>.ipynb``.
STAGES = ("generate", "read", "preprocess", "sort", "compare", "summary")


def prepare(config: dict, *, workdir=".", schema=None) -> tuple[dict, pd.DataFrame]:
    """Validate the config (defaults filled) and load the sessions sheet it names.

    ``schema``: path of the JSON schema (YAML); default ``config/config.schema.yaml`` of the
    source tree.
    """
    cfg = validate_config(config, schema=load_schema(schema) if schema is not None else None)
    sessions = load_sessions(Path(workdir) / cfg["sessions"], base_dir=workdir)
    return cfg, sessions


def stage_dir(cfg: dict, session: str, stage: str) -> str:
    """``results/{session}/{stage}`` (relative to the working directory)."""
    return f"{cfg['results_dir']}/{session}/{stage}"


def has_ground_truth(sessions: pd.DataFrame, session: str) -> bool:
    return sessions.loc[session, "format"] == "generated"


def generator_params(cfg: dict, sessions: pd.DataFrame, session: str) -> dict:
    """Generator parameters of a generated session: config ``generate`` defaults + row options."""
    params = dict(cfg["generate"])
    opts = dict(sessions.loc[session, "options"])
    unknown = sorted(set(opts) - set(params))
    if unknown:
        raise ConfigError(
            f"session {session!r}: unknown generator option(s) {unknown} in the sessions sheet; valid: {sorted(params)}."
        )
    params.update(opts)
    # The row options bypass the schema: re-validate the merged set through it.
    validate_config({"generate": params})
    return params


#: Built-in probes a generated session may name (``generate.probe`` in config.yaml).
PROBES = ("linear", "tetrode", "neuropixels1", "multi_shank")


def generator_kwargs(generator: dict) -> dict:
    """Keyword arguments for :func:`spkfn.generate.ground_truth_recording` from the config's
    ``generate`` section: the probe name becomes a probe with ``num_channels`` contacts."""
    from ..io import probes

    kw = dict(generator)
    kw.pop("seed", None)
    name = kw.pop("probe", "linear")
    n = int(kw.get("num_channels", 32))
    if name == "linear":
        kw["probe"] = probes.linear_probe(num_channels=n)
    elif name == "tetrode":
        if n != 4:
            raise ConfigError(f"generate.probe 'tetrode' has 4 contacts; set generate.num_channels to 4 (got {n}).")
        kw["probe"] = probes.tetrode_probe()
    elif name == "neuropixels1":
        kw["probe"] = probes.neuropixels1_probe(num_channels=n)
    elif name == "multi_shank":
        if n % 4:
            raise ConfigError(f"generate.probe 'multi_shank' uses 4 shanks; generate.num_channels must be a multiple of 4 (got {n}).")
        kw["probe"] = probes.multi_shank_probe(num_shanks=4, num_channels_per_shank=n // 4)
    else:
        raise ConfigError(f"generate.probe must be one of {list(PROBES)}; got {name!r}.")
    return kw


def read_input(cfg: dict, sessions: pd.DataFrame, session: str) -> dict:
    """Input files of the read stage: the generated recording, or the session's raw data."""
    row = sessions.loc[session]
    if row["format"] == "generated":
        return {"source": f"{stage_dir(cfg, session, 'generate')}/recording.zarr"}
    out = {"source": row["path"]}
    if row["probe"]:
        out["probe"] = row["probe"]
    return out


def sort_dir(cfg: dict, session: str, sorter: str) -> str:
    """``results/{session}/sort/{sorter}``."""
    return f"{stage_dir(cfg, session, 'sort')}/{sorter}"


def sort_input(cfg: dict, session: str) -> str:
    """The recording the sorters receive (``sort.recording``: preprocessed or raw)."""
    if cfg["sort"]["recording"] == "raw":
        return f"{stage_dir(cfg, session, 'read')}/recording.json"
    return preprocessed_path(cfg, session)


def stage_params(cfg: dict, sessions: pd.DataFrame, session: str, stage: str, *, n_jobs: int = 1,
                 sorter: str | None = None) -> dict:
    """Parameters injected into ``notebooks/<stage>.ipynb`` for one session (plain YAML types)."""
    out = stage_dir(cfg, session, stage)
    base = {"session": session, "output_dir": out, "n_jobs": int(n_jobs)}
    row = sessions.loc[session]
    if stage == "generate":
        gp = generator_params(cfg, sessions, session)
        seed = gp.pop("seed")
        return {**base, "generator": gp, "seed": int(seed)}
    if stage == "read":
        inp = read_input(cfg, sessions, session)
        fmt = "zarr" if row["format"] == "generated" else row["format"]
        options = {} if row["format"] == "generated" else dict(row["options"])
        return {**base, "source_format": fmt, "source_path": inp["source"], "probe_path": inp.get("probe", ""),
                "options": options, "snippet_s": cfg["read"]["snippet_s"]}
    if stage == "preprocess":
        return {**base, "recording_path": f"{stage_dir(cfg, session, 'read')}/recording.json",
                "steps": cfg["preprocess"]["steps"], "dtype": cfg["preprocess"]["dtype"],
                "format": cfg["preprocess"]["format"]}
    if stage == "sort":
        if sorter is None:
            raise ValueError("the sort stage needs a sorter name.")
        return {**base, "output_dir": sort_dir(cfg, session, sorter), "recording_path": sort_input(cfg, session),
                "sorter": sorter, "params": dict(cfg["sort"]["params"].get(sorter, {})), "seed": int(cfg["sort"]["seed"])}
    if stage == "compare":
        gt = has_ground_truth(sessions, session)
        c = cfg["compare"]
        return {**base,
                "sorting_paths": {name: f"{sort_dir(cfg, session, name)}/sorting.zarr" for name in cfg["sort"]["sorters"]},
                "gt_sorting_path": f"{stage_dir(cfg, session, 'generate')}/gt_sorting.zarr" if gt else "",
                "gt_templates_path": f"{stage_dir(cfg, session, 'generate')}/templates.zarr" if gt else "",
                "recording_path": preprocessed_path(cfg, session),
                **{k: c[k] for k in ("delta_ms", "match_score", "chance_score", "well_detected_score",
                                     "redundant_score", "overmerged_score", "match_mode", "min_agreement_sorters")}}
    if stage == "summary":
        gt = has_ground_truth(sessions, session)
        return {**base,
                "raw_path": f"{stage_dir(cfg, session, 'read')}/recording.json",
                "preprocessed_path": preprocessed_path(cfg, session),
                "gt_sorting_path": f"{stage_dir(cfg, session, 'generate')}/gt_sorting.zarr" if gt else "",
                "gt_templates_path": f"{stage_dir(cfg, session, 'generate')}/templates.zarr" if gt else "",
                "snippet_s": cfg["summary"]["snippet_s"]}
    raise ValueError(f"unknown stage {stage!r}; stages are {STAGES}.")


def preprocessed_path(cfg: dict, session: str) -> str:
    name = "recording.zarr" if cfg["preprocess"]["format"] == "zarr" else "recording.bin"
    return f"{stage_dir(cfg, session, 'preprocess')}/{name}"


def params_yaml(params: dict) -> str:
    """One-line YAML (flow style) for ``papermill -y``; types survive (``007`` stays a string)."""
    return yaml.safe_dump(json.loads(json.dumps(params)), default_flow_style=True, width=10**9).strip()


def notebook_parameters(cfg: dict, sessions: pd.DataFrame, stage: str):
    """A Snakemake ``params`` function: ``(wildcards, threads) -> YAML`` of the stage's parameters."""

    def _params(wildcards, threads=1):
        sorter = getattr(wildcards, "sorter", None)
        return params_yaml(stage_params(cfg, sessions, wildcards.session, stage, n_jobs=threads, sorter=sorter))

    _params.__name__ = f"{stage}_parameters"
    return _params
