"""A saga that never rolls back, through a real ``durable serve``: listed as ``running``
then ``completed``, every forward step in its view, the pivot marked."""

from __future__ import annotations

import httpx

from durable_core import Runtime

from .conftest import Served, run_until_idle
from .test_api import _start, _token

PIVOTED = "server.flows:pivoted_trip"


def _listed(c: httpx.Client, saga_status: str) -> list[str]:
    rows = c.get("/api/v1/executions", params={"saga_status": saga_status, "function": PIVOTED})
    assert rows.status_code == 200, rows.text
    return [row["id"] for row in rows.json()["items"]]


def test_a_saga_in_flight_lists_as_running_then_completed_with_its_pivot(
    served: Served, worker: Runtime
) -> None:
    with served.client("oper") as c:
        eid = _start(c, PIVOTED).json()["id"]
        run_until_idle(worker)  # waits for the shipper, past the pivot

        row = next(r for r in c.get("/api/v1/executions").json()["items"] if r["id"] == eid)
        assert row["saga_status"] == "running"
        assert eid in _listed(c, "running") and eid not in _listed(c, "completed")
        page = c.get(f"/api/v1/executions/{eid}").json()
        assert page["saga_status"] == "running"
        steps = page["saga"]["steps"]
        assert [(s["name"], s["status"], s["pivot"]) for s in steps] == [
            ("reserve", "succeeded", False),
            ("charge", "succeeded", True),
            ("shipper", "waiting", False),
        ]
        assert all(s["compensation"] is None for s in steps)

        hook = httpx.Client(base_url=served.url, timeout=10)
        assert hook.post(f"/api/v1/callbacks/{_token(worker, eid, 'shipper')}/succeed").is_success
        run_until_idle(worker)

        page = c.get(f"/api/v1/executions/{eid}").json()
        assert (page["status"], page["saga_status"]) == ("SUCCEEDED", "completed")
        assert [s["name"] for s in page["saga"]["steps"]] == [
            "reserve",
            "charge",
            "shipper",
            "ship",
        ]
        assert [s["name"] for s in page["saga"]["steps"] if s["pivot"]] == ["charge"]
        assert eid in _listed(c, "completed") and eid not in _listed(c, "running")


def test_a_plain_function_has_no_saga_status(served: Served, worker: Runtime) -> None:
    with served.client("oper") as c:
        eid = _start(c, "server.flows:waits_for_approval").json()["id"]
        run_until_idle(worker)
        page = c.get(f"/api/v1/executions/{eid}").json()
        assert (page["saga_status"], page["saga"]) == (None, None)
        rows = c.get("/api/v1/executions", params={"saga_status": "running"}).json()["items"]
        assert eid not in [r["id"] for r in rows]
