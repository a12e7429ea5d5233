"""Callback tokens are masked in ``durable run`` / ``show`` / ``list`` unless ``--show-tokens``."""

from __future__ import annotations

from .conftest import Durable

APPROVAL = ("run", "cli_flows:approval", "--input", '{"what": "refund"}', "--id", "t-1")


def _token(durable: Durable, execution_id: str) -> str:
    ops = durable("show", execution_id, "--json", "--show-tokens").json()["operations"]
    (token,) = [op["callback_id"] for op in ops if op.get("callback_id")]
    assert isinstance(token, str) and len(token) == 43
    return token


def test_show_masks_tokens_in_text_and_json_unless_asked(durable: Durable) -> None:
    assert durable(*APPROVAL).code == 0
    token = _token(durable, "t-1")

    text = durable("show", "t-1")
    as_json = durable("show", "t-1", "--json")
    listed = durable("list")

    for shown in (text, as_json, listed):
        assert shown.code == 0, shown.err
        assert token not in shown.out
        assert token[:5] not in shown.out  # no more than the first 4 characters
    assert f"token {token[:4]}…" in text.out
    (record,) = [op for op in as_json.json()["operations"] if op["name"] == "approval"]
    assert record["callback_id"] == f"{token[:4]}…"
    assert token in durable("show", "t-1", "--show-tokens").out


def test_the_masked_token_from_json_is_not_a_token(durable: Durable) -> None:
    durable(*APPROVAL)
    ops = durable("show", "t-1", "--json").json()["operations"]
    masked = next(op["callback_id"] for op in ops if op.get("callback_id"))

    r = durable("callback", "succeed", masked)

    assert r.code == 2
    assert "that is not a callback token" in r.err


def test_a_privileged_callback_gets_no_completion_hint_and_is_refused(durable: Durable) -> None:
    r = durable("run", "cli_flows:owner_only", "--id", "p-1", "--show-tokens")
    assert r.code == 0, r.err
    assert "privileged: only its owner's API completes it" in r.out
    assert "callback succeed" not in r.out
    token = _token(durable, "p-1")

    refused = durable("callback", "succeed", token, "--payload", '"forged"')

    assert refused.code == 2
    assert "error: callback 'owner-decision' of execution 'p-1' is privileged" in refused.err
    assert "Nothing was changed" in refused.err
    assert "privileged" in durable("show", "p-1").out
