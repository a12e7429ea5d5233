"""New SQLite store files are owner-only; existing ones keep the mode their owner gave them."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from durable_core import SQLiteStore
from durable_core.cli import main as durable_cli

from .records import T0, TTL, leased, step

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask-022", "umask-000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """The process umask for the test (0 would make SQLite's own files world-writable)."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def test_a_new_store_and_its_side_files_are_0600_in_new_0700_folders(
    tmp_path: Path, umask: int
) -> None:
    path = tmp_path / "a" / "b" / "store.sqlite3"
    store = SQLiteStore(path)
    try:
        store.write_operations(leased(store, "e1"), [step("s")], T0, TTL)  # -wal and -shm exist
        files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
        assert {f.name: oct(mode(f)) for f in files} == {f.name: "0o600" for f in files}
        assert (oct(mode(tmp_path / "a")), oct(mode(tmp_path / "a" / "b"))) == ("0o700", "0o700")
    finally:
        store.close()


def test_an_existing_file_and_folder_keep_their_modes(tmp_path: Path, umask: int) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    os.chmod(folder, 0o750)
    path = folder / "store.sqlite3"
    SQLiteStore(path).close()
    os.chmod(path, 0o640)  # the owner's choice, e.g. a group that reads the store

    SQLiteStore(path).close()

    assert (oct(mode(folder)), oct(mode(path))) == ("0o750", "0o640")


def test_durable_run_creates_an_owner_only_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask: int
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))  # examples
    path = tmp_path / "state" / "durable.sqlite3"

    code = durable_cli(["--store", str(path), "--log-level", "error", "run",
                        "examples.hello_durable.workflow:hello", "--input",
                        '{"order_id": "A-1", "amount": 1}'])  # fmt: skip

    assert code == 0
    assert (oct(mode(path.parent)), oct(mode(path))) == ("0o700", "0o600")


def test_a_path_under_a_file_is_a_store_error(tmp_path: Path) -> None:
    from durable_core import StoreError

    (tmp_path / "plain").write_text("not a folder")
    with pytest.raises(StoreError, match="cannot create the SQLite store"):
        SQLiteStore(tmp_path / "plain" / "store.sqlite3")
