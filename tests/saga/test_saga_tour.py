"""The tour saga: a forced failure at each step undoes exactly the completed steps, in
reverse order, each once; success books each service once."""

from __future__ import annotations

from typing import Any

import pytest
from saga_helpers import EXPECTED_ROLLBACK, settle

from durable_core import ExecutionStatus, Runtime
from examples.tour_booking.providers import Tour, effects, ledger_rows
from examples.tour_booking.saga import book_tour, book_tour_declared
from saga import SagaDefinition, SagaStatus, saga_status

SAGAS = [pytest.param(book_tour, id="decorator"), pytest.param(book_tour_declared, id="builder")]


@pytest.mark.parametrize("tour_saga", SAGAS)
def test_success_books_each_service_once(rt: Runtime, tour_saga: SagaDefinition[Any, Any]) -> None:
    ex = settle(rt, rt.start(tour_saga, Tour()).id)

    assert ex.status is ExecutionStatus.SUCCEEDED
    assert effects(ex.id) == [
        ("airline", "book", "book-flight"),
        ("hotel", "book", "book-hotel"),
        ("cars", "book", "book-car"),
    ]
    outcome = saga_status(rt, ex.id)
    assert outcome.status is SagaStatus.COMPLETED
    assert [s.name for s in outcome.steps] == ["book-flight", "book-hotel", "book-car"]
    assert outcome.compensations == []
    assert outcome.not_undone == []


@pytest.mark.parametrize("tour_saga", SAGAS)
@pytest.mark.parametrize("failing", ["flight", "hotel", "car"])
def test_failure_at_each_step_undoes_completed_steps_in_reverse_once(
    rt: Runtime, tour_saga: SagaDefinition[Any, Any], failing: str
) -> None:
    tour = Tour.model_validate({f"fail_{failing}": True})
    ex = settle(rt, rt.start(tour_saga, tour).id)

    assert ex.status is ExecutionStatus.FAILED
    assert ex.error is not None
    assert ex.error.type == "saga.errors.SagaCompensated"
    assert effects(ex.id) == EXPECTED_ROLLBACK[failing]
    assert not any(r.duplicate for r in ledger_rows(ex.id))
    outcome = saga_status(rt, ex.id)
    assert outcome.status is SagaStatus.COMPENSATED
    assert outcome.cause is not None
    assert outcome.cause.step == f"book-{failing}"
    assert outcome.cause.error_type.endswith("SoldOutError")
    undone = [e[2] for e in EXPECTED_ROLLBACK[failing] if e[1] == "cancel"]
    assert [c.step for c in outcome.compensations] == undone
    assert all(c.status == "compensated" and c.attempts == 1 for c in outcome.compensations)
    assert outcome.not_undone == []


def test_undo_receives_the_forward_steps_key_and_result(rt: Runtime) -> None:
    ex = settle(rt, rt.start(book_tour, Tour(fail_car=True)).id)

    rows = {(r.provider, r.action): r for r in ledger_rows(ex.id)}
    for provider in ("airline", "hotel"):
        booked, cancelled = rows[(provider, "book")], rows[(provider, "cancel")]
        assert cancelled.idempotency_key == booked.idempotency_key
        assert cancelled.ref == booked.ref
    assert rows[("airline", "book")].idempotency_key == f"{ex.id}:book-flight"
    outcome = saga_status(rt, ex.id)
    keys = {c.step: c.idempotency_key for c in outcome.compensations}
    assert keys == {"book-hotel": f"{ex.id}:book-hotel", "book-flight": f"{ex.id}:book-flight"}


def test_rollback_is_recorded_as_one_step_per_undo(rt: Runtime) -> None:
    ex = settle(rt, rt.start(book_tour, Tour(fail_car=True)).id)

    ops = [(op.name, op.status.value) for op in rt.operations(ex.id)]
    assert ops == [
        ("book-flight", "SUCCEEDED"),
        ("book-hotel", "SUCCEEDED"),
        ("book-car", "FAILED"),
        ("saga:rollback", "SUCCEEDED"),
        ("compensate:book-hotel", "SUCCEEDED"),
        ("compensate:book-flight", "SUCCEEDED"),
    ]


def test_rerunning_a_finished_execution_changes_nothing(rt: Runtime) -> None:
    ex = settle(rt, rt.start(book_tour, Tour(fail_car=True), execution_id="tour-1").id)
    before = effects(ex.id)

    again = rt.run(book_tour, Tour(fail_car=True), execution_id="tour-1")

    assert again.status is ExecutionStatus.FAILED
    assert effects(ex.id) == before
