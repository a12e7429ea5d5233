"""``durable retry`` and ``durable fail`` on an execution parked by a code change."""

from __future__ import annotations

import re

import pytest

from .conftest import Durable
from .test_commands import callback_token

WORKER = ("worker", "--until-idle", "--allow-module", "cli_flows")


def _parked(durable: Durable, monkeypatch: pytest.MonkeyPatch, eid: str) -> None:
    assert durable("run", "cli_flows:changing", "--id", eid).code == 0
    token = callback_token(durable, eid, "approval")
    assert durable("callback", "succeed", token, "--payload", '"yes"').code == 0
    monkeypatch.setenv("CLI_FLOWS_CODE", "new")  # deployed while it waited
    worker = durable(*WORKER)
    assert worker.code == 0
    assert "execution parked: non-determinism" in worker.err
    assert f"durable retry {eid}" in worker.err


def test_a_parked_execution_is_shown_and_resumes_after_a_revert_and_retry(
    durable: Durable, monkeypatch: pytest.MonkeyPatch
) -> None:
    _parked(durable, monkeypatch, "ch-1")

    shown = durable("show", "ch-1").out
    assert re.search(r"^status +RUNNING$", shown, flags=re.MULTILINE)
    assert re.search(r"^parked +parked: non-determinism: ", shown, flags=re.MULTILINE)
    assert "'approval-v2' of type CALLBACK" in shown
    assert "parked: non-determinism" in durable("list").out

    monkeypatch.setenv("CLI_FLOWS_CODE", "old")  # the deploy is rolled back
    retried = durable("retry", "ch-1", "--actor", "ops-an")
    assert retried.code == 0, retried.err
    assert "due now" in retried.out
    assert durable(*WORKER).out.startswith("idle: ran 1 invocation(s)")
    assert re.search(r"^status +SUCCEEDED$", durable("show", "ch-1").out, flags=re.MULTILINE)


def test_fail_ends_a_parked_execution_failed_with_the_actor_and_reason(
    durable: Durable, monkeypatch: pytest.MonkeyPatch
) -> None:
    _parked(durable, monkeypatch, "ch-2")

    r = durable("fail", "ch-2", "--reason", "superseded by order 7", "--actor", "ops-binh")
    assert r.code == 0, r.err
    assert "fail of ch-2 recorded" in r.out
    durable(*WORKER)

    shown = durable("show", "ch-2").out
    assert re.search(r"^status +FAILED$", shown, flags=re.MULTILINE)
    assert "OperatorFailedError" in shown
    assert "ops-binh" in shown
    assert "superseded by order 7" in shown
    assert "failed by ops-binh: 'superseded by order 7'; raised at position 2" in shown


def test_retry_and_fail_refuse_an_execution_that_is_not_parked(durable: Durable) -> None:
    durable("run", "cli_flows:changing", "--id", "ch-3")

    for args in (("retry", "ch-3"), ("fail", "ch-3", "--reason", "no")):
        r = durable(*args)
        assert r.code == 2
        assert r.err.startswith("error: execution 'ch-3' is not parked")
    with pytest.raises(SystemExit) as usage:  # --reason is required (argparse exits 2)
        durable("fail", "ch-3")
    assert usage.value.code == 2
    assert durable("retry", "nope").code == 2


def test_a_worker_trusts_the_modules_of_its_folder_by_default_and_nothing_else(
    durable: Durable, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .conftest import HERE

    assert durable("run", "cli_flows:changing", "--id", "here").code == 0
    token = callback_token(durable, "here", "approval")
    durable("callback", "succeed", token, "--payload", '"yes"')
    monkeypatch.chdir(HERE)  # the folder cli_flows.py lives in
    worker = durable("worker", "--until-idle")
    assert worker.out.startswith("idle: ran 1 invocation(s)")
    assert re.search(r"^status +SUCCEEDED$", durable("show", "here").out, flags=re.MULTILINE)

    durable("run", "cli_flows:changing", "--id", "elsewhere")
    token = callback_token(durable, "elsewhere", "approval")
    durable("callback", "succeed", token, "--payload", '"yes"')
    worker = durable("worker", "--until-idle", "--allow-module", "examples")  # not cli_flows
    assert "execution parked: function not registered" in worker.err
    assert "parked: function not registered" in durable("show", "elsewhere").out
