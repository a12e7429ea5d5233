"""The pytest plugin: fixtures and the --durable-always-replay option."""

from __future__ import annotations

from typing import Any

import pytest

from durable_core import DurableContext, MemoryStore, durable
from durable_core.testing import DurableTestRunner, VirtualClock


@durable
def double(ctx: DurableContext, event: int) -> int:
    ctx.wait("pause", 60)
    return ctx.step("double", lambda sc: event * 2)


def test_fixtures_give_a_clock_a_store_and_a_runner_factory(
    virtual_clock: VirtualClock, memory_store: MemoryStore, durable_runner: Any
) -> None:
    runner = durable_runner(double)

    assert isinstance(runner, DurableTestRunner)
    assert runner.clock is virtual_clock
    assert runner.store is memory_store
    assert runner.run(21).result == 42
    assert len(memory_store.list_executions()) == 1


def test_runners_of_one_test_share_clock_and_store(durable_runner: Any) -> None:
    a = durable_runner(double)
    b = durable_runner(double, always_replay=True)
    assert a.clock is b.clock
    assert a.store is b.store
    assert b.always_replay


PROBE = """
from durable_core import DurableContext, durable

@durable
def f(ctx: DurableContext, event: None) -> int:
    return ctx.step("one", lambda sc: 1) + ctx.step("two", lambda sc: 2)

def test_probe(durable_runner):
    runner = durable_runner(f)
    assert runner.run(None).result == 3
    print("ALWAYS_REPLAY=%s" % runner.always_replay)

def test_explicit_choice_wins(durable_runner):
    assert durable_runner(f, always_replay=False).always_replay is False
"""


@pytest.mark.parametrize(("args", "expected"), [((), False), (("--durable-always-replay",), True)])
def test_always_replay_option(
    pytester: pytest.Pytester, args: tuple[str, ...], expected: bool
) -> None:
    pytester.makepyfile(test_probe=PROBE)
    result = pytester.runpytest("-s", "-p", "no:randomly", *args)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"*ALWAYS_REPLAY={expected}*"])
