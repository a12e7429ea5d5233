"""``python -m examples.order_processing``: run the order saga on the SQLite store.

The saga charges, reserves and confirms, then waits (durably, up to 7 days) for the shipper.
This command prints how to confirm as the shipper with ``durable callback succeed`` and how
to let a worker finish the saga. ``--confirm`` plays the shipper in this process instead;
``--out-of-stock`` orders an item the warehouse does not have, so the payment is refunded.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import uuid
from collections.abc import Sequence

import structlog

from durable_core import ExecutionStatus, OperationType, Runtime
from durable_core.cli import command_name
from durable_core.stores.sqlite import SQLiteStore
from examples.order_processing.saga import process_order
from examples.order_processing.services import (
    DEFAULT_STORE,
    STORE_ENV,
    Item,
    Order,
    effects,
    ledger_path,
)
from saga import saga_status
from saga.cli import render_outcome

SHIPMENT = {"tracking": "VNP-20260314-001", "carrier": "VNPost"}


def webhook_curl(token: str, base: str = "http://127.0.0.1:8080") -> str:
    """The ``curl`` line the shipper runs against ``durable serve`` to confirm the pickup."""
    url = f"{base}/api/v1/callbacks/{token}/succeed"
    body = shlex.quote(json.dumps(SHIPMENT))
    return f"curl -X POST {url} -H 'Content-Type: application/json' -d {body}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the order saga; return 0 when it completed, waits for the shipper, or rolled back."""
    parser = argparse.ArgumentParser(prog="python -m examples.order_processing")
    parser.add_argument("--out-of-stock", action="store_true", help="order a missing item")
    parser.add_argument("--confirm", action="store_true", help="play the shipper: confirm now")
    parser.add_argument("--store", default=os.environ.get(STORE_ENV) or str(DEFAULT_STORE))
    parser.add_argument("--id", help="execution id (default: a new one)")
    args = parser.parse_args(argv)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    default_store = os.environ.get(STORE_ENV) or str(DEFAULT_STORE)
    store = "" if args.store == default_store else f" --store {shlex.quote(args.store)}"
    os.environ.setdefault(STORE_ENV, args.store)
    order = Order()
    if args.out_of_stock:
        order = Order(items=[*order.items, Item(sku="pho-kit", qty=1, unit_price=9.5)])
    print(f"Order {order.order_id}: {len(order.items)} lines, {order.total:.2f} USD")
    runtime = Runtime(SQLiteStore(args.store))
    try:
        ex = runtime.run(
            process_order, order, execution_id=args.id or f"order-{uuid.uuid4().hex[:8]}"
        )
        token = next(
            (
                op.callback_id
                for op in runtime.operations(ex.id)
                if op.type is OperationType.CALLBACK and op.name == "shipper-confirmation"
            ),
            None,
        )
        if ex.status is ExecutionStatus.RUNNING and token is not None and args.confirm:
            print(f"playing the shipper: confirming pickup with {json.dumps(SHIPMENT)}")
            runtime.send_callback_success(token, SHIPMENT)
            ex = runtime.drive(ex.id)
        print()
        print(render_outcome(saga_status(runtime, ex.id)))
    finally:
        runtime.store.close()
    print()
    print(f"ledger {ledger_path()} (this execution):")
    for service, action, detail in effects(ex.id):
        print(f"  {service:<9} {action:<13} {detail}")
    if ex.status is ExecutionStatus.RUNNING and token is not None:
        print()
        print("The saga waits (up to 7 days) for the shipper. Confirm the pickup as the shipper:")
        print(
            f"  {command_name()}{store} callback succeed {token} --payload "
            f"{shlex.quote(json.dumps(SHIPMENT))}"
        )
        print("or, with `durable serve` running on this store, through its webhook:")
        print(f"  {webhook_curl(token)}")
        print("then let a worker finish the saga, and look at it:")
        print(f"  {command_name()}{store} worker --until-idle")
        print(f"  {command_name('durable-saga')}{store} status {ex.id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
