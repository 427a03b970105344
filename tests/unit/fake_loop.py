"""A CollectionWorker's daemon loop run for a number of passes against the in-memory Milvus and a fake API server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import kopf
import pytest

from milvusops import FINALIZER
from milvusops.kube.api import KubeApi
from milvusops.runtime.collection_worker import CollectionWorker
from milvusops.runtime.connections import Connections
from milvusops.runtime.settings import Settings
from tests.unit.fake_milvus import FakeMilvus, FakePorts


class FakeKube:
    """Status patches land on the body at once, as the watch would deliver them."""

    def __init__(self, live: dict[str, Any]) -> None:
        self.live = live
        self.patches: list[dict[str, Any]] = []

    async def patch_status(self, plural: str, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.patches.append(patch)
        status = self.live.setdefault("status", {})
        _merge(status, patch)
        self.live["metadata"]["resourceVersion"] = str(int(self.live["metadata"]["resourceVersion"]) + 1)
        return {"metadata": dict(self.live["metadata"]), "status": dict(status)}


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


class Stopped:
    def __init__(self) -> None:
        self.flag = False

    def __bool__(self) -> bool:
        return self.flag

    async def wait(self) -> None:  # never awaited: sleep is replaced
        raise AssertionError


def make_body(spec: dict[str, Any], uid: str = "u1") -> dict[str, Any]:
    meta = {"name": "m", "namespace": "ns", "uid": uid, "generation": 1, "finalizers": [FINALIZER]}
    return {"metadata": {**meta, "resourceVersion": "1"}, "spec": {"collectionName": "docs", **spec}}


class Loop:
    """Runs a CollectionWorker's daemon loop for a number of passes, calling `between` after each."""

    def __init__(
        self, milvus: FakeMilvus, spec: dict[str, Any], monkeypatch: pytest.MonkeyPatch, uid: str = "u1"
    ) -> None:
        self.milvus = milvus
        self.body = make_body(spec, uid)
        self.kube = FakeKube(self.body)
        settings = Settings(_cli_parse_args=[])  # type: ignore[call-arg]
        self.worker = CollectionWorker(settings, cast(KubeApi, self.kube), cast(Connections, FakePorts(milvus)))
        self.delays: list[float] = []
        self.events: list[tuple[str, str, str]] = []
        monkeypatch.setattr(
            kopf, "event", lambda body, type, reason, message: self.events.append((type, reason, message))
        )

    async def run(self, passes: int, between: Callable[[int], bool | None] | None = None) -> None:
        stopped = Stopped()

        async def sleep(delay: float, _: Any) -> bool:
            self.delays.append(delay)
            woken = bool(between(len(self.delays))) if between else False
            if len(self.delays) >= passes:
                stopped.flag = True
            return woken

        self.worker.sleep = sleep  # type: ignore[method-assign,assignment]
        self.worker.notice(cast(kopf.Body, self.body))
        self.worker.wakeup.clear()
        await self.worker.run(
            cast(kopf.Body, self.body), cast(kopf.Index[Any, Any], {}), cast(kopf.DaemonStopped, stopped)
        )

    def mutating(self) -> list[str]:
        return [call[0] for call in self.milvus.mutating_calls]
