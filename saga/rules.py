"""The rules a saga declaration must follow, checked before anything runs or is recorded.

Shared by ``s.step`` (checked when the step is declared, on the saga's first run),
``s.parallel`` (its branches, when the group is declared) and the ``Saga`` builder (checked
by ``.step()``, at definition time). A step's options arrive as one
:class:`saga.options.StepOptions`.

Invariants:
- Step names are printable, short, unique within a saga, and never use the prefixes the
  saga reserves for its own journal records nor the path separator.
- A saga has at most one pivot; a pivot has no compensation; a nested saga has none.
- Nothing compensatable follows the pivot: an explicit ``COMPENSATABLE`` kind or a
  ``compensate=`` after it is an error, and a step with neither is retriable.
- A retriable step has no compensation.
- Only an async saga has ``async def`` actions and compensations (a sync saga cannot await
  them), and a nested saga is of its parent's kind (sync in sync, async in async).
- A step's result type (its ``result_type=``, else the action's return annotation with its
  ``Annotated`` extras) and a saga's event and result types can cross the journal as JSON;
  otherwise :class:`durable_core.SerializationError` names the saga, the step and the action,
  before anything runs or is recorded.
- A step that failed for good with a SerializationError ran its body (its value could not be
  recorded), so its compensation runs on rollback as for ``compensate_uncertain=True``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from durable_core import (
    ErrorInfo,
    PayloadTooLargeError,
    RetryPolicy,
    SerializationError,
    StepConfig,
    StopKind,
    ValidationError,
)
from durable_core.serde import check_type, return_type
from saga._records import PATH_SEPARATOR, RESERVED_PREFIXES
from saga.errors import SagaDefinitionError
from saga.policy import StepKind

if TYPE_CHECKING:
    from saga.options import StepOptions

MAX_STEP_NAME = 120


def check_step_name(saga: str, name: object, taken: Collection[str]) -> None:
    """Validate a step name: printable, short, not reserved, unique within the saga."""
    if not isinstance(name, str) or not name.strip():
        raise SagaDefinitionError(
            f"saga {saga!r}: a step name must be a non-empty string, got {name!r}"
        )
    if len(name) > MAX_STEP_NAME or not name.isprintable():
        raise SagaDefinitionError(
            f"saga {saga!r}: step name {name[:40]!r} must be at most {MAX_STEP_NAME} "
            "printable characters"
        )
    if name.startswith(RESERVED_PREFIXES) or PATH_SEPARATOR in name:
        raise SagaDefinitionError(
            f"saga {saga!r}: step name {name!r} may not contain {PATH_SEPARATOR!r} or start "
            f"with {', '.join(RESERVED_PREFIXES)} (reserved for the saga's own records)"
        )
    if name in taken:
        raise SagaDefinitionError(
            f"saga {saga!r}: duplicate step name {name!r}; step names must be unique within "
            "a saga (they name the step and its compensation in the journal). In a loop, "
            "put the index in the name."
        )


def check_step(
    saga: str,
    name: str,
    action: object,
    options: StepOptions,
    *,
    pivot: str | None,
    nested: bool,
    is_async: bool,
) -> None:
    """Validate one step declaration (shared by ``s.step``, ``s.parallel`` and the builder).

    ``options`` holds what the caller gave, unchecked: its fields may hold any value;
    ``is_async`` says whether the saga runs on the async context (a builder saga does not).

    Raises:
        SagaDefinitionError: the declaration breaks a rule of the module docstring.
        SerializationError: the step's result type cannot cross the journal as JSON.
    """
    where = f"saga {saga!r}, step {name!r}"
    compensate: object = options.compensate
    compensate_uncertain = options.compensate_uncertain
    timeout: object = options.timeout
    compensation_timeout: object = options.compensation_timeout
    retry: object = options.retry
    _check_timeout(where, "timeout", timeout)
    _check_timeout(where, "compensation_timeout", compensation_timeout)
    if compensation_timeout is not None and compensate is None:
        raise SagaDefinitionError(f"{where}: compensation_timeout= needs compensate=")
    from saga.definition import SagaDefinition  # a cycle: definition builds on this module

    if isinstance(action, SagaDefinition):
        raise SagaDefinitionError(
            f"{where}: the action is a saga; run a nested saga with s.child(name, saga, event)"
        )
    if not callable(action):
        raise SagaDefinitionError(f"{where}: the action must be callable, got {action!r}")
    if compensate is not None and not callable(compensate):
        raise SagaDefinitionError(
            f"{where}: compensate must be a callable taking a CompensationContext, got "
            f"{compensate!r}"
        )
    _check_awaitable(where, is_async, action=action, compensation=compensate)
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise SagaDefinitionError(f"{where}: retry must be a durable_core.RetryPolicy")
    if compensate_uncertain and compensate is None:
        raise SagaDefinitionError(f"{where}: compensate_uncertain=True needs compensate=")
    step_kind = _parse_kind(where, options.kind)
    if step_kind is StepKind.PIVOT:
        if nested:
            raise SagaDefinitionError(
                f"{where}: a nested saga may not declare a pivot; the top-level saga owns the "
                "point of no return"
            )
        if pivot is not None:
            raise SagaDefinitionError(
                f"{where}: the saga already has a pivot ({pivot!r}); a saga has at most one "
                "point of no return. Make this step retriable (kind=StepKind.RETRIABLE)."
            )
        if compensate is not None:
            raise SagaDefinitionError(
                f"{where}: a pivot cannot be undone, so it takes no compensate=. If it can be "
                "undone it is compensatable, and the pivot is a later step."
            )
    if step_kind is StepKind.RETRIABLE and compensate is not None:
        raise SagaDefinitionError(
            f"{where}: a retriable step is never compensated; drop compensate= or make it "
            "compensatable (before the pivot)"
        )
    if pivot is not None and (step_kind is StepKind.COMPENSATABLE or compensate is not None):
        raise SagaDefinitionError(
            f"{where}: a compensatable step after the pivot {pivot!r}. Once the pivot "
            "succeeds the saga never rolls back, so every later step must be retriable: drop "
            "compensate= (steps after the pivot are retriable by default), or move this step "
            "before the pivot."
        )
    _check_result_type(where, action, options.result_type)


def _check_awaitable(where: str, is_async: bool, **functions: object) -> None:
    """Refuse an ``async def`` function in a sync saga, which cannot await it."""
    for what, fn in functions.items():
        if not is_async and inspect.iscoroutinefunction(fn):
            raise SagaDefinitionError(
                f"{where}: the {what} {getattr(fn, '__qualname__', fn)!r} is `async def`, and "
                "a sync saga cannot await it. Write the saga `@saga async def` (it receives "
                f"an AsyncSagaContext: `await s.step(...)`), or make the {what} sync."
            )


def check_child(saga: str, name: str, child: object, *, is_async: bool) -> None:
    """Validate a nested saga: a saga definition of the parent's own kind.

    A sync saga cannot await an async one, and an async saga's children run on its
    AsyncSagaContext, which a sync saga function (or a builder saga) was not written for.

    Raises:
        SagaDefinitionError: ``child`` is not a saga, or not of the parent's kind.
    """
    from saga.definition import SagaDefinition  # a cycle: definition builds on this module

    where = f"saga {saga!r}, child {name!r}"
    if not isinstance(child, SagaDefinition):
        raise SagaDefinitionError(
            f"{where}: expected a saga made with @saga or Saga(...), got {type(child).__name__}"
        )
    if child.is_async and not is_async:
        raise SagaDefinitionError(
            f"{where}: {child.name!r} is an async saga (`async def`), and a sync saga cannot "
            "await it. Write this saga `@saga async def` too (`await s.child(...)`), or nest "
            "a sync saga."
        )
    if is_async and not child.is_async:
        raise SagaDefinitionError(
            f"{where}: {child.name!r} is a sync saga, and an async saga nests only async "
            "sagas (the child runs on this saga's AsyncSagaContext). Write the child "
            "`@saga async def` (a Saga(...) builder is sync), or run it with "
            "`await s.ctx.invoke(...)` as a separate execution."
        )


def _check_result_type(where: str, action: Callable[..., Any], result_type: Any) -> None:
    if result_type is not None:
        check_type(result_type, what=where)
    else:
        check_type(return_type(action), what=where, fn=action)


def check_saga_types(saga: str, *, input_type: Any, result_type: Any) -> None:
    """Check a saga's event and result types can cross the journal as JSON.

    Raises:
        SerializationError: naming the saga and which of the two types is at fault.
    """
    check_type(input_type, what=f"the input event of saga {saga!r}")
    check_type(result_type, what=f"the result of saga {saga!r}")


_UNRECORDABLE = tuple(
    f"{e.__module__}.{e.__qualname__}" for e in (SerializationError, PayloadTooLargeError)
)
"""The recorded error types of a step whose body returned a value that could not be
recorded (not serializable, not of its type, too large)."""


def undo_on_failure(error_type: str, compensate_uncertain: bool) -> bool:
    """Whether a step that failed for good (with the recorded ``error_type``) still gets its
    compensation on rollback.

    Yes with ``compensate_uncertain=True``, and always when it failed with a
    SerializationError: its body ran and returned, so its effect happened; only its value
    could not be recorded. The undo then gets ``uncertain=True`` and the error, as for an
    uncertain step, and the effect is never left behind silently."""
    return compensate_uncertain or error_type in _UNRECORDABLE


def stopped_error(kind: str, reason: str) -> ErrorInfo:
    """The error an uncertain undo receives for a step a stop (cancel, deadline) ended
    while it waited to retry or had an at-most-once attempt unfinished: the stop as the
    journal records it."""
    return ErrorInfo(type=StopKind(kind).error_type, message=reason)


def _check_timeout(where: str, option: str, value: object) -> None:
    """Refuse a timeout ``StepConfig`` would refuse, naming the step and the option."""
    if value is None:
        return
    try:
        StepConfig(timeout=value)  # type: ignore[arg-type]  # checking what a caller gave
    except ValidationError as e:
        raise SagaDefinitionError(f"{where}: {option}={value!r} is refused: {e}") from None


def resolve_kind(options: StepOptions, *, pivot: str | None) -> StepKind:
    """The effective kind: the given one, else compensatable before the pivot and retriable
    after it. Call after :func:`check_step`."""
    if options.kind is not None:
        return StepKind(options.kind)
    if pivot is not None and options.compensate is None:
        return StepKind.RETRIABLE
    return StepKind.COMPENSATABLE


def _parse_kind(where: str, kind: StepKind | str | None) -> StepKind | None:
    if kind is None:
        return None
    try:
        return StepKind(kind)
    except ValueError:
        raise SagaDefinitionError(
            f"{where}: unknown step kind {kind!r}; use one of "
            f"{', '.join(k.value for k in StepKind)}"
        ) from None
