"""``durable`` commands that only signal an execution: callback, cancel, terminate, retry, fail.

Part of :mod:`durable_core.cli` (its parser adds these with :func:`add_signal_commands`),
kept apart to keep modules small. Each command opens the store without creating it, makes
one validated request and prints one line saying what happens next.

Invariants:
- A command never runs the execution: a worker does (the line says which command).
- A refused request (unknown id, finished execution, bad input) is an error, exit 2,
  nothing recorded.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from durable_core.cli.render import fmt_time
from durable_core.records import Execution, StopKind
from durable_core.runtime import Runtime, default_actor


def add_signal_commands(sub: Any) -> None:
    """Add the callback, cancel, terminate, retry and fail commands to ``durable``'s parser."""
    cb = sub.add_parser("callback", help="complete or heartbeat a callback by its token")
    cb_sub = cb.add_subparsers(title="actions", metavar="ACTION", required=True)
    p = cb_sub.add_parser("succeed", help="complete the callback with a JSON payload")
    p.add_argument("token")
    p.add_argument("--payload", default="null", help="the result, as JSON (default: null)")
    p.set_defaults(handler=cmd_callback_succeed)
    p = cb_sub.add_parser("fail", help="fail the callback (callback.result() raises)")
    p.add_argument("token")
    p.add_argument("--message", required=True, help="why it failed")
    p.add_argument("--type", dest="error_type", default="CallbackFailure", help="error type")
    p.set_defaults(handler=cmd_callback_fail)
    p = cb_sub.add_parser("heartbeat", help="report that the external work is still alive")
    p.add_argument("token")
    p.set_defaults(handler=cmd_callback_heartbeat)
    _add_stop_commands(sub)
    _add_park_commands(sub)


def _add_stop_commands(sub: Any) -> None:
    p = sub.add_parser("cancel", help="cancel a running execution at its next operation")
    p.add_argument("execution_id", metavar="ID")
    p.add_argument("--reason", default=None, help="recorded reason (free text)")
    p.add_argument("--actor", default=None, help="who asks (default: user@host)")
    p.set_defaults(handler=cmd_cancel)
    p = sub.add_parser(
        "terminate", help="end a running execution at its next operation, WITHOUT clean-up"
    )
    p.add_argument("execution_id", metavar="ID")
    p.add_argument("--reason", required=True, help="why (recorded; required)")
    p.add_argument("--actor", default=None, help="who asks (default: user@host)")
    p.set_defaults(handler=cmd_terminate)


def _add_park_commands(sub: Any) -> None:
    """``retry`` and ``fail``: what an operator does with a parked execution."""
    p = sub.add_parser("retry", help="resume a parked execution (after deploying fixed code)")
    p.add_argument("execution_id", metavar="ID")
    p.add_argument("--actor", help="who asks (recorded)")
    p.set_defaults(handler=cmd_retry)

    p = sub.add_parser(
        "fail", help="fail an execution parked on non-determinism (a saga compensates)"
    )
    p.add_argument("execution_id", metavar="ID")
    p.add_argument("--reason", required=True, help="why (recorded)")
    p.add_argument("--actor", help="who decides (recorded)")
    p.set_defaults(handler=cmd_fail)


def _signal(args: argparse.Namespace, action: Callable[[Runtime], str]) -> int:
    from durable_core.cli.commands import _out, open_store

    store = open_store(args.store, create=False)
    try:
        _out(action(Runtime(store)))
    finally:
        store.close()
    return 0


def cmd_callback_succeed(args: argparse.Namespace) -> int:
    """``durable callback succeed TOKEN --payload JSON``."""
    from durable_core.cli.commands import _parse_json

    _parse_json(args.payload, "--payload")

    def act(rt: Runtime) -> str:
        op = rt.send_callback_success_json(args.token, args.payload)
        return _woken(args, f"callback {op.name!r} SUCCEEDED")

    return _signal(args, act)


def cmd_callback_fail(args: argparse.Namespace) -> int:
    """``durable callback fail TOKEN --message MSG [--type T]``."""

    def act(rt: Runtime) -> str:
        op = rt.send_callback_failure(args.token, args.message, error_type=args.error_type)
        return _woken(args, f"callback {op.name!r} FAILED ({args.error_type}: {args.message})")

    return _signal(args, act)


def cmd_callback_heartbeat(args: argparse.Namespace) -> int:
    """``durable callback heartbeat TOKEN``."""

    def act(rt: Runtime) -> str:
        op = rt.send_callback_heartbeat(args.token)
        if op.heartbeat_deadline is None:
            return f"heartbeat recorded for callback {op.name!r} (it has no heartbeat timeout)"
        deadline = fmt_time(op.heartbeat_deadline)
        return f"heartbeat recorded for callback {op.name!r}; next heartbeat due by {deadline}"

    return _signal(args, act)


def cmd_retry(args: argparse.Namespace) -> int:
    """``durable retry ID [--actor A]``."""

    def act(rt: Runtime) -> str:
        ex = rt.retry(args.execution_id, actor=args.actor)
        return f"execution {ex.id} is due now; run '{_command(args)} worker' to resume it"

    return _signal(args, act)


def cmd_fail(args: argparse.Namespace) -> int:
    """``durable fail ID --reason R [--actor A]``."""

    def act(rt: Runtime) -> str:
        ex = rt.fail(args.execution_id, args.reason, actor=args.actor)
        return (
            f"fail of {ex.id} recorded ({args.reason}); a worker raises it where the replay "
            f"diverged (a saga compensates) — run '{_command(args)} worker'"
        )

    return _signal(args, act)


def _woken(args: argparse.Namespace, what: str) -> str:
    return f"{what}; its execution is due now — run '{_command(args)} worker' to resume it"


def cmd_cancel(args: argparse.Namespace) -> int:
    """``durable cancel ID [--reason R] [--actor A]``."""
    return _signal(args, lambda rt: _stopped(args, rt.cancel, StopKind.CANCEL))


def cmd_terminate(args: argparse.Namespace) -> int:
    """``durable terminate ID --reason R [--actor A]``."""
    return _signal(args, lambda rt: _stopped(args, rt.terminate, StopKind.TERMINATE))


def _stopped(args: argparse.Namespace, request: Callable[..., Execution], kind: StopKind) -> str:
    ex = request(args.execution_id, args.reason, actor=args.actor or default_actor())
    first, mine = ex.stop_request(kind), ex.stop_requests[-1]
    verb = {StopKind.CANCEL: "cancellation", StopKind.TERMINATE: "termination"}[kind]
    if first is not None and first is not mine:
        return (
            f"{verb} of {ex.id} was already requested at {fmt_time(first.requested_at)} by "
            f"{first.actor or '-'} ({first.reason}); this request is recorded beside it and "
            "changes nothing"
        )
    return (
        f"{verb} of {ex.id} requested ({mine.reason}); it takes effect at its next "
        f"operation when a worker runs it — run '{_command(args)} worker'"
    )


def _command(args: argparse.Namespace) -> str:
    from durable_core.cli.commands import _command as command

    return command(args)
