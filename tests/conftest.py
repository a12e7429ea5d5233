"""Fixtures shared by the whole suite (the testing kit's own fixtures come from its plugin).

``pytester`` is enabled for the tests of the kit's pytest plugin.
"""

from __future__ import annotations

from collections import Counter

import pytest

pytest_plugins = ("pytester",)


@pytest.fixture
def calls() -> Counter[str]:
    """Side-effect counter: a step body does ``calls[name] += 1`` each time it runs."""
    return Counter()
