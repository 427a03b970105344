"""The per-MilvusConnection loop: check reachability and report it in status."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from . import CONNECTIONS
from .connections import ClientPool
from .failures import FailureError, Reason
from .kubeapi import KubeApi
from .model import ResourceRef
from .settings import Settings
from .status import Verdict, conditions
from .worker import Worker

log = logging.getLogger("milvusops")


class ConnectionWorker(Worker):
    plural = CONNECTIONS

    def __init__(self, settings: Settings, kube: KubeApi, pool: ClientPool) -> None:
        super().__init__(settings, kube)
        self.pool = pool

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
            except Exception:
                log.exception(
                    "check of connection %s/%s failed", body["metadata"]["namespace"], body["metadata"]["name"]
                )
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
