"""The values of ``ctx.parallel`` / ``ctx.map``: completion policy, batch result, batch error.

Invariants:
- A :class:`CompletionPolicy` is validated when it is built; whether it can be met for a
  given number of branches is checked at the call (:meth:`CompletionPolicy.check_feasible`),
  before anything is recorded.
- :meth:`CompletionPolicy.decide` depends only on the counts of succeeded and failed
  branches, so the same recorded outcomes always give the same decision.
- :class:`BatchResult` lists one :class:`BatchItem` per branch, in index order (never in
  completion order), and serializes through pydantic like any other value.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict

from durable_core.errors import DurableError, ValidationError
from durable_core.records import ErrorInfo

T = TypeVar("T")


class Nesting(StrEnum):
    """How the branches of ``ctx.parallel`` / ``ctx.map`` are recorded."""

    NESTED = "NESTED"
    """Each branch is a CONTEXT operation of its own (``ParallelBranch`` / ``MapIteration``)
    holding its value or error; its operations are its children. The default."""
    FLAT = "FLAT"
    """Branches record nothing of their own: their operations are children of the batch
    (ids still derived from the branch index). Fewer records; a branch that finished in an
    earlier invocation runs again (replaying its operations) until the batch is decided."""


class CompletionReason(StrEnum):
    """Why a batch stopped."""

    ALL_COMPLETED = "ALL_COMPLETED"
    """Every branch finished (succeeded or failed) within the failure tolerance."""
    MIN_SUCCESSFUL_REACHED = "MIN_SUCCESSFUL_REACHED"
    """``min_successful`` branches succeeded before every branch finished; the rest were
    given up (STARTED) or never started."""
    FAILURE_TOLERANCE_EXCEEDED = "FAILURE_TOLERANCE_EXCEEDED"
    """More branches failed than the policy tolerates; the rest were given up (STARTED) or
    never started."""


class BatchItemStatus(StrEnum):
    """How one branch of a batch ended."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STARTED = "STARTED"
    """It had started, and the batch was decided before it finished (its result is
    discarded; a body in the middle of a step may still run to the end of that step)."""
    NOT_STARTED = "NOT_STARTED"
    """The batch was decided before it started; its code never ran."""


def _count(value: object, what: str, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValidationError(f"CompletionPolicy {what} must be an integer >= {low}, got {value!r}")
    return value


@dataclass(frozen=True, kw_only=True)
class CompletionPolicy:
    """When a batch is done (the rules of AWS's SDK ``CompletionConfig``).

    The batch is done when every branch finished, when ``min_successful`` branches
    succeeded, or when the failures exceed the tolerance. With no field set at all, the
    first failure exceeds it (fail fast, the default); once any field is set, only the
    tolerance fields limit failures, so ``at_least(n)`` alone runs every branch when ``n``
    cannot be reached. Build one with the named constructors, e.g.
    ``CompletionPolicy.at_least(2)``.
    """

    min_successful: int | None = None
    """Done (MIN_SUCCESSFUL_REACHED) once this many branches succeeded."""
    tolerated_failure_count: int | None = None
    """Done (FAILURE_TOLERANCE_EXCEEDED) once more than this many branches failed."""
    tolerated_failure_percentage: float | None = None
    """Done (FAILURE_TOLERANCE_EXCEEDED) once more than this percentage of all branches
    failed (0-100)."""

    def __post_init__(self) -> None:
        if self.min_successful is not None:
            _count(self.min_successful, "min_successful", low=1)
        if self.tolerated_failure_count is not None:
            _count(self.tolerated_failure_count, "tolerated_failure_count", low=0)
        pct = self.tolerated_failure_percentage
        if pct is not None and (
            isinstance(pct, bool) or not isinstance(pct, int | float) or not 0 <= pct <= 100
        ):
            raise ValidationError(
                f"CompletionPolicy tolerated_failure_percentage must be between 0 and 100, "
                f"got {pct!r}"
            )

    @classmethod
    def all_successful(cls) -> CompletionPolicy:
        """Every branch must succeed; the first failure decides the batch (the default)."""
        return cls(tolerated_failure_count=0, tolerated_failure_percentage=0)

    @classmethod
    def all_completed(cls) -> CompletionPolicy:
        """Run every branch to the end whatever fails."""
        return cls(tolerated_failure_percentage=100)

    @classmethod
    def first_successful(cls) -> CompletionPolicy:
        """Done at the first success; the other branches are given up or never started."""
        return cls(min_successful=1)

    @classmethod
    def at_least(cls, n: int) -> CompletionPolicy:
        """Done once ``n`` branches succeeded (or when every branch finished)."""
        return cls(min_successful=n)

    @classmethod
    def tolerate_failures(cls, n: int) -> CompletionPolicy:
        """Run everything unless more than ``n`` branches fail."""
        return cls(tolerated_failure_count=n)

    @classmethod
    def tolerate_failure_percentage(cls, percent: float) -> CompletionPolicy:
        """Run everything unless more than ``percent`` % of the branches fail."""
        return cls(tolerated_failure_percentage=percent)

    def check_feasible(self, total: int, what: str) -> None:
        """Raise ValidationError if this policy can never be met with ``total`` branches."""
        if self.min_successful is not None and self.min_successful > total:
            raise ValidationError(
                f"{what}: the completion policy needs {self.min_successful} successful "
                f"branch(es) but there are only {total}; lower min_successful or add branches"
            )

    def decide(self, *, succeeded: int, failed: int, total: int) -> CompletionReason | None:
        """The reason the batch is complete after these outcomes, or ``None`` to go on."""
        if self._tolerance_exceeded(failed, total):
            return CompletionReason.FAILURE_TOLERANCE_EXCEEDED
        if succeeded + failed >= total:
            return CompletionReason.ALL_COMPLETED
        if self.min_successful is not None and succeeded >= self.min_successful:
            return CompletionReason.MIN_SUCCESSFUL_REACHED
        return None

    def _tolerance_exceeded(self, failed: int, total: int) -> bool:
        count, pct = self.tolerated_failure_count, self.tolerated_failure_percentage
        if self.min_successful is None and count is None and pct is None:
            return failed > 0
        if count is not None and failed > count:
            return True
        return pct is not None and total > 0 and failed / total * 100 > pct


class BatchItem(BaseModel, Generic[T]):
    """One branch of a batch: where it is, how it ended, its value or error."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int
    """Position in the branch list / item sequence (0-based)."""
    name: str
    """The branch's name (``parallel-branch-0``, ``map-item-3``, or yours)."""
    status: BatchItemStatus
    value: T | None = None
    """The branch's result (SUCCEEDED only), typed by the branch function's annotation."""
    error: ErrorInfo | None = None
    """The recorded error (FAILED only): type, message and data (the branch's own record,
    when nested, also holds the traceback)."""


class BatchResult(BaseModel, Generic[T]):
    """What ``ctx.parallel`` / ``ctx.map`` return: every branch in index order, and why done.

    A failing branch does not raise by itself: inspect :meth:`failed`, or call
    :meth:`raise_if_failed` (``ctx.map(...).raise_if_failed().values()``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """The batch's operation name."""
    items: list[BatchItem[T]]
    """One entry per branch, in index order."""
    completion_reason: CompletionReason

    def values(self) -> list[T]:
        """The values of the branches that succeeded, in index order."""
        return [item.value for item in self.items if item.status is BatchItemStatus.SUCCEEDED]  # type: ignore[misc]

    def succeeded(self) -> list[BatchItem[T]]:
        """The branches that succeeded, in index order."""
        return [i for i in self.items if i.status is BatchItemStatus.SUCCEEDED]

    def failed(self) -> list[BatchItem[T]]:
        """The branches that failed, in index order."""
        return [i for i in self.items if i.status is BatchItemStatus.FAILED]

    def raise_if_failed(self) -> Self:
        """Return ``self`` if no branch failed; otherwise raise :class:`BatchError`.

        Raises:
            BatchError: listing every failed branch (index, name, error type and message).
        """
        failed = self.failed()
        if failed:
            raise BatchError(self, failed)
        return self


class BatchError(DurableError):
    """Raised by :meth:`BatchResult.raise_if_failed` when branches failed.

    Attributes:
        batch: the batch's name.
        completion_reason: why the batch stopped.
        failures: the failed items, in index order (each carries its recorded error).
        result: the whole batch result.
    """

    def __init__(self, result: BatchResult[Any], failures: list[BatchItem[Any]]) -> None:
        lines = [
            f"  #{item.index} {item.name!r}: "
            + (f"{item.error.type}: {item.error.message}" if item.error else "(no error)")
            for item in failures
        ]
        super().__init__(
            f"batch {result.name!r}: {len(failures)} of {len(result.items)} branch(es) failed "
            f"({result.completion_reason.value}):\n" + "\n".join(lines)
        )
        self.batch = result.name
        self.completion_reason = result.completion_reason
        self.failures = failures
        self.result = result
