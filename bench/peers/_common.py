"""Shared plumbing of the peer benchmark programs (standard library only).

Every program in ``bench/peers`` runs inside its own system's virtualenv, reads one JSON
spec (``argv[1]``, or standard input when it is ``-`` or absent), runs one measurement and
prints exactly one JSON object on its last line of standard output. The orchestrator
(``bench/run_all.py``) owns repetition, interleaving and medians; a program only measures.

Specs (``op`` selects the measurement):

- ``{"op": "steps", "variant": V, "n": N, "runs": R}``: R timed runs of a workflow of N
  trivial steps (after one untimed warm-up run) -> ``{"seconds": [...]}``. N = 0 gives the
  fixed cost per run.
- ``{"op": "resume", "variant": V, "n": N, "runs": R, "cache_dir": D}``: time the
  invocation that resumes an execution whose N steps are already recorded ->
  ``{"seconds": [...], "how": "..."}``.
- ``{"op": "import"}``: import time of the system's top module in a fresh interpreter.
- ``{"op": "memory", "variant": V, "n": N}``: max RSS (``getrusage``) of this process at
  start, after importing the system, and after one N-step run.

Invariants: the timed region never includes process start-up or imports; everything a
program measures is returned, nothing is summarized here. Diagnostics go to standard
error; standard output carries only answers.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

Spec = dict[str, Any]
Handler = Callable[[Spec], dict[str, Any]]


def read_spec() -> Spec:
    """The JSON spec from ``argv[1]`` or standard input."""
    text = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "-" else sys.stdin.read()
    spec = json.loads(text)
    if not isinstance(spec, dict) or "op" not in spec:
        raise SystemExit(f"spec must be a JSON object with an 'op' key, got {text[:200]!r}")
    return spec


def max_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes (``perf_counter``)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def repeat(run: Callable[[int], object], n: int, runs: int) -> list[float]:
    """``runs`` timings of ``run(n)``, after one untimed warm-up ``run(min(n, 10))``."""
    run(min(n, 10))
    return [timed(lambda: run(n)) for _ in range(runs)]


def import_time(module: str, runs: int = 1) -> dict[str, Any]:
    """Seconds to import ``module`` in fresh interpreters, and whether boto3 got loaded."""
    code = (
        "import sys,time;t=time.perf_counter();import "
        + module
        + ";d=time.perf_counter()-t;print(d,'boto3' in sys.modules)"
    )
    seconds: list[float] = []
    boto3 = False
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-X", "frozen_modules=on", "-c", code],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        seconds.append(float(out[0]))
        boto3 = boto3 or out[1] == "True"
    return {"seconds": seconds, "boto3_loaded": boto3}


def main(
    handlers: dict[str, Handler], *, system: str, cleanup: Callable[[], None] | None = None
) -> None:
    """Answer one spec (``argv[1]`` or stdin), or many with ``--serve``.

    ``--serve`` reads one JSON spec per line of standard input and answers each with one
    JSON line, so the orchestrator can interleave systems finely without paying process
    start-up and imports for every measurement. ``cleanup`` runs once at the end.
    """
    answers = sys.stdout
    sys.stdout = sys.stderr  # whatever the system under test prints goes to stderr
    try:
        if sys.argv[1:2] == ["--serve"]:
            for line in sys.stdin:
                if line.strip():
                    _answer(handlers, json.loads(line), system, answers)
        else:
            _answer(handlers, read_spec(), system, answers)
    finally:
        if cleanup is not None:
            cleanup()


def _answer(handlers: dict[str, Handler], spec: Spec, system: str, out: TextIO) -> None:
    handler = handlers.get(spec.get("op", ""))
    if handler is None:
        raise SystemExit(f"{system}: unknown op {spec.get('op')!r}; known: {sorted(handlers)}")
    result = handler(spec)
    result.setdefault("system", system)
    result.setdefault("spec", spec)
    out.write(json.dumps(result) + "\n")
    out.flush()
