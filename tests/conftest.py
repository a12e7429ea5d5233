"""Fixtures shared by the whole suite (the testing kit's own fixtures come from its plugin).

``pytester`` is enabled for the tests of the kit's pytest plugin.

The core tests also pass under ``pytest tests/core --durable-always-replay`` (every
function restarted after each checkpoint write); tests that count invocations or replays
pin ``always_replay=False`` for that reason.
"""

from __future__ import annotations

from collections import Counter

import pytest

pytest_plugins = ("pytester",)


@pytest.fixture
def calls() -> Counter[str]:
    """Side-effect counter: a step body does ``calls[name] += 1`` each time it runs."""
    return Counter()
