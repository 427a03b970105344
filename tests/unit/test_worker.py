"""A worker acts only once Kopf's finalizer guards its object, and stops when the object is gone."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import kopf

from milvusops import FINALIZER, REFRESH_ANNOTATION
from milvusops.kubeapi import KubeApi
from milvusops.settings import Settings
from milvusops.worker import Worker


class Stopped:
    """Kopf's `stopped` flag as a daemon sees it: falsy until set, awaitable."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def __bool__(self) -> bool:
        return self.event.is_set()

    async def wait(self) -> None:
        await self.event.wait()


def body(*finalizers: str) -> kopf.Body:
    meta: dict[str, Any] = {"name": "m", "namespace": "ns", "uid": "u1", "generation": 1}
    if finalizers:
        meta["finalizers"] = list(finalizers)
    return cast(kopf.Body, {"metadata": meta, "spec": {}})


def worker() -> Worker:
    return Worker(Settings(_cli_parse_args=[]), cast(KubeApi, None))  # type: ignore[call-arg]


async def test_admitted_at_once_when_the_finalizer_is_on() -> None:
    assert await asyncio.wait_for(worker().admitted(body(FINALIZER), cast(kopf.DaemonStopped, Stopped())), 1)


async def test_admitted_when_the_finalizer_lands() -> None:
    w, live = worker(), body()
    w.notice(live)
    waiting = asyncio.create_task(w.admitted(live, cast(kopf.DaemonStopped, Stopped())))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # resync is 30 s by default: only notice() can end this wait
    live["metadata"]["finalizers"] = ["other.example/keep", FINALIZER]  # Kopf's live body is updated in place
    w.notice(live)
    assert await asyncio.wait_for(waiting, 1)


async def test_gone_before_the_finalizer_never_admitted() -> None:
    w, live = worker(), body("other.example/keep")
    w.notice(live)
    waiting = asyncio.create_task(w.admitted(live, cast(kopf.DaemonStopped, Stopped())))
    await asyncio.sleep(0.05)
    w.retire(live)
    assert not await asyncio.wait_for(waiting, 1)
    assert not w.running(cast(kopf.DaemonStopped, Stopped()))


async def test_stopped_before_the_finalizer_never_admitted() -> None:
    w, live, stopped = worker(), body(), Stopped()
    waiting = asyncio.create_task(w.admitted(live, cast(kopf.DaemonStopped, stopped)))
    await asyncio.sleep(0.05)
    stopped.event.set()
    assert not await asyncio.wait_for(waiting, 1)


def test_only_our_own_finalizer_changes_what_the_worker_sees() -> None:
    w = worker()
    w.notice(body())
    w.wakeup.clear()
    w.notice(body("other.example/keep"))
    assert not w.wakeup.is_set()
    w.notice(body(FINALIZER))
    assert w.wakeup.is_set()


def test_a_new_refresh_annotation_wakes_the_worker_and_other_annotations_do_not() -> None:
    w = worker()
    live = body(FINALIZER)
    w.notice(live)
    w.wakeup.clear()
    live["metadata"]["annotations"] = {"kopf.zalando.org/last-handled-configuration": "{}"}
    w.notice(live)
    assert not w.wakeup.is_set()
    live["metadata"]["annotations"] = {REFRESH_ANNOTATION: "2026-11-29T10:00:00Z"}
    w.notice(live)
    assert w.wakeup.is_set()


def test_own_status_write_used_until_the_watch_brings_a_newer_object() -> None:
    w = worker()
    raw: dict[str, Any] = {"metadata": {"resourceVersion": "10", "finalizers": [FINALIZER]}, "status": {"phase": "old"}}
    live = cast(kopf.Body, raw)
    w.written = ("10", {"phase": "ours"})
    assert w.previous_status(live) == {"phase": "ours"}  # the watch has not delivered our patch yet
    raw["metadata"]["resourceVersion"], raw["status"] = "11", {"phase": "ours, as read"}
    assert w.previous_status(live) == {"phase": "ours, as read"}
    assert w.written is None  # not kept for each resource once it can no longer match
