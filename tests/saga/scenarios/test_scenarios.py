"""Generated saga programs x interruption schedules agree with the oracle (issue 11 item 9).

Each example is a program (1-6 operations of every kind) and a schedule (none, cancel,
terminate, deadline, second cancel, hostile reason text, operator decisions, a crash),
run on the real runtime and compared with :mod:`scenarios.oracle`: the keyed-effect
ledger (each effect once, undos exactly once in reverse order, nothing undone past the
pivot) and the final execution status, ``saga_status`` status, ``not_undone`` and cause.
The same programs also run as ``@saga async def`` sagas against the same oracle (issue 12).
The ``FOUND`` cases are the failures the checker found on the code before issue 11's
fixes (tests/saga/scenarios/FOUND.md).
"""

from __future__ import annotations

import pytest
from hypothesis import given

from scenarios import campaign
from scenarios.found import FOUND
from scenarios.profiles import examples
from scenarios.programs import Program, Schedule, to_json
from scenarios.schedules import scenarios

pytestmark = pytest.mark.timeout(600)


def _assert_ok(program: Program, schedule: Schedule, found: list[str]) -> None:
    assert not found, "scenario differs from the oracle:\n  " + "\n  ".join(
        [*found, f"replay: python -m bench.scenarios --replay '{to_json(program, schedule)}'"]
    )


@examples(ci=800)
@given(scenarios())
def test_generated_scenarios_match_the_oracle(scenario: tuple[Program, Schedule]) -> None:
    program, schedule = scenario
    _assert_ok(program, schedule, campaign.check_one(program, schedule))


@examples(ci=40)
@given(scenarios(crash=False))
def test_a_crash_at_every_checkpoint_boundary_changes_nothing(
    scenario: tuple[Program, Schedule],
) -> None:
    program, schedule = scenario
    if not campaign.sweepable(schedule):
        schedule = Schedule(decisions=schedule.decisions, note=schedule.note)
    _, found = campaign.sweep(program, schedule)
    _assert_ok(program, schedule, found)


@examples(ci=40)
@given(scenarios())
def test_generated_scenarios_on_sqlite(scenario: tuple[Program, Schedule]) -> None:
    program, schedule = scenario
    _assert_ok(program, schedule, campaign.check_one(program, schedule, sqlite=True))


@examples(ci=200)
@given(scenarios())
def test_generated_scenarios_match_the_oracle_as_async_sagas(
    scenario: tuple[Program, Schedule],
) -> None:
    """The same programs and schedules, written ``@saga async def`` (issue 12)."""
    program, schedule = scenario
    _assert_ok(program, schedule, campaign.check_one(program, schedule, surface="async"))


@examples(ci=15)
@given(scenarios(crash=False))
def test_a_crash_at_every_checkpoint_boundary_changes_nothing_for_async_sagas(
    scenario: tuple[Program, Schedule],
) -> None:
    program, schedule = scenario
    if not campaign.sweepable(schedule):
        schedule = Schedule(decisions=schedule.decisions, note=schedule.note)
    _, found = campaign.sweep(program, schedule, surface="async")
    _assert_ok(program, schedule, found)


@pytest.mark.parametrize("name", sorted(FOUND))
def test_found_failure(name: str) -> None:
    """Each failure the checker found (FOUND.md: before the fixes, or on their first merge)."""
    program, schedule = FOUND[name]
    _assert_ok(program, schedule, campaign.check_one(program, schedule))
