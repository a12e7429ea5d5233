"""Bad-input corpus, part 1: journal records damaged in a real SQLite file.

Issue 6 item 3. Hypothesis damages one row of a real store file — the JSON ``record`` of an
execution or of one of its operations (truncated, non-JSON bytes, invalid UTF-8, unknown
fields, wrong types, wrong enum values, null where required, ids of other records) or one
of the indexed columns next to it — then every API that reads it is called. Required:

- every outcome is a value or a *typed* error (:class:`~durable_core.errors.DurableError`;
  an execution that fails records a ``durable_core.errors`` type), and a
  CorruptRecordError names the execution at fault; nothing hangs (hypothesis ``deadline``
  per example, pytest-timeout per test);
- a row that does not parse is never rewritten (the evidence stays for the operator);
- afterwards the file still opens and a healthy execution in the same file — a neighbour
  of the damaged one, claimed by the same ``tick`` — runs to its expected result with its
  journal intact.

Known gap, kept visible here: an operation record does not carry its execution id, so a
row whose ``execution_id`` column is rewritten to another existing execution replays there
(strict xfail below).

Runs in a few seconds per test with the derandomized CI profile. For a long run with fresh
random examples (x20)::

    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/reliability/test_bad_records.py \
        tests/reliability/test_bad_api_input.py --hypothesis-show-statistics
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from bad_input_support import (
    COOL_OFF,
    FLOW_NAME,
    HEALTHY_ID,
    OP_NAMES,
    TEST_TIMEOUT_S,
    Approval,
    Bench,
    Order,
    assert_typed_failure,
    examples,
    flow,
    names_one_of,
    raw,
    row_bytes,
    typed,
)
from hypothesis import assume, event, given
from hypothesis import strategies as st

from durable_core import CorruptRecordError, ExecutionStatus, StoreError
from durable_core.records import Execution, OperationStatus, OperationType

pytestmark = pytest.mark.timeout(TEST_TIMEOUT_S)

VICTIM = "victim-1"
VICTIM_ORDER = Order(order_id="V-1", amount=5)
VICTIM_APPROVAL = Approval(approved=False, by="bo")
STAGES = ("callback", "timer", "done")

EXECUTION_COLUMNS = (
    "id",
    "status",
    "wake_at",
    "lease_owner",
    "lease_expires",
    "fence",
    "signal_seq",
    "created_at",
)
OPERATION_COLUMNS = ("execution_id", "op_id", "callback_id", "seq")

# --- strategies -------------------------------------------------------------------------------

json_strings = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            "",
            "RUNNING",
            "SUCCEEDED",
            "STEP",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999Z",
            "2030-13-45T99:00:00Z",
            "1e309",
        ]
    ),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    json_strings,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)
column_values = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.binary(max_size=30),
    st.sampled_from(["RUNNING", "SUCCEEDED", HEALTHY_ID, "", "\x00", "not-utf8 \udcff"]),
)


def same_type(old: Any) -> st.SearchStrategy[Any]:
    """Values of the JSON type of ``old`` (the ``same-type`` damage)."""
    if isinstance(old, bool):
        return st.just(not old)
    if old is None:
        return json_values
    if isinstance(old, int):
        return st.integers(min_value=-(2**70), max_value=2**70)
    if isinstance(old, float):
        return st.floats()
    if isinstance(old, str):
        return json_strings
    return json_values


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


def damage_record(data: st.DataObject, text: str, sibling_ids: list[str]) -> tuple[Any, str]:
    """A damaged version of the JSON ``text``; how to bind it: "text", "blob" or "bad-utf8"."""
    kind = data.draw(
        st.sampled_from(
            [
                "truncate",
                "garbage",
                "bytes-blob",
                "bytes-text",
                "flip",
                "drop-key",
                "unknown-key",
                "wrong-type",
                "null",
                "enum",
                "other-enum-member",
                "same-type",
                "bad-json-payload",
                "sibling-id",
                "not-an-object",
                "blob-of-valid-json",
            ]
        ),
        label="damage",
    )
    doc: dict[str, Any] = json.loads(text)
    keys = sorted(doc)
    if kind == "truncate":
        return text[: data.draw(st.integers(0, len(text) - 1), label="cut at")], "text"
    if kind == "garbage":
        return data.draw(st.text(), label="garbage"), "text"
    if kind == "bytes-blob":
        return data.draw(st.binary(), label="bytes"), "blob"
    if kind == "bytes-text":
        raw_bytes = data.draw(st.binary(min_size=1), label="bytes")
        return text.encode()[:10] + raw_bytes + b"\xff\xfe", "bad-utf8"
    if kind == "flip":
        at = data.draw(st.integers(0, len(text) - 1), label="flip at")
        char = data.draw(st.characters(codec="utf-8"), label="char")
        assume(text[at] != char)
        return text[:at] + char + text[at + 1 :], "text"
    if kind == "blob-of-valid-json":
        return text.encode(), "blob"  # a BLOB instead of TEXT: still the same record
    if kind == "not-an-object":
        return _dumps(data.draw(json_values.filter(lambda v: not isinstance(v, dict)))), "text"
    key = data.draw(st.sampled_from(keys), label="key")
    if kind == "drop-key":
        del doc[key]
    elif kind == "unknown-key":
        extra = data.draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in doc))
        doc[extra] = data.draw(json_values, label="value")
    elif kind == "wrong-type":
        doc[key] = data.draw(json_values.filter(lambda v: type(v) is not type(doc[key])))
    elif kind == "null":
        doc[key] = None
    elif kind == "enum":
        field = data.draw(st.sampled_from([k for k in ("type", "status") if k in doc]))
        doc[field] = data.draw(
            st.one_of(st.text(max_size=12), st.sampled_from(["running", "FAILED ", "STEPS"]))
        )
    elif kind == "other-enum-member":
        field = data.draw(st.sampled_from([k for k in ("type", "status") if k in doc]))
        members = [m.value for m in (*OperationStatus, *OperationType, *ExecutionStatus)]
        doc[field] = data.draw(st.sampled_from(members).filter(lambda m: m != doc[field]))
    elif kind == "same-type":  # a plausible value of the right JSON type: semantic damage
        old = doc[key]
        doc[key] = data.draw(same_type(old), label="value")
        assume(doc[key] != old)
    elif kind == "bad-json-payload":  # the JSON-in-JSON fields: not JSON, or the wrong shape
        # Unset fields are not stored; every record kind has a "result" to damage.
        present = [k for k in ("input", "result", "payload") if k in doc]
        field = data.draw(st.sampled_from(present or ["result"]))
        doc[field] = data.draw(
            st.one_of(st.text(max_size=20), json_values.map(_dumps), st.just("NaN"))
        )
    elif kind == "sibling-id":
        doc["id"] = data.draw(st.sampled_from(sibling_ids), label="sibling id")
        assume(doc["id"] != json.loads(text)["id"])
    return _dumps(doc), "text"


def write_record(bench: Bench, table: str, where: str, key: Any, value: Any, how: str) -> None:
    """Overwrite one row's ``record`` outside the store."""
    cast = "CAST(? AS TEXT)" if how == "bad-utf8" else "?"
    raw(bench.path, f"UPDATE {table} SET record = {cast} WHERE {where} = ?", value, key)


# --- the property ------------------------------------------------------------------------------


def run_victim(bench: Bench, data: st.DataObject) -> tuple[str | None, list[str]]:
    """Start the healthy and the victim execution (in a drawn order) at a drawn stage."""
    stage = data.draw(st.sampled_from(STAGES), label="victim stage")
    healthy_first = data.draw(st.booleans(), label="healthy created first")
    if healthy_first:
        bench.start_healthy()
    token = None
    if stage == "callback":
        token = bench.at_callback(VICTIM, VICTIM_ORDER)
    elif stage == "timer":
        bench.at_timer(VICTIM, VICTIM_ORDER, VICTIM_APPROVAL)
    else:
        bench.done(VICTIM, VICTIM_ORDER, VICTIM_APPROVAL)
    if not healthy_first:
        bench.start_healthy()
    return token, [op.id for op in bench.rt.operations(VICTIM)]


def exercise(bench: Bench, token: str | None, fault_names: tuple[str, ...]) -> dict[str, Any]:
    """Call every API that reads the victim; each must end in a value or a typed error."""
    rt, store = bench.rt, bench.store
    approval = VICTIM_APPROVAL.model_dump()
    calls: dict[str, Any] = {
        "get": lambda: store.get_execution(VICTIM),
        "load": lambda: store.load_operations(VICTIM),
        "list": store.list_executions,
        "drive": lambda: rt.drive(VICTIM),
        "start again": lambda: rt.start(flow, VICTIM_ORDER, execution_id=VICTIM),
    }
    if token is not None:
        calls["heartbeat"] = lambda: rt.send_callback_heartbeat(token)
        calls["callback"] = lambda: rt.send_callback_success(token, approval)
    calls |= {
        "drive again": lambda: rt.drive(VICTIM),
        "cancel": lambda: rt.cancel(VICTIM, "bad-input corpus"),
        "drive after cancel": lambda: rt.drive(VICTIM),
    }
    outcomes = {}
    for what, call in calls.items():
        out = typed(call, what)
        outcomes[what] = out
        if what in ("get", "load", "drive"):
            event(f"{what}: {type(out.error).__name__ if out.error else 'ok'}")
        if isinstance(out.error, CorruptRecordError):
            assert names_one_of(out.error, *fault_names), (
                f"{what}: CorruptRecordError names none of {fault_names}: {out.error}"
            )
        if isinstance(out.value, Execution) and out.value.id == VICTIM:
            written = outcomes["get"].value
            assert_typed_failure(out.value, VICTIM, FLOW_NAME, *OP_NAMES, written=written)
    return outcomes


def unreadable(outcome: Any) -> bool:
    return isinstance(outcome.error, CorruptRecordError | StoreError)


@pytest.mark.parametrize("target", ["execution", "operation"])
@examples(60)
@given(data=st.data())
def test_a_damaged_record_is_a_typed_error_and_spares_the_neighbour(
    tmp_path: Path, target: str, data: st.DataObject
) -> None:
    """``target``: the victim's execution record, or one of its operation records."""
    with Bench.fresh(tmp_path) as bench:
        token, op_ids = run_victim(bench, data)
        fault_names: tuple[str, ...] = (VICTIM,)
        if target == "execution":
            (text,) = raw(bench.path, "SELECT record FROM executions WHERE id = ?", VICTIM)[0]
            value, how = damage_record(data, text, [HEALTHY_ID, "x", VICTIM + "-2"])
            write_record(bench, "executions", "id", VICTIM, value, how)
            table_key = ("executions", "id", VICTIM)
        else:
            rows = bench.journal_rows(VICTIM)
            seq, _op_id, _cb, text = data.draw(st.sampled_from(rows), label="operation row")
            value, how = damage_record(data, text, op_ids)
            write_record(bench, "operations", "seq", seq, value, how)
            table_key = ("operations", "seq", seq)
        damaged = row_bytes(bench.path, *table_key)

        outcomes = exercise(bench, token, fault_names)

        # A row that does not parse is never rewritten: it stays for the operator to inspect.
        first_read = outcomes["get"] if target == "execution" else outcomes["load"]
        still = row_bytes(bench.path, *table_key)
        if isinstance(first_read.error, CorruptRecordError):
            assert still == damaged, "a row that does not parse was rewritten"

        bench.finish_healthy()
        after = typed(lambda: bench.rt.get(VICTIM), "get after the healthy one ran")
        if after.ok:
            written = outcomes["get"].value
            assert_typed_failure(after.value, VICTIM, FLOW_NAME, *OP_NAMES, written=written)


@pytest.mark.parametrize("table", ["executions", "operations"])
@examples(40)
@given(data=st.data())
def test_damaged_indexed_columns_are_typed_errors_and_spare_the_neighbour(
    tmp_path: Path, table: str, data: st.DataObject
) -> None:
    """One indexed column of the victim's execution row or of one of its operation rows."""
    with Bench.fresh(tmp_path) as bench:
        token, _ = run_victim(bench, data)
        names = EXECUTION_COLUMNS if table == "executions" else OPERATION_COLUMNS
        column = data.draw(st.sampled_from(names), label="column")
        integer_only = column == "seq"  # an INTEGER PRIMARY KEY refuses anything else
        value = data.draw(st.integers(-(2**63), 2**63 - 1) if integer_only else column_values)
        row_names: tuple[str, ...] = ()  # an error may name the damaged row's operation
        if table == "executions":
            where, key = "id", VICTIM
        else:
            rows = bench.journal_rows(VICTIM)
            where, key = "seq", data.draw(st.sampled_from([r[0] for r in rows]), label="row")
            row_names = tuple(str(r[1]) for r in rows if r[0] == key)
            # An operation row moved into another *existing* execution is indistinguishable
            # from that execution's own record (the record does not carry its execution id):
            # see test_an_operation_row_moved_to_another_execution_is_not_detected.
            assume(not (column == "execution_id" and value == HEALTHY_ID))
        try:
            sql = f"UPDATE {table} SET {column} = ? WHERE {where} = ?"
            if isinstance(value, str) and "\udcff" in value:  # stands for bytes not UTF-8
                value = value.encode("utf-8", "surrogateescape")
                sql = f"UPDATE {table} SET {column} = CAST(? AS TEXT) WHERE {where} = ?"
            raw(bench.path, sql, value, key)
        except sqlite3.IntegrityError:
            assume(False)  # NOT NULL, UNIQUE, integer primary key: SQLite refuses the damage
        fault_names = (VICTIM, value) if isinstance(value, str) else (VICTIM,)
        exercise(bench, token, tuple(str(n) for n in (*fault_names, *row_names)))
        bench.finish_healthy()


# --- regressions found by the corpus (kept as plain examples) ---------------------------------


def test_an_execution_row_that_is_not_utf8_does_not_stall_claiming(tmp_path: Path) -> None:
    with Bench.fresh(tmp_path) as bench:
        bench.at_timer(VICTIM, VICTIM_ORDER, VICTIM_APPROVAL)
        bench.start_healthy()
        raw(
            bench.path,
            "UPDATE executions SET record = CAST(? AS TEXT) WHERE id = ?",
            b'{"id": "\xff\xfe',
            VICTIM,
        )
        # The store reads the row as bytes: a CorruptRecordError naming the execution.
        with pytest.raises(CorruptRecordError, match=r"execution 'victim-1' .*not UTF-8"):
            bench.store.get_execution(VICTIM)
        assert VICTIM not in [ex.id for ex in bench.store.list_executions()]  # skipped
        errors = bench.finish_healthy(ticks=2)
        assert errors == []  # the bad row is skipped (and logged), not raised


def test_an_execution_record_naming_another_execution_does_not_overwrite_it(
    tmp_path: Path,
) -> None:
    with Bench.fresh(tmp_path) as bench:
        bench.start_healthy()
        bench.at_timer(VICTIM, VICTIM_ORDER, VICTIM_APPROVAL)
        (text,) = raw(bench.path, "SELECT record FROM executions WHERE id = ?", VICTIM)[0]
        doc = json.loads(text)
        doc["id"] = HEALTHY_ID  # e.g. a row restored from a backup into the wrong place
        write_record(bench, "executions", "id", VICTIM, json.dumps(doc), "text")
        with pytest.raises(CorruptRecordError, match=r"victim-1.*healthy-1|healthy-1.*victim-1"):
            bench.store.get_execution(VICTIM)
        bench.clock.advance(COOL_OFF)
        out = typed(lambda: bench.rt.drive(VICTIM), "drive")
        assert isinstance(out.error, CorruptRecordError)
        bench.finish_healthy()  # its input, journal and result are its own


def test_a_corrupt_journal_does_not_strand_the_rest_of_a_tick(tmp_path: Path) -> None:
    with Bench.fresh(tmp_path) as bench:
        bench.at_timer(VICTIM, VICTIM_ORDER, VICTIM_APPROVAL)  # due first (created first)
        bench.start_healthy()
        seq = bench.journal_rows(VICTIM)[0][0]
        write_record(bench, "operations", "seq", seq, '{"id": "trunc', "text")
        errors = bench.finish_healthy(ticks=1)  # one tick claims both
        assert [type(e) for e in errors] == [CorruptRecordError]
        assert "victim-1" in str(errors[0])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("fence", 2**63),
        ("signal_seq", 2**63),
        ("fence", -1),
    ],
)
def test_an_out_of_range_counter_is_a_corrupt_record(
    tmp_path: Path, field: str, value: int
) -> None:
    with Bench.fresh(tmp_path) as bench:
        bench.at_timer(VICTIM, VICTIM_ORDER, VICTIM_APPROVAL)
        bench.start_healthy()
        (text,) = raw(bench.path, "SELECT record FROM executions WHERE id = ?", VICTIM)[0]
        doc = json.loads(text)
        doc[field] = value
        write_record(bench, "executions", "id", VICTIM, json.dumps(doc), "text")
        bench.clock.advance(COOL_OFF)
        out = typed(lambda: bench.rt.drive(VICTIM), "drive")
        assert isinstance(out.error, CorruptRecordError), out
        bench.finish_healthy()


@pytest.mark.parametrize("value", [1e308, math.inf, -5.0, 0.0])
def test_an_out_of_range_heartbeat_timeout_is_a_corrupt_record(
    tmp_path: Path, value: float
) -> None:
    with Bench.fresh(tmp_path) as bench:
        token = bench.at_callback(VICTIM, VICTIM_ORDER)
        bench.start_healthy()
        (seq, _, _, text) = next(r for r in bench.journal_rows(VICTIM) if r[2] == token)
        doc = json.loads(text)
        doc["heartbeat_timeout_s"] = value
        write_record(bench, "operations", "seq", seq, json.dumps(doc), "text")
        out = typed(lambda: bench.rt.send_callback_heartbeat(token), "heartbeat")
        assert isinstance(out.error, CorruptRecordError), out
        bench.finish_healthy()


@pytest.mark.xfail(
    strict=True,
    reason="known limit: an operation record does not carry its execution id, so a row "
    "moved to another execution's journal (operations.execution_id rewritten) replays there",
)
def test_an_operation_row_moved_to_another_execution_is_not_detected(tmp_path: Path) -> None:
    with Bench.fresh(tmp_path) as bench:
        bench.done(VICTIM, VICTIM_ORDER, VICTIM_APPROVAL)
        bench.start_healthy()
        # The victim's last step ("ship", position 4) has no counterpart in the healthy
        # journal yet, so it can be moved there without a UNIQUE conflict.
        seq = bench.journal_rows(VICTIM)[-1][0]
        raw(bench.path, "UPDATE operations SET execution_id = ? WHERE seq = ?", HEALTHY_ID, seq)
        bench.healthy_journal = bench.rt.operations(HEALTHY_ID)[:3]
        bench.finish_healthy()  # fails: "ship" replays the victim's "V-1:bo"
