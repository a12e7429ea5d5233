"""Privileged callbacks: refused to token holders, completed only by their owner's API.

A callback made with ``create_callback(..., privileged=True)`` is what a saga parks on for
an operator. Anyone who learns its token must not be able to complete it through the generic
paths; the engine's own timeouts and cancellations still end it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from durable_core import (
    CallbackTimeoutError,
    DurableContext,
    ExecutionStatus,
    OperationStatus,
    PrivilegedCallbackError,
    Runtime,
    SQLiteStore,
    ValidationError,
    durable,
)
from durable_core.testing import VirtualClock


@durable(name="tests.core.privileged:decide")
def decide(ctx: DurableContext, event: None) -> Any:
    cb = ctx.create_callback("decision", timeout=timedelta(days=1), privileged=True)
    try:
        return {"decided": cb.result()}
    except CallbackTimeoutError:
        return {"timed_out": True}


@durable(name="tests.core.privileged:decide")
def decide_before_the_flag(ctx: DurableContext, event: None) -> Any:
    """The same function as written before privileged callbacks existed."""
    cb = ctx.create_callback("decision", timeout=timedelta(days=1))
    try:
        return {"decided": cb.result()}
    except CallbackTimeoutError:
        return {"timed_out": True}


def _waiting(tmp_path: Path, fn: Any = decide) -> tuple[Runtime, str]:
    rt = Runtime(SQLiteStore(tmp_path / "s.sqlite3"), functions=[fn], clock=VirtualClock())
    ex = rt.run(fn, None, execution_id="e1")
    assert ex.status is ExecutionStatus.RUNNING
    (cb,) = [op for op in rt.operations("e1") if op.name == "decision"]
    assert cb.callback_id is not None
    return rt, cb.callback_id


def _state(rt: Runtime) -> tuple[object, object]:
    return rt.get("e1"), rt.operations("e1")


@pytest.mark.parametrize("path", ["success", "success_json", "failure", "heartbeat"])
def test_every_generic_runtime_path_is_refused_and_changes_nothing(
    tmp_path: Path, path: str
) -> None:
    rt, token = _waiting(tmp_path)
    before = _state(rt)
    send = {
        "success": lambda: rt.send_callback_success(token, {"action": "skip"}),
        "success_json": lambda: rt.send_callback_success_json(token, '{"action": "skip"}'),
        "failure": lambda: rt.send_callback_failure(token, "forged"),
        "heartbeat": lambda: rt.send_callback_heartbeat(token),
    }[path]

    with pytest.raises(PrivilegedCallbackError, match="'decision' of execution 'e1'"):
        send()

    assert _state(rt) == before
    assert rt.drive("e1").status is ExecutionStatus.RUNNING  # still waiting for its owner


def test_the_privileged_path_completes_it(tmp_path: Path) -> None:
    rt, token = _waiting(tmp_path)

    done = rt.send_privileged_callback_success(token, {"approved": True})

    assert (done.status, done.privileged) == (OperationStatus.SUCCEEDED, True)
    ex = rt.drive("e1")
    assert ex.status is ExecutionStatus.SUCCEEDED
    assert rt.result("e1") == {"decided": {"approved": True}}


def test_the_engine_still_times_it_out_and_cancels_it(tmp_path: Path) -> None:
    rt, _ = _waiting(tmp_path)
    assert isinstance(rt.clock, VirtualClock)
    rt.clock.advance(timedelta(days=1))
    rt.drive("e1")
    assert rt.result("e1") == {"timed_out": True}

    other, _ = _waiting(tmp_path / "other")
    other.cancel("e1", "customer called")
    assert other.drive("e1").status is ExecutionStatus.CANCELLED
    assert other.operations("e1")[0].status is OperationStatus.CANCELLED


def test_a_journal_recorded_before_the_flag_replays_and_the_owner_completes_it(
    tmp_path: Path,
) -> None:
    # An execution parked by the old code (callback without the flag) is resumed by the new
    # code asking for a privileged callback at that position: no NonDeterminismError.
    old, token = _waiting(tmp_path, decide_before_the_flag)
    assert old.operations("e1")[0].privileged is None
    new = Runtime(SQLiteStore(tmp_path / "s.sqlite3"), functions=[decide], clock=old.clock)
    assert new.drive("e1").status is ExecutionStatus.RUNNING

    new.send_privileged_callback_success(token, "ok")

    assert new.drive("e1").status is ExecutionStatus.SUCCEEDED
    assert new.result("e1") == {"decided": "ok"}


def test_a_privileged_callback_cannot_have_a_heartbeat_timeout(tmp_path: Path) -> None:
    @durable
    def beating(ctx: DurableContext, event: None) -> Any:
        return ctx.create_callback("b", heartbeat_timeout=60, privileged=True).result()

    rt = Runtime(SQLiteStore(tmp_path / "s.sqlite3"), clock=VirtualClock())
    ex = rt.run(beating, None, execution_id="hb")

    assert ex.status is ExecutionStatus.FAILED
    assert ex.error is not None
    assert ex.error.type == f"{ValidationError.__module__}.ValidationError"
    assert "cannot have a heartbeat timeout" in ex.error.message
    assert rt.operations("hb") == []
