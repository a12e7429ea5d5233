"""Fixtures of the differential suite: one AWS emulator and one invoke server per session.

They mirror tests/lambda_service/conftest.py (same classes, imported from
``lambda_service.emulator``), with this suite's own chained-invoke targets. The same
re-run rule applies: a test that failed only because the emulator stalled is re-run at most
twice (see ``lambda_service.conftest.pytest_collection_modifyitems``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lambda_service.conftest import EMULATOR_STALL
from lambda_service.emulator import Emulator, InvokeServer, runner_path

from .parity_run import ParityRunner

PARITY_TARGETS = {
    "parity-target": {"DurableConfig": {"ExecutionTimeout": 60, "RetentionPeriodInDays": 1}},
    "parity-target-fails": {"DurableConfig": {"ExecutionTimeout": 60, "RetentionPeriodInDays": 1}},
}
"""Functions a case may ``invoke`` (the emulator only runs targets it is configured with)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test here ``aws`` and re-run it on the emulator's known stall only."""
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.aws)
            item.add_marker(pytest.mark.flaky(reruns=2, only_rerun=[EMULATOR_STALL]))


@pytest.fixture(scope="session")
def parity_server() -> Iterator[InvokeServer]:
    """The local Lambda Invoke API this suite's emulator calls."""
    server = InvokeServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def parity_emulator(parity_server: InvokeServer) -> Iterator[Emulator]:
    """AWS's emulator of the durable execution service (time skipping on), on 127.0.0.1."""
    runner = runner_path()
    if runner is None:
        pytest.skip(
            "!!! aws-durable-execution-sdk-python-testing is NOT installed, so the AWS "
            "parity suite did NOT run (run .ci/install-aws-emulator.sh)"
        )
    emu = Emulator(runner, parity_server.url, function_configs=PARITY_TARGETS)
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def parity(parity_server: InvokeServer, parity_emulator: Emulator) -> ParityRunner:
    """Runs a program's two versions side by side and returns both outcomes."""
    return ParityRunner(parity_server, parity_emulator)
