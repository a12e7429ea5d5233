"""Async twins of the example sagas, for the async saga tests (imported as a plain module:
tests/saga is on sys.path).

Each twin has the saga name of the example it mirrors (the name is part of the journal: the
rollback plan records it), and the same steps, options and compensations, so it must write
the same journal. The tour's actions and compensations are ``async def`` (awaited on the
loop); the order's are the example's sync services, which an async saga runs on a thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

from durable_core import DurableFunction, StepContext
from examples.order_processing.saga import FINAL, SHIPPER_TIMEOUT, OrderResult
from examples.order_processing.services import (
    Order,
    cancel_pickup,
    charge,
    refund,
    release,
    request_pickup,
    reserve,
    send_cancellation,
    send_confirmation,
    validate,
)
from examples.tour_booking import providers
from examples.tour_booking.providers import Booking, Tour
from examples.tour_booking.saga import PROVIDER_RETRY, Itinerary
from saga import AsyncSagaContext, CompensationContext, SagaDefinition, saga


async def book_flight(sc: StepContext, tour: Tour) -> Booking:
    await asyncio.sleep(0)  # a real client would await its HTTP call here
    return providers.book_flight(sc, tour)


async def book_hotel(sc: StepContext, tour: Tour) -> Booking:
    await asyncio.sleep(0)
    return providers.book_hotel(sc, tour)


async def book_car(sc: StepContext, tour: Tour) -> Booking:
    await asyncio.sleep(0)
    return providers.book_car(sc, tour)


async def cancel_flight(c: CompensationContext) -> str:
    await asyncio.sleep(0)
    return providers.cancel_flight(c)


async def cancel_hotel(c: CompensationContext) -> str:
    await asyncio.sleep(0)
    return providers.cancel_hotel(c)


async def cancel_car(c: CompensationContext) -> str:
    await asyncio.sleep(0)
    return providers.cancel_car(c)


@saga(name="book_tour")
async def book_tour(s: AsyncSagaContext, tour: Tour) -> Itinerary:
    """examples.tour_booking.saga.book_tour, async."""
    flight = await s.step(
        "book-flight", book_flight, tour, compensate=cancel_flight, retry=PROVIDER_RETRY
    )
    hotel = await s.step(
        "book-hotel", book_hotel, tour, compensate=cancel_hotel, retry=PROVIDER_RETRY
    )
    car = await s.step("book-car", book_car, tour, compensate=cancel_car, retry=PROVIDER_RETRY)
    return Itinerary(flight=flight, hotel=hotel, car=car)


@saga(name="process_order")
async def process_order(s: AsyncSagaContext, order: Order) -> OrderResult:
    """examples.order_processing.saga.process_order, async (its services run on threads)."""
    await s.step("validate", validate, order, retry=FINAL)
    paid = await s.step("charge-payment", charge, order, compensate=refund)
    reserved = await s.step("reserve-inventory", reserve, order, compensate=release, retry=FINAL)
    await s.step("send-confirmation", send_confirmation, order, paid, compensate=send_cancellation)
    shipper = await s.ctx.create_callback("shipper-confirmation", timeout=SHIPPER_TIMEOUT)
    await s.step("request-pickup", request_pickup, order, shipper.token, compensate=cancel_pickup)
    shipment: Any = await shipper.result()
    tracking = shipment.get("tracking", "") if isinstance(shipment, dict) else str(shipment)
    return OrderResult(order_id=order.order_id, charge=paid, reserved=reserved, tracking=tracking)


def named_as(saga_def: SagaDefinition[Any, Any], other: SagaDefinition[Any, Any]) -> Any:
    """``saga_def``'s durable function registered under ``other``'s name: a worker whose
    code for that name is now the other surface's twin."""
    fn: DurableFunction[Any, Any] = saga_def.durable_function
    return dataclasses.replace(fn, name=other.durable_function.name)


def comparable(rec: Any) -> tuple[Any, ...]:
    """A journal record without what differs between two runs: times, the random callback
    token (and the pickup step's result, which is that token), tracebacks (also those a
    parallel branch's recorded outcome holds: they show the surface's own call stack)."""
    token_bearing = rec.type.value == "CALLBACK" or rec.name == "request-pickup"
    result = None if token_bearing or rec.result is None else _untraced(json.loads(rec.result))
    error = (rec.error.type, rec.error.message) if rec.error is not None else None
    return (
        rec.id,
        rec.parent_id,
        rec.type,
        rec.sub_type,
        rec.name,
        rec.status,
        json.dumps(result, sort_keys=True),
        error,
    )


def _untraced(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _untraced(v) for k, v in value.items() if k != "traceback"}
    if isinstance(value, list):
        return [_untraced(v) for v in value]
    return value
