"""``durable worker --async`` and ``durable run`` with async functions, through ``main(argv)``
in-process on a temp SQLite store (as tests/cli does). The worker imports this folder's
``async_flows`` as a top-level module (``--import async_flows``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from durable_core import ExecutionStatus, OperationStatus, Runtime, SQLiteStore
from durable_core.cli import main

from .async_flows import fetch_two, remind, sync_double

HERE = Path(__file__).resolve().parent
Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "durable.sqlite3"


@pytest.fixture
def durable_cli(
    store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Cli:
    """``durable_cli(*args)`` runs ``durable --store <tmp> *args``: (exit code, out, err)."""
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.delenv("DURABLE_STORE", raising=False)
    capsys.readouterr()

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--store", str(store), "--log-level", "error", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_durable_worker_async_until_idle_runs_async_and_sync_executions(
    durable_cli: Cli, store: Path
) -> None:
    sqlite = SQLiteStore(str(store))
    rt = Runtime(sqlite, functions=[fetch_two, sync_double, remind])
    for i in range(30):
        rt.start(fetch_two, i, execution_id=f"a-{i}")
    rt.start(sync_double, 21, execution_id="s-1")
    rt.start(remind, "Ana", execution_id="w-1")  # its week-long wait stays pending

    code, out, err = durable_cli("worker", "--async", "--until-idle", "--import", "async_flows")

    assert code == 0, err
    assert out.startswith("idle: ran 32 invocation(s); 1 execution(s) still waiting")
    for i in range(30):
        assert rt.get(f"a-{i}").status is ExecutionStatus.SUCCEEDED
        assert rt.result(f"a-{i}") == 2 * i
        ops = rt.operations(f"a-{i}")
        assert [(op.name, op.status, op.attempt) for op in ops] == [
            ("first", OperationStatus.SUCCEEDED, 1),
            ("second", OperationStatus.SUCCEEDED, 1),
        ]
    assert rt.result("s-1") == 42
    waiting = rt.get("w-1")
    assert waiting.status is ExecutionStatus.RUNNING
    assert waiting.waiting_for is not None and "a-week" in waiting.waiting_for
    sqlite.close()


def test_durable_run_fast_forwards_an_async_function(durable_cli: Cli) -> None:
    code, out, err = durable_cli(
        "run", "async_flows:remind", "--input", '"Bo"', "--id", "r-1", "--fast-forward"
    )

    assert code == 0, err
    assert out.splitlines()[0] == "started execution r-1 (async_flows:remind)"
    assert "SUCCEEDED" in out
    assert '"hi Bo"' in out


@pytest.mark.parametrize("mode", [("--async",), ()], ids=["async", "threaded"])
def test_durable_worker_refuses_concurrency_zero(durable_cli: Cli, mode: tuple[str, ...]) -> None:
    code, _, err = durable_cli("worker", *mode, "--concurrency", "0", "--until-idle")

    assert code == 2
    assert "concurrency must be a whole number >= 1" in err
