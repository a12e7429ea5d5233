"""Repository-wide pytest hooks (the project's own test runs, not the durable_core plugin)."""

from __future__ import annotations

import pytest

NO_TESTS_MESSAGE = (
    "pytest collected NO tests (exit 5): this is neither a pass nor a fail; "
    "check the test paths and -k/-m filters."
)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Say loudly that a run which collected nothing proved nothing (its exit code stays 5)."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(NO_TESTS_MESSAGE, red=True, bold=True)
