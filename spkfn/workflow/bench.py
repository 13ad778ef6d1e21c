"""``snakemake bench``: run the side-by-side benchmarks in ``benchmarks/`` and summarise them.

Each benchmark is a script ``benchmarks/bench_<name>.py`` that prints its table to standard output
and writes its figures with ``--json PATH``. The ``bench`` section of the config names the
scripts to run and their arguments; this module builds the command lines (checked against the
scripts that exist) and writes ``results/bench/summary.md`` from the runs' outputs.

Benchmarks measure wall time: run them on an otherwise idle machine, and read a ratio (spkfn
versus the reference, measured in the same run) rather than an absolute time.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
from pathlib import Path

from ..core.atomic import write_text_atomic
from .config import ConfigError
from .provenance import versions

__all__ = ["available_benchmarks", "bench_command", "write_summary"]


def available_benchmarks(bench_dir) -> list[str]:
    """Names ``<name>`` of the scripts ``bench_<name>.py`` in ``bench_dir``, sorted.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "bench_alpha.py").write_text("")
    >>> _ = (d / "notes.py").write_text("")
    >>> available_benchmarks(d)
    ['alpha']
    """
    return sorted(p.stem[len("bench_"):] for p in Path(bench_dir).glob("bench_*.py"))


def bench_command(name: str, args, *, python: str, bench_dir, json_path) -> str:
    """The shell command running benchmark ``name`` with ``args``, writing its JSON to ``json_path``.

    Raises :class:`~spkfn.workflow.config.ConfigError` when no ``bench_<name>.py`` exists, or when
    ``args`` already passes ``--json`` (the workflow decides where results go).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "bench_alpha.py").write_text("")
    >>> bench_command("alpha", ["--n", "3"], python="python", bench_dir=d, json_path="out.json").split()[-4:]
    ['--n', '3', '--json', 'out.json']
    """
    names = available_benchmarks(bench_dir)
    if name not in names:
        raise ConfigError(f"bench.scripts: no benchmark {name!r} (no {Path(bench_dir) / f'bench_{name}.py'}); "
                          f"available: {names}.")
    args = [str(a) for a in args]
    if any(a == "--json" or a.startswith("--json=") for a in args):
        raise ConfigError(f"bench.scripts.{name}: remove '--json' from the arguments; the workflow writes "
                          f"results/bench/{name}.json itself.")
    script = Path(bench_dir) / f"bench_{name}.py"
    return shlex.join([python, str(script), *args, "--json", str(json_path)])


def _machine() -> dict:
    try:
        load = os.getloadavg()
    except OSError:  # pragma: no cover - not on every platform
        load = None
    return {"host": platform.node(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "load_average": load, "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}


def write_summary(runs: dict, path, *, config: dict | None = None) -> Path:
    """Write a Markdown summary of benchmark runs to ``path`` (atomically).

    ``runs`` maps a benchmark name to ``{"text": stdout file, "json": JSON file}``; the summary
    holds the machine and versions, each benchmark's printed table, and its command arguments.

    Examples
    --------
    >>> import tempfile, pathlib, json
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.txt").write_text("spkfn 1.0 s | reference 3.0 s")
    >>> _ = (d / "a.json").write_text(json.dumps({"ratio": 3.0}))
    >>> out = write_summary({"alpha": {"text": d / "a.txt", "json": d / "a.json"}}, d / "summary.md")
    >>> "## alpha" in out.read_text() and "reference 3.0 s" in out.read_text()
    True
    """
    m = _machine()
    v = versions(extra=("spikeinterface",))
    lines = ["# spkfn benchmarks", "",
             f"Run {m['date']} on {m['host']} ({m['platform']}, {m['cpus']} CPUs; load average at the end: "
             f"{', '.join(f'{x:.1f}' for x in m['load_average']) if m['load_average'] else 'n/a'}).",
             "Wall times depend on what else the machine was doing; the ratios (spkfn versus the reference,",
             "measured side by side in the same run) are the figures to compare.", "",
             "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val), ""]
    for name, files in runs.items():
        lines += [f"## {name}", ""]
        if config and name in config:
            lines += [f"Arguments: `{shlex.join(str(a) for a in config[name])}`", ""]
        text = Path(files["text"]).read_text().rstrip()
        lines += ["```", text, "```", ""]
        lines += [f"Figures: `{files['json']}`", ""]
        json.loads(Path(files["json"]).read_text())  # a run that wrote broken JSON fails here, loudly
    return write_text_atomic("\n".join(lines), path)
