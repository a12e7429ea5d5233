"""Sagas for the subprocess tests, importable as ``saga_flows:<name>`` from tests/saga."""

from __future__ import annotations

import json
import os
from pathlib import Path

from durable_core import RetryPolicy, StepContext
from saga import CompensationContext, SagaContext, saga


def _log(entry: str) -> None:
    with (Path(os.environ["SAGA_FLOWS_DIR"]) / "effects.jsonl").open("a") as f:
        f.write(json.dumps(entry) + "\n")


def act(sc: StepContext, name: str) -> str:
    _log(f"do:{name}")
    return name


def fail(sc: StepContext) -> None:
    raise RuntimeError("c always fails")


def undo(c: CompensationContext) -> None:
    if c.step == "b":
        raise ConnectionError("the hotel's cancellation API is down")
    _log(f"undo:{c.step}")


@saga
def parking(s: SagaContext, event: None) -> None:
    """a, b (whose undo always fails: the saga parks), c (fails)."""
    s.step("a", act, "a", compensate=undo)
    s.step("b", act, "b", compensate=undo, compensation_retry=RetryPolicy.no_retry())
    s.step("c", fail, retry=RetryPolicy.no_retry())
