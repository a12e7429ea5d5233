"""The public surface of the saga package, the status rendering, and replay safety of the
rollback plan."""

from __future__ import annotations

from saga_helpers import Effects, settle

import saga
from durable_core import ExecutionStatus, RetryPolicy, Runtime
from saga import SagaContext, SagaStatus, saga_status
from saga.cli import render_outcome

EXPORTS = [
    "AsyncSagaContext",
    "CompensationContext",
    "CompensationReport",
    "InvalidOperatorActionError",
    "OperatorActionReport",
    "Saga",
    "SagaBranch",
    "SagaCompensated",
    "SagaContext",
    "SagaDefinition",
    "SagaDefinitionError",
    "SagaError",
    "SagaFunction",
    "SagaNotParkedError",
    "SagaOutcome",
    "SagaPartiallyCompensated",
    "SagaRolledBackError",
    "SagaStatus",
    "SagaStep",
    "StepKind",
    "StepReport",
    "default_compensation_policy",
    "resolve",
    "retry_compensation",
    "saga",
    "saga_status",
    "skip_compensation",
    "terminate",
]


def test_the_public_names_are_pinned_and_sorted() -> None:
    assert saga.__all__ == EXPORTS
    assert sorted(saga.__all__) == saga.__all__
    for name in saga.__all__:
        assert getattr(saga, name).__doc__, f"{name} has no docstring"


def test_saga_errors_are_durable_errors() -> None:
    from durable_core import DurableError

    for name in ("SagaError", "SagaDefinitionError", "SagaCompensated", "SagaNotParkedError"):
        assert issubclass(getattr(saga, name), DurableError)


def test_changing_the_undo_stack_under_an_in_flight_rollback_is_non_determinism(
    rt: Runtime,
) -> None:
    fx = Effects()
    with_undo = {"a": True}
    exhausted = RetryPolicy.no_retry()

    @saga.saga(name="changes")
    def changes(s: SagaContext, event: None) -> None:
        s.step("a", fx.action("a"), compensate=fx.undo("a") if with_undo["a"] else None)
        s.step(
            "b",
            fx.action("b"),
            compensate=fx.undo("b", always_fail=True),
            compensation_retry=exhausted,
        )
        s.step("c", fx.action("c", fail=True), retry=RetryPolicy.no_retry())

    eid = settle(rt, rt.start(changes).id).id  # parked on b's undo, a still to undo
    with_undo["a"] = False  # a code change: a no longer has an undo
    saga.skip_compensation(rt, eid, "testing a code change")
    ex = settle(rt, eid)

    assert ex.status is ExecutionStatus.RUNNING  # parked: nothing more undone
    assert ex.error is not None
    assert ex.error.type == "durable_core.errors.NonDeterminismError"
    assert "rollback plan 'saga:rollback'" in ex.error.message
    assert fx.count("undo:a") == 0


def test_render_outcome_shows_forward_and_rollback_paths(rt: Runtime) -> None:
    fx = Effects()

    @saga.saga(name="shown")
    def shown(s: SagaContext, event: None) -> None:
        s.step("book-flight", fx.action("f"), compensate=fx.undo("f"))
        s.step(
            "book-hotel",
            fx.action("h"),
            compensate=fx.undo("h", always_fail=True),
            compensation_retry=RetryPolicy.no_retry(),
        )
        s.step("book-car", fx.action("c", fail=True), retry=RetryPolicy.no_retry())

    eid = settle(rt, rt.start(shown).id).id

    text = render_outcome(saga_status(rt, eid))
    lines = text.splitlines()
    assert "status: COMPENSATION_FAILED (execution RUNNING)" in lines
    assert any("PARKED" in line and "book-hotel" in line for line in lines)
    forward = lines.index("forward path:")
    rollback = lines.index("rollback path (reverse order):")
    assert [line.split()[1] for line in lines[forward + 1 : rollback]] == [
        "book-flight",
        "book-hotel",
        "book-car",
    ]
    assert lines[rollback + 1].split()[:3] == ["FAILED", "book-hotel", "failed"]
    assert lines[rollback + 2].split()[:3] == ["..", "book-flight", "pending"]
    assert "NOT UNDONE: book-hotel, book-flight" in lines
    assert saga_status(rt, eid).status is SagaStatus.COMPENSATION_FAILED


def test_durable_saga_shares_the_store_default_of_durable() -> None:
    import durable_core.cli
    import saga.cli

    assert saga.cli.STORE_ENV == durable_core.cli.STORE_ENV
    assert saga.cli.DEFAULT_STORE == durable_core.cli.DEFAULT_STORE
