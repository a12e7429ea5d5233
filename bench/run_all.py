"""Side-by-side benchmarks: durable-saga vs raw SQLite, the AWS durable SDK and DBOS.

Run with any Python >= 3.11 (standard library only)::

    python3 bench/run_all.py            # full run, ~15-20 minutes on 2 cores
    python3 bench/run_all.py --quick    # smoke run, ~1-2 minutes

Each system lives in its own virtualenv under ``.cache/bench-venvs/<system>``, created here
with ``python -m venv`` and pip from the package registry (durable-saga as ``pip install
-e .`` of this checkout, plus matplotlib for ``bench/plot.py``). Measurements are made by
the programs in ``bench/peers`` (one per system, kept running as ``--serve`` processes so
that measurements interleave without paying start-up each time) and by
``bench/throughput.py``.

Invariants:
- Within each repetition every figure is measured for every system back to back (A, B, C,
  then the next figure), and the order of systems rotates between repetitions, so a burst
  of noise from other work on the machine hits all systems alike.
- Reported values are medians over repetitions; ratios are medians of the per-repetition
  ratios of measurements taken side by side (paired), which cancels slow drifts.
- Everything measured is kept in ``bench/results/latest.json``, raw samples included, so
  the summary can be recomputed and checked.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from statistics import median
from typing import IO, Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEERS = HERE / "peers"
VENVS = REPO / ".cache" / "bench-venvs"
CACHE = REPO / ".cache" / "bench-cache"
LOGS = REPO / ".cache" / "bench-logs"
"""Standard error of the measuring processes (kept after the run, for failures)."""
RESULTS = HERE / "results" / "latest.json"
QUICK = REPO / ".cache" / "bench-quick" / "quick.json"
"""Where ``--quick`` writes (not committed: a smoke run's numbers are not results)."""

SYSTEMS: dict[str, list[str]] = {
    "durable-saga": ["-e", str(REPO), "-r", str(PEERS / "requirements-durable-saga.txt")],
    "aws-sdk": ["-r", str(PEERS / "requirements-aws-sdk.txt")],
    "dbos": ["-r", str(PEERS / "requirements-dbos.txt")],
}
"""venv name -> pip install arguments (versions pinned in ``bench/peers/requirements-*``)."""
VERSION_OF = {
    "durable-saga": ["durable-saga", "pydantic", "matplotlib"],
    "aws-sdk": ["aws-durable-execution-sdk-python", "aws-durable-execution-sdk-python-testing"],
    "dbos": ["dbos", "sqlalchemy"],
}

# label -> (venv, program, variant)
VARIANTS: dict[str, tuple[str, str, str]] = {
    "durable-saga memory": ("durable-saga", "durable_saga.py", "memory"),
    "durable-saga SQLite full": ("durable-saga", "durable_saga.py", "sqlite-full"),
    "durable-saga SQLite normal": ("durable-saga", "durable_saga.py", "sqlite-normal"),
    "raw SQLite commit full": ("durable-saga", "raw_sqlite.py", "full"),
    "raw SQLite commit normal": ("durable-saga", "raw_sqlite.py", "normal"),
    "AWS SDK (test runner, in memory)": ("aws-sdk", "aws_sdk.py", "memory"),
    "DBOS SQLite": ("dbos", "dbos_transact.py", "sqlite"),
    "DBOS SQLite WAL": ("dbos", "dbos_transact.py", "sqlite-wal"),
}
RESUME_VARIANTS = [*list(VARIANTS)[:2], "AWS SDK (test runner, in memory)", "DBOS SQLite"]
# label -> throughput.py arguments (after the system name)
THROUGHPUT: dict[str, tuple[str, list[str]]] = {
    "durable-saga SQLite full, 4 processes": ("durable-saga", ["--store-mode", "full"]),
    # what durable worker --concurrency 16 runs: one process, group commit between its loops
    "durable-saga SQLite full, 1 process x 16 (group commit)": (
        "durable-saga",
        ["--store-mode", "full", "--workers", "1", "--concurrency", "16"],
    ),
    "durable-saga SQLite full, 2 processes x 16 (group commit)": (
        "durable-saga",
        ["--store-mode", "full", "--workers", "2", "--concurrency", "16"],
    ),
    "durable-saga SQLite normal, 1 process x 16": (
        "durable-saga",
        ["--store-mode", "normal", "--workers", "1", "--concurrency", "16"],
    ),
    "DBOS SQLite": ("dbos", ["--dbos-variant", "sqlite"]),
    "DBOS SQLite WAL": ("dbos", ["--dbos-variant", "sqlite-wal"]),
    # the fastest DBOS setting found: WAL, and a thread per workflow instead of a queue
    "DBOS SQLite WAL start_workflow": (
        "dbos",
        ["--dbos-variant", "sqlite-wal", "--dbos-mode", "start"],
    ),
}
DS_TPUT = "durable-saga SQLite full, 1 process x 16 (group commit)"
"""The durable-commit configuration the throughput target is read on."""
# venv -> (program, variant) whose import time and memory are measured
MEMORY = {venv: (program, variant) for venv, program, variant in reversed(VARIANTS.values())}
MEMORY["durable-saga"] = ("durable_saga.py", "memory")


def log(msg: str) -> None:
    """Progress on stderr, with a timestamp."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- virtualenvs ----------------------------------------------------------------------


def python_of(venv: str) -> Path:
    return VENVS / venv / "bin" / "python"


def ensure_venvs(*, reinstall: bool, only: tuple[str, ...] | None = None) -> None:
    """Create each system's venv (or those in ``only``) and install it, unless it is
    already installed as asked."""
    for venv, packages in SYSTEMS.items():
        if only is not None and venv not in only:
            continue
        marker = VENVS / venv / ".bench-installed"
        inputs = [REPO / "pyproject.toml", PEERS / f"requirements-{venv}.txt"]
        want = hashlib.sha256(b"".join(p.read_bytes() for p in inputs)).hexdigest()
        if not reinstall and marker.exists() and marker.read_text() == want:
            continue
        log(f"creating venv {venv}: pip install {' '.join(packages)}")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENVS / venv)], check=True)
        pip = [str(python_of(venv)), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, *packages], check=True)
        marker.write_text(want)


def versions() -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for venv, names in VERSION_OF.items():
        code = (
            "import importlib.metadata as m, json, sys;"
            "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
        )
        text = subprocess.run(
            [str(python_of(venv)), "-c", code, *names], capture_output=True, text=True, check=True
        ).stdout
        out[venv] = json.loads(text)
    return out


# --- measuring processes ----------------------------------------------------------------


class Server:
    """A peer program running ``--serve``: one JSON spec per line in, one answer out."""

    def __init__(self, label: str, logs: Path) -> None:
        venv, program, self.variant = VARIANTS[label]
        self.label = label
        self._stderr: IO[str] = (logs / f"{program}-{self.variant}.log").open("w")
        self.proc = subprocess.Popen(
            [str(python_of(venv)), str(PEERS / program), "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=REPO,
        )

    def ask(self, spec: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({**spec, "variant": self.variant}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"{self.label}: the measuring process died; see {self._stderr.name}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=120)
        self._stderr.close()


def one_shot(venv: str, argv: list[str], *, timeout: float = 3600) -> dict[str, Any]:
    """Run a program in a fresh process of ``venv``; its last stdout line is JSON."""
    done = subprocess.run(
        [str(python_of(venv)), *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def rotated(items: list[str], rep: int) -> Iterator[str]:
    """``items`` starting at position ``rep`` (so no system is always measured first)."""
    k = rep % len(items)
    yield from items[k:] + items[:k]


# --- the run ----------------------------------------------------------------------------


def plan(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        return {
            "reps": args.reps or 2,
            "sizes": [0, 10, 100],
            "resume_sizes": [0, 100, 1000],
            "throughput_workflows": 200,
            "throughput_reps": 1,
        }
    return {
        "reps": args.reps or 5,
        "sizes": [0, 10, 100, 1000],
        "resume_sizes": [0, 100, 1000, 3000, 10000],
        "throughput_workflows": 1000,
        "throughput_reps": args.reps or 5,
    }


def inner_runs(n: int) -> int:
    """Timed runs per sample: more for short runs, where timer and scheduler noise weigh."""
    return {0: 15, 10: 7, 100: 3}.get(n, 1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = plan(args)
    samples: dict[str, list[dict[str, Any]]] = {k: [] for k in PHASES}
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp_name:
        common = {"tmp_dir": tmp_name, "cache_dir": str(CACHE)}
        LOGS.mkdir(parents=True, exist_ok=True)
        servers = {label: Server(label, LOGS) for label in VARIANTS}
        try:
            log("starting the measuring processes (imports, DBOS launch) before timing")
            for server in servers.values():  # one at a time: they must not race each other
                server.ask({**common, "op": "steps", "n": 1, "runs": 1})
            for rep in range(cfg["reps"]):
                log(f"repetition {rep + 1}/{cfg['reps']}")
                _rep_steps_and_resume(cfg, rep, servers, common, samples)
                if rep < cfg["throughput_reps"]:
                    _rep_throughput(cfg, rep, args.workers, tmp_name, samples)
                _rep_import_and_memory(rep, common, samples)
        finally:
            for server in servers.values():
                server.close()
    return {"config": cfg, "samples": samples}


PHASES = ("steps", "resume", "throughput", "import", "memory")


def _rep_steps_and_resume(
    cfg: dict[str, Any],
    rep: int,
    servers: dict[str, Server],
    common: dict[str, Any],
    samples: dict[str, list[dict[str, Any]]],
) -> None:
    for n in cfg["sizes"]:
        for label in rotated(list(VARIANTS), rep):
            ans = servers[label].ask({**common, "op": "steps", "n": n, "runs": inner_runs(n)})
            samples["steps"].append({"label": label, "rep": rep, "n": n, "seconds": ans["seconds"]})
    for n in cfg["resume_sizes"]:
        for label in rotated(RESUME_VARIANTS, rep):
            runs = 3 if label.startswith("durable-saga") else 1  # peers' samples cost seconds
            ans = servers[label].ask({**common, "op": "resume", "n": n, "runs": runs})
            keep: dict[str, Any] = {
                k: ans[k] for k in ("seconds", "how", "launch_to_done") if k in ans
            }
            samples["resume"].append({"label": label, "rep": rep, "n": n, **keep})


def _rep_throughput(
    cfg: dict[str, Any], rep: int, workers: int, tmp: str, samples: dict[str, list[Any]]
) -> None:
    for label in rotated(list(THROUGHPUT), rep):
        venv, extra = THROUGHPUT[label]
        argv = [str(HERE / "throughput.py"), venv, "--workflows", str(cfg["throughput_workflows"])]
        ans = one_shot(venv, [*argv, "--workers", str(workers), "--tmp-dir", tmp, *extra])
        log(f"  throughput {label}: {ans['workflows_per_s']:.1f} workflows/s")
        samples["throughput"].append({"label": label, "rep": rep, **ans})


def _rep_import_and_memory(
    rep: int, common: dict[str, Any], samples: dict[str, list[dict[str, Any]]]
) -> None:
    for venv in rotated(list(MEMORY), rep):
        program, variant = str(PEERS / MEMORY[venv][0]), MEMORY[venv][1]
        ans = one_shot(venv, [program, json.dumps({"op": "import", "runs": 1})])
        samples["import"].append({"system": venv, "rep": rep, **ans["modules"]})
        spec = {**common, "op": "memory", "n": 1000, "runs": 1, "variant": variant}
        ans = one_shot(venv, [program, json.dumps(spec)])
        samples["memory"].append({"system": venv, "rep": rep, "variant": variant, **ans["rss_mb"]})


def _git(*argv: str) -> str:
    done = subprocess.run(["git", *argv], capture_output=True, text=True, cwd=REPO, check=False)
    return done.stdout.rstrip()


def machine() -> dict[str, Any]:
    """The machine, and exactly which durable-saga source was measured."""
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain", "--", "durable_core", "saga", "pyproject.toml")
    sources = sorted((REPO / "durable_core").rglob("*.py")) + sorted((REPO / "saga").rglob("*.py"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]
    import sqlite3

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "git_commit": commit,
        "uncommitted_source_changes": dirty.splitlines(),
        "source_sha256": digest,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# --- summary ----------------------------------------------------------------------------

DS_FULL, DS_MEM = "durable-saga SQLite full", "durable-saga memory"
RAW_FULL, DBOS = "raw SQLite commit full", "DBOS SQLite"


def _by_rep(rows: list[dict[str, Any]]) -> dict[str, dict[int, dict[int, float]]]:
    """label -> n -> rep -> median of the sample's timed runs (seconds)."""
    out: dict[str, dict[int, dict[int, float]]] = {}
    for row in rows:
        out.setdefault(row["label"], {}).setdefault(row["n"], {})[row["rep"]] = median(
            row["seconds"]
        )
    return out


def _slopes(t: dict[int, dict[int, float]], n: int) -> dict[int, float]:
    """rep -> (T(n) - T(0)) / n: the cost per step, the fixed cost taken out, paired."""
    return {r: (t[n][r] - t[0][r]) / n for r in t[n] if r in t.get(0, {})}


def _paired_ratio(a: dict[int, float], b: dict[int, float]) -> float | None:
    ratios = [a[r] / b[r] for r in a if r in b and b[r] > 0]
    return median(ratios) if ratios else None


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Medians, paired ratios and the issue-2/issue-6 targets from the raw samples."""
    samples = result["samples"]
    sizes = [n for n in result["config"]["sizes"] if n > 0]
    steps = _by_rep(samples["steps"])
    fixed_ms = {label: median(t[0].values()) * 1e3 for label, t in steps.items()}
    slope = {label: {n: _slopes(t, n) for n in sizes} for label, t in steps.items()}
    per_step_us = {
        label: {n: median(s[n].values()) * 1e6 for n in sizes} for label, s in slope.items()
    }
    vs_raw = {
        "durable-saga SQLite full / raw full": {
            n: _paired_ratio(slope[DS_FULL][n], slope[RAW_FULL][n]) for n in sizes
        },
        "durable-saga SQLite normal / raw normal": {
            n: _paired_ratio(
                slope["durable-saga SQLite normal"][n], slope["raw SQLite commit normal"][n]
            )
            for n in sizes
        },
    }
    faster_than_dbos = {
        label: {n: _paired_ratio(slope[DBOS][n], s[n]) for n in sizes} for label, s in slope.items()
    }
    resume = _by_rep(samples["resume"])
    rsizes = [n for n in result["config"]["resume_sizes"] if n > 0]
    resume_ms = {label: {n: median(t[n].values()) * 1e3 for n in t} for label, t in resume.items()}
    resume_us = {
        label: {n: median(_slopes(t, n).values()) * 1e6 for n in rsizes}
        for label, t in resume.items()
    }
    tput: dict[str, dict[int, float]] = {}
    for row in samples["throughput"]:
        tput.setdefault(row["label"], {})[row["rep"]] = row["workflows_per_s"]
    wfs = {label: median(v.values()) for label, v in tput.items()}
    tput_vs_dbos = {
        f"{label} / {base}": _paired_ratio(tput[label], tput[base])
        for label in tput
        if label.startswith("durable-saga")
        for base in tput
        if base.startswith("DBOS")
    }
    imports: dict[str, dict[str, Any]] = {}
    for row in samples["import"]:
        for module, v in row.items():
            if isinstance(v, dict):
                entry = imports.setdefault(module, {"seconds": [], "boto3_loaded": False})
                entry["seconds"].extend(v["seconds"])
                entry["boto3_loaded"] |= v["boto3_loaded"]
    import_s = {
        m: {"seconds": median(v["seconds"]), "boto3_loaded": v["boto3_loaded"]}
        for m, v in imports.items()
    }
    memory: dict[str, dict[str, list[float]]] = {}
    for row in samples["memory"]:
        for key in ("start", "import", "after_run"):
            memory.setdefault(row["system"], {}).setdefault(key, []).append(row[key])
    rss_mb = {sys_: {k: median(v) for k, v in m.items()} for sys_, m in memory.items()}
    summary = {
        "fixed_cost_ms": fixed_ms,
        "per_step_us": per_step_us,
        "ratio_vs_raw": vs_raw,
        "times_faster_than_dbos": faster_than_dbos,
        "resume_ms": resume_ms,
        "resume_us_per_replayed_step": resume_us,
        "throughput_workflows_per_s": wfs,
        "throughput_ratio_vs_dbos": tput_vs_dbos,
        "import_s": import_s,
        "rss_mb": rss_mb,
    }
    summary["targets"] = _targets(summary, sizes, rsizes)
    return summary


def _targets(s: dict[str, Any], sizes: list[int], rsizes: list[int]) -> list[dict[str, Any]]:
    """Each target as name, bound, measured value and verdict (``None`` never passes)."""
    big = [n for n in sizes if n >= 100]
    vs_raw = s["ratio_vs_raw"]["durable-saga SQLite full / raw full"]
    rows: list[tuple[str, str, float | None, float]] = [
        # (name, unit, measured, bound): measured <= bound passes, except where bound < 0
        (
            "SQLite durable commit per step / raw SQLite commit (worst of N>=100)",
            "x",
            max((vs_raw[n] or 99.0) for n in big),
            1.3,
        ),
        (
            "in-memory per step (worst of N>=100)",
            "us",
            max(s["per_step_us"][DS_MEM][n] for n in big),
            30.0,
        ),
        ("fixed cost per invocation (memory store)", "ms", s["fixed_cost_ms"][DS_MEM], 1.0),
    ]
    top = max(rsizes)
    base = 1000 if top > 1000 else sorted(rsizes)[-2]
    for label in (DS_MEM, DS_FULL):
        per = s["resume_us_per_replayed_step"][label]
        rows.append((f"resume per replayed step at N={top} ({label})", "us", per[top], 10.0))
        growth = per[top] / per[base] if per[base] > 0 else None
        rows.append(
            (f"resume linear: per-step at N={top} / at N={base} ({label})", "x", growth, 1.5)
        )
    saga = s["import_s"]["saga"]
    rows.append(
        (
            "import saga, fresh interpreter (FAIL if boto3 got imported)",
            "s",
            None if saga["boto3_loaded"] else saga["seconds"],
            0.25,
        )
    )
    ratio = s["throughput_ratio_vs_dbos"].get(f"{DS_TPUT} / {DBOS}")
    rows.append((f"throughput, {DS_TPUT} / DBOS SQLite", "x", ratio, -10.0))
    out = []
    for name, unit, measured, bound in rows:
        if bound < 0:  # a floor: measured >= -bound passes
            ok = measured is not None and measured >= -bound
            target = f">= {-bound:g} {unit}"
        else:
            ok = measured is not None and measured <= bound
            target = f"<= {bound:g} {unit}"
        out.append({"name": name, "target": target, "measured": measured, "unit": unit, "pass": ok})
    return out


def _fmt(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def print_table(result: dict[str, Any]) -> None:
    """The human summary; the targets' PASS/FAIL lines come last."""
    s, cfg = result["summary"], result["config"]
    sizes = [n for n in cfg["sizes"] if n > 0]
    print(
        f"\nPer-step overhead, us (median of {cfg['reps']} interleaved reps; fixed cost "
        "subtracted). x DBOS = how many times faster than DBOS SQLite per step."
    )
    head = f"{'system':<34}{'fixed ms':>10}" + "".join(f"{'N=' + str(n):>10}" for n in sizes)
    print(head + f"{'x DBOS':>10}")
    for label in VARIANTS:
        per = s["per_step_us"][label]
        row = f"{label:<34}{_fmt(s['fixed_cost_ms'][label], 2):>10}"
        row += "".join(f"{_fmt(per[n]):>10}" for n in sizes)
        print(row + f"{_fmt(s['times_faster_than_dbos'][label][sizes[-1]], 2):>10}")
    for name, r in s["ratio_vs_raw"].items():
        print(f"ratio {name}: " + ", ".join(f"N={n}: {_fmt(r[n], 2)}" for n in sizes))
    print("\nResume: total ms for one resume invocation | us per replayed step")
    for label, per in s["resume_us_per_replayed_step"].items():
        tot = s["resume_ms"][label]
        print(
            f"{label:<34}"
            + "  ".join(f"N={n}: {_fmt(tot[n], 2)} ms | {_fmt(per.get(n), 2)}" for n in sorted(tot))
        )
    print(f"\nThroughput, {cfg['throughput_workflows']} x 5-step workflows (median workflows/s)")
    for label, v in s["throughput_workflows_per_s"].items():
        print(f"{label:<34}{v:>10.1f}")
    for name, r in s["throughput_ratio_vs_dbos"].items():
        print(f"ratio {name}: {_fmt(r, 2)}")
    print("\nImport (s, fresh interpreter) and max RSS (MiB: interpreter, +import, +1000 steps)")
    for module, v in s["import_s"].items():
        print(f"import {module:<44}{v['seconds']:>7.3f}  boto3 loaded: {v['boto3_loaded']}")
    for system, v in s["rss_mb"].items():
        print(f"rss {system:<24}{v['start']:>7.1f}{v['import']:>7.1f}{v['after_run']:>7.1f}")
    print("\nTargets")
    for t in s["targets"]:
        verdict = "PASS" if t["pass"] else "FAIL"
        print(
            f"{verdict}  {t['name']}: {_fmt(t['measured'], 2)} {t['unit']} (target {t['target']})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (~1-2 minutes)")
    parser.add_argument("--reps", type=int, default=0, help="repetitions (default 5; quick 2)")
    parser.add_argument("--workers", type=int, default=4, help="throughput workers")
    parser.add_argument("--reinstall", action="store_true", help="recreate the venvs")
    parser.add_argument("--out", type=Path, default=None, help=f"default {RESULTS}")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args()
    out = args.out or (QUICK if args.quick else RESULTS)
    started = time.perf_counter()
    ensure_venvs(reinstall=args.reinstall)
    result: dict[str, Any] = {"machine": machine(), "versions": versions()}
    result.update(run(args))
    result["summary"] = summarize(result)
    result["machine"]["run_seconds"] = round(time.perf_counter() - started, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    log(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    if not args.no_plot:
        png = out.with_suffix(".png") if args.quick else REPO / "docs/img/per-step-vs-n.png"
        subprocess.run(
            [str(python_of("durable-saga")), str(HERE / "plot.py"), str(out), "--out", str(png)],
            check=True,
        )
    print_table(result)


if __name__ == "__main__":
    main()
