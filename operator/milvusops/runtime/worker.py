"""What every per-object worker shares: wake-ups, status patched only on change, deduplicated events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Hashable, Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from milvusops import FINALIZER, PAUSED_ANNOTATION, REFRESH_ANNOTATION
from milvusops.core.status import merge_patch, needs_patch, progress_waits, stamp
from milvusops.kube.api import KubeApi
from milvusops.runtime.settings import Settings

log = logging.getLogger("milvusops")


class Worker:
    plural: str = ""

    def __init__(self, settings: Settings, kube: KubeApi) -> None:
        self.settings = settings
        self.kube = kube
        self.wakeup = asyncio.Event()
        self.lock = asyncio.Lock()
        self.seen: Hashable = None
        self.gone = False
        self.written: tuple[str, dict[str, Any]] | None = None
        self.written_at: datetime | None = None  # when we last patched status (`progress_waits`)
        self.posted: frozenset[tuple[str, ...]] = frozenset()  # keys of the previous pass's events (`event_key`)
        self.stop_watch: tuple[kopf.DaemonStopped, asyncio.Future[None]] | None = None

    def reset(self) -> None:
        """A daemon (re)starts, e.g. after a peering pause: what it remembered may no longer be true."""
        self.written = None  # (resourceVersion the object had when we patched it, the status we wrote)
        self.written_at = None
        self.posted = frozenset()

    def notice(self, body: kopf.Body) -> None:
        """Wake the daemon when something it acts on changed (not on our own status writes)."""
        meta = body.get("metadata") or {}
        # only what changes behaviour: Kopf's own bookkeeping annotations must not cause extra passes
        annotations = meta.get("annotations") or {}
        paused, refresh = annotations.get(PAUSED_ANNOTATION), annotations.get(REFRESH_ANNOTATION)
        key = (meta.get("generation"), paused, refresh, finalized(body))
        if key != self.seen:
            self.seen = key
            self.wakeup.set()

    def retire(self, body: kopf.Body) -> None:
        """The object is gone. Kopf stops a daemon only if its finalizer let it see the deletion coming."""
        self.gone = True
        self.wakeup.set()

    async def admitted(self, body: kopf.Body, stopped: kopf.DaemonStopped) -> bool:
        """Wait until the finalizer is on, so the object cannot vanish unseen; False if it went first."""
        while not finalized(body) and self.running(stopped):
            await self.sleep(self.settings.resync_seconds, stopped)  # notice() wakes it when the finalizer lands
        return self.running(stopped)

    def running(self, stopped: kopf.DaemonStopped) -> bool:
        return not stopped and not self.gone

    async def sleep(self, delay: float, stopped: kopf.DaemonStopped) -> bool:
        """Until the delay is over, the object changed, or the daemon is asked to stop; True if it changed."""
        self._watch(stopped)
        if not self.wakeup.is_set() and not stopped:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self.wakeup.wait()
        woken = self.wakeup.is_set() and not stopped
        self.wakeup.clear()
        return woken

    def _watch(self, stopped: kopf.DaemonStopped) -> None:
        """One task per daemon run wakes its sleeps when Kopf stops it: two tasks per sleep cost 1.9 KB a resource."""
        if self.stop_watch is None or self.stop_watch[0] is not stopped:
            self.unwatch()  # a restarted daemon (after a peering pause) has a new stop signal
            self.stop_watch = (stopped, asyncio.ensure_future(self._wake_when(stopped)))

    async def _wake_when(self, stopped: kopf.DaemonStopped) -> None:
        await stopped.wait()
        self.wakeup.set()

    def unwatch(self) -> None:
        """The daemon's run is over: its stop signal may never come (the object went first)."""
        if self.stop_watch is not None:
            self.stop_watch[1].cancel()
            self.stop_watch = None

    def previous_status(self, body: kopf.Body) -> Mapping[str, Any]:
        """The status of the object as read; our own last write instead while the watch has not delivered it."""
        version = (body.get("metadata") or {}).get("resourceVersion")
        if self.written is not None and self.written[0] == version:
            return self.written[1]  # the object is still the one we patched: our write is on its way
        self.written = None  # the watch brought a newer object: versions only grow, so the copy is never used again
        return dict(body.get("status") or {})

    async def write_status(self, body: kopf.Body, new: dict[str, Any], observed_in_full: bool) -> None:
        previous = self.previous_status(body)
        now = datetime.now(UTC)
        if not needs_patch(previous, new, now, self.settings.status_heartbeat_seconds):
            return
        since = (now - self.written_at).total_seconds() if self.written_at is not None else float("inf")
        if progress_waits(previous, new, since, self.settings.loading_recheck_seconds):
            return
        stamped = stamp(new, previous, now, observed_in_full, self.settings.resync_seconds)
        patch = merge_patch(previous, stamped)
        if not patch:
            return
        meta = body["metadata"]
        version = meta.get("resourceVersion")
        await self.kube.patch_status(self.plural, meta["namespace"], meta["name"], patch)
        self.written, self.written_at = (version, stamped), now

    def post(self, body: kopf.Body, events: list[tuple[str, str, str]]) -> None:
        """Post events the previous pass did not report, so a lasting condition is reported once.

        Only the previous pass's keys are kept (a handful per resource): a reason that comes back after a pass
        without it is posted again, as client-go's EventCorrelator would count it again.
        """
        keys = [event_key(*event) for event in events]
        for event, key in zip(events, keys, strict=True):
            if key not in self.posted:
                kopf.event(body, type=event[0], reason=event[1], message=event[2])
        self.posted = frozenset(keys)


def event_key(kind: str, reason: str, message: str) -> tuple[str, ...]:
    """A Warning is a lasting condition, the same while its reason is (its message may carry figures that move);
    a Normal event says what a pass did, so two different actions of one reason are two events."""
    return (kind, reason) if kind == "Warning" else (kind, reason, message)


def finalized(body: kopf.Body) -> bool:
    return FINALIZER in ((body.get("metadata") or {}).get("finalizers") or ())
