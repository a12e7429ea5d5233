"""The knobs of a :class:`~durable_core.runtime.Runtime`, and who a runtime acts as.

Invariants:
- Options are validated when made: a bad value is a ValidationError naming the option.
- Nothing here reads or writes a store.
"""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from durable_core.errors import ValidationError
from durable_core.function import check_module_prefixes, project_modules
from durable_core.instrumentation import Instrumentation, check_instrumentation
from durable_core.recovery import DEFAULT_MAX_RECOVERY_ATTEMPTS, check_max_recovery_attempts
from durable_core.serde import DEFAULT_MAX_BYTES


@dataclass(frozen=True, kw_only=True)
class RuntimeOptions:
    """Knobs of a runtime."""

    lease_ttl: timedelta = timedelta(seconds=60)
    """How long a worker owns an execution without renewing; a dead worker's executions are
    recovered after this."""
    inline_retry_threshold: timedelta = timedelta(seconds=1)
    """Retry delays up to this sleep in-process; longer ones become durable timers."""
    max_payload_bytes: int = DEFAULT_MAX_BYTES
    """Size limit of one serialized value."""
    version_retry_delay: timedelta = timedelta(minutes=1)
    """How soon an execution refused for a version mismatch is offered to workers again."""
    max_recovery_attempts: int = DEFAULT_MAX_RECOVERY_ATTEMPTS
    """How often in a row an execution is recovered after its worker died mid-invocation
    before the step that was running is failed for good with RecoveryLimitError (a saga
    then compensates); see :mod:`durable_core.recovery`."""
    park_retry_delay: timedelta = timedelta(hours=1)
    """How soon an execution parked for non-determinism or a function this worker cannot
    run is offered to workers again without ``retry``: long enough never to loop, short
    enough that a rolling deploy bringing the right code back resumes it by itself."""
    allowed_modules: tuple[str, ...] = ()
    """Module prefixes a worker may import a ``module:function`` from when a store record
    names a function not registered with it (``"myapp"`` allows ``myapp`` and
    ``myapp.*``). Empty: registered functions only."""
    instrumentation: Sequence[Instrumentation] = ()
    """Observers told about every invocation, operation attempt, retry, suspension and
    replay (:class:`~durable_core.instrumentation.Instrumentation`; e.g.
    :class:`durable_core.otel.OpenTelemetryInstrumentation`). What one raises is logged
    and ignored."""

    def __post_init__(self) -> None:
        check_max_recovery_attempts(self.max_recovery_attempts)
        if self.lease_ttl < timedelta(seconds=1):
            raise ValidationError("lease_ttl must be at least 1 second")
        if self.inline_retry_threshold < timedelta(0):
            raise ValidationError("inline_retry_threshold must not be negative")
        if self.park_retry_delay < timedelta(minutes=1):
            raise ValidationError(
                f"park_retry_delay must be at least 1 minute, got {self.park_retry_delay}"
            )
        object.__setattr__(self, "allowed_modules", check_module_prefixes(self.allowed_modules))
        object.__setattr__(self, "instrumentation", check_instrumentation(self.instrumentation))

    @classmethod
    def for_project(cls, folder: str | None = None, **knobs: Any) -> RuntimeOptions:
        """Options allowing the packages and modules in ``folder`` (default: the current
        directory), as the ``durable`` and ``durable-saga`` commands use by default."""
        return cls(allowed_modules=project_modules(Path(folder or os.getcwd())), **knobs)


def default_actor() -> str:
    """Who acts when no ``actor`` is given (the CLI, operator actions): ``user@host``.

    The user is the login name (``$USER``/``$LOGNAME``, else the account of the process id);
    a process without one is named by its uid.
    """
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (e.g. a bare container)
        user = f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


def default_worker_id() -> str:
    """host:pid:random, unique per process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
