"""The web console: static assets shipped in the package, served by the API's own app.

``mount(app)`` adds three things to a FastAPI app:

- ``GET /console/``: the single page (``static/index.html``), with a strict
  Content-Security-Policy, and the ``durable_csrf`` cookie the console's forms echo in the
  ``X-CSRF-Token`` header (``GET /console`` redirects there);
- ``GET /console/static/...``: the page's JavaScript modules and stylesheet;
- nothing else: the console only calls the JSON API under ``/api/v1`` with the API key the
  operator types in, so it has no routes, state or privileges of its own.

Invariants:
- The assets are plain files in the package (no CDN, no build step): the page works offline.
- The page never puts API data into markup: every value is set as text (see
  ``static/dom.js``), and the CSP forbids inline scripts, so an execution's payload cannot
  run code in the operator's browser.
- The CSRF cookie is random (``secrets``), ``SameSite=Strict``, readable by the page's
  script (the double-submit pattern needs it), ``Secure`` when served over HTTPS, and kept
  if the browser already has a well-formed one (several tabs share it).
"""

from __future__ import annotations

import re
import secrets
from importlib import resources
from typing import TYPE_CHECKING

from fastapi import Request  # at run time: FastAPI reads the handler's annotations
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

if TYPE_CHECKING:
    from fastapi import FastAPI

CSRF_COOKIE = "durable_csrf"
"""The cookie the console reads and echoes in ``CSRF_HEADER`` on every mutating request."""
CSRF_HEADER = "X-CSRF-Token"
PREFIX = "/console"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,128}")

__all__ = ["CONTENT_SECURITY_POLICY", "CSRF_COOKIE", "CSRF_HEADER", "mount"]


def mount(app: FastAPI) -> None:
    """Serve the console at ``/console/`` on ``app`` (assets under ``/console/static/``)."""
    static = resources.files(__package__) / "static"
    index = (static / "index.html").read_text(encoding="utf-8")

    async def console_index(request: Request) -> HTMLResponse:
        response = HTMLResponse(index, headers=_page_headers())
        current = request.cookies.get(CSRF_COOKIE, "")
        token = current if _TOKEN.fullmatch(current) else secrets.token_urlsafe(32)
        response.set_cookie(
            CSRF_COOKIE,
            token,
            path="/",
            samesite="strict",
            httponly=False,  # the page's script reads it to send it back as the header
            secure=request.url.scheme == "https",
        )
        return response

    async def console_redirect() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=308)

    app.add_api_route(f"{PREFIX}/", console_index, methods=["GET"], include_in_schema=False)
    app.add_api_route(PREFIX, console_redirect, methods=["GET"], include_in_schema=False)
    app.mount(
        f"{PREFIX}/static",
        StaticFiles(directory=str(static)),
        name="console-static",
    )


def _page_headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
