"""Book a tour: flight → hotel → airport car; if a booking fails, cancel the others.

Run it (from the repository root)::

    python -m examples.tour_booking --fail-car

or through the CLI::

    durable run examples.tour_booking.saga:book_tour --input '{"fail_car": true}'

``book_tour`` is the saga as a function; ``book_tour_declared`` is the same saga declared
with the builder. Both book through the simulated providers in
:mod:`examples.tour_booking.providers`, which write a ledger so you can see that every
booking and every cancellation happened exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from tenacity import retry_if_not_exception_type, stop_after_attempt, wait_exponential

from durable_core import RetryPolicy, StepContext
from examples.tour_booking.providers import (
    Booking,
    SoldOutError,
    Tour,
    book_car,
    book_flight,
    book_hotel,
    cancel_car,
    cancel_flight,
    cancel_hotel,
)
from saga import Saga, SagaContext, saga

PROVIDER_RETRY = RetryPolicy(
    stop=stop_after_attempt(4),
    wait=wait_exponential(multiplier=1, min=1, max=30),
    retry=retry_if_not_exception_type(SoldOutError),
)
"""Retry flaky provider calls; a sold-out answer is final, so it fails the step at once."""


class Itinerary(BaseModel):
    """The saga's result."""

    flight: Booking
    hotel: Booking
    car: Booking


@saga
def book_tour(s: SagaContext, tour: Tour) -> Itinerary:
    """Book the flight, the hotel and the airport car; undo them in reverse on failure."""
    flight = s.step(
        "book-flight", book_flight, tour, compensate=cancel_flight, retry=PROVIDER_RETRY
    )
    hotel = s.step("book-hotel", book_hotel, tour, compensate=cancel_hotel, retry=PROVIDER_RETRY)
    car = s.step("book-car", book_car, tour, compensate=cancel_car, retry=PROVIDER_RETRY)
    return Itinerary(flight=flight, hotel=hotel, car=car)


def _tour(event: Any) -> Tour:
    return event if isinstance(event, Tour) else Tour.model_validate(event)


def _flight(sc: StepContext, event: Any, _results: Mapping[str, Any]) -> Booking:
    return book_flight(sc, _tour(event))


def _hotel(sc: StepContext, event: Any, _results: Mapping[str, Any]) -> Booking:
    return book_hotel(sc, _tour(event))


def _car(sc: StepContext, event: Any, _results: Mapping[str, Any]) -> Booking:
    return book_car(sc, _tour(event))


book_tour_declared = (
    Saga("book_tour_declared", input_type=Tour)
    .step("book-flight", _flight, compensate=cancel_flight, retry=PROVIDER_RETRY)
    .step("book-hotel", _hotel, compensate=cancel_hotel, retry=PROVIDER_RETRY)
    .step("book-car", _car, compensate=cancel_car, retry=PROVIDER_RETRY)
)
"""The same saga declared as data; its result is ``{"book-flight": ..., ...}``."""
