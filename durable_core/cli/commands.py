"""The ``durable`` command: run, resume, inspect and signal executions in a store.

Commands: ``run``, ``start``, ``worker``, ``list``, ``show``, ``callback
succeed|fail|heartbeat``, ``cancel``, ``terminate``, ``retry`` and ``fail`` (``durable
--help`` and ``docs/cli.md`` describe each). ``--store`` takes a store URL
(:mod:`durable_core.stores.urls`: a SQLite file path, ``sqlite:///...``,
``dynamodb://TABLE?region=...``), before or after the command.
This module has the entry point (:func:`main`), the parser, what the commands share (opening
the store, printing) and the inspecting commands ``list`` and ``show``;
:mod:`~durable_core.cli.running` has ``run`` and ``worker``, :mod:`~durable_core.cli.signals`
the commands that signal an execution.

Invariants:
- Exit codes: 0 when the command did what was asked (an execution that succeeded or is
  suspended), 1 when ``run`` ends with a FAILED, CANCELLED or parked execution, 2 for user
  errors.
- A user error (any :class:`~durable_core.errors.DurableError`: unknown id, bad JSON, a
  forged token, a function that cannot be imported, ...) prints ``error: <message>`` to
  stderr and exits 2, never a traceback. Anything else is a bug and may traceback.
- Results and reports go to stdout; logs (structlog, the function's ``ctx.logger``) go to
  stderr, so stdout can be piped.
- Commands that only read or signal (``list``, ``show``, ``callback``, ``cancel``) never
  create a store file; ``run``, ``start`` and ``worker`` create it (and its directory) if
  missing. ``list`` and ``show`` open it read-only: no write lock, so they work behind a
  long writer and on a read-only mount.
- Output cut short by its reader (``durable list | head``) ends the command quietly with
  exit 141, as a process killed by SIGPIPE does: no traceback.
- Callback tokens are masked in all output (``show --json`` included) unless
  ``--show-tokens`` is given to ``run`` or ``show``; nothing is ever logged with a token.
- Printed hints name the command so that it works pasted into a fresh shell
  (:func:`command_name`): ``durable`` when the PATH finds this installation's script,
  else its path (``.venv/bin/durable``).
- The current directory is put on ``sys.path`` so ``module:function`` references resolve
  as they do in ``python -c "import module"``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog

from durable_core.cli.render import (
    execution_json,
    render_execution,
    render_table,
)
from durable_core.cli.running import add_run_commands
from durable_core.cli.serve import add_serve_command
from durable_core.cli.signals import add_signal_commands
from durable_core.errors import (
    DurableError,
    ValidationError,
)
from durable_core.records import ExecutionStatus
from durable_core.serde import loads_strict
from durable_core.stores.base import Store
from durable_core.stores.urls import FORMS, open_store_url

DEFAULT_STORE = Path(".durable") / "durable.sqlite3"
STORE_ENV = "DURABLE_STORE"
# --- entry point ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``durable`` command with ``argv`` (default: ``sys.argv[1:]``); return the code."""
    parser = build_parser()
    args = parser.parse_args(_token_last(list(sys.argv[1:] if argv is None else argv)))
    # From a shell, hints name this installation's script as the shell must type it.
    args.program = "durable" if argv is not None else command_name("durable")
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    restore = _configure_logging(args.log_level)
    try:
        code: int = args.handler(args)
    except DurableError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        _silence_stdout()
        return 128 + signal.SIGPIPE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        restore()
        if added and cwd in sys.path:
            sys.path.remove(cwd)  # main() may be called in-process (tests, scripts)
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null after its reader went away (``| head``), so the flush at
    exit cannot raise BrokenPipeError a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (in-process callers)
        pass


_CALLBACK_OPTIONS = frozenset({"-h", "--help", "--payload", "--message", "--type"})


def _token_last(argv: list[str]) -> list[str]:
    """Let ``callback ACTION TOKEN ...`` work for a token that starts with ``-``.

    Tokens are URL-safe base64, so one in 64 begins with ``-`` and argparse would take it
    for an option. Such a token is moved to the end, after ``--``.
    """
    for i in range(len(argv) - 2):
        if argv[i] == "callback" and argv[i + 1] in ("succeed", "fail", "heartbeat"):
            token = argv[i + 2]
            if token.startswith("-") and token.split("=")[0] not in _CALLBACK_OPTIONS:
                rest = argv[i + 3 :]
                if "--" not in rest:
                    return [*argv[: i + 2], *rest, "--", token]
            break
    return argv


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``durable`` command."""
    parser = argparse.ArgumentParser(
        prog="durable",
        description="Run and inspect durable executions in a store (a SQLite file by default).",
    )
    _global_options(parser, default_store=os.environ.get(STORE_ENV) or str(DEFAULT_STORE))
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    add_run_commands(sub)

    p = sub.add_parser("list", help="list executions, newest first")
    p.add_argument("--status", help="RUNNING, SUCCEEDED, FAILED or CANCELLED")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    p.set_defaults(handler=cmd_list)

    p = sub.add_parser("show", help="an execution's history as a timeline")
    p.add_argument("execution_id", metavar="ID")
    p.add_argument("--json", action="store_true", help="print the raw records as JSON")
    _show_tokens_option(p)
    p.set_defaults(handler=cmd_show)

    add_signal_commands(sub)
    add_serve_command(sub)
    _global_options_everywhere(parser)
    return parser


def _global_options(parser: argparse.ArgumentParser, *, default_store: str | None) -> None:
    """``--store`` and ``--log-level``; on a command's parser (``default_store`` None) they
    default to nothing, so the value given before the command stands unless repeated after.
    A command that defines one of them itself (``serve``'s ``--store``) keeps its own."""
    top = default_store is not None
    options: list[tuple[str, dict[str, Any]]] = [
        (
            "--store",
            {
                "metavar": "URL",
                "default": default_store if top else argparse.SUPPRESS,
                "help": f"the store: {FORMS} (default: ${STORE_ENV} or {DEFAULT_STORE})",
            },
        ),
        (
            "--log-level",
            {
                "default": "info" if top else argparse.SUPPRESS,
                "choices": ["debug", "info", "warning", "error"],
                "help": "level of the logs written to stderr (default: info)",
            },
        ),
    ]
    for flag, spec in options:
        try:
            parser.add_argument(flag, **spec)
        except argparse.ArgumentError:  # the command has its own
            continue


def _global_options_everywhere(parser: argparse.ArgumentParser) -> None:
    """Accept the global options after any command too (``durable show ID --store URL``)."""
    for action in parser._actions:  # argparse lists its subparsers nowhere public
        if isinstance(action, argparse._SubParsersAction):
            for command in dict.fromkeys(action.choices.values()):
                _global_options(command, default_store=None)
                _global_options_everywhere(command)


# --- plumbing ---------------------------------------------------------------------------------


def _show_tokens_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--show-tokens",
        action="store_true",
        help="print callback tokens in full (masked by default: a token completes its callback)",
    )


class _StderrLoggerFactory:
    """Loggers that write to whatever ``sys.stderr`` is when they are created."""

    def __call__(self, *args: Any) -> structlog.PrintLogger:
        return structlog.PrintLogger(sys.stderr)


def _configure_logging(level: str) -> Callable[[], None]:
    """Send structlog to stderr at ``level`` for this command; return an undo.

    The CLI is the host program, so it decides where logs go: stdout is for results (a
    configuration left behind by an earlier in-process caller must not mix into them).
    The previous configuration is restored afterwards.
    """
    previous = structlog.get_config() if structlog.is_configured() else None
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=_StderrLoggerFactory(),
    )
    if previous is None:
        return structlog.reset_defaults
    return lambda: structlog.configure(**previous)


def open_store(url: str, *, create: bool, read_only: bool = False) -> Store:
    """Open the store ``url`` names (:func:`~durable_core.stores.urls.open_store_url`):
    with ``create=False`` a SQLite file must already exist; ``read_only`` for commands
    that only read."""
    return open_store_url(url, create=create, read_only=read_only)


def command_name(script: str = "durable") -> str:
    """How to type this installation's console script ``script`` in a fresh shell.

    ``script`` itself when the PATH finds this one (an activated venv, a ``pip install``
    on the PATH); otherwise its path beside the running interpreter, relative to the
    current directory when under it (``.venv/bin/durable`` after ``scripts/setup``).
    """
    beside = Path(sys.executable).parent / script  # not resolved: a venv's python is a link
    if not beside.exists():
        return script
    found = shutil.which(script)
    if found is not None and Path(found).resolve() == beside.resolve():
        return script
    relative = os.path.relpath(beside)
    return shlex.quote(str(beside) if relative.startswith("..") else relative)


def _command(args: argparse.Namespace) -> str:
    """How to invoke ``durable`` again on the same store (for printed hints)."""
    program = getattr(args, "program", "durable")
    if args.store == os.environ.get(STORE_ENV, str(DEFAULT_STORE)):
        return program
    return f"{program} --store {shlex.quote(args.store)}"


def _parse_json(text: str, what: str) -> Any:
    """``text`` as strict JSON (no ``NaN``/``Infinity``), else a ValidationError naming
    ``what``; JSON nested too deep for Python's parser is refused the same way."""
    try:
        return loads_strict(text)
    except RecursionError:
        raise ValidationError(f"{what} is nested too deeply to be read as JSON") from None
    except ValueError as e:
        raise ValidationError(
            f"{what} is not valid JSON ({e}); quote it for the shell, e.g. "
            f"""{what} '{{"order_id": "A-1"}}'"""
        ) from e


def _out(line: str) -> None:
    print(line, flush=True)


# --- inspecting -------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    """``durable list``: a table of executions, newest first."""
    status = None
    if args.status:
        try:
            status = ExecutionStatus(args.status.upper())
        except ValueError:
            names = ", ".join(s.value for s in ExecutionStatus)
            raise ValidationError(f"--status {args.status!r} is not one of {names}") from None
    if args.limit < 1:
        raise ValidationError(f"--limit must be at least 1, got {args.limit}")
    store = open_store(args.store, create=False, read_only=True)
    try:
        rows = store.list_executions(status=status, limit=args.limit)
    finally:
        store.close()
    if not rows:
        _out("no executions" + (f" with status {status.value}" if status else ""))
        return 0
    _out(render_table(rows))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """``durable show ID``: the header and the operation timeline."""
    store = open_store(args.store, create=False, read_only=True)
    try:
        ex = store.get_execution(args.execution_id)
        ops = store.load_operations(ex.id)
    finally:
        store.close()
    if args.json:
        doc = execution_json(ex, ops, show_tokens=args.show_tokens)
        _out(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        _out(render_execution(ex, ops, show_tokens=args.show_tokens))
    return 0
