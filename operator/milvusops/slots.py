"""Per-connection call slots, handed out by priority: loads and releases first, resources in sync last."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from enum import IntEnum


class Priority(IntEnum):
    """Lower goes first; within one priority, first come first served."""

    ACT = 0  # load and release calls: what the user is waiting for
    CHANGE = 1  # observing a resource that is new or whose spec changed
    FOLLOW = 2  # later passes over a resource not in sync yet: after a load, re-checks, retries
    BACKGROUND = 3  # passes over a resource the last pass found in sync: may wait while there is other work


def for_pass(urgent: bool, settled: bool) -> Priority:
    """`urgent`: a first pass or one after a change; `settled`: the previous pass found the resource in sync."""
    return Priority.CHANGE if urgent else Priority.BACKGROUND if settled else Priority.FOLLOW


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


class Slots:
    """A semaphore whose waiters are served by priority, then in arrival order."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    @asynccontextmanager
    async def take(self, priority: Priority) -> AsyncIterator[None]:
        await self._acquire(priority)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, priority: Priority) -> None:
        if self._free > 0:  # a free slot means nobody is waiting: _release hands slots to waiters first
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._arrivals), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release()  # the slot was handed over just before the cancellation: pass it on
            raise

    def _release(self) -> None:
        while self._waiting:
            *_, future = heapq.heappop(self._waiting)
            if not future.done():  # cancelled waiters are skipped here, not searched for when they leave
                future.set_result(None)
                return
        self._free += 1
