"""Plain-text views used by ``durable show`` / ``list`` / ``run``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from durable_core import Operation, OperationStatus, OperationType
from durable_core.cli.render import (
    fmt_duration,
    fmt_time,
    mask_token,
    pending_waits,
    render_operations,
    short_json,
    timeline,
)
from durable_core.replay import operation_id

T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.25, "0.25s"),
        (45, "45s"),
        (150, "2m30s"),
        (86_400, "24h"),
        (36 * 3600, "36h"),
        (3 * 86_400 + 4 * 3600 + 5, "3d4h"),
        (365 * 86_400, "365d"),
    ],
)
def test_fmt_duration(seconds: float, text: str) -> None:
    assert fmt_duration(timedelta(seconds=seconds)) == text


def test_fmt_time_is_utc_with_z() -> None:
    from datetime import timezone

    plus_two = T0.astimezone(timezone(timedelta(hours=2)))
    assert fmt_time(plus_two) == "2026-11-23T03:00:00Z"
    assert fmt_time(None) == "-"


def test_mask_token_and_short_json() -> None:
    token = "AbCd" + "middle-part-of-the-token-000000000000000"
    assert mask_token(token) == "AbCd…"
    assert mask_token(token, show=True) == token
    assert mask_token(None) == "-"
    assert short_json('{"a":  [1,\n 2]}') == '{"a": [1, 2]}'
    assert short_json('"' + "x" * 500 + '"', limit=10) == '"xxxxxxxx…'


def op(position: int, parent: str | None = None, **fields: object) -> Operation:
    base: dict[str, object] = {
        "id": operation_id(parent, position),
        "parent_id": parent,
        "type": OperationType.STEP,
        "name": f"op{position}",
        "status": OperationStatus.SUCCEEDED,
        "started_at": T0,
    }
    base.update(fields)
    return Operation.model_validate(base)


def test_timeline_orders_by_code_position_not_write_order() -> None:
    group = operation_id(None, 2)
    written = [
        op(1),
        op(2, group, name="branch-b"),  # concurrent branches written out of order
        op(1, group, name="branch-a"),
        op(2, type=OperationType.CONTEXT, name="group"),  # a context is written last
        op(3),
    ]

    entries = timeline(written)

    assert [(e.position, e.op.name, e.depth) for e in entries] == [
        ("1", "op1", 0),
        ("2", "group", 0),
        ("2.1", "branch-a", 1),
        ("2.2", "branch-b", 1),
        ("3", "op3", 0),
    ]


def test_an_operation_with_an_unknown_id_is_still_shown() -> None:
    stray = op(1).model_copy(update={"id": "not-a-derived-id", "name": "stray"})

    entries = timeline([op(1), stray])

    assert [(e.position, e.op.name) for e in entries] == [("1", "op1"), ("?", "stray")]


def test_render_operations_takes_a_custom_renderer() -> None:
    lines = render_operations([op(1), op(2)], render=lambda e: [f"<{e.position} {e.op.name}>"])
    assert lines == ["<1 op1>", "<2 op2>"]


def test_pending_waits_describe_what_a_suspended_execution_needs() -> None:
    ops = [
        op(1, type=OperationType.WAIT, name="cool-off", status=OperationStatus.STARTED,
           scheduled_end=T0 + timedelta(hours=24)),
        op(2, name="charge", status=OperationStatus.PENDING, attempt=2,
           next_attempt_at=T0 + timedelta(minutes=5)),
        op(3, type=OperationType.CALLBACK, name="approval", status=OperationStatus.STARTED,
           callback_id="tok" * 10, timeout_at=T0 + timedelta(days=3)),
    ]  # fmt: skip

    waits = pending_waits(ops)

    assert [w.describe() for w in waits] == [
        "retry of step 'charge' (attempt 3) at 2026-11-23T03:05:00Z",
        "timer 'cool-off' until 2026-11-24T03:00:00Z",
        "callback 'approval' (token tokt…), times out at 2026-11-26T03:00:00Z",
    ]
    assert waits[2].describe(show_tokens=True) == (
        f"callback 'approval' (token {'tok' * 10}), times out at 2026-11-26T03:00:00Z"
    )
    assert [w.is_timed for w in waits] == [True, True, False]


def test_render_shows_retry_error_and_token_details() -> None:
    pending = op(
        1,
        name="charge",
        status=OperationStatus.PENDING,
        attempt=1,
        next_attempt_at=T0 + timedelta(minutes=1),
        error={"type": "ConnectionError", "message": "gateway down\nmore"},
    )
    cb = op(2, type=OperationType.CALLBACK, name="ok?", status=OperationStatus.STARTED,
            callback_id="a" * 43)  # fmt: skip

    text = "\n".join(render_operations([pending, cb]))

    assert "1. STEP 'charge' PENDING (attempt 1)" in text
    assert "retry 2 due 2026-11-23T03:01:00Z" in text
    assert "last error: ConnectionError: gateway down" in text
    assert "more" not in text
    assert "token aaaa…" in text
    assert "aaaaa" not in text
    assert "a" * 43 in "\n".join(render_operations([pending, cb], show_tokens=True))
