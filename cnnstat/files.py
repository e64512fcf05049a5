"""Writing files safely: never overwrite without --force, never leave a half-written file.

Every file cnnstat writes goes through `atomic_write`: the bytes go to a temporary file
in the same directory, which is then renamed over the target (atomic on POSIX), so an
interrupted run leaves the previous file byte-identical.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from cnnstat.errors import UsageError


def check_writable(path: str | Path, force: bool) -> Path:
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"'{target}' is a directory")
    if target.exists() and not force:
        raise UsageError(f"'{target}' exists; pass --force to overwrite it")
    if not target.parent.exists():
        raise UsageError(f"directory '{target.parent}' does not exist")
    return target


def atomic_write(path: str | Path, write: Callable[[Path], None], *, force: bool) -> Path:
    """Call `write(tmp_path)` and move the result over `path` only if it succeeded."""
    target = check_writable(path, force)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def atomic_write_text(path: str | Path, text: str, *, force: bool) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), force=force)
