"""``@saga``: turn ``def f(s: SagaContext, event) -> R`` into a saga.

Works bare (``@saga``) and called (``@saga(name=..., version=..., deadline=...)``). The
signature is checked at decoration time. The result is a :class:`SagaFunction`: give it to a
:class:`durable_core.Runtime` (``runtime.run(book_tour, event)``), run it from the CLI as
``durable run module:book_tour``, or nest it in another saga with ``s.child(...)``. Nothing is
registered globally.

``@saga`` on an ``async def f(s: AsyncSagaContext, event)`` makes an async saga: it awaits
its steps (``await s.step(...)``), its durable function is async (it runs on an event
loop), and it writes the same journal as the same saga written sync.

Invariants:
- The durable function's name defaults to ``module:qualname``, so a worker in another
  process imports it by name.
- A bad function (not callable, wrong arity, first parameter annotated as a DurableContext
  or AsyncDurableContext, or as the other kind's saga context) is rejected with
  :class:`SagaDefinitionError` before any execution exists.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any, Protocol, TypeVar, overload

from durable_core import AsyncDurableContext, DurableContext
from durable_core.serde import type_hints
from saga.async_context import AsyncSagaContext
from saga.context import SagaContext
from saga.definition import SagaDefinition
from saga.errors import SagaDefinitionError

E = TypeVar("E")
R = TypeVar("R")


class SagaFunction(SagaDefinition[E, R]):
    """A saga written as a function; made by :func:`saga`."""

    def __init__(
        self,
        fn: Callable[[SagaContext, E], R] | Callable[[AsyncSagaContext, E], Coroutine[Any, Any, R]],
        *,
        name: str | None = None,
        version: str | None = None,
        deadline: timedelta | None = None,
    ) -> None:
        input_type, result_type = _check_signature(fn)
        self._is_async = inspect.iscoroutinefunction(fn)
        label: str = name or getattr(fn, "__name__", None) or type(fn).__name__
        super().__init__(
            name=label,
            version=version,
            deadline=deadline,
            input_type=input_type,
            result_type=result_type,
        )
        self._fn = fn
        qualname = getattr(fn, "__qualname__", type(fn).__qualname__)
        self._ref = name or f"{fn.__module__}:{qualname}"
        functools.update_wrapper(self, fn)

    @property
    def fn(self) -> Callable[..., Any]:
        """The user's saga function."""
        return self._fn

    @property
    def is_async(self) -> bool:
        """True if the function is ``async def`` (an async saga)."""
        return self._is_async

    def run_body(self, s: SagaContext, event: E) -> R:
        """Call the user's (sync) function."""
        if self._is_async:
            raise SagaDefinitionError(
                f"saga {self.name!r} is async (`async def`): it runs on an AsyncSagaContext"
            )
        return self._fn(s, event)  # type: ignore[arg-type,return-value]  # sync: checked above

    async def run_body_async(self, s: AsyncSagaContext, event: E) -> R:
        """Await the user's (async) function."""
        if not self._is_async:
            return await super().run_body_async(s, event)  # refused: the saga is sync
        return await self._fn(s, event)  # type: ignore[arg-type,misc,no-any-return]

    def _durable_name(self) -> str:
        return self._ref

    def __repr__(self) -> str:
        return f"<saga {self.name!r} ({self._ref})>"


class _Declare(Protocol):
    """What ``@saga(...)`` returns: the decorator, for sync and async saga functions."""

    @overload
    def __call__(
        self, fn: Callable[[AsyncSagaContext, E], Coroutine[Any, Any, R]], /
    ) -> SagaFunction[E, R]: ...
    @overload
    def __call__(self, fn: Callable[[SagaContext, E], R], /) -> SagaFunction[E, R]: ...


@overload
def saga(fn: Callable[[AsyncSagaContext, E], Coroutine[Any, Any, R]], /) -> SagaFunction[E, R]: ...
@overload
def saga(fn: Callable[[SagaContext, E], R], /) -> SagaFunction[E, R]: ...
@overload
def saga(
    *, name: str | None = None, version: str | None = None, deadline: timedelta | None = None
) -> _Declare: ...
def saga(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    version: str | None = None,
    deadline: timedelta | None = None,
) -> SagaFunction[Any, Any] | _Declare:
    """Declare a saga: ``@saga`` or ``@saga(name=..., version=..., deadline=...)``.

    Args:
        fn: ``def f(s: SagaContext, event) -> result``, or ``async def f(s:
            AsyncSagaContext, event) -> result`` for an async saga.
        name: the saga's name; also the durable function's name (default: the function's
            ``module:qualname``, which a worker can import).
        version: code version; an execution is never resumed by another version.
        deadline: cancel and roll back the saga if it is still running this long after it
            started.

    Raises:
        SagaDefinitionError: ``fn`` does not take ``(s, event)``, its context annotation
            does not match its kind, or an option is invalid.
    """
    if fn is not None:
        return SagaFunction(fn)

    def wrap(f: Callable[..., Any]) -> SagaFunction[Any, Any]:
        return SagaFunction(f, name=name, version=version, deadline=deadline)

    return wrap


def _check_signature(fn: object) -> tuple[Any, Any]:
    """Check ``fn`` takes ``(s, event)``; return its (event, result) annotated types."""
    if isinstance(fn, SagaDefinition):
        raise SagaDefinitionError(f"{fn!r} is already a saga; apply @saga once")
    if not callable(fn):
        raise SagaDefinitionError(f"@saga needs a function, got {type(fn).__name__}")
    label = getattr(fn, "__qualname__", repr(fn))
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as e:
        raise SagaDefinitionError(f"@saga cannot inspect {label}: {e}") from e
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required_kw = [p for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
    if len(positional) != 2 or required_kw:
        raise SagaDefinitionError(
            f"saga function {label!r} must take exactly two positional parameters "
            f"(s: SagaContext, event); its signature is {sig}"
        )
    hints = type_hints(fn)
    _check_context(label, hints.get(positional[0].name), inspect.iscoroutinefunction(fn))
    return hints.get(positional[1].name, Any), hints.get("return", Any)


def _check_context(label: str, first: object, is_async: bool) -> None:
    """Refuse a first-parameter annotation that is not the saga context of ``fn``'s kind."""
    want = "AsyncSagaContext" if is_async else "SagaContext"
    if first is DurableContext or first is AsyncDurableContext:
        raise SagaDefinitionError(
            f"saga function {label!r} receives {_a(want)}, not {_a(first.__name__)}; annotate "
            f"its first parameter as {want} (the durable context is s.ctx)"
        )
    if is_async and first is SagaContext:
        raise SagaDefinitionError(
            f"saga function {label!r} is `async def` but its first parameter is annotated "
            "SagaContext: an async saga receives an AsyncSagaContext (`await s.step(...)`). "
            "Annotate it AsyncSagaContext, or make the function sync."
        )
    if not is_async and first is AsyncSagaContext:
        raise SagaDefinitionError(
            f"saga function {label!r} is sync but its first parameter is annotated "
            "AsyncSagaContext: a sync saga receives a SagaContext. Make the function "
            "`async def` (and await its steps), or annotate it SagaContext."
        )


def _a(name: str) -> str:
    return f"an {name}" if name.startswith("Async") else f"a {name}"
