"""Fixtures: a recording instrumentation, and the OpenTelemetry SDK's in-memory exporters."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from durable_core import Instrumentation
from durable_core.instrumentation import (
    ErrorSummary,
    InvocationInfo,
    InvocationOutcome,
    OperationInfo,
    PhaseInfo,
)
from durable_core.otel import OpenTelemetryInstrumentation


class Recorder(Instrumentation):
    """Records every hook call as ``(hook, name, detail)`` (thread-safe: branches report
    from their own threads)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, Any]] = []
        self.ops: list[OperationInfo] = []
        self._lock = threading.Lock()

    def _add(self, hook: str, name: str, detail: Any = None) -> None:
        with self._lock:
            self.events.append((hook, name, detail))

    def invocation_started(self, invocation: InvocationInfo) -> None:
        self._add("invocation_started", invocation.function, invocation.first)

    def invocation_finished(self, invocation: InvocationInfo, outcome: InvocationOutcome) -> None:
        self._add("invocation_finished", invocation.function, outcome.status)

    def operation_started(self, op: OperationInfo) -> None:
        with self._lock:
            self.ops.append(op)
        self._add("operation_started", op.name, op.attempt)

    def operation_retried(
        self, op: OperationInfo, error: ErrorSummary, next_attempt_at: Any
    ) -> None:
        self._add("operation_retried", op.name, (op.attempt, error.type))

    def operation_suspended(self, op: OperationInfo, waiting_for: str, wake_at: Any) -> None:
        self._add("operation_suspended", op.name, waiting_for)

    def operation_ended(self, op: OperationInfo, status: str, error: ErrorSummary | None) -> None:
        self._add("operation_ended", op.name, status)

    def operation_replayed(self, op: OperationInfo, status: str) -> None:
        self._add("operation_replayed", op.name, status)

    def phase_started(self, phase: PhaseInfo) -> None:
        self._add("phase_started", f"{phase.kind} {phase.name}")

    def phase_ended(
        self, phase: PhaseInfo, outcome: str, error: ErrorSummary | None, replayed: bool
    ) -> None:
        self._add("phase_ended", f"{phase.kind} {phase.name}", (outcome, replayed))

    def of(self, hook: str) -> list[tuple[str, Any]]:
        """``(name, detail)`` of every call of ``hook``, in order."""
        return [(n, d) for h, n, d in self.events if h == hook]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@dataclass
class Telemetry:
    """An OpenTelemetryInstrumentation wired to in-memory exporters."""

    instrumentation: OpenTelemetryInstrumentation
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def tree(self) -> list[tuple[int, str]]:
        """``(depth, name)`` of every span, parents before children, siblings by start."""
        spans = self.spans()
        ids = {s.context.span_id for s in spans}
        out: list[tuple[int, str]] = []

        def walk(parent: int | None, depth: int) -> None:
            children = [
                s
                for s in spans
                if (s.parent.span_id if s.parent is not None else None) == parent
                or (parent is None and s.parent is not None and s.parent.span_id not in ids)
            ]
            for s in sorted(children, key=lambda s: s.start_time or 0):
                out.append((depth, s.name))
                walk(s.context.span_id, depth + 1)

        walk(None, 0)
        return out

    def metrics(self) -> dict[str, list[tuple[dict[str, Any], float]]]:
        """Each metric's points: ``(attributes, value or count)``."""
        out: dict[str, list[tuple[dict[str, Any], float]]] = {}
        data = self.reader.get_metrics_data()
        if data is None:
            return out
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    out[m.name] = [
                        (dict(p.attributes or {}), getattr(p, "value", None) or p.count)  # type: ignore[union-attr]
                        for p in m.data.data_points
                    ]
        return out


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Telemetry(
        OpenTelemetryInstrumentation(
            tracer_provider=tracer_provider, meter_provider=meter_provider
        ),
        exporter,
        reader,
    )
    tracer_provider.shutdown()
    meter_provider.shutdown()
