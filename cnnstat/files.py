"""Reading and writing files safely.

Reading: only regular files are read, at most a byte bound of them. A fifo would block
forever and /dev/zero or /dev/urandom never end, so anything that is not a regular file
(after following symlinks) is refused before it is opened; the file is then opened
non-blocking and checked again, so one swapped in between the two looks is refused too.

Writing: never overwrite without --force, never leave a half-written file, and never
replace anything but a regular file (a fifo or device node stays what it is).

Every file cnnstat writes goes through `atomic_write`: the bytes go to a temporary file
in the same directory, are flushed to disk, and the file is then renamed over the target
(atomic on POSIX), so an interrupted run leaves the previous file byte-identical. Only a
hard kill (SIGKILL, power loss) between the two steps can leave a `.NAME.*.tmp` behind,
and even then the target itself is untouched.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

from cnnstat.errors import LimitError, Location, UsageError

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a fifo (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _refuse_special(mode: int, name: str) -> None:
    if not stat.S_ISREG(mode):
        raise UsageError(f"the file is {_kind(mode)}; only regular files are read",
                         Location(name))


def require_regular_file(path: str | Path, shown_as: str | None = None) -> None:
    """Refuse a fifo, device or socket before a reader of its own (onnx.load) opens it:
    a fifo would block forever and /dev/zero never ends."""
    _refuse_special(os.stat(path).st_mode, shown_as or str(path))


def read_bytes(path: str | Path, limit: int, shown_as: str | None = None) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; anything else is a located
    UsageError (exit 2): a special file, a file too big, a name the OS refuses."""
    name = shown_as or str(path)
    try:
        _refuse_special(os.stat(path).st_mode, name)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            _refuse_special(info.st_mode, name)  # swapped in after the first look
            if info.st_size > limit:
                raise LimitError(f"file is {info.st_size} bytes; the limit is {limit} bytes",
                                 Location(name))
            raw = f.read(limit + 1)
    except OSError as e:
        raise UsageError(f"cannot read file: {e.strerror or e}", Location(_short(name))
                         ) from None
    if len(raw) > limit:  # grew while being read
        raise LimitError(f"file is more than {limit} bytes; the limit is {limit} bytes",
                         Location(name))
    return raw


def _short(name: str) -> str:
    """A name the OS refused as too long would make the error line unreadable."""
    return name if len(name) <= 200 else f"{name[:100]}...({len(name)} characters)"


def is_stdout(path: str | Path) -> bool:
    return str(path) in ("-", "/dev/stdout")


def check_writable(path: str | Path, force: bool) -> Path:
    target = Path(path)
    if is_stdout(path):
        return target
    try:
        info = target.stat() if target.exists() else None
        parent_ok = target.parent.is_dir()
    except OSError as e:
        raise UsageError(f"cannot write '{_short(str(target))}': {e.strerror or e}") from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise UsageError(f"'{target}' is {_kind(info.st_mode)}; only a regular file is "
                         "replaced (use '-' to write to stdout)")
    if info is not None and not force:
        raise UsageError(f"'{target}' exists; pass --force to overwrite it")
    if not parent_ok:
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
    """Call `write(tmp_path)` and move the result over `path` only if it succeeded
    (`-` or /dev/stdout: copy it to stdout)."""
    target = check_writable(path, force)
    if is_stdout(path):
        return _to_stdout(write)
    import tempfile  # here: it imports random and hashlib, and most commands write nothing

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


def _to_stdout(write: Callable[[Path], None]) -> Path:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="cnnstat.") as folder:
        tmp = Path(folder) / "out"
        write(tmp)
        sys.stdout.flush()
        sys.stdout.buffer.write(tmp.read_bytes())
        sys.stdout.flush()
    return Path("-")


def atomic_write_text(path: str | Path, text: str, *, force: bool) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), force=force)
