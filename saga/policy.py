"""Step kinds and the retry policies a saga applies to forward steps and compensations.

Invariants:
- A compensation gets its own policy, never the forward step's: a forward failure that used
  up its budget must not leave the undo with nothing (MassTransit#4676).
- Forward recovery (a ``RETRIABLE`` step, or any step after the pivot) keeps the step's
  ``wait`` and ``retry`` strategies and replaces its ``stop`` with ``stop_never``: the step
  is retried until it succeeds, or until the ``retry`` predicate says an error is not worth
  retrying.
- Policies are tenacity strategy objects evaluated by durable_core against the durable
  attempt count; delays above the runtime's inline threshold are durable timers.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

import tenacity

from durable_core import RetryPolicy

COMPENSATION_GIVE_UP_AFTER = timedelta(days=1)
"""Default: a compensation is retried for this long before the saga parks."""
COMPENSATION_MAX_ATTEMPTS = 500
"""Default: ... or for this many attempts, whichever comes first."""
COMPENSATION_MAX_DELAY = timedelta(minutes=10)
"""Default: the cap of the exponential backoff between compensation attempts."""
FORWARD_RECOVERY_MAX_DELAY = timedelta(minutes=10)
"""Default: the backoff cap of a step retried forward (retriable, or after the pivot)."""


ROLE = "saga"
"""The execution role (``Execution.role``) of a saga: the prefix of its steps' roles."""


class StepKind(StrEnum):
    """What a saga step promises (Garcia-Molina & Salem; Richardson's classification)."""

    COMPENSATABLE = "compensatable"
    """Can be undone by its compensation (or has nothing to undo). Allowed before the pivot
    only. The default for a step declared before the pivot."""
    PIVOT = "pivot"
    """The point of no return: once it succeeds the saga never rolls back; every later step
    is retried forward until it succeeds. At most one per saga; it has no compensation."""
    RETRIABLE = "retriable"
    """Must succeed: retried until it does. Never compensated. The default for a step
    declared after the pivot."""

    @property
    def role(self) -> str:
        """The role a forward step of this kind records (``Operation.role``):
        ``saga.compensatable``, ``saga.pivot`` or ``saga.retriable``. Viewers (``durable
        serve``) read a saga, and its pivot, from it; replay never looks at it."""
        return f"{ROLE}.{self.value}"


def default_compensation_policy() -> RetryPolicy:
    """Retry an undo with capped exponential backoff for a long time.

    Waits 1 s, 2 s, 4 s ... up to 10 minutes between attempts; gives up (and parks the
    saga for an operator) after one day or 500 attempts.
    """
    return RetryPolicy(
        stop=tenacity.stop_after_delay(COMPENSATION_GIVE_UP_AFTER.total_seconds())
        | tenacity.stop_after_attempt(COMPENSATION_MAX_ATTEMPTS),
        wait=tenacity.wait_exponential(
            multiplier=1, min=1, max=COMPENSATION_MAX_DELAY.total_seconds()
        ),
    )


def default_forward_policy() -> RetryPolicy:
    """The policy of a compensatable or pivot step when none is given: durable_core's
    default (3 attempts, exponential backoff from 1 s up to 60 s)."""
    return RetryPolicy()


def forward_policy(kind: StepKind, retry: RetryPolicy | None) -> RetryPolicy:
    """The policy a forward step of ``kind`` runs with, given its ``retry=``: forward
    recovery for a retriable step, else the given policy or the default."""
    if kind is StepKind.RETRIABLE:
        return forward_recovery(retry)
    return retry or default_forward_policy()


def forward_recovery(policy: RetryPolicy | None) -> RetryPolicy:
    """``policy`` with its ``stop`` replaced by ``stop_never``: retry until success.

    The ``retry`` predicate is kept, so an error the policy classifies as not worth retrying
    still fails the step (after the pivot that ends the saga FAILED, never compensated).
    With no policy: retry every error, backing off exponentially up to 10 minutes.
    """
    if policy is None:
        return RetryPolicy(
            stop=tenacity.stop_never,
            wait=tenacity.wait_exponential(
                multiplier=1, min=1, max=FORWARD_RECOVERY_MAX_DELAY.total_seconds()
            ),
        )
    return RetryPolicy(stop=tenacity.stop_never, wait=policy.wait, retry=policy.retry)
