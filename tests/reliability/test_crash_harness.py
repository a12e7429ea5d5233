"""The crash harness (bench/crash_harness.py), short: real workers killed -9 at checkpoint
boundaries and at random points of the tour and order sagas, resumed, and nothing lost,
duplicated, undone twice or skipped. And the harness can fail: deliberately broken
settings make its counts go up.

The long run (500 runs) is in bench/README.md; this one takes about a minute.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "bench" / "crash_harness.py"
SCENARIOS = {
    "tour-booked",
    "tour-car-fails",
    "order-shipped",
    "order-out-of-stock",
    "order-shipper-fails",
}
COUNTS = (
    "lost",
    "duplicated_effects",
    "compensations_twice",
    "compensations_skipped",
    "ledger_mismatches",
    "wrong_outcomes",
    "reruns_after_checkpoint",
    "worker_errors",
)


def harness(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run the harness command; return the process and the JSON result it wrote."""
    out = tmp_path / "crash.json"
    done = subprocess.run(
        [sys.executable, str(HARNESS), "--jobs", "2", "--store-dir", str(tmp_path),
         "--out", str(out), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert out.exists(), done.stdout + done.stderr
    return done, json.loads(out.read_text())


def test_a_short_run_kills_workers_everywhere_and_nothing_breaks(tmp_path: Path) -> None:
    done, result = harness(tmp_path, "--runs", "30", "--seed", "7", "--max-kills", "3")

    assert done.returncode == 0, done.stdout + done.stderr
    assert result["counts"] == dict.fromkeys(COUNTS, 0)
    assert result["runs"] == 30
    assert result["kills"] >= result["runs"]
    assert result["kills_at_boundaries"] > 0
    assert result["kills_at_random_points"] > 0
    assert set(result["scenarios"]) == SCENARIOS
    assert all(row["runs"] == 6 and row["kills"] > 0 for row in result["scenarios"].values())
    positions = " ".join(result["kill_positions"])
    assert "in a step" in positions
    assert "in a compensation" in positions or "rollback" in positions
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith(f"crash harness: runs=30 kills={result['kills']} lost=0 ")
    assert all(f"{count}=0" in last for count in COUNTS)


@pytest.mark.parametrize(
    ("broken", "runs", "expected"),
    [
        # Services that ignore the idempotency key: a step or undo re-run after a kill
        # lands its effect twice.
        ("no-dedupe", "8", {"duplicated_effects", "compensations_twice", "ledger_mismatches"}),
        # Services that acknowledge undo requests without doing them.
        ("drop-undo", "2", {"compensations_skipped", "ledger_mismatches"}),
        # A store that acknowledges a compensation's success without keeping it: the undo
        # runs again after a kill (the service absorbs the repeat; the harness still sees it).
        ("lose-undo-checkpoint", "8", {"compensations_twice", "compensations_skipped"}),
    ],
)
def test_the_harness_detects_a_broken_setting(
    broken: str, runs: str, expected: set[str], tmp_path: Path
) -> None:
    done, result = harness(
        tmp_path, "--break", broken, "--runs", runs, "--seed", "3",
        "--scenario", "tour-car-fails", "--kind", "boundary",
    )  # fmt: skip

    assert done.returncode == 1, done.stdout + done.stderr
    nonzero = {name for name, n in result["counts"].items() if n}
    assert expected <= nonzero, result["counts"]
    assert result["counts"]["lost"] == 0
    if broken == "lose-undo-checkpoint":
        assert result["counts"]["duplicated_effects"] == 0  # the key absorbed every repeat
    assert "PROBLEM run" in done.stdout
