"""Long run of the generated-scenario checker (docs/guarantees.md, "Generated scenarios").

    .venv/bin/python -m bench.scenarios --count 5000            # a fresh random seed
    .venv/bin/python -m bench.scenarios --count 5000 --seed 7   # repeatable
    .venv/bin/python -m bench.scenarios --processes 30 --seed 7 # real workers, SIGKILL

Generates saga programs and interruption schedules (tests/saga/scenarios), runs each on the
real runtime (memory store; every 25th on SQLite; every 20th also crashed at every
checkpoint boundary) and compares it with the independent oracle. With ``--processes N``
it instead runs N generated programs on a SQLite file driven by real ``durable worker``
processes killed with SIGKILL (tests/saga/scenarios/processes.py).

Prints the failure classes with the shortest example of each (a JSON line:
``python -m bench.scenarios --replay 'JSON'`` runs it again), with ``--shrink`` a
hypothesis-minimised example per class, and LAST the summary line
``scenarios=N failures=F``. Exit code 1 if F > 0.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "saga")]

from scenarios import campaign, drive  # noqa: E402
from scenarios.programs import scenario_from_json, to_json  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    """Run the campaign the arguments ask for; the summary line is the last output."""
    parser = argparse.ArgumentParser(prog="python -m bench.scenarios")
    parser.add_argument("--count", type=int, default=5000, help="scenarios to generate")
    parser.add_argument("--seed", type=int, default=None, help="default: a random seed")
    parser.add_argument("--shrink", action="store_true", help="minimise one example per class")
    parser.add_argument("--processes", type=int, default=0, help="real-worker SIGKILL sample")
    parser.add_argument("--replay", metavar="JSON", help="run one scenario line and explain")
    args = parser.parse_args(argv)
    if args.replay:
        return replay(args.replay)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    if args.processes:
        from scenarios import processes

        result = processes.run_sample(args.processes, seed)
        for line in result.details:
            print(line)
        print(f"seed={seed} kills={result.kills}")
        print(result.line())
        return 1 if result.failures else 0
    summary = campaign.run_campaign(
        args.count,
        seed,
        progress=lambda s: print(
            f"... {s.scenarios} scenarios, {s.failures} failures", file=sys.stderr, flush=True
        ),
    )
    for key, n in summary.classes.most_common():
        text, found = summary.examples[key]
        print(f"{n:5d} x {key}")
        print(f"        {text}")
        for problem in found[:6]:
            print(f"        - {problem[:300]}")
        if args.shrink:
            small = campaign.shrink(key)
            if small is not None:
                print(f"        minimal: {to_json(*small)}")
    print(
        f"seed={seed} runs={summary.runs} classes={len(summary.classes)} "
        f"seconds={summary.seconds:.1f}"
    )
    print(summary.line())
    return 1 if summary.failures else 0


def replay(text: str) -> int:
    """Run one scenario line; print what happened and what the oracle expected."""
    program, schedule = scenario_from_json(text)
    observed = drive.run(program, schedule)
    print(f"observed: {observed.execution_status} / {observed.status}, effects {observed.effects}")
    for want in drive.expected_for(program, schedule, observed):
        print(
            f"allowed:  {want.execution_status} / {want.status}, dos {want.dos}, "
            f"undos {want.undos}, not undone {sorted(want.not_undone or ())}"
        )
    found = drive.problems(program, schedule, observed)
    for problem in found:
        print(f"- {problem}")
    print(f"scenarios=1 failures={1 if found else 0}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
