"""Durable functions the server tests drive with an in-process worker."""

from __future__ import annotations

from typing import Any

from tenacity import stop_after_attempt, wait_none

from durable_core import DurableContext, RetryPolicy, StepContext, durable
from saga import CompensationContext, SagaContext, StepKind, saga

ONCE = RetryPolicy(stop=stop_after_attempt(1), wait=wait_none())


def _ok(sc: StepContext) -> str:
    return "done"


def _boom(sc: StepContext) -> str:
    raise RuntimeError("the car is sold out")


def _undo_fails(c: CompensationContext) -> None:
    raise RuntimeError("the hotel's API is down")


@saga
def stuck_rollback(s: SagaContext, event: Any) -> str:
    """Books, fails, and parks: the first undo always fails."""
    s.step("book-hotel", _ok, compensate=_undo_fails, compensation_retry=ONCE)
    return s.step("book-car", _boom, retry=ONCE)


@durable
def waits_for_approval(ctx: DurableContext, event: Any) -> Any:
    """Waits for one plain callback and returns its result."""
    return ctx.create_callback("approval").result()


def _undo(c: CompensationContext) -> None:
    pass


@saga
def pivoted_trip(s: SagaContext, event: Any) -> str:
    """Reserves, charges (the pivot), waits for the shipper, ships: never rolls back."""
    s.step("reserve", _ok, compensate=_undo)
    s.step("charge", _ok, kind=StepKind.PIVOT)
    s.ctx.create_callback("shipper").result()
    return s.step("ship", _ok)
