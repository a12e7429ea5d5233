"""The table behind a :class:`~durable_core.stores.dynamodb.DynamoDBStore`: its definition
and the API calls on it (the design is in ``docs/dynamodb-store.md``).

Part of the DynamoDB store, split out of :mod:`~durable_core.stores.dynamodb` to keep modules
small; only the DynamoDB store's modules use it. The table has a sparse GSI ``due_index``
(``due_pk``/``wake_us``, projecting ``lease_exp_us``) for ``claim_due``, a GSI
``created_index`` (``list_pk``/``created_us``, projecting ``status``) for
``list_executions``, and TTL on ``expires_at`` if the store sets it.

Invariants:
- boto3 and botocore are imported when a client is made or a call is made, never on import
  (``import durable_core.stores.dynamodb`` does not load boto3).
- A failed condition or a cancelled transaction raises :class:`_RejectedError` (nothing was
  written); every other client or service error is a StoreError naming the table.
- A transaction is retried (each attempt with a new ``ClientRequestToken``, so botocore's
  own retries of one attempt stay idempotent) only while every reason it was cancelled is
  a collision with another transaction or throttling; any other reason is raised at once.
- ``get`` reads consistently; ``query`` follows ``LastEvaluatedKey`` to the last page.
"""

from __future__ import annotations

import importlib
import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

from durable_core.errors import StoreError
from durable_core.stores.dynamodb_items import Item, _s


class _RejectedError(Exception):
    """A condition failed or a transaction was cancelled: nothing was written."""

    def __init__(self, response: Item) -> None:
        super().__init__(response.get("Error", {}).get("Message", ""))
        self.item: Item | None = response.get("Item")
        self.reasons = [r.get("Code", "None") for r in response.get("CancellationReasons", [])]


def _new_client(endpoint_url: str | None, region_name: str | None) -> Any:
    """A boto3 DynamoDB client with botocore's standard retry mode (throttling, 5xx)."""
    boto3 = importlib.import_module("boto3")  # imported only when a DynamoDBStore makes one
    config = importlib.import_module("botocore.config").Config(
        retries={"mode": "standard", "max_attempts": 5}
    )
    return boto3.client(
        "dynamodb", endpoint_url=endpoint_url, region_name=region_name, config=config
    )


class _Table:
    """One DynamoDB table, through a boto3 ``client``."""

    def __init__(self, name: str, client: Any) -> None:
        self.name = name
        self.client: Any = client

    def call(self, method: str, **kwargs: Any) -> Item:
        """One API call; condition failures become _RejectedError, other errors StoreError."""
        exceptions = importlib.import_module("botocore.exceptions")
        try:
            result: Item = getattr(self.client, method)(**kwargs)
        except exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "Unknown")
            if code in ("ConditionalCheckFailedException", "TransactionCanceledException"):
                raise _RejectedError(dict(exc.response)) from None
            msg = f"DynamoDB {method} on {self.name!r}: {code}: {error.get('Message')}"
            raise StoreError(msg) from exc
        except exceptions.BotoCoreError as exc:
            raise StoreError(f"DynamoDB {method} on {self.name!r}: {exc}") from exc
        return result

    def transact(self, items: list[Item]) -> None:
        """TransactWriteItems, retried while it only collides with another one or is throttled."""
        for attempt in range(8):
            try:  # the token makes botocore's own retries of one attempt idempotent
                token = uuid.uuid4().hex
                self.call("transact_write_items", TransactItems=items, ClientRequestToken=token)
                return
            except _RejectedError as rej:
                busy = {"TransactionConflict", "ThrottlingError"}
                only_busy = bool(busy & set(rej.reasons)) and set(rej.reasons) <= busy | {"None"}
                if not only_busy or attempt == 7:
                    raise
                time.sleep(random.uniform(0.005, 0.02) * (attempt + 1))  # noqa: S311

    def update(self, pk: str, sk: str, expr: str, cond: str, values: Item) -> Item:
        """The parameters of an UpdateItem (or a transaction's Update) of one item."""
        names = {"#st": "status"} if "#st" in expr + cond else None
        update = {
            "TableName": self.name,
            "Key": {"PK": _s(pk), "SK": _s(sk)},
            "UpdateExpression": expr,
            "ConditionExpression": cond,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        return {k: v for k, v in update.items() if v}

    def get(self, pk: str, sk: str) -> Item | None:
        """One item, read consistently; None if there is none."""
        key = {"PK": _s(pk), "SK": _s(sk)}
        found = self.call("get_item", TableName=self.name, Key=key, ConsistentRead=True)
        return found.get("Item")

    def query(self, **kwargs: Any) -> Iterator[Item]:
        """Every item a Query matches, following LastEvaluatedKey."""
        while True:
            page = self.call("query", TableName=self.name, **kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def create(self, *, ttl: bool, wait: bool) -> None:
        """Create the table and its two indexes (PAY_PER_REQUEST); a no-op if it exists.

        With ``ttl``, also enables TTL on ``expires_at``; with ``wait``, returns once the
        table exists.
        """
        types = {"PK": "S", "SK": "S", "due_pk": "S", "wake_us": "N"}
        types |= {"list_pk": "S", "created_us": "N"}

        def keys(pk: str, sk: str) -> list[Item]:
            return [
                {"AttributeName": pk, "KeyType": "HASH"},
                {"AttributeName": sk, "KeyType": "RANGE"},
            ]

        def index(name: str, pk: str, sk: str, extra: str) -> Item:
            proj = {"ProjectionType": "INCLUDE", "NonKeyAttributes": [extra]}
            return {"IndexName": name, "KeySchema": keys(pk, sk), "Projection": proj}

        try:
            self.call(
                "create_table",
                TableName=self.name,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": a, "AttributeType": t} for a, t in types.items()
                ],
                KeySchema=keys("PK", "SK"),
                GlobalSecondaryIndexes=[
                    index("due_index", "due_pk", "wake_us", "lease_exp_us"),
                    index("created_index", "list_pk", "created_us", "status"),
                ],
            )
        except StoreError as exc:
            if "ResourceInUseException" not in str(exc):
                raise
        if wait:
            waiter = self.client.get_waiter("table_exists")
            waiter.wait(TableName=self.name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        if ttl:
            spec = {"Enabled": True, "AttributeName": "expires_at"}
            try:
                self.call("update_time_to_live", TableName=self.name, TimeToLiveSpecification=spec)
            except StoreError as exc:
                if "already enabled" not in str(exc).lower():
                    raise
