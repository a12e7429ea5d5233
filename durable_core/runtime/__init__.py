"""Running executions on a self-hosted store: the runtime, its workers, one invocation.

- :mod:`~durable_core.runtime.core` — :class:`Runtime`: start, drive, tick, inspect.
- :mod:`~durable_core.runtime.requests` — callbacks, cancel, terminate (its base class).
- :mod:`~durable_core.runtime.invocation` — one invocation: load, run from the top, end.
- :mod:`~durable_core.runtime.worker` / :mod:`~durable_core.runtime.async_worker` — the
  loops that resume due executions, on threads or as tasks on one event loop.
- :mod:`~durable_core.runtime.async_runtime` — :class:`AsyncRuntime`, the API awaited.
- :mod:`~durable_core.runtime.lease_keeper` — lease renewal for long invocations.
- :mod:`~durable_core.runtime.options` — :class:`RuntimeOptions`.
"""

from durable_core.runtime.core import Runtime
from durable_core.runtime.options import RuntimeOptions, default_actor, default_worker_id

__all__ = ["Runtime", "RuntimeOptions", "default_actor", "default_worker_id"]
