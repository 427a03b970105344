"""The per-MilvusConnection loop: check reachability and report it in status."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import kopf

from milvusops import CONNECTIONS
from milvusops.core.failures import FailureError, Reason
from milvusops.core.model import ResourceRef
from milvusops.core.status import Verdict, conditions
from milvusops.kube.api import KubeApi
from milvusops.runtime.connections import Connections
from milvusops.runtime.settings import Settings
from milvusops.runtime.worker import Worker

log = logging.getLogger("milvusops")

WakeKey = tuple[Any, str | None]  # (metadata.generation, status of the Ready condition)
# woken collections spread over count / this many seconds (capped at a resync): a steady trickle, not one burst
WAKES_PER_SECOND = 100.0


def wake_key(body: Mapping[str, Any]) -> WakeKey:
    """What of a MilvusConnection its collections depend on: its spec (by generation) and whether it is Ready."""
    conditions = (body.get("status") or {}).get("conditions") or []
    ready = next((c.get("status") for c in conditions if c.get("type") == "Ready"), None)
    return ((body.get("metadata") or {}).get("generation"), ready)


class Wake(Enum):
    """Which of a connection's collections an event of the connection concerns."""

    NONE = "none"
    FAILING = "failing"  # the connection is Ready again: those whose last pass failed retry now
    ALL = "all"  # its spec changed: a new endpoint for every one of them


def wakes_collections(previous: WakeKey | None, current: WakeKey) -> Wake:
    """Only a change since the last event wakes any; the first one seen (a start) finds them in their first pass.

    A lost Ready wakes none: an in-sync collection has nothing to redo, and its own next pass finds out.
    """
    if previous is None or previous == current:
        return Wake.NONE
    if previous[0] != current[0]:
        return Wake.ALL
    return Wake.FAILING if current[1] == "True" else Wake.NONE


def wake_delays(count: int, cap_seconds: float, draw: Callable[[], float]) -> list[float]:
    """A random delay per woken collection within a window that grows with their number, up to `cap_seconds`."""
    window = min(cap_seconds, count / WAKES_PER_SECOND)
    return [draw() * window for _ in range(count)]


class ConnectionWorker(Worker):
    plural = CONNECTIONS

    def __init__(self, settings: Settings, kube: KubeApi, pool: Connections) -> None:
        super().__init__(settings, kube)
        self.pool = pool
        self.announced: WakeKey | None = None  # the wake key of the last event its collections were judged on

    def changed_for_collections(self, body: Mapping[str, Any]) -> Wake:
        """Which collections this event concerns (none for a status write of ours)."""
        current = wake_key(body)
        changed = wakes_collections(self.announced, current)
        self.announced = current
        return changed

    async def run(self, body: kopf.Body, stopped: kopf.DaemonStopped) -> None:
        self.reset()
        try:
            if await self.admitted(body, stopped):
                await self._loop(body, stopped)
        finally:
            self.unwatch()

    async def _loop(self, body: kopf.Body, stopped: kopf.DaemonStopped) -> None:
        while self.running(stopped):
            try:
                await self.sync(body)
            except FailureError as exc:  # the API server refused the status patch: looked at again next time
                log.warning("%s", exc.failure.message, extra={"resource": _name(body)})
            except Exception:
                log.exception("check of connection %s failed", _name(body))
            await self.sleep(self.settings.resync_seconds, stopped)

    async def sync(self, body: kopf.Body) -> None:
        ref = ResourceRef.from_body(body)
        previous = self.previous_status(body)
        status: dict[str, Any] = {"observedGeneration": ref.generation}
        try:
            port = await self.pool.port(ref.namespace, ref.name, "default")
            version = await port.server_version()
            result = Verdict(True, Reason.CONNECTED, f"connected to Milvus {version}", False, False)
            status["serverVersion"] = version
        except FailureError as exc:
            failure = exc.failure
            result = Verdict(False, failure.reason, failure.message, not failure.stalled, failure.stalled)
            status["lastError"] = failure.message
            if "serverVersion" in previous:
                status["serverVersion"] = previous["serverVersion"]
        status["conditions"] = conditions(result, ref.generation, previous.get("conditions") or [], datetime.now(UTC))
        await self.write_status(body, status, observed_in_full=result.ready)
        kind = "Normal" if result.ready else "Warning"
        self.post(body, [(kind, result.reason.value, result.message)])


def _name(body: kopf.Body) -> str:
    return f"{body['metadata']['namespace']}/{body['metadata']['name']}"
