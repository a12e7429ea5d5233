"""aws-durable-execution-sdk-python under the peer benchmark protocol (see ``_common.py``).

The SDK targets the AWS Lambda durable execution service; off Lambda the only way to run
it is the companion package's in-process ``DurableFunctionTestRunner`` (an in-memory
stand-in for the service, with time skipping). That is what is measured here, so the
numbers are the SDK's engine plus the test runner's in-memory checkpoint processor —
nothing is written to disk, and there is no network round trip (on Lambda each
checkpoint is an API call, orders of magnitude slower than anything measured here).

One runner (variant ``memory``) serves every run of a process; the workflow reads N from
its input: ``for i in range(n): context.step(lambda sc: i, name=f"s{i}")``.

Resume: the SDK has no "resume this recorded execution" call; its runner re-invokes the
handler after a wait, and that invocation replays every recorded step from the journal.
So the workflow records N steps, waits 1 s (skipped), and returns; the timed region is
the second invocation of the handler (measured around the decorated handler, so it
includes the SDK loading the journal and replaying N steps), not the whole run.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

from _common import Spec, import_time, main, max_rss_mb, repeat

_invocations: list[float] = []


def constant(i: int) -> Callable[[Any], int]:
    """A trivial step body returning ``i``."""
    return lambda _step_context: i


def _handler() -> Any:
    from aws_durable_execution_sdk_python.config import Duration
    from aws_durable_execution_sdk_python.context import DurableContext
    from aws_durable_execution_sdk_python.execution import durable_execution

    @durable_execution
    def steps(event: Any, context: DurableContext) -> int:
        spec = json.loads(event) if isinstance(event, str) else event
        total = 0
        for i in range(int(spec["n"])):
            total += context.step(constant(i), name=f"s{i}")
        if spec.get("wait"):
            context.wait(Duration.from_seconds(1), name="pause")
        return total

    def timed_handler(event: Any, lambda_context: Any) -> Any:
        start = time.perf_counter()
        try:
            return steps(event, lambda_context)
        finally:
            _invocations.append(time.perf_counter() - start)

    return timed_handler


def _runner() -> Any:
    from aws_durable_execution_sdk_python_testing.runner import DurableFunctionTestRunner

    return DurableFunctionTestRunner(handler=_handler(), skip_time=True)


def _run(runner: Any, n: int, *, wait: bool, name: str) -> Any:
    from aws_durable_execution_sdk_python.lambda_service import InvocationStatus

    result = runner.run(
        input=json.dumps({"n": n, "wait": wait}), execution_timeout=900, execution_name=name
    )
    if result.status is not InvocationStatus.SUCCEEDED:
        raise SystemExit(f"run ended {result.status}: {result.error}")
    if json.loads(result.result) != n * (n - 1) // 2:
        raise SystemExit(f"wrong result {result.result!r}")
    return result


def op_steps(spec: Spec) -> dict[str, Any]:
    n, runs = int(spec["n"]), int(spec.get("runs", 3))
    names = iter(range(10**9))
    with _runner() as runner:
        seconds = repeat(
            lambda size: _run(runner, size, wait=False, name=f"x{next(names)}"), n, runs
        )
    return {"seconds": seconds}


def op_resume(spec: Spec) -> dict[str, Any]:
    n, runs = int(spec["n"]), int(spec.get("runs", 3))
    seconds: list[float] = []
    with _runner() as runner:
        # A small warm-up exercises the replay path once; recording N steps is slow here.
        for i, size in enumerate([min(n, 10)] + [n] * runs):
            _invocations.clear()
            _run(runner, size, wait=True, name=f"r{i}")
            if len(_invocations) != 2:
                raise SystemExit(f"expected 2 invocations (record, replay), saw {_invocations}")
            if i:
                seconds.append(_invocations[1])
    return {
        "seconds": seconds,
        "how": "the test runner re-invokes the handler after a skipped 1 s wait; timed: that "
        "second invocation (load the journal, replay N steps, complete), in memory",
    }


def op_import(spec: Spec) -> dict[str, Any]:
    runs = int(spec.get("runs", 1))
    return {
        "modules": {
            "aws_durable_execution_sdk_python": import_time(
                "aws_durable_execution_sdk_python.execution, "
                "aws_durable_execution_sdk_python.context",
                runs,
            ),
            "aws_durable_execution_sdk_python_testing": import_time(
                "aws_durable_execution_sdk_python_testing.runner", runs
            ),
        }
    }


def op_memory(spec: Spec) -> dict[str, Any]:
    base = max_rss_mb()
    import aws_durable_execution_sdk_python.execution  # noqa: F401
    import aws_durable_execution_sdk_python_testing.runner  # noqa: F401

    imported = max_rss_mb()
    op_steps({**spec, "runs": 1})
    return {"rss_mb": {"start": base, "import": imported, "after_run": max_rss_mb()}}


if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    main(
        {"steps": op_steps, "resume": op_resume, "import": op_import, "memory": op_memory},
        system="aws-sdk",
    )
