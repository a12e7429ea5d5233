"""Run ``durable`` in-process through ``main(argv)`` on a temp SQLite store."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from durable_core.cli import main

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


@dataclass(frozen=True)
class Result:
    """What one ``durable`` command did."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Durable = Callable[..., Result]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "state" / "durable.sqlite3"


@pytest.fixture
def durable(
    store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Durable:
    """``durable(*args)`` runs ``durable --store <tmp> *args`` and captures its output."""
    monkeypatch.syspath_prepend(str(HERE))  # cli_flows
    monkeypatch.syspath_prepend(str(REPO))  # examples
    monkeypatch.delenv("DURABLE_STORE", raising=False)
    capsys.readouterr()

    def run(*args: str) -> Result:
        code = main(["--store", str(store), "--log-level", "error", *args])
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run
