"""Service mode writes an operation's value in the text AWS's SDK writes (its tagged form).

The oracle is AWS's SDK itself (``ExtendedTypeSerDes``): for generated values of every type
its format has a tag for, our text must equal its text, and its text must read back as it
reads it. Then the serde of service mode, with declared types: a pydantic model is recorded
as AWS would record its plain data, and read back as the model.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from durable_core.aws_lambda import payloads
from durable_core.aws_lambda.payloads import AwsSerde
from durable_core.errors import SerializationError

aws_serdes = pytest.importorskip("aws_durable_execution_sdk_python.serdes")
AWS = aws_serdes.ExtendedTypeSerDes()

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
    st.dates(),
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
    st.uuids(),
    st.binary(max_size=16),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_the_text_of_a_value_is_the_text_aws_writes(value: Any) -> None:
    assert payloads.encode(value) == AWS.serialize(value)


@settings(max_examples=400, deadline=None)
@given(values)
def test_the_text_aws_writes_reads_back_as_aws_reads_it(value: Any) -> None:
    text = AWS.serialize(value)
    ours, theirs = payloads.decode(text), AWS.deserialize(text)
    assert ours == theirs
    assert repr(ours) == repr(theirs)  # the same types too (a tuple is no list)


class Order(BaseModel):
    id: int
    placed: dt.datetime
    lines: list[tuple[str, Decimal]]


def test_a_model_is_recorded_as_aws_records_its_plain_data_and_read_back_as_the_model() -> None:
    serde = AwsSerde()
    order = Order(
        id=7, placed=dt.datetime(2026, 1, 2, tzinfo=dt.UTC), lines=[("pen", Decimal("2.50"))]
    )

    text = serde.dump(order, Order, what="step 'order'")

    assert text == AWS.serialize(order.model_dump(mode="json"))
    assert json.loads(text)["t"] == "m"  # a dict: AWS's envelope
    assert serde.load(text, Order, what="step 'order'") == order


@pytest.mark.parametrize(
    ("value", "type_"),
    [
        ((1, "a"), tuple[int, str]),
        (uuid.UUID(int=5), uuid.UUID),
        (Decimal("1.10"), Decimal),
        (dt.date(2026, 12, 3), dt.date),
        (b"\x00\xff", bytes),
        ({"a": [1, 2]}, dict[str, list[int]]),
        ([1, [2, 3]], list[Any]),
        (None, None),
    ],
)
def test_typed_values_round_trip_in_aws_text(value: Any, type_: Any) -> None:
    serde = AwsSerde()
    text = serde.dump(value, type_, what="step 'x'")
    assert text == AWS.serialize(value)
    assert serde.load(text, type_, what="step 'x'") == value


@pytest.mark.parametrize("text", ["not json", '{"t": "s"', ""])
def test_text_that_is_not_json_is_a_serialization_error_naming_the_operation(text: str) -> None:
    with pytest.raises(SerializationError, match="step 'lookup'"):
        AwsSerde().load(text, Any, what="step 'lookup'")


@pytest.mark.parametrize(
    ("text", "type_", "value"),
    [
        ('{"a":1}', Any, {"a": 1}),
        ('{"t":"zz","v":1}', dict[str, Any], {"t": "zz", "v": 1}),
        ('{"id":7,"placed":"2026-01-02T00:00:00Z","lines":[["pen","2.50"]]}', Order, None),
    ],
)
def test_plain_json_recorded_by_0_1_still_reads(text: str, type_: Any, value: Any) -> None:
    # 0.1 recorded service-mode values as plain JSON: an execution in flight over the
    # upgrade must replay.
    read = AwsSerde().load(text, type_, what="step 'x'")
    assert read == (value if value is not None else Order.model_validate_json(text))


def test_values_other_programs_read_are_json_dumps_text() -> None:
    external = AwsSerde().external
    assert external.dump({"a": 1, "b": [1, 2]}, Any, what="result") == json.dumps(
        {"a": 1, "b": [1, 2]}
    )
