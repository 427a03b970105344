"""A MilvusConnection event wakes its collections only when its spec or its Ready status changed (item 3)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import kopf

from milvusops.collection_worker import CollectionWorker
from milvusops.connections import ClientPool
from milvusops.handlers import connection_changed
from milvusops.kubeapi import KubeApi
from milvusops.settings import Settings

# longer than the jitter window of a few collections: a wake-up that was going to come has come
SETTLE_SECONDS = 0.3


class _Pool:
    """Records which connections had their cached endpoint forgotten."""

    def __init__(self) -> None:
        self.forgotten: list[tuple[str, str]] = []

    def forget(self, namespace: str, name: str) -> None:
        self.forgotten.append((namespace, name))

    def discard(self, namespace: str, name: str) -> None:
        self.forget(namespace, name)


def _settings() -> Settings:
    return Settings(_cli_parse_args=[])  # type: ignore[call-arg]


def _connection(generation: int = 1, ready: str | None = "True", heartbeat: str = "t0") -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": "main", "namespace": "team", "uid": "c1", "generation": generation},
        "spec": {"uri": "http://milvus:19530"},
        "status": {"observedGeneration": generation, "lastSyncTime": heartbeat},
    }
    if ready is not None:
        body["status"]["conditions"] = [{"type": "Ready", "status": ready, "reason": "Connected"}]
    return body


def _collections(global_memo: kopf.Memo, pool: _Pool, count: int) -> list[CollectionWorker]:
    workers = []
    for index in range(count):
        worker = CollectionWorker(_settings(), cast(KubeApi, None), cast(ClientPool, pool))
        body = {"metadata": {"namespace": "team", "name": f"c{index}"}, "spec": {"connectionRef": {"name": "main"}}}
        worker.notice(cast(kopf.Body, body))
        worker.wakeup.clear()
        global_memo.workers[f"u{index}"] = worker
        workers.append(worker)
    return workers


def _memos() -> tuple[kopf.Memo, kopf.Memo, _Pool]:
    """The operator-wide memo and the per-connection one Kopf copies from it (shared `workers`)."""
    pool = _Pool()
    global_memo = kopf.Memo(settings=_settings(), kube=None, pool=pool, workers={})
    return global_memo, kopf.Memo(global_memo), pool


async def _event(memo: kopf.Memo, body: dict[str, Any], kind: str = "MODIFIED") -> None:
    await connection_changed(cast(kopf.Body, body), memo, cast(kopf.RawEvent, {"type": kind, "object": body}))


def _woken(workers: list[CollectionWorker]) -> int:
    return sum(worker.wakeup.is_set() for worker in workers)


async def test_a_status_only_event_wakes_no_collection() -> None:
    global_memo, memo, pool = _memos()
    workers = _collections(global_memo, pool, 3)
    await _event(memo, _connection(heartbeat="t0"), kind="ADDED")
    await asyncio.sleep(SETTLE_SECONDS)
    for worker in workers:
        worker.wakeup.clear()
    pool.forgotten.clear()
    # the operator's own status write and its heartbeat: same generation, same Ready status
    await _event(memo, _connection(heartbeat="t1"))
    await _event(memo, _connection(heartbeat="t2"))
    await asyncio.sleep(SETTLE_SECONDS)
    assert _woken(workers) == 0
    assert pool.forgotten == []
