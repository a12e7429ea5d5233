"""``durable`` commands that run executions: ``run``, ``start`` and ``worker``.

Part of :mod:`durable_core.cli` (its parser adds these with :func:`add_run_commands`),
kept apart to keep modules small. All three open the store creating it (and its folder) if
missing; the exit codes, error handling and output streams are those of
:mod:`~durable_core.cli.commands`.

Invariants:
- ``run`` imports the function it is told to run. A worker runs only the functions it
  was given (``--import``) or that live under an allowed prefix (``--allow-module``; by
  default the packages and modules of the current directory): a store record naming
  anything else (``os:system``) is parked as not registered, never imported.
- ``run`` and ``start`` check ``--input`` (JSON, then the function's event type) before
  anything is stored, and are idempotent by ``--id``: an existing execution is continued
  (``run``) or left as it is (``start``), never restarted. ``start`` runs nothing: a
  worker does.
- ``worker --until-idle --wait-timers-within D`` exits only when nothing is due now and
  no running execution is due within ``D``; until then it sleeps (in ``--poll`` slices)
  to the next wake-up and works again.
- ``run --fast-forward`` skips waits only while every pending wait ends by time alone
  (timers, retry delays, condition polls), on a :class:`FastForwardClock`: what is recorded
  follows that virtual time. It never skips while a callback is awaited or another worker
  holds the execution, and stops after :data:`MAX_FAST_FORWARDS` skips.
"""

from __future__ import annotations

import argparse
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from durable_core.cli.render import fmt_duration, pending_waits, render_outcome
from durable_core.errors import ExecutionNotFoundError, ValidationError
from durable_core.function import DurableFunction, import_function, unwrap_durable
from durable_core.parking import is_parked
from durable_core.records import Execution, ExecutionStatus
from durable_core.recovery import DEFAULT_MAX_RECOVERY_ATTEMPTS, check_max_recovery_attempts
from durable_core.runtime import Runtime, RuntimeOptions
from durable_core.runtime.async_worker import DEFAULT_ASYNC_CONCURRENCY, AsyncWorker
from durable_core.runtime.worker import DEFAULT_SHUTDOWN_GRACE_S, Worker
from durable_core.stores.base import JournalStore

MAX_WAIT_WITHIN = timedelta(days=7)
"""Longest ``--wait-timers-within``: a worker that should wait longer should just run."""
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


def add_run_commands(sub: Any) -> None:
    """Add the run and worker commands to ``durable``'s parser."""
    from durable_core.cli.commands import _show_tokens_option

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

    p = sub.add_parser("start", help="create an execution for a worker to run (runs nothing)")
    p.add_argument("function", metavar="MODULE:FUNC", help="e.g. myapp.flows:checkout")
    p.add_argument("--input", default="null", help="the event, as JSON (default: null)")
    p.add_argument("--id", dest="execution_id", help="execution id (idempotent; default: new)")
    p.set_defaults(handler=cmd_start)

    p = sub.add_parser("worker", help="resume due executions until stopped")
    p.add_argument("--poll", type=float, default=0.2, help="seconds between idle polls")
    p.add_argument("--until-idle", action="store_true", help="exit when nothing is due")
    p.add_argument(
        "--wait-timers-within",
        metavar="DURATION",
        help="with --until-idle: before exiting, wait for executions due within DURATION "
        "(e.g. 30s, 5m, 2h; at most 7d) and run them",
    )
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


# --- run --------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    """``durable run MODULE:FUNC``: start idempotently by id, drive, report the outcome."""
    from durable_core.cli.commands import _command, _out, _parse_json, open_store

    _parse_json(args.input, "--input")
    if ":" not in args.function:
        raise ValidationError(
            f"{args.function!r} is not a function reference; use the form "
            "'package.module:function', e.g. examples.hello_durable.workflow:hello"
        )
    clock = FastForwardClock() if args.fast_forward else None
    fn = import_function(args.function)  # the function it was told to run
    event = _load_input(args.input, fn)
    store = open_store(args.store, create=True)
    try:
        rt = Runtime(store, clock=clock, functions=[fn], options=_options(()))
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


def cmd_start(args: argparse.Namespace) -> int:
    """``durable start MODULE:FUNC``: create the execution (idempotent by id); run nothing."""
    from durable_core.cli.commands import _command, _out, _parse_json, open_store

    _parse_json(args.input, "--input")
    fn = import_function(args.function)
    event = _load_input(args.input, fn)
    store = open_store(args.store, create=True)
    try:
        rt = Runtime(store, functions=[fn], options=_options(()))
        eid = args.execution_id or uuid.uuid4().hex
        existed = _exists(store, eid)
        ex = rt.start(fn, event, execution_id=eid)
    finally:
        store.close()
    if existed:
        _out(f"execution {ex.id} already exists ({ex.status.value}); nothing changed")
    else:
        _out(f"started execution {ex.id} ({fn.name}); run '{_command(args)} worker' to run it")
    return 0


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
    wanted = ex.status is ExecutionStatus.RUNNING or ex.status is ExecutionStatus.FAILED
    ops = rt.operations(ex.id) if wanted else []
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
    from durable_core.cli.commands import _out, open_store

    if args.lease_ttl < 1:
        raise ValidationError(f"--lease-ttl must be at least 1 second, got {args.lease_ttl}")
    if args.poll <= 0:
        raise ValidationError(f"--poll must be positive, got {args.poll}")
    if not 0 <= args.shutdown_grace <= 86400:  # also refuses NaN
        raise ValidationError(
            f"--shutdown-grace must be 0 to 86400 seconds, got {args.shutdown_grace}"
        )
    within = None
    if args.wait_timers_within is not None:
        if not args.until_idle:
            raise ValidationError("--wait-timers-within needs --until-idle")
        within = parse_duration(args.wait_timers_within, "--wait-timers-within")
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
        while within is not None and _sleep_to_next(rt, within, args.poll, _out):
            worker.run_forever(until_idle=True)
        if args.until_idle:
            waiting = store.list_executions(status=ExecutionStatus.RUNNING, limit=1_000_000)
            _out(
                f"idle: ran {worker.executions_run} invocation(s); "
                f"{len(waiting)} execution(s) still waiting"
            )
        return 0
    finally:
        store.close()


def _sleep_to_next(rt: Runtime, within: timedelta, poll: float, out: Out) -> bool:
    """Sleep until the next running execution is due, if it is due within ``within``;
    False (at once) if none is."""
    now = rt.clock.now()
    running = rt.store.list_executions(status=ExecutionStatus.RUNNING, limit=1_000_000)
    due = [ex for ex in running if ex.wake_at is not None and ex.wake_at <= now + within]
    if not due:
        return False
    first = min(due, key=lambda ex: ex.wake_at or now)
    assert first.wake_at is not None
    out(f"waiting {fmt_duration(max(first.wake_at - now, timedelta(0)))} for {first.id}")
    while (left := (first.wake_at - rt.clock.now()).total_seconds()) > 0:
        time.sleep(min(left, poll))
    return True


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, what: str) -> timedelta:
    """``30``, ``30s``, ``5m``, ``2h``, ``1d`` (or ``250ms``) as a timedelta, greater than
    zero and at most :data:`MAX_WAIT_WITHIN`; else a ValidationError naming ``what``."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValidationError(f"{what} {text!r} is not a duration; use e.g. 30s, 5m, 2h or 1d")
    value = timedelta(seconds=float(match[1]) * _UNITS[match[2] or "s"])
    if not timedelta(0) < value <= MAX_WAIT_WITHIN:
        raise ValidationError(f"{what} must be more than 0 and at most 7d, got {text!r}")
    return value


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
    except (ImportError, SyntaxError) as e:
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
