"""``AsyncRuntime``: the runtime's API for an app already on an event loop.

Every method is the :class:`~durable_core.runtime.Runtime` method of the same name,
awaited, and none blocks the loop: store calls run on a thread (``asyncio.to_thread``),
and invocations of ``async def`` durable functions are awaited on the loop itself (a sync
function's invocation runs on a thread). So a FastAPI handler can ``await
runtime.start(...)``, query, signal and cancel executions, and an async worker can advance
many executions that wait on I/O in one process.

Invariants:
- The same records as the sync runtime: the methods delegate to one
  :class:`~durable_core.runtime.Runtime` (its store, functions, clock and options), which
  stays usable from threads at the same time.
- ``run`` and ``drive`` drive one execution to its next wait on a thread (an async
  function on that thread's own loop); a worker advances many at once with ``tick``.
- ``tick`` runs the invocations it claimed concurrently, as tasks; each is finished (its
  outcome recorded, its lease released) before ``tick`` returns, even if one fails; the
  first failure is re-raised after all have ended.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from durable_core.errors import ValidationError
from durable_core.records import Execution, Operation

if TYPE_CHECKING:
    from durable_core.function import DurableFunction
    from durable_core.runtime import Runtime
    from durable_core.runtime.invocation import Reporter


class AsyncRuntime:
    """Awaitable face of a :class:`~durable_core.runtime.Runtime`.

    Example::

        runtime = AsyncRuntime(Runtime(SQLiteStore("durable.sqlite3"), functions=[order]))
        ex = await runtime.start(order, {"order_id": "o-1"}, execution_id="o-1")
        await runtime.send_callback_success(token, {"tracking": "T1"})
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    # --- starting and driving ---------------------------------------------------------------

    async def start(
        self,
        fn: DurableFunction[Any, Any] | Any | str,
        event: Any = None,
        *,
        execution_id: str | None = None,
    ) -> Execution:
        """Create an execution (idempotent by id); a worker runs it (``Runtime.start``)."""
        return await asyncio.to_thread(self.runtime.start, fn, event, execution_id=execution_id)

    async def run(
        self,
        fn: DurableFunction[Any, Any] | Any | str,
        event: Any = None,
        *,
        execution_id: str | None = None,
    ) -> Execution:
        """Start and drive until the execution finishes or waits (``Runtime.run``), on a
        thread (an async function runs on that thread's own loop)."""
        return await asyncio.to_thread(self.runtime.run, fn, event, execution_id=execution_id)

    async def drive(self, execution_id: str) -> Execution:
        """Run invocations while the execution is due now (``Runtime.drive``), on a thread."""
        return await asyncio.to_thread(self.runtime.drive, execution_id)

    async def tick(self, *, limit: int = 16, report: Reporter | None = None) -> int:
        """Claim up to ``limit`` due executions and run them concurrently; how many ran."""
        if limit < 1:
            raise ValidationError(f"limit must be at least 1, got {limit}")
        rt = self.runtime
        leases = await asyncio.to_thread(
            rt.store.claim_due, rt.worker_id, rt.clock.now(), rt.options.lease_ttl, limit
        )
        results = await asyncio.gather(
            *(rt.invoke_async(lease, report) for lease in leases), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return len(leases)

    # --- inspecting ------------------------------------------------------------------------

    async def get(self, execution_id: str) -> Execution:
        """The execution record (``Runtime.get``)."""
        return await asyncio.to_thread(self.runtime.get, execution_id)

    async def operations(self, execution_id: str) -> list[Operation]:
        """The execution's journal (``Runtime.operations``)."""
        return await asyncio.to_thread(self.runtime.operations, execution_id)

    async def result(self, execution_id: str, result_type: Any = None) -> Any:
        """The result of a SUCCEEDED execution (``Runtime.result``)."""
        return await asyncio.to_thread(self.runtime.result, execution_id, result_type)

    # --- signals -----------------------------------------------------------------------------

    async def send_callback_success(self, token: str, result: Any = None) -> Operation:
        """Complete a callback with ``result`` (``Runtime.send_callback_success``)."""
        return await asyncio.to_thread(self.runtime.send_callback_success, token, result)

    async def send_callback_failure(
        self,
        token: str,
        message: str,
        *,
        error_type: str = "CallbackFailure",
        data: str | None = None,
    ) -> Operation:
        """Fail a callback (``Runtime.send_callback_failure``)."""
        return await asyncio.to_thread(
            self.runtime.send_callback_failure, token, message, error_type=error_type, data=data
        )

    async def send_callback_heartbeat(self, token: str) -> Operation:
        """Heartbeat a callback (``Runtime.send_callback_heartbeat``)."""
        return await asyncio.to_thread(self.runtime.send_callback_heartbeat, token)

    async def cancel(
        self, execution_id: str, reason: str | None = None, *, actor: str | None = None
    ) -> Execution:
        """Request a cancellation (``Runtime.cancel``)."""
        return await asyncio.to_thread(self.runtime.cancel, execution_id, reason, actor=actor)

    async def terminate(
        self, execution_id: str, reason: str, *, actor: str | None = None
    ) -> Execution:
        """Request a termination (``Runtime.terminate``)."""
        return await asyncio.to_thread(self.runtime.terminate, execution_id, reason, actor=actor)
