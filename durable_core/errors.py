"""Every error durable_core raises, and the control-flow signals it uses.

Invariants:
- Errors derive from :class:`DurableError` (an ``Exception``) and carry the context a user
  needs to act: execution id, operation name, attempt.
- Control-flow signals derive from ``BaseException`` so that a user's ``except Exception``
  cannot swallow them. User code must never catch them.
- This module imports nothing from the rest of the package.
"""

from __future__ import annotations

from datetime import datetime


class DurableError(Exception):
    """Base class of every error raised by durable_core."""


# --- usage errors (raised at the call, nothing recorded) -----------------------------------


class ValidationError(DurableError, ValueError):
    """An argument given to the library is invalid (empty name, duration out of range, ...)."""


class InvalidDurationError(ValidationError):
    """A duration is outside the range an operation accepts."""


class SerializationError(DurableError):
    """A value could not be serialized or deserialized for the journal.

    Names the operation whose value is at fault.
    """

    def __init__(self, message: str, *, operation: str | None = None) -> None:
        super().__init__(message)
        self.operation = operation


class PayloadTooLargeError(SerializationError):
    """A serialized value exceeds the configured size limit."""


class FunctionNotFoundError(DurableError, LookupError):
    """A durable function name could not be resolved to a function."""


class FunctionNotRegisteredError(FunctionNotFoundError):
    """A name is neither registered with the runtime nor under an allowed module prefix.

    Raised before anything is imported: a store record names what a worker runs, so a
    worker runs only functions it was given (``Runtime(functions=...)``, ``durable worker
    --import``) or that live under a prefix it was told to trust (``allowed_modules``).
    """


# --- store / execution state ---------------------------------------------------------------


class StoreError(DurableError):
    """The store failed or holds data this version cannot use."""


class CorruptRecordError(StoreError):
    """A journal row read back from the store does not parse."""


class SchemaVersionError(StoreError):
    """The store was written by a newer (or unknown) schema version."""


class ExecutionNotFoundError(DurableError, LookupError):
    """No execution with the given id exists in the store."""

    def __init__(self, execution_id: str) -> None:
        super().__init__(
            f"No execution with id {execution_id!r} in this store. "
            "Check the id (`durable list` shows known executions) and the --store path."
        )
        self.execution_id = execution_id


class ExecutionConflictError(DurableError):
    """An execution id is already used by a different function or input."""


class LeaseLostError(DurableError):
    """Another worker took over this execution; this invocation must stop writing.

    Raised when a write is fenced off: the lease token held by this invocation is stale.
    """


class ExecutionNotRunningError(DurableError):
    """An action needs a running execution but it has already finished."""


class VersionMismatchError(DurableError):
    """An execution started under one code version is resumed by another."""


class ExecutionNotParkedError(DurableError):
    """``retry`` or ``fail`` was asked of an execution that is not parked.

    Only a parked execution (non-determinism, function not registered or not found,
    version mismatch) waits for an operator; use ``cancel`` for one that is running.
    """


class OperatorFailedError(DurableError):
    """An operator failed a parked execution (``durable fail``, ``Runtime.fail``).

    Raised into the function at the position where its replay diverged (or, if the code no
    longer diverges, at its next operation), on the first run and on every replay. It is an
    ordinary exception: a plain function ends FAILED with it, a saga compensates the steps it
    completed before that position.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        actor: str | None = None,
        left_behind: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.actor = actor
        self.left_behind = left_behind
        """Steps the old code recorded at or after the divergent position: unknown to the
        code that fails, so not undone (named in the message too)."""


# --- callbacks ------------------------------------------------------------------------------


class CallbackError(DurableError):
    """Base for callback problems."""


class CallbackNotFoundError(CallbackError, LookupError):
    """No callback has this token (forged, mistyped, or from another store)."""


class CallbackAlreadyCompletedError(CallbackError):
    """The callback was already completed, failed or timed out; nothing was changed."""


class PrivilegedCallbackError(CallbackError, PermissionError):
    """The callback is privileged: the generic callback paths may not complete it.

    A callback created with ``ctx.create_callback(..., privileged=True)`` is completed only
    by the program that created it, through ``Runtime.send_privileged_callback_success``
    (a saga's operator callback: through ``saga.operator`` / ``durable-saga``). Holding its
    token is not enough. Nothing was changed.
    """


class CallbackTimeoutError(CallbackError):
    """The callback was not completed (or heartbeated) in time.

    Its message is the reason recorded on the callback (on Lambda's durable service, the
    service's: ``Callback timed out``, ``Callback timed out on heartbeat``); ``name`` is the
    callback's.
    """

    def __init__(self, message: str, *, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


class CallbackFailedError(CallbackError):
    """The external system reported failure for the callback.

    Its message is the caller's ``ErrorMessage`` as sent (``Callback failed`` if it sent
    none), as AWS's SDK raises it; ``name`` is the callback's, ``error_type`` and ``data``
    the caller's ``ErrorType`` and ``ErrorData``.
    """

    def __init__(
        self,
        message: str,
        *,
        name: str | None = None,
        error_type: str | None = None,
        data: str | None = None,
    ) -> None:
        super().__init__(message)
        self.name = name
        self.error_type = error_type
        self.data = data


class CallbackSubmitterError(CallbackError):
    """The submitter step of ``wait_for_callback`` failed for good.

    Its message is the step's error message; ``name`` is the ``wait_for_callback``'s,
    ``error_type`` the qualified name of the submitter's exception; the
    :class:`StepFailedError` is on ``__cause__`` on the first run.
    """

    def __init__(self, message: str, *, name: str | None = None, error_type: str | None = None):
        super().__init__(message)
        self.name = name
        self.error_type = error_type


# --- operation outcomes ---------------------------------------------------------------------


class StepFailedError(DurableError):
    """A step failed for good (its retry policy gave up).

    The same error is raised on the first run and on every replay, rebuilt from the journal.
    Its message is the original exception's, as it is (as AWS's SDK raises its StepError);
    ``step`` is the step's name, ``attempts`` how many ran, ``error_type`` the qualified name
    of the original exception class and ``traceback`` the formatted traceback of the last
    attempt. On the first run the original exception is also on ``__cause__``.
    """

    def __init__(
        self,
        message: str,
        *,
        step: str,
        error_type: str,
        attempts: int,
        traceback: str | None = None,
        execution_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.step = step
        self.error_type = error_type
        self.attempts = attempts
        self.traceback = traceback
        self.execution_id = execution_id


class StepInterruptedError(DurableError):
    """An at-most-once step attempt was started but never finished (the process died).

    The attempt counts as failed; the retry policy decides what happens next.
    """


class StepTimeoutError(DurableError):
    """A step attempt ran past its ``StepConfig.timeout`` and was abandoned.

    The attempt counts as failed and goes to the retry policy like any error. Python cannot
    stop a thread, so the abandoned body may still be running (and may still cause its
    effect): its late result is discarded, never recorded. For an at-most-once step the
    outcome is uncertain, like :class:`StepInterruptedError`.
    """

    def __init__(self, message: str, *, step: str, attempt: int, timeout_s: float) -> None:
        super().__init__(message)
        self.step = step
        self.attempt = attempt
        self.timeout_s = timeout_s


class RecoveryLimitError(DurableError):
    """An execution was recovered after its worker died more often than allowed.

    Raised (and recorded) instead of running the step that was next to run when
    ``RuntimeOptions.max_recovery_attempts`` consecutive recoveries did not end an
    invocation normally: that step fails for good (a saga compensates). An execution that
    keeps killing its worker outside any step is failed with it as a whole.
    """

    def __init__(self, message: str, *, recoveries: int, limit: int) -> None:
        super().__init__(message)
        self.recoveries = recoveries
        self.limit = limit


class ConditionTimeoutError(DurableError):
    """``wait_for_condition`` reached its deadline before the condition held."""


class ChildContextError(DurableError):
    """A child context failed; rebuilt from the journal on replay."""

    def __init__(self, message: str, *, name: str, error_type: str) -> None:
        super().__init__(message)
        self.name = name
        self.error_type = error_type


class InvokeError(DurableError):
    """An invoked durable function failed, was cancelled or timed out.

    Its message is the child's error message as it is (as AWS's SDK raises it);
    ``function`` is the invoked function, ``error_type`` and ``data`` the child's error's
    type (e.g. ``ValueError``, ``ChainedInvoke.Timeout`` on Lambda's durable service) and
    data, ``execution_id`` the child execution's id.
    """

    def __init__(
        self,
        message: str,
        *,
        function: str,
        error_type: str | None = None,
        data: str | None = None,
        execution_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.function = function
        self.error_type = error_type
        self.data = data
        self.execution_id = execution_id


class ExecutionCancelledError(DurableError):
    """The execution was cancelled, its deadline passed, or it was terminated.

    Raised at the next operation boundary after the request (``kind`` says which: ``cancel``,
    ``deadline`` or ``terminate``). It is an ordinary exception so code may clean up (sagas
    compensate); if it escapes the function the execution ends CANCELLED. Operations started
    after it was raised run normally. A terminate raises the subclass
    :class:`ExecutionTerminatedError`.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str = "cancelled",
        kind: str = "cancel",
        attempts: int = 0,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        """The request's free text (for people; it never changes what happens)."""
        self.kind = kind
        """``cancel``, ``deadline`` or ``terminate`` (:class:`durable_core.StopKind`)."""
        self.attempts = attempts
        """Attempts the interrupted operation had made (a step waiting to retry, or an
        at-most-once attempt found unfinished): its effect may have happened. 0 when it was
        delivered before the operation ever ran."""


class ExecutionTerminatedError(ExecutionCancelledError):
    """The execution was terminated: stop now, clean up nothing (sagas do not compensate).

    Delivered at the next operation boundary like a cancellation, also after a cancellation
    was delivered (it stops a rollback in progress).
    """

    durable_outcome = "terminated"
    """How the worker's log names this outcome."""
    durable_hint = "nothing more was cleaned up; what is left: durable show {execution_id}"


class NonDeterminismError(DurableError):
    """The code asked for a different operation than the journal recorded at this position.

    Replaying it would return a result that belongs to another operation, so the invocation
    stops without recording anything more and the execution is *parked*: it stays RUNNING
    with this error recorded, nothing undone. Fix: deploy the code it started with (or a
    fix) and ``durable retry ID``; or ``durable fail ID --reason ...`` (a saga compensates).
    """

    def __init__(
        self,
        *,
        execution_id: str,
        position: str,
        expected: str,
        found: str,
    ) -> None:
        super().__init__(
            f"Non-deterministic replay in execution {execution_id!r} at position {position}: "
            f"expected {expected} (recorded in the journal), but the code asked for {found}. "
            "Code between operations must be deterministic; do not reorder, rename or remove "
            "operations while executions are in flight (pin the code version instead)."
        )
        self.execution_id = execution_id
        self.position = position
        self.expected = expected
        self.found = found


# --- control-flow signals (BaseException: never catch these) -------------------------------


class SuspendExecution(BaseException):
    """Signal: the invocation cannot make progress now and must end PENDING.

    Derived from ``BaseException`` so ``except Exception`` in user code cannot swallow it.
    User code must not catch it.
    """

    def __init__(
        self, reason: str, *, wake_at: datetime | None = None, outcome: str | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wake_at = wake_at
        self.outcome = outcome
        """What the worker's log line calls this wait (default ``waiting``)."""


class ReplayBoundary(BaseException):
    """Signal used by the always-replay test mode to restart the function after a checkpoint.

    User code must not catch it.
    """


class SimulatedCrash(BaseException):
    """Signal injected by the testing kit to simulate a process dying. Never catch it."""
