"""OpenTelemetry for durable executions: one trace per execution, spans, metrics.

Install the extra (``pip install 'durable-saga[otel]'``) and pass the instrumentation to
the runtime or the Lambda handler::

    from durable_core.otel import OpenTelemetryInstrumentation

    otel = OpenTelemetryInstrumentation()          # the global tracer and meter providers
    runtime = Runtime(store, options=RuntimeOptions(instrumentation=[otel]))

The trace of an execution (see ``docs/observability.md`` for every name and attribute):

- Its trace id is derived from the execution id (:func:`trace_id_for`), so every
  invocation — the first, the one a week later after a timer — lands in the same trace.
  The trace's root is the execution's own span context (:func:`execution_context`), which
  no invocation owns: each invocation is a top-level ``durable.invocation`` span in it.
- Inside an invocation: a span per operation attempt that runs (a retried step has one per
  attempt), nested as the operations are (a child context's or branch's operations in its
  span), and a span per phase (``saga.rollback`` with a ``saga.compensation`` span for
  each compensation, the compensation's step attempts inside it). Replayed operations are
  not emitted again; a phase whose operations were all replayed is not emitted.
- While a step's body runs, its span is the current span, so spans the body makes (an
  instrumented HTTP client) nest under it.

Metrics: ``durable.executions.started``, ``durable.executions.finished`` (by status),
``durable.invocations`` (by outcome), ``durable.step.duration`` (seconds, per attempt),
``durable.saga.compensations`` (by outcome) and ``durable.execution.due_lag`` (seconds a
due execution waited before a worker ran it).

Invariants:
- Never recorded: payloads (inputs, results, callback payloads), callback tokens,
  idempotency keys, error messages (unless ``record_error_messages=True``) and
  tracebacks. Names, ids, types, statuses, attempts and error types are.
- Thread-safe: branches report from their own threads; the state of an invocation is
  keyed by its execution id and dropped when the invocation finishes.
"""

from __future__ import annotations

import hashlib
import threading
import time
from contextvars import Token
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from durable_core.errors import ValidationError
from durable_core.instrumentation import (
    ErrorSummary,
    Instrumentation,
    InvocationInfo,
    InvocationOutcome,
    OperationInfo,
    PhaseInfo,
)

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, trace
    from opentelemetry.context import Context
    from opentelemetry.trace import Link, Span, SpanContext, Status, StatusCode, TraceFlags
except ImportError as e:  # pragma: no cover - the extra is installed wherever tests run
    raise ImportError(
        "durable_core.otel needs the OpenTelemetry API: pip install 'durable-saga[otel]'"
    ) from e

__all__ = ["OpenTelemetryInstrumentation", "execution_context", "trace_id_for"]

SCOPE = "durable_core"
"""The instrumentation scope name of the tracer and the meter."""
COMPENSATION_PHASE = "saga.compensation"
"""The phase kind counted in ``durable.saga.compensations`` (what ``saga`` reports)."""


def trace_id_for(execution_id: str) -> int:
    """The trace id of an execution: 128 bits of blake2b of its id (never zero)."""
    digest = hashlib.blake2b(f"durable-trace:{execution_id}".encode(), digest_size=16).digest()
    return int.from_bytes(digest, "big") or 1


def execution_context(execution_id: str) -> SpanContext:
    """The execution's span context: the parent of every invocation span of its trace.

    Use it to link a span of yours to an execution (``Link(execution_context(id))``).
    """
    digest = hashlib.blake2b(f"durable-span:{execution_id}".encode(), digest_size=8).digest()
    return SpanContext(
        trace_id=trace_id_for(execution_id),
        span_id=int.from_bytes(digest, "big") or 1,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )


@dataclass
class _Open:
    """A span this instrumentation started and has not ended, and what ends it."""

    span: Span
    token: Token[Context] | None = None
    started: float = field(default_factory=time.perf_counter)


@dataclass
class _Invocation:
    """The spans of one running invocation."""

    info: InvocationInfo
    span: Span
    token: Token[Context]
    ops: dict[str, _Open] = field(default_factory=dict)
    phases: dict[int, PhaseInfo] = field(default_factory=dict)
    phase_spans: dict[int, _Open] = field(default_factory=dict)


class OpenTelemetryInstrumentation(Instrumentation):
    """Traces and metrics of durable executions through the OpenTelemetry API."""

    def __init__(
        self,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        record_error_messages: bool = False,
    ) -> None:
        """Args:
        tracer_provider: where spans go (default: the global tracer provider).
        meter_provider: where metrics go (default: the global meter provider).
        record_error_messages: also record errors' messages (user text, which may hold
            data you do not want in telemetry); types are always recorded.
        """
        if not isinstance(record_error_messages, bool):
            raise ValidationError("record_error_messages must be True or False")
        self._tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(SCOPE)
        meter = (meter_provider or metrics.get_meter_provider()).get_meter(SCOPE)
        self._messages = record_error_messages
        self._lock = threading.Lock()
        self._runs: dict[str, _Invocation] = {}
        self._started = meter.create_counter(
            "durable.executions.started", unit="{execution}", description="Executions started"
        )
        self._finished = meter.create_counter(
            "durable.executions.finished",
            unit="{execution}",
            description="Executions finished, by status",
        )
        self._invocations = meter.create_counter(
            "durable.invocations", unit="{invocation}", description="Invocations, by outcome"
        )
        self._step_duration = meter.create_histogram(
            "durable.step.duration", unit="s", description="Duration of one step attempt"
        )
        self._compensations = meter.create_counter(
            "durable.saga.compensations",
            unit="{compensation}",
            description="Saga compensations run, by outcome",
        )
        self._due_lag = meter.create_histogram(
            "durable.execution.due_lag",
            unit="s",
            description="How long a due execution waited before an invocation ran it",
        )

    # --- invocations ----------------------------------------------------------------------

    def invocation_started(self, invocation: InvocationInfo) -> None:
        eid = invocation.execution_id
        parent = trace.set_span_in_context(trace.NonRecordingSpan(execution_context(eid)))
        links = (
            [Link(execution_context(invocation.parent_execution_id))]
            if invocation.parent_execution_id
            else []
        )
        span = self._tracer.start_span(
            "durable.invocation",
            context=parent,
            kind=trace.SpanKind.INTERNAL,
            links=links,
            attributes={
                "durable.execution.id": eid,
                "durable.function": invocation.function,
                "durable.invocation.first": invocation.first,
            },
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        with self._lock:
            self._runs[eid] = _Invocation(invocation, span, token)
        function = {"durable.function": invocation.function}
        if invocation.first:
            self._started.add(1, function)
        lag = invocation.due_lag
        if lag is not None:
            self._due_lag.record(lag.total_seconds(), function)

    def invocation_finished(self, invocation: InvocationInfo, outcome: InvocationOutcome) -> None:
        with self._lock:
            run = self._runs.pop(invocation.execution_id, None)
        if run is None:
            return
        for left in [*run.ops.values(), *run.phase_spans.values()]:  # defensive: never leak
            left.span.end()
        span = run.span
        span.set_attribute("durable.invocation.status", outcome.status)
        if outcome.waiting_for is not None:
            span.set_attribute("durable.waiting_for", outcome.waiting_for)
        if outcome.wake_at is not None:
            span.set_attribute("durable.wake_at", outcome.wake_at.isoformat())
        if outcome.status in ("FAILED", "INTERRUPTED"):
            self._fail(span, outcome.error)
        otel_context.detach(run.token)
        span.end()
        function = {"durable.function": invocation.function}
        self._invocations.add(1, {**function, "durable.invocation.status": outcome.status})
        if outcome.finished:
            self._finished.add(1, {**function, "durable.execution.status": outcome.status})

    # --- operations -----------------------------------------------------------------------

    def operation_started(self, op: OperationInfo) -> None:
        run = self._run(op.execution_id)
        if run is None:
            return
        span = self._tracer.start_span(
            op.name,
            context=trace.set_span_in_context(self._parent(run, op.parent_id, op.phase_id)),
            attributes=_op_attributes(op),
        )
        token = None
        if op.type == "STEP":  # the body runs next, on this thread or a copy of its context
            token = otel_context.attach(trace.set_span_in_context(span))
        with self._lock:
            run.ops[op.operation_id] = _Open(span, token)

    def operation_retried(
        self, op: OperationInfo, error: ErrorSummary, next_attempt_at: datetime | None
    ) -> None:
        opened = self._close(op)
        if opened is None:
            return
        opened.span.set_attribute("durable.operation.status", "RETRIED")
        if next_attempt_at is not None:
            opened.span.set_attribute("durable.next_attempt_at", next_attempt_at.isoformat())
        self._fail(opened.span, error)
        self._end(op, opened, "RETRIED")

    def operation_suspended(
        self, op: OperationInfo, waiting_for: str, wake_at: datetime | None
    ) -> None:
        opened = self._close(op)
        if opened is None:
            return
        opened.span.set_attribute("durable.operation.status", "SUSPENDED")
        opened.span.set_attribute("durable.waiting_for", waiting_for)
        self._end(op, opened, "SUSPENDED")

    def operation_ended(self, op: OperationInfo, status: str, error: ErrorSummary | None) -> None:
        opened = self._close(op)
        if opened is None:  # it ended between attempts (a stop after a retry): mark the end
            run = self._run(op.execution_id)
            if run is None:
                return
            span = self._tracer.start_span(
                op.name,
                context=trace.set_span_in_context(self._parent(run, op.parent_id, op.phase_id)),
                attributes=_op_attributes(op),
            )
            opened = _Open(span)
        opened.span.set_attribute("durable.operation.status", status)
        if status in ("FAILED", "TIMED_OUT", "INTERRUPTED"):
            self._fail(opened.span, error)
        self._end(op, opened, status)

    # --- phases ---------------------------------------------------------------------------

    def phase_started(self, phase: PhaseInfo) -> None:
        run = self._run(phase.execution_id)
        if run is not None:
            with self._lock:
                run.phases[phase.phase_id] = phase  # its span is made when something runs

    def phase_ended(
        self, phase: PhaseInfo, outcome: str, error: ErrorSummary | None, replayed: bool
    ) -> None:
        run = self._run(phase.execution_id)
        if run is None:
            return
        with self._lock:
            run.phases.pop(phase.phase_id, None)
            opened = run.phase_spans.pop(phase.phase_id, None)
        if replayed or opened is None:
            return
        opened.span.set_attribute("durable.phase.outcome", outcome)
        if outcome == "failed":
            self._fail(opened.span, error)
        opened.span.end()
        if phase.kind == COMPENSATION_PHASE:
            counted = {"ok": "succeeded"}.get(outcome, outcome)
            self._compensations.add(1, {"saga.compensation.outcome": counted})

    # --- helpers --------------------------------------------------------------------------

    def _run(self, execution_id: str) -> _Invocation | None:
        with self._lock:
            return self._runs.get(execution_id)

    def _parent(self, run: _Invocation, parent_id: str | None, phase_id: int | None) -> Span:
        """The span a new span nests in: its phase's, its enclosing operation's, or the
        invocation's."""
        if phase_id is not None:
            span = self._phase_span(run, phase_id)
            if span is not None:
                return span
        with self._lock:
            opened = run.ops.get(parent_id) if parent_id is not None else None
        return opened.span if opened is not None else run.span

    def _phase_span(self, run: _Invocation, phase_id: int) -> Span | None:
        """The span of an open phase, made now if nothing ran in it yet."""
        with self._lock:
            opened = run.phase_spans.get(phase_id)
            phase = run.phases.get(phase_id)
        if opened is not None:
            return opened.span
        if phase is None:
            return None
        parent = self._parent(run, phase.parent_id, phase.parent_phase_id)
        span = self._tracer.start_span(
            f"{phase.kind} {phase.name}".strip(),
            context=trace.set_span_in_context(parent),
            attributes={
                "durable.execution.id": phase.execution_id,
                "durable.phase.kind": phase.kind,
                "durable.phase.name": phase.name,
                **phase.attributes,
            },
        )
        with self._lock:
            run.phase_spans[phase_id] = _Open(span)
        return span

    def _close(self, op: OperationInfo) -> _Open | None:
        run = self._run(op.execution_id)
        if run is None:
            return None
        with self._lock:
            return run.ops.pop(op.operation_id, None)

    def _end(self, op: OperationInfo, opened: _Open, status: str) -> None:
        if opened.token is not None:
            otel_context.detach(opened.token)
        opened.span.end()
        if op.type == "STEP":
            self._step_duration.record(
                time.perf_counter() - opened.started,
                {
                    "durable.operation.name": op.name,
                    "durable.operation.sub_type": op.sub_type or "",
                    "durable.operation.status": status,
                },
            )

    def _fail(self, span: Span, error: ErrorSummary | None) -> None:
        if error is None:
            span.set_status(Status(StatusCode.ERROR))
            return
        span.set_attribute("error.type", error.type)
        text = f"{error.type}: {error.message}" if self._messages else error.type
        span.set_status(Status(StatusCode.ERROR, text))


def _op_attributes(op: OperationInfo) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {
        "durable.execution.id": op.execution_id,
        "durable.operation.id": op.operation_id,
        "durable.operation.name": op.name,
        "durable.operation.type": op.type,
        "durable.operation.position": op.position,
        "durable.operation.attempt": op.attempt,
    }
    if op.sub_type is not None:
        attributes["durable.operation.sub_type"] = op.sub_type
    return attributes
