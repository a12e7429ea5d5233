"""``python -m examples.order_processing_async``: the async order saga on the SQLite store.

Like ``python -m examples.order_processing``, on an event loop: the orders are started
with ``AsyncRuntime`` and driven by an ``AsyncWorker`` in this process until each waits
(durably, up to 7 days) for the shipper. ``--confirm`` plays the shipper and lets the
worker finish; without it the command prints how to confirm with ``durable callback
succeed`` and finish with ``durable worker --async --until-idle``. ``--out-of-stock``
orders an item the warehouse does not have, so the payment is refunded. ``--orders N``
runs N orders at once: their provider calls (``$ORDER_LATENCY_MS``, default 20 ms each)
overlap on the one loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shlex
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

import structlog

from durable_core import (
    AsyncRuntime,
    AsyncWorker,
    Execution,
    ExecutionStatus,
    OperationType,
    Runtime,
    SQLiteStore,
)
from durable_core.cli import command_name
from examples.order_processing.services import (
    DEFAULT_STORE,
    STORE_ENV,
    Item,
    Order,
    effects,
    ledger_path,
)

SHIPMENT = {"tracking": "VNP-20260314-001", "carrier": "VNPost"}


def _load_saga() -> Any:
    from examples.order_processing_async.workflow import process_order

    return process_order


async def _token(api: AsyncRuntime, execution_id: str) -> str | None:
    for op in await api.operations(execution_id):
        if op.type is OperationType.CALLBACK and op.name == "shipper-confirmation":
            return op.callback_id
    return None


async def run_orders(
    runtime: Runtime, orders: list[Order], *, confirm: bool, prefix: str
) -> list[tuple[Execution, str | None]]:
    """Start the orders, drive them until they wait, confirm them if asked, finish them."""
    process_order = _load_saga()
    api = AsyncRuntime(runtime)
    worker = AsyncWorker(runtime, concurrency=max(100, len(orders)))
    ids = [f"{prefix}-{i}" if len(orders) > 1 else prefix for i in range(len(orders))]
    for execution_id, order in zip(ids, orders, strict=True):
        await api.start(process_order, order, execution_id=execution_id)
    await worker.run(until_idle=True)  # every order now waits for the shipper, or ended
    tokens = [await _token(api, execution_id) for execution_id in ids]
    if confirm:
        waiting = [
            token
            for execution_id, token in zip(ids, tokens, strict=True)
            if token is not None and (await api.get(execution_id)).status is ExecutionStatus.RUNNING
        ]
        if waiting:
            shipment = json.dumps(SHIPMENT)
            print(f"playing the shipper: confirming {len(waiting)} pickup(s) with {shipment}")
        for token in waiting:
            await api.send_callback_success(token, SHIPMENT)
        await worker.run(until_idle=True)
    return [(await api.get(i), t) for i, t in zip(ids, tokens, strict=True)]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the async order saga; 0 when it completed, waits for the shipper, or rolled back."""
    parser = argparse.ArgumentParser(prog="python -m examples.order_processing_async")
    parser.add_argument("--out-of-stock", action="store_true", help="order a missing item")
    parser.add_argument("--confirm", action="store_true", help="play the shipper: confirm now")
    parser.add_argument("--orders", type=int, default=1, help="orders to run at once")
    parser.add_argument("--store", default=os.environ.get(STORE_ENV) or str(DEFAULT_STORE))
    parser.add_argument("--id", help="execution id (default: a new one)")
    args = parser.parse_args(argv)
    if args.orders < 1:
        parser.error("--orders must be at least 1")
    _load_saga()  # before anything is printed or opened
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
    orders = [
        order if args.orders == 1 else order.model_copy(update={"order_id": f"A-{1001 + i}"})
        for i in range(args.orders)
    ]
    print(f"Order {order.order_id}: {len(order.items)} lines, {order.total:.2f} USD")
    if args.orders > 1:
        print(f"... and {args.orders - 1} more like it, all at once on one event loop")
    prefix = args.id or f"order-{uuid.uuid4().hex[:8]}"
    runtime = Runtime(SQLiteStore(args.store))
    started = time.perf_counter()
    try:
        ended = asyncio.run(run_orders(runtime, orders, confirm=args.confirm, prefix=prefix))
        took = time.perf_counter() - started
        from saga import saga_status
        from saga.cli import render_outcome

        ex, token = ended[0]
        print()
        print(render_outcome(saga_status(runtime, ex.id)))
        if len(ended) > 1:
            counts: dict[str, int] = {}
            for e, _ in ended:
                counts[e.status.value] = counts.get(e.status.value, 0) + 1
            print(f"\n{len(ended)} orders in {took:.2f} s: {counts}")
    finally:
        runtime.store.close()
    print()
    print(f"ledger {ledger_path()} ({ex.id}):")
    for service, action, detail in effects(ex.id):
        print(f"  {service:<9} {action:<13} {detail}")
    if ex.status is ExecutionStatus.RUNNING and token is not None:
        print()
        print("The saga waits (up to 7 days) for the shipper. Confirm the pickup as the shipper:")
        print(
            f"  {command_name()}{store} callback succeed {token} --payload "
            f"{shlex.quote(json.dumps(SHIPMENT))}"
        )
        print("then let a worker finish the saga, and look at it:")
        print(f"  {command_name()}{store} worker --async --until-idle")
        print(f"  {command_name('durable-saga')}{store} status {ex.id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
