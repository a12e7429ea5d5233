"""JSON serialization of values crossing the journal, through pydantic.

Invariants:
- Values are JSON text produced by a pydantic ``TypeAdapter`` of the annotated type, so
  models, dataclasses, datetimes, UUIDs, enums and containers of them round-trip.
- Nothing read from a store is ever unpickled; there is no pickle anywhere.
- A value that cannot be serialized, or whose JSON exceeds the size limit, raises
  :class:`~durable_core.errors.SerializationError` naming the operation.
- A type whose values cannot round-trip through JSON (no pydantic schema, or a schema with a
  callable, a generator, a class or an isinstance-only check in it) is refused by
  :func:`check_type` with a SerializationError, never a raw pydantic error. Operations check
  their declared types before they run anything, so such a type stops an operation before its
  effect, with nothing recorded.
- Annotations are read with their ``Annotated`` extras (:func:`type_hints`), so serializers
  and validators attached to a return or event type are applied in both directions.
- One TypeAdapter per (hashable) type, built and checked once, is shared by the checks and
  every dump and load: the per-operation check is a cache lookup.
- The engine round-trips every value before recording it, so the first run and every
  replay return an equal value of the same type.
"""

from __future__ import annotations

import functools
import inspect
import json
import typing
from collections.abc import Callable, Iterator
from types import FunctionType, MethodType
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


_NOT_JSON = {
    "callable": "it holds a callable, which has no JSON form",
    "generator": (
        "it holds a generator or iterator, which is consumed once: the value recorded would "
        "not be the value returned"
    ),
    "is-instance": (
        "it holds a class pydantic only checks with isinstance (arbitrary_types_allowed), "
        "whose values cannot be read back from JSON"
    ),
    "is-subclass": "it holds a class object (type[...]), which cannot be read back from JSON",
}
"""Core-schema kinds whose values cannot round-trip through JSON, and why."""


class _UnsupportedTypeError(Exception):
    """A type's values cannot round-trip through JSON; the message says why."""


def _why_not_json(schema: object) -> str | None:
    """Why a pydantic core schema cannot round-trip through JSON, or None if it can.

    Walks every nested schema except the Python-only branch of a ``json-or-python`` schema
    (JSON input never takes it: ``Sequence`` and ``Path`` check isinstance there) and
    metadata."""
    if isinstance(schema, dict):
        kind = schema.get("type")
        if isinstance(kind, str) and kind in _NOT_JSON:
            return _NOT_JSON[kind]
        for key, value in schema.items():
            if key == "metadata" or (key == "python_schema" and kind == "json-or-python"):
                continue
            reason = _why_not_json(value)
            if reason is not None:
                return reason
    elif isinstance(schema, list | tuple):
        for value in schema:
            reason = _why_not_json(value)
            if reason is not None:
                return reason
    return None


def _build(type_: Any) -> TypeAdapter[Any]:
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(type_)
    except Exception as e:  # pydantic raises several kinds (schema, user, name errors)
        # Only pydantic's first sentence: its advice (arbitrary_types_allowed) does not apply.
        first = str(e).strip().split("\n", 1)[0].split(". ", 1)[0].rstrip(".")
        raise _UnsupportedTypeError(f"pydantic has no schema for it ({first})") from e
    reason = _why_not_json(adapter.core_schema)
    if reason is not None:
        raise _UnsupportedTypeError(reason)
    return adapter


@functools.lru_cache(maxsize=512)
def _adapter(type_: Any) -> TypeAdapter[Any]:
    return _build(type_)


def _label(type_: Any) -> str:
    if not isinstance(type_, type):
        return repr(type_)  # typing forms print well: list[int], Annotated[...]
    module = "" if type_.__module__ == "builtins" else f"{type_.__module__}."
    return f"{module}{type_.__qualname__}"


def adapter_for(
    type_: Any, *, what: str = "value", fn: Callable[..., Any] | None = None
) -> TypeAdapter[Any]:
    """The TypeAdapter of ``type_``, checked to round-trip through JSON; cached per type
    (an unhashable type gets a fresh one).

    Args:
        type_: the declared type.
        what: the operation, for the error message (``"step 'charge'"``).
        fn: the function whose annotation ``type_`` is, named in the error message.

    Raises:
        SerializationError: values of ``type_`` cannot round-trip through JSON.
    """
    try:
        try:
            return _adapter(type_)
        except TypeError:  # unhashable type (e.g. Annotated with unhashable metadata)
            return _build(type_)
    except _UnsupportedTypeError as e:
        source = f" (the return annotation of {describe(fn)})" if fn is not None else ""
        raise SerializationError(
            f"{what}: the type {_label(type_)}{source} cannot be serialized to JSON: {e}. "
            "The journal records values as JSON: annotate plain data, a pydantic model or a "
            "dataclass instead (an operation's result_type= overrides a return annotation).",
            operation=what,
        ) from e


def check_type(type_: Any, *, what: str, fn: Callable[..., Any] | None = None) -> None:
    """Refuse, before anything runs, a declared type whose values cannot cross the journal.

    The check builds the same cached adapter that later serializes the values, so calling
    it per operation costs a cache lookup.

    Raises:
        SerializationError: naming ``what`` (and ``fn``): see :func:`adapter_for`.
    """
    if type_ is Any:
        return
    try:
        _adapter(type_)  # the fast path: a cache hit once the type has been seen
    except (TypeError, _UnsupportedTypeError):
        adapter_for(type_, what=what, fn=fn)  # unhashable, or raise the error naming it


def describe(fn: object) -> str:
    """``module.qualname`` of a function (or of an object's class), for messages."""
    target = fn if hasattr(fn, "__qualname__") else type(fn)
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(fn))}"


class PydanticSerde:
    """The default serde: pydantic JSON with a size limit.

    Subclasses change the text form only (:meth:`encode` / :meth:`decode`); the checks, the
    size limit and the error messages are this class's.
    """

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
        adapter = adapter_for(type_, what=what)
        try:
            raw = self.encode(adapter, value)
        except (PydanticSerializationError, PydanticValidationError, TypeError, ValueError) as e:
            raise SerializationError(
                f"{what}: value of type {type(value).__name__} is not JSON-serializable "
                f"({e}). Return plain data, a pydantic model or a dataclass, and annotate "
                "the function's return type.",
                operation=what,
            ) from e
        check_size(len(raw), self.max_bytes, what=what)
        return raw.decode()

    def load(self, text: str, type_: Any, *, what: str) -> Any:
        adapter = adapter_for(type_, what=what)
        try:
            return self.decode(adapter, text, what=what)
        except PydanticValidationError as e:
            # Reached on the first run too: the engine reads back every value it records.
            raise SerializationError(
                f"{what}: the value does not fit the declared type {_label(type_)}: {e}. A "
                "function must return a value of its annotated type; when replaying, did the "
                "annotated type change while this execution was in flight?",
                operation=what,
            ) from e

    def encode(self, adapter: TypeAdapter[Any], value: Any) -> bytes:
        """``value`` as the text to record (UTF-8), by ``adapter`` (its declared type)."""
        return adapter.dump_json(value)

    def decode(self, adapter: TypeAdapter[Any], text: str, *, what: str) -> Any:
        """The value recorded as ``text``, validated by ``adapter`` (raises pydantic's
        ValidationError when it does not fit; SerializationError naming ``what`` when the
        text is not in this serde's form)."""
        return adapter.validate_json(text)


def check_size(size: int, limit: int, *, what: str) -> None:
    """Refuse a serialized value of ``size`` bytes over ``limit``.

    Raises:
        PayloadTooLargeError: naming ``what`` and saying what to do.
    """
    if size > limit:
        raise PayloadTooLargeError(
            f"{what}: serialized value is {size} bytes, over the limit of {limit}. Store "
            "large data elsewhere (a bucket, a table) and return a reference, or raise the "
            "limit with max_payload_bytes.",
            operation=what,
        )


def external(serde: Serde) -> Serde:
    """The serde for values another program writes or reads: an execution's input and
    result, an invoke's payload and result, a callback's result. A serde whose journal form
    is its own (Lambda's service mode records AWS's tagged envelope) names it as its
    ``external`` attribute; any other serde is its own external form."""
    other = getattr(serde, "external", None)
    return other if isinstance(other, Serde) else serde


@runtime_checkable
class Serializer(Protocol):
    """An operation's own text form for its value (the ``serializer=`` option).

    The text ``serialize`` returns is recorded as it is (never JSON-encoded again), and
    ``deserialize`` is handed that same text, on the first run and on every replay. The
    value is not checked against a declared type: the serializer owns its format.
    """

    def serialize(self, value: Any) -> str:
        """The value as the text to record."""
        ...

    def deserialize(self, text: str) -> Any:
        """The value back from the recorded text."""
        ...


def check_serializer(serializer: object, *, what: str) -> Serializer | None:
    """``serializer`` if it is ``None`` or has ``serialize`` and ``deserialize`` methods.

    Raises:
        ValidationError: anything else, naming the operation (before anything runs).
    """
    if serializer is None or isinstance(serializer, Serializer):
        return serializer
    from durable_core.errors import ValidationError

    raise ValidationError(
        f"{what}: serializer= must have serialize(value) -> str and deserialize(text) "
        f"methods; got {type(serializer).__name__}"
    )


def dump_value(
    serde: Serde, value: Any, type_: Any, *, what: str, serializer: Serializer | None = None
) -> str:
    """``value`` as the text to record: by ``serializer`` when given (raw), else by ``serde``.

    Raises:
        SerializationError: the serializer raised or returned something other than text.
        PayloadTooLargeError: the text is over the serde's size limit.
    """
    if serializer is None:
        return serde.dump(value, type_, what=what)
    try:
        text = serializer.serialize(value)
    except Exception as e:
        raise SerializationError(
            f"{what}: its serializer {describe(serializer)} raised {type(e).__name__}: {e}",
            operation=what,
        ) from e
    if not isinstance(text, str):
        raise SerializationError(
            f"{what}: its serializer {describe(serializer)} returned "
            f"{type(text).__name__}, not str (the text to record)",
            operation=what,
        )
    check_size(len(text.encode()), getattr(serde, "max_bytes", DEFAULT_MAX_BYTES), what=what)
    return text


def load_value(
    serde: Serde, text: str, type_: Any, *, what: str, serializer: Serializer | None = None
) -> Any:
    """The value recorded as ``text``: by ``serializer`` when given (handed the raw text),
    else by ``serde`` into ``type_``.

    Raises:
        SerializationError: the serializer raised, or the text does not fit ``type_``.
    """
    if serializer is None:
        return serde.load(text, type_, what=what)
    try:
        return serializer.deserialize(text)
    except Exception as e:
        raise SerializationError(
            f"{what}: its serializer {describe(serializer)} could not read the recorded "
            f"value back ({type(e).__name__}: {e})",
            operation=what,
        ) from e


def round_trip(value: Any, type_: Any, *, what: str) -> Any:
    """``value`` as the journal will read it back as ``type_`` (by the default serde, without
    a size limit), for code that must know a value can be recorded before it is.

    Raises:
        SerializationError: ``value`` does not serialize as, or read back into, ``type_``.
    """
    return _ROUND_TRIP.load(_ROUND_TRIP.dump(value, type_, what=what), type_, what=what)


_ROUND_TRIP = PydanticSerde(max_bytes=2**62)


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def loads_strict(text: str | bytes) -> Any:
    """``json.loads`` of text from outside (callback payloads, webhook bodies), refusing
    ``NaN`` and ``Infinity``: Python's json accepts them, JSON does not, and a record would
    store them as null. Raises ValueError (or RecursionError) when ``text`` is not JSON."""
    return json.loads(text, parse_constant=_not_json)


def type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """The resolved annotations of ``fn`` with their ``Annotated`` extras kept (a
    ``PlainSerializer`` or validator is part of the type the journal uses); ``{}`` when they
    cannot be resolved. Every reader of a durable annotation goes through here."""
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:
        return {}


def _annotated_target(fn: Callable[..., Any]) -> Any:
    """The function whose annotations describe calling ``fn``: the unwrapped function, or a
    callable object's ``__call__``."""
    target: Any = inspect.unwrap(fn) if hasattr(fn, "__wrapped__") else fn
    if not isinstance(target, FunctionType | MethodType):
        target = getattr(target, "__call__", target)  # noqa: B004 - a callable object's method
    return target


def return_type(fn: Callable[..., Any]) -> Any:
    """The annotated return type of ``fn`` (or of its ``__call__``), with ``Annotated``
    extras; ``Any`` when absent or unresolvable."""
    plain = type(fn) is FunctionType and not hasattr(fn, "__wrapped__")  # the common case
    if not getattr(fn if plain else _annotated_target(fn), "__annotations__", None):
        return Any  # fast path: lambdas and unannotated callables
    try:
        return _return_type(fn)
    except TypeError:  # unhashable callable
        return _return_type.__wrapped__(fn)


@functools.lru_cache(maxsize=1024)
def _return_type(fn: Callable[..., Any]) -> Any:
    return type_hints(_annotated_target(fn)).get("return", Any)
