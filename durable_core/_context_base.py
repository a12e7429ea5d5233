"""What both contexts share: argument checks, and the operation each call builds.

:class:`~durable_core.context.DurableContext` and
:class:`~durable_core.async_context.AsyncDurableContext` are thin surfaces over this base:
each of their methods builds the operation here (a bad call raises at once and records
nothing) and hands it to its driver (:func:`~durable_core.operations._core.run_sync` or
``await`` :func:`~durable_core.operations._core.run_async`). The checks, names, ids and
records are therefore the same for both.

Invariants:
- A sync context refuses an ``async def`` body (it could not await it) with a message
  saying to make the durable function ``async def``; an async context accepts sync and
  async bodies (sync step bodies run on a thread).
- ``now``/``random``/``uuid4`` are steps (names ``now``, ``random``, ``uuid4`` unless
  given): the value is made once, recorded, and the same on every replay.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import random as _random
import uuid as _uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

import tenacity

from durable_core.errors import ValidationError
from durable_core.journal import Journal
from durable_core.logging import ReplayAwareLogger
from durable_core.operations._batch_run import BatchRun
from durable_core.operations.batch import map_op, parallel_op
from durable_core.operations.callback import Callback, CallbackOp, WaitForCallbackOp
from durable_core.operations.child import ChildOp
from durable_core.operations.condition import ConditionOp
from durable_core.operations.invoke import InvokeOp, check_tenant_id
from durable_core.operations.step import StepContext, StepOp
from durable_core.operations.wait import WaitOp, check_duration
from durable_core.replay import MAX_NAME_LENGTH, Scope, check_name
from durable_core.retry import StepConfig
from durable_core.serde import Serializer, check_serializer, check_type, type_hints

if TYPE_CHECKING:
    from tenacity.wait import WaitBaseT

    from durable_core.function import DurableFunction
    from durable_core.operations.batch import CompletionPolicy, Nesting

T = TypeVar("T")
S = TypeVar("S")
I = TypeVar("I")  # noqa: E741 - conventional name for an item type

_DEFAULT_STEP = StepConfig()
CALLBACK_SUFFIX = " create callback id"
"""Suffix of the callback's name in ``wait_for_callback`` (the name AWS's SDK gives it)."""
SUBMIT_SUFFIX = " submitter"
"""Suffix of the submit step's name in ``wait_for_callback`` (the name AWS's SDK gives it)."""
LEGACY_SUBMIT_SUFFIX = "-submit"
"""The submit step's suffix before 0.2 (its callback had the bare name); still replayed."""


class ContextBase:
    """State and operation builders shared by the sync and the async context."""

    is_async: ClassVar[bool] = False
    """True for the async surface (its bodies may be ``async def``)."""

    def __init__(self, journal: Journal, scope: Scope) -> None:
        self._journal = journal
        self._scope = scope
        self.logger = ReplayAwareLogger.for_execution(journal.execution_id, self._is_replaying)
        """A structlog logger bound to the execution; silent while replaying."""

    @classmethod
    def for_scope(cls, scope: Scope) -> Self:
        """A context of this kind for ``scope`` (a child context's or a branch's)."""
        return cls(scope.journal, scope)

    def _is_replaying(self) -> bool:
        return self._scope.replaying

    @property
    def execution_id(self) -> str:
        """The id of the running execution."""
        return self._journal.execution_id

    @property
    def is_replaying(self) -> bool:
        """True while the code is re-running operations whose results are recorded."""
        return self._scope.replaying

    def phase(
        self,
        kind: str,
        name: str = "",
        attributes: Mapping[str, str | int | float | bool] | None = None,
    ) -> contextlib.AbstractContextManager[None]:
        """Group the operations of a ``with`` block for instrumentation (a span in
        :mod:`durable_core.otel`); records nothing, so adding one never changes a journal.

        ``with ctx.phase("billing", "invoice-42"):`` works the same in an async function.
        Instrumentation sees ``phase_started``/``phase_ended``; a saga's rollback and each
        compensation are phases ``saga.rollback`` and ``saga.compensation``.

        Args:
            kind: what the phase is (a short, low-cardinality word: it names the span).
            name: which one (the saga, the step).
            attributes: what to attach to it (never payloads or secrets).
        """
        if not isinstance(kind, str) or not kind.strip():
            raise ValidationError(f"phase kind must be a non-empty string, got {kind!r}")
        hooks = self._journal.instrumentation
        if hooks is None:
            return contextlib.nullcontext()
        return hooks.phase(self._scope, kind, name, attributes)

    # --- builders (checked; nothing recorded for a bad call) -------------------------------

    def _body(self, fn: object, what: str) -> None:
        if not callable(fn):
            raise ValidationError(f"{what}: expected a callable, got {type(fn).__name__}")
        if not self.is_async and inspect.iscoroutinefunction(fn):
            raise ValidationError(
                f"{what}: {getattr(fn, '__qualname__', fn)!r} is an async function, and a sync "
                "durable function cannot await it. Declare the durable function `async def` "
                "(it receives an AsyncDurableContext and awaits its operations), or make "
                "this function sync."
            )

    def _context_body(self, fn: object, what: str) -> None:
        """:meth:`_body`, and a body whose context annotation is the other surface's is
        refused (it would get a context it cannot use as written)."""
        self._body(fn, what)
        if not getattr(fn, "__annotations__", None):
            return
        from durable_core.async_context import AsyncDurableContext
        from durable_core.context import DurableContext

        assert callable(fn)
        params = list(inspect.signature(fn).parameters.values())
        first = type_hints(fn).get(params[0].name) if params else None
        want, other = (
            (AsyncDurableContext, DurableContext)
            if self.is_async
            else (DurableContext, AsyncDurableContext)
        )
        if first is other:
            kind = "an async" if self.is_async else "a sync"  # receives "an" A/DurableContext
            raise ValidationError(
                f"{what}: its context is annotated {other.__name__}, but it runs in {kind} "
                f"durable function and receives an {want.__name__}; annotate it "
                f"{want.__name__}" + (" and make it `async def`" if self.is_async else "")
            )

    def _step(
        self, name: str, fn: Callable[[StepContext], T], config: StepConfig | None
    ) -> StepOp[T]:
        check_name(name, "step")
        self._body(fn, f"step {name!r}")
        return StepOp(self._scope, self.logger, name, fn, config or _DEFAULT_STEP)

    def _value(self, name: str, make: Callable[[], T], type_: Any) -> StepOp[T]:
        check_name(name, "step")
        return StepOp(
            self._scope, self.logger, name, lambda _sc: make(), StepConfig(result_type=type_)
        )

    def _now(self, name: str) -> StepOp[datetime]:
        return self._value(name, lambda: self._journal.now().astimezone(UTC), datetime)

    def _random(self, name: str) -> StepOp[float]:
        return self._value(name, _random.SystemRandom().random, float)

    def _uuid4(self, name: str) -> StepOp[_uuid.UUID]:
        return self._value(name, _uuid.uuid4, _uuid.UUID)

    def _wait(self, name: str, duration: timedelta | float) -> WaitOp:
        check_name(name, "wait")
        return WaitOp(self._scope, name, check_duration(duration, f"wait {name!r}"))

    def _callback(
        self,
        name: str,
        *,
        timeout: timedelta | float | None,
        heartbeat_timeout: timedelta | float | None,
        result_type: Any,
        privileged: bool,
        serializer: Serializer | None = None,
    ) -> CallbackOp:
        check_name(name, "callback")
        what = f"callback {name!r}"
        if not isinstance(privileged, bool):
            raise ValidationError(f"{what}: privileged must be a bool")
        if privileged and heartbeat_timeout is not None:
            raise ValidationError(
                f"{what}: a privileged callback cannot have a heartbeat timeout; "
                "heartbeats come through the generic callback paths, which refuse it"
            )
        return CallbackOp(
            self._scope,
            name,
            timeout=_opt_duration(timeout, f"{what} timeout"),
            heartbeat_timeout=_opt_duration(heartbeat_timeout, f"{what} heartbeat"),
            result_type=result_type,
            privileged=privileged,
            serializer=check_serializer(serializer, what=what),
        )

    def _wait_for_callback(
        self,
        name: str,
        submitter: Callable[..., object],
        *,
        timeout: timedelta | float | None,
        heartbeat_timeout: timedelta | float | None,
        result_type: Any,
        body: Callable[
            [
                Any,
                CallbackOp,
                str,
                Callable[[str], Callable[[StepContext], Any]],
                Callable[[Callback[Any]], Any],
            ],
            Any,
        ],
        serializer: Serializer | None = None,
    ) -> WaitForCallbackOp:
        """A child context named ``name`` holding the callback and the submit step (named
        after it: ``CALLBACK_SUFFIX``, ``SUBMIT_SUFFIX``).

        ``body(child_ctx, callback_op, submit_name, submit_for, finish)`` is the surface's
        way to run them: create the callback, run ``submit_for(token)`` (the submitter with
        the token, its value dropped) as the step ``submit_name``, return ``finish(handle)``
        (what the context records: the callback's raw text).
        """
        check_name(name, "callback")
        longest = MAX_NAME_LENGTH - len(CALLBACK_SUFFIX)
        if len(name) > longest:
            raise ValidationError(
                f"callback name {name[:40]!r}... must be at most {longest} characters for "
                f"wait_for_callback (its callback is named {CALLBACK_SUFFIX!r} after it, at "
                f"most {MAX_NAME_LENGTH} characters)"
            )
        what = f"callback {name!r}"
        self._body(submitter, f"wait_for_callback {name!r} submitter")
        t = _opt_duration(timeout, f"{what} timeout")
        hb = _opt_duration(heartbeat_timeout, f"{what} heartbeat")
        checked = check_serializer(serializer, what=what)
        if checked is None:
            check_type(result_type, what=what)

        def run(child: ContextBase) -> Any:
            # An execution recorded before 0.2 named the two after the operation itself
            # (the callback ``name``, the step ``name-submit``): replay it as recorded.
            first = child._journal.get(child._scope.peek_id())
            legacy = first is not None and first.name == name
            cb_name = name if legacy else f"{name}{CALLBACK_SUFFIX}"
            submit_name = f"{name}{LEGACY_SUBMIT_SUFFIX if legacy else SUBMIT_SUFFIX}"
            cb = CallbackOp(
                child._scope,
                cb_name,
                timeout=t,
                heartbeat_timeout=hb,
                result_type=result_type if legacy else str | None,
            )
            # Before 0.2 the context recorded the value; since, the caller's raw text.
            finish = _callback_value if legacy else _callback_text
            submit = functools.partial(_submit_body, submitter)
            return body(child, cb, submit_name, submit, finish)

        return WaitForCallbackOp(
            self._scope, name, run, self.for_scope, result_type=result_type, serializer=checked
        )

    def _condition(
        self,
        name: str,
        check: Callable[..., Any],
        *,
        initial_state: S,
        done: Callable[[S], bool],
        wait: WaitBaseT | None,
        timeout: timedelta | float,
        state_type: Any,
        max_attempts: int | None = None,
        serializer: Serializer | None = None,
    ) -> ConditionOp[S]:
        check_name(name, "condition")
        what = f"condition {name!r}"
        if max_attempts is not None and (
            not isinstance(max_attempts, int) or isinstance(max_attempts, bool) or max_attempts < 1
        ):
            raise ValidationError(
                f"{what} max_attempts: expected a positive int or None, got {max_attempts!r}"
            )
        self._body(check, f"condition {name!r} check")
        if not callable(done):
            raise ValidationError(
                f"condition {name!r} done: expected a callable, got {type(done).__name__}"
            )
        return ConditionOp(
            self._scope,
            self.logger,
            name,
            check,
            initial_state=initial_state,
            done=done,
            wait=wait or tenacity.wait_exponential(multiplier=5, exp_base=1.5, max=300),
            timeout=check_duration(timeout, f"condition {name!r} timeout"),
            state_type=state_type,
            max_attempts=max_attempts,
            serializer=check_serializer(serializer, what=what),
        )

    def _child_context(
        self,
        name: str,
        fn: Callable[..., Any],
        result_type: Any,
        serializer: Serializer | None = None,
    ) -> ChildOp[Any]:
        check_name(name, "child context")
        what = f"child context {name!r}"
        self._context_body(fn, what)
        return ChildOp(
            self._scope,
            name,
            fn,
            self.for_scope,
            result_type=result_type,
            serializer=check_serializer(serializer, what=what),
        )

    def _parallel(
        self,
        branches: Sequence[Callable[..., Any]],
        *,
        name: str,
        max_concurrency: int | None,
        completion: CompletionPolicy | None,
        branch_names: Sequence[str] | None,
        nesting: Nesting,
        serializer: Serializer | None,
        item_serializer: Serializer | None,
    ) -> BatchRun:
        check_name(name, "parallel")
        if not isinstance(branches, str | bytes):
            for i, fn in enumerate(branches if isinstance(branches, Sequence) else ()):
                if callable(fn):
                    self._context_body(fn, f"parallel {name!r} branch {i}")
        return parallel_op(
            self._scope,
            self.for_scope,
            name,
            branches,
            max_concurrency=max_concurrency,
            completion=completion,
            branch_names=branch_names,
            nesting=nesting,
            serializer=serializer,
            item_serializer=item_serializer,
        )

    def _map(
        self,
        items: Sequence[Any],
        fn: Callable[..., Any],
        *,
        name: str,
        max_concurrency: int | None,
        completion: CompletionPolicy | None,
        item_name: Callable[[Any, int], str] | None,
        nesting: Nesting,
        serializer: Serializer | None,
        item_serializer: Serializer | None,
    ) -> BatchRun:
        check_name(name, "map")
        if callable(fn):
            self._context_body(fn, f"map {name!r}")
        return map_op(
            self._scope,
            self.for_scope,
            name,
            items,
            fn,
            max_concurrency=max_concurrency,
            completion=completion,
            item_name=item_name,
            nesting=nesting,
            serializer=serializer,
            item_serializer=item_serializer,
        )

    def _invoke(
        self,
        function: DurableFunction[Any, Any] | str,
        payload: Any,
        name: str | None,
        result_type: Any,
        *,
        serializer: Serializer | None = None,
        payload_serializer: Serializer | None = None,
        tenant_id: str | None = None,
    ) -> InvokeOp[Any]:
        what = f"invoke {name or getattr(function, 'name', function)!r}"
        return InvokeOp(
            self._scope,
            function,
            payload,
            name=name,
            result_type=result_type,
            serializer=check_serializer(serializer, what=what),
            payload_serializer=check_serializer(payload_serializer, what=f"payload of {what}"),
            tenant_id=check_tenant_id(tenant_id, what=what),
        )


def _callback_text(handle: Callback[Any]) -> str | None:
    return handle.text()


def _callback_value(handle: Callback[Any]) -> Any:
    return handle.result()


def _submit_body(submitter: Callable[..., object], token: str) -> Callable[[StepContext], Any]:
    """``submitter(token, sc)`` as a step body whose value is dropped (async if it is)."""
    if inspect.iscoroutinefunction(submitter):

        async def submit_async(sc: StepContext) -> None:
            await submitter(token, sc)

        return submit_async

    def submit(sc: StepContext) -> Any:
        value = submitter(token, sc)
        return _dropped(value) if inspect.isawaitable(value) else None

    return submit


async def _dropped(value: Awaitable[object]) -> None:
    await value


def _opt_duration(value: timedelta | float | None, what: str) -> timedelta | None:
    if value is None:
        return None
    return check_duration(value, what)
