"""Compare two durable execution histories event by event, and say how they differ.

The rules (also in README.md), kept narrow on purpose:

- **Ignored**: operation ids (``Id``, ``ParentId``, ``EventId``), ``EventTimestamp``, every
  key ending in ``Timestamp`` inside an event's details (``ScheduledEndTimestamp``...), and
  the service-minted ``CallbackId`` and an invoked execution's ``DurableExecutionArn``.
  The execution's own ``Name`` (the ``ExecutionName`` the
  test chose, unique per run) reads ``<execution>``.
- **StackTrace** is compared as present or absent: each SDK prints its own frames (file
  names, line numbers), so the text can never be the same; whether an error carries one is.
- **Everything else is exact**: event types, SubTypes, names, statuses, payload *text*
  (``{"a": 1}`` and ``{"a":1}`` differ), ``Truncated``, error type, message and data, retry
  and wait details, callback options.
- **Concurrent branches.** Branches of one ``Parallel``/``Map`` run on threads and finish in
  any order. Inside the span from a batch's ``ContextStarted`` to its end, the events of
  its branches (the branch contexts and everything under them) are regrouped branch by
  branch, branches in the order of their names (numbers compared as numbers), each
  branch's own events kept in their order. Events outside the batch's subtree (an
  ``InvocationCompleted``, a sibling) keep their positions, and the number of events is
  never changed, so a missing, extra or reordered event inside a branch still differs.
- **Invocation ends inside a batch.** Where an SDK suspends while a ``Parallel``/``Map``'s
  branches run depends on timing (AWS's own SDK, on a loaded machine, ends the invocation at
  a branch's 1 s wait in one run and goes on in-process in the next), so an
  ``InvocationCompleted`` between a batch's ``ContextStarted`` and its end is not compared.
  Every other ``InvocationCompleted`` is.
- **The end of an invocation against the service's own completions.** The service
  completes a wait, a callback or an invoked function on its own clock, which may fall just
  before or just after the invocation that waits for it has returned. In a run of adjacent
  events made only of ``InvocationCompleted`` and such service completions
  (:data:`SERVICE_COMPLETIONS`), the ``InvocationCompleted`` events are moved to the end of
  the run. Their number is kept, so an invocation that ends (or does not) is still compared.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from typing import Any

IGNORED_KEYS = frozenset(
    {"Id", "ParentId", "EventId", "EventTimestamp", "CallbackId", "DurableExecutionArn"}
)
EXECUTION_NAME = "<execution>"
STACK_TRACE = "<stack trace>"
BATCH_SUBTYPES = frozenset({"Parallel", "Map"})
SERVICE_COMPLETIONS = frozenset(
    {
        "WaitSucceeded",
        "CallbackSucceeded",
        "CallbackFailed",
        "CallbackTimedOut",
        "ChainedInvokeSucceeded",
        "ChainedInvokeFailed",
        "ChainedInvokeTimedOut",
        "ChainedInvokeStopped",
    }
)
"""Events the service writes on its own clock, not in answer to the handler's checkpoint."""
Event = dict[str, Any]


def normalize(history: Sequence[Event]) -> list[Event]:
    """The comparable form of ``history``: canonical branch order, ignored fields dropped."""
    ordered = _invocation_ends_last(canonical_order(_without_ends_inside_batches(history)))
    names = {e.get("Name") for e in ordered if e["EventType"].startswith("Execution")}
    return [_clean(e, names) for e in ordered]


def _clean(value: Any, execution_names: set[Any], *, top: bool = True) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in IGNORED_KEYS or key.endswith("Timestamp"):
                continue
            if key == "StackTrace":
                out[key] = STACK_TRACE if item else item
            elif top and key == "Name" and value["EventType"].startswith("Execution"):
                out[key] = EXECUTION_NAME if item in execution_names else item
            else:
                out[key] = _clean(item, execution_names, top=False)
        return out
    if isinstance(value, list):
        return [_clean(item, execution_names, top=False) for item in value]
    return value


def _natural(name: Any) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(name or ""))]


def canonical_order(history: Sequence[Event]) -> list[Event]:
    """``history`` with the events of each batch's branches grouped branch by branch."""
    events = list(history)
    parent = {e["Id"]: e.get("ParentId") for e in events if "Id" in e}
    name = {e["Id"]: e.get("Name") for e in events if "Id" in e}

    def branch_of(op: str | None, batch: str) -> str | None:
        """The child of ``batch`` on the way up from ``op`` (None: not under ``batch``)."""
        while op is not None:
            up = parent.get(op)
            if up == batch:
                return op
            op = up
        return None

    batches = [
        e["Id"]
        for e in events
        if e["EventType"] == "ContextStarted" and e.get("SubType") in BATCH_SUBTYPES
    ]
    for batch in batches:  # outermost first: they start first
        positions = [i for i, e in enumerate(events) if branch_of(e.get("Id"), batch)]
        members = [events[i] for i in positions]
        members.sort(key=lambda e: _natural(name.get(branch_of(e.get("Id"), batch))))
        for i, event in zip(positions, members, strict=True):
            events[i] = event
    return events


def _without_ends_inside_batches(history: Sequence[Event]) -> list[Event]:
    """``history`` without the InvocationCompleted events inside a batch's span (from its
    ContextStarted to its end): where an SDK suspends while branches run depends on timing
    (AWS's own SDK, on a loaded machine, ends an invocation at a branch's 1 s wait in one
    run and not in the next)."""
    events = list(history)
    inside = [0] * (len(events) + 1)
    for i, e in enumerate(events):
        if e["EventType"] == "ContextStarted" and e.get("SubType") in BATCH_SUBTYPES:
            end = next(
                (
                    j
                    for j in range(i + 1, len(events))
                    if events[j].get("Id") == e.get("Id")
                    and events[j]["EventType"] in ("ContextSucceeded", "ContextFailed")
                ),
                len(events),
            )
            inside[i + 1] += 1
            inside[end] -= 1
    depth, out = 0, []
    for i, e in enumerate(events):
        depth += inside[i]
        if not (depth > 0 and e["EventType"] == "InvocationCompleted"):
            out.append(e)
    return out


def _invocation_ends_last(events: list[Event]) -> list[Event]:
    """In each run of InvocationCompleted and service completions, the former go last."""
    out: list[Event] = []
    run: list[Event] = []
    kinds = SERVICE_COMPLETIONS | {"InvocationCompleted"}
    for event in [*events, {"EventType": ""}]:
        if event["EventType"] in kinds:
            run.append(event)
            continue
        out += [e for e in run if e["EventType"] != "InvocationCompleted"]
        out += [e for e in run if e["EventType"] == "InvocationCompleted"]
        run = []
        out.append(event)
    return out[:-1]


# --- the diff printer ---------------------------------------------------------------------


def _label(event: Event) -> str:
    sub = f"/{event['SubType']}" if event.get("SubType") else ""
    name = f" {event['Name']!r}" if event.get("Name") else ""
    return f"{event['EventType']}{sub}{name}"


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}.{key}" if prefix else key))
        return out
    if isinstance(value, list) and value and any(isinstance(v, dict) for v in value):
        out = {}
        for i, item in enumerate(value):
            out.update(_flat(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def _field_diff(a: Event, b: Event) -> list[str]:
    fa, fb = _flat(a), _flat(b)
    lines = []
    for key in sorted(fa.keys() | fb.keys()):
        if fa.get(key, ...) != fb.get(key, ...):
            left = "(absent)" if key not in fa else json.dumps(fa[key])
            right = "(absent)" if key not in fb else json.dumps(fb[key])
            lines.append(f"      {key}: aws {left}  ours {right}")
    return lines


def describe_differences(aws: Sequence[Event], ours: Sequence[Event]) -> list[str]:
    """One line (plus field lines) per difference between two *normalized* histories."""
    keys_a = [json.dumps(e, sort_keys=True) for e in aws]
    keys_b = [json.dumps(e, sort_keys=True) for e in ours]
    labels_a, labels_b = [_label(e) for e in aws], [_label(e) for e in ours]
    out: list[str] = []
    # align on the event labels first, so a changed payload shows as a field difference
    matcher = difflib.SequenceMatcher(a=labels_a, b=labels_b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                if keys_a[i] != keys_b[j]:
                    out.append(f"  aws #{i} / ours #{j} {labels_a[i]}: details differ")
                    out.extend(_field_diff(aws[i], ours[j]))
            continue
        for i in range(i1, i2):
            out.append(f"  aws #{i} {labels_a[i]}: only in aws  {_short(aws[i])}")
        for j in range(j1, j2):
            out.append(f"  ours #{j} {labels_b[j]}: only in ours  {_short(ours[j])}")
    return out


def _short(event: Event) -> str:
    rest = {k: v for k, v in event.items() if k not in ("EventType", "SubType", "Name")}
    text = json.dumps(rest, sort_keys=True)
    return text if len(text) <= 300 else text[:297] + "..."


def render(history: Sequence[Event]) -> str:
    """A normalized history, one event a line."""
    return "\n".join(f"    {i:2} {_label(e)}  {_short(e)}" for i, e in enumerate(history))


def assert_same_history(aws: Sequence[Event], ours: Sequence[Event]) -> None:
    """Fail with the differences (and both histories) unless the histories match."""
    a, b = normalize(aws), normalize(ours)
    differences = describe_differences(a, b)
    if differences:
        raise AssertionError(
            "histories differ (aws SDK vs durable-saga):\n"
            + "\n".join(differences)
            + f"\n  aws ({len(a)} events):\n{render(a)}\n  ours ({len(b)} events):\n{render(b)}"
        )
