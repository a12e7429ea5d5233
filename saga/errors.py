"""Every error the saga package raises.

Invariants:
- Every error derives from :class:`SagaError`, itself a
  :class:`durable_core.DurableError`, so ``except DurableError`` catches both packages.
- Errors raised at definition or call time (bad arguments) are raised before anything is
  recorded in the journal.
- The outcome errors (:class:`SagaCompensated`, :class:`SagaPartiallyCompensated`) are what a
  saga's durable function raises after a rollback; the execution ends FAILED with their
  qualified type name, so ``durable show`` and an invoking parent see what happened.
- This module imports nothing from the rest of the package.
"""

from __future__ import annotations

from collections.abc import Sequence

from durable_core import DurableError


class SagaError(DurableError):
    """Base class of every error raised by the saga package."""


class SagaDefinitionError(SagaError, ValueError):
    """A saga is declared wrongly: a duplicate step name, a second pivot, a compensatable
    step after the pivot, a compensation that is not callable, a bad signature.

    Raised when the builder step or the ``s.step`` call is declared, before the step runs and
    before anything is recorded. A saga never rolls back because of this error: the code is
    wrong, so the execution fails and ``saga_status`` lists what was not undone.
    """


class SagaRolledBackError(SagaError):
    """Base of the errors a saga raises after its rollback finished.

    Attributes:
        saga: the saga's name.
        failed_step: the step whose failure started the rollback (``None`` if the error was
            raised by the saga's own code between steps).
        compensated: steps whose compensation ran (or an operator resolved), in rollback order.
        skipped: steps whose compensation an operator skipped.
    """

    def __init__(
        self,
        message: str,
        *,
        saga: str,
        failed_step: str | None,
        compensated: Sequence[str] = (),
        skipped: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.saga = saga
        self.failed_step = failed_step
        self.compensated = tuple(compensated)
        self.skipped = tuple(skipped)


class SagaCompensated(SagaRolledBackError):  # noqa: N818 - named for the outcome it reports
    """A step failed and the saga rolled back: every completed step was undone.

    Undone means its compensation succeeded, or an operator marked it resolved. The original
    error is the ``__cause__`` on the first run and is named in the message on every run.
    """

    durable_outcome = "compensated"
    """How the worker's log names this outcome (durable_core reads it generically)."""
    durable_hint = "every completed step was undone; durable-saga status {execution_id}"


class SagaPartiallyCompensated(SagaRolledBackError):  # noqa: N818 - named for its outcome
    """A step failed and the saga rolled back, but an operator skipped at least one undo.

    The skipped steps are in ``skipped``; ``saga_status`` gives the reasons. The effects of
    those steps are still in place: this is never reported as compensated.
    """

    durable_outcome = "partially compensated"
    durable_hint = "skipped undos are still in effect: durable-saga status {execution_id}"


class SagaNotParkedError(SagaError):
    """An operator action was asked of a saga that is not waiting for an operator.

    Operator actions (retry, skip, resolve) apply only while the saga is parked in
    COMPENSATION_FAILED. Nothing was recorded.
    """


class InvalidOperatorActionError(SagaError, ValueError):
    """An operator action was called with bad arguments (e.g. skip without a reason).

    Nothing was recorded.
    """
