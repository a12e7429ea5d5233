"""Verdicts of the concurrency benchmark, from plain data (no store, no processes).

``read_execution`` and ``worker_rows`` (at the end) shape what was read; the checks take
the audit rows written by ``concurrency_flow.AuditedStore`` in every worker, the
side ledger's effect rows, and what the store holds at the end (each execution's status,
result and journal). Each check counts what must be 0:

- **double_advanced** (executions): a write accepted under fence ``f`` that *started*
  after a call holding a higher fence had *ended* (a grant, or an accepted write) — i.e.
  the store let an older lease holder write after a newer one existed; or one fence
  granted twice; or a write accepted under a fence its owner was never granted. Both
  points are on the audit database's single commit order: a begin row is committed before
  the store call starts, an end row or grant row after the store call returned. Only
  orders that are certain are used, so a correct store never fails this check (overlapping
  calls prove nothing either way and are not counted).
- **duplicate_records**: an operation whose final (terminal) record was accepted in more
  than one write, or that appears twice in the final journal.
- **lost**: an execution that was started but is not in the store, or an accepted record
  missing from (or less advanced in) its final journal.
- **unfinished** / **wrong_results**: not SUCCEEDED; or SUCCEEDED with a result that does
  not match its journal (each step's recorded effect id) and the callback answer sent.
- **unexplained_reruns**: a step body that ran more than once for one execution where the
  extra runs did not come from a worker that was killed or whose writes to that execution
  were refused (at-least-once steps legitimately re-run after exactly those events);
  **unmatched_results**: a recorded step result that no body run produced.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from durable_core import Runtime

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT", "STOPPED"}
MUST_BE_ZERO = (
    "lost",
    "double_advanced",
    "duplicate_records",
    "unfinished",
    "wrong_results",
    "unexplained_reruns",
    "unmatched_results",
)

ALWAYS_REPORTED = (
    "fencing_violations",
    "accepted_writes",
    "refused_writes",
    "error_writes",
    "unknown_writes",
    "step_runs",
    "step_reruns",
    "step_retries",
)


@dataclass(frozen=True)
class Call:
    """One audited store call: a fenced write, or a lease grant."""

    kind: str  # grant | write | renew | finish
    execution_id: str
    owner: str
    fence: int
    pid: int
    outcome: str  # accepted | refused | error | unknown (the worker died during the call)
    ops: tuple[tuple[str, str], ...]
    start: int | None  # audit seq of the begin row; None for a grant
    end: int | None  # audit seq of the end (or grant) row; None if the worker died


def calls_from_audit(rows: Iterable[Mapping[str, Any]]) -> list[Call]:
    """Pair begin and end rows into calls (an unpaired begin row: outcome unknown)."""
    begins: dict[int, Mapping[str, Any]] = {}
    ends: dict[int, Mapping[str, Any]] = {}
    calls: list[Call] = []
    for row in rows:
        if row["kind"] == "grant":
            calls.append(_call(row, "accepted", None, int(row["seq"])))
        elif row["outcome"] == "begin":
            begins[int(row["seq"])] = row
        else:
            ends[int(row["ref"])] = row
    for seq, row in begins.items():
        end = ends.get(seq)
        if end is None:
            calls.append(_call(row, "unknown", seq, None))
        else:
            calls.append(_call(row, str(end["outcome"]), seq, int(end["seq"])))
    return calls


def _call(row: Mapping[str, Any], outcome: str, start: int | None, end: int | None) -> Call:
    ops = tuple((str(op), str(status)) for op, status in json.loads(row["ops"]))
    return Call(
        kind=str(row["kind"]),
        execution_id=str(row["execution_id"]),
        owner=str(row["owner"]),
        fence=int(row["fence"]),
        pid=int(row["pid"]),
        outcome=outcome,
        ops=ops,
        start=start,
        end=end,
    )


@dataclass
class Verdict:
    """Counts (see the module docstring) and the first few examples of each problem."""

    executions: int = 0
    finished: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def flag(self, what: str, example: str, n: int = 1) -> None:
        self.counts[what] += n
        if len(self.examples[what]) < 5:
            self.examples[what].append(example)

    @property
    def ok(self) -> bool:
        return all(self.counts[k] == 0 for k in MUST_BE_ZERO)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"executions": self.executions, "finished": self.finished}
        out |= {k: self.counts[k] for k in MUST_BE_ZERO + ALWAYS_REPORTED}
        out |= {k: v for k, v in sorted(self.counts.items()) if k not in out}
        out["examples"] = {k: v for k, v in self.examples.items() if v}
        return out


def check_fencing(calls: Sequence[Call], verdict: Verdict | None = None) -> Verdict:
    """Count executions advanced by two lease holders (``double_advanced``)."""
    verdict = verdict or Verdict()
    by_execution: dict[str, list[Call]] = defaultdict(list)
    for c in calls:
        by_execution[c.execution_id].append(c)
        if c.kind != "grant":
            verdict.counts[f"{c.outcome}_writes"] += 1
            if c.outcome != "accepted":
                verdict.counts[f"{c.outcome}_{c.kind}"] += 1
    for eid, mine in sorted(by_execution.items()):
        problems = _fencing_problems(mine)
        if problems:
            verdict.flag("double_advanced", f"{eid}: {problems[0]}")
            verdict.counts["fencing_violations"] += len(problems)
    return verdict


def _fencing_problems(calls: Sequence[Call]) -> list[str]:
    problems: list[str] = []
    owner_of: dict[int, str] = {}
    for g in (c for c in calls if c.kind == "grant"):
        if g.fence in owner_of:
            problems.append(f"fence {g.fence} granted twice ({owner_of[g.fence]}, {g.owner})")
        owner_of[g.fence] = g.owner
    accepted = [c for c in calls if c.outcome == "accepted"]
    ended = sorted((c.end, c.fence) for c in accepted if c.end is not None)
    ends = [e for e, _ in ended]
    highest: list[int] = []  # highest fence among calls ended up to each position
    for _, fence in ended:
        highest.append(max(fence, highest[-1] if highest else fence))
    for w in accepted:
        if w.kind == "grant" or w.start is None:
            continue
        if owner_of.get(w.fence) != w.owner:
            problems.append(f"{w.kind} accepted under fence {w.fence} never granted to {w.owner}")
        before = bisect.bisect_left(ends, w.start)  # calls that ended before w started
        if before and highest[before - 1] > w.fence:
            problems.append(
                f"{w.kind} by {w.owner} accepted under fence {w.fence} after fence "
                f"{highest[before - 1]} had been granted or had written (audit seq {w.start})"
            )
    return problems


def check_records(
    calls: Sequence[Call],
    started: Sequence[str],
    executions: Mapping[str, Mapping[str, Any]],
    verdict: Verdict | None = None,
) -> Verdict:
    """Count lost and duplicated records, unfinished executions and wrong results.

    ``executions`` maps an id to ``{"status", "result", "operations": [{"id", "name",
    "type", "status", "result"}]}`` as read from the store at the end (results parsed).
    """
    verdict = verdict or Verdict()
    verdict.executions = len(started)
    terminal_writes: Counter[tuple[str, str]] = Counter()
    for c in calls:
        if c.outcome != "accepted" or c.kind != "write":
            continue
        for op_id, status in c.ops:
            if status in TERMINAL:
                terminal_writes[c.execution_id, op_id] += 1
            _check_kept(verdict, c.execution_id, op_id, status, executions.get(c.execution_id))
    for (eid, op_id), n in terminal_writes.items():
        if n > 1:
            verdict.flag("duplicate_records", f"{eid}: op {op_id} recorded final {n} times")
    for eid in started:
        ex = executions.get(eid)
        if ex is None:
            verdict.flag("lost", f"{eid}: started but not in the store")
            continue
        ids = Counter(op["id"] for op in ex["operations"])
        for op_id, n in ids.items():
            if n > 1:
                verdict.flag("duplicate_records", f"{eid}: op {op_id} {n} times in the journal")
        if ex["status"] != "SUCCEEDED":
            verdict.flag("unfinished", f"{eid}: {ex['status']}")
            continue
        verdict.finished += 1
        expected = expected_result(eid, ex["operations"])
        if ex["result"] != expected:
            verdict.flag("wrong_results", f"{eid}: {ex['result']!r} != {expected!r}")
    return verdict


def _check_kept(
    verdict: Verdict, eid: str, op_id: str, status: str, ex: Mapping[str, Any] | None
) -> None:
    """An accepted record must be in the final journal, at least as far along."""
    if ex is None:
        return  # counted once as a lost execution
    final = {op["id"]: op["status"] for op in ex["operations"]}.get(op_id)
    if final is None or (status in TERMINAL and final != status):
        verdict.flag("lost", f"{eid}: accepted {op_id}={status}, journal has {final}")


def expected_result(eid: str, operations: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What the flow must return, given its journal: its steps' recorded effect ids."""
    from concurrency_flow import STEPS, answer_for, order_for

    recorded = {op["name"]: op["result"] for op in operations if op["type"] == "STEP"}
    return {
        "order": order_for(eid),
        "effects": [recorded.get(step) for step in STEPS],
        "approval": answer_for(eid),
    }


def check_effects(
    effects: Iterable[Mapping[str, Any]],
    calls: Sequence[Call],
    executions: Mapping[str, Mapping[str, Any]],
    killed_pids: Iterable[int],
    verdict: Verdict | None = None,
) -> Verdict:
    """Count step bodies run more than once, and whether each extra run is explained."""
    verdict = verdict or Verdict()
    runs: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for e in effects:
        runs[str(e["execution_id"]), str(e["step"])].append(e)
        if int(e["attempt"]) > 1:
            verdict.counts["step_retries"] += 1
    disrupted: dict[str, set[int]] = defaultdict(lambda: set(killed_pids))
    for c in calls:
        if c.outcome != "accepted" and c.kind != "grant":
            disrupted[c.execution_id].add(c.pid)
    for eid, ex in executions.items():
        for op in ex["operations"]:
            if op["type"] != "STEP" or op["name"] not in _effect_steps():
                continue
            mine = runs.get((eid, op["name"]), [])
            if not any(e["effect"] == op["result"] for e in mine):
                verdict.flag("unmatched_results", f"{eid}/{op['name']}: {op['result']!r}")
    for (eid, step), mine in runs.items():
        verdict.counts["step_runs"] += len(mine)
        if len(mine) < 2:
            continue
        verdict.counts["step_reruns"] += len(mine) - 1
        recorded = _recorded(executions.get(eid), step)
        extra = [e for e in mine if e["effect"] != recorded]
        odd = [e for e in extra if int(e["pid"]) not in disrupted[eid]]
        if recorded is None:  # nothing recorded (yet): one run may be the one in flight
            odd = odd[1:]
        if odd:
            pids = sorted({int(e["pid"]) for e in mine})
            verdict.flag("unexplained_reruns", f"{eid}/{step}: {len(mine)} runs by {pids}")
    return verdict


def _effect_steps() -> tuple[str, ...]:
    from concurrency_flow import STEPS

    return STEPS


def _recorded(ex: Mapping[str, Any] | None, step: str) -> Any:
    for op in (ex or {}).get("operations", []):
        if op["type"] == "STEP" and op["name"] == step:
            return op["result"]
    return None


def check_all(
    audit_rows: Iterable[Mapping[str, Any]],
    effects: Iterable[Mapping[str, Any]],
    started: Sequence[str],
    executions: Mapping[str, Mapping[str, Any]],
    killed_pids: Iterable[int],
) -> Verdict:
    """Every check, one verdict."""
    calls = calls_from_audit(audit_rows)
    verdict = check_fencing(calls)
    check_records(calls, started, executions, verdict)
    check_effects(effects, calls, executions, list(killed_pids), verdict)
    return verdict


# --- reading the store and the logs ----------------------------------------------------


def read_execution(rt: Runtime, eid: str) -> dict[str, Any]:
    """An execution as the checks take it: status, parsed result, journal records."""
    try:
        ex = rt.get(eid)
    except Exception:
        return {"status": "MISSING", "result": None, "operations": []}
    ops = [
        {
            "id": op.id,
            "name": op.name,
            "type": op.type.value,
            "status": op.status.value,
            "result": json.loads(op.result) if op.result is not None else None,
        }
        for op in rt.operations(eid)
    ]
    result = json.loads(ex.result) if ex.result is not None else None
    return {"status": ex.status.value, "result": result, "operations": ops}


def worker_rows(
    fate: Mapping[int, str],
    codes: Mapping[int, int | None],
    audit_rows: list[dict[str, Any]],
    effects: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """One row per worker process: what it did, from the audit log and the ledger."""
    by_pid: dict[int, Counter[str]] = {pid: Counter() for pid in fate}
    for row in audit_rows:
        key = "invocations" if row["kind"] == "grant" else row["outcome"]
        by_pid.setdefault(row["pid"], Counter())[key] += 1
    for e in effects:
        by_pid.setdefault(e["pid"], Counter())["step_bodies"] += 1
    return [
        {
            "pid": pid,
            "exit": codes.get(pid),
            "fate": fate.get(pid, "?"),
            "invocations": c["invocations"],
            "step_bodies": c["step_bodies"],
            "accepted": c["accepted"],
            "refused": c["refused"],
            "error": c["error"],
            "unknown": c["begin"] - c["accepted"] - c["refused"] - c["error"],
        }
        for pid, c in by_pid.items()
    ]


def summary(result: dict[str, Any]) -> str:
    """The one-line verdict a run prints last."""
    v, config = result["verdict"], result["config"]
    return (
        f"concurrency {result['store']}: executions={v['executions']} "
        f"workers={config['workers']} concurrency={config.get('concurrency', 1)} "
        f"killed={result['killed']} "
        f"crashed={len(result['crashed_workers'])} "
        f"stalled={1 if (result['stall'] or {}).get('state') == 'resumed' else 0} "
        f"finished={v['finished']} unfinished={v['unfinished']} lost={v['lost']} "
        f"double_advanced={v['double_advanced']} duplicate_records={v['duplicate_records']} "
        f"wrong_results={v['wrong_results']} unexplained_reruns={v['unexplained_reruns']} "
        f"refused_stale_writes={v.get('refused_writes', 0)} "
        f"step_reruns={v.get('step_reruns', 0)} seconds={result['seconds']}"
    )


def report(result: dict[str, Any]) -> None:
    """Print the per-worker table, the disruptions, examples of problems, then the summary."""
    cols = ("pid", "exit", "invocations", "step_bodies", "accepted", "refused", "error", "unknown")
    print(" ".join(f"{c:>11}" for c in cols) + "  fate")
    for row in result["workers"]:
        print(" ".join(f"{row[c]!s:>11}" for c in cols) + f"  {row['fate']}")
    print(f"feeder: {result['feeder']}")
    print(f"stall: {result['stall']}")
    examples = result["verdict"].get("examples") or {}
    for what, lines in examples.items():
        for line in lines:
            print(f"  {what}: {line}")
    print(summary(result))
