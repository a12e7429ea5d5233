"""The public surface of durable_core is curated: pinned here so changes are deliberate."""

from __future__ import annotations

import durable_core
import durable_core.testing

DURABLE_CORE_ALL = [
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

TESTING_ALL = [
    "CallbackFailure",
    "CrashBoundary",
    "CrashPoint",
    "CrashReport",
    "DurableTestRunner",
    "OperationNotFoundError",
    "RecordedOperation",
    "RunawayExecutionError",
    "TestResult",
    "VirtualClock",
    "check_crash_safety",
]


def test_durable_core_all_is_pinned_and_sorted() -> None:
    assert durable_core.__all__ == DURABLE_CORE_ALL
    assert durable_core.__all__ == sorted(durable_core.__all__)


def test_durable_core_all_names_exist() -> None:
    missing = [name for name in durable_core.__all__ if not hasattr(durable_core, name)]
    assert missing == []


def test_testing_all_is_pinned_sorted_and_importable() -> None:
    assert durable_core.testing.__all__ == TESTING_ALL
    assert durable_core.testing.__all__ == sorted(durable_core.testing.__all__)
    assert all(hasattr(durable_core.testing, name) for name in TESTING_ALL)


def test_errors_derive_from_durable_error() -> None:
    for name in durable_core.__all__:
        obj = getattr(durable_core, name)
        if isinstance(obj, type) and name.endswith("Error"):
            assert issubclass(obj, durable_core.DurableError), name


def test_control_flow_signal_is_not_an_exception() -> None:
    assert not issubclass(durable_core.SuspendExecution, Exception)
