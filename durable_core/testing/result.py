"""What a test run reports: the execution's state and its journal, easy to assert on.

Invariants:
- A :class:`TestResult` is a snapshot taken when the runner stopped driving; it never
  changes afterwards (run or resume again for a newer one).
- ``TestResult.result`` is deserialized with the durable function's result type, so a
  pydantic model comes back as that model; :attr:`RecordedOperation.result` is the plain
  JSON value recorded for one operation.
- Looking up an operation that is not in the journal raises
  :class:`OperationNotFoundError` listing the names that are there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from durable_core.errors import DurableError, ValidationError
from durable_core.records import (
    ErrorInfo,
    Execution,
    ExecutionStatus,
    Operation,
    OperationStatus,
    OperationType,
)


class OperationNotFoundError(DurableError, KeyError):
    """No operation of the asked type and name is in the journal."""

    def __init__(self, message: str, *, name: str) -> None:
        super().__init__(message)
        self.name = name

    def __str__(self) -> str:  # KeyError would show the message quoted
        return str(self.args[0])


@dataclass(frozen=True)
class RecordedOperation:
    """One journal record with conveniences for assertions.

    The raw record is ``record``; the properties below read it.
    """

    record: Operation
    """The journal record as the store holds it."""

    @property
    def id(self) -> str:
        """The deterministic operation id."""
        return self.record.id

    @property
    def parent_id(self) -> str | None:
        """The enclosing child context's id (``None`` at the top level)."""
        return self.record.parent_id

    @property
    def name(self) -> str | None:
        """The operation's name."""
        return self.record.name

    @property
    def type(self) -> OperationType:
        """STEP, WAIT, CALLBACK, CONTEXT, ..."""
        return self.record.type

    @property
    def sub_type(self) -> str | None:
        """Step, WaitForCondition, Wait, Callback, RunInChildContext, WaitForCallback, ..."""
        return self.record.sub_type

    @property
    def status(self) -> OperationStatus:
        """Where the operation is in its life."""
        return self.record.status

    @property
    def attempt(self) -> int:
        """The step's attempt number (the poll count of a condition)."""
        return self.record.attempt

    @property
    def error(self) -> ErrorInfo | None:
        """The recorded error, if the operation failed (or an attempt did)."""
        return self.record.error

    @property
    def result(self) -> Any:
        """The recorded result as plain JSON data (``None`` if there is none)."""
        return _json(self.record.result)

    @property
    def payload(self) -> Any:
        """The recorded input as plain JSON data (a condition's last checkpointed state)."""
        return _json(self.record.payload)

    @property
    def started_at(self) -> datetime | None:
        """When the operation started."""
        return self.record.started_at

    @property
    def ended_at(self) -> datetime | None:
        """When it finished."""
        return self.record.ended_at

    @property
    def next_attempt_at(self) -> datetime | None:
        """When a PENDING retry or poll is due."""
        return self.record.next_attempt_at

    @property
    def scheduled_end(self) -> datetime | None:
        """When a wait ends."""
        return self.record.scheduled_end

    @property
    def timeout_at(self) -> datetime | None:
        """When a callback times out."""
        return self.record.timeout_at

    @property
    def heartbeat_deadline(self) -> datetime | None:
        """When a callback times out unless it gets a heartbeat."""
        return self.record.heartbeat_deadline

    @property
    def token(self) -> str:
        """A callback's token (what an external system passes to complete it).

        Raises:
            ValidationError: the operation is not a callback.
        """
        if self.record.callback_id is None:
            raise ValidationError(
                f"operation {self.name!r} is a {self.type.value}, not a callback; it has no token"
            )
        return self.record.callback_id


def _json(text: str | None) -> Any:
    """A recorded value as data; a custom serializer's text that is not JSON, as its text."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class TestResult:
    """The state of an execution when the test runner stopped driving it."""

    __test__ = False  # not a pytest test class, despite the name

    execution: Execution
    """The execution record."""
    operations: list[RecordedOperation]
    """The journal, in first-write order (child context operations included)."""
    result: Any
    """The function's return value, deserialized with its result type (SUCCEEDED only)."""

    @property
    def execution_id(self) -> str:
        """The execution's id."""
        return self.execution.id

    @property
    def status(self) -> ExecutionStatus:
        """RUNNING (waiting for an event), SUCCEEDED, FAILED or CANCELLED."""
        return self.execution.status

    @property
    def error(self) -> ErrorInfo | None:
        """Why the execution FAILED or was CANCELLED."""
        return self.execution.error

    @property
    def wake_at(self) -> datetime | None:
        """When a RUNNING execution is next due (``None``: it waits for an event)."""
        return self.execution.wake_at

    @property
    def waiting_for(self) -> str | None:
        """What a RUNNING execution waits for, in words."""
        return self.execution.waiting_for

    def get_operation(self, name: str, type_: OperationType | None = None) -> RecordedOperation:
        """The first recorded operation called ``name`` (optionally of type ``type_``).

        Raises:
            OperationNotFoundError: none is recorded; the message lists the recorded ones.
        """
        for op in self.operations:
            if op.name == name and (type_ is None or op.type is type_):
                return op
        kind = type_.value.lower() if type_ is not None else "operation"
        known = sorted(
            {
                f"{op.name} ({op.type.value})"
                for op in self.operations
                if type_ is None or op.type is type_
            }
        )
        raise OperationNotFoundError(
            f"no {kind} named {name!r} in the journal of execution {self.execution_id!r}; "
            f"recorded: {', '.join(known) or 'nothing'}",
            name=name,
        )

    def get_step(self, name: str) -> RecordedOperation:
        """The step (or wait_for_condition) called ``name``."""
        return self.get_operation(name, OperationType.STEP)

    def get_wait(self, name: str) -> RecordedOperation:
        """The wait called ``name``."""
        return self.get_operation(name, OperationType.WAIT)

    def get_callback(self, name: str) -> RecordedOperation:
        """The callback called ``name``, or the one of ``wait_for_callback(name, ...)`` (its
        ``token`` completes it)."""
        from durable_core._context_base import CALLBACK_SUFFIX

        waiting = f"{name}{CALLBACK_SUFFIX}"
        if any(op.name == waiting and op.type is OperationType.CALLBACK for op in self.operations):
            return self.get_operation(waiting, OperationType.CALLBACK)
        return self.get_operation(name, OperationType.CALLBACK)

    def get_context(self, name: str) -> RecordedOperation:
        """The child context (or wait_for_callback) called ``name``."""
        return self.get_operation(name, OperationType.CONTEXT)

    def children(self, parent: RecordedOperation) -> list[RecordedOperation]:
        """The operations recorded directly inside the child context ``parent``."""
        return [op for op in self.operations if op.parent_id == parent.id]
