"""The typer app and its single error boundary (docs/exit-codes.md).

Command modules in this package attach their commands to `app`; `cnnstat.cli` imports
them all. Nothing here imports torch.
"""

# No `from __future__ import annotations`: typer reads these signatures at every start,
# and each string annotation would cost it a compile and an eval.

import contextlib
import os
import sys
import traceback
from typing import Annotated

import typer
from typer.core import TyperGroup

from cnnstat import __version__
from cnnstat.errors import CnnstatError

DEBUG_ENV = "CNNSTAT_DEBUG"


class _Boundary(TyperGroup):
    """The single error boundary: a CnnstatError becomes one line and its exit code; any
    other exception is a bug (exit 70, traceback only with --debug)."""

    def make_context(self, *args, **kwargs):
        """`cnnstat --help | head`: the top-level help is printed while the context is
        made, outside invoke(); click (or rich, which prints it) would exit 1, which
        means "budget exceeded", on the closed pipe. Nothing else here exits 1."""
        try:
            return super().make_context(*args, **kwargs)
        except BrokenPipeError:
            _silence_stdout()
            raise typer.Exit(EXIT_BROKEN_PIPE) from None
        except SystemExit as e:  # typer's rich help on a closed pipe: rich exits 1 itself
            if e.code == 1:
                raise typer.Exit(EXIT_BROKEN_PIPE) from None
            raise

    def invoke(self, ctx: typer.Context):
        tolerate_any_encoding()
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # typer's own: usage errors exit 2, --help/--version exit 0
        except SystemExit as e:  # a command's --help on a closed pipe (see make_context)
            if e.code == 1:
                raise typer.Exit(EXIT_BROKEN_PIPE) from None
            raise
        except CnnstatError as e:
            error(str(e))
            raise typer.Exit(e.exit_code) from None
        except BrokenPipeError:
            # The reader went away (`cnnstat ... | head`): stop quietly, as shell tools do on
            # SIGPIPE. Never exit 1 (click's choice), which means "budget exceeded".
            _silence_stdout()
            raise typer.Exit(EXIT_BROKEN_PIPE) from None
        except KeyboardInterrupt:
            error("interrupted")
            raise typer.Exit(130) from None
        except Exception as e:  # noqa: BLE001 - the internal-error boundary of docs/exit-codes.md
            if (ctx.obj or {}).get("debug") or os.environ.get(DEBUG_ENV):
                traceback.print_exc()
            error(f"internal error: {type(e).__name__}: {e}. This is a bug in cnnstat "
                  f"{__version__}; please report it (rerun with --debug for the traceback)")
            raise typer.Exit(70) from None


EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE


def tolerate_any_encoding() -> None:
    """On a non-UTF-8 stdout (LANG=C, PYTHONIOENCODING=ascii) write '?' for characters it
    cannot encode instead of crashing; numbers and names stay readable."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):  # a detached stream: leave it
                reconfigure(errors="replace")


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        with contextlib.suppress(OSError, ValueError):  # not a real file (tests capture it)
            os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def error(message: str) -> None:
    print(message if message.startswith("error") or ": error:" in message
          else f"error: {message}", file=sys.stderr)


def note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


app = typer.Typer(
    cls=_Boundary,
    name="cnnstat",
    help="Exact, honest numbers about convolutional networks: params, MACs/FLOPs, shapes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def reflow_help() -> None:
    """Each command's help from its docstring, one line per paragraph: typer's rich help
    keeps the docstring's line breaks, so a wrapped sentence would break mid-line."""
    import inspect

    for info in app.registered_commands:
        doc = info.help or inspect.getdoc(info.callback)
        if doc:
            paragraphs = (" ".join(p.split()) for p in doc.split("\n\n"))
            info.help = "\n\n".join(paragraphs)


def _version(value: bool) -> None:
    if value:
        print(f"cnnstat {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")]
    = False,
) -> None:
    ctx.ensure_object(dict)["debug"] = debug


