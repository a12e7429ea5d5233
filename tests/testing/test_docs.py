"""The examples of docs/testing.md run, in order, as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from durable_core import ExecutionStatus, MemoryStore
from durable_core.testing import DurableTestRunner, VirtualClock

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def test_the_examples_in_docs_testing_md_run(capsys: Any) -> None:
    blocks = BLOCK.findall(DOC.read_text())
    assert len(blocks) >= 6
    namespace: dict[str, Any] = {"__name__": "docs_testing"}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)

    # The pytest example defines a test: run it with the fixtures' values.
    clock, store = VirtualClock(), MemoryStore()

    def factory(fn: Any, /, **kwargs: Any) -> DurableTestRunner[Any, Any]:
        return DurableTestRunner(fn, clock=clock, store=store, **kwargs)

    namespace["test_renew"](factory, clock, store)
    assert "boundaries ok" in capsys.readouterr().out
    assert namespace["normal"].status is ExecutionStatus.SUCCEEDED
