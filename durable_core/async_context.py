"""``AsyncDurableContext``: what an ``async def`` durable function receives.

The same operations as :class:`~durable_core.context.DurableContext`, with the same
arguments, names, ids and journal records, awaited: ``await ctx.step(...)``. Each method
builds its operation through :class:`~durable_core._context_base.ContextBase` (a bad call
raises at once, records nothing) and returns an awaitable that runs it with the async
driver (:func:`~durable_core.operations._core.run_async`). A journal written by the sync
surface replays under this one and the reverse.

What runs where: the function, async step bodies, async compensations and branch bodies
run on the event loop; a sync step body (or condition check, or submitter) runs on a
thread (``asyncio.to_thread``), so blocking client code does not stall the loop. Journal
writes are made from the loop (a durable commit blocks it for that commit).

Invariants:
- An operation starts when it is awaited, not when it is called: its position in the
  journal is taken at the ``await``.
- An operation that is called but never awaited is an error naming it, raised at the next
  operation the function calls, or when the function returns or suspends (see
  :func:`check_awaited`) — never a serialization error or a "never awaited" warning. So
  is calling a second operation while a first of the same scope is still un-awaited (two
  operations of one scope in flight at once would take their positions in timing order):
  use :meth:`AsyncDurableContext.parallel` or :meth:`AsyncDurableContext.map` to run
  operations concurrently. The branches of a batch are scopes of their own: each may have
  an operation in flight (awaited through ``asyncio.wait_for``, say) while others call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload
from uuid import UUID

from durable_core._context_base import ContextBase
from durable_core.errors import ValidationError
from durable_core.operations._core import DurableOp, run_async
from durable_core.operations.batch import Nesting
from durable_core.operations.callback import Callback, CallbackOp
from durable_core.operations.step import StepContext
from durable_core.operations.wait import MAX_WAIT
from durable_core.retry import StepConfig
from durable_core.serde import Serializer

if TYPE_CHECKING:
    from tenacity.wait import WaitBaseT

    from durable_core.function import DurableFunction
    from durable_core.journal import Journal
    from durable_core.operations.batch import BatchResult, CompletionPolicy
    from durable_core.replay import Scope

T = TypeVar("T")
U = TypeVar("U")
S = TypeVar("S")
I = TypeVar("I")  # noqa: E741 - conventional name for an item type


class AsyncCallback(Generic[T]):
    """A created callback in an async function: send ``token`` out, then
    ``await callback.result()``."""

    def __init__(self, callback: Callback[T]) -> None:
        self._callback = callback
        self.name = callback.name

    @property
    def token(self) -> str:
        """The token an external system passes to complete this callback."""
        return self._callback.token

    async def result(self) -> T:
        """The payload the external system sent; suspends until there is one (as
        :meth:`Callback.result`, with the same errors)."""
        return self._callback.result()


class PendingOperation(Generic[T]):
    """An operation called on an AsyncDurableContext, run when awaited (see the module).

    It is listed in two registries until awaited: the journal's (every operation of the
    invocation not awaited yet, checked when the function ends) and its scope's (checked
    when the scope calls its next operation). Only the scope's refuses a second call:
    branches of a batch are scopes of their own, each with an operation in flight.
    """

    __slots__ = ("_op", "_registries", "_wrap")

    def __init__(
        self,
        op: DurableOp[Any],
        registry: dict[int, str],
        wrap: Callable[[Any], T] | None = None,
        *,
        scope_registry: dict[int, str] | None = None,
    ) -> None:
        local = registry if scope_registry is None else scope_registry
        for what in local.values():
            raise _refusal(
                f"{_describe(op)} was called while {what} was not awaited: await each "
                "operation before calling the next (`await ctx.step(...)`); to run "
                "operations concurrently use ctx.parallel or ctx.map"
            )
        self._op = op
        self._registries = (registry, local)
        self._wrap = wrap
        for listed in self._registries:
            listed[id(self)] = _describe(op)

    def __await__(self) -> Generator[Any, None, T]:
        for listed in self._registries:
            listed.pop(id(self), None)
        value = yield from run_async(self._op).__await__()
        return self._wrap(value) if self._wrap is not None else value


_REFUSAL = "_durable_unawaited"


def _refusal(message: str) -> ValidationError:
    error = ValidationError(message)
    setattr(error, _REFUSAL, True)
    return error


def is_unawaited_error(error: BaseException) -> bool:
    """True for the error this module raises about an operation not awaited (it names the
    operation and what to do; nothing should replace it)."""
    return getattr(error, _REFUSAL, False) is True


def _describe(op: DurableOp[Any]) -> str:
    return f"operation {op.name!r} ({op.op_type.value.lower()}/{op.sub_type})"


def check_awaited(journal: Journal) -> None:
    """Raise ValidationError naming an operation that was called but never awaited."""
    registry = journal.unawaited
    for what in registry.values():
        registry.clear()
        raise _refusal(
            f"{what} was called but never awaited, so it never ran: write "
            "`await ctx.<operation>(...)`"
        )


class AsyncDurableContext(ContextBase):
    """The handle an ``async def`` durable function uses: every operation, awaited.

    The rules of :class:`~durable_core.context.DurableContext` apply: code between
    operations is deterministic; randomness, time and I/O go inside steps (or
    :meth:`now`, :meth:`random`, :meth:`uuid4`); do not block the event loop in it.
    """

    is_async = True

    def __init__(self, journal: Journal, scope: Scope) -> None:
        super().__init__(journal, scope)
        self._unawaited: dict[int, str] = {}
        """This scope's operations not awaited yet (one context per scope)."""

    def _pending(
        self, op: DurableOp[Any], wrap: Callable[[Any], U] | None = None
    ) -> PendingOperation[Any]:
        return PendingOperation(op, self._journal.unawaited, wrap, scope_registry=self._unawaited)

    @overload
    def step(
        self,
        name: str,
        fn: Callable[[StepContext], Awaitable[T]],
        config: StepConfig | None = None,
    ) -> Awaitable[T]: ...
    @overload
    def step(
        self, name: str, fn: Callable[[StepContext], T], config: StepConfig | None = None
    ) -> Awaitable[T]: ...
    def step(
        self, name: str, fn: Callable[[StepContext], Any], config: StepConfig | None = None
    ) -> Awaitable[Any]:
        """As :meth:`DurableContext.step`; ``fn`` may be ``async def`` (run on the loop,
        cancelled past ``config.timeout``) or sync (run on a thread)."""
        return self._pending(self._step(name, fn, config))

    def wait(self, name: str, duration: timedelta | float) -> Awaitable[None]:
        """As :meth:`DurableContext.wait`."""
        return self._pending(self._wait(name, duration))

    def create_callback(
        self,
        name: str,
        *,
        timeout: timedelta | float | None = None,
        heartbeat_timeout: timedelta | float | None = None,
        result_type: Any = Any,
        privileged: bool = False,
        serializer: Serializer | None = None,
    ) -> Awaitable[AsyncCallback[Any]]:
        """As :meth:`DurableContext.create_callback`; ``await callback.result()``."""
        op = self._callback(
            name,
            timeout=timeout,
            heartbeat_timeout=heartbeat_timeout,
            result_type=result_type,
            privileged=privileged,
            serializer=serializer,
        )
        return self._pending(op, AsyncCallback)

    def wait_for_callback(
        self,
        name: str,
        submitter: Callable[[str, StepContext], object],
        *,
        timeout: timedelta | float | None = None,
        heartbeat_timeout: timedelta | float | None = None,
        result_type: Any = Any,
        submit_config: StepConfig | None = None,
        serializer: Serializer | None = None,
    ) -> Awaitable[Any]:
        """As :meth:`DurableContext.wait_for_callback`; ``submitter`` may be async."""

        async def body(
            child: AsyncDurableContext,
            cb_op: CallbackOp,
            submit_name: str,
            submit_for: Callable[[str], Callable[[StepContext], Any]],
            finish: Callable[[Callback[Any]], Any],
        ) -> Any:
            cb = await run_async(cb_op)
            await child.step(submit_name, submit_for(cb.token), submit_config)
            return finish(cb)

        return self._pending(
            self._wait_for_callback(
                name,
                submitter,
                timeout=timeout,
                heartbeat_timeout=heartbeat_timeout,
                result_type=result_type,
                body=body,
                serializer=serializer,
            )
        )

    def wait_for_condition(
        self,
        name: str,
        check: Callable[[S, StepContext], Awaitable[S]] | Callable[[S, StepContext], S],
        *,
        initial_state: S,
        done: Callable[[S], bool],
        wait: WaitBaseT | None = None,
        timeout: timedelta | float = MAX_WAIT,
        state_type: Any = Any,
        max_attempts: int | None = None,
        serializer: Serializer | None = None,
    ) -> Awaitable[S]:
        """As :meth:`DurableContext.wait_for_condition`; ``check`` may be async."""
        return self._pending(
            self._condition(
                name,
                check,
                initial_state=initial_state,
                done=done,
                wait=wait,
                timeout=timeout,
                state_type=state_type,
                max_attempts=max_attempts,
                serializer=serializer,
            )
        )

    def run_in_child_context(
        self,
        name: str,
        fn: Callable[[AsyncDurableContext], Awaitable[T]],
        *,
        result_type: Any = None,
        serializer: Serializer | None = None,
    ) -> Awaitable[T]:
        """As :meth:`DurableContext.run_in_child_context`, with an async ``fn``."""
        return self._pending(self._child_context(name, fn, result_type, serializer))

    def parallel(
        self,
        branches: Sequence[Callable[[AsyncDurableContext], Awaitable[T]]],
        *,
        name: str = "parallel",
        max_concurrency: int | None = None,
        completion: CompletionPolicy | None = None,
        branch_names: Sequence[str] | None = None,
        nesting: Nesting = Nesting.NESTED,
        serializer: Serializer | None = None,
        item_serializer: Serializer | None = None,
    ) -> Awaitable[BatchResult[T]]:
        """As :meth:`DurableContext.parallel`; branches run as asyncio tasks (at most
        ``max_concurrency`` at once). Branches still running when the batch is decided
        (or the execution is cancelled) are cancelled: ``CancelledError`` at their
        ``await``."""
        return self._pending(
            self._parallel(
                branches,
                name=name,
                max_concurrency=max_concurrency,
                completion=completion,
                branch_names=branch_names,
                nesting=nesting,
                serializer=serializer,
                item_serializer=item_serializer,
            )
        )

    def map(
        self,
        items: Sequence[I],
        fn: Callable[[AsyncDurableContext, I, int], Awaitable[T]],
        *,
        name: str = "map",
        max_concurrency: int | None = None,
        completion: CompletionPolicy | None = None,
        item_name: Callable[[I, int], str] | None = None,
        nesting: Nesting = Nesting.NESTED,
        serializer: Serializer | None = None,
        item_serializer: Serializer | None = None,
    ) -> Awaitable[BatchResult[T]]:
        """As :meth:`DurableContext.map`, with an async ``fn``; items run as tasks."""
        return self._pending(
            self._map(
                items,
                fn,
                name=name,
                max_concurrency=max_concurrency,
                completion=completion,
                item_name=item_name,
                nesting=nesting,
                serializer=serializer,
                item_serializer=item_serializer,
            )
        )

    @overload
    def invoke(
        self,
        function: DurableFunction[Any, T],
        payload: Any = None,
        *,
        name: str | None = None,
        result_type: Any = None,
        serializer: Serializer | None = None,
        payload_serializer: Serializer | None = None,
        tenant_id: str | None = None,
    ) -> Awaitable[T]: ...
    @overload
    def invoke(
        self,
        function: str,
        payload: Any = None,
        *,
        name: str | None = None,
        result_type: Any = None,
        serializer: Serializer | None = None,
        payload_serializer: Serializer | None = None,
        tenant_id: str | None = None,
    ) -> Awaitable[Any]: ...
    def invoke(
        self,
        function: DurableFunction[Any, T] | str,
        payload: Any = None,
        *,
        name: str | None = None,
        result_type: Any = None,
        serializer: Serializer | None = None,
        payload_serializer: Serializer | None = None,
        tenant_id: str | None = None,
    ) -> Awaitable[T | Any]:
        """As :meth:`DurableContext.invoke` (the child may be sync or async)."""
        return self._pending(
            self._invoke(
                function,
                payload,
                name,
                result_type,
                serializer=serializer,
                payload_serializer=payload_serializer,
                tenant_id=tenant_id,
            )
        )

    def now(self, name: str = "now") -> Awaitable[datetime]:
        """As :meth:`DurableContext.now`."""
        return self._pending(self._now(name))

    def random(self, name: str = "random") -> Awaitable[float]:
        """As :meth:`DurableContext.random`."""
        return self._pending(self._random(name))

    def uuid4(self, name: str = "uuid4") -> Awaitable[UUID]:
        """As :meth:`DurableContext.uuid4`."""
        return self._pending(self._uuid4(name))
