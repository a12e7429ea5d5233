"""Store URLs for every command, ``--store`` anywhere, and read-only ``list``/``show``.

Real ``durable`` and ``durable-saga`` processes: on SQLite by path and by URL, on a
DynamoDB Local table, on a read-only mount, and behind a writer holding the write lock.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO

BIN = Path(sys.executable).parent
HELLO = "examples.hello_durable.workflow:hello"
ORDER = '{"order_id": "A-1", "amount": 42.5}'


def argv(*args: str) -> list[str]:
    """The command line of ``durable ARGS``, or of ``durable-saga`` for ``("saga", ...)``."""
    if args[:1] == ("saga",):
        return [str(BIN / "durable-saga"), *args[1:]]
    return [str(BIN / "durable"), "--log-level", "error", *args]


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> Any:
    """Run :func:`argv` in a process (without ``$DURABLE_STORE`` unless ``env`` sets it;
    the repository on ``PYTHONPATH``, so ``examples`` imports from any ``cwd``)."""
    base = {k: v for k, v in os.environ.items() if k != "DURABLE_STORE"}
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), base.get("PYTHONPATH")]))
    return subprocess.run(argv(*args), cwd=cwd, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def test_every_form_of_store_url_names_the_same_sqlite_store(tmp_path: Path) -> None:
    store = tmp_path / "st" / "d.sqlite3"
    started = cli("--store", f"sqlite:///{store}", "run", HELLO, "--input", ORDER, "--id", "A-1")
    assert started.returncode == 0, started.stderr
    assert store.exists()  # sqlite:////abs is the absolute path

    for args, env in [
        (("--store", str(store), "show", "A-1"), None),  # a plain path
        (("show", "A-1", "--store", str(store)), None),  # --store after the command
        (("show", "A-1"), {"DURABLE_STORE": f"sqlite:///{store}"}),  # a URL in the env
        (("--store", "elsewhere.sqlite3", "show", "A-1", "--store", str(store)), None),
    ]:
        shown = cli(*args, env=env)
        assert shown.returncode == 0, (args, shown.stderr)
        assert "timer 'cool-off'" in shown.stdout

    relative = cli("--store", "sqlite:///st/d.sqlite3", "list", cwd=tmp_path)
    assert relative.returncode == 0, relative.stderr
    assert "A-1" in relative.stdout
    status = cli("saga", "status", "A-1", "--store", f"sqlite:///{store}")
    assert status.returncode == 0, status.stderr
    assert "cool-off" in status.stdout


def test_a_store_url_that_does_not_parse_is_one_line_exit_2_and_nothing_created(
    tmp_path: Path,
) -> None:
    for url in ("dynamodb://x?region=eu-west-1", "postgres://db/x", "sqlite://"):
        for command in (("list",), ("run", HELLO, "--input", ORDER), ("worker", "--until-idle")):
            r = cli("--store", url, *command, cwd=tmp_path)
            assert r.returncode == 2, (url, command, r.stderr)
            assert r.stderr.startswith(f"error: store URL '{url}'"), r.stderr
            assert len(r.stderr.strip().splitlines()) == 1
    saga = cli("saga", "status", "X", "--store", "postgres://db/x", cwd=tmp_path)
    assert saga.returncode == 2
    assert saga.stderr.startswith("error: store URL 'postgres://db/x'")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def dynamo() -> Iterator[tuple[str, dict[str, str]]]:
    """A new DynamoDB Local table: its store URL and the environment for its client."""
    from aws import ddb  # tests/aws/ddb.py: DynamoDB Local on 127.0.0.1, once per process

    store = ddb.new_store()
    url = f"dynamodb://{store.table_name}?region={ddb.REGION}&endpoint={ddb.endpoint()}"
    env = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
    try:
        yield url, env
    finally:
        ddb.drop(store)
        store.close()


@pytest.mark.aws
def test_show_list_start_and_signals_work_on_a_dynamodb_table(
    dynamo: tuple[str, dict[str, str]],
) -> None:
    url, env = dynamo
    run = cli("--store", url, "run", HELLO, "--input", ORDER, "--id", "A-1", env=env)
    assert run.returncode == 0, run.stderr
    assert "SUSPENDED: waiting for timer 'cool-off'" in run.stdout
    started = cli("start", HELLO, "--input", ORDER, "--id", "A-2", "--store", url, env=env)
    assert started.returncode == 0, started.stderr

    listed = cli("list", "--store", url, env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert set(rows) == {"A-1", "A-2"}
    assert "timer 'cool-off'" in rows["A-1"]
    shown = cli("show", "A-1", "--store", url, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "process-payment" in shown.stdout
    assert "examples.hello_durable.workflow:hello" in shown.stdout

    cancel = cli("cancel", "A-2", "--reason", "test", "--store", url, env=env)
    assert cancel.returncode == 0, cancel.stderr
    worker = cli("worker", "--until-idle", "--store", url, env=env)
    assert worker.returncode == 0, worker.stderr
    assert "CANCELLED" in cli("show", "A-2", "--store", url, env=env).stdout
    unknown = cli("show", "nope", "--store", url, env=env)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("error:")


def _store_with_one_execution(tmp_path: Path) -> Path:
    store = tmp_path / "st" / "d.sqlite3"
    done = cli("--store", str(store), "run", HELLO, "--input", ORDER, "--id", "A-1")
    assert done.returncode == 0, done.stderr
    return store


def test_list_and_show_read_behind_a_writer_that_holds_the_write_lock(tmp_path: Path) -> None:
    store = _store_with_one_execution(tmp_path)
    writer = sqlite3.connect(store, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a long write transaction in another process's place
    writer.execute("UPDATE meta SET value = value")
    try:
        for command in (("list",), ("show", "A-1"), ("saga", "status", "A-1")):
            # `timeout`: a command that waited for the lock would wait 30 s, then fail
            r = subprocess.run(["timeout", "20", *argv(*command, "--store", str(store))],
                               cwd=REPO, capture_output=True, text=True, check=False)  # fmt: skip
            assert "locked" not in r.stderr, (command, r.stderr)
            assert r.returncode == 0, (command, r.stderr)
        assert "A-1" in cli("--store", str(store), "list").stdout
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs `unshare -rm` for a read-only mount")
def test_list_and_show_work_on_a_read_only_mount_and_run_says_why_it_cannot(
    tmp_path: Path,
) -> None:
    store = _store_with_one_execution(tmp_path)
    assert sorted(p.name for p in store.parent.iterdir()) == ["d.sqlite3"]  # closed cleanly
    mount = tmp_path / "ro"
    mount.mkdir()
    durable = " ".join(argv())
    script = (
        f"mount --bind {store.parent} {mount} && mount -o remount,ro,bind {mount} && "
        f"{durable} --store {mount}/d.sqlite3 list && "
        f"{durable} --store sqlite:///{mount}/d.sqlite3 show A-1 && "
        f"{durable} --store {mount}/d.sqlite3 run {HELLO} --input '{ORDER}' --id A-1"
    )
    r = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=REPO, capture_output=True,
                       text=True, timeout=60, check=False)  # fmt: skip

    assert "A-1" in r.stdout.splitlines()[1]  # list
    assert "process-payment" in r.stdout  # show
    assert r.returncode == 2  # run needs to write
    assert r.stderr.startswith(f"error: {mount}/d.sqlite3 cannot be written here"), r.stderr
    assert "read-only" in r.stderr
    assert "new path" not in r.stderr
    assert "Traceback" not in r.stderr
