"""The cap on recoveries after worker deaths (``RuntimeOptions.max_recovery_attempts``).

A worker that dies in the middle of an invocation (``os._exit``, a segfault, the OOM
killer) leaves its lease held; when the lease expires another worker takes it over and
the store counts a recovery (``Execution.recovery_attempts``). An invocation that ends
normally resets the count. A step that kills its worker every time would otherwise be
recovered forever, taking every execution that shares the worker process down with it.

Invariants:
- Recovery ``limit + 1`` (the count past the cap) does not run the step that was next to
  run: that step attempt fails for good with :class:`RecoveryLimitError` (recorded, so a
  saga compensates). One such forced failure per invocation; the count keeps growing if
  the worker still dies.
- Past ``2 * limit`` recoveries the execution is not run at all: it is failed with
  RecoveryLimitError (the worker died outside any step, e.g. while replaying). So one
  crash-looping execution kills its worker at most ``2 * limit + 1`` times in a row, and at
  most ``limit + 1`` times per step.
- This module depends on the journal, errors and the store seam's records only.
"""

from __future__ import annotations

import structlog

from durable_core.errors import RecoveryLimitError, ValidationError
from durable_core.records import ErrorInfo, Execution, ExecutionStatus
from durable_core.stores.base import InvocationEnd

_log = structlog.get_logger("durable.runtime")

DEFAULT_MAX_RECOVERY_ATTEMPTS = 10
"""As DBOS's ``max_recovery_attempts``."""


def check_max_recovery_attempts(value: object, what: str = "max_recovery_attempts") -> int:
    """``value`` if it is a whole number >= 1, else ValidationError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(
            f"{what} must be a whole number of at least 1 (recoveries after a worker death "
            f"before the step is failed), got {value!r}"
        )
    return value


def recovery_limit(execution: Execution, limit: int) -> RecoveryLimitError | None:
    """The error the next step attempt fails with, if ``execution`` is past the cap."""
    count = execution.recovery_attempts
    if count <= limit:
        return None
    return RecoveryLimitError(
        f"execution {execution.id!r} was recovered {count} times in a row after its worker "
        f"died mid-invocation (max_recovery_attempts={limit}); the step that was next to "
        "run is failed instead of run again, so that it cannot take another worker down",
        recoveries=count,
        limit=limit,
    )


def recovery_end(execution: Execution, limit: int) -> InvocationEnd | None:
    """Log a recovery; the end to record instead of running, if past ``2 * limit``.

    Called by the runtime for an execution it just recovered (``recovery_attempts > 0``).
    """
    error = _given_up(execution, limit)
    _log.warning(
        "recovering an execution whose worker died mid-invocation",
        execution_id=execution.id,
        function=execution.function,
        recovery=execution.recovery_attempts,
        max_recovery_attempts=limit,
        giving_up=error is not None,
    )
    if error is None:
        return None
    return InvocationEnd(status=ExecutionStatus.FAILED, error=ErrorInfo.from_exception(error))


def _given_up(execution: Execution, limit: int) -> RecoveryLimitError | None:
    """The error an execution past ``2 * limit`` recoveries is failed with (not run)."""
    count = execution.recovery_attempts
    if count <= 2 * limit:
        return None
    return RecoveryLimitError(
        f"execution {execution.id!r} was recovered {count} times in a row after its worker "
        f"died mid-invocation (max_recovery_attempts={limit}); failing a step did not stop "
        "it (the worker dies outside any step, e.g. while replaying), so it is failed "
        "without running again. Check the worker's logs for the crash.",
        recoveries=count,
        limit=limit,
    )
