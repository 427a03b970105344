"""Load windows on a real Milvus 2.3.5: loaded at the window's start, released at its end, one call each.

Cron starts are whole minutes, so the window opens at the next whole minute (at most about a minute of
waiting) and lasts a few seconds. The operator resyncs only every 30 s here: a call on time can only come
from the loop waking at the transition, not from a resync that happens to fall near it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import Figures
from tests.e2e.helpers import Kube, OperatorProcess, load_states, new_collection, wait_for
from tests.testenv.kube import ControlPlane
from tests.testenv.milvus import MilvusServer

WINDOW_SECONDS = 10  # longer than a load of 200 rows takes here, short for the CI's wall time
LEAD_SECONDS = 5  # the resource is created and seen outside its window before the window opens
RESYNC_SECONDS = 30
ONE_RECHECK = 5.0  # seconds: a pass woken at the boundary acts well within it; a resync could be 30 s late


def _calls(operator: OperatorProcess, method: str) -> float:
    return operator.metric("milvusops_load_release_calls_total", method=method)


def _seconds_to_call(operator: OperatorProcess, method: str, boundary: datetime) -> float:
    """Seconds from `boundary` until the operator counts its first `method` call (negative: it came early)."""

    def counted() -> float | None:
        return time.time() if _calls(operator, method) >= 1 else None

    seen = wait_for(counted, (boundary - datetime.now(UTC)).total_seconds() + 40, f"{method} call", interval=0.1)
    return seen - boundary.timestamp()


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_short_window_loads_at_its_start_and_releases_at_its_end(
    control_plane: ControlPlane,
    kube: Kube,
    namespace: str,
    milvus: MilvusServer,
    start_operator: Callable[..., OperatorProcess],
    figures: Figures,
) -> None:
    operator = start_operator(MILVUSOPS_RESYNC_SECONDS=str(RESYNC_SECONDS))
    collection = new_collection(milvus, ["p"])
    soonest = datetime.now(UTC) + timedelta(seconds=LEAD_SECONDS)
    opens = soonest.replace(second=0, microsecond=0) + timedelta(minutes=1)
    closes = opens + timedelta(seconds=WINDOW_SECONDS)
    start = f"{opens.minute} {opens.hour} {opens.day} {opens.month} *"
    window = {"start": start, "durationSeconds": WINDOW_SECONDS, "timeZone": "UTC"}
    kube.create(
        namespace, "windowed", {"collectionName": collection, "state": "Loaded", "schedule": {"windows": [window]}}
    )

    assert kube.get(namespace, "windowed")["spec"]["schedule"]["outsideWindows"] == "Released"  # defaulted
    # before the window: Loaded in spec, Released as the schedule wants it now, and in sync that way
    ready = kube.wait_reason(namespace, "windowed", "InSync", timeout=30)
    assert ready["message"].endswith("(outside every load window)")
    assert kube.get(namespace, "windowed")["status"]["schedule"] == {"nextTransition": _stamp(opens)}
    assert set(load_states(milvus, collection).values()) == {"NotLoad"}

    loaded_after = _seconds_to_call(operator, "load_collection", opens)
    wait_for(lambda: set(load_states(milvus, collection).values()) == {"Loaded"}, 30, "loaded in the window")
    status = wait_for(
        lambda: (s := kube.get(namespace, "windowed")["status"]).get("schedule", {}).get("activeWindow") == 0 and s,
        10,
        "status shows window 0 open",
    )
    assert status["schedule"]["nextTransition"] == _stamp(closes)
    wide = control_plane.kubectl("get", "mcol", "windowed", "-n", namespace, "-o", "wide").stdout.split("\n")
    assert wide[0].split()[3:6] == ["LOADED", "WINDOW", "READY"] and wide[1].split()[4] == "0"

    released_after = _seconds_to_call(operator, "release_collection", closes)
    wait_for(lambda: set(load_states(milvus, collection).values()) == {"NotLoad"}, 30, "released after the window")
    # Milvus answers NotLoad as soon as the release call returns; the pass that made it writes status after
    closed = wait_for(lambda: _outside_windows(kube.get(namespace, "windowed")), 30, "status outside every window")
    assert "activeWindow" not in closed["status"]["schedule"]

    figures.record("load window: seconds from its start to load_collection", f"{loaded_after:.2f} s")
    figures.record("load window: seconds from its end to release_collection", f"{released_after:.2f} s")
    assert 0 <= loaded_after < ONE_RECHECK and 0 <= released_after < ONE_RECHECK
    calls = {method: _calls(operator, method) for method in ("load_collection", "release_collection")}
    calls |= {method: _calls(operator, method) for method in ("load_partitions", "release_partitions")}
    assert calls == {"load_collection": 1, "release_collection": 1, "load_partitions": 0, "release_partitions": 0}
    reasons = [
        e.reason for e in sorted(kube.events(namespace, "windowed"), key=lambda e: e.metadata.creation_timestamp)
    ]
    assert [r for r in reasons if r.startswith("Window")] == ["WindowClosed", "WindowOpened", "WindowClosed"]
    assert "DriftCorrected" not in reasons  # the schedule's calls are not drift


def _outside_windows(body: dict[str, Any]) -> dict[str, Any] | None:
    """The resource once its status says InSync outside every window, else None."""
    ready: dict[str, Any] = next((c for c in body.get("status", {}).get("conditions", []) if c["type"] == "Ready"), {})
    outside = str(ready.get("message", "")).endswith("(outside every load window)")
    return body if ready.get("reason") == "InSync" and outside else None
