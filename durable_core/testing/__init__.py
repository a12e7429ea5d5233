"""Testing kit: run durable functions in-process on a virtual clock, and prove them safe.

- :class:`VirtualClock`: time moves only when told; a 30-day wait passes instantly.
- :class:`DurableTestRunner`: start and drive an execution on the real runtime, send
  callbacks, cancel, inspect the journal (:class:`TestResult`); ``always_replay=True``
  restarts the function after every checkpoint write.
- :func:`check_crash_safety`: kill the worker before and after every checkpoint write and
  check that a new worker finishes the execution the same way (:class:`CrashReport`).
- A pytest plugin (loaded automatically) with the fixtures ``virtual_clock``,
  ``memory_store`` and ``durable_runner``, and the option ``--durable-always-replay``.
"""

from durable_core.testing._stores import CrashPoint
from durable_core.testing.clock import VirtualClock
from durable_core.testing.crash import CrashBoundary, CrashReport, check_crash_safety
from durable_core.testing.result import OperationNotFoundError, RecordedOperation, TestResult
from durable_core.testing.runner import (
    CallbackFailure,
    DurableTestRunner,
    RunawayExecutionError,
)

__all__ = [
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
