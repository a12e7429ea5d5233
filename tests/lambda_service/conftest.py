"""Fixtures: AWS's durable execution emulator and our local Lambda Invoke endpoint.

One emulator (``dex-local-runner``, time skipping on) and one invoke server per session, both
on 127.0.0.1. If ``aws-durable-execution-sdk-python-testing`` is not installed these tests
are skipped with a loud reason (``.ci/install-aws-emulator.sh`` installs it).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .emulator import Deploy, Emulator, InvokeServer, runner_path

CHAINED_TARGETS = {
    "lambda-child": {"DurableConfig": {"ExecutionTimeout": 60, "RetentionPeriodInDays": 1}},
    "lambda-plain": {},
}


@pytest.fixture(scope="session")
def invoke_server() -> Iterator[InvokeServer]:
    """The local Lambda Invoke API the emulator calls."""
    server = InvokeServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def emulator(invoke_server: InvokeServer) -> Iterator[Emulator]:
    """AWS's emulator of the durable execution service, on 127.0.0.1."""
    runner = runner_path()
    if runner is None:
        pytest.skip(
            "!!! aws-durable-execution-sdk-python-testing is NOT installed, so the Lambda "
            "durable-service emulator tests did NOT run (run .ci/install-aws-emulator.sh)"
        )
    emu = Emulator(runner, invoke_server.url, function_configs=CHAINED_TARGETS)
    yield emu
    emu.stop()


@pytest.fixture
def deploy(invoke_server: InvokeServer, emulator: Emulator) -> Deploy:
    """``deploy(name, fn, client=None, **LambdaOptions)`` serves ``fn`` as function ``name``."""
    return Deploy(invoke_server, emulator)
