"""Atomic outputs: write under a temporary name beside the target, rename when complete.

An interrupted or failed write leaves only a ``.<name>.tmp-*`` entry (removed on failure when
possible), never a half-written file under the final name that a later stage would trust.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path

__all__ = ["atomic_path", "write_text_atomic", "write_json_atomic", "remove_path"]


def remove_path(path: Path) -> None:
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_path(path, *, overwrite: bool = True):
    """Yield a temporary path beside ``path``; on success move it to ``path``.

    Works for files and directories (zarr stores). An existing ``path`` is replaced only after the
    new content is complete.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "a.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> (d / "a.txt").read_text()
    'done'
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True or remove it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"nothing was written to the temporary path for {path}.")
        if path.exists() or path.is_symlink():
            old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(path, old)
            os.replace(tmp, path)
            remove_path(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            remove_path(tmp)
        raise


def write_text_atomic(text: str, path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def _default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    raise TypeError(f"cannot write {type(o).__name__} to JSON")


def write_json_atomic(obj, path, *, indent: int = 2) -> Path:
    """Write ``obj`` as JSON (numpy scalars and arrays converted) atomically."""
    return write_text_atomic(json.dumps(obj, indent=indent, default=_default, sort_keys=False) + "\n", path)
