"""A durable function that a test kills in the middle of a step (run by ``lambda_proc``).

Every step body appends a line to ``$CRASH_LEDGER``; the ``slow`` step's first run creates
``$CRASH_MARKER`` and then hangs, and the test kills the process when the marker appears.
The handler's client comes from the environment, as in Lambda.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from durable_core import DurableContext, StepContext, durable
from durable_core.aws_lambda import durable_handler


def _effect(what: str) -> str:
    with Path(os.environ["CRASH_LEDGER"]).open("a") as ledger:
        ledger.write(what + "\n")
    return what


@durable
def crash_flow(ctx: DurableContext, event: dict[str, str]) -> list[str]:
    """reserve -> slow (killed on its first run) -> confirm."""

    def slow(sc: StepContext) -> str:
        _effect(f"slow-start attempt={sc.attempt}")
        marker = Path(os.environ["CRASH_MARKER"])
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            time.sleep(120)  # the test kills this process here
        return _effect("slow-done")

    first = ctx.step("reserve", lambda sc: _effect(f"reserve {event['order']}"))
    second = ctx.step("slow", slow)
    third = ctx.step("confirm", lambda sc: _effect("confirm"))
    return [first, second, third]


handler = durable_handler(crash_flow)
