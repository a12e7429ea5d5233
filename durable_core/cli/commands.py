"""The ``durable`` command: run, resume, inspect and signal executions in a SQLite store.

Commands: ``run``, ``worker``, ``list``, ``show``, ``callback succeed|fail|heartbeat``,
``cancel``, ``retry`` and ``fail`` (``durable --help`` and ``docs/cli.md`` describe each).
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
  create a store file; ``run`` and ``worker`` create it (and its directory) if missing.
- Callback tokens are masked in all output (``show --json`` included) unless
  ``--show-tokens`` is given to ``run`` or ``show``; nothing is ever logged with a token.
- The current directory is put on ``sys.path`` so ``module:function`` references resolve
  as they do in ``python -c "import module"``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
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
    StoreError,
    ValidationError,
)
from durable_core.records import ExecutionStatus
from durable_core.stores.base import Store

DEFAULT_STORE = Path(".durable") / "durable.sqlite3"
STORE_ENV = "DURABLE_STORE"
# --- entry point ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``durable`` command with ``argv`` (default: ``sys.argv[1:]``); return the code."""
    parser = build_parser()
    args = parser.parse_args(_token_last(list(sys.argv[1:] if argv is None else argv)))
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
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        restore()
        if added and cwd in sys.path:
            sys.path.remove(cwd)  # main() may be called in-process (tests, scripts)
    return code


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
        description="Run and inspect durable executions stored in a SQLite file.",
    )
    parser.add_argument(
        "--store",
        default=os.environ.get(STORE_ENV) or str(DEFAULT_STORE),
        help=f"SQLite store file (default: ${STORE_ENV} or {DEFAULT_STORE})",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="level of the logs written to stderr (default: info)",
    )
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
    return parser


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


def open_store(path: str, *, create: bool) -> Store:
    """Open the SQLite store at ``path``; with ``create=False`` it must already exist."""
    file = Path(path)
    if not create and not file.exists():
        raise StoreError(
            f"no store at {path!r}. Start an execution first (`durable run ...`), or point "
            f"--store (or ${STORE_ENV}) at an existing store file."
        )
    from durable_core.stores.sqlite import SQLiteStore  # it creates the folder owner-only

    return SQLiteStore(str(file))


def _command(args: argparse.Namespace) -> str:
    """How to invoke ``durable`` again on the same store (for printed hints)."""
    if args.store == os.environ.get(STORE_ENV, str(DEFAULT_STORE)):
        return "durable"
    return f"durable --store {shlex.quote(args.store)}"


def _parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
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
    store = open_store(args.store, create=False)
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
    store = open_store(args.store, create=False)
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
