"""Generated scenarios on real worker processes over SQLite, killed with SIGKILL.

A short seeded sample in the default run; ``python -m bench.scenarios --processes 30`` runs
a larger one (docs/guarantees.md, "Generated scenarios").
"""

from __future__ import annotations

import pytest

from scenarios.processes import run_sample

pytestmark = pytest.mark.timeout(600)


def test_real_workers_killed_with_sigkill_end_as_the_oracle_says() -> None:
    result = run_sample(4, seed_value=20261202)
    assert result.failures == 0, "\n".join(result.details)
    assert result.kills >= 4, f"only {result.kills} workers were killed:\n" + "\n".join(
        result.details
    )
