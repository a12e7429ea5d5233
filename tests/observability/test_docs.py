"""docs/observability.md is real code: its OpenTelemetry example runs and gives the trace
the page draws; its hook example is an Instrumentation the runtime accepts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from durable_core import RuntimeOptions

DOC = Path(__file__).resolve().parents[2] / "docs" / "observability.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def test_the_otel_example_runs_and_draws_the_tour_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TOUR_LEDGER", str(tmp_path / "tour.sqlite3"))
    otel_example, hooks_example, phase_example = BLOCK.findall(DOC.read_text())
    namespace: dict[str, Any] = {"__name__": "docs_observability"}
    exec(compile(otel_example, str(DOC), "exec"), namespace)

    printed = capsys.readouterr().out
    drawn = re.search(r"```text\n(.*?)\n```", DOC.read_text(), re.S)
    assert drawn is not None
    for line in drawn.group(1).splitlines():
        name = re.sub(r"^[\s│├└─]*", "", line).split("  ")[0]
        assert repr(name) in printed, name

    exec(compile(hooks_example, str(DOC), "exec"), namespace)
    RuntimeOptions(instrumentation=[namespace["SlowStepAlarm"]()])
    compile(phase_example, str(DOC), "exec")
