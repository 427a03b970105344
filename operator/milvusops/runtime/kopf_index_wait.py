"""Kopf's wait for its indexes, made linear: one shared wait per toggle set and state instead of one per object.

At startup Kopf 1.45.2 gives each listed object a toggle in `operator_indexed`; each object's task drops
its own toggle and then waits (`ToggleSet.wait_for`, an `asyncio.Condition`) until all are gone. Every
drop notifies every waiter, so N listed objects cost about N²/2 wake-ups: a restart over 10,000
MilvusCollections spent minutes at 100 % CPU before the first pass (docs/design/performance.md). Here the first
caller for a state starts Kopf's own wait as a task, and later callers await that task; each caller
re-checks the state itself before returning, as Kopf's waiters do. `tests/unit/runtime/test_kopf_index_wait.py` pins
the Kopf pattern this relies on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from kopf._cogs.aiokits.aiotoggles import ToggleSet

_Wait = Callable[[ToggleSet, bool], Coroutine[Any, Any, None]]
_kopf_wait: _Wait = ToggleSet.wait_for


@dataclass
class _Shared:
    """Kopf's own wait for one state, and how many callers await it now."""

    task: asyncio.Future[None]
    callers: int = 0


_shared: WeakKeyDictionary[ToggleSet, dict[bool, _Shared]] = WeakKeyDictionary()


async def _wait_for(self: ToggleSet, state: bool) -> None:
    wanted = bool(state)
    while self.is_on() != wanted:
        waits = _shared.setdefault(self, {})
        shared = waits.get(wanted)
        if shared is None or shared.task.done():
            shared = waits[wanted] = _Shared(asyncio.ensure_future(_kopf_wait(self, wanted)))
        shared.callers += 1
        try:
            await asyncio.shield(shared.task)  # a caller cancelled leaves the shared wait to the others
        finally:
            shared.callers -= 1
            if not shared.callers:
                shared.task.cancel()  # with no caller left it ends: Kopf waits 5 s at exit for tasks still running


def install() -> None:
    ToggleSet.wait_for = _wait_for  # type: ignore[method-assign]


@contextmanager
def installed() -> Iterator[None]:
    """For tests: the patch, then Kopf's own method again."""
    install()
    try:
        yield
    finally:
        ToggleSet.wait_for = _kopf_wait  # type: ignore[method-assign,assignment]
