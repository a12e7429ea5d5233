"""The installed ``durable`` console script, as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

SCRIPT = Path(sys.executable).parent / "durable"


def durable(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not SCRIPT.exists():
        pytest.fail(f"console script {SCRIPT} is missing: pip install -e . into this venv")
    env = {k: v for k, v in os.environ.items() if k != "DURABLE_STORE"}
    return subprocess.run(
        [str(SCRIPT), "--store", str(store), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_the_readme_demo_runs_end_to_end(tmp_path: Path) -> None:
    store = tmp_path / "d.sqlite3"
    order = '{"order_id": "A-1", "amount": 42.5}'

    r = durable(store, "run", "examples.hello_durable.workflow:hello", "--input", order,
                "--id", "A-1", "--fast-forward")  # fmt: skip

    assert r.returncode == 0, r.stderr
    assert "fast-forward: skipping 24h timer 'cool-off'" in r.stdout
    assert "SUCCEEDED" in r.stdout
    assert "payment captured" in r.stderr  # ctx.logger goes to stderr, once
    assert r.stderr.count("payment captured") == 1
    shown = durable(store, "show", "A-1")
    assert shown.returncode == 0
    assert "send-confirmation" in shown.stdout


def test_a_user_error_is_one_line_on_stderr_and_exit_2(tmp_path: Path) -> None:
    store = tmp_path / "d.sqlite3"
    durable(store, "run", "examples.hello_durable.workflow:hello", "--input", "{bad")

    r = durable(store, "run", "examples.hello_durable.workflow:hello", "--input", "{bad")

    assert r.returncode == 2
    assert r.stderr.startswith("error: --input is not valid JSON")
    assert "Traceback" not in r.stderr
    assert r.stdout == ""


def test_module_entry_point_prints_help() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "durable_core.cli", "--help"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert r.returncode == 0
    for command in ("run", "worker", "list", "show", "callback", "cancel"):
        assert command in r.stdout
