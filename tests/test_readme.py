"""The README's saga is real code: extract it, run it, check the rollback it promises."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from durable_core import ExecutionStatus
from durable_core.testing import DurableTestRunner

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_saga() -> Any:
    text = README.read_text()
    block = re.search(r"## A saga in 15 lines\s+```python\n(.*?)```", text, re.S)
    assert block is not None, "the README lost its saga example"
    code = block.group(1)
    assert len(code.strip().splitlines()) <= 15
    namespace: dict[str, Any] = {}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace["book_tour"]


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ledger.sqlite3"
    monkeypatch.setenv("TOUR_LEDGER", str(path))
    return path


def test_readme_saga_books_the_tour(ledger: Path) -> None:
    from examples.tour_booking.providers import effects

    runner = DurableTestRunner(_readme_saga())
    result = runner.run({"customer": "Nguyen Van An"})
    assert result.status is ExecutionStatus.SUCCEEDED
    assert [(p, a) for p, a, _ in effects(runner.execution_id)] == [
        ("airline", "book"),
        ("hotel", "book"),
        ("cars", "book"),
    ]


def test_readme_saga_cancels_hotel_then_flight_when_the_car_fails(ledger: Path) -> None:
    from examples.tour_booking.providers import effects

    runner = DurableTestRunner(_readme_saga())
    result = runner.run({"customer": "Nguyen Van An", "fail_car": True})
    assert result.status is ExecutionStatus.FAILED
    assert [(p, a) for p, a, _ in effects(runner.execution_id)] == [
        ("airline", "book"),
        ("hotel", "book"),
        ("cars", "reject"),
        ("hotel", "cancel"),
        ("airline", "cancel"),
    ]
