"""What a saga writes into the durable_core journal, and how it names it.

A saga adds no record type of its own: everything is an ordinary step or callback, named so
that the status query can read the saga back from the journal alone.

Invariants:
- A forward step is recorded under its saga path (``book-flight``, or ``trip/book-hotel``
  inside the nested saga ``trip``). Paths are unique within an execution.
- ``saga:rollback`` (or ``saga:rollback:<path>`` for a nested saga's own rollback) is a step
  whose result is the :class:`RollbackPlan`: why the rollback started and the steps it will
  compensate, in order. It is written once, before the first compensation.
- ``compensate:<path>`` is the step that runs one undo. It may appear more than once (after
  an operator retry, or after a cancellation was absorbed at its position); the last record
  with that name is the current one.
- ``operator:<path>`` is the callback a parked saga waits on; its payload is an
  :class:`OperatorDecision`, so every operator action is recorded in the journal.
- A terminate is a request of its own kind (``durable_core.StopKind.TERMINATE``), never
  recognised by text: a cancel reason is free text and always compensates.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

COMPENSATE_PREFIX = "compensate:"
OPERATOR_PREFIX = "operator:"
PLAN_NAME = "saga:rollback"
RESERVED_PREFIXES = (COMPENSATE_PREFIX, OPERATOR_PREFIX, "saga:")
PATH_SEPARATOR = "/"


def plan_name(path: str) -> str:
    """The name of the rollback-plan step of the saga at ``path`` ("" for the top level)."""
    return f"{PLAN_NAME}:{path}" if path else PLAN_NAME


def compensate_name(step_path: str) -> str:
    """The name of the step that compensates ``step_path``."""
    return COMPENSATE_PREFIX + step_path


def operator_name(step_path: str) -> str:
    """The name of the callback a saga parks on when ``step_path``'s undo exhausted its policy."""
    return OPERATOR_PREFIX + step_path


class PlanItem(BaseModel):
    """One compensation the rollback will run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step: str
    """The forward step's saga path."""
    key: str
    """The forward step's idempotency key, which the undo receives."""
    uncertain: bool = False
    """True if the forward step did not succeed (its undo was registered with
    ``compensate_uncertain=True``)."""


class RollbackCause(BaseModel):
    """Why a rollback started."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["failure", "cancelled", "deadline"]
    step: str | None = None
    """The saga path of the step that failed, if a step failed."""
    error_type: str
    message: str


class RollbackPlan(BaseModel):
    """The result of the ``saga:rollback`` step."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    saga: str
    cause: RollbackCause
    steps: list[PlanItem] = Field(default_factory=list)


class OperatorDecision(BaseModel):
    """The payload an operator sends to a parked saga (through ``saga.operator``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Literal["retry", "skip", "resolve"]
    reason: str | None = None
    """Why (required for skip); for resolve, the operator's note."""
    actor: str | None = None
    """Who decided (free text, e.g. a user name); recorded for the audit trail."""
    at: datetime | None = None
    """When the operator decided (the runtime clock's time)."""

    @model_validator(mode="after")
    def _reason_given(self) -> OperatorDecision:
        if self.action == "skip" and not (self.reason or "").strip():
            raise ValueError(f"an operator {self.action} needs a non-empty reason")
        return self
