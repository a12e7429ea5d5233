"""The one operation core: "replayed → return or raise the record; else run and record".

Every operation (step, wait, callback, condition, child context, batch, invoke) is a
:class:`DurableOp`. Its :meth:`DurableOp.plan` is a generator holding all of the
operation's replay rules: it allocates the operation's position (``Scope.begin``: the
consistency check and the stop delivery), returns or raises a finished record through
:meth:`DurableOp.replay`, and otherwise runs :meth:`DurableOp.execute`, which records as it
goes. Where the operation must run user code or wait, the plan *yields an effect* instead
of doing it:

- :class:`Call` — call a user function (a step body, a condition check, a child context's
  body, with the context the operation made for it);
- :class:`Sleep` — sleep an inline retry delay on the runtime's clock;
- :class:`RunBranches` — run a batch's branches.

Two drivers carry the effects out (through :mod:`durable_core.plans`): :func:`run_sync`
(the caller's thread; branches on threads) and :func:`run_async` (``await``; sync step
bodies on a thread, async ones on the loop, branches as asyncio tasks). So the sync and
async surfaces differ only in how user code is called, never in what is recorded: the
same program writes the same journal under either, and a journal written by one replays
under the other.

Invariants:
- Only the driver's caller writes the journal (through the plan); a body running on a
  thread returns its value or error to the driver, which hands it to the plan.
- An effect's error (any ``BaseException``, control-flow signals included) is thrown into
  the plan at the ``yield``, so the plan's own ``try``/``except`` decides what it means,
  exactly as if the call had been made inline.
- A sync durable function cannot await: a coroutine a body returns to :func:`run_sync` is
  closed (never left un-awaited) and reported as an error naming the operation.
"""

from __future__ import annotations

import asyncio
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

from durable_core.errors import ValidationError
from durable_core.operations._attempt import run_attempt, run_attempt_async
from durable_core.plans import drive, drive_async
from durable_core.records import Operation, OperationStatus, OperationType

if TYPE_CHECKING:
    from durable_core.clock import Clock
    from durable_core.operations._batch_run import BatchRun
    from durable_core.replay import Scope, Slot

T = TypeVar("T")

FINISHED = frozenset({OperationStatus.SUCCEEDED, OperationStatus.FAILED})
"""The statuses a finished record of most operations has (stops are raised by ``begin``)."""


@dataclass(frozen=True)
class Call:
    """Effect: call ``fn(*args)`` and hand back its value (or throw its error)."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    what: str
    """The operation, for errors (``step 'charge'``)."""
    offload: bool = False
    """User I/O code (a step body, a condition check): under ``run_async`` a sync one runs
    on a thread so it does not block the loop. Otherwise it is called on the loop."""
    timeout: timedelta | None = None
    attempt: int = 0
    step: str = ""


@dataclass(frozen=True)
class Sleep:
    """Effect: sleep ``seconds`` on ``clock`` (an inline retry delay)."""

    clock: Clock
    seconds: float


@dataclass(frozen=True)
class RunBranches:
    """Effect: run a batch's undecided branches until it is decided or none can run."""

    run: BatchRun


Effect = Call | Sleep | RunBranches
Plan = Generator[Effect, Any, T]


class AwaitableReturnedError(ValidationError):
    """A sync durable function's body returned an awaitable it cannot await: a programming
    error no retry can fix, so a step fails for good at once."""


@runtime_checkable
class AsyncSleeper(Protocol):
    """A clock that can also sleep without blocking an event loop (optional)."""

    async def sleep_async(self, seconds: float) -> None:
        """Sleep ``seconds`` (a virtual clock advances instead)."""
        ...


class DurableOp(ABC, Generic[T]):
    """One call of an operation: its replay rules, written once for both surfaces.

    Subclasses check their arguments in ``__init__`` (nothing is recorded for a bad call),
    say what a finished record means in :meth:`replay`, and run and record in
    :meth:`execute`.
    """

    op_type: ClassVar[OperationType]

    def __init__(self, scope: Scope, name: str, sub_type: str) -> None:
        self.scope = scope
        self.journal = scope.journal
        self.name = name
        self.sub_type = sub_type

    def begin(self) -> Slot:
        """Allocate this operation's position (see ``Scope.begin``)."""
        return self.scope.begin(self.op_type, self.name, self.sub_type)

    def finished(self, rec: Operation) -> bool:
        """True if ``rec`` is this operation's final record (replay it, run nothing)."""
        return rec.status in FINISHED

    @abstractmethod
    def replay(self, rec: Operation) -> T:
        """The value a finished record gives, or raise the error it records."""

    @abstractmethod
    def execute(self, slot: Slot) -> Plan[T]:
        """Run (or resume) the operation at ``slot`` and record its outcome."""

    def plan(self) -> Plan[T]:
        """The operation from start to end, as a plan a driver carries out (reported to
        the invocation's instrumentation, if it has any: see :mod:`durable_core._hooks`)."""
        slot = self.begin()
        rec = slot.recorded
        hooks = self.journal.instrumentation
        if rec is not None and self.finished(rec):
            self.scope.after_replayed()
            if hooks is not None:
                hooks.replayed(self, slot)
            return self.replay(rec)
        if hooks is None:
            return (yield from self.execute(slot))
        return (yield from hooks.observe(self, slot, self.execute(slot)))


class InstantOp(DurableOp[T]):
    """An operation that runs no user code: it records and returns (or suspends) at once."""

    @abstractmethod
    def settle(self, slot: Slot) -> T:
        """Record what is due at ``slot`` and return the value (or raise, or suspend)."""

    def execute(self, slot: Slot) -> Plan[T]:
        return self.settle(slot)
        yield  # a generator with nothing to yield: there is no user code to run


def run_sync(op: DurableOp[T]) -> T:
    """Carry out ``op``'s plan in this thread; return its value or raise its error."""
    return drive(op.plan(), _do_sync)


async def run_async(op: DurableOp[T]) -> T:
    """Carry out ``op``'s plan on the running event loop; return its value or raise."""
    return await drive_async(op.plan(), _do_async)


def _do_sync(effect: Effect) -> Any:
    if isinstance(effect, Call):
        value = run_attempt(
            effect.fn,
            *effect.args,
            timeout=effect.timeout,
            step=effect.step,
            attempt=effect.attempt,
        )
        if inspect.isawaitable(value):
            _discard(value)
            raise AwaitableReturnedError(
                f"{effect.what}: its function returned an awaitable ({type(value).__name__}); "
                "a sync durable function cannot await it. Make the durable function "
                "`async def` (it then receives an AsyncDurableContext) or make this body sync."
            )
        return value
    if isinstance(effect, Sleep):
        effect.clock.sleep(effect.seconds)
        return None
    from durable_core.operations._batch_run import run_branches_on_threads

    return run_branches_on_threads(effect.run)


async def _do_async(effect: Effect) -> Any:
    if isinstance(effect, Call):
        return await run_attempt_async(
            effect.fn,
            *effect.args,
            timeout=effect.timeout,
            step=effect.step,
            attempt=effect.attempt,
            offload=effect.offload,
        )
    if isinstance(effect, Sleep):
        if isinstance(effect.clock, AsyncSleeper):
            await effect.clock.sleep_async(effect.seconds)
        else:  # a clock with a blocking sleep only: keep the loop free
            await asyncio.to_thread(effect.clock.sleep, effect.seconds)
        return None
    from durable_core.operations._batch_tasks import run_branches_as_tasks

    return await run_branches_as_tasks(effect.run)


def _discard(value: object) -> None:
    close = getattr(value, "close", None)  # a coroutine: close it, never "never awaited"
    if callable(close):
        close()
