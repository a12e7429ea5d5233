"""Run durable functions and sagas in AWS Lambda.

Two modes, one user code:

- :func:`durable_handler`: on Lambda's durable execution service (a function with
  ``DurableConfig``). The service keeps the journal and re-invokes the function when a timer
  fires, a retry is due or a callback completes.
- :func:`dynamodb_handler` + :func:`sweeper_handler` (+ :func:`callback_handler` for
  webhooks): on plain Lambda with the journal in a DynamoDB table; a scheduled sweeper
  re-invokes due executions.

Importing this package does not import boto3; a client is made on the first invocation.
See ``docs/aws-lambda.md``.
"""

from durable_core.aws_lambda.dynamo_mode import (
    callback_handler,
    dynamodb_handler,
    sweeper_handler,
)
from durable_core.aws_lambda.errors import (
    CheckpointTokenError,
    EnvelopeError,
    ServiceError,
    ServiceLimitError,
)
from durable_core.aws_lambda.handler import LambdaOptions, durable_handler

__all__ = [
    "CheckpointTokenError",
    "EnvelopeError",
    "LambdaOptions",
    "ServiceError",
    "ServiceLimitError",
    "callback_handler",
    "durable_handler",
    "dynamodb_handler",
    "sweeper_handler",
]
