"""The text a decided batch records: its whole result, in the form AWS's SDK records it.

The batch's CONTEXT record holds the :class:`BatchResult` (every started branch's status,
value or error, and the completion reason) so that a finished batch replays from its own
record, as AWS's SDK does, and the durable service's history shows the same payload for
the same outcome. The form is AWS's typed envelope: every value is ``{"t": tag, "v": ...}``
(``n`` null, ``s`` str, ``b`` bool, ``i`` int, ``f`` float, ``B`` base64 bytes, ``u`` UUID,
``d`` Decimal, ``dt`` datetime, ``D`` date, ``l`` list, ``t`` tuple, ``m`` dict), the
result is ``{"t": "br", "v": {"all": [...], "completionReason": ...}}``, compact JSON.

Invariants:
- ``all`` lists the started branches in index order; a branch never started is absent
  (branches start in index order, so absent ones are the indexes after the last listed).
- A branch value is encoded from its recorded JSON text (the one its own record holds), or
  from what an ``item_serializer`` read back, so the batch reads back exactly the values
  its branches recorded.
- A result over the size limit is recorded as AWS's compact summary instead (counts, the
  completion reason and which branches were left STARTED); the values are then read from
  the branches' own records. A FLAT batch has no such records, so it must fit.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from durable_core.errors import SerializationError
from durable_core.operations._batch_types import BatchItemStatus, CompletionReason
from durable_core.records import ErrorInfo

SUMMARY_TYPES = {"Parallel": "ParallelResult", "Map": "MapResult"}
"""The ``type`` of the compact summary, by the batch's sub-type."""


_PLAIN = {type(None): "n", str: "s", bool: "b", int: "i", float: "f"}
"""Tags of the exact types JSON reads back (the common case, looked up first)."""


def encode(value: Any, what: str) -> Any:
    """``value`` as AWS's typed envelope (a JSON-able structure).

    Raises:
        SerializationError: a value of a type the envelope has no tag for.
    """
    kind = type(value)
    tag = _PLAIN.get(kind)
    if tag is not None:
        return {"t": tag, "v": value}
    if kind is list:
        return {"t": "l", "v": [encode(v, what) for v in value]}
    if kind is dict:
        return {"t": "m", "v": {str(k): encode(v, what) for k, v in value.items()}}
    return _encode_other(value, what)


def _encode_other(value: Any, what: str) -> Any:
    match value:
        case str():
            return {"t": "s", "v": str(value)}
        case bool():
            return {"t": "b", "v": bool(value)}
        case int():
            return {"t": "i", "v": int(value)}
        case float():
            return {"t": "f", "v": float(value)}
        case bytes():
            return {"t": "B", "v": base64.b64encode(value).decode()}
        case uuid.UUID():
            return {"t": "u", "v": str(value)}
        case Decimal():
            return {"t": "d", "v": str(value)}
        case datetime():
            return {"t": "dt", "v": value.isoformat()}
        case date():
            return {"t": "D", "v": value.isoformat()}
        case list():
            return {"t": "l", "v": [encode(v, what) for v in value]}
        case tuple():
            return {"t": "t", "v": [encode(v, what) for v in value]}
        case dict():
            return {"t": "m", "v": {str(k): encode(v, what) for k, v in value.items()}}
    raise SerializationError(
        f"{what}: a branch value of type {type(value).__name__} has no form in the batch's "
        "record; give the batch a serializer= for its whole result",
        operation=what,
    )


_DECODE: dict[str, Callable[[Any], Any]] = {
    "n": lambda v: None,
    "s": str,
    "b": bool,
    "i": int,
    "f": float,
    "B": base64.b64decode,
    "u": uuid.UUID,
    "d": Decimal,
    "dt": datetime.fromisoformat,
    "D": date.fromisoformat,
}


def decode(obj: Any) -> Any:
    """The value an :func:`encode` envelope holds (ValueError/KeyError if malformed)."""
    tag, value = obj["t"], obj["v"]
    if tag == "l":
        return [decode(v) for v in value]
    if tag == "t":
        return tuple(decode(v) for v in value)
    if tag in ("m", "br"):
        return {k: decode(v) for k, v in value.items()}
    return _DECODE[tag](value)


@dataclass(frozen=True)
class Entry:
    """One started branch as recorded: its index, status, value (decoded) or error."""

    index: int
    status: BatchItemStatus
    value: Any = None
    error: ErrorInfo | None = None


def _error(info: ErrorInfo) -> dict[str, str]:
    out = {"ErrorMessage": info.message, "ErrorType": info.type}
    if info.data is not None:
        out["ErrorData"] = info.data
    return out


_COMPACT = json.JSONEncoder(separators=(",", ":"))
_NULL = '{"t":"n","v":null}'


def dumps(entries: list[Entry], reason: CompletionReason, what: str) -> str:
    """The recorded text of a batch result (``entries``: the started branches).

    Written piece by piece (the item's frame is fixed text, only its value and error are
    encoded): the same compact JSON as encoding the whole structure, at a fraction of the
    cost per branch.
    """
    dump = _COMPACT.encode
    items = []
    for e in entries:
        value = _NULL if e.value is None else dump(encode(e.value, what))
        error = _NULL if e.error is None else dump(encode(_error(e.error), what))
        items.append(
            f'{{"t":"m","v":{{"index":{{"t":"i","v":{e.index}}},"status":{{"t":"s","v":'
            f'"{e.status.value}"}},"result":{value},"error":{error}}}}}'
        )
    return (
        f'{{"t":"br","v":{{"all":{{"t":"l","v":[{",".join(items)}]}},'
        f'"completionReason":{{"t":"s","v":"{reason.value}"}}}}}}'
    )


def summary(entries: list[Entry], reason: CompletionReason, sub_type: str) -> str:
    """AWS's compact summary of a result too large to record whole."""
    started = [e.index for e in entries if e.status is BatchItemStatus.STARTED]
    ended = [e.index for e in entries if e.status is not BatchItemStatus.STARTED]
    indexes = {"startedIndexes": started} if len(started) <= len(ended) else {}
    indexes = indexes or {"completedIndexes": ended}
    failed = sum(e.status is BatchItemStatus.FAILED for e in entries)
    return json.dumps(
        {
            "type": SUMMARY_TYPES[sub_type],
            "totalCount": len(entries),
            "completionReason": reason.value,
            **indexes,
            "startedCount": len(started),
            "successCount": sum(e.status is BatchItemStatus.SUCCEEDED for e in entries),
            "failureCount": failed,
            "status": "FAILED" if failed else "SUCCEEDED",
        }
    )


@dataclass(frozen=True)
class Recorded:
    """A batch record read back: the reason, and either the entries or (for a summary) the
    number of started branches and which of them were left STARTED."""

    reason: CompletionReason
    entries: list[Entry] | None
    started_total: int
    left_started: frozenset[int]


def loads(text: str) -> Recorded:
    """Read a batch record's text (whole or summary). ValueError if it is neither."""
    try:
        data = json.loads(text)
        if isinstance(data, dict) and data.get("type") in SUMMARY_TYPES.values():
            total = int(data["totalCount"])
            if "startedIndexes" in data:
                started = frozenset(int(i) for i in data["startedIndexes"])
            else:
                started = frozenset(range(total)) - {int(i) for i in data["completedIndexes"]}
            return Recorded(CompletionReason(data["completionReason"]), None, total, started)
        if data["t"] != "br":
            raise ValueError(f"not a batch result (tag {data['t']!r})")
        body = decode(data)
        entries = [
            Entry(
                index=int(item["index"]),
                status=BatchItemStatus(item["status"]),
                value=item.get("result"),
                error=(
                    ErrorInfo(
                        type=str(item["error"].get("ErrorType", "Error")),
                        message=str(item["error"].get("ErrorMessage", "")),
                        data=item["error"].get("ErrorData"),
                    )
                    if item.get("error")
                    else None
                ),
            )
            for item in body["all"]
        ]
        reason = CompletionReason(body["completionReason"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"the batch's record is not a batch result: {exc}") from exc
    return Recorded(reason, entries, len(entries), frozenset())
