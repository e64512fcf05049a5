"""The command line entry point: `cnnstat` and `python -m cnnstat`.

Commands live in `cnnstat.commands.*` (one module per command family), all attached to
the one typer app whose error boundary is in `cnnstat.commands.app`. stdout carries
results only; stderr carries diagnostics. Exit codes: docs/exit-codes.md.
"""

from __future__ import annotations

import gc
import sys
from typing import Any


def _app() -> Any:
    """The typer app with every command on it (importing a command module registers its
    commands on `app`)."""
    from cnnstat.commands import (  # noqa: F401
        check,
        compare,
        export,
        rf,
        savings,
        timing,
        views,
        zoo,
    )
    from cnnstat.commands.app import app, reflow_help

    reflow_help()  # idempotent: each command's help one line per paragraph
    return app


def __getattr__(name: str) -> Any:
    """`from cnnstat.cli import app` (tests, embedding) gets the full app."""
    if name == "app":
        return _app()
    raise AttributeError(f"module 'cnnstat.cli' has no attribute {name!r}")


def main() -> None:
    # Imports make tens of thousands of objects and no garbage: the cyclic collector
    # would walk them again and again (a tenth of the spec path's start-up). Collect
    # again once they are in; they live to the end, so later collections skip them.
    gc.disable()
    try:
        app = _app()
        from cnnstat.commands.app import tolerate_any_encoding
        from cnnstat.report.streams import rstripped_stdout
    finally:
        gc.freeze()
        gc.enable()
    tolerate_any_encoding()  # also for --help, which typer prints before any command runs
    rstripped_stdout()  # typer's rich help pads every line to the width, even in a pipe
    everything = app.registered_commands
    app.registered_commands = _invoked(everything, sys.argv[1:2])
    try:
        app()
    finally:
        app.registered_commands = everything


def _invoked(commands: list, first: list[str]) -> list:
    """Only the command the first argument names, when it names one: typer builds a click
    command, inspecting its signature and types, for every registered command at each
    start (~15 ms of the spec path's ~100 ms). Anything else (no argument, --help,
    --version, a typo that needs close matches) gets them all."""
    named = [c for c in commands if first and c.name == first[0]]
    return named or commands


if __name__ == "__main__":
    main()
