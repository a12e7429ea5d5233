"""JSON serialization of values crossing the journal, through pydantic.

Invariants:
- Values are JSON text produced by a pydantic ``TypeAdapter`` of the annotated type, so
  models, dataclasses, datetimes, UUIDs, enums and containers of them round-trip.
- Nothing read from a store is ever unpickled; there is no pickle anywhere.
- A value that cannot be serialized, or whose JSON exceeds the size limit, raises
  :class:`~durable_core.errors.SerializationError` naming the operation.
- The engine round-trips every value before recording it, so the first run and every
  replay return an equal value of the same type.
"""

from __future__ import annotations

import functools
import inspect
import json
import typing
from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticSerializationError

from durable_core.errors import PayloadTooLargeError, SerializationError

DEFAULT_MAX_BYTES = 256 * 1024
"""Default limit for one serialized value (the durable service's child-result threshold)."""


@runtime_checkable
class Serde(Protocol):
    """Turns values into JSON text and back, guided by a type."""

    def dump(self, value: Any, type_: Any, *, what: str) -> str:
        """Serialize ``value``; ``what`` names the operation for error messages."""
        ...

    def load(self, text: str, type_: Any, *, what: str) -> Any:
        """Deserialize ``text`` into ``type_``."""
        ...


@functools.lru_cache(maxsize=512)
def _adapter(type_: Any) -> TypeAdapter[Any]:
    return TypeAdapter(type_)


def adapter_for(type_: Any) -> TypeAdapter[Any]:
    """A cached TypeAdapter; unhashable types get a fresh one."""
    try:
        return _adapter(type_)
    except TypeError:
        return TypeAdapter(type_)


class PydanticSerde:
    """The default serde: pydantic JSON with a size limit."""

    def __init__(self, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        self.max_bytes = max_bytes

    def dump(self, value: Any, type_: Any, *, what: str) -> str:
        if isinstance(value, Iterator):
            # pydantic would drain a file or generator into a list: the value recorded
            # would not be the value returned, and draining is itself a side effect.
            raise SerializationError(
                f"{what}: value of type {type(value).__name__} is a one-shot iterator (an "
                "open file, a generator) and is not JSON-serializable. Return its contents "
                "as plain data instead (e.g. list(...) or the text).",
                operation=what,
            )
        try:
            raw = adapter_for(type_).dump_json(value)
        except (PydanticSerializationError, PydanticValidationError, TypeError, ValueError) as e:
            raise SerializationError(
                f"{what}: value of type {type(value).__name__} is not JSON-serializable "
                f"({e}). Return plain data, a pydantic model or a dataclass, and annotate "
                "the function's return type.",
                operation=what,
            ) from e
        if len(raw) > self.max_bytes:
            raise PayloadTooLargeError(
                f"{what}: serialized value is {len(raw)} bytes, over the limit of "
                f"{self.max_bytes}. Store large data elsewhere (a bucket, a table) and return "
                "a reference, or raise the limit with max_payload_bytes.",
                operation=what,
            )
        return raw.decode()

    def load(self, text: str, type_: Any, *, what: str) -> Any:
        try:
            return adapter_for(type_).validate_json(text)
        except PydanticValidationError as e:
            raise SerializationError(
                f"{what}: the recorded value does not fit the type {type_!r}: {e}. Did the "
                "annotated type change while this execution was in flight?",
                operation=what,
            ) from e


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def loads_strict(text: str | bytes) -> Any:
    """``json.loads`` of text from outside (callback payloads, webhook bodies), refusing
    ``NaN`` and ``Infinity``: Python's json accepts them, JSON does not, and a record would
    store them as null. Raises ValueError (or RecursionError) when ``text`` is not JSON."""
    return json.loads(text, parse_constant=_not_json)


def encodable(text: str) -> bool:
    """True if ``text`` is valid Unicode (no lone surrogate), so a store can hold it."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def return_type(fn: Callable[..., Any]) -> Any:
    """The annotated return type of ``fn``, or ``Any`` when absent or unresolvable."""
    target = inspect.unwrap(fn) if hasattr(fn, "__wrapped__") else fn
    if not getattr(target, "__annotations__", None):
        return Any  # fast path: lambdas and unannotated callables
    try:
        return _return_type(fn)
    except TypeError:  # unhashable callable
        return _return_type.__wrapped__(fn)


@functools.lru_cache(maxsize=1024)
def _return_type(fn: Callable[..., Any]) -> Any:
    target = inspect.unwrap(fn)
    try:
        hints = typing.get_type_hints(target)
    except Exception:
        return Any
    hint = hints.get("return", Any)
    return Any if hint is type(None) and "return" not in hints else hint
