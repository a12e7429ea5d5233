"""The differences each case shows today: one table, read by the tests and the README.

A case listed in :data:`DIFFERENCES` is ``xfail(strict=True)`` with that reason, so when a
fix lands the case XPASSes, fails the run, and its line here must go.
"""

from __future__ import annotations

from typing import Any

import pytest

KINDS: dict[str, str] = {
    "D1": (
        "issue 13 item 1 (step START): no StepStarted before a default at-least-once step, "
        "a wait_for_callback submitter or a wait_for_condition poll (AWS sends START); the "
        "emulator counts attempts by STARTs, so RetryDetails.CurrentAttempt stays 1 on retries"
    ),
    "D2": (
        "issue 13 item 2 (context START): no ContextStarted for a child context / branch / "
        "map item / empty map whose body runs no durable operation"
    ),
    "D3": (
        "Parallel/Map ContextSucceeded payload: AWS the whole BatchResult in its envelope "
        '{"t":"br","v":{"all":...,"completionReason":...}}, ours '
        '{"completion_reason":...,"statuses":[...]}'
    ),
    "D4": "StackTrace: AWS's StepFailed/ContextFailed/ExecutionFailed errors have none, ours do",
    "D5": (
        "an error propagated out of a child/branch/wait_for_callback/invoke/execution: AWS the "
        "original message and aws_durable_execution_sdk_python.exceptions.StepError (or "
        "CallbackExternalError, InvokeError), ours \"step 'x' failed after n attempt(s): "
        'ValueError: ..." (for a callback, issue 13 item 4: "callback \'x\' failed: ...") '
        "and durable_core.errors.StepFailedError / CallbackFailedError / InvokeError"
    ),
    "D6": (
        'execution result text: AWS json.dumps ({"a": 1}, [1, 2]), ours compact ({"a":1}, [1,2])'
    ),
    "D7": (
        'a dict/list step, child or condition result: AWS its envelope {"t":"m","v":...}, '
        "ours plain JSON"
    ),
    "D8": (
        "callback result: AWS hands back the raw text (pass-through: '\"approved\"' keeps "
        "its quotes, non-JSON text works), ours JSON-decodes it (non-JSON text raises); "
        "wait_for_callback's ContextSucceeded holds the raw text as a JSON string on AWS"
    ),
    "D9": (
        "wait_for_callback children: AWS callback '<name> create callback id' and step "
        "'<name> submitter', ours callback '<name>' and step '<name>-submit'"
    ),
    "D10": (
        "issue 13 item 5: parallel([]) is a ValidationError (execution FAILED); AWS records an "
        "empty Parallel context and SUCCEEDS"
    ),
    "D11": (
        "a 300 KB step result fails ours (PayloadTooLargeError, 256 KiB max_payload_bytes); "
        "AWS records it"
    ),
    "D12": (
        "a wait inside a parallel branch: AWS ends the invocation (InvocationCompleted) while "
        "the branch waits, ours keeps the invocation running and writes none"
    ),
    "D13": (
        "an interrupted at-most-once attempt: AWS ErrorType "
        "aws_durable_execution_sdk_python.exceptions.StepInterruptedError, message 'Step "
        "operation_id=... name=slow was previously interrupted'; ours "
        "durable_core.errors.StepInterruptedError with its own message"
    ),
    "D14": 'invoke payload text: AWS json.dumps ({"n": 21}), ours compact ({"n":21})',
    "D15": (
        "unnamed operations: AWS names a step after its function and leaves a wait without a "
        "Name; durable-saga requires a name"
    ),
    "D17": (
        "issue 13 item 5: min_successful that can no longer be reached: ours "
        "FAILURE_TOLERANCE_EXCEEDED, AWS runs every branch and reports ALL_COMPLETED"
    ),
    "D18": (
        "error types are each SDK's own qualified names (naming, on purpose): AWS "
        "aws_durable_execution_sdk_python.exceptions.WaitForConditionError, ours "
        "durable_core.errors.ConditionTimeoutError"
    ),
}
"""The kinds of difference; README.md gives an example of each."""


def _why(*kinds: str) -> str:
    return "; ".join(f"{k} {KINDS[k]}" for k in kinds)


DIFFERENCES: dict[str, str] = {
    "example-step-named-by-function": _why("D15"),
    "example-hello-world": _why("D6"),
    "example-unnamed-wait": _why("D15"),
    "example-multiple-wait": _why("D6"),
    "example-map-operations": _why("D6"),
    "example-child-step-failure": _why("D5", "D6"),
    "example-block": _why("D6", "D7"),
    "example-parallel": _why("D3", "D6"),
    "example-parallel-first-successful": _why("D3"),
    "example-parallel-with-wait": _why("D3", "D12"),
    "example-map-failure-tolerance": _why("D3", "D5", "D6"),
    "example-map-max-concurrency": _why("D3", "D6"),
    "example-callback-simple": _why("D8"),
    "example-wait-for-callback-mixed-ops": _why("D6", "D7", "D8"),
    "callback-success": _why("D6", "D8"),
    "callback-success-raw-text": _why("D8"),
    "callback-heartbeat-then-success": _why("D6", "D8"),
    "wait-for-callback-success": _why("D6", "D8"),
    "wait-for-callback-failure": _why("D5"),
    "wait-for-callback-submitter-fails": _why("D5"),
    "parallel-default-all-succeed": _why("D3"),
    "parallel-default-fails-fast": _why("D3", "D5"),
    "parallel-all-successful": _why("D3", "D5"),
    "parallel-all-completed": _why("D3", "D5"),
    "parallel-min-successful": _why("D3", "D5"),
    "parallel-min-successful-unreachable": _why("D3", "D5", "D17"),
    "parallel-tolerated-count-within": _why("D3", "D5"),
    "parallel-tolerated-count-exceeded": _why("D3", "D5"),
    "parallel-tolerated-percentage": _why("D3", "D5"),
    "parallel-tolerated-percentage-exceeded": _why("D3", "D5"),
    "parallel-first-successful": _why("D3"),
    "parallel-first-successful-after-failure": _why("D3", "D5"),
    "map-default-all-succeed": _why("D3"),
    "map-default-fails-fast": _why("D3", "D5"),
    "map-all-successful": _why("D3", "D5"),
    "map-all-completed": _why("D3", "D5"),
    "map-min-successful": _why("D3", "D5"),
    "map-min-successful-unreachable": _why("D3", "D5", "D17"),
    "map-tolerated-count-within": _why("D3", "D5"),
    "map-tolerated-count-exceeded": _why("D3", "D5"),
    "map-tolerated-percentage": _why("D3", "D5"),
    "map-tolerated-percentage-exceeded": _why("D3", "D5"),
    "map-first-successful": _why("D3"),
    "map-first-successful-after-failure": _why("D3", "D5"),
    "child-fails": _why("D5"),
    "parallel-empty": _why("D10"),
    "map-empty": _why("D3"),
    "parallel-concurrent": _why("D3"),
    "parallel-in-map": _why("D3"),
    "parallel-wait-in-branch": _why("D3", "D12"),
    "map-named-items": _why("D3"),
    "parallel-values-returned": _why("D3", "D6"),
    "crash-at-most-once": _why("D13"),
    "invoke": _why("D14"),
    "invoke-fails": _why("D14"),
    "invoke-fails-uncaught": _why("D5", "D14"),
    "step-dict-result": _why("D7"),
    "step-dict-execution-result": _why("D6"),
    "step-step-error-uncaught": _why("D5"),
    "step-large-result": _why("D11"),
    "condition-dict-state": _why("D7"),
    "condition-max-attempts-exhausted": _why("D18"),
    "serializer-step": _why("D6"),
}
"""Case id -> its differences today (kinds above), naming the issue-13 item where one fits."""


def diff(case: str, *marks: Any) -> Any:
    """``case`` as a pytest param (with ``marks``), ``xfail(strict=True)`` if it differs today."""
    reason = DIFFERENCES.get(case)
    if reason is not None:
        marks = (*marks, pytest.mark.xfail(strict=True, reason=reason))
    return pytest.param(case, marks=marks, id=case)
