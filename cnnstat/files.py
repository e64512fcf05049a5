"""Writing files safely: never overwrite without --force, never leave a half-written file.

Every file cnnstat writes goes through `atomic_write`: the bytes go to a temporary file
in the same directory, are flushed to disk, and the file is then renamed over the target
(atomic on POSIX), so an interrupted run leaves the previous file byte-identical. Only a
hard kill (SIGKILL, power loss) between the two steps can leave a `.NAME.*.tmp` behind,
and even then the target itself is untouched.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from cnnstat.errors import Location, UsageError


def check_writable(path: str | Path, force: bool) -> Path:
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"'{target}' is a directory")
    if target.exists() and not force:
        raise UsageError(f"'{target}' exists; pass --force to overwrite it")
    if not target.parent.exists():
        raise UsageError(f"directory '{target.parent}' does not exist")
    return target


def _mode_for(target: Path) -> int:
    """The old file's permissions, else what open() would give a new file (mkstemp's
    0600 would hide a plot from the rest of a CI job's group)."""
    if target.exists():
        return stat.S_IMODE(target.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | Path, write: Callable[[Path], None], *, force: bool) -> Path:
    """Call `write(tmp_path)` and move the result over `path` only if it succeeded."""
    target = check_writable(path, force)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as e:
        raise UsageError(f"cannot write '{target}': {e.strerror or e}", Location(str(target))
                         ) from None
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())  # on disk before the rename makes it the file
        os.chmod(tmp, _mode_for(target))
        os.replace(tmp, target)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise UsageError(f"cannot write '{target}': {e.strerror or e}",
                             Location(str(target))) from None
        raise
    return target


def atomic_write_text(path: str | Path, text: str, *, force: bool) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), force=force)
