"""The ``durable-saga`` command: a saga's status, and operator actions, on a store.

Commands::

    durable-saga status ID [--json]          forward path, rollback path, what is not undone
    durable-saga retry ID                    run the failed compensation again
    durable-saga skip ID --reason TEXT       leave it not undone, continue the rollback
    durable-saga resolve ID --note TEXT      it was undone by hand, continue the rollback
    durable-saga cancel ID [--reason TEXT]   cancel: the saga rolls back
    durable-saga terminate ID --reason TEXT  end it WITHOUT compensating

``--store`` takes the store URLs ``durable`` takes (a SQLite file path, ``sqlite:///...``,
``dynamodb://TABLE?region=...``; :mod:`durable_core.stores.urls`), before or after the
command, and defaults to ``$DURABLE_STORE`` or ``.durable/durable.sqlite3``, like ``durable``.
Actions are recorded in the saga's journal; a worker (``durable worker``) resumes the saga,
or pass ``--run`` to resume it in this process.

Invariants:
- Exit codes: 0 when the command did what was asked, 2 for a user error (printed as
  ``error: <message>``, never a traceback).
- The store file is never created by this command; ``status`` opens it read-only.
- Output is plain text (no colour), results on stdout, logs on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from durable_core import DurableError, ErrorInfo, Runtime, RuntimeOptions
from durable_core.stores.urls import FORMS, open_store_url
from saga.operator import (
    resolve,
    retry_compensation,
    saga_status,
    skip_compensation,
    terminate,
)
from saga.outcome import SagaOutcome

STORE_ENV = "DURABLE_STORE"
DEFAULT_STORE = Path(".durable") / "durable.sqlite3"

_MARK = {
    "succeeded": "ok",
    "compensated": "ok",
    "resolved": "ok",
    "failed": "FAILED",
    "skipped": "SKIPPED",
    "timed_out": "FAILED",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``durable-saga`` with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)  # so --run can import the saga by its module:name
    try:
        handler: Callable[[Runtime, argparse.Namespace], SagaOutcome | str] = args.handler
        # --run resumes the saga here: like `durable worker`, trust this project's modules.
        store = open_store_url(args.store, create=False, read_only=args.handler is _status)
        runtime = Runtime(store, options=RuntimeOptions.for_project())
        try:
            shown = handler(runtime, args)
        finally:
            runtime.store.close()
    except DurableError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(shown if isinstance(shown, str) else render_outcome(shown), flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``durable-saga``."""
    parser = argparse.ArgumentParser(
        prog="durable-saga", description="Inspect sagas and act on parked ones."
    )
    store_help = f"the store: {FORMS} (default: ${STORE_ENV} or {DEFAULT_STORE})"
    default = os.environ.get(STORE_ENV) or str(DEFAULT_STORE)
    parser.add_argument("--store", metavar="URL", default=default, help=store_help)
    # Also after the command; there it defaults to nothing, so a value given before stands.
    after = argparse.ArgumentParser(add_help=False)
    after.add_argument("--store", metavar="URL", default=argparse.SUPPRESS, help=store_help)
    sub = parser.add_subparsers(metavar="COMMAND")

    p = sub.add_parser("status", help="the saga's forward and rollback paths", parents=[after])
    p.add_argument("execution_id", metavar="ID")
    p.add_argument("--json", action="store_true", help="the SagaOutcome as JSON")
    p.set_defaults(handler=_status)

    def action(name: str, text: str, handler: Callable[..., object], arg: str | None) -> None:
        p = sub.add_parser(name, help=text, parents=[after])
        p.add_argument("execution_id", metavar="ID")
        if arg is not None:
            p.add_argument(f"--{arg}", required=True, help=f"recorded {arg} (required)")
        p.add_argument("--actor", help="who decides (recorded)")
        p.add_argument("--run", action="store_true", help="resume the saga in this process")
        p.set_defaults(handler=handler)

    action("retry", "run the failed compensation again", _retry, None)
    action("skip", "leave the failed compensation undone; continue", _skip, "reason")
    action("resolve", "mark it undone by hand; continue the rollback", _resolve, "note")
    action("terminate", "end the saga WITHOUT compensating", _terminate, "reason")

    p = sub.add_parser(
        "cancel", help="cancel the saga: it rolls back at its next step", parents=[after]
    )
    p.add_argument("execution_id", metavar="ID")
    p.add_argument("--reason", default=None, help="recorded reason (free text)")
    p.add_argument("--actor", help="who asks (recorded)")
    p.set_defaults(handler=_cancel)
    return parser


def _status(rt: Runtime, args: argparse.Namespace) -> SagaOutcome | str:
    outcome = saga_status(rt, args.execution_id)
    return outcome.model_dump_json(indent=2) if args.json else outcome


def _retry(rt: Runtime, args: argparse.Namespace) -> SagaOutcome:
    return retry_compensation(rt, args.execution_id, actor=args.actor, drive=args.run)


def _skip(rt: Runtime, args: argparse.Namespace) -> SagaOutcome:
    return skip_compensation(rt, args.execution_id, args.reason, actor=args.actor, drive=args.run)


def _resolve(rt: Runtime, args: argparse.Namespace) -> SagaOutcome:
    return resolve(rt, args.execution_id, args.note, actor=args.actor, drive=args.run)


def _terminate(rt: Runtime, args: argparse.Namespace) -> SagaOutcome:
    return terminate(rt, args.execution_id, args.reason, actor=args.actor, drive=args.run)


def _cancel(rt: Runtime, args: argparse.Namespace) -> str:
    rt.cancel(args.execution_id, args.reason, actor=args.actor)
    return (
        f"cancel requested for {args.execution_id}: it rolls back at its next step boundary "
        "(a worker resumes it); `durable-saga status ID` shows the rollback"
    )


# --- rendering ------------------------------------------------------------------------------


def render_outcome(outcome: SagaOutcome) -> str:
    """A saga's outcome as plain text: header, forward path, rollback path, what is left."""
    lines = [
        f"saga {outcome.saga}  execution {outcome.execution_id}",
        f"status: {outcome.status.value.upper()} (execution {outcome.execution_status.value})",
    ]
    if outcome.cause is not None:
        cause = outcome.cause
        where = f"step {cause.step!r} failed" if cause.step else cause.kind
        lines.append(f"cause:  {where}: {_short_type(cause.error_type)}: {cause.message}")
    if outcome.parked_on is not None:
        lines.append(
            f"PARKED: the undo of {outcome.parked_on!r} exhausted its retries; decide with "
            f"`durable-saga retry|skip|resolve {outcome.execution_id}`"
        )
    lines.append("forward path:")
    for s in outcome.steps:
        detail = _error(s.error) if s.status in ("failed", "retrying", "timed_out") else ""
        lines.append(
            _row(
                s.name,
                s.status,
                attempts=s.attempts,
                started=s.started_at,
                ended=s.ended_at,
                detail=detail,
                kind=s.type,
            )
        )
    if not outcome.steps:
        lines.append("  (no steps yet)")
    if outcome.compensations or outcome.cause is not None:
        lines.append("rollback path (reverse order):")
        for c in outcome.compensations:
            detail = c.note or (_error(c.error) if c.error else "")
            if c.uncertain:
                detail = f"(uncertain step) {detail}".strip()
            lines.append(
                _row(
                    c.step,
                    c.status,
                    attempts=c.attempts,
                    started=c.started_at,
                    ended=c.ended_at,
                    detail=detail,
                )
            )
        if not outcome.compensations:
            lines.append("  (nothing to undo)")
    for a in outcome.operator_actions:
        who = f" by {a.actor}" if a.actor else ""
        why = f": {a.reason}" if a.reason else ""
        lines.append(f"operator: {a.action} {a.step!r}{who}{why}")
    if outcome.not_undone:
        lines.append(f"NOT UNDONE: {', '.join(outcome.not_undone)}")
    if outcome.error is not None and outcome.cause is None:
        lines.append(f"error: {_error(outcome.error)}")
    return "\n".join(lines)


def _row(
    name: str,
    status: str,
    *,
    attempts: int,
    started: datetime | None,
    ended: datetime | None,
    detail: str,
    kind: str = "step",
) -> str:
    mark = _MARK.get(status, "..")
    label = name if len(name) <= 28 else name[:27] + "~"
    if kind != "step":
        detail = f"({kind}) {detail}".rstrip()
    took = f"{(ended - started).total_seconds():.2f}s" if started and ended else ""
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
    row = f"  {mark:<7} {label:<28} {status:<12} {tries:<11} {took:>8}"
    return f"{row}  {detail}".rstrip()


def _short_type(error_type: str) -> str:
    return error_type.rsplit(".", 1)[-1]


def _error(error: ErrorInfo | None) -> str:
    if error is None:
        return ""
    text = f"{_short_type(error.type)}: {error.message}"
    return text if len(text) <= 100 else text[:97] + "..."


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
