"""``SagaDefinition``: what ``@saga`` and the ``Saga`` builder both produce.

A saga definition is a body ``(s: SagaContext, event) -> result`` (or, for an async saga,
``async (s: AsyncSagaContext, event) -> result``) plus the options of the durable function
that runs it. It exposes ``.durable_function``, so a :class:`durable_core.Runtime` runs it
(``runtime.run(my_saga, event)``) and ``durable run module:attr`` resolves it.

Invariants:
- The durable function's body creates a fresh :class:`SagaContext` per invocation and runs
  the saga body through :func:`saga.context.run_saga`; nothing is shared between
  invocations or executions (no global registry).
- An async saga (``is_async``) has an async durable function (``DurableFunction.is_async``):
  its body gets a fresh :class:`saga.AsyncSagaContext` over the invocation's
  AsyncDurableContext and runs through :func:`saga.async_context.run_saga_async`, with the
  same rules and the same journal records as the sync runner.
- What the durable function returns or raises: the body's result when the saga completes;
  :class:`SagaCompensated` / :class:`SagaPartiallyCompensated` (execution FAILED) after a
  rollback caused by a failure; the cancellation (execution CANCELLED) after a rollback
  caused by a cancel or the deadline, and after a terminate.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Generic, TypeVar, overload

from durable_core import AsyncDurableContext, DurableContext, DurableFunction
from durable_core.serde import round_trip
from saga.async_context import AsyncSagaContext, run_saga_async
from saga.context import SagaContext, run_saga
from saga.errors import SagaDefinitionError
from saga.rules import check_saga_types

E = TypeVar("E")
R = TypeVar("R")


class SagaDefinition(ABC, Generic[E, R]):
    """Base of :class:`saga.SagaFunction` (from ``@saga``) and :class:`saga.Saga`."""

    def __init__(
        self,
        *,
        name: str,
        version: str | None,
        deadline: timedelta | None,
        input_type: Any,
        result_type: Any,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise SagaDefinitionError(f"a saga needs a non-empty name, got {name!r}")
        if deadline is not None and (
            not isinstance(deadline, timedelta) or deadline <= timedelta(0)
        ):
            raise SagaDefinitionError(
                f"saga {name!r}: deadline must be a positive timedelta, got {deadline!r}"
            )
        check_saga_types(name, input_type=input_type, result_type=result_type)
        self._name = name
        self._version = version
        self._deadline = deadline
        self._input_type = input_type
        self._result_type = result_type

    @property
    def name(self) -> str:
        """The saga's name (in compensation contexts, the rollback plan and the outcome)."""
        return self._name

    @property
    def deadline(self) -> timedelta | None:
        """If set, the saga is cancelled (and rolled back) when it runs longer than this."""
        return self._deadline

    @property
    def is_async(self) -> bool:
        """True for an ``async def`` saga: it receives an AsyncSagaContext and its durable
        function is async."""
        return False

    @abstractmethod
    def run_body(self, s: SagaContext, event: E) -> R:
        """Run the saga's steps on ``s`` (no rollback here; :func:`run_saga` adds it)."""

    async def run_body_async(self, s: AsyncSagaContext, event: E) -> R:
        """Run an async saga's steps on ``s`` (no rollback here; :func:`run_saga_async`
        adds it)."""
        raise SagaDefinitionError(f"saga {self._name!r} is sync: it runs on a SagaContext")

    def _durable_name(self) -> str:
        return self._name

    @functools.cached_property
    def durable_function(self) -> DurableFunction[E, R]:
        """The durable function that runs this saga (give the saga itself to a Runtime)."""
        return DurableFunction(
            fn=self._entry_async if self.is_async else self._entry,
            name=self._durable_name(),
            version=self._version,
            timeout=self._deadline,
            input_type=self._input_type,
            result_type=self._result_type,
            is_async=self.is_async,
        )

    @functools.cached_property
    def lambda_handler(self) -> Callable[..., dict[str, Any]]:
        """A Lambda handler running this saga on Lambda's durable execution service.

        ``lambda_handler = book_tour.lambda_handler`` in the deployed module, and
        ``Handler: module.lambda_handler`` in the template. The same as
        ``durable_core.aws_lambda.durable_handler(self)`` with default options (use that
        to pass a client or options). Nothing AWS is imported before first access, and no
        boto3 client is made before the first invocation.
        """
        from durable_core.aws_lambda import durable_handler

        return durable_handler(self)

    @overload
    def __call__(self, ctx: DurableContext, event: E) -> R: ...
    @overload
    def __call__(self, ctx: AsyncDurableContext, event: E) -> Awaitable[R]: ...
    def __call__(self, ctx: DurableContext | AsyncDurableContext, event: E) -> R | Awaitable[R]:
        """Run the saga as the body of a durable function (the runtime calls this).

        A saga is a durable function ``(ctx, event) -> result``: anything that accepts one
        (a Runtime, ``durable_core.testing``) accepts the saga itself. An async saga takes
        an AsyncDurableContext and returns the awaitable to await.
        """
        if isinstance(ctx, AsyncDurableContext):
            return self._entry_async(ctx, event)
        return self._entry(ctx, event)

    def _entry(self, ctx: DurableContext, event: E) -> R:
        return run_saga(SagaContext(ctx, saga=self._name), self._run_checked, event)

    async def _entry_async(self, ctx: AsyncDurableContext, event: E) -> R:
        return await run_saga_async(
            AsyncSagaContext(ctx, saga=self._name), self._run_checked_async, event
        )

    def _run_checked(self, s: SagaContext, event: E) -> R:
        """The body, then its result checked against the result type inside the rollback:
        a result that cannot be recorded fails the saga like any error of its body (rolled
        back before the pivot), instead of failing the execution with every step done."""
        return self._checked(self.run_body(s, event))

    async def _run_checked_async(self, s: AsyncSagaContext, event: E) -> R:
        """:meth:`_run_checked` for an async saga."""
        return self._checked(await self.run_body_async(s, event))

    def _checked(self, value: R) -> R:
        round_trip(value, self._result_type, what=f"the result of saga {self._name!r}")
        return value
