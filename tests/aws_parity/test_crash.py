"""A handler process killed in the middle of a step, on both SDKs.

The first run of the ``slow`` step is killed (SIGKILL, by PID) once its START is visible in
the history (or, for an SDK that sends none, 1.5 s after the body began); the emulator
re-invokes the execution, which finishes. Both histories are compared as usual.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from lambda_service.emulator import REGION, Emulator, InvokeServer, Subprocess

from .parity_history import assert_same_history
from .parity_run import ParityRunner
from .parity_xfail import diff


def _spec(target: str, emu: Emulator, marker: Path, semantics: str) -> Subprocess:
    spec = Subprocess(
        f"aws_parity.parity_crash:{target}",
        env={
            "CRASH_MARKER": str(marker),
            "CRASH_SEMANTICS": semantics,
            "AWS_ENDPOINT_URL_LAMBDA": emu.url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
        },
    )
    seen: dict[str, float] = {}

    def kill_when() -> bool:
        if spec.killed or not marker.exists():
            return False
        since = seen.setdefault("marker", time.monotonic())
        if time.monotonic() - since > 1.5:
            return True
        arn = marker.with_suffix(".arn")  # written by on_start
        if not arn.exists():
            return False
        history = emu.history(arn.read_text())
        return any(e["EventType"] == "StepStarted" and e.get("Name") == "slow" for e in history)

    spec.kill_when = kill_when
    return spec


CASES = ["crash-at-least-once", "crash-at-most-once"]


@pytest.mark.parametrize("case", [diff(c) for c in CASES])
def test_crash_mid_step_history_matches_aws(
    parity: ParityRunner,
    parity_emulator: Emulator,
    parity_server: InvokeServer,
    tmp_path: Path,
    case: str,
) -> None:
    semantics = case.removeprefix("crash-")
    specs = {}
    for sdk, target in (("aws", "aws_handler"), ("ours", "ours_handler")):
        spec = _spec(target, parity_emulator, tmp_path / f"{sdk}.marker", semantics)
        parity_server.register(f"parity-{case}-{sdk}", spec)
        specs[sdk] = spec

    def on_start(function: str, arn: str) -> None:
        sdk = function.rsplit("-", 1)[1]
        (tmp_path / f"{sdk}.arn").write_text(arn)

    aws, ours = parity.run_served(
        f"parity-{case}-aws", f"parity-{case}-ours", {}, timeout=90, on_start=on_start
    )
    assert specs["aws"].killed == 1 and specs["ours"].killed == 1
    assert_same_history(aws.history, ours.history)
    assert aws.status == ours.status == "SUCCEEDED"
