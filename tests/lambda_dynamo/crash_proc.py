"""``crash_flow`` behind ``dynamodb_handler`` for a subprocess a test kills mid-step.

The table and DynamoDB Local's endpoint come from ``$DURABLE_TABLE`` and
``$DDB_ENDPOINT`` (credentials and region from the environment, as in Lambda).
"""

from __future__ import annotations

import os
from datetime import timedelta

from lambda_service.crash_flow import crash_flow

from durable_core.aws_lambda import dynamodb_handler
from durable_core.runtime import RuntimeOptions
from durable_core.stores.dynamodb import DynamoDBStore

handler = dynamodb_handler(
    crash_flow,
    store=DynamoDBStore(os.environ["DURABLE_TABLE"], endpoint_url=os.environ["DDB_ENDPOINT"]),
    options=RuntimeOptions(lease_ttl=timedelta(seconds=30)),
)
