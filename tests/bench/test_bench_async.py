"""``python -m bench.bench_async --quick`` runs end to end and prints its result lines.

A smoke test of the harness only: no timing is asserted (speed targets are read from the
full run on a quiet machine, see bench/README.md), only that every figure was measured,
every execution succeeded (the bench exits non-zero otherwise) and the results file holds
the summary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_quick_async_benchmark_prints_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "async.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_async", "--quick", "--reps", "1", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for prefix in (
        "per-step memory sync",
        "per-step memory async",
        "per-step sqlite async, sync bodies",
        "per-step sqlite raw commit",
        "ratio memory async / memory sync",
        "ratio sqlite async / sqlite sync",
        "io AsyncWorker x 1000",
        "io threaded Worker x 16",
        "throughput AsyncWorker x 100",
        "throughput threaded Worker x 16",
        "ratio AsyncWorker x 100 / threaded Worker x 16",
    ):
        assert any(line.startswith(prefix) for line in lines), (prefix, done.stdout)
    targets = lines[lines.index("Targets") + 1 :]
    assert len(targets) == 3  # per step x 2 stores, the I/O drain (no DBOS in quick mode)
    assert all(line.startswith(("PASS", "FAIL")) for line in targets)
    result = json.loads(out.read_text())
    assert set(result["summary"]) == {"steps", "io", "throughput", "targets"}
    assert result["machine"]["durable_core"] == str(ROOT / "durable_core")
