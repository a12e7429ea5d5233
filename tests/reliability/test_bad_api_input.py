"""Bad-input corpus, part 2: bad values given to the public API, on a real SQLite store.

Issue 6 item 3. Hypothesis feeds the API what callers get wrong:

- ``Runtime.start`` inputs that do not fit the function's annotated event type, values that
  are not JSON-serializable (objects, cycles, lone surrogates, invalid UTF-8 bytes, NaN,
  deep nesting) and values over ``max_payload_bytes``; execution ids that are empty, blank,
  too long, not text, or weird Unicode;
- callback payloads (Python values, raw JSON text, failures) that are not JSON, too large,
  not text, or of the wrong type for the callback's annotated ``result_type``; callback
  tokens that are random, truncated or altered real tokens, empty, huge or not text;
- durations for ``wait``, callback timeouts and heartbeats and ``wait_for_condition``
  timeouts (below 1 s, above 365 days, negative, NaN, infinite, huge, wrong type), and
  operation names (empty, blank, not text, too long, control characters), inside durable
  functions run by the testing kit's ``DurableTestRunner`` on the virtual clock.

Required for every example: the outcome is a value or a *typed* error
(:class:`~durable_core.errors.DurableError`) whose message names the thing at fault; a
rejected call changes nothing (rows compared byte for byte before and after), and what is
accepted is exactly what the documented rules accept; nothing hangs; and afterwards the
file reopens and a healthy execution in it runs to its expected result.

Derandomized in CI (a few seconds per test). Long run with fresh random examples (x20)::

    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/reliability/test_bad_records.py \
        tests/reliability/test_bad_api_input.py --hypothesis-show-statistics
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from bad_input_support import (
    COOL_OFF,
    HEALTHY_ID,
    PAYLOAD_LIMIT,
    TEST_TIMEOUT_S,
    Approval,
    Bench,
    Order,
    Outcome,
    assert_typed_failure,
    examples,
    expected_result,
    flow,
    names_one_of,
    raw,
    typed,
)
from hypothesis import assume, event, given
from hypothesis import strategies as st

from durable_core import (
    CallbackAlreadyCompletedError,
    CallbackNotFoundError,
    DurableContext,
    DurableError,
    ExecutionStatus,
    InvalidDurationError,
    OperationStatus,
    PayloadTooLargeError,
    SerializationError,
    ValidationError,
    durable,
)
from durable_core.function import DurableFunction
from durable_core.replay import MAX_NAME_LENGTH
from durable_core.testing import DurableTestRunner

pytestmark = pytest.mark.timeout(TEST_TIMEOUT_S)

VICTIM = "victim-1"
VICTIM_ORDER = Order(order_id="V-1", amount=5)
GOOD_APPROVAL = Approval(approved=True, by="cy")


# --- strategies -------------------------------------------------------------------------------

surrogates = st.characters(categories=["Cs"])
weird_text = st.one_of(
    st.text(),
    st.text(st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp", "Co"]), min_size=1),
    st.builds(lambda a, s, b: a + s + b, st.text(max_size=5), surrogates, st.text(max_size=5)),
    st.sampled_from(["", " ", "\t", "\n", "\x00", "a\x00b", "\u200b", "\ufeff", "e\u0301"]),
)


def _cyclic() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


def _deep(n: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(n):
        value = [value]
    return value


json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | weird_text,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
not_json = st.one_of(
    st.builds(object),
    st.binary(min_size=1).map(lambda b: b + b"\xff"),  # not UTF-8
    st.just(_cyclic()),
    st.just(_deep(5000)),
    st.sets(st.integers(), min_size=1).map(lambda s: [s, s]),
    st.just(lambda: None),
    st.complex_numbers(allow_nan=False),
    st.builds(lambda: iter([1, 2])),
    st.builds(Fraction, st.integers(), st.integers(min_value=1)),
)
too_large = st.one_of(
    st.integers(PAYLOAD_LIMIT + 1, 4 * PAYLOAD_LIMIT).map(lambda n: "x" * n),
    st.integers(PAYLOAD_LIMIT // 2, PAYLOAD_LIMIT).map(lambda n: list(range(n))),
    st.integers(PAYLOAD_LIMIT, 2 * PAYLOAD_LIMIT).map(lambda n: {"order_id": "o" * n, "amount": 1}),
)
orderish = st.one_of(
    st.fixed_dictionaries({}, optional={"order_id": json_like, "amount": json_like}),
    st.fixed_dictionaries(
        {"order_id": st.text(max_size=10), "amount": st.integers()},
        optional={"extra": json_like},
    ),
    st.builds(Order, order_id=st.text(max_size=10), amount=st.integers(-(2**70), 2**70)),
)
any_input = st.one_of(json_like, orderish, not_json, too_large)


# --- Runtime.start: inputs --------------------------------------------------------------------


@durable(name="reliability.bad_input:takes_int")
def takes_int(ctx: DurableContext, n: int) -> int:
    return n + 1


@durable(name="reliability.bad_input:takes_list")
def takes_list(ctx: DurableContext, xs: list[int]) -> int:
    return len(xs)


@durable(name="reliability.bad_input:takes_any")
def takes_any(ctx: DurableContext, event: Any) -> Any:
    return event


TARGETS: dict[str, DurableFunction[Any, Any]] = {
    "flow": flow,
    "int": takes_int,
    "list": takes_list,
    "any": takes_any,
}


def executions_table(bench: Bench) -> list[Any]:
    return raw(bench.path, "SELECT CAST(id AS BLOB), CAST(record AS BLOB) FROM executions")


def operations_table(bench: Bench) -> list[Any]:
    return raw(bench.path, "SELECT seq, CAST(record AS BLOB) FROM operations ORDER BY seq")


@examples(60)
@given(target=st.sampled_from(sorted(TARGETS)), value=any_input)
def test_start_refuses_input_that_does_not_fit_and_writes_nothing(
    tmp_path: Path, target: str, value: Any
) -> None:
    fn = TARGETS[target]
    with Bench.fresh(tmp_path) as bench:
        bench.start_healthy()
        before = executions_table(bench)
        out = typed(lambda: bench.rt.start(fn, value, execution_id=VICTIM), "start")
        event(f"start({target}): {type(out.error).__name__ if out.error else 'accepted'}")
        if out.error is not None:
            assert isinstance(out.error, SerializationError), out.error
            assert names_one_of(out.error, fn.name), out.error  # the function at fault
            assert out.error.operation is not None
            assert executions_table(bench) == before, "a refused start wrote something"
        else:
            stored = out.value
            # What is stored is the input as validated into the annotated type.
            assert json.loads(stored.input) == json.loads(
                bench.rt.serde.dump(
                    bench.rt.serde.load(stored.input, fn.input_type, what="x"),
                    fn.input_type,
                    what="x",
                )
            )
            assert len(stored.input.encode()) <= PAYLOAD_LIMIT
            ex = bench.rt.drive(VICTIM)
            assert ex.status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.RUNNING), ex
        bench.finish_healthy()


# --- Runtime.start: execution ids ---------------------------------------------------------------


def valid_execution_id(eid: object) -> bool:
    """The documented rule: 1-200 characters of text, not only spaces, valid Unicode."""
    if not isinstance(eid, str) or not eid.strip() or len(eid) > 200:
        return False
    return not any(0xD800 <= ord(c) <= 0xDFFF for c in eid)


execution_ids = st.one_of(
    weird_text,
    st.text(min_size=190, max_size=260),
    st.integers(1, 200).map(lambda n: " " * n),
    st.binary(max_size=20),
    st.integers(),
    st.floats(),
    st.lists(st.text(max_size=3), max_size=2),
    st.sampled_from(["", HEALTHY_ID + "\x00", "ü" * 200, "😀" * 201, "a" * 201, "..", "/x"]),
)


@examples(60)
@given(eid=execution_ids)
def test_execution_ids_are_validated_and_round_trip_exactly(tmp_path: Path, eid: Any) -> None:
    with Bench.fresh(tmp_path) as bench:
        bench.start_healthy()
        before = executions_table(bench)
        out = typed(lambda: bench.rt.start(flow, VICTIM_ORDER, execution_id=eid), "start")
        event(f"execution id: {type(out.error).__name__ if out.error else 'accepted'}")
        assert out.ok == valid_execution_id(eid), (eid, out)
        if out.error is not None:
            assert isinstance(out.error, ValidationError), out.error
            assert "execution id" in str(out.error)
            assert executions_table(bench) == before, "a refused id wrote something"
        else:
            # The id round-trips exactly through the file and names one execution.
            assert out.value.id == eid
            assert bench.rt.get(eid).id == eid
            assert eid in [ex.id for ex in bench.store.list_executions()]
            token = bench.at_callback(eid, VICTIM_ORDER)  # runs it; idempotent start
            bench.rt.send_callback_success(token, GOOD_APPROVAL.model_dump())
            assert bench.rt.drive(eid).status is ExecutionStatus.RUNNING
        bench.finish_healthy()


# --- callbacks: payloads ------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """One way of completing a callback, with the values it sends."""

    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def __call__(self, bench: Bench, token: Any) -> Any:
        call: Callable[..., Any] = getattr(bench.rt, self.method)
        return call(token, *self.args, **self.kwargs)


error_texts = st.one_of(
    weird_text,
    st.none(),
    st.integers(),
    st.binary(max_size=8),
    st.integers(30_000, 40_000).map(lambda n: "m" * n),
)
json_texts = st.one_of(
    st.text(),
    json_like.map(lambda v: json.dumps(v, allow_nan=True)),
    st.sampled_from(["NaN", "-Infinity", "[1, Infinity]", "{nope", "", " ", "\ufeff{}", "01"]),
    st.just("[" * 2000 + "]" * 2000),  # too deep for json, within the size limit
    st.integers(PAYLOAD_LIMIT, 3 * PAYLOAD_LIMIT).map(lambda n: json.dumps("y" * n)),
    st.builds(lambda s: json.dumps(s)[:-1] + s + '"', surrogates),  # a raw lone surrogate
    st.one_of(st.none(), st.integers(), st.binary(max_size=5).map(lambda b: b"[" + b + b"]")),
    st.builds(json.dumps, st.fixed_dictionaries({"approved": json_like, "by": json_like})),
)
approvalish = st.one_of(
    st.fixed_dictionaries(
        {}, optional={"approved": json_like, "by": json_like, "extra": json_like}
    ),
    st.just(GOOD_APPROVAL.model_dump()),
)
sends = st.one_of(
    st.builds(
        Send,
        st.just("send_callback_success"),
        st.tuples(st.one_of(any_input, approvalish)),
        st.just({}),
    ),
    st.builds(Send, st.just("send_callback_success_json"), st.tuples(json_texts), st.just({})),
    st.builds(
        Send,
        st.just("send_callback_failure"),
        st.tuples(error_texts),
        st.fixed_dictionaries({}, optional={"error_type": error_texts, "data": error_texts}),
    ),
)


def callback_rows(bench: Bench) -> tuple[list[Any], list[Any]]:
    """Everything a callback completion may change: every row of both tables."""
    return executions_table(bench), operations_table(bench)


@examples(80)
@given(send=sends)
def test_callback_payloads_are_validated_and_a_rejected_one_changes_nothing(
    tmp_path: Path, send: Send
) -> None:
    with Bench.fresh(tmp_path) as bench:
        bench.start_healthy()
        token = bench.at_callback(VICTIM, VICTIM_ORDER)
        before = callback_rows(bench)
        out = typed(lambda: send(bench, token), send.method)
        event(f"{send.method}: {type(out.error).__name__ if out.error else 'accepted'}")
        if out.error is not None:
            assert isinstance(out.error, ValidationError | SerializationError), out.error
            text = str(out.error)
            assert "callback" in text, text  # names what was sent
            if isinstance(out.error, PayloadTooLargeError):
                assert "callback result" in text
            assert callback_rows(bench) == before, "a rejected callback changed the store"
            # Nothing half-written: the callback still completes with a good payload.
            bench.rt.send_callback_success(token, GOOD_APPROVAL.model_dump())
            bench.clock.advance(COOL_OFF)  # (the drive below runs it past its timer)
            done = bench.rt.drive(VICTIM)
            if done.status is ExecutionStatus.RUNNING:
                bench.clock.advance(COOL_OFF)
                done = bench.rt.drive(VICTIM)
            assert done.status is ExecutionStatus.SUCCEEDED, done
            assert bench.rt.result(VICTIM) == expected_result(VICTIM_ORDER, GOOD_APPROVAL)
        else:
            op = out.value
            assert op.status in (OperationStatus.SUCCEEDED, OperationStatus.FAILED)
            # A second completion is refused and changes nothing.
            after = callback_rows(bench)
            again = typed(lambda: send(bench, token), "second completion")
            assert isinstance(again.error, CallbackAlreadyCompletedError), again
            assert callback_rows(bench) == after
            # The function sees the payload: it goes on, or fails with a typed error
            # naming the callback (wrong type for Approval, or a reported failure).
            ex = bench.rt.drive(VICTIM)
            assert ex.status in (ExecutionStatus.RUNNING, ExecutionStatus.FAILED), ex
            assert_typed_failure(ex, "approval")
            if ex.status is ExecutionStatus.FAILED:
                assert ex.error is not None
                event(f"  -> execution failed: {ex.error.type}")
        bench.finish_healthy()


# --- callbacks: tokens --------------------------------------------------------------------------


@st.composite
def bad_tokens(draw: st.DrawFn, real: str) -> Any:
    kind = draw(
        st.sampled_from(
            ["random", "truncated", "altered", "extended", "empty", "huge", "not-str", "case"]
        )
    )
    if kind == "random":
        return draw(st.one_of(st.text(), st.text(min_size=20, max_size=128), weird_text))
    if kind == "truncated":
        return real[: draw(st.integers(0, len(real) - 1))]
    if kind == "altered":
        at = draw(st.integers(0, len(real) - 1))
        return real[:at] + draw(st.one_of(st.characters(), surrogates)) + real[at + 1 :]
    if kind == "extended":
        return real + draw(st.text(min_size=1, max_size=100))
    if kind == "empty":
        return draw(st.sampled_from(["", " " * 43]))
    if kind == "huge":
        return real * draw(st.integers(3, 3000))
    if kind == "case":
        return real.swapcase()
    return draw(st.one_of(st.none(), st.integers(), st.just(real.encode()), st.just([real])))


@examples(60)
@given(data=st.data())
def test_bad_tokens_are_not_found_and_change_nothing(tmp_path: Path, data: st.DataObject) -> None:
    with Bench.fresh(tmp_path) as bench:
        bench.start_healthy()
        token = bench.at_callback(VICTIM, VICTIM_ORDER)
        bad = data.draw(bad_tokens(token), label="token")
        assume(bad != token)
        method = data.draw(
            st.sampled_from(
                [
                    "send_callback_success",
                    "send_callback_success_json",
                    "send_callback_failure",
                    "send_callback_heartbeat",
                ]
            ),
            label="method",
        )
        args = {
            "send_callback_success": (GOOD_APPROVAL.model_dump(),),
            "send_callback_success_json": (GOOD_APPROVAL.model_dump_json(),),
            "send_callback_failure": ("no",),
            "send_callback_heartbeat": (),
        }[method]
        before = callback_rows(bench)
        out = typed(lambda: getattr(bench.rt, method)(bad, *args), method)
        event(f"token: {type(out.error).__name__ if out.error else 'accepted'}")
        assert isinstance(out.error, CallbackNotFoundError), (bad, out)
        assert "token" in str(out.error)
        assert callback_rows(bench) == before, "a bad token changed the store"
        # The real token still works.
        bench.rt.send_callback_success(token, GOOD_APPROVAL.model_dump())
        assert bench.rt.drive(VICTIM).status is ExecutionStatus.RUNNING
        bench.finish_healthy()


# --- durations ----------------------------------------------------------------------------------

MIN_S, MAX_S = 1, 365 * 24 * 3600

durations = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0.5, max_value=2.0),
    st.floats(min_value=MAX_S - 2, max_value=MAX_S + 2),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=-5, max_value=MAX_S + 5),
    st.timedeltas(),
    st.timedeltas(min_value=timedelta(seconds=-2), max_value=timedelta(seconds=2)),
    st.timedeltas(min_value=timedelta(days=364), max_value=timedelta(days=366)),
    st.sampled_from([timedelta.max, timedelta.min, timedelta(0), -timedelta.resolution]),
    st.booleans(),
    st.none(),
    st.text(max_size=5),
    st.builds(Decimal, st.integers(1, 100)),
    st.builds(Fraction, st.integers(1, 100)),
    st.complex_numbers(max_magnitude=100),
)


def valid_duration(value: object, use: str) -> bool:
    """The documented rule: a timedelta or a number of seconds from 1 s to 365 days.

    A callback's timeout and heartbeat are optional: None means none.
    """
    if value is None:
        return use in OPTIONAL_DURATIONS
    if isinstance(value, timedelta):
        return timedelta(seconds=MIN_S) <= value <= timedelta(seconds=MAX_S)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and MIN_S <= value <= MAX_S


DURATION_USES: dict[str, Callable[[DurableContext, Any], object]] = {
    "wait": lambda ctx, d: ctx.wait("pause", d),
    "callback timeout": lambda ctx, d: ctx.create_callback("cb", timeout=d),
    "callback heartbeat": lambda ctx, d: ctx.create_callback("cb", heartbeat_timeout=d),
    "condition timeout": lambda ctx, d: ctx.wait_for_condition(
        "poll", lambda s, sc: s + 1, initial_state=0, done=lambda s: s >= 1, timeout=d
    ),
    "wait_for_callback timeout": lambda ctx, d: ctx.wait_for_callback(
        "ask", lambda token, sc: None, timeout=d
    ),
}
OPTIONAL_DURATIONS = {"callback timeout", "callback heartbeat", "wait_for_callback timeout"}
DURATION_NAMES = {"wait": "pause", "callback timeout": "cb", "callback heartbeat": "cb"}
DURATION_NAMES |= {"condition timeout": "poll", "wait_for_callback timeout": "ask"}


def run_call(
    bench: Bench, function: str, call: Callable[[DurableContext], object], what: str
) -> tuple[DurableTestRunner[None, str], Outcome, list[BaseException]]:
    """Run ``call(ctx)`` inside durable function ``function`` on ``bench``'s store and clock.

    The function returns "refused" if the call raised one of durable-saga's errors (kept in
    the returned list) and "accepted" otherwise; the run itself goes through ``typed``.
    """
    caught: list[BaseException] = []

    @durable(name=function)
    def wf(ctx: DurableContext, event: None) -> str:
        try:
            call(ctx)
        except DurableError as e:
            caught.append(e)
            return "refused"
        return "accepted"

    runner = DurableTestRunner(wf, store=bench.store, clock=bench.clock)
    return runner, typed(lambda: runner.run(None, skip_time=False), what), caught


@examples(60)
@given(use=st.sampled_from(sorted(DURATION_USES)), duration=durations)
def test_durations_out_of_range_or_of_the_wrong_type_are_refused_at_the_call(
    tmp_path: Path, use: str, duration: Any
) -> None:
    with Bench.fresh(tmp_path) as bench:
        bench.start_healthy()
        start = bench.clock.now()
        runner, result, caught = run_call(
            bench,
            "reliability.bad_input:durations",
            lambda ctx: DURATION_USES[use](ctx, duration),
            f"{use} {duration!r}",
        )
        assert result.ok
        snapshot = result.value
        # An untyped error inside the function would fail the execution with its type.
        assert_typed_failure(snapshot.execution, DURATION_NAMES[use])
        ok = valid_duration(duration, use)
        event(f"{use}: {'accepted' if ok else 'refused'}")
        if not ok:
            assert snapshot.status is ExecutionStatus.SUCCEEDED, snapshot.execution
            assert snapshot.result == "refused"
            (error,) = caught
            assert isinstance(error, InvalidDurationError), error
            assert names_one_of(error, DURATION_NAMES[use]), error
            assert snapshot.operations == [], "a refused duration recorded something"
        else:
            assert caught == [], caught
            assert snapshot.operations, "an accepted duration recorded nothing"
            if use == "wait":
                seconds = duration if isinstance(duration, timedelta) else None
                wake = snapshot.execution.wake_at
                assert wake is not None
                expected = seconds if seconds is not None else timedelta(seconds=duration)
                assert wake - start == expected
                done = runner.resume()  # skips the time on the virtual clock
                assert done.status is ExecutionStatus.SUCCEEDED
                assert done.result == "accepted"
        bench.finish_healthy()


# --- operation names ----------------------------------------------------------------------------

names = st.one_of(
    weird_text,
    st.text(min_size=MAX_NAME_LENGTH - 2, max_size=MAX_NAME_LENGTH + 2),
    st.integers(MAX_NAME_LENGTH - 9, MAX_NAME_LENGTH + 1).map(lambda n: "n" * n),
    st.none(),
    st.integers(),
    st.binary(max_size=5),
    st.lists(st.text(max_size=2), max_size=2),
    st.sampled_from(["ok", "é", "名前", "a b", "a\tb", "a\nb", "x" * MAX_NAME_LENGTH]),
)


def valid_name(name: object, use: str) -> bool:
    """The documented rule: a non-empty, printable str of at most 256 characters.

    ``wait_for_callback`` names its callback ``name + " create callback id"``: 237 at most.
    """
    suffix = len(" create callback id")
    longest = MAX_NAME_LENGTH - suffix if use == "wait_for_callback" else MAX_NAME_LENGTH
    return (
        isinstance(name, str) and bool(name.strip()) and len(name) <= longest and name.isprintable()
    )


NAME_USES: dict[str, Callable[[DurableContext, Any], object]] = {
    "step": lambda ctx, n: ctx.step(n, lambda sc: 1),
    "wait": lambda ctx, n: ctx.wait(n, 1),
    "callback": lambda ctx, n: ctx.create_callback(n),
    "child context": lambda ctx, n: ctx.run_in_child_context(n, lambda c: 1),
    "condition": lambda ctx, n: ctx.wait_for_condition(
        n, lambda s, sc: s, initial_state=0, done=lambda s: True
    ),
    "wait_for_callback": lambda ctx, n: ctx.wait_for_callback(n, lambda t, sc: None),
    "parallel": lambda ctx, n: ctx.parallel([lambda c: 1], name=n),
    "map": lambda ctx, n: ctx.map([1], lambda c, x, i: x, name=n),
}


NAME_KINDS = {use: use for use in NAME_USES} | {"wait_for_callback": "callback"}


@examples(60)
@given(use=st.sampled_from(sorted(NAME_USES)), name=names)
def test_operation_names_are_validated_at_the_call_and_round_trip(
    tmp_path: Path, use: str, name: Any
) -> None:
    with Bench.fresh(tmp_path) as bench:
        bench.start_healthy()
        _, result, caught = run_call(
            bench,
            "reliability.bad_input:names",
            lambda ctx: NAME_USES[use](ctx, name),
            f"{use} {name!r}",
        )
        snapshot = result.value
        assert_typed_failure(snapshot.execution, "name")
        ok = valid_name(name, use)
        event(f"{use} name: {'accepted' if ok else 'refused'}")
        if not ok:
            assert snapshot.result == "refused", snapshot.execution
            (error,) = caught
            assert isinstance(error, ValidationError), error
            assert NAME_KINDS[use] in str(error), error  # names the kind of operation
            assert "name" in str(error)
            assert snapshot.operations == [], "a refused name recorded something"
        else:
            assert caught == [], caught
            # The name round-trips exactly through the file.
            assert name in [op.name for op in bench.rt.operations(snapshot.execution_id)]
        bench.finish_healthy()


# --- regressions found by the corpus (each leaked an untyped error, or was accepted) ----------

KNOWN: dict[str, tuple[type[DurableError], Callable[[Bench, str], object]]] = {
    "id not a str": (ValidationError, lambda b, t: b.rt.start(flow, VICTIM_ORDER, execution_id=7)),  # type: ignore[arg-type]
    "empty id (was a random one)": (
        ValidationError,
        lambda b, t: b.rt.start(flow, VICTIM_ORDER, execution_id=""),
    ),
    "id with a lone surrogate": (
        ValidationError,
        lambda b, t: b.rt.start(flow, VICTIM_ORDER, execution_id="x\ud800"),
    ),
    "json payload not a str": (
        ValidationError,
        lambda b, t: b.rt.send_callback_success_json(t, None),  # type: ignore[arg-type]
    ),
    "json payload nested too deep": (
        ValidationError,
        lambda b, t: b.rt.send_callback_success_json(t, "[" * 2000 + "]" * 2000),  # < limit
    ),
    "json payload with a lone surrogate": (
        ValidationError,
        lambda b, t: b.rt.send_callback_success_json(t, '"\ud800"'),
    ),
    "json payload over the limit": (
        PayloadTooLargeError,
        lambda b, t: b.rt.send_callback_success_json(t, json.dumps("x" * PAYLOAD_LIMIT)),
    ),
    "json payload NaN": (ValidationError, lambda b, t: b.rt.send_callback_success_json(t, "NaN")),
    "failure message not a str": (ValidationError, lambda b, t: b.rt.send_callback_failure(t, 5)),  # type: ignore[arg-type]
    "failure data not a str": (
        ValidationError,
        lambda b, t: b.rt.send_callback_failure(t, "no", data=3),  # type: ignore[arg-type]
    ),
    "failure message with a lone surrogate": (
        ValidationError,
        lambda b, t: b.rt.send_callback_failure(t, "\ud800"),
    ),
    "token with a lone surrogate": (
        CallbackNotFoundError,
        lambda b, t: b.rt.send_callback_success(t[:-1] + "\ud800", 1),
    ),
    "cancel reason not a str": (ValidationError, lambda b, t: b.rt.cancel(VICTIM, 42)),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("case", sorted(KNOWN))
def test_known_bad_calls_raise_typed_errors_and_change_nothing(tmp_path: Path, case: str) -> None:
    expected, call = KNOWN[case]
    with Bench.fresh(tmp_path) as bench:
        bench.start_healthy()
        token = bench.at_callback(VICTIM, VICTIM_ORDER)
        before = callback_rows(bench)
        with pytest.raises(expected):
            call(bench, token)
        assert callback_rows(bench) == before
        bench.finish_healthy()


@pytest.mark.parametrize("duration", [math.nan, math.inf, -math.inf, 1e300, 10**30, -(10**30)])
def test_non_finite_and_huge_durations_are_invalid_durations(
    tmp_path: Path, duration: float
) -> None:
    caught: list[BaseException] = []

    @durable(name="reliability.bad_input:nan_wait")
    def wf(ctx: DurableContext, event: None) -> None:
        try:
            ctx.wait("nap", duration)
        except InvalidDurationError as e:
            caught.append(e)

    with Bench.fresh(tmp_path) as bench:
        bench.start_healthy()
        result = DurableTestRunner(wf, store=bench.store, clock=bench.clock).run(None)
        assert result.status is ExecutionStatus.SUCCEEDED
        assert len(caught) == 1
        assert "wait 'nap'" in str(caught[0])
        assert result.operations == []
        bench.finish_healthy()


@pytest.mark.parametrize(("length", "accepted"), [(237, True), (238, False), (256, False)])
def test_a_wait_for_callback_name_leaves_room_for_its_submit_step(
    tmp_path: Path, length: int, accepted: bool
) -> None:
    """Found by the corpus (long run): a 250-256 character name passed the check at the call,
    then its submit step's name failed inside the recorded child context. The longest name
    leaves room for the callback's, ``name + " create callback id"`` (AWS's SDK's naming)."""
    caught: list[BaseException] = []

    @durable(name="reliability.bad_input:long_wfc")
    def wf(ctx: DurableContext, event: None) -> None:
        try:
            ctx.wait_for_callback("w" * length, lambda token, sc: None)
        except ValidationError as e:
            caught.append(e)

    with Bench.fresh(tmp_path) as bench:
        bench.start_healthy()
        result = DurableTestRunner(wf, store=bench.store, clock=bench.clock).run(None)
        if accepted:
            assert caught == []
            assert result.status is ExecutionStatus.RUNNING  # waiting for the callback
            names = {op.name for op in result.operations}
            w = "w" * length
            assert names == {w + " create callback id", w + " submitter"}  # (context runs)
        else:
            assert result.status is ExecutionStatus.SUCCEEDED
            assert len(caught) == 1
            assert "at most 237 characters for wait_for_callback" in str(caught[0])
            assert result.operations == []
        bench.finish_healthy()
