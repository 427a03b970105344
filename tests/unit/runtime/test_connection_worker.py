"""A MilvusConnection event wakes its collections only when its spec or its Ready status changed (item 3)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import kopf
import pytest

from milvusops.kube.api import KubeApi
from milvusops.runtime.collection_worker import CollectionWorker
from milvusops.runtime.connection_worker import Wake, WakeKey, wake_delays, wake_key, wakes_collections
from milvusops.runtime.connections import Connections
from milvusops.runtime.handlers import connection_changed
from milvusops.runtime.settings import Settings

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
        worker = CollectionWorker(_settings(), cast(KubeApi, None), cast(Connections, pool))
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


async def _first_seen(memo: kopf.Memo, pool: _Pool, workers: list[CollectionWorker]) -> None:
    await _event(memo, _connection(), kind="ADDED")
    await asyncio.sleep(SETTLE_SECONDS)
    assert _woken(workers) == 0  # first sight (a start): the collections are in their first pass anyway
    pool.forgotten.clear()


async def test_a_spec_change_wakes_every_collection_of_the_connection() -> None:
    global_memo, memo, pool = _memos()
    workers = _collections(global_memo, pool, 3)
    other = CollectionWorker(_settings(), cast(KubeApi, None), cast(Connections, pool))
    other.notice(cast(kopf.Body, {"metadata": {"namespace": "team", "name": "x"}, "spec": {}}))
    other.wakeup.clear()
    global_memo.workers["default-user"] = other
    await _first_seen(memo, pool, workers)
    await _event(memo, _connection(generation=2))
    await asyncio.wait_for(asyncio.gather(*(worker.wakeup.wait() for worker in workers)), 1)
    assert pool.forgotten == [("team", "main")]
    assert not other.wakeup.is_set()  # on the default connection: not concerned


async def test_a_ready_flap_wakes_only_the_collections_whose_last_pass_failed() -> None:
    """In-sync collections have nothing to redo when Milvus was briefly away; failing ones retry when it is back."""
    global_memo, memo, pool = _memos()
    workers = _collections(global_memo, pool, 3)
    await _first_seen(memo, pool, workers)
    workers[0].failing = True
    await _event(memo, _connection(ready="False"))
    await asyncio.sleep(SETTLE_SECONDS)
    assert _woken(workers) == 0  # Ready lost: each collection's own next pass finds out
    await _event(memo, _connection(ready="True"))
    await asyncio.wait_for(workers[0].wakeup.wait(), 1)
    await asyncio.sleep(SETTLE_SECONDS)
    assert _woken(workers) == 1
    assert pool.forgotten == [("team", "main")]  # the retry reads the connection and its Secret afresh


@pytest.mark.parametrize(
    ("previous", "current", "wakes"),
    [
        (None, (1, "True"), Wake.NONE),  # first seen: the operator just started or the connection was just created
        ((1, "True"), (1, "True"), Wake.NONE),  # a status write or heartbeat
        ((1, "True"), (2, "True"), Wake.ALL),  # spec edited
        ((1, "False"), (2, "False"), Wake.ALL),  # spec edited while NotReady
        ((1, "True"), (1, "False"), Wake.NONE),  # became NotReady: each collection's own pass finds out
        ((1, "False"), (1, "True"), Wake.FAILING),  # recovered: the failing ones retry now
        ((1, None), (1, "True"), Wake.FAILING),  # a new connection's first check: its waiting collections go now
    ],
)
def test_only_a_change_of_generation_or_ready_wakes(previous: WakeKey | None, current: WakeKey, wakes: Wake) -> None:
    assert wakes_collections(previous, current) is wakes


def test_the_wake_key_ignores_everything_but_generation_and_ready() -> None:
    assert wake_key(_connection(heartbeat="t1")) == wake_key(_connection(heartbeat="t2")) == (1, "True")
    assert wake_key(_connection(ready=None)) == (1, None)


@pytest.mark.parametrize(("count", "window"), [(1, 0.01), (200, 2.0), (10_000, 30.0)])
def test_wake_ups_spread_over_a_window_growing_with_their_number(count: int, window: float) -> None:
    delays = wake_delays(count, 30.0, lambda: 1.0)
    assert len(delays) == count and max(delays) == pytest.approx(window)
    assert wake_delays(count, 30.0, lambda: 0.0) == [0.0] * count
