"""``@saga``: turn ``def f(s: SagaContext, event) -> R`` into a saga.

Works bare (``@saga``) and called (``@saga(name=..., version=..., deadline=...)``). The
signature is checked at decoration time. The result is a :class:`SagaFunction`: give it to a
:class:`durable_core.Runtime` (``runtime.run(book_tour, event)``), run it from the CLI as
``durable run module:book_tour``, or nest it in another saga with ``s.child(...)``. Nothing is
registered globally.

Invariants:
- The durable function's name defaults to ``module:qualname``, so a worker in another
  process imports it by name.
- A bad function (not callable, wrong arity, first parameter annotated as a DurableContext)
  is rejected with :class:`SagaDefinitionError` before any execution exists.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar, overload

from durable_core import DurableContext
from durable_core.serde import type_hints
from saga.context import SagaContext
from saga.definition import SagaDefinition
from saga.errors import SagaDefinitionError

E = TypeVar("E")
R = TypeVar("R")


class SagaFunction(SagaDefinition[E, R]):
    """A saga written as a function; made by :func:`saga`."""

    def __init__(
        self,
        fn: Callable[[SagaContext, E], R],
        *,
        name: str | None = None,
        version: str | None = None,
        deadline: timedelta | None = None,
    ) -> None:
        input_type, result_type = _check_signature(fn)
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
    def fn(self) -> Callable[[SagaContext, E], R]:
        """The user's saga function."""
        return self._fn

    def run_body(self, s: SagaContext, event: E) -> R:
        """Call the user's function."""
        return self._fn(s, event)

    def _durable_name(self) -> str:
        return self._ref

    def __repr__(self) -> str:
        return f"<saga {self.name!r} ({self._ref})>"


@overload
def saga(fn: Callable[[SagaContext, E], R], /) -> SagaFunction[E, R]: ...
@overload
def saga(
    *, name: str | None = None, version: str | None = None, deadline: timedelta | None = None
) -> Callable[[Callable[[SagaContext, E], R]], SagaFunction[E, R]]: ...
def saga(
    fn: Callable[[SagaContext, E], R] | None = None,
    /,
    *,
    name: str | None = None,
    version: str | None = None,
    deadline: timedelta | None = None,
) -> SagaFunction[E, R] | Callable[[Callable[[SagaContext, E], R]], SagaFunction[E, R]]:
    """Declare a saga: ``@saga`` or ``@saga(name=..., version=..., deadline=...)``.

    Args:
        fn: ``def f(s: SagaContext, event) -> result``.
        name: the saga's name; also the durable function's name (default: the function's
            ``module:qualname``, which a worker can import).
        version: code version; an execution is never resumed by another version.
        deadline: cancel and roll back the saga if it is still running this long after it
            started.

    Raises:
        SagaDefinitionError: ``fn`` does not take ``(s, event)``, or an option is invalid.
    """
    if fn is not None:
        return SagaFunction(fn)

    def wrap(f: Callable[[SagaContext, E], R]) -> SagaFunction[E, R]:
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
    first = hints.get(positional[0].name)
    if first is DurableContext:
        raise SagaDefinitionError(
            f"saga function {label!r} receives a SagaContext, not a DurableContext; annotate "
            "its first parameter as SagaContext (the DurableContext is s.ctx)"
        )
    return hints.get(positional[1].name, Any), hints.get("return", Any)
