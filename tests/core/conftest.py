"""Fixtures for the core engine tests (the kit's fixtures come from its pytest plugin)."""

from __future__ import annotations

from collections import Counter

import pytest


@pytest.fixture
def calls() -> Counter[str]:
    """Side-effect counter: a step body does ``calls[name] += 1`` each time it runs."""
    return Counter()
