"""Files are never lost (issue 12): every file cnnstat writes (`compare --plot`, `check
--update-baseline`) is written atomically, so an interrupted or failed write leaves the
previous file byte-identical and no temporary file behind; `--plot` never overwrites
without --force, and `--baseline` is only ever written with --update-baseline.

Interruptions are simulated where they hurt most: inside the writer (after part of the
new bytes exist), at the fsync, at the rename, and with a real SIGKILL mid-write.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnnstat.cli import app
from cnnstat.errors import UsageError
from cnnstat.files import atomic_write, check_writable

ROOT = Path(__file__).resolve().parents[1]
OLD = b"the previous file \x00\xff, which must survive byte for byte\n"
VGG16_PARAMS = 138_357_544  # torchvision VGG16_Weights.IMAGENET1K_V1 num_params
BUDGET = "models:\n  - model: vgg16\n    max_params: 140M\n"


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def previous(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_bytes(OLD)
    return path


class Boom(Exception):
    pass


# ---- the writer itself ------------------------------------------------------------------------
@pytest.mark.parametrize("failure", [KeyboardInterrupt, Boom, OSError])
def test_a_failed_write_keeps_the_old_file(tmp_path: Path, failure) -> None:
    """Catches: writing in place (a truncated target) or leaving the temporary file when
    the writer is interrupted after writing half of the new bytes."""
    target = previous(tmp_path, "out.json")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_bytes(b'{"half": ')
        raise failure("interrupted")

    with pytest.raises(UsageError if failure is OSError else failure):
        atomic_write(target, half_then_fail, force=True)
    assert target.read_bytes() == OLD
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_interrupted_at_fsync_or_rename(tmp_path: Path, monkeypatch, step: str) -> None:
    """Catches: a temporary file left behind, or a target touched, when the interrupt
    lands between writing and renaming."""
    import cnnstat.files as files

    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, step, interrupt)
    target = previous(tmp_path, "out.json")
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, lambda tmp: tmp.write_text("new"), force=True)
    assert target.read_bytes() == OLD and leftovers(tmp_path) == []


def test_never_overwrites_without_force(tmp_path: Path) -> None:
    """Catches: an existing file replaced although --force was not given, or a directory
    or a missing folder as the target."""
    target = previous(tmp_path, "out.png")
    with pytest.raises(UsageError, match="pass --force"):
        atomic_write(target, lambda tmp: tmp.write_text("new"), force=False)
    assert target.read_bytes() == OLD
    with pytest.raises(UsageError, match="is a directory"):
        check_writable(tmp_path, force=True)
    with pytest.raises(UsageError, match="does not exist"):
        check_writable(tmp_path / "missing" / "out.png", force=True)


def test_permissions_are_those_of_the_old_file_or_a_new_one(tmp_path: Path) -> None:
    """Catches: mkstemp's 0600 leaking into the result (a plot nobody else can read) or
    a replaced file losing its mode."""
    fresh = atomic_write(tmp_path / "new.txt", lambda tmp: tmp.write_text("x"), force=False)
    reference = tmp_path / "reference.txt"
    reference.write_text("x")  # what a plain open() makes under this umask
    assert stat.S_IMODE(fresh.stat().st_mode) == stat.S_IMODE(reference.stat().st_mode)
    kept = previous(tmp_path, "kept.txt")
    kept.chmod(0o640)
    atomic_write(kept, lambda tmp: tmp.write_text("y"), force=True)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640 and kept.read_text() == "y"


# ---- compare --plot ---------------------------------------------------------------------------
@pytest.mark.oracle
def test_plot_refuses_to_overwrite_before_doing_any_work(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    target = previous(tmp_path, "plot.png")
    start = time.perf_counter()
    result = cli("compare", "vgg16", "googlenet", "--plot", str(target))
    assert result.exit_code == 2 and "pass --force" in result.stderr
    assert target.read_bytes() == OLD and leftovers(tmp_path) == []
    assert time.perf_counter() - start < 10


@pytest.mark.oracle
@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml")])
def test_plot_with_force_replaces_the_file(tmp_path: Path, suffix: str, magic: bytes) -> None:
    pytest.importorskip("matplotlib")
    target = previous(tmp_path, f"plot{suffix}")
    result = cli("compare", "lenet5", "alexnet", "--plot", str(target), "--force", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert target.read_bytes().startswith(magic) and leftovers(tmp_path) == []


@pytest.mark.oracle
@pytest.mark.parametrize("failure, code", [(KeyboardInterrupt, 130), (MemoryError, 70),
                                           (OSError, 2)])
def test_plot_interrupted_mid_write_keeps_the_old_plot(tmp_path: Path, monkeypatch,
                                                       failure, code: int) -> None:
    """Catches: savefig writing straight into the target: an interrupt (or a failure)
    after part of the PNG would leave a corrupt plot where the old one was."""
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    def partial_savefig(self, fname, *args, **kwargs):
        Path(fname).write_bytes(b"\x89PNG\r\n\x1a\n truncated")
        raise failure()

    monkeypatch.setattr(Figure, "savefig", partial_savefig)
    target = previous(tmp_path, "plot.png")
    result = cli("compare", "lenet5", "alexnet", "--plot", str(target), "--force", "-f", "json")
    assert result.exit_code == code, result.stderr
    assert target.read_bytes() == OLD and leftovers(tmp_path) == []
    fresh = tmp_path / "fresh.png"
    cli("compare", "lenet5", "--plot", str(fresh), "-f", "json")
    assert not fresh.exists() and leftovers(tmp_path) == []


# ---- check --update-baseline ------------------------------------------------------------------
def test_baseline_is_read_only_without_update(tmp_path: Path) -> None:
    """Catches: --baseline FILE written to (or 'fixed') by a plain comparison run."""
    budget = tmp_path / "budgets.yaml"
    budget.write_text(BUDGET)
    base = tmp_path / "baseline.json"
    assert cli("check", str(budget), "--baseline", str(base), "--update-baseline"
               ).exit_code == 0
    before = base.read_bytes()
    assert json.loads(before)["models"][0]["totals"]["params"] == VGG16_PARAMS
    result = cli("check", str(budget), "--baseline", str(base), "--tolerance", "0%")
    assert result.exit_code == 0 and base.read_bytes() == before


@pytest.mark.parametrize("step, code", [("fsync", 130), ("replace", 2)])
def test_baseline_write_interrupted_keeps_the_old_baseline(tmp_path: Path, monkeypatch,
                                                           step: str, code: int) -> None:
    """Catches: a baseline truncated by an interrupt (Ctrl-C at the fsync) or a failed
    rename (a full disk), which would make the next CI run compare against garbage."""
    import cnnstat.budget.baseline as baseline

    def fail(*args):
        raise KeyboardInterrupt if step == "fsync" else OSError(28, "No space left on device")

    monkeypatch.setattr(baseline.os, step, fail)
    budget = tmp_path / "budgets.yaml"
    budget.write_text(BUDGET)
    base = previous(tmp_path, "baseline.json")
    result = cli("check", str(budget), "--baseline", str(base), "--update-baseline")
    assert result.exit_code == code, result.stderr
    assert base.read_bytes() == OLD and leftovers(tmp_path) == []


def test_baseline_not_written_when_a_model_could_not_be_measured(tmp_path: Path) -> None:
    budget = tmp_path / "budgets.yaml"
    budget.write_text(BUDGET + "  - model: nosuchnet\n    max_params: 1M\n")
    base = previous(tmp_path, "baseline.json")
    result = cli("check", str(budget), "--baseline", str(base), "--update-baseline")
    assert result.exit_code == 2 and "NOT written" in result.stderr
    assert base.read_bytes() == OLD


KILLED_MID_WRITE = """
import os, sys, time
import cnnstat.budget.baseline as baseline
real_fsync = os.fsync
def slow_fsync(fd):
    open(sys.argv[2], "w").close()  # tell the parent: the new bytes are half-way to disk
    time.sleep(60)
baseline.os.fsync = slow_fsync
from cnnstat.cli import app
app(["check", sys.argv[1], "--baseline", sys.argv[3], "--update-baseline"])
"""


@pytest.mark.slow
def test_baseline_survives_sigkill_mid_write(tmp_path: Path) -> None:
    """Catches: a write that is not atomic against a hard kill (a CI runner's timeout):
    the old baseline must still be there, byte for byte. Only the temporary file may
    remain (nothing can clean up after SIGKILL)."""
    budget = tmp_path / "budgets.yaml"
    budget.write_text(BUDGET)
    base = previous(tmp_path, "baseline.json")
    ready = tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_MID_WRITE, str(budget), str(ready),
                             str(base)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), "the child never reached the write"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert base.read_bytes() == OLD
    assert all(name.startswith(".baseline.json.") for name in leftovers(tmp_path))
