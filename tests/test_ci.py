"""CI runs exactly the README's test command, and a run that tests nothing says so."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_test_command() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"Run the tests.*?```bash\n(.*?)\n```", text, re.S)
    assert block is not None, "the README lost its test command"
    return block.group(1).strip()


def test_ci_runs_exactly_the_readme_test_command() -> None:
    command = _readme_test_command()
    assert "pytest" in command
    lines = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln.strip()]
    assert lines[-1] == command


def test_a_run_that_collects_no_tests_exits_5_and_says_it_is_neither_pass_nor_fail() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_readme.py", "-k", "no_such_test_zzz"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 5, done.stdout + done.stderr
    assert "collected NO tests (exit 5): this is neither a pass nor a fail" in done.stdout
