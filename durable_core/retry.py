"""Retry policies built from tenacity's own strategy objects, evaluated durably.

tenacity decides; the journal remembers. A :class:`RetryPolicy` holds tenacity ``stop_*``,
``wait_*`` and ``retry_*`` objects and is asked one question after each failed attempt:
"given attempt N failed with this error, T seconds after the first attempt started, how
long until the next attempt (or give up)?". The attempt number and the first start time
come from the journal, so the policy's view survives crashes and replays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

import tenacity
from tenacity import RetryCallState
from tenacity.retry import RetryBaseT
from tenacity.stop import StopBaseT
from tenacity.wait import WaitBaseT

from durable_core.errors import ValidationError
from durable_core.records import MAX_ROLE_LENGTH
from durable_core.serde import Serializer, check_serializer

MAX_STEP_TIMEOUT = timedelta(days=365)
"""The longest per-attempt timeout a step accepts (the longest duration anything records)."""
_RETRYING = tenacity.Retrying()  # only used as the owner object tenacity's state expects


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """When and how soon to retry a failed attempt.

    Example::

        RetryPolicy(stop=stop_after_attempt(5), wait=wait_exponential(min=1, max=60),
                    retry=retry_if_exception_type(ConnectionError))
    """

    stop: StopBaseT = field(default_factory=lambda: tenacity.stop_after_attempt(3))
    """When to give up (tenacity ``stop_*``); evaluated against the durable attempt count."""
    wait: WaitBaseT = field(
        default_factory=lambda: tenacity.wait_exponential(multiplier=1, min=1, max=60)
    )
    """Delay before the next attempt (tenacity ``wait_*``)."""
    retry: RetryBaseT = field(default_factory=tenacity.retry_if_exception_type)
    """Which failures are worth retrying (tenacity ``retry_*``); others fail at once."""

    @classmethod
    def no_retry(cls) -> RetryPolicy:
        """A single attempt."""
        return cls(stop=tenacity.stop_after_attempt(1), wait=tenacity.wait_none())

    @classmethod
    def forever(cls, *, max_delay: timedelta = timedelta(hours=1)) -> RetryPolicy:
        """Retry until it succeeds, backing off exponentially up to ``max_delay``."""
        return cls(
            stop=tenacity.stop_never,
            wait=tenacity.wait_exponential(multiplier=1, min=1, max=max_delay.total_seconds()),
        )

    def next_delay(self, *, attempt: int, error: BaseException, elapsed: float) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None`` to give up.

        Args:
            attempt: the number of the attempt that just failed (1-based).
            error: what it raised.
            elapsed: seconds since the first attempt started.
        """
        state = retry_state(attempt, error, elapsed)
        if not self.retry(state):
            return None
        if self.stop(state):
            return None
        return max(0.0, float(self.wait(state)))


def retry_state(attempt: int, error: BaseException, elapsed: float) -> RetryCallState:
    """A tenacity call state for "attempt ``attempt`` failed ``elapsed`` s after the first"."""
    state = RetryCallState(_RETRYING, None, (), {})
    state.attempt_number = attempt
    state.start_time = 0.0
    state.outcome = tenacity.Future.construct(attempt, error, True)
    state.outcome_timestamp = elapsed
    state.idle_for = 0.0
    return state


class StepSemantics(StrEnum):
    """How a step attempt behaves when the process dies in the middle of it."""

    AT_LEAST_ONCE_PER_RETRY = "at-least-once-per-retry"
    """Default. Nothing is written before the body runs; a crash re-runs the attempt."""
    AT_MOST_ONCE_PER_RETRY = "at-most-once-per-retry"
    """The attempt's start is recorded before the body runs; an attempt found started but
    unfinished counts as failed (StepInterruptedError) and goes to the retry policy."""


@dataclass(frozen=True, kw_only=True)
class StepConfig:
    """Options for ``ctx.step``."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    """The step's retry policy."""
    semantics: StepSemantics = StepSemantics.AT_LEAST_ONCE_PER_RETRY
    """Crash behaviour of an attempt."""
    result_type: Any = None
    """Type to serialize the result by; default: the function's return annotation."""
    timeout: timedelta | None = None
    """How long one attempt may run (more than 0, at most 365 days); ``None``: no limit.

    An attempt past it fails with :class:`~durable_core.errors.StepTimeoutError` and goes to
    the retry policy like any error. The body then runs on a thread of its own that the
    invocation stops waiting for (Python cannot stop it): the execution goes on, and the
    abandoned attempt's late result is discarded. Measured in real (monotonic) time, even
    under a virtual clock: the body runs in real time."""
    serializer: Serializer | None = None
    """Records the result as its own text (raw; see :class:`~durable_core.Serializer`)
    instead of by ``result_type``."""
    role: str | None = None
    """For libraries built on the engine, not for a step's own code: what the library says
    the step is, recorded on its journal record (``Operation.role``) for viewers such as
    ``durable serve`` (the saga library sets ``saga.<kind>``). Display only: it changes
    nothing the step does and is never compared on replay. ``<library>.<what>``, at most
    64 printable characters; the part before the dot becomes the execution's role."""

    def __post_init__(self) -> None:
        check_serializer(self.serializer, what="StepConfig")
        _check_role(self.role)
        timeout = self.timeout
        if timeout is None:
            return
        if not isinstance(timeout, timedelta):
            raise ValidationError(
                f"StepConfig(timeout=...) must be a datetime.timedelta or None, got {timeout!r}"
            )
        if not timedelta(0) < timeout <= MAX_STEP_TIMEOUT:
            raise ValidationError(
                f"StepConfig(timeout={timeout}) is out of range: a step attempt's timeout must "
                f"be more than 0 and at most {MAX_STEP_TIMEOUT.days} days. Nothing was run."
            )


def _check_role(role: object) -> None:
    if role is None:
        return
    if (
        not isinstance(role, str)
        or not 0 < len(role) <= MAX_ROLE_LENGTH
        or not role.isprintable()
        or not role.isascii()
        or " " in role
    ):
        raise ValidationError(
            f"StepConfig(role=...) must be None or a name like 'mylib.kind' (1-"
            f"{MAX_ROLE_LENGTH} printable ASCII characters, no spaces), got {role!r:.80}"
        )
