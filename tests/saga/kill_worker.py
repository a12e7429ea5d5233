"""A ``durable worker`` that freezes at a chosen point of the tour saga, to be killed -9.

Usage (from the repository root)::

    TOUR_HOLD=hotel:cancel:after TOUR_HOLD_MARK=/tmp/mark \\
        python tests/saga/kill_worker.py --store S worker --lease-ttl 1

``TOUR_HOLD`` is ``<provider>:<action>:<before|after>``: the worker stops dead just before the
provider records that request (right after the saga's previous checkpoint) or just after it
(the effect happened, the saga has not checkpointed it). It writes its pid to
``TOUR_HOLD_MARK`` and hangs there until the test kills it.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.getcwd())  # run from the repository root: examples/ is importable

import examples.tour_booking.providers as providers
from durable_core.cli import main

HOLD = os.environ.get("TOUR_HOLD", "")
MARK = os.environ.get("TOUR_HOLD_MARK", "")
_record = providers._record


def _hang() -> None:
    Path(MARK).write_text(str(os.getpid()))
    while True:  # a frozen process, until SIGKILL
        time.sleep(3600)


def _held_record(provider: str, action: str, key: str, ref: str, detail: str) -> bool:
    if f"{provider}:{action}:before" == HOLD:
        _hang()
    new = _record(provider, action, key, ref, detail)
    if f"{provider}:{action}:after" == HOLD:
        _hang()
    return new


providers._record = _held_record

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
