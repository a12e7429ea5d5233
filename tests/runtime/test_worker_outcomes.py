"""What a worker says and refuses: one log line per outcome; only registered functions run.

The log lines are captured with ``structlog.testing.capture_logs``; the store records that
name unregistered functions are written directly, as a hostile or stale writer would.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from durable_core import (
    DurableContext,
    ExecutionStatus,
    MemoryStore,
    RetryPolicy,
    Runtime,
    RuntimeOptions,
    durable,
)
from durable_core.records import Execution
from durable_core.runtime.worker import Worker
from durable_core.testing import VirtualClock
from saga import SagaContext, saga

SECRET = "tok-SECRET-never-logged"
CODE = {"version": "old"}


@durable(name="tests:ok")
def ok(ctx: DurableContext, event: dict[str, str]) -> str:
    return ctx.step("work", lambda sc: f"done {event['card']}")


@durable(name="tests:boom")
def boom(ctx: DurableContext, event: None) -> None:
    raise RuntimeError("the warehouse is on fire")


@durable(name="tests:waits")
def waits(ctx: DurableContext, event: None) -> None:
    ctx.step("first", lambda sc: 1)
    ctx.wait("pause" if CODE["version"] == "old" else "renamed", timedelta(hours=1))


@saga(name="tests:undone")
def undone(s: SagaContext, event: None) -> None:
    s.step("charge", lambda sc: 1, compensate=lambda c: None)
    s.step("ship", _fail, retry=RetryPolicy.no_retry())


def _fail(sc: Any) -> None:
    raise ValueError("no truck")


def _undo_fails(c: Any) -> None:
    raise ConnectionError("the refund service is down")


@saga(name="tests:parks")
def parks(s: SagaContext, event: None) -> None:
    s.step(
        "charge",
        lambda sc: 1,
        compensate=_undo_fails,
        compensation_retry=RetryPolicy.no_retry(),
    )
    s.step("ship", _fail, retry=RetryPolicy.no_retry())


def _record(rt: Runtime, eid: str, function: str, version: str | None = None) -> None:
    now = rt.clock.now()
    rt.store.create_execution(
        Execution(
            id=eid,
            function=function,
            input="null",
            created_at=now,
            updated_at=now,
            wake_at=now,
            version=version,
        )
    )


def _outcomes(logs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["execution_id"]: e for e in logs if "execution_id" in e and "outcome" in e}


@pytest.fixture
def rt() -> Runtime:
    CODE["version"] = "old"
    functions = [ok, boom, waits, undone, parks]
    return Runtime(MemoryStore(), functions=functions, clock=VirtualClock())


def test_one_line_per_outcome_with_what_to_do_and_no_payload(rt: Runtime) -> None:
    rt.start(ok, {"card": SECRET}, execution_id="e-ok")
    rt.start(boom, None, execution_id="e-boom")
    rt.start(undone, None, execution_id="e-saga")
    rt.start(waits, None, execution_id="e-wait")
    rt.start(parks, None, execution_id="e-parks")
    _record(rt, "e-unregistered", "os:system")
    _record(rt, "e-version", "tests:ok", version="v9")

    with capture_logs() as logs:
        Worker(rt).run(until_idle=True)

    lines = _outcomes(logs)
    assert lines["e-ok"]["event"] == "execution completed"
    assert lines["e-ok"]["function"] == "tests:ok"
    assert lines["e-boom"]["event"] == "execution failed"
    assert lines["e-boom"]["log_level"] == "error"
    assert "warehouse is on fire" in lines["e-boom"]["error"]
    assert lines["e-boom"]["hint"] == "the history: durable show e-boom"
    assert lines["e-saga"]["event"] == "execution compensated"
    assert "durable-saga status e-saga" in lines["e-saga"]["hint"]
    assert lines["e-wait"]["event"] == "execution waiting"
    assert "timer 'pause'" in lines["e-wait"]["waiting_for"]
    assert lines["e-parks"]["event"] == "execution waiting for an operator"
    assert lines["e-parks"]["log_level"] == "warning"
    assert lines["e-unregistered"]["event"] == "execution parked: function not registered"
    assert "--allow-module" in lines["e-unregistered"]["hint"]
    assert lines["e-version"]["event"] == "execution parked: version mismatch"
    assert all(SECRET not in repr(e) for e in logs)  # the input is never logged
    assert not any(e["event"] == "executions run" for e in logs)


def test_non_determinism_is_logged_as_a_park_saying_where_and_how_to_resume(
    rt: Runtime,
) -> None:
    rt.run(waits, None, execution_id="e-changed")
    CODE["version"] = "new"
    assert isinstance(rt.clock, VirtualClock)
    rt.clock.advance(timedelta(hours=1))

    with capture_logs() as logs:
        Worker(rt).run(until_idle=True)

    line = _outcomes(logs)["e-changed"]
    assert line["event"] == "execution parked: non-determinism"
    assert line["log_level"] == "error"
    assert "position 2" in line["error"]
    assert "'pause' of type WAIT" in line["error"]
    assert "durable retry e-changed" in line["hint"]
    assert line["retry_at"] is not None


@pytest.fixture
def spy_module(tmp_path: Path) -> Iterator[Callable[[], bool]]:
    """A module ``durable_spy_mod`` that leaves a mark when it is imported."""
    mark = tmp_path / "imported"
    (tmp_path / "durable_spy_mod.py").write_text(
        "from pathlib import Path\n"
        f"Path({str(mark)!r}).write_text('yes')\n"
        "from durable_core import durable\n"
        "@durable\n"
        "def flow(ctx, event):\n"
        "    return 'ran'\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield mark.exists
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("durable_spy_mod", None)


def test_a_record_naming_an_unregistered_module_is_parked_and_never_imported(
    spy_module: Callable[[], bool],
) -> None:
    rt = Runtime(MemoryStore(), clock=VirtualClock())
    _record(rt, "e-spy", "durable_spy_mod:flow")
    _record(rt, "e-os", "os:system")

    assert rt.tick() == 2

    for eid in ("e-spy", "e-os"):
        ex = rt.get(eid)
        assert ex.status is ExecutionStatus.RUNNING
        assert ex.error is not None
        assert ex.error.type == "durable_core.errors.FunctionNotRegisteredError"
        assert "Nothing was imported" in ex.error.message
    assert not spy_module()
    assert "durable_spy_mod" not in sys.modules


def test_a_module_under_an_allowed_prefix_is_imported_and_run(
    spy_module: Callable[[], bool],
) -> None:
    options = RuntimeOptions(allowed_modules=("durable_spy_mod.",))  # a trailing dot is fine
    rt = Runtime(MemoryStore(), clock=VirtualClock(), options=options)
    _record(rt, "e-spy", "durable_spy_mod:flow")
    _record(rt, "e-os", "os:system")

    rt.tick()

    assert rt.result("e-spy") == "ran"
    assert spy_module()
    assert rt.get("e-os").error is not None  # still parked: os is not under the prefix


@pytest.mark.parametrize("bad", [("",), ("my app",), "myapp", ("myapp..flows",)])
def test_an_allowed_prefix_must_be_a_dotted_module_name(bad: Any) -> None:
    from durable_core import ValidationError

    with pytest.raises(ValidationError, match="allowed"):
        RuntimeOptions(allowed_modules=bad)


def test_a_plain_function_under_an_allowed_prefix_is_not_run(tmp_path: Path) -> None:
    (tmp_path / "durable_plain_mod.py").write_text(
        "RAN = []\ndef flow(ctx, event):\n    RAN.append(1)\n    return 'ran'\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        options = RuntimeOptions(allowed_modules=("durable_plain_mod",))
        rt = Runtime(MemoryStore(), clock=VirtualClock(), options=options)
        _record(rt, "e-plain", "durable_plain_mod:flow")
        rt.tick()
        ex = rt.get("e-plain")
        assert ex.status is ExecutionStatus.RUNNING
        assert ex.error is not None and "not declared durable" in ex.error.message
        assert sys.modules["durable_plain_mod"].RAN == []
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("durable_plain_mod", None)


def test_a_cancel_and_a_terminate_are_logged_as_what_they_were(rt: Runtime) -> None:
    rt.start(waits, None, execution_id="e-cancel")
    rt.start(waits, None, execution_id="e-term2")
    rt.cancel("e-cancel", "customer called")
    rt.terminate("e-term2", "fraud check", actor="ana")

    with capture_logs() as logs:
        Worker(rt).run(until_idle=True)

    lines = _outcomes(logs)
    assert lines["e-cancel"]["event"] == "execution cancelled"
    assert lines["e-term2"]["event"] == "execution terminated"
    assert "fraud check" in lines["e-term2"]["error"]
