"""The differences each case shows today: one table, read by the tests and the README.

A case listed in :data:`DIFFERENCES` is ``xfail(strict=True)`` with that reason, so when a
fix lands the case XPASSes, fails the run, and its line here must go.
"""

from __future__ import annotations

from typing import Any

import pytest

KINDS: dict[str, str] = {
    "D8": (
        "on purpose: a callback's result() is the caller's JSON read into result_type; AWS's "
        "SDK hands back the raw text by default ('\"approved\"' keeps its quotes, non-JSON "
        "text is no error). serializer= with a pass-through gives AWS's behaviour, and the "
        "history of every callback and wait_for_callback operation is the same either way; "
        "only the execution result (what the program did with the value) differs"
    ),
    "D13": (
        "on purpose: an interrupted at-most-once attempt fails with AWS's ErrorType "
        "(StepInterruptedError) but our own message, which names the step and says what to "
        "do; AWS's names its hashed operation id"
    ),
    "D15": (
        "on purpose: every operation needs a name here (names are how replay checks the "
        "code); AWS names an unnamed step after its function and leaves a wait unnamed"
    ),
}
"""The kinds of difference; README.md gives an example of each."""


def _why(*kinds: str) -> str:
    return "; ".join(f"{k} {KINDS[k]}" for k in kinds)


DIFFERENCES: dict[str, str] = {
    "example-step-named-by-function": _why("D15"),
    "example-unnamed-wait": _why("D15"),
    "example-callback-simple": _why("D8"),
    "example-wait-for-callback-mixed-ops": _why("D8"),
    "callback-success": _why("D8"),
    "callback-success-raw-text": _why("D8"),
    "callback-heartbeat-then-success": _why("D8"),
    "wait-for-callback-success": _why("D8"),
    "crash-at-most-once": _why("D13"),
}
"""Case id -> its differences today (kinds above), naming the issue-13 item where one fits."""


def diff(case: str, *marks: Any) -> Any:
    """``case`` as a pytest param (with ``marks``), ``xfail(strict=True)`` if it differs today."""
    reason = DIFFERENCES.get(case)
    if reason is not None:
        marks = (*marks, pytest.mark.xfail(strict=True, reason=reason))
    return pytest.param(case, marks=marks, id=case)
