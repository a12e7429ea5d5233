"""docs/async.md is real code: its examples run in order, and its claims hold."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from durable_core import (
    AsyncDurableContext,
    DurableContext,
    ExecutionStatus,
    MemoryStore,
    Runtime,
    durable,
)
from durable_core.testing import VirtualClock

DOC = Path(__file__).resolve().parents[1] / "docs" / "async.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def test_the_examples_in_docs_async_md_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # the worker example opens durable.sqlite3 here
    blocks = BLOCK.findall(DOC.read_text())
    assert len(blocks) >= 5
    namespace: dict[str, Any] = {"__name__": "docs_async"}
    ran = 0
    for block in blocks:
        code = "\n".join(line.removeprefix("  ") for line in block.splitlines())  # list items
        if "from fastapi" in code:  # the app example needs FastAPI, not a dependency
            compile(code, str(DOC), "exec")
            continue
        exec(compile(code, str(DOC), "exec"), namespace)
        ran += 1
    assert ran >= 4
    out = capsys.readouterr().out
    text = re.search(r"```text\n(.*?)\n```", DOC.read_text(), re.S)
    assert text is not None
    assert text.group(1) in out  # the error the page shows is the one you get


def test_a_journal_written_by_the_sync_function_resumes_under_the_async_port() -> None:
    """The page's porting claim: same name, same operations, an execution in flight."""
    effects: list[str] = []

    @durable(name="billing:renew")
    def renew_sync(ctx: DurableContext, event: None) -> str:
        charge = ctx.step("charge", lambda sc: effects.append("charge") or "ch-1")
        ctx.wait("grace-period", timedelta(days=30))
        return ctx.step("receipt", lambda sc: f"receipt for {charge}")

    @durable(name="billing:renew")
    async def renew_async(ctx: AsyncDurableContext, event: None) -> str:
        async def charge_body(sc: Any) -> str:
            effects.append("charge")
            return "ch-1"

        charge = await ctx.step("charge", charge_body)
        await ctx.wait("grace-period", timedelta(days=30))
        return await ctx.step("receipt", lambda sc: f"receipt for {charge}")

    store, clock = MemoryStore(), VirtualClock()
    ex = Runtime(store, clock=clock, functions=[renew_sync]).run(renew_sync, None)
    assert ex.status is ExecutionStatus.RUNNING  # waiting, with the sync journal
    before = [(op.id, op.name, op.result) for op in store.load_operations(ex.id)]

    clock.advance(timedelta(days=31))
    ported = Runtime(store, clock=clock, functions=[renew_async])
    done = ported.drive(ex.id)

    assert done.status is ExecutionStatus.SUCCEEDED
    assert ported.result(ex.id) == "receipt for ch-1"
    assert effects == ["charge"]  # the recorded step was not run again
    after = [(op.id, op.name, op.result) for op in store.load_operations(ex.id)]
    assert after[: len(before)][0] == before[0]
