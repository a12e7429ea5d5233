"""The payload text of AWS's durable execution SDK, so service-mode histories read alike.

AWS's Python SDK records an operation's value (a step's, a child context's, a condition's
state) in a tagged JSON form, and an execution's result, an invoke's payload and result as
``json.dumps`` text. :class:`AwsSerde` writes and reads the same text for the same data; it
is the serde of :func:`~durable_core.aws_lambda.durable_handler` (the self-hosted stores and
the DynamoDB mode keep pydantic's compact JSON).

The tagged form (a format fact, written here from its description):

- ``None``, ``bool``, ``int``, ``float``, ``str``, and lists (nested too) of only those, are
  compact JSON (``separators=(",", ":")``): ``42``, ``"hi"``, ``[1,[2,3]]``.
- Anything else is ``{"t": tag, "v": value}``, recursively for every element: ``n`` none,
  ``b`` bool, ``i`` int, ``f`` float, ``s`` str, ``l`` list, ``t`` tuple (a list of tagged
  elements), ``m`` dict (keys as they are, values tagged), ``dt`` datetime and ``D`` date
  (``isoformat()``), ``d`` Decimal (``str``), ``u`` UUID (``str``), ``B`` bytes (base64),
  ``br`` a batch result (a dict: :class:`BatchResultDict`).
  ``{"a": 1}`` is ``{"t":"m","v":{"a":{"t":"i","v":1}}}``.
- Text is ASCII (``json.dumps``' escapes), ``NaN``/``Infinity`` as Python's json writes them.

Values that are not plain data are first reduced to it:

- a pydantic model, a dataclass, an enum, a set, a ``timedelta`` or any other type pydantic
  knows becomes its JSON-mode plain form (``model_dump(mode="json")``: a dict of strings,
  numbers, lists...), so it is recorded as AWS would record that plain data (a datetime
  *inside* a model is its ISO string, tagged ``s``); sets become lists (``l``) in pydantic's
  order; bytearray and memoryview are bytes;
- datetimes, dates, Decimals, UUIDs, bytes and tuples met as plain values (returned as such,
  or in lists, tuples and dicts) keep their own tags, as in AWS's SDK;
- a declared type with a custom pydantic serializer (``Annotated[..., PlainSerializer]``, a
  ``@field_serializer``) is reduced as a whole by that type, so its serializers apply.

Reading decodes the tags, then validates into the declared type with pydantic (JSON-only
data by pydantic's JSON rules, as the self-hosted stores read it), so the first run and every
replay return an equal value. JSON that is not a well-formed envelope (an object without
``t`` and ``v``, an unknown tag) is read as plain JSON: that is how 0.1 recorded values, so an
execution started before the upgrade replays (a 0.1 value that was itself an object of
exactly a known tag and a fitting value would be misread; none of the library's own records
is). Text that is not JSON raises :class:`~durable_core.errors.SerializationError` naming the
operation.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import TypeAdapter
from pydantic_core import to_jsonable_python

from durable_core.errors import SerializationError
from durable_core.serde import DEFAULT_MAX_BYTES, PydanticSerde

_COMPACT = (",", ":")
_PLAIN = (str, int, float, bool, type(None))
_NATIVE = (*_PLAIN, dt.date, Decimal, uuid.UUID, bytes)
"""Values that keep a tag of their own (a datetime is a date)."""
_KEYS = (str, int, float, bool, type(None))
"""Dict keys ``json.dumps`` writes itself (as AWS's SDK leaves them)."""


class BatchResultDict(dict[str, Any]):
    """A dict recorded under AWS's BatchResult tag ``br`` instead of ``m`` (the form AWS's SDK
    records a parallel's or map's result in); read back as a BatchResultDict."""


def encode(value: Any) -> str:
    """``value`` (plain data, datetimes, Decimals, UUIDs, bytes, tuples) as AWS's tagged text.

    Raises:
        TypeError: a value of another type (reduce it with :func:`plain` first).
    """
    if _is_plain(value):
        return json.dumps(value, separators=_COMPACT)
    return json.dumps(_tagged(value), separators=_COMPACT)


def decode(text: str) -> Any:
    """The value AWS's tagged ``text`` stands for (tuples, datetimes... rebuilt).

    Raises:
        ValueError: ``text`` is not JSON, or neither plain data nor a well-formed envelope.
    """
    obj = json.loads(text)
    if _is_plain(obj):
        return obj
    if not (isinstance(obj, dict) and "t" in obj and "v" in obj):
        raise ValueError(
            'it is neither plain JSON (a scalar or a list of them) nor a {"t": tag, "v": value} '
            "envelope"
        )
    return _untagged(obj)


def _is_plain(value: Any) -> bool:
    if isinstance(value, _PLAIN):
        return True
    return type(value) is list and all(_is_plain(v) for v in value)


def _tagged(value: Any) -> dict[str, Any]:
    if value is None:
        return {"t": "n", "v": None}
    if isinstance(value, list):
        return {"t": "l", "v": [_tagged(v) for v in value]}
    if isinstance(value, tuple):
        return {"t": "t", "v": [_tagged(v) for v in value]}
    if isinstance(value, dict):
        tag = "br" if isinstance(value, BatchResultDict) else "m"
        return {"t": tag, "v": {_key(k): _tagged(v) for k, v in value.items()}}
    for kind, tag, write, _ in _SCALARS:  # in order: a bool is an int, a datetime a date
        if isinstance(value, kind):
            return {"t": tag, "v": write(value)}
    raise TypeError(f"{type(value).__name__} has no tag in AWS's payload format")


def _key(key: Any) -> Any:
    if isinstance(key, _KEYS):
        return key
    if isinstance(key, tuple):
        raise TypeError("a tuple cannot be a dict key in AWS's payload format")
    plain_key = to_jsonable_python(key)
    if not isinstance(plain_key, str):
        raise TypeError(f"dict key {key!r} has no JSON key form")
    return plain_key


def _untagged(node: Any) -> Any:
    if not (isinstance(node, dict) and "t" in node and "v" in node):
        return node  # AWS's reader takes an untagged element as it is
    tag, value = node["t"], node["v"]
    if tag in ("l", "t"):
        if not isinstance(value, list):
            raise ValueError(f"tag {tag!r} needs a list, got {type(value).__name__}")
        items = [_untagged(v) for v in value]
        return items if tag == "l" else tuple(items)
    if tag in ("m", "br"):
        if not isinstance(value, dict):
            raise ValueError(f"tag {tag!r} needs an object, got {type(value).__name__}")
        fields = {k: _untagged(v) for k, v in value.items()}
        return fields if tag == "m" else BatchResultDict(fields)
    read = _READERS.get(tag) if isinstance(tag, str) else None
    if read is None:
        raise ValueError(f"unknown tag {tag!r}")
    try:
        return read(value)
    except (TypeError, AttributeError, InvalidOperation, binascii.Error) as e:
        raise ValueError(f"tag {tag!r} with value {value!r:.80}: {e}") from e


def _read_datetime(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)


_SCALARS: tuple[tuple[type, str, Callable[[Any], Any], Callable[[Any], Any]], ...] = (
    (bool, "b", lambda v: v, bool),
    (int, "i", lambda v: v, int),
    (float, "f", lambda v: v, float),
    (str, "s", lambda v: v, str),
    (dt.datetime, "dt", lambda v: v.isoformat(), _read_datetime),
    (dt.date, "D", lambda v: v.isoformat(), dt.date.fromisoformat),
    (Decimal, "d", str, Decimal),
    (uuid.UUID, "u", str, uuid.UUID),
    (
        bytes,
        "B",
        lambda v: base64.b64encode(v).decode("ascii"),
        lambda v: base64.b64decode(v.encode("ascii"), validate=True),
    ),
)
"""(type, tag, write, read) of every scalar tag, in the order a value is matched."""
_READERS: dict[str, Callable[[Any], Any]] = {tag: read for _, tag, _, read in _SCALARS}
_READERS["n"] = lambda v: None


def plain(value: Any, adapter: TypeAdapter[Any] | None = None) -> Any:
    """``value`` reduced to what :func:`encode` takes (see the module docstring).

    ``adapter`` (the declared type's) reduces the whole value when that type has a custom
    serializer; otherwise each value that is not plain data is reduced by its own type.

    Raises:
        pydantic_core.PydanticSerializationError: a value pydantic cannot serialize.
    """
    if adapter is not None and _custom(adapter):
        return adapter.dump_python(value, mode="json")
    return _reduce(value)


def _reduce(value: Any) -> Any:
    if isinstance(value, _NATIVE):
        return _exact(value)
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, list):
        return [_reduce(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_reduce(v) for v in value)
    if isinstance(value, dict):
        reduced = {k: _reduce(v) for k, v in value.items()}
        return BatchResultDict(reduced) if isinstance(value, BatchResultDict) else reduced
    return to_jsonable_python(value)  # models, dataclasses, enums, sets, timedeltas...


def _exact(value: Any) -> Any:
    """An enum member that is also a str or int (StrEnum, IntEnum) as its plain value."""
    if isinstance(value, bool) or type(value) in _PLAIN:
        return value
    if isinstance(value, str | int | float) and not isinstance(value, dt.date | Decimal):
        return to_jsonable_python(value)
    return value


@functools.lru_cache(maxsize=512)
def _custom(adapter: TypeAdapter[Any]) -> bool:
    """Whether the declared type serializes by code of its own (cached per adapter, and the
    serde caches one adapter per type)."""
    return _has_serializer(adapter.core_schema)


def _has_serializer(schema: object) -> bool:
    """Whether a pydantic core schema holds a custom serializer (outside metadata)."""
    if isinstance(schema, dict):
        if isinstance(schema.get("serialization"), dict):
            return True
        return any(_has_serializer(v) for k, v in schema.items() if k != "metadata")
    if isinstance(schema, list | tuple):
        return any(_has_serializer(v) for v in schema)
    return False


def _json_only(value: Any) -> bool:
    if isinstance(value, _PLAIN):
        return True
    if type(value) is list:
        return all(_json_only(v) for v in value)
    if type(value) is dict:
        return all(_json_only(v) for v in value.values())
    return False


_AWS = "aws_durable_execution_sdk_python.exceptions."
AWS_ERROR_TYPES = {
    "durable_core.errors.StepFailedError": _AWS + "StepError",
    "durable_core.errors.StepInterruptedError": _AWS + "StepInterruptedError",
    "durable_core.errors.ConditionTimeoutError": _AWS + "WaitForConditionError",
    "durable_core.errors.CallbackFailedError": _AWS + "CallbackExternalError",
    "durable_core.errors.CallbackTimeoutError": _AWS + "CallbackTimeoutError",
    "durable_core.errors.CallbackSubmitterError": _AWS + "CallbackSubmitterError",
    "durable_core.errors.InvokeError": _AWS + "InvokeError",
}
"""Our error types written under the name AWS's SDK writes for the same failure (so the
history reads alike); read back as ours."""
OUR_ERROR_TYPES = {aws: ours for ours, aws in AWS_ERROR_TYPES.items()}


_BATCH_SUB_TYPES = ("Parallel", "Map")


def batch_text_to_aws(sub_type: str | None, text: str | None) -> str | None:
    """A parallel's or map's recorded result with its items' error types in AWS's names
    (:data:`AWS_ERROR_TYPES`), as the service records it; other text as it is."""
    return _rename_batch_errors(sub_type, text, AWS_ERROR_TYPES)


def batch_text_from_aws(sub_type: str | None, text: str | None) -> str | None:
    """:func:`batch_text_to_aws` undone: a result read from the service, in our names."""
    return _rename_batch_errors(sub_type, text, OUR_ERROR_TYPES)


def _rename_batch_errors(
    sub_type: str | None, text: str | None, names: dict[str, str]
) -> str | None:
    if text is None or sub_type not in _BATCH_SUB_TYPES or '"br"' not in text:
        return text
    try:
        obj = json.loads(text)
    except ValueError:
        return text
    items = _at(obj, "t") == "br" and _at(obj, "v", "all", "v")
    if not isinstance(items, list):
        return text
    renamed = False
    for item in items:
        kind = _at(item, "v", "error", "v", "ErrorType")
        if isinstance(kind, dict) and isinstance(kind.get("v"), str) and kind["v"] in names:
            kind["v"] = names[kind["v"]]
            renamed = True
    # Python's json reads and writes the same text back (key order, floats, escapes).
    return json.dumps(obj, separators=_COMPACT) if renamed else text


def _at(node: Any, *keys: str) -> Any:
    """``node[k1][k2]...``, or ``None`` where a level is not an object or lacks the key."""
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


_NOT_JSON = object()


def _plain_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _NOT_JSON


class AwsSerde(PydanticSerde):
    """The journal serde of service mode: AWS's tagged payload text (module docstring).

    Its :attr:`external` serde writes what other programs read and write (an execution's
    input and result, an invoke's payload and result, a callback's result) as AWS's SDK does:
    ``json.dumps`` of the plain value, default separators.
    """

    def __init__(self, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        super().__init__(max_bytes=max_bytes)
        self.external = AwsJsonSerde(max_bytes=max_bytes)
        """The serde of values crossing to other programs (see ``serde.external``)."""

    def encode(self, adapter: TypeAdapter[Any], value: Any) -> bytes:
        return encode(plain(value, adapter)).encode()

    def decode(self, adapter: TypeAdapter[Any], text: str, *, what: str) -> Any:
        try:
            value = decode(text)
        except (ValueError, RecursionError) as e:
            value = _plain_json(text)  # as 0.1 recorded it, before it wrote AWS's form
            if value is not _NOT_JSON:
                return adapter.validate_json(text)
            raise SerializationError(
                f"{what}: the recorded value {text[:80]!r} is not in the payload format of "
                f"AWS's SDK ({e}). Was it written by another program, or by hand?",
                operation=what,
            ) from e
        if adapter.core_schema.get("type") == "any":
            return value
        if _json_only(value):  # read as the self-hosted stores read JSON
            return adapter.validate_json(json.dumps(value, separators=_COMPACT))
        return adapter.validate_python(value)


class AwsJsonSerde(PydanticSerde):
    """``json.dumps`` text of the plain (JSON-mode) value, as AWS's SDK writes an execution's
    result and an invoke's payload; read as JSON into the declared type."""

    def encode(self, adapter: TypeAdapter[Any], value: Any) -> bytes:
        return json.dumps(adapter.dump_python(value, mode="json")).encode()
