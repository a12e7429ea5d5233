"""Draw per-step cost vs N (log-log, one line per system) from a ``run_all.py`` result.

Usage (matplotlib lives in the durable-saga bench venv only, not in the project)::

    .cache/bench-venvs/durable-saga/bin/python bench/plot.py bench/results/latest.json \
        --out docs/img/per-step-vs-n.png

The plotted value is the median per-step cost with the 0-step fixed cost taken out, as in
the table ``run_all.py`` prints. A value that noise pushed to zero or below cannot be drawn
on a log axis and is left out (and said so on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

STYLE: dict[str, dict[str, Any]] = {
    "durable-saga memory": {"color": "#1f77b4", "linestyle": "-", "marker": "o"},
    "durable-saga SQLite full": {"color": "#1f77b4", "linestyle": "-", "marker": "s", "lw": 2.5},
    "durable-saga SQLite normal": {"color": "#1f77b4", "linestyle": "--", "marker": "^"},
    "raw SQLite commit full": {"color": "#555555", "linestyle": ":", "marker": "s"},
    "raw SQLite commit normal": {"color": "#555555", "linestyle": ":", "marker": "^"},
    "AWS SDK (test runner, in memory)": {"color": "#ff7f0e", "linestyle": "-", "marker": "D"},
    "DBOS SQLite": {"color": "#2ca02c", "linestyle": "-", "marker": "s"},
    "DBOS SQLite WAL": {"color": "#2ca02c", "linestyle": "--", "marker": "^"},
}


def plot(result: dict[str, Any], out: Path) -> None:
    """Write the PNG."""
    per_step = result["summary"]["per_step_us"]
    machine = result["machine"]
    fig, ax = plt.subplots(figsize=(9, 5.6), dpi=110)
    for label, by_n in per_step.items():
        points = sorted((int(n), v) for n, v in by_n.items())
        dropped = [n for n, v in points if v <= 0]
        if dropped:
            print(
                f"{label}: N={dropped} not drawn (median <= 0 after subtraction)", file=sys.stderr
            )
        points = [(n, v) for n, v in points if v > 0]
        if not points:
            continue
        style = dict(STYLE.get(label, {}))
        lw = style.pop("lw", 1.6)
        ax.plot(*zip(*points, strict=True), label=label, linewidth=lw, markersize=6, **style)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("steps per workflow (N)")
    ax.set_ylabel("cost per step, µs (fixed cost subtracted)")
    ax.set_title(
        "Per-step cost vs N (lower is better)\n"
        f"median of {result['config']['reps']} interleaved repetitions, "
        f"{machine['cpus']} shared cores, SQLite {machine['sqlite']}",
        fontsize=10,
    )
    sizes = sorted({int(n) for by_n in per_step.values() for n in by_n})
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.grid(True, which="major", alpha=0.4)
    ax.grid(True, which="minor", alpha=0.15)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("result", type=Path, nargs="?", default=Path("bench/results/latest.json"))
    parser.add_argument("--out", type=Path, default=Path("docs/img/per-step-vs-n.png"))
    args = parser.parse_args()
    plot(json.loads(args.result.read_text()), args.out)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
