"""Objects that carry a durable function are recognised by one protocol, everywhere."""

from __future__ import annotations

from durable_core import DurableContext, DurableFunction, MemoryStore, Runtime, durable
from durable_core.aws_lambda import durable_handler, dynamodb_handler
from durable_core.function import CarriesDurableFunction, unwrap_durable
from saga import SagaContext, saga


@durable
def double(ctx: DurableContext, n: int) -> int:
    return ctx.step("double", lambda sc: n * 2)


@saga
def one_step(s: SagaContext, n: int) -> int:
    return s.step("inc", lambda sc: n + 1)


def test_a_saga_and_a_lambda_handler_carry_their_durable_function() -> None:
    handler = durable_handler(double)
    for carrier, name in ((one_step, one_step.durable_function.name), (handler, double.name)):
        assert isinstance(carrier, CarriesDurableFunction)
        unwrapped = unwrap_durable(carrier)
        assert isinstance(unwrapped, DurableFunction)
        assert unwrapped.name == name
    assert unwrap_durable(double) is double
    assert unwrap_durable(len) is len  # carries nothing: itself


def test_a_runtime_runs_what_a_carrier_carries() -> None:
    rt = Runtime(MemoryStore())
    handler = durable_handler(double)
    assert rt.result(rt.run(handler, 4).id) == 8
    assert rt.result(rt.run(one_step, 4).id) == 5


def test_both_lambda_modes_hand_back_a_handler_that_carries_the_function() -> None:
    for handler in (durable_handler(one_step), dynamodb_handler(double, store=MemoryStore())):
        assert isinstance(handler, CarriesDurableFunction)
        assert unwrap_durable(handler) is handler.durable_function
    assert dynamodb_handler(one_step, store=MemoryStore()).durable_function.name == (
        one_step.durable_function.name
    )


class _NotACarrier:
    durable_function = "not a DurableFunction"


def test_a_durable_function_attribute_that_is_not_one_carries_nothing() -> None:
    odd = _NotACarrier()
    assert unwrap_durable(odd) is odd
