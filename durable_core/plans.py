"""Drive a plan — a generator of requests — to its end, in this thread or awaited.

A plan yields each thing it needs done (an operation's plan in
:mod:`durable_core.operations._core` yields the user code to call; a saga's rollback and
operator-park loops in :mod:`saga.compensation` yield the durable operations to make) and
receives the outcome; it does nothing itself that differs between the sync and the async
surface. :func:`drive` performs its requests in the caller's thread, :func:`drive_async`
by awaiting them. The two differ only in the ``await``, so a plan records the same
operations under either.

Invariants:
- A request's value is sent back into the loop; its error (any ``BaseException``,
  control-flow signals such as a suspension and ``CancelledError`` included) is thrown
  back in at the ``yield``, so the loop's own ``try``/``except`` decides what it means,
  exactly as if the operation had been made inline.
- The loop is closed when the driver leaves, however it leaves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Q = TypeVar("Q")


@dataclass(frozen=True)
class _Done(Generic[T]):
    value: T


def _advance(loop: Generator[Q, Any, T], reply: Any, error: BaseException | None) -> Q | _Done[T]:
    """Send ``reply`` (or throw ``error``) into ``loop``: its next request, or its end."""
    try:
        return loop.send(reply) if error is None else loop.throw(error)
    except StopIteration as done:
        return _Done(done.value)


def drive(loop: Generator[Q, Any, T], perform: Callable[[Q], Any]) -> T:
    """Run ``loop`` to its end, performing each request: its value is sent back, its error
    (any, control-flow signals included) thrown back in, so the loop decides what it means."""
    with contextlib.closing(loop):
        step = _advance(loop, None, None)
        while not isinstance(step, _Done):
            try:
                reply = perform(step)
            except BaseException as e:  # the loop decides (it re-raises what it does not absorb)
                step = _advance(loop, None, e)
            else:
                step = _advance(loop, reply, None)
        return step.value


async def drive_async(loop: Generator[Q, Any, T], perform: Callable[[Q], Awaitable[Any]]) -> T:
    """:func:`drive`, with requests performed by awaiting ``perform``."""
    with contextlib.closing(loop):
        step = _advance(loop, None, None)
        while not isinstance(step, _Done):
            try:
                reply = await perform(step)
            except BaseException as e:  # CancelledError included: the loop re-raises it
                step = _advance(loop, None, e)
            else:
                step = _advance(loop, reply, None)
        return step.value
