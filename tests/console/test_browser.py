"""The console in a real headless chromium, against the real server app on a real SQLite store.

Every execution the pages show was really run (see ``scenarios.py``): the tour rolled back
because the car was sold out, the order waiting for its shipper, a payment saga parked on a
refund that keeps failing. Screenshots go to the ``shots`` directory; the tour rollback's
saga graph also to docs/img/console-saga-graph.png, the README's picture.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import OPERATE_KEY, READ_KEY, Console
from .scenarios import MARKUP

README_SHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "console-saga-graph.png"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def open_console(
    browser: Any, console: Console, key: str, viewport: dict[str, int] = DESKTOP
) -> Any:
    """A new page signed in with ``key``, on the execution list; page errors fail the test."""
    page = browser.new_page(viewport=viewport)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    page.goto(f"{console.url}/console/")
    page.fill("#api-key", key)
    page.click("#key-submit")
    page.wait_for_selector("a.exec-link")
    return page


def node(page: Any, kind: str, step: str) -> Any:
    return page.locator(f"svg.saga-graph g.node[data-kind='{kind}'][data-step='{step}']")


def rows(page: Any) -> list[str]:
    return page.locator("a.exec-link").all_inner_texts()


def test_sign_in_keeps_the_key_in_session_storage_and_shows_whoami(
    browser: Any, console: Console
) -> None:
    page = browser.new_page(viewport=DESKTOP)
    page.goto(f"{console.url}/console/")
    page.fill("#api-key", "not-a-key")
    page.click("#key-submit")
    page.wait_for_selector("#key-error:has-text('not accepted')")
    page.fill("#api-key", READ_KEY)
    page.click("#key-submit")
    page.wait_for_selector("a.exec-link")
    assert page.inner_text("#actor") == "ana@read"
    assert page.inner_text("#role") == "read"
    storage = page.evaluate("() => [sessionStorage.length, localStorage.length, document.cookie]")
    assert page.evaluate("() => Object.values(sessionStorage)").count(READ_KEY) == 1
    assert storage[1] == 0 and READ_KEY not in storage[2]
    page.click("#sign-out")
    page.wait_for_selector("#api-key")
    assert page.evaluate("() => Object.values(sessionStorage)").count(READ_KEY) == 0
    page.close()


def test_list_filters_and_the_tour_rollback_graph(
    browser: Any, console: Console, shots: Path
) -> None:
    page = open_console(browser, console, READ_KEY)
    assert sorted(rows(page)) == sorted(console.ids)
    page.screenshot(path=str(shots / "list-1280.png"), full_page=True)

    page.select_option("#f-saga_status", "compensated")
    page.click("text=Apply filters")
    page.wait_for_function("() => document.querySelectorAll('a.exec-link').length === 1")
    assert rows(page) == ["tour-rollback"]
    assert "saga_status=compensated" in page.url

    page.click("#clear-filters")
    page.fill("#f-q", "tour")
    page.select_option("#f-status", "SUCCEEDED")
    page.click("text=Apply filters")
    page.wait_for_function("() => document.querySelectorAll('a.exec-link').length === 2")
    assert sorted(rows(page)) == ["tour-escape", "tour-ok"]
    page.click("#clear-filters")
    page.fill("#f-waiting", "shipper")
    page.click("text=Apply filters")
    page.wait_for_function("() => document.querySelectorAll('a.exec-link').length === 1")
    assert rows(page) == ["order-waiting"]

    page.goto(f"{console.url}/console/#/?saga_status=compensated")
    page.click("a.exec-link:has-text('tour-rollback')")
    page.wait_for_selector("svg.saga-graph")
    forward = {s: node(page, "forward", s) for s in ("book-flight", "book-hotel", "book-car")}
    assert {s: n.get_attribute("data-status") for s, n in forward.items()} == {
        "book-flight": "succeeded",
        "book-hotel": "succeeded",
        "book-car": "failed",
    }
    assert "✗ failed" in forward["book-car"].text_content()
    undo = {s: node(page, "compensation", s) for s in ("book-flight", "book-hotel")}
    assert node(page, "compensation", "book-car").count() == 0  # it never booked
    for n in undo.values():
        assert n.get_attribute("data-status") == "compensated"
        assert "✓ compensated" in n.text_content()
    assert "undo book-hotel" in undo["book-hotel"].text_content()
    # the rollback runs right to left, beneath the forward path
    box = {s: n.bounding_box() for s, n in undo.items()}
    top = forward["book-flight"].bounding_box()
    assert box["book-hotel"]["x"] > box["book-flight"]["x"]
    assert box["book-flight"]["y"] > top["y"] + top["height"]
    assert page.locator("svg.saga-graph .edge.rollback").count() == 2
    desc = page.inner_text("figure.graph figcaption")
    assert "Rollback, in order: compensate:book-hotel: compensated, compensate:book-flight" in desc
    assert "SoldOutError: no airport car at DAD" in page.inner_text("#main")
    figure = page.locator("section[aria-labelledby='saga-h']")
    figure.screenshot(path=str(shots / "tour-rollback-graph.png"))
    README_SHOT.parent.mkdir(parents=True, exist_ok=True)
    figure.screenshot(path=str(README_SHOT))
    page.screenshot(path=str(shots / "tour-rollback-1280.png"), full_page=True)
    assert page.errors == []
    page.close()


def test_order_page_shows_the_pending_shipper_callback_and_completes_it(
    browser: Any, console: Console, shots: Path
) -> None:
    page = open_console(browser, console, OPERATE_KEY)
    page.click("a.exec-link:has-text('order-waiting')")
    callback = page.locator("li.callback[data-callback='shipper-confirmation']")
    callback.wait_for()
    assert "waiting" in callback.inner_text() and "times out" in callback.inner_text()
    callback.locator("summary").click()
    assert "/api/v1/callbacks/TOKEN/succeed" in callback.inner_text()
    assert node(page, "forward", "shipper-confirmation").get_attribute("data-status") == "waiting"
    page.screenshot(path=str(shots / "order-waiting.png"), full_page=True)

    callback.locator("button:has-text('Complete')").click()
    page.fill("#field-result", '{"tracking": "VNP-20260314-001", "carrier": "VNPost"}')
    page.fill("#field-reason", "shipper phoned: picked up at 10:05")
    page.click("#dialog-ok")
    page.wait_for_selector("h2#saga-h .badge[data-status='completed']")
    assert page.locator("li.callback").count() == 0
    assert "VNP-20260314-001" in page.inner_text("#main")  # the result, pretty-printed
    [sent] = console.requests
    assert (
        sent["path"]
        == "/api/v1/executions/order-waiting/callbacks/" + sent["path"].split("/")[-2] + "/succeed"
    )
    assert sent["csrf"] and sent["csrf"] == sent["cookie"]
    assert sent["body"] == {
        "result": {"tracking": "VNP-20260314-001", "carrier": "VNPost"},
        "reason": "shipper phoned: picked up at 10:05",
    }
    assert page.errors == []
    page.close()


def test_without_an_operator_callback_endpoint_the_page_shows_only_the_webhook(
    browser: Any, console: Console
) -> None:
    page = browser.new_page(viewport=DESKTOP)
    page.route("**/api/v1/openapi.json", lambda route: route.fulfill(json={"paths": {}}))
    page.goto(f"{console.url}/console/")
    page.fill("#api-key", OPERATE_KEY)
    page.click("#key-submit")
    page.click("a.exec-link:has-text('order-waiting')")
    callback = page.locator("li.callback[data-callback='shipper-confirmation']")
    callback.wait_for()
    assert callback.locator("button").count() == 0
    assert callback.locator("summary:has-text('How the external system completes it')").count() == 1
    page.close()


def test_retry_a_parked_compensation_and_watch_the_status_change(
    browser: Any, console: Console, shots: Path
) -> None:
    page = open_console(browser, console, OPERATE_KEY)
    page.click("a.exec-link:has-text('payment-parked')")
    undo = node(page, "compensation", "authorize")
    undo.wait_for()
    assert undo.get_attribute("data-parked") == "true" and "‖ parked" in undo.text_content()
    pivot = node(page, "forward", "capture")
    assert "pivot" in pivot.text_content() and pivot.locator("rect.pivot").count() == 1
    assert "refund service unavailable (HTTP 503)" in page.inner_text(".parked")
    assert [b.inner_text() for b in page.locator(".parked button").all()] == [
        "Retry compensation…",
        "Skip compensation…",
        "Resolve by hand…",
    ]
    page.screenshot(path=str(shots / "parked-before.png"), full_page=True)

    page.click("#saga-retry")
    page.click("#dialog-ok")  # no reason: the dialog says so and sends nothing
    assert "Reason is required" in page.inner_text("#dialog-error")
    assert console.requests == []
    console.refund_broken.unlink()  # the refund service is back
    page.fill("#field-reason", "refund service restored (INC-42)")
    page.click("#dialog-ok")
    page.wait_for_selector(
        "svg.saga-graph g.node[data-kind='compensation'][data-status='compensated']"
    )
    assert page.locator("h2#saga-h .badge").get_attribute("data-status") == "compensated"
    assert page.locator(".parked").count() == 0
    [sent] = console.requests
    assert sent["path"] == "/api/v1/executions/payment-parked/saga/retry"
    assert sent["csrf"] and sent["csrf"] == sent["cookie"]
    assert sent["body"] == {"reason": "refund service restored (INC-42)"}
    page.screenshot(path=str(shots / "parked-after-retry.png"), full_page=True)

    page.click("text=All executions")  # the list shows the new status too
    page.wait_for_selector("tr[data-id='payment-parked'] .badge[data-status='compensated']")
    assert page.errors == []
    page.close()


def test_a_read_key_sees_no_operator_buttons(browser: Any, console: Console) -> None:
    page = open_console(browser, console, READ_KEY)
    page.goto(f"{console.url}/console/#/executions/payment-parked")
    page.wait_for_selector(".parked")
    assert page.locator(".parked button, #exec-cancel, #exec-terminate").count() == 0
    assert "read role" in page.inner_text(".parked")
    page.close()


def test_live_refresh_shows_a_change_made_elsewhere(browser: Any, console: Console) -> None:
    from durable_core import Runtime
    from durable_core.stores.sqlite import SQLiteStore
    from saga.operator import resolve

    from .scenarios import FUNCTIONS

    page = open_console(browser, console, READ_KEY)
    assert page.get_attribute("#live-toggle", "aria-pressed") == "true"
    # a compensation that failed for good waits for an operator: 'compensation failed'
    page.wait_for_selector("tr[data-id='payment-parked'] .badge[data-status='compensation_failed']")
    runtime = Runtime(SQLiteStore(str(console.store_path)), functions=FUNCTIONS)
    try:
        resolve(runtime, "payment-parked", "released the hold by hand", actor="ops", drive=True)
    finally:
        runtime.store.close()
    page.wait_for_selector(
        "tr[data-id='payment-parked'] .badge[data-status='compensated']", timeout=15_000
    )
    page.click("#live-toggle")
    assert page.get_attribute("#live-toggle", "aria-pressed") == "false"
    assert "paused" in page.inner_text("#live-toggle")
    page.close()


def test_payloads_are_shown_as_text_never_as_markup(browser: Any, console: Console) -> None:
    page = open_console(browser, console, READ_KEY)
    page.goto(f"{console.url}/console/#/executions/tour-escape")
    page.wait_for_selector("pre[aria-label='input']")
    assert f'"traveller": {json.dumps(MARKUP)}' in page.inner_text("pre[aria-label='input']")
    assert page.locator("#main img, #main script").count() == 0
    assert page.evaluate("() => window.__pwned") is None
    page.close()


def test_keyboard_tab_to_a_row_enter_opens_it_and_the_dialog_traps_focus(
    browser: Any, console: Console
) -> None:
    page = open_console(browser, console, OPERATE_KEY)
    page.goto(f"{console.url}/console/#/?q=payment")
    page.wait_for_function("() => document.querySelectorAll('a.exec-link').length === 1")
    page.locator("#f-function").focus()
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.classList.contains('exec-link')"):
            break
    assert page.evaluate("() => document.activeElement.textContent") == "payment-parked"
    page.keyboard.press("Enter")
    page.wait_for_selector("#saga-retry")
    assert page.url.endswith("#/executions/payment-parked")

    page.locator("#saga-skip").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("dialog[open]")
    assert page.evaluate("() => document.activeElement.id") == "field-reason"
    inside = "() => document.getElementById('dialog').contains(document.activeElement)"
    for _ in range(6):
        page.keyboard.press("Tab")
        assert page.evaluate(inside)
    for _ in range(6):
        page.keyboard.press("Shift+Tab")
        assert page.evaluate(inside)
    page.keyboard.press("Escape")
    page.wait_for_selector("dialog:not([open])", state="attached")
    assert page.evaluate("() => document.activeElement.id") == "saga-skip"
    assert console.requests == []
    page.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280x800", "390x844"])
def test_layouts_have_no_horizontal_overflow(
    browser: Any, console: Console, shots: Path, viewport: dict[str, int]
) -> None:
    page = open_console(browser, console, OPERATE_KEY, viewport)
    size = f"{viewport['width']}x{viewport['height']}"
    overflow = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    assert page.evaluate(overflow) <= 0
    page.screenshot(path=str(shots / f"list-{size}.png"), full_page=True)
    for eid in ("tour-rollback", "order-waiting", "payment-parked"):
        page.goto(f"{console.url}/console/#/executions/{eid}")
        page.wait_for_selector("svg.saga-graph")
        assert page.evaluate(overflow) <= 0, eid
        page.screenshot(path=str(shots / f"{eid}-{size}.png"), full_page=True)
    page.close()


def test_pages_follow_the_cursor_forward_and_back(browser: Any, console: Console) -> None:
    page = open_console(browser, console, READ_KEY)
    everything = rows(page)
    page.goto(f"{console.url}/console/#/?limit=2")
    seen: list[str] = []
    pages = 0
    page.wait_for_selector("#list-status:has-text('Page 1: 2 executions')")
    while True:
        pages += 1
        assert page.inner_text("#list-status").startswith(f"Page {pages}:")
        seen += rows(page)
        if page.is_disabled("#next-page"):
            break
        page.click("#next-page")
        page.wait_for_selector(f"#list-status:has-text('Page {pages + 1}:')")
    assert seen == everything and pages == 3
    page.click("#prev-page")
    page.wait_for_selector("#list-status:has-text('Page 2:')")
    assert rows(page) == everything[2:4]
    page.close()
