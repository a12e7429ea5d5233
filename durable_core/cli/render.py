"""Human-readable views of executions and journals, for ``durable show``, ``list`` and ``run``.

The seam for richer views (e.g. sagas' forward and rollback paths) is :func:`timeline`,
which orders a journal as the code wrote it, and :func:`render_operations`, which takes the
function that turns one :class:`TimelineEntry` into lines; replace or wrap
:func:`render_operation` to add detail for your own operation sub-types.

Invariants:
- Rendering never fails on a journal it does not understand: an operation whose position
  cannot be derived is still shown (after the others, in write order, position ``?``).
- Output is plain text without colour or terminal control codes, so it can be piped and
  compared in tests. Times are UTC ISO-8601 with a ``Z`` suffix.
- This module reads records only; it never writes to a store.
- Callback tokens are masked (:func:`mask_token`: the first characters and ``…``) in every
  view, the JSON one included, unless the caller passes ``show_tokens=True``
  (``--show-tokens``): a token completes its callback, so it is shown only when asked for.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from durable_core.parking import FAIL_OPERATION_ID, FailRequest, is_parked
from durable_core.records import (
    Execution,
    ExecutionStatus,
    Operation,
    OperationStatus,
    OperationType,
)
from durable_core.replay import operation_id

TOKEN_SHOWN = 4
"""Characters of a callback token shown when it is masked: enough to tell two apart, far too
few to complete one (a token has 43)."""
MAX_VALUE_CHARS = 120
"""Longest JSON value shown inline before it is cut with an ellipsis."""
CONDITION_SUB_TYPE = "WaitForCondition"
_TOKEN = re.compile(r"token ([A-Za-z0-9_-]{20,})")
_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)")
_DEFAULT_SUB_TYPES = {
    OperationType.STEP: "Step",
    OperationType.WAIT: "Wait",
    OperationType.CALLBACK: "Callback",
    OperationType.CONTEXT: "RunInChildContext",
}


# --- small formatters -------------------------------------------------------------------------


def fmt_time(dt: datetime | None) -> str:
    """``2026-11-24T03:00:00Z`` (UTC, whole seconds), or ``-``."""
    if dt is None:
        return "-"
    utc = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_duration(delta: timedelta) -> str:
    """A short human duration: ``0.25s``, ``45s``, ``2m30s``, ``24h``, ``36h``, ``3d4h``."""
    total = delta.total_seconds()
    if total < 0:
        return "-" + fmt_duration(-delta)
    if total < 10:
        return f"{total:.2f}".rstrip("0").rstrip(".") + "s"
    seconds = round(total)
    if seconds < 2 * 86_400:  # "24h" and "36h" read better than "1d" and "1d12h"
        hours, rest = divmod(seconds, 3_600)
        minutes, secs = divmod(rest, 60)
        shown = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n]
        return "".join(shown[:2])
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{n}{unit}" for n, unit in parts if n]
    return "".join(shown[:2])


def mask_token(token: str | None, *, show: bool = False) -> str:
    """A callback token as printed: its first characters and ``…`` (``h9Tt…``) unless ``show``.

    The ellipsis is not a URL-safe character, so a masked token can never be mistaken for
    (or used as) a real one.
    """
    if token is None:
        return "-"
    return token if show else f"{token[:TOKEN_SHOWN]}…"


def short_json(text: str | None, limit: int = MAX_VALUE_CHARS) -> str:
    """Compact JSON text on one line, cut to ``limit`` characters."""
    if text is None:
        return "-"
    try:
        compact = json.dumps(json.loads(text), separators=(", ", ": "), ensure_ascii=False)
    except ValueError:
        compact = text
    compact = " ".join(compact.split())
    return compact if len(compact) <= limit else compact[: limit - 1] + "…"


def mask_tokens_in(text: str, *, show: bool = False) -> str:
    """``text`` with every ``token <TOKEN>`` masked (suspend reasons of older records)."""
    return text if show else _TOKEN.sub(lambda m: "token " + mask_token(m[1]), text)


def tidy_reason(text: str, *, show_tokens: bool = False) -> str:
    """An engine's suspend reason for people: ISO times as ``fmt_time``, tokens masked."""
    text = _ISO.sub(lambda m: fmt_time(datetime.fromisoformat(m[0])), text)
    return mask_tokens_in(text, show=show_tokens)


def _first_line(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


# --- what an execution waits for --------------------------------------------------------------


@dataclass(frozen=True)
class PendingWait:
    """One thing a suspended execution is waiting for."""

    kind: str
    """``timer``, ``retry``, ``poll``, ``callback`` or ``invoke``."""
    name: str
    """The operation's name."""
    until: datetime | None
    """When it is due (timer end, retry/poll time, callback deadline), if it has a time."""
    token: str | None = None
    """For a callback: the full token to complete it with."""
    detail: str = ""
    """Extra words: ``attempt 3``, a callback's deadlines, an invoked execution's id."""
    privileged: bool = False
    """For a callback: only its owner's API completes it (``durable callback`` refuses it)."""

    @property
    def is_timed(self) -> bool:
        """True if only the passing of time ends this wait (fast-forward may skip it)."""
        return self.kind in ("timer", "retry", "poll")

    @property
    def skip_label(self) -> str:
        """What ``run --fast-forward`` says it skips: ``timer 'cool-off'``, ..."""
        if self.kind == "timer":
            return f"timer {self.name!r}"
        if self.kind == "retry":
            return f"retry delay of step {self.name!r} ({self.detail})"
        return f"delay before the next poll of condition {self.name!r}"

    def describe(self, *, show_tokens: bool = False) -> str:
        """One line: ``timer 'cool-off' until 2026-11-24T03:00:00Z``."""
        if self.kind == "timer":
            return f"timer {self.name!r} until {fmt_time(self.until)}"
        if self.kind == "retry":
            return f"retry of step {self.name!r} ({self.detail}) at {fmt_time(self.until)}"
        if self.kind == "poll":
            return f"next poll of condition {self.name!r} at {fmt_time(self.until)}"
        if self.kind == "callback":
            token = mask_token(self.token, show=show_tokens)
            access = ", privileged: only its owner's API completes it" if self.privileged else ""
            return f"callback {self.name!r} (token {token}{access}){self.detail}"
        return f"invoked execution {self.detail} ({self.name!r})"


def pending_waits(ops: Sequence[Operation]) -> list[PendingWait]:
    """What the unfinished operations of a journal wait for, earliest first."""
    found: list[PendingWait] = []
    for op in ops:
        name = op.name or op.id
        if op.type is OperationType.WAIT and op.status is OperationStatus.STARTED:
            found.append(PendingWait("timer", name, op.scheduled_end))
        elif op.type is OperationType.STEP and op.status is OperationStatus.PENDING:
            if op.sub_type == CONDITION_SUB_TYPE:
                found.append(PendingWait("poll", name, op.next_attempt_at))
            else:
                found.append(
                    PendingWait(
                        "retry", name, op.next_attempt_at, detail=f"attempt {op.attempt + 1}"
                    )
                )
        elif op.type is OperationType.CALLBACK and op.status is OperationStatus.STARTED:
            times = [t for t in (op.timeout_at, op.heartbeat_deadline) if t is not None]
            detail = "".join(
                f", {label} {fmt_time(t)}"
                for label, t in (
                    ("heartbeat due by", op.heartbeat_deadline),
                    ("times out at", op.timeout_at),
                )
                if t is not None
            )
            found.append(
                PendingWait(
                    "callback",
                    name,
                    min(times) if times else None,
                    token=op.callback_id,
                    detail=detail,
                    privileged=bool(op.privileged),
                )
            )
        elif op.type is OperationType.CHAINED_INVOKE and op.status is OperationStatus.STARTED:
            found.append(
                PendingWait("invoke", name, None, detail=op.child_execution_id or "(not started)")
            )
    return sorted(found, key=lambda w: w.until.timestamp() if w.until else float("inf"))


# --- the timeline -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    """An operation placed in the code's order: its position path and nesting depth."""

    op: Operation
    position: str
    """``2`` for the second operation of the function, ``4.1`` for the first inside op 4."""
    depth: int
    """0 at the top level, 1 inside a child context, ..."""


def timeline(ops: Sequence[Operation]) -> list[TimelineEntry]:
    """Order ``ops`` as the code allocated them: depth-first, children under their parent.

    Positions are recovered from the deterministic ids, so concurrent branches appear in
    branch order even if they were written interleaved.
    """
    by_parent: dict[str | None, list[Operation]] = {}
    ids = {op.id for op in ops}
    for op in ops:
        parent = op.parent_id if op.parent_id in ids else None
        by_parent.setdefault(parent, []).append(op)
    entries: list[TimelineEntry] = []
    placed: set[str] = set()

    def walk(parent: str | None, prefix: str, depth: int) -> None:
        children = by_parent.get(parent, [])
        order = {operation_id(parent, n): n for n in range(1, 2 * len(children) + 16)}
        known = sorted((c for c in children if c.id in order), key=lambda c: order[c.id])
        unknown = [c for c in children if c.id not in order]
        for child in [*known, *unknown]:
            n = order.get(child.id)
            pos = "?" if n is None else (f"{prefix}.{n}" if prefix else str(n))
            entries.append(TimelineEntry(child, pos, depth))
            placed.add(child.id)
            walk(child.id, pos, depth + 1)

    walk(None, "", 0)
    entries.extend(TimelineEntry(op, "?", 0) for op in ops if op.id not in placed)
    return entries


def _kind(op: Operation) -> str:
    if op.sub_type and op.sub_type != _DEFAULT_SUB_TYPES.get(op.type):
        return f"{op.type.value}/{op.sub_type}"
    return op.type.value


def render_operation(entry: TimelineEntry, *, show_tokens: bool = False) -> list[str]:
    """Lines for one operation: a summary line, then indented detail lines."""
    op = entry.op
    pad = "    " * entry.depth
    head = f"{pad}{entry.position}. {_kind(op)} {op.name or op.id!r} {op.status.value}"
    if op.type is OperationType.STEP and op.attempt:
        head += f" (attempt {op.attempt})"
    when = f"started {fmt_time(op.started_at)}"
    if op.ended_at is not None:
        when += f", ended {fmt_time(op.ended_at)}"
        if op.started_at is not None:
            when += f" ({fmt_duration(op.ended_at - op.started_at)})"
    lines = [head, f"{pad}     {when}"]
    more = _details(op, show_tokens=show_tokens)
    if more:
        lines.append(f"{pad}     " + "; ".join(more))
    if op.error is not None:
        label = "last error" if op.status is OperationStatus.PENDING else "error"
        message = _first_line(op.error.message)
        lines.append(f"{pad}     {label}: {op.error.type}: {message}")
    if op.result is not None and op.status is OperationStatus.SUCCEEDED:
        lines.append(f"{pad}     result: {short_json(op.result)}")
    return lines


def _details(op: Operation, *, show_tokens: bool) -> list[str]:
    """The times, token, child and request an operation carries, for its detail line."""
    more: list[str] = []
    if op.scheduled_end is not None:
        more.append(f"wait until {fmt_time(op.scheduled_end)}")
    if op.next_attempt_at is not None and op.status is OperationStatus.PENDING:
        what = "next poll" if op.sub_type == CONDITION_SUB_TYPE else f"retry {op.attempt + 1}"
        more.append(f"{what} due {fmt_time(op.next_attempt_at)}")
    if op.callback_id is not None:
        access = " (privileged)" if op.privileged else ""
        more.append(f"token {mask_token(op.callback_id, show=show_tokens)}{access}")
    if op.timeout_at is not None:
        more.append(f"times out {fmt_time(op.timeout_at)}")
    if op.heartbeat_deadline is not None and op.status is OperationStatus.STARTED:
        more.append(f"heartbeat due {fmt_time(op.heartbeat_deadline)}")
    if op.child_execution_id is not None:
        more.append(f"child execution {op.child_execution_id}")
    if op.id == FAIL_OPERATION_ID and op.payload is not None:
        more.append(_fail_request(op.payload))
    return more


def _fail_request(payload: str) -> str:
    """An operator's fail request, for people (see ``durable_core.parking``)."""
    try:
        request = FailRequest.model_validate_json(payload)
    except ValueError:
        return "fail request (unreadable)"
    where = f"raised at position {request.position}" if request.position else "not raised yet"
    left = f"; NOT undone (unknown to the code): {', '.join(request.left_behind)}"
    return f"failed by {request.actor or 'an operator'}: {request.reason!r}; {where}" + (
        left if request.left_behind else ""
    )


def render_operations(
    ops: Sequence[Operation],
    *,
    render: Callable[[TimelineEntry], list[str]] | None = None,
    show_tokens: bool = False,
) -> list[str]:
    """The journal as timeline lines, using ``render`` for each operation.

    The default renderer is :func:`render_operation` (with ``show_tokens``); a custom one
    decides for itself how it shows tokens.
    """
    each = render or partial(render_operation, show_tokens=show_tokens)
    lines: list[str] = []
    for entry in timeline(ops):
        lines.extend(each(entry))
    return lines


def render_execution(
    ex: Execution,
    ops: Sequence[Operation],
    *,
    render: Callable[[TimelineEntry], list[str]] | None = None,
    show_tokens: bool = False,
) -> str:
    """The full ``durable show`` text: a header about the execution, then its timeline."""
    rows = [
        ("execution", ex.id),
        ("function", ex.function + (f" (version {ex.version})" if ex.version else "")),
        ("status", ex.status.value),
        ("created", fmt_time(ex.created_at)),
        ("updated", fmt_time(ex.updated_at)),
        ("input", short_json(ex.input)),
    ]
    if ex.status is ExecutionStatus.SUCCEEDED:
        rows.append(("result", short_json(ex.result)))
    if ex.error is not None:
        rows.append(("error", f"{ex.error.type}: {_first_line(ex.error.message)}"))
    if is_parked(ex):
        rows.append(("parked", tidy_reason(ex.waiting_for or "-", show_tokens=show_tokens)))
        rows.append(("next run", fmt_time(ex.wake_at) if ex.wake_at else "on `durable retry`"))
    elif ex.status is ExecutionStatus.RUNNING:
        reason = tidy_reason(ex.waiting_for or "a worker to run it", show_tokens=show_tokens)
        # Made due by a signal (retry, fail, a callback): the journal's waits are stale then.
        due = ex.wake_at is not None and ex.wake_at <= ex.updated_at
        waits = [] if due else [w.describe(show_tokens=show_tokens) for w in pending_waits(ops)]
        rows.append(("waiting for", "; ".join(waits) or reason))
        nxt = f"due now (since {fmt_time(ex.wake_at)})" if due else fmt_time(ex.wake_at)
        rows.append(("next run", nxt if ex.wake_at else "on an external event"))
    for req in ex.stop_requests:
        who = f" by {req.actor}" if req.actor else ""
        rows.append(
            (f"{req.kind.value} requested", f"{fmt_time(req.requested_at)}{who}: {req.reason}")
        )
    if ex.deadline is not None:
        rows.append(("deadline", fmt_time(ex.deadline)))
    if ex.lease_owner is not None:
        rows.append(("lease", f"{ex.lease_owner} until {fmt_time(ex.lease_expires)}"))
    if ex.parent_execution_id is not None:
        rows.append(("parent", ex.parent_execution_id))
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    lines.append("")
    lines.append(f"operations ({len(ops)}):" if ops else "operations: none recorded yet")
    shown = render_operations(ops, render=render, show_tokens=show_tokens)
    lines.extend("  " + line for line in shown)
    return "\n".join(lines)


def execution_json(
    ex: Execution, ops: Sequence[Operation], *, show_tokens: bool = False
) -> dict[str, Any]:
    """``durable show --json``: the raw records, tokens masked unless ``show_tokens``.

    A masked ``callback_id`` ends in ``…`` (see :func:`mask_token`); everything else is the
    record as stored.
    """
    execution = ex.model_dump(mode="json")
    if execution.get("waiting_for"):
        execution["waiting_for"] = mask_tokens_in(execution["waiting_for"], show=show_tokens)
    operations = []
    for op in ops:
        record = op.model_dump(mode="json")
        if op.callback_id is not None:
            record["callback_id"] = mask_token(op.callback_id, show=show_tokens)
        operations.append(record)
    return {"execution": execution, "operations": operations}


def _failed_step(ex: Execution, ops: Sequence[Operation]) -> str:
    """The execution's error message, naming the step it came from when a step failed for
    good (a StepFailedError's message is the original exception's alone)."""
    assert ex.error is not None
    if not ex.error.type.endswith("StepFailedError"):
        return ex.error.message
    for op in reversed(ops):
        failed = op.type is OperationType.STEP and op.status is OperationStatus.FAILED
        if failed and op.error and op.error.message == ex.error.message:
            return (
                f"step {op.name!r} failed after {op.attempt} attempt(s): "
                f"{op.error.type}: {op.error.message}"
            )
    return ex.error.message


def render_outcome(
    ex: Execution,
    ops: Sequence[Operation],
    *,
    command: str,
    held_elsewhere: bool,
    show_tokens: bool = False,
) -> list[str]:
    """What ``durable run`` prints when it stops: the outcome, or what the execution waits for.

    Args:
        ex: the execution as it stands.
        ops: its journal (what it waits for while RUNNING, the step that failed it).
        command: how to invoke ``durable`` on the same store, for the printed hints.
        held_elsewhere: another worker holds its lease right now.
        show_tokens: print callback tokens in full (``--show-tokens``); masked otherwise.
    """
    if ex.status is ExecutionStatus.SUCCEEDED:
        value = json.dumps(json.loads(ex.result or "null"), indent=2, ensure_ascii=False)
        return ["SUCCEEDED", value]
    if ex.status.is_terminal:
        err = f"{ex.error.type}: {_failed_step(ex, ops)}" if ex.error else "(no error recorded)"
        return [f"{ex.status.value}: {err}", f"the history: {command} show {ex.id}"]
    if held_elsewhere:
        return [
            f"RUNNING: worker {ex.lease_owner} is running it now (lease until "
            f"{fmt_time(ex.lease_expires)}); follow it with '{command} show {ex.id}'"
        ]
    if is_parked(ex):
        return [f"PARKED: {tidy_reason(ex.waiting_for or 'parked')}"]
    waits = pending_waits(ops)
    resume = f"run '{command} worker' to resume it"
    if not waits:
        when = f" (next run {fmt_time(ex.wake_at)})" if ex.wake_at else ""
        reason = tidy_reason(ex.waiting_for or "waiting", show_tokens=show_tokens)
        return [f"SUSPENDED: {reason}{when} — {resume}"]
    if len(waits) == 1 and waits[0].kind != "callback":
        return [f"SUSPENDED: waiting for {waits[0].describe()} — {resume}"]
    lines = ["SUSPENDED: waiting for"]
    hidden = False
    for w in waits:
        lines.append(f"  - {w.describe(show_tokens=show_tokens)}")
        if w.kind == "callback" and w.token is not None and not w.privileged:
            token = shlex.quote(w.token) if show_tokens else "<TOKEN>"
            hidden = hidden or not show_tokens
            lines.append(
                f"      complete it: {command} callback succeed {token} --payload '<JSON>'"
            )
            lines.append(f"      or fail it:  {command} callback fail {token} --message '<why>'")
    if hidden:
        lines.append(f"tokens are hidden; print them with: {command} show {ex.id} --show-tokens")
    lines.append(f"then {resume}")
    return lines


def render_table(executions: Sequence[Execution]) -> str:
    """The ``durable list`` table: id, function, status, created, waiting for."""
    header = ("ID", "FUNCTION", "STATUS", "CREATED", "WAITING FOR")
    rows = [header]
    for ex in executions:
        waiting = (ex.waiting_for or "-") if ex.status is ExecutionStatus.RUNNING else "-"
        waiting = tidy_reason(waiting)
        rows.append(
            (ex.id, ex.function, ex.status.value, fmt_time(ex.created_at), _first_line(waiting, 60))
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in rows
    )
