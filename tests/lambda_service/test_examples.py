"""The repository's examples on the emulator: the same source files as in-process runs.

tour_booking and order_processing keep a ledger of what reached their (simulated)
providers; each effect is keyed by ``execution id : operation id``, and operation ids are
deterministic, so a Lambda run and an in-process run of the same input must leave the same
ledger (provider, action, operation) sequence.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from examples.hello_durable.workflow import hello
from examples.order_processing import services as order_services
from examples.order_processing.saga import process_order
from examples.tour_booking import providers
from examples.tour_booking.providers import Tour
from examples.tour_booking.saga import book_tour
from saga import saga

from .emulator import REGION, Deploy, Emulator, InvokeServer, events
from .local_runs import local_tour_effects

pytestmark = pytest.mark.aws


@pytest.fixture
def ledgers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fresh ledgers for both examples (the handlers run in this process)."""
    monkeypatch.setenv(providers.LEDGER_ENV, str(tmp_path / "tour.sqlite3"))
    monkeypatch.setenv(order_services.LEDGER_ENV, str(tmp_path / "order.sqlite3"))
    return tmp_path


def test_hello_durable(deploy: Deploy, emulator: Emulator, ledgers: Path) -> None:
    deploy("hello", hello)
    arn = emulator.start("hello", {"order_id": "A-1", "amount": 42.5})
    ex = emulator.wait(arn)
    assert ex["Status"] == "SUCCEEDED", ex
    result = json.loads(ex["Result"])
    assert result["order_id"] == "A-1" and result["amount"] == 42.5
    assert result["charge_id"].startswith("ch_") and result["confirmation_id"].startswith("msg_")
    hist = emulator.history(arn)
    assert events(hist, "StepSucceeded", "StepFailed", "WaitStarted", "WaitSucceeded") == [
        ("StepSucceeded", "validate-order"),
        ("StepFailed", "process-payment"),  # the gateway's first attempt times out: a RETRY
        ("StepSucceeded", "process-payment"),
        ("WaitStarted", "cool-off"),
        ("WaitSucceeded", "cool-off"),  # 24 hours, skipped by the emulator
        ("StepSucceeded", "send-confirmation"),
    ]


def test_tour_booking_succeeds_with_the_same_ledger_as_in_process(
    deploy: Deploy, emulator: Emulator, ledgers: Path
) -> None:
    deploy("tour", book_tour)
    arn = emulator.start("tour", Tour().model_dump(mode="json"))
    ex = emulator.wait(arn)
    assert ex["Status"] == "SUCCEEDED", ex
    assert set(json.loads(ex["Result"])) == {"flight", "hotel", "car"}
    lambda_effects = providers.effects(arn)
    assert [(p, a) for p, a, _ in lambda_effects] == [
        ("airline", "book"),
        ("hotel", "book"),
        ("cars", "book"),
    ]
    assert lambda_effects == local_tour_effects(ledgers, Tour())


def test_tour_booking_rolls_back_with_compensations_as_steps(
    deploy: Deploy, emulator: Emulator, ledgers: Path
) -> None:
    deploy("tour", book_tour)
    tour = Tour(fail_car=True)
    arn = emulator.start("tour", tour.model_dump(mode="json"))
    ex = emulator.wait(arn)
    assert ex["Status"] == "FAILED", ex
    assert ex["Error"]["ErrorType"] == "saga.errors.SagaCompensated"
    lambda_effects = providers.effects(arn)
    assert [(p, a) for p, a, _ in lambda_effects] == [
        ("airline", "book"),
        ("hotel", "book"),
        ("cars", "reject"),
        ("hotel", "cancel"),
        ("airline", "cancel"),
    ]
    assert all(not r.duplicate for r in providers.ledger_rows(arn))
    assert lambda_effects == local_tour_effects(ledgers, tour)
    # the rollback plan and each compensation are ordinary checkpointed steps
    # (each attempt's START is sent while it runs, so a running one is visible)
    assert events(emulator.history(arn), "StepStarted", "StepSucceeded", "StepFailed") == [
        ("StepStarted", "book-flight"),
        ("StepSucceeded", "book-flight"),
        ("StepStarted", "book-hotel"),
        ("StepSucceeded", "book-hotel"),
        ("StepStarted", "book-car"),
        ("StepFailed", "book-car"),
        ("StepStarted", "saga:rollback"),
        ("StepSucceeded", "saga:rollback"),
        ("StepStarted", "compensate:book-hotel"),
        ("StepSucceeded", "compensate:book-hotel"),
        ("StepStarted", "compensate:book-flight"),
        ("StepSucceeded", "compensate:book-flight"),
    ]


def test_a_sagas_own_lambda_handler_runs_it_with_boto3s_standard_configuration(
    emulator: Emulator, invoke_server: InvokeServer, ledgers: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``lambda_handler = book_tour.lambda_handler``: the client comes from the environment."""
    for key, value in {
        "AWS_ENDPOINT_URL_LAMBDA": emulator.url,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
    }.items():
        monkeypatch.setenv(key, value)
    fresh = saga(name="tour-own-handler")(book_tour.fn)  # its own handler and client
    handler = fresh.lambda_handler
    assert fresh.lambda_handler is handler  # made once per saga
    invoke_server.register("tour-own", lambda event: handler(event, None))
    tour = Tour(fail_car=True)
    arn = emulator.start("tour-own", tour.model_dump(mode="json"))
    ex = emulator.wait(arn)
    assert ex["Status"] == "FAILED", ex
    assert [(p, a) for p, a, _ in providers.effects(arn)] == [
        ("airline", "book"),
        ("hotel", "book"),
        ("cars", "reject"),
        ("hotel", "cancel"),
        ("airline", "cancel"),
    ]


def _pickup_token(arn: str) -> str | None:
    rows = [d for s, a, d in order_services.effects(arn) if a == "pickup"]
    return rows[0].rsplit("token ", 1)[1] if rows else None


def test_order_processing_completes_when_the_shipper_confirms(
    deploy: Deploy, emulator: Emulator, ledgers: Path
) -> None:
    deploy("orders", process_order)
    arn = emulator.start("orders", order_services.Order().model_dump(mode="json"))
    emulator.wait(arn, until=lambda ex: _pickup_token(arn) is not None)
    token = _pickup_token(arn)
    assert token is not None
    emulator.client.send_durable_execution_callback_success(
        CallbackId=token, Result=json.dumps({"tracking": "VNP-123"}).encode()
    )
    ex = emulator.wait(arn)
    assert ex["Status"] == "SUCCEEDED", ex
    assert json.loads(ex["Result"])["tracking"] == "VNP-123"
    assert [(s, a) for s, a, _ in order_services.effects(arn)] == [
        ("payments", "charge"),
        ("inventory", "reserve"),
        ("mail", "confirmation"),
        ("shipping", "pickup"),
    ]
    started = [e for e in emulator.history(arn) if e["EventType"] == "CallbackStarted"]
    assert [e["Name"] for e in started] == ["shipper-confirmation"]


def test_order_processing_rolls_back_when_the_shipper_fails(
    deploy: Deploy, emulator: Emulator, ledgers: Path
) -> None:
    deploy("orders", process_order)
    arn = emulator.start("orders", order_services.Order(order_id="A-2").model_dump(mode="json"))
    emulator.wait(arn, until=lambda ex: _pickup_token(arn) is not None)
    emulator.client.send_durable_execution_callback_failure(
        CallbackId=_pickup_token(arn),
        Error={"ErrorType": "ShipperRefused", "ErrorMessage": "no truck available"},
    )
    ex = emulator.wait(arn)
    assert ex["Status"] == "FAILED", ex
    assert [(s, a) for s, a, _ in order_services.effects(arn)][4:] == [
        ("shipping", "cancel-pickup"),
        ("mail", "cancellation"),
        ("inventory", "release"),
        ("payments", "refund"),
    ]


def print_history(history: list[dict[str, Any]]) -> None:  # pragma: no cover - debugging aid
    for e in history:
        print(e["EventType"], e.get("Name"), e.get("SubType"))
