"""pytest plugin of the durable_core testing kit (entry point ``durable_core``, auto-loaded).

Fixtures:

- ``virtual_clock``: a fresh :class:`~durable_core.testing.VirtualClock`.
- ``memory_store``: a fresh :class:`~durable_core.stores.memory.MemoryStore`.
- ``durable_runner``: a factory ``durable_runner(fn, **kwargs)`` making a
  :class:`~durable_core.testing.DurableTestRunner` on the test's clock and store (so two
  runners in one test share them, like two workers).

Option ``--durable-always-replay`` makes ``durable_runner`` default to
``always_replay=True``: run the whole suite once that way to prove every workflow is
replay-safe. A test that passes ``always_replay=`` itself keeps its choice.
"""

from __future__ import annotations

from typing import Any, Protocol

import pytest

from durable_core.stores.memory import MemoryStore
from durable_core.testing.clock import VirtualClock
from durable_core.testing.runner import DurableTestRunner

ALWAYS_REPLAY_OPTION = "--durable-always-replay"


class RunnerFactory(Protocol):
    """The type of the ``durable_runner`` fixture."""

    def __call__(self, fn: Any, /, **kwargs: Any) -> DurableTestRunner[Any, Any]:
        """Make a runner for ``fn``; keyword arguments go to DurableTestRunner."""
        ...


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--durable-always-replay``."""
    parser.getgroup("durable_core").addoption(
        ALWAYS_REPLAY_OPTION,
        action="store_true",
        default=False,
        help="durable_runner restarts every durable function after each checkpoint write",
    )


@pytest.fixture
def virtual_clock() -> VirtualClock:
    """A virtual clock starting at a fixed time."""
    return VirtualClock()


@pytest.fixture
def memory_store() -> MemoryStore:
    """An empty in-memory store."""
    return MemoryStore()


@pytest.fixture
def durable_runner(
    request: pytest.FixtureRequest, virtual_clock: VirtualClock, memory_store: MemoryStore
) -> RunnerFactory:
    """A factory of test runners sharing this test's virtual clock and memory store."""
    always_replay = bool(request.config.getoption(ALWAYS_REPLAY_OPTION))

    def make(fn: Any, /, **kwargs: Any) -> DurableTestRunner[Any, Any]:
        kwargs.setdefault("store", memory_store)
        kwargs.setdefault("clock", virtual_clock)
        kwargs.setdefault("always_replay", always_replay)
        return DurableTestRunner(fn, **kwargs)

    return make
