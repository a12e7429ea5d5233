"""The rules a saga declaration must follow, checked before anything runs or is recorded.

Shared by ``s.step`` (checked when the step is declared, on the saga's first run) and the
``Saga`` builder (checked by ``.step()``, at definition time).

Invariants:
- Step names are printable, short, unique within a saga, and never use the prefixes the
  saga reserves for its own journal records nor the path separator.
- A saga has at most one pivot; a pivot has no compensation; a nested saga has none.
- Nothing compensatable follows the pivot: an explicit ``COMPENSATABLE`` kind or a
  ``compensate=`` after it is an error, and a step with neither is retriable.
- A retriable step has no compensation.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Collection
from typing import Any

from durable_core import RetryPolicy, StepConfig, ValidationError
from saga._journal import PATH_SEPARATOR, RESERVED_PREFIXES
from saga.errors import SagaDefinitionError
from saga.policy import StepKind

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
    *,
    action: object,
    compensate: object,
    kind: StepKind | str | None,
    compensate_uncertain: bool,
    retry: object,
    timeout: object = None,
    compensation_timeout: object = None,
    pivot: str | None,
    nested: bool,
) -> None:
    """Validate one step declaration (shared by ``s.step`` and the builder)."""
    where = f"saga {saga!r}, step {name!r}"
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
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise SagaDefinitionError(f"{where}: retry must be a durable_core.RetryPolicy")
    if compensate_uncertain and compensate is None:
        raise SagaDefinitionError(f"{where}: compensate_uncertain=True needs compensate=")
    step_kind = _parse_kind(where, kind)
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


def _check_timeout(where: str, option: str, value: object) -> None:
    """Refuse a timeout ``StepConfig`` would refuse, naming the step and the option."""
    if value is None:
        return
    try:
        StepConfig(timeout=value)  # type: ignore[arg-type]  # checking what a caller gave
    except ValidationError as e:
        raise SagaDefinitionError(f"{where}: {option}={value!r} is refused: {e}") from None


def resolve_kind(kind: StepKind | str | None, compensate: object, *, pivot: str | None) -> StepKind:
    """The effective kind: the given one, else compensatable before the pivot and retriable
    after it. Call after :func:`check_step`."""
    if kind is not None:
        return StepKind(kind)
    return (
        StepKind.RETRIABLE if pivot is not None and compensate is None else StepKind.COMPENSATABLE
    )


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


def return_type(fn: Callable[..., Any]) -> Any:
    """The return annotation of ``fn`` (or of its ``__call__``), else ``Any``: the type a
    step's result is recorded as."""
    target: Any = inspect.unwrap(fn)
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        target = getattr(target, "__call__", target)  # noqa: B004 - a callable object's method
    try:
        hints = typing.get_type_hints(target)
    except Exception:
        return Any
    return hints.get("return", Any)
