"""The command line entry point: `cnnstat` and `python -m cnnstat`.

Commands live in `cnnstat.commands.*` (one module per command family), all attached to
the one typer app whose error boundary is in `cnnstat.commands.app`. stdout carries
results only; stderr carries diagnostics. Exit codes: docs/exit-codes.md.
"""

from __future__ import annotations

# Importing a command module registers its commands on `app`.
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
from cnnstat.commands.app import app, reflow_help, tolerate_any_encoding
from cnnstat.report.streams import rstripped_stdout

reflow_help()


def main() -> None:
    tolerate_any_encoding()  # also for --help, which typer prints before any command runs
    rstripped_stdout()  # typer's rich help pads every line to the width, even in a pipe
    app()


if __name__ == "__main__":
    main()
