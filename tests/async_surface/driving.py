"""Driving executions invocation by invocation, and comparing journals.

- :func:`drive` runs one invocation at a time, taking turns between several runtimes on one
  store and virtual clock: with a sync and an async runtime that both register a function
  under one name, the function changes surface between every two invocations.
- :func:`journal` is what must be identical between surfaces: every record of an execution
  and of the children it invoked, without timestamps, tokens or tracebacks (file paths).
- :func:`replay_finished` re-runs a function against a finished journal with a stale lease:
  any attempt to record raises, so a clean replay proves nothing ran again.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from unittest import mock

from durable_core import ExecutionStatus, MemoryStore, OperationStatus, OperationType, Runtime
from durable_core._context_base import CALLBACK_SUFFIX
from durable_core.function import DurableFunction
from durable_core.journal import InvocationOptions, Journal
from durable_core.records import Lease
from durable_core.runtime.invocation import run_invocation
from durable_core.stores.base import InvocationEnd, Store
from durable_core.testing import VirtualClock

from .programs import CallbackEnd

EXECUTION_ID = "parity"
MAX_ROUNDS = 500


def drive(
    runtimes: Sequence[Runtime],
    execution_id: str,
    callbacks: Mapping[str, CallbackEnd],
    clock: VirtualClock,
) -> None:
    """Run due invocations (runtimes taking turns) until ``execution_id`` ends or waits for
    nothing this driver can give. Callbacks are completed by name as ``callbacks`` says
    (a ``timeout`` one is left to time out); time skips to the next wake-up."""
    store = runtimes[0].store
    turn = 0
    for _ in range(MAX_ROUNDS):
        if store.get_execution(execution_id).status.is_terminal:
            return
        if _complete_callbacks(runtimes[0], callbacks):
            continue
        if runtimes[turn % len(runtimes)].tick(limit=1):
            turn += 1
            continue
        wakes = [
            ex.wake_at
            for ex in store.list_executions(status=ExecutionStatus.RUNNING, limit=1000)
            if ex.wake_at is not None
        ]
        if not wakes:
            return
        clock.set(max(min(wakes), clock.now()))
    raise AssertionError(f"{execution_id} still running after {MAX_ROUNDS} rounds")


def _complete_callbacks(rt: Runtime, callbacks: Mapping[str, CallbackEnd]) -> bool:
    done = False
    for ex in rt.store.list_executions(status=ExecutionStatus.RUNNING, limit=1000):
        for op in rt.store.load_operations(ex.id):
            name = (op.name or "").removesuffix(CALLBACK_SUFFIX)  # wait_for_callback's own
            end = callbacks.get(name)
            if (
                op.type is not OperationType.CALLBACK
                or op.status is not OperationStatus.STARTED
                or op.callback_id is None
                or end in (None, "timeout")
            ):
                continue
            if end == "success":
                rt.send_callback_success(op.callback_id, {"cb": name})
            else:
                rt.send_callback_failure(op.callback_id, f"{name} refused")
            done = True
    return done


def records(store: Store, execution_id: str) -> list[tuple[Any, ...]]:
    """One execution's records, by id, without timestamps, tokens or tracebacks."""
    return [
        (
            op.id,
            op.parent_id,
            op.type.value,
            op.sub_type,
            op.name,
            op.status.value,
            op.attempt,
            op.result,
            op.payload,
            op.child_execution_id,
            op.privileged,
            op.heartbeat_timeout_s,
            None if op.error is None else (op.error.type, op.error.message, op.error.data),
        )
        for op in sorted(store.load_operations(execution_id), key=lambda o: o.id)
    ]


def journal(store: Store, execution_id: str) -> dict[str, Any]:
    """The execution and its invoked children: status, result, error and records."""
    out: dict[str, Any] = {}
    todo = [execution_id]
    while todo:
        eid = todo.pop()
        ex = store.get_execution(eid)
        error = None if ex.error is None else (ex.error.type, ex.error.message)
        out[eid] = (ex.function, ex.status.value, ex.result, error, records(store, eid))
        todo += [
            op.child_execution_id for op in store.load_operations(eid) if op.child_execution_id
        ]
    return out


def result_of(store: Store, execution_id: str) -> Any:
    ex = store.get_execution(execution_id)
    assert ex.status is ExecutionStatus.SUCCEEDED, (ex.status, ex.error, ex.waiting_for)
    return json.loads(ex.result or "null")


@contextmanager
def deterministic_values() -> Iterator[None]:
    """``ctx.random``/``ctx.uuid4`` draw from a fixed sequence (the same in every run)."""
    rng = random.Random(1234)
    with (
        mock.patch.object(random.SystemRandom, "random", side_effect=rng.random),
        mock.patch.object(
            uuid, "uuid4", side_effect=lambda: uuid.UUID(int=rng.getrandbits(128), version=4)
        ),
    ):
        yield


def run_program(
    functions: Sequence[DurableFunction[Any, Any]],
    callbacks: Mapping[str, CallbackEnd],
    extra: Sequence[DurableFunction[Any, Any]] = (),
) -> tuple[MemoryStore, VirtualClock]:
    """Run one execution to its end, invocation ``i`` with ``functions[i % len]``."""
    store, clock = MemoryStore(), VirtualClock()
    runtimes = [Runtime(store, clock=clock, functions=[fn, *extra]) for fn in functions]
    with deterministic_values():
        runtimes[0].start(functions[0], None, execution_id=EXECUTION_ID)
        drive(runtimes, EXECUTION_ID, callbacks, clock)
    return store, clock


def replay_finished(
    store: Store, clock: VirtualClock, fn: DurableFunction[Any, Any], execution_id: str
) -> tuple[InvocationEnd, int]:
    """Run ``fn`` from the top against the finished journal; its end and its writes (0)."""
    ex = store.get_execution(execution_id)
    lease = Lease(
        execution_id=ex.id,
        owner="replay-check",
        fence=ex.fence + 1000,
        expires=clock.now() + timedelta(hours=1),
    )
    services = Runtime(store, clock=clock, functions=[fn])
    journal_ = Journal(
        execution=ex,
        operations=store.load_operations(ex.id),
        store=store,
        lease=lease,
        clock=clock,
        serde=services.serde,
        options=InvocationOptions(
            lease_ttl=timedelta(seconds=60), inline_retry_threshold=timedelta(seconds=1)
        ),
        services=services,
    )
    end = run_invocation(fn, journal_)
    return end, journal_.writes
