"""``mount(app)``: the console's page, cookie, headers and assets, over HTTP (no browser).

Also checks the assets themselves: everything they load is their own (no CDN, the
machines are offline) and no script ever turns API data into markup.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from durable_core.server.console import CONTENT_SECURITY_POLICY, CSRF_COOKIE, mount

STATIC = Path(__file__).resolve().parents[2] / "durable_core" / "server" / "console" / "static"


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    mount(app)
    return TestClient(app)


def test_the_page_sets_a_random_strict_csrf_cookie_that_the_script_can_read(
    client: TestClient,
) -> None:
    first = client.get("/console/")
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/html")
    cookie = first.headers["set-cookie"]
    assert re.match(rf"{CSRF_COOKIE}=[A-Za-z0-9_-]{{43}};", cookie)
    assert "SameSite=strict" in cookie and "Path=/" in cookie
    assert "HttpOnly" not in cookie and "Secure" not in cookie  # plain http on 127.0.0.1
    other = TestClient(client.app).get("/console/").cookies[CSRF_COOKIE]
    assert other != first.cookies[CSRF_COOKIE]


def test_a_well_formed_cookie_is_kept_and_a_bad_one_replaced(client: TestClient) -> None:
    token = "A" * 43
    client.cookies.set(CSRF_COOKIE, token)
    kept = client.get("/console/")
    assert kept.cookies[CSRF_COOKIE] == token
    client.cookies.set(CSRF_COOKIE, "short")
    replaced = client.get("/console/")
    assert replaced.cookies[CSRF_COOKIE] != "short"
    assert len(replaced.cookies[CSRF_COOKIE]) == 43


def test_over_https_the_cookie_is_secure() -> None:
    app = FastAPI()
    mount(app)
    response = TestClient(app, base_url="https://console.example").get("/console/")
    assert "Secure" in response.headers["set-cookie"]


def test_the_page_forbids_inline_and_foreign_scripts(client: TestClient) -> None:
    response = client.get("/console/")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert "<script>" not in response.text  # only src= modules, which the CSP allows


def test_console_without_slash_redirects_and_assets_are_served(client: TestClient) -> None:
    redirect = client.get("/console", follow_redirects=False)
    assert redirect.status_code == 308 and redirect.headers["location"] == "/console/"
    page = client.get("/console/").text
    referenced = re.findall(r'(?:src|href)="static/([^"]+)"', page)
    assert sorted(referenced) == ["app.js", "console.css"]
    for name in sorted(p.name for p in STATIC.iterdir() if p.suffix in (".js", ".css")):
        asset = client.get(f"/console/static/{name}")
        assert asset.status_code == 200, name
        kind = "javascript" if name.endswith(".js") else "css"
        assert kind in asset.headers["content-type"], name
    assert client.get("/console/static/nope.js").status_code == 404
    assert client.get("/console/static/../__init__.py").status_code == 404


def test_the_assets_load_nothing_from_elsewhere() -> None:
    for path in STATIC.iterdir():
        text = path.read_text(encoding="utf-8")
        urls = re.findall(r"https?://[^\s\"')]+", text)
        assert urls == [] or all(u == "http://www.w3.org/2000/svg" for u in urls), path.name
        assert "@import" not in text, path.name
        for imported in re.findall(r'from "([^"]+)"', text):
            assert imported.startswith("./") and (STATIC / imported[2:]).is_file(), imported


def test_no_script_turns_data_into_markup() -> None:
    sinks = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function"
    )
    for path in STATIC.glob("*.js"):
        lines = path.read_text(encoding="utf-8").splitlines()
        code = [line for line in lines if not line.lstrip().startswith(("//", "*", "/*"))]
        assert not sinks.findall("\n".join(code)), path.name
