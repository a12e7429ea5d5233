"""saga: compensating sagas on durable_core.

Write a saga as a function (``@saga``) or declare it as data (``Saga("name").step(...)``).
Each step runs as a checkpointed durable_core step and registers its undo; when a step fails
for good, the saga is cancelled or its deadline passes, the undos of the completed steps run
in reverse order, each as its own checkpointed step with its own retry policy. An undo that
keeps failing parks the saga for an operator (``saga.operator``) instead of pretending it
was compensated.

An ``async def`` saga receives an :class:`AsyncSagaContext` and awaits its steps
(``await s.step(...)``); it follows the same rules and writes the same journal as the same
saga written sync.

This package uses only durable_core's public API.
"""

from saga.async_context import AsyncSagaContext
from saga.builder import Saga, SagaStep
from saga.compensation import CompensationContext
from saga.context import SagaContext
from saga.decorator import SagaFunction, saga
from saga.definition import SagaDefinition
from saga.errors import (
    InvalidOperatorActionError,
    SagaCompensated,
    SagaDefinitionError,
    SagaError,
    SagaNotParkedError,
    SagaPartiallyCompensated,
    SagaRolledBackError,
)
from saga.operator import (
    resolve,
    retry_compensation,
    saga_status,
    skip_compensation,
    terminate,
)
from saga.outcome import (
    CompensationReport,
    OperatorActionReport,
    SagaOutcome,
    SagaStatus,
    StepReport,
)
from saga.parallel import SagaBranch
from saga.policy import StepKind, default_compensation_policy

__all__ = [
    "AsyncSagaContext",
    "CompensationContext",
    "CompensationReport",
    "InvalidOperatorActionError",
    "OperatorActionReport",
    "Saga",
    "SagaBranch",
    "SagaCompensated",
    "SagaContext",
    "SagaDefinition",
    "SagaDefinitionError",
    "SagaError",
    "SagaFunction",
    "SagaNotParkedError",
    "SagaOutcome",
    "SagaPartiallyCompensated",
    "SagaRolledBackError",
    "SagaStatus",
    "SagaStep",
    "StepKind",
    "StepReport",
    "default_compensation_policy",
    "resolve",
    "retry_compensation",
    "saga",
    "saga_status",
    "skip_compensation",
    "terminate",
]
