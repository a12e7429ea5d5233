"""durable_core: write crash-proof workflows as plain Python functions.

A durable function takes a :class:`DurableContext` and an event (an ``async def`` one an
:class:`AsyncDurableContext`, whose operations it awaits). Every operation on the context
(step, wait, callback, condition, child context, parallel, map, invoke) is checkpointed;
when the function resumes it runs again from the top and completed operations return their
recorded results.
"""

from durable_core.async_context import AsyncCallback, AsyncDurableContext
from durable_core.clock import Clock, SystemClock
from durable_core.context import DurableContext
from durable_core.errors import (
    CallbackAlreadyCompletedError,
    CallbackError,
    CallbackFailedError,
    CallbackNotFoundError,
    CallbackSubmitterError,
    CallbackTimeoutError,
    ChildContextError,
    ConditionTimeoutError,
    CorruptRecordError,
    DurableError,
    ExecutionCancelledError,
    ExecutionConflictError,
    ExecutionNotFoundError,
    ExecutionNotParkedError,
    ExecutionNotRunningError,
    ExecutionTerminatedError,
    FunctionNotFoundError,
    FunctionNotRegisteredError,
    InvalidDurationError,
    InvokeError,
    LeaseLostError,
    NonDeterminismError,
    OperatorFailedError,
    PayloadTooLargeError,
    PrivilegedCallbackError,
    RecoveryLimitError,
    SchemaVersionError,
    SerializationError,
    StepFailedError,
    StepInterruptedError,
    StepTimeoutError,
    StoreError,
    SuspendExecution,
    ValidationError,
    VersionMismatchError,
)
from durable_core.function import DurableFunction, durable
from durable_core.instrumentation import Instrumentation
from durable_core.operations.batch import (
    BatchError,
    BatchItem,
    BatchItemStatus,
    BatchResult,
    CompletionPolicy,
    CompletionReason,
    Nesting,
)
from durable_core.operations.callback import Callback
from durable_core.operations.step import StepContext
from durable_core.records import (
    ErrorInfo,
    Execution,
    ExecutionStatus,
    Operation,
    OperationStatus,
    OperationType,
    StopKind,
    StopRequest,
)
from durable_core.retry import RetryPolicy, StepConfig, StepSemantics
from durable_core.runtime import Runtime, RuntimeOptions
from durable_core.runtime.async_runtime import AsyncRuntime
from durable_core.runtime.async_worker import AsyncWorker
from durable_core.runtime.worker import Worker
from durable_core.serde import Serializer
from durable_core.stores.base import Store
from durable_core.stores.memory import MemoryStore
from durable_core.stores.sqlite import SQLiteStore

__all__ = [
    "AsyncCallback",
    "AsyncDurableContext",
    "AsyncRuntime",
    "AsyncWorker",
    "BatchError",
    "BatchItem",
    "BatchItemStatus",
    "BatchResult",
    "Callback",
    "CallbackAlreadyCompletedError",
    "CallbackError",
    "CallbackFailedError",
    "CallbackNotFoundError",
    "CallbackSubmitterError",
    "CallbackTimeoutError",
    "ChildContextError",
    "Clock",
    "CompletionPolicy",
    "CompletionReason",
    "ConditionTimeoutError",
    "CorruptRecordError",
    "DurableContext",
    "DurableError",
    "DurableFunction",
    "ErrorInfo",
    "Execution",
    "ExecutionCancelledError",
    "ExecutionConflictError",
    "ExecutionNotFoundError",
    "ExecutionNotParkedError",
    "ExecutionNotRunningError",
    "ExecutionStatus",
    "ExecutionTerminatedError",
    "FunctionNotFoundError",
    "FunctionNotRegisteredError",
    "Instrumentation",
    "InvalidDurationError",
    "InvokeError",
    "LeaseLostError",
    "MemoryStore",
    "Nesting",
    "NonDeterminismError",
    "Operation",
    "OperationStatus",
    "OperationType",
    "OperatorFailedError",
    "PayloadTooLargeError",
    "PrivilegedCallbackError",
    "RecoveryLimitError",
    "RetryPolicy",
    "Runtime",
    "RuntimeOptions",
    "SQLiteStore",
    "SchemaVersionError",
    "SerializationError",
    "Serializer",
    "StepConfig",
    "StepContext",
    "StepFailedError",
    "StepInterruptedError",
    "StepSemantics",
    "StepTimeoutError",
    "StopKind",
    "StopRequest",
    "Store",
    "StoreError",
    "SuspendExecution",
    "SystemClock",
    "ValidationError",
    "VersionMismatchError",
    "Worker",
    "durable",
]
