"""The ``durable`` command: run, resume, inspect and signal executions in a SQLite store.

Commands: ``run``, ``worker``, ``list``, ``show``, ``callback succeed|fail|heartbeat``,
``cancel``, ``retry`` and ``fail`` (``durable --help`` and ``docs/cli.md`` describe each).

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
- ``run`` imports the function it is told to run. A worker runs only the functions it
  was given (``--import``) or that live under an allowed prefix (``--allow-module``; by
  default the packages and modules of the current directory): a store record naming
  anything else (``os:system``) is parked as not registered, never imported.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from durable_core.cli.render import (
    execution_json,
    fmt_duration,
    pending_waits,
    render_execution,
    render_outcome,
    render_table,
)
from durable_core.cli.signals import add_signal_commands
from durable_core.errors import (
    DurableError,
    ExecutionNotFoundError,
    StoreError,
    ValidationError,
)
from durable_core.function import DurableFunction, import_function, unwrap_durable
from durable_core.parking import is_parked
from durable_core.records import Execution, ExecutionStatus
from durable_core.recovery import DEFAULT_MAX_RECOVERY_ATTEMPTS, check_max_recovery_attempts
from durable_core.runtime import Runtime, RuntimeOptions
from durable_core.runtime.async_worker import DEFAULT_ASYNC_CONCURRENCY, AsyncWorker
from durable_core.runtime.worker import DEFAULT_SHUTDOWN_GRACE_S, Worker
from durable_core.stores.base import JournalStore, Store

DEFAULT_STORE = Path(".durable") / "durable.sqlite3"
STORE_ENV = "DURABLE_STORE"
MAX_FAST_FORWARDS = 10_000
"""Upper bound on timer skips in one ``run --fast-forward`` (a loop guard, not a limit users
should meet: a workflow waiting more often than this should be tested with the testing kit)."""

Out = Callable[[str], None]


class FastForwardClock:
    """Wall-clock time plus an offset that ``run --fast-forward`` moves forward.

    Demo and test use only: everything recorded while it runs (start times, timer ends,
    callback deadlines) follows the virtual time, not the wall clock.
    """

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        """Wall-clock now plus the skipped time."""
        return datetime.now(UTC) + self.offset

    def sleep(self, seconds: float) -> None:
        """Skip ``seconds`` instead of sleeping (inline retry delays pass instantly)."""
        if seconds > 0:
            self.offset += timedelta(seconds=seconds)

    def advance_to(self, when: datetime) -> None:
        """Move virtual time forward to ``when`` (never backwards)."""
        gap = when - self.now()
        if gap > timedelta(0):
            self.offset += gap


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

    p = sub.add_parser("run", help="start an execution and run it until it finishes or waits")
    p.add_argument("function", metavar="MODULE:FUNC", help="e.g. myapp.flows:checkout")
    p.add_argument("--input", default="null", help="the event, as JSON (default: null)")
    p.add_argument("--id", dest="execution_id", help="execution id (idempotent; default: new)")
    p.add_argument(
        "--fast-forward",
        action="store_true",
        help="skip timer and retry waits on a virtual clock (demos and tests only)",
    )
    _show_tokens_option(p)
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("worker", help="resume due executions until stopped")
    p.add_argument("--poll", type=float, default=0.2, help="seconds between idle polls")
    p.add_argument("--until-idle", action="store_true", help="exit when nothing is due")
    p.add_argument("--lease-ttl", type=float, default=60.0, help="lease seconds (default 60)")
    p.add_argument("--batch", type=int, default=16, help="invocations per round (default 16)")
    p.add_argument(
        "--concurrency",
        type=int,
        default=None,
        metavar="N",
        help="run up to N executions at once: on threads (default 1), or with --async as "
        f"tasks on one event loop (default {DEFAULT_ASYNC_CONCURRENCY})",
    )
    p.add_argument(
        "--async",
        dest="use_async",
        action="store_true",
        help="run executions as tasks on one event loop: async durable functions wait on "
        "I/O side by side; sync ones run on the loop's threads",
    )
    p.add_argument(
        "--max-recovery-attempts",
        type=int,
        default=DEFAULT_MAX_RECOVERY_ATTEMPTS,
        metavar="N",
        help="recoveries in a row after a worker died mid-invocation before the step that "
        f"was running fails for good (default {DEFAULT_MAX_RECOVERY_ATTEMPTS})",
    )
    p.add_argument(
        "--shutdown-grace",
        type=float,
        default=DEFAULT_SHUTDOWN_GRACE_S,
        metavar="SECONDS",
        help="after SIGTERM/Ctrl-C, how long running invocations may still take before "
        f"the worker exits without them (default {DEFAULT_SHUTDOWN_GRACE_S:g})",
    )
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE and register its durable functions (repeatable)",
    )
    p.add_argument(
        "--allow-module",
        dest="allow_modules",
        action="append",
        default=[],
        metavar="PREFIX",
        help="also run functions of modules under PREFIX that are not registered "
        "(repeatable; default without --import/--allow-module: the packages and modules "
        "of the current directory)",
    )
    p.set_defaults(handler=cmd_worker)

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


# --- run --------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    """``durable run MODULE:FUNC``: start idempotently by id, drive, report the outcome."""
    _parse_json(args.input, "--input")
    if ":" not in args.function:
        raise ValidationError(
            f"{args.function!r} is not a function reference; use the form "
            "'package.module:function', e.g. examples.hello_durable.workflow:hello"
        )
    clock = FastForwardClock() if args.fast_forward else None
    fn = import_function(args.function)  # the function it was told to run
    store = open_store(args.store, create=True)
    try:
        rt = Runtime(store, clock=clock, functions=[fn], options=_options(()))
        event = _load_input(args.input, fn)
        eid = args.execution_id or uuid.uuid4().hex
        existed = _exists(store, eid)
        ex = rt.start(fn, event, execution_id=eid)
        if existed:
            _out(f"execution {ex.id} already exists ({ex.status.value}); continuing it")
        else:
            _out(f"started execution {ex.id} ({fn.name})")
        ex = drive(rt, ex.id, clock, _out)
        return report(rt, ex, _command(args), _out, show_tokens=args.show_tokens)
    finally:
        store.close()


def _load_input(text: str, fn: DurableFunction[Any, Any]) -> Any:
    """Validate ``--input`` against the function's event type before anything is stored."""
    from pydantic import ValidationError as PydanticValidationError

    from durable_core.serde import adapter_for

    try:
        return adapter_for(fn.input_type).validate_json(text)
    except PydanticValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}" for err in e.errors()
        )
        raise ValidationError(
            f"--input does not fit the event type of {fn.name!r}: {problems}"
        ) from e


def _exists(store: JournalStore, execution_id: str) -> bool:
    try:
        store.get_execution(execution_id)
    except ExecutionNotFoundError:
        return False
    return True


def drive(rt: Runtime, execution_id: str, clock: FastForwardClock | None, out: Out) -> Execution:
    """Run the execution while it is due; with ``clock``, skip waits that only need time."""
    ex = rt.drive(execution_id)
    if clock is None:
        return ex
    for _ in range(MAX_FAST_FORWARDS):
        if ex.status is not ExecutionStatus.RUNNING or _held_elsewhere(rt, ex):
            return ex
        waits = pending_waits(rt.operations(ex.id))
        if ex.wake_at is None or not waits or not all(w.is_timed for w in waits):
            return ex
        gap = ex.wake_at - clock.now()
        if gap > timedelta(0):
            out(f"fast-forward: skipping {fmt_duration(gap)} {waits[0].skip_label}")
            clock.advance_to(ex.wake_at)
        ex = rt.drive(ex.id)
    return ex


def _held_elsewhere(rt: Runtime, ex: Execution) -> bool:
    return (
        ex.lease_owner is not None
        and ex.lease_owner != rt.worker_id
        and ex.lease_expires is not None
        and ex.lease_expires > rt.clock.now()
    )


def report(rt: Runtime, ex: Execution, command: str, out: Out, *, show_tokens: bool = False) -> int:
    """Print how an execution stands after ``run``; return the exit code."""
    ops = rt.operations(ex.id) if ex.status is ExecutionStatus.RUNNING else []
    held = _held_elsewhere(rt, ex)
    for line in render_outcome(
        ex, ops, command=command, held_elsewhere=held, show_tokens=show_tokens
    ):
        out(line)
    failed = ex.status in (ExecutionStatus.FAILED, ExecutionStatus.CANCELLED)
    return 1 if failed or is_parked(ex) else 0


# --- worker -----------------------------------------------------------------------------------


def cmd_worker(args: argparse.Namespace) -> int:
    """``durable worker``: resume due executions until SIGTERM/Ctrl-C (or idle)."""
    if args.lease_ttl < 1:
        raise ValidationError(f"--lease-ttl must be at least 1 second, got {args.lease_ttl}")
    if args.poll <= 0:
        raise ValidationError(f"--poll must be positive, got {args.poll}")
    if not 0 <= args.shutdown_grace <= 86400:  # also refuses NaN
        raise ValidationError(
            f"--shutdown-grace must be 0 to 86400 seconds, got {args.shutdown_grace}"
        )
    allowed = tuple(args.allow_modules)
    options = _options(
        allowed,
        explicit=bool(allowed or args.imports),
        lease_ttl=args.lease_ttl,
        max_recovery_attempts=check_max_recovery_attempts(
            args.max_recovery_attempts, "--max-recovery-attempts"
        ),
    )
    store = open_store(args.store, create=True)
    try:
        rt = Runtime(store, options=options)
        for module in args.imports:
            _register_module(rt, module)
        structlog.get_logger("durable.worker").info(
            "worker runs registered functions and modules under allowed prefixes",
            registered=rt.registered(),
            allowed_modules=list(options.allowed_modules),
        )
        worker: Worker | AsyncWorker = (
            AsyncWorker(
                rt,
                concurrency=_given(args.concurrency, DEFAULT_ASYNC_CONCURRENCY),
                poll_interval=args.poll,
                shutdown_grace=args.shutdown_grace,
            )
            if args.use_async
            else Worker(
                rt,
                poll_interval=args.poll,
                batch=args.batch,
                concurrency=_given(args.concurrency, 1),
                shutdown_grace=args.shutdown_grace,
            )
        )
        worker.run_forever(until_idle=args.until_idle)
        if args.until_idle:
            waiting = store.list_executions(status=ExecutionStatus.RUNNING, limit=1_000_000)
            _out(
                f"idle: ran {worker.executions_run} invocation(s); "
                f"{len(waiting)} execution(s) still waiting"
            )
        return 0
    finally:
        store.close()


def _given(value: int | None, default: int) -> int:
    return default if value is None else value


def _options(
    allowed: tuple[str, ...],
    *,
    explicit: bool = False,
    lease_ttl: float = 60.0,
    max_recovery_attempts: int = DEFAULT_MAX_RECOVERY_ATTEMPTS,
) -> RuntimeOptions:
    """Options allowing the modules ``allowed`` or, by default (``explicit`` false), the
    packages and modules of the current directory: the project being run."""
    knobs: dict[str, Any] = {
        "lease_ttl": timedelta(seconds=lease_ttl),
        "max_recovery_attempts": max_recovery_attempts,
    }
    if explicit:
        return RuntimeOptions(allowed_modules=allowed, **knobs)
    return RuntimeOptions.for_project(**knobs)


def _register_module(rt: Runtime, module_name: str) -> None:
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValidationError(f"--import {module_name}: cannot import it: {e}") from e
    # Durable functions, and objects that carry one (sagas expose ``.durable_function``).
    found = [
        fn for v in vars(module).values() if isinstance(fn := unwrap_durable(v), DurableFunction)
    ]
    if not found:
        raise ValidationError(
            f"--import {module_name}: it defines no durable functions (@durable or @saga)"
        )
    for fn in found:
        rt.register(fn)


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
