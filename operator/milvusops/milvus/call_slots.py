"""Per-connection call slots, handed out by priority: new and changed resources first, resources in sync last."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from enum import IntEnum

from milvusops.core.pass_state import Pass


class Priority(IntEnum):
    """Lower goes first; within one priority, first come first served."""

    ACT = 0  # a deleted resource's release, a refresh: someone waits for exactly that call
    CHANGE = 1  # a pass over a resource that is new or whose spec changed, and every load and release of a pass
    FOLLOW = 2  # later passes over a resource not in sync yet: after a load, re-checks, retries
    BACKGROUND = 3  # passes over a resource the last pass found in sync: may wait while there is other work


def for_pass(this: Pass) -> Priority:
    """A first pass goes first; a pass after one that found nothing to do waits behind the rest."""
    return Priority.CHANGE if this.urgent else Priority.BACKGROUND if this.settled else Priority.FOLLOW


_priority: ContextVar[Priority] = ContextVar("milvus_call_priority", default=Priority.CHANGE)


def current() -> Priority:
    return _priority.get()


@contextmanager
def prioritized(priority: Priority) -> Iterator[None]:
    """Milvus calls made inside (and in tasks started inside) take their slots at this priority."""
    token = _priority.set(priority)
    try:
        yield
    finally:
        _priority.reset(token)


ONE_AT_A_TIME = 2  # queued calls in flight where Milvus runs them one by one: one running, the next one ready


class Slots:
    """A semaphore whose waiters are served by priority, then in arrival order.

    A call waits while a call of a higher priority waits, even when only a slot of the other kind is
    free: a burst's re-checks (answered by Milvus at once) then do not slow its loads waiting for the share.

    At most `queued` of the slots go to requests that Milvus queues (its proxy's DDL queue: describe,
    list, index, statistics, load, release), so those never hold every slot while Milvus makes them
    wait, and the operator's priorities, not Milvus's queue, decide their order. `queued` None: the
    share follows the server (`follow_server`), `ONE_AT_A_TIME` until it is known.
    """

    def __init__(self, size: int, queued: int | None = None) -> None:
        self._size = size
        self._fixed = queued is not None
        self._queued_limit = min(queued if queued is not None else ONE_AT_A_TIME, size)
        self._free = size
        self._queued_free = self._queued_limit
        self._waiting: dict[bool, list[tuple[int, int, asyncio.Future[None]]]] = {False: [], True: []}
        self._arrivals = itertools.count()

    def follow_server(self, one_at_a_time: bool) -> None:
        """Unless set, the queued share: ONE_AT_A_TIME where Milvus runs those requests one by one, else all."""
        if self._fixed:
            return
        limit = min(ONE_AT_A_TIME, self._size) if one_at_a_time else self._size
        self._queued_free += limit - self._queued_limit  # below 0 until calls over the new limit return
        self._queued_limit = limit
        self._dispatch()

    @asynccontextmanager
    async def take(self, priority: Priority, queued: bool = False) -> AsyncIterator[None]:
        await self._acquire(priority, queued)
        try:
            yield
        finally:
            self._release(queued)

    async def acquire(self, priority: Priority, queued: bool = False) -> None:
        """For a slot held past its taker's wait (a call's thread outliving its deadline): `release` once."""
        await self._acquire(priority, queued)

    def release(self, queued: bool = False) -> None:
        self._release(queued)

    def _runnable(self, queued: bool) -> bool:
        return self._free > 0 and (not queued or self._queued_free > 0)

    def _grant(self, queued: bool) -> None:
        self._free -= 1
        self._queued_free -= queued

    async def _acquire(self, priority: Priority, queued: bool) -> None:
        if self._runnable(queued) and not self._outranked(priority):  # _release hands slots to waiters first
            self._grant(queued)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting[queued], (priority, next(self._arrivals), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release(queued)  # the slot was handed over just before the cancellation: pass it on
            raise

    def _release(self, queued: bool) -> None:
        self._free += 1
        self._queued_free += queued
        self._dispatch()

    def _outranked(self, priority: Priority) -> bool:
        """A call of a higher priority waits, even for a slot of the other kind: this one waits behind it."""
        return any(head[0] < priority for kind in (False, True) if (head := self._head(kind)) is not None)

    def _dispatch(self) -> None:
        while True:
            waiting = {kind: head for kind in (False, True) if (head := self._head(kind)) is not None}
            if not waiting:
                return
            best = min(head[0] for head in waiting.values())
            heads = [kind for kind, head in waiting.items() if self._runnable(kind) and head[0] <= best]
            if not heads:
                return
            kind = min(heads, key=lambda k: self._waiting[k][0][:2])  # the first by priority, then arrival
            *_, future = heapq.heappop(self._waiting[kind])
            self._grant(kind)
            future.set_result(None)

    def _head(self, queued: bool) -> tuple[int, int, asyncio.Future[None]] | None:
        """The first waiter of a kind still waiting; cancelled ones are dropped here, not searched for."""
        waiting = self._waiting[queued]
        while waiting and waiting[0][2].done():
            heapq.heappop(waiting)
        return waiting[0] if waiting else None
