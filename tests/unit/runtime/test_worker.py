"""A worker acts only once Kopf's finalizer guards its object, and stops when the object is gone."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import kopf

from milvusops import FINALIZER, REFRESH_ANNOTATION
from milvusops.kube.api import KubeApi
from milvusops.runtime.settings import Settings
from milvusops.runtime.worker import Worker


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


def own_tasks(*outside: asyncio.Task[Any]) -> set[asyncio.Task[Any]]:
    return asyncio.all_tasks() - {asyncio.current_task(), *outside}


async def test_a_sleeping_worker_holds_one_task_for_the_stop_signal_kept_across_its_sleeps() -> None:
    """Two tasks made per sleep (change, stop) cost about 1.9 KB a sleeping resource: one lives as long as the run."""
    w, stopped = worker(), Stopped()
    first = asyncio.create_task(w.sleep(30, cast(kopf.DaemonStopped, stopped)))
    await asyncio.sleep(0.05)
    watchers = own_tasks(first)
    assert len(watchers) == 1
    w.wakeup.set()  # a change of the object ends the sleep early
    assert await asyncio.wait_for(first, 1) is True
    second = asyncio.create_task(w.sleep(30, cast(kopf.DaemonStopped, stopped)))
    await asyncio.sleep(0.05)
    assert own_tasks(second) == watchers  # the same watcher, not a new one per sleep
    stopped.event.set()
    assert await asyncio.wait_for(second, 1) is False  # stopped: woken, but not by a change
    await asyncio.sleep(0)
    assert not own_tasks()


async def test_a_restarted_daemon_watches_its_new_stop_signal_and_the_end_of_its_run_frees_the_watcher() -> None:
    w, old, new = worker(), Stopped(), Stopped()
    sleeping = asyncio.create_task(w.sleep(30, cast(kopf.DaemonStopped, old)))
    await asyncio.sleep(0.05)
    w.retire(body())  # gone: the sleep ends, Kopf's old stop signal is never set
    await asyncio.wait_for(sleeping, 1)
    w.gone = False
    sleeping = asyncio.create_task(w.sleep(30, cast(kopf.DaemonStopped, new)))
    await asyncio.sleep(0.05)
    assert len(own_tasks(sleeping)) == 1  # the old watcher was let go
    new.event.set()
    assert await asyncio.wait_for(sleeping, 1) is False
    w.unwatch()
    await asyncio.sleep(0)
    assert not own_tasks()
