"""Hypothesis settings of the scenario tests: a seeded CI profile, and a long one.

The CI profile (the default ``pytest`` run) is derandomized - the same scenarios on every
run, so a red CI is reproducible - and prints a reproduction blob for any failure.
``SCENARIOS_PROFILE=long`` draws fresh random scenarios on every run,
:data:`LONG_FACTOR` times more. Nothing is loaded globally (``settings.load_profile``), so
the other hypothesis tests of the suite keep their settings.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("SCENARIOS_PROFILE", "ci")
LONG = PROFILE == "long"
LONG_FACTOR = 25


def examples(ci: int) -> settings:
    """Settings for a test that runs ``ci`` examples in CI (x LONG_FACTOR in the long one)."""
    return settings(
        max_examples=ci * LONG_FACTOR if LONG else ci,
        derandomize=not LONG,
        database=None,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
