"""What both saga contexts share: the saga's state, its read-only views, and ``s.branch``.

:class:`saga.SagaContext` (a sync saga) and :class:`saga.AsyncSagaContext` (an ``async
def`` saga) are thin surfaces over this base. Each plans its steps, parallel groups and
nested sagas with the same code (:func:`saga._plan.prepare_step`,
:func:`saga.parallel.prepare_parallel`, :meth:`saga._state.SagaState.declare_child`),
makes the one durable call of each on its own durable context (called, or awaited), and
settles the outcome with the same code again; a failure of the body is handled by
:mod:`saga._failure`, and the rollback is :func:`saga.compensation.rollback_loop` under
either driver. So the two write the same journal records for the same saga: a journal
written by one replays under the other.

Invariants:
- One :class:`saga._state.SagaState` per saga run (a nested saga has its own); it knows
  which surface it runs on (``is_async``), so the declaration rules can refuse what that
  surface cannot run.
- ``s.branch`` only builds a :class:`saga.SagaBranch` (it runs nothing), so it is the same
  method on both surfaces.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar, Generic, TypeVar, TypeVarTuple

from durable_core import (
    AsyncDurableContext,
    DurableContext,
    RetryPolicy,
    StepContext,
    StepSemantics,
)
from saga._state import SagaState
from saga.compensation import Compensation
from saga.options import StepOptions
from saga.parallel import SagaBranch
from saga.policy import StepKind

C = TypeVar("C", DurableContext, AsyncDurableContext)
T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class SagaSurface(Generic[C]):
    """The state and the views a saga context has on either surface."""

    is_async: ClassVar[bool] = False
    """True for the async surface (``AsyncSagaContext``)."""

    def __init__(self, ctx: C, *, saga: str, path: str = "") -> None:
        self._ctx: C = ctx
        self._state = SagaState(
            saga=saga, execution_id=ctx.execution_id, path=path, is_async=self.is_async
        )

    # --- read-only views -------------------------------------------------------------------

    @property
    def ctx(self) -> C:
        """The durable context, for waits, callbacks, conditions and child contexts."""
        return self._ctx

    @property
    def execution_id(self) -> str:
        """The id of the running execution."""
        return self._ctx.execution_id

    @property
    def name(self) -> str:
        """The saga's name."""
        return self._state.saga

    @property
    def logger(self) -> Any:
        """The context's structlog logger (silent while replaying)."""
        return self._ctx.logger

    @property
    def past_pivot(self) -> bool:
        """True once the pivot step succeeded: the saga can no longer roll back."""
        return self._state.pivot_done

    @property
    def undo_stack(self) -> tuple[str, ...]:
        """The saga paths of the steps a rollback would compensate now, in forward order."""
        return self._state.undo_paths

    # --- declarations that run nothing ------------------------------------------------------

    def branch(
        self,
        name: str,
        action: Callable[[StepContext, *Ts], T],
        /,
        *args: *Ts,
        compensate: Compensation | None = None,
        kind: StepKind | str | None = None,
        retry: RetryPolicy | None = None,
        compensation_retry: RetryPolicy | None = None,
        compensate_uncertain: bool = False,
        semantics: StepSemantics = StepSemantics.AT_LEAST_ONCE_PER_RETRY,
        result_type: Any = None,
        timeout: timedelta | None = None,
        compensation_timeout: timedelta | None = None,
    ) -> SagaBranch[T]:
        """Declare one branch of ``s.parallel`` (same options as ``s.step``).

        Nothing runs until the branch is given to ``s.parallel``, which checks it. In an
        async saga the action and the compensation may be ``async def``.
        """
        options = StepOptions(
            compensate=compensate,
            kind=kind,
            retry=retry,
            compensation_retry=compensation_retry,
            compensate_uncertain=compensate_uncertain,
            semantics=semantics,
            result_type=result_type,
            timeout=timeout,
            compensation_timeout=compensation_timeout,
        )
        return SagaBranch(name, action, tuple(args), options)
