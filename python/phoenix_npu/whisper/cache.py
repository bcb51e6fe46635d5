"""The model cache: where imported and exported models live, and how a cache entry is written.

Every cache writer builds its directory with `atomic_dir`: in a hidden temporary sibling,
renamed into place only when complete, so an interrupted import or export never leaves a
half-written model that a later run would take for a finished one.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def cache_root() -> Path:
    """Where imported and exported models are cached: $PHOENIX_NPU_CACHE, else
    ~/.cache/phoenix_npu/models (never inside the repository)."""
    env = os.environ.get("PHOENIX_NPU_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "phoenix_npu" / "models"


def outdir_problem(path: str | os.PathLike, force: bool) -> str | None:
    """Why `path` cannot be an output directory (a file; a non-empty directory without
    `force`), or None. For the commands that write a model directory where the user says."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        return f"{path} is a file, not a directory"
    if path.exists() and any(path.iterdir()) and not force:
        return f"{path} exists and is not empty (use --force to overwrite)"
    return None


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory beside `target`; when the block ends without an
    exception, it replaces `target` (an old `target` is moved aside first and then deleted).
    On an exception the temporary directory is removed and `target` is left as it was."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    tmp.chmod(0o755)
    try:
        yield tmp
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(new: Path, target: Path) -> None:
    old = None
    if target.exists() or target.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.rename(target, old)  # onto an empty directory: allowed, and atomic
    try:
        os.rename(new, target)
    except OSError:
        if old is not None:  # put the old one back rather than leave nothing
            os.rename(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
