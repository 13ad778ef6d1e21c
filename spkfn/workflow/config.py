"""Workflow configuration: validation against ``config/config.schema.yaml`` and the sessions sheet.

Errors name the key (``preprocess.dtype``), what is wrong and the valid values, so a typo in
``config.yaml`` fails at ``snakemake -n`` with a message the user can act on.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from pathlib import Path

import pandas as pd
import yaml

__all__ = [
    "ConfigError",
    "load_schema",
    "validate_config",
    "load_config",
    "load_sessions",
    "SESSION_FORMATS",
]

#: Where the default schema lives, relative to the repository root.
DEFAULT_SCHEMA = Path(__file__).resolve().parents[2] / "config" / "config.schema.yaml"

def _session_formats() -> tuple:
    from ..io.neo_io import neo_formats

    return ("generated", "binary", "spkfn_binary", "zarr", "nwb", "neo", *neo_formats().index)


#: Formats a sessions-sheet row may name (see docs/workflow.md and docs/io.md).
SESSION_FORMATS = _session_formats()

_SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ConfigError(ValueError):
    """A configuration or sessions-sheet problem, with the key and the fix in the message."""


def load_schema(path=None) -> dict:
    """The config schema, with each registered sorter's parameter schema embedded under
    ``sort.params.<sorter>`` (from the sorter registry, the one source of sorter parameters)."""
    path = Path(path) if path is not None else DEFAULT_SCHEMA
    if not path.exists():
        raise ConfigError(f"config schema {path} not found; is the repository complete?")
    with open(path) as f:
        schema = yaml.safe_load(f)
    sort = schema.get("properties", {}).get("sort")
    if sort is not None:
        from ..sorting import SORTERS, params_json_schema

        names = sorted(SORTERS)
        sort["properties"]["params"]["properties"] = {name: params_json_schema(name) for name in names}
        sort["properties"]["sorters"]["items"] = {"type": "string", "enum": names}
    return schema


def _key(path) -> str:
    parts = []
    for p in path:
        parts.append(f"[{p}]" if isinstance(p, int) else ("." if parts else "") + str(p))
    return "".join(parts) or "<top level>"


def _subschema(schema: dict, path) -> dict:
    node = schema
    for p in path:
        if isinstance(p, int):
            node = node.get("items", {})
        else:
            node = node.get("properties", {}).get(p, {})
    return node


def _message(err, schema: dict) -> str:
    key = _key(err.absolute_path)
    v = err.validator
    if v == "additionalProperties":
        allowed = sorted(_subschema(schema, err.absolute_path).get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed)) if isinstance(err.instance, dict) else []
        msgs = []
        for name in extra:
            full = f"{key}.{name}" if err.absolute_path else name
            close = difflib.get_close_matches(name, allowed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            msgs.append(f"unknown config key {full!r}.{hint} Valid keys here: {allowed}.")
        return " ".join(msgs) or err.message
    if v == "enum":
        return f"config key {key!r} is {err.instance!r}; it must be one of {err.validator_value}."
    if v == "type":
        return f"config key {key!r} must be of type {err.validator_value}; got {err.instance!r}."
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[v]
        return f"config key {key!r} must be {op} {err.validator_value}; got {err.instance!r}."
    if v == "required":
        return f"config section {key!r}: {err.message}."
    return f"config key {key!r}: {err.message}."


def _fill_defaults(schema: dict, instance):
    if not isinstance(instance, dict) or schema.get("type") != "object":
        return instance
    for name, sub in schema.get("properties", {}).items():
        if name not in instance and "default" in sub:
            instance[name] = copy.deepcopy(sub["default"])
        if name in instance:
            instance[name] = _fill_defaults(sub, instance[name])
    return instance


def validate_config(config: dict | None, *, schema: dict | None = None) -> dict:
    """Validate ``config`` and return a new dict with every default filled in.

    Raises
    ------
    ConfigError
        Naming every offending key, what is wrong and the valid values.

    Examples
    --------
    >>> cfg = validate_config({"preprocess": {"dtype": "float32"}})
    >>> cfg["preprocess"]["format"], cfg["generate"]["num_units"]
    ('zarr', 20)
    >>> try:
    ...     validate_config({"preprocess": {"dtyp": "float32"}})
    ... except ConfigError as e:
    ...     print(e)
    unknown config key 'preprocess.dtyp'. Did you mean 'dtype'? Valid keys here: ['dtype', 'format', 'steps'].
    """
    import jsonschema

    schema = schema or load_schema()
    config = copy.deepcopy(config or {})
    if not isinstance(config, dict):
        raise ConfigError(f"the configuration must be a mapping of keys to values; got {type(config).__name__}.")
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ConfigError("\n".join(_message(e, schema) for e in errors))
    config = _fill_defaults(schema, config)
    # Defaults must validate too (catches a broken schema early).
    errors = list(validator.iter_errors(config))
    if errors:
        raise ConfigError("\n".join(_message(e, schema) for e in errors))
    return config


def load_config(path, *, schema: dict | None = None) -> dict:
    """Read a YAML config file and validate it (see :func:`validate_config`)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist.")
    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    return validate_config(data, schema=schema)


def load_sessions(path, *, base_dir=".") -> pd.DataFrame:
    """Read and validate the sessions sheet (TSV).

    Columns: ``session`` (id: letters, digits, ``_.-``), ``format`` (one of
    :data:`SESSION_FORMATS`), ``path`` (file or folder; empty for generated sessions), ``probe``
    (optional probe file), ``options`` (optional JSON object of reader or generator options).
    Paths are resolved against ``base_dir``; a missing file is an error naming the session and
    the path.

    Returns a DataFrame indexed by session id, with ``options`` parsed to dicts.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"sessions sheet {path} does not exist; set 'sessions' in config.yaml to its path.")
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment="#")
    except Exception as e:  # pandas raises several parser errors
        raise ConfigError(f"{path} is not a readable tab-separated sheet: {e}") from None
    df.columns = [c.strip() for c in df.columns]
    required = ["session", "format"]
    known = ["session", "format", "path", "probe", "options"]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {missing}; columns are {known} (tab-separated).")
    unknown = [c for c in df.columns if c not in known]
    if unknown:
        raise ConfigError(f"{path}: unknown column(s) {unknown}; valid columns are {known}.")
    for c in known:
        if c not in df.columns:
            df[c] = ""
    df = df.map(lambda v: v.strip() if isinstance(v, str) else v)
    if df.empty:
        raise ConfigError(f"{path} has no sessions; add at least one row.")
    dup = df["session"][df["session"].duplicated()].tolist()
    if dup:
        raise ConfigError(f"{path}: duplicated session ids {dup}; each row needs a unique 'session'.")
    base_dir = Path(base_dir)
    options = []
    for _, row in df.iterrows():
        sid = row["session"]
        if not _SESSION_ID.match(sid):
            raise ConfigError(f"{path}: session id {sid!r} must start with a letter or digit and use only letters, digits, '_', '.', '-'.")
        fmt = row["format"]
        if fmt not in SESSION_FORMATS:
            close = difflib.get_close_matches(fmt, SESSION_FORMATS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{path}: session {sid!r} has unknown format {fmt!r}.{hint} Valid formats: {list(SESSION_FORMATS)}.")
        try:
            opts = json.loads(row["options"]) if row["options"] else {}
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: session {sid!r}: 'options' must be a JSON object like {{\"num_channels\": 32}}; {e}") from None
        if not isinstance(opts, dict):
            raise ConfigError(f"{path}: session {sid!r}: 'options' must be a JSON object; got {row['options']!r}.")
        options.append(opts)
        if fmt != "generated":
            if not row["path"]:
                raise ConfigError(f"{path}: session {sid!r} ({fmt}) needs a 'path' to its data.")
            p = base_dir / row["path"]
            if not p.exists():
                raise ConfigError(f"{path}: session {sid!r}: data path {str(p)!r} does not exist; fix the 'path' column (relative paths are from {str(base_dir.resolve())!r}).")
        if row["probe"]:
            p = base_dir / row["probe"]
            if not p.exists():
                raise ConfigError(f"{path}: session {sid!r}: probe file {str(p)!r} does not exist; fix the 'probe' column or leave it empty.")
    df["options"] = options
    return df.set_index("session", drop=False)
