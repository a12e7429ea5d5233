"""AWS's durable execution emulator and a local Lambda Invoke endpoint, for the tests.

- :class:`InvokeServer` serves the Lambda Invoke API (``POST /2015-03-31/functions/{name}/
  invocations``) on 127.0.0.1 and dispatches by function name to handlers registered in
  this process, or to a fresh subprocess per invocation (so a test can kill one).
- :class:`Emulator` runs ``dex-local-runner start-server`` (from
  ``aws-durable-execution-sdk-python-testing``) on 127.0.0.1 with dummy credentials and
  time skipping, pointed at the invoke server; it is stopped by its PID.

Both bind loopback only. Waiting is always a bounded poll of the emulator's API.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PYTHONPATH = os.pathsep.join([str(ROOT / "tests"), str(ROOT)])
"""Test modules import as pytest imports them (``lambda_service.x``), plus the repository."""
REGION = "us-east-1"
ACCOUNT = "123456789012"
Handler = Callable[[dict[str, Any]], dict[str, Any]]


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def runner_path() -> Path | None:
    """``dex-local-runner`` next to this interpreter, if the package is installed."""
    path = Path(sys.executable).parent / "dex-local-runner"
    return path if path.exists() else None


@dataclass
class Subprocess:
    """Run a handler in a fresh ``python -m lambda_service.lambda_proc`` per invocation.

    ``kill_when`` is polled while the process runs; when it returns True the process is
    killed (SIGKILL, by PID) and the invocation answers like a crashed Lambda runtime.
    """

    target: str
    """``module:attribute`` of the handler."""
    env: dict[str, str] = field(default_factory=dict)
    kill_when: Callable[[], bool] | None = None
    killed: int = 0
    runs: int = 0


class InvokeServer:
    """The Lambda Invoke API on 127.0.0.1, dispatching by function name."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler | Subprocess] = {}
        self.invocations: list[tuple[str, str, dict[str, Any]]] = []
        """(function name, invocation type, event) of every invoke received."""
        self.errors: list[tuple[str, str, str]] = []
        """(function name, error type, message) of every invocation that raised."""
        self.responses: list[tuple[str, Any]] = []
        """(function name, response) of every invocation that answered."""
        self.qualifiers: list[tuple[str, str | None]] = []
        """(function name, ``Qualifier`` query parameter) of every invoke received."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        server = self

        class _Request(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                path, _, query = self.path.partition("?")
                name = urllib.parse.unquote(path.split("/functions/", 1)[-1].split("/", 1)[0])
                qualifier = urllib.parse.parse_qs(query).get("Qualifier", [None])[0]
                server.qualifiers.append((name, qualifier))
                kind = self.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
                status, headers, out = server.dispatch(name, kind, body)
                data = json.dumps(out).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), _Request)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def register(self, name: str, handler: Handler | Subprocess) -> None:
        """Serve ``name`` with ``handler``."""
        self.handlers[name] = handler

    def dispatch(self, name: str, kind: str, event: Any) -> tuple[int, dict[str, str], Any]:
        self.invocations.append((name, kind, event))
        handler = self.handlers.get(name)
        if handler is None:
            return (
                404,
                {"X-Amzn-ErrorType": "ResourceNotFoundException"},
                {
                    "Type": "User",
                    "message": f"Function not found: {name}",
                },
            )
        if kind == "Event":
            threading.Thread(target=self._run, args=(name, handler, event), daemon=True).start()
            return 202, {}, None
        return self._run(name, handler, event)

    def _run(
        self, name: str, handler: Handler | Subprocess, event: Any
    ) -> tuple[int, dict[str, str], Any]:
        try:
            if isinstance(handler, Subprocess):
                return 200, {}, _in_subprocess(handler, event)
            response = handler(event)
            self.responses.append((name, response))
            return 200, {}, response
        except Exception as exc:  # like Lambda: a function error, not an HTTP error
            self.errors.append((name, type(exc).__name__, str(exc)))
            error = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            return 200, {"X-Amz-Function-Error": "Unhandled"}, error

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class FunctionCrashedError(RuntimeError):
    """The handler's process died (killed) before answering."""


def _in_subprocess(spec: Subprocess, event: Any) -> Any:
    env = {**os.environ, **spec.env, "PYTHONPATH": PYTHONPATH}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lambda_service.lambda_proc", spec.target],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    spec.runs += 1
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(event).encode())
    proc.stdin.close()
    deadline = time.monotonic() + 120
    while proc.poll() is None:
        if spec.kill_when is not None and spec.kill_when():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            spec.killed += 1
            raise FunctionCrashedError(
                f"Runtime exited with error: signal: killed (pid {proc.pid})"
            )
        if time.monotonic() > deadline:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            raise FunctionCrashedError("Task timed out")
        time.sleep(0.02)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    if proc.returncode != 0:
        raise FunctionCrashedError(f"handler process exited {proc.returncode}: {err[-2000:]!r}")
    return json.loads(out)


class Emulator:
    """``dex-local-runner start-server`` on 127.0.0.1, with a boto3 client for it."""

    def __init__(
        self, runner: Path, invoke_url: str, *, function_configs: Mapping[str, Any]
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": REGION,
        }
        cmd = [
            str(runner), "start-server", "--host", "127.0.0.1", "--port", str(self.port),
            "--lambda-endpoint", invoke_url, "--local-runner-region", REGION,
            "--skip-time", "--log-level", "WARNING", "--execution-timeout", "120",
            "--invocation-timeout", "120", "--function-configs", json.dumps(function_configs),
        ]  # fmt: skip
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"dex-local-runner-{self.port}.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(300):
            if self.proc.poll() is not None:
                raise RuntimeError(f"dex-local-runner exited: {self.log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError("dex-local-runner did not answer /health within 15 s")
        self.client = client(self.url)

    def start(self, function: str, event: Any, *, name: str | None = None) -> str:
        """Start an execution through the emulator's own route; return its ARN."""
        body = {
            "AccountId": ACCOUNT,
            "FunctionName": function,
            "FunctionQualifier": "$LATEST",
            "ExecutionName": name or f"{function}-{time.monotonic_ns()}",
            "ExecutionTimeoutSeconds": 120,
            "ExecutionRetentionPeriodDays": 1,
            "Input": json.dumps(event),
        }
        request = urllib.request.Request(
            f"{self.url}/start-durable-execution",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(json.loads(response.read())["ExecutionArn"])

    def wait(
        self,
        arn: str,
        *,
        timeout: float = 60,
        until: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """Poll GetDurableExecution until it is no longer RUNNING (or ``until`` holds)."""
        done = until or (lambda ex: ex["Status"] != "RUNNING")
        deadline = time.monotonic() + timeout
        while True:
            ex = dict(self.client.get_durable_execution(DurableExecutionArn=arn))
            if done(ex):
                return ex
            if time.monotonic() > deadline:
                last = [(e.get("EventType"), e.get("Name")) for e in self.history(arn)[-8:]]
                raise AssertionError(
                    f"execution {arn} still {ex['Status']} after {timeout} s; "
                    f"its last history events: {last}"
                )
            time.sleep(0.05)

    def history(self, arn: str) -> list[dict[str, Any]]:
        """Every history event of an execution, in order."""
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"DurableExecutionArn": arn, "IncludeExecutionData": True}
        while True:
            page = self.client.get_durable_execution_history(**kwargs)
            events += page.get("Events", [])
            if not page.get("NextMarker"):
                return events
            kwargs["Marker"] = page["NextMarker"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Deploy:
    """Serve durable functions as Lambda functions to the emulator (the ``deploy`` fixture)."""

    def __init__(self, server: InvokeServer, emu: Emulator) -> None:
        self.server = server
        self.emu = emu

    def __call__(self, name: str, fn: Any, *, client: Any = None, **options: Any) -> Any:
        """Serve ``fn`` as function ``name``; ``options`` are ``LambdaOptions`` fields."""
        from durable_core.aws_lambda import LambdaOptions, durable_handler

        handler = durable_handler(
            fn, client=client or self.emu.client, options=LambdaOptions(**options)
        )
        self.server.register(name, lambda event: handler(event, None))
        return handler


def client(url: str) -> Any:
    """A boto3 ``lambda`` client for the emulator (dummy credentials, standard retries)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"mode": "standard", "max_attempts": 5}),
    )


def events(history: list[dict[str, Any]], *types: str) -> list[tuple[str, str | None]]:
    """``(EventType, Name)`` of the history's events, optionally only those of ``types``."""
    return [
        (e["EventType"], e.get("Name")) for e in history if not types or e["EventType"] in types
    ]
