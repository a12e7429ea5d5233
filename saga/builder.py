"""``Saga("name")``: a saga declared as data, for sagas that are a fixed sequence of steps.

Example::

    book_tour = (
        Saga("book-tour")
        .step("book-flight", book_flight, compensate=cancel_flight)
        .step("book-hotel", book_hotel, compensate=cancel_hotel)
        .step("book-car", book_car, compensate=cancel_car)
    )

Each action is called as ``action(sc, event, results)``: the step context (with the
idempotency key its compensation will also receive), the saga's input event, and a read-only
mapping of the results of the steps before it, by step name. The saga's result is the dict of
every step's result. A builder saga runs exactly like ``@saga`` (it is the same durable
function machinery: ``s.step(name, action, event, results, ...)`` per step).

Invariants:
- Every declaration error (duplicate name, non-callable action or compensation, a second
  pivot, a compensatable step after the pivot) is raised by ``.step()``, at definition time.
- ``.step()`` returns a new ``Saga``; a builder is never mutated, so a partially built saga
  can be shared safely.
- A builder saga is sync: its actions and compensations are sync functions, and it nests
  in sync sagas (an async saga is written ``@saga async def``).
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from durable_core import RetryPolicy, StepContext, StepSemantics
from saga.compensation import Compensation
from saga.context import SagaContext
from saga.definition import SagaDefinition
from saga.options import StepOptions
from saga.policy import StepKind
from saga.rules import check_step, check_step_name, resolve_kind

BuilderAction = Callable[[StepContext, Any, Mapping[str, Any]], Any]
"""A builder step's action: ``action(sc, event, results) -> result``."""


@dataclass(frozen=True, kw_only=True)
class SagaStep:
    """One declared step of a builder saga."""

    name: str
    """Unique within the saga."""
    action: BuilderAction
    """Called as ``action(sc, event, results)``."""
    kind: StepKind
    """The effective kind (compensatable before the pivot, retriable after it)."""
    options: StepOptions
    """The step's options as ``.step()`` was given them, its kind resolved (``kind``)."""


class Saga(SagaDefinition[Any, dict[str, Any]]):
    """A builder for a saga that is a fixed sequence of steps.

    Args:
        name: the saga's name.
        version: code version; an execution is never resumed by another version.
        deadline: cancel and roll back the saga if it still runs this long after it started.
        input_type: the type the input event is validated into (default: any JSON).
        function_name: the durable function's name. Default: ``module:attribute`` of the
            module-level variable the saga is assigned to (so a worker can import it), or
            ``name`` if there is none (then register the saga with the worker's Runtime).
    """

    def __init__(
        self,
        name: str,
        *,
        version: str | None = None,
        deadline: timedelta | None = None,
        input_type: Any = Any,
        function_name: str | None = None,
    ) -> None:
        super().__init__(
            name=name,
            version=version,
            deadline=deadline,
            input_type=input_type,
            result_type=dict[str, Any],
        )
        self._steps: tuple[SagaStep, ...] = ()
        self._function_name = function_name
        self._module: str | None = sys._getframe(1).f_globals.get("__name__")

    @property
    def steps(self) -> tuple[SagaStep, ...]:
        """The declared steps, in order."""
        return self._steps

    @property
    def pivot(self) -> str | None:
        """The name of the pivot step, if one is declared."""
        return next((s.name for s in self._steps if s.kind is StepKind.PIVOT), None)

    def step(
        self,
        name: str,
        action: BuilderAction,
        *,
        compensate: Compensation | None = None,
        kind: StepKind | str | None = None,
        retry: RetryPolicy | None = None,
        compensation_retry: RetryPolicy | None = None,
        compensate_uncertain: bool = False,
        semantics: StepSemantics = StepSemantics.AT_LEAST_ONCE_PER_RETRY,
        timeout: timedelta | None = None,
        compensation_timeout: timedelta | None = None,
    ) -> Saga:
        """Return a new saga with one more step (see :meth:`SagaContext.step` for options).

        Raises:
            SagaDefinitionError: the step is invalid in this saga.
        """
        options = StepOptions(
            compensate=compensate,
            kind=kind,
            retry=retry,
            compensation_retry=compensation_retry,
            compensate_uncertain=compensate_uncertain,
            semantics=semantics,
            timeout=timeout,
            compensation_timeout=compensation_timeout,
        )
        check_step_name(self.name, name, {s.name for s in self._steps})
        pivot = self.pivot
        check_step(self.name, name, action, options, pivot=pivot, nested=False, is_async=False)
        step_kind = resolve_kind(options, pivot=pivot)
        spec = SagaStep(
            name=name,
            action=action,
            kind=step_kind,
            options=dataclasses.replace(options, kind=step_kind),
        )
        new = copy.copy(self)
        new.__dict__.pop("durable_function", None)  # the cached property of the old saga
        new._steps = (*self._steps, spec)
        return new

    def run_body(self, s: SagaContext, event: Any) -> dict[str, Any]:
        """Run every step in order; return their results by name."""
        results: dict[str, Any] = {}
        for spec in self._steps:
            results[spec.name] = s.step(
                spec.name,
                spec.action,
                event,
                MappingProxyType(dict(results)),
                **spec.options.keywords(),
            )
        return results

    def _durable_name(self) -> str:
        if self._function_name:
            return self._function_name
        module = sys.modules.get(self._module or "")
        for attr, value in vars(module).items() if module is not None else ():
            if value is self:
                return f"{self._module}:{attr}"
        return self.name

    def __repr__(self) -> str:
        return f"<Saga {self.name!r} steps={[s.name for s in self._steps]}>"
