"""A fault-injecting HTTP proxy in front of the emulator (a real network hop, no mocks).

Requests pass through to the emulator unchanged unless a fault is queued for their API
(``checkpoint`` or ``state``); a queued fault answers with that HTTP status and an AWS-style
JSON error instead. A queued rewrite changes the emulator's (JSON) answer on its way back.
Every request is counted per API.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections import Counter, deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .emulator import free_port

ERROR_CODES = {
    400: "InvalidParameterValueException",
    429: "TooManyRequestsException",
    500: "ServiceException",
    502: "ServiceException",
    503: "ServiceException",
}


def api_of(path: str) -> str:
    """Which API a request path is (``checkpoint``, ``state``, or ``other``)."""
    tail = path.split("?", 1)[0].rsplit("/", 1)[-1]
    return tail if tail in ("checkpoint", "state") else "other"


class FaultProxy:
    """Forward to ``target``; answer queued faults instead for the APIs they name."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.faults: dict[str, deque[tuple[int, str]]] = {}
        self.rewrites: dict[str, deque[Callable[[dict[str, Any]], dict[str, Any]]]] = {}
        self.seen: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self._lock = threading.Lock()
        proxy = self

        class _Request(BaseHTTPRequestHandler):
            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                api = api_of(self.path)
                fault = proxy._next_fault(api)
                if fault is not None:
                    status, message = fault
                    code = ERROR_CODES[status]
                    data = json.dumps({"__type": code, "Type": "User", "message": message}).encode()
                    self.send_response(status)
                    self.send_header("X-Amzn-ErrorType", code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                request = urllib.request.Request(
                    proxy.target + self.path, data=body, headers=headers, method=self.command
                )
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        status, reply, out = response.status, response.headers, response.read()
                except urllib.error.HTTPError as err:
                    status, reply, out = err.code, err.headers, err.read()
                rewrite = proxy._next_rewrite(api) if status == 200 else None
                if rewrite is not None:
                    out = json.dumps(rewrite(json.loads(out))).encode()
                self.send_response(status)
                for key, value in reply.items():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = _relay  # noqa: N815 - http.server dispatches by these names

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), _Request)
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def inject(self, api: str, *faults: tuple[int, str]) -> None:
        """Answer the next requests to ``api`` with these (status, message) faults."""
        with self._lock:
            self.faults.setdefault(api, deque()).extend(faults)

    def rewrite(self, api: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Pass the next successful answer to ``api`` through ``change``."""
        with self._lock:
            self.rewrites.setdefault(api, deque()).append(change)

    def _next_rewrite(self, api: str) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
        with self._lock:
            queue = self.rewrites.get(api)
            return queue.popleft() if queue else None

    def _next_fault(self, api: str) -> tuple[int, str] | None:
        with self._lock:
            self.seen[api] += 1
            queue = self.faults.get(api)
            if queue:
                self.failed[api] += 1
                return queue.popleft()
            return None

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
