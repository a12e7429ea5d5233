"""Errors of the Lambda adapters.

Invariants:
- Every class derives from :class:`~durable_core.errors.DurableError`.
- A failed call to the durable execution service is a :class:`ServiceError`, a
  :class:`~durable_core.errors.StoreError`: the batch engine treats it as "this invocation
  cannot go on", never as a branch failure, and the handler raises it so Lambda retries the
  invocation. A rejected checkpoint token is also a
  :class:`~durable_core.errors.LeaseLostError`: another invocation owns the execution now.
- This module imports nothing that needs boto3.
"""

from __future__ import annotations

from durable_core.errors import LeaseLostError, StoreError, ValidationError


class EnvelopeError(ValidationError):
    """The Lambda event is not a durable execution invocation envelope.

    The handler made by ``durable_handler`` only runs under Lambda's durable execution
    service (or its emulator), which sends ``{DurableExecutionArn, CheckpointToken,
    InitialExecutionState}``. To start an execution, invoke the function through the service
    (a function with ``DurableConfig``), not with your event directly.
    """


class ServiceLimitError(ValidationError):
    """An operation cannot be written because it breaks a durable execution service limit.

    Nothing of the checkpoint it belongs to was sent.
    """


class ServiceError(StoreError):
    """A call to the durable execution service failed (after the retries that are safe).

    Attributes:
        api: the API called (``checkpoint_durable_execution`` or
            ``get_durable_execution_state``).
        code: the service's error code (e.g. ``InvalidParameterValueException``), or the
            exception's class name for a transport failure.
    """

    def __init__(self, message: str, *, api: str, code: str) -> None:
        super().__init__(message)
        self.api = api
        self.code = code


class CheckpointTokenError(ServiceError, LeaseLostError):
    """The service rejected the checkpoint token: this invocation was superseded or ended.

    The handler raises it so Lambda retries the invocation; the next invocation gets a fresh
    token and replays from the journal, so nothing is lost or repeated.
    """
