"""Kopf's wait for its indexes at startup, with and without `runtime.kopf_index_wait`: how often the predicate runs.

Kopf 1.45.2 gives each object of its first listing a toggle in `operator_indexed`; each object's task
drops its toggle, then waits until every toggle is gone (`processing.py`). Every drop wakes every waiter,
so N objects cost about N²/2 wake-ups: at 10,000 resources a restart spent minutes of CPU only on that.
"""

from __future__ import annotations

import asyncio
import inspect

import pytest
from kopf._cogs.aiokits import aiotoggles
from kopf._core.reactor import processing

from milvusops.runtime import kopf_index_wait

OBJECTS = 300


async def _startup(objects: int) -> int:
    """Kopf's pattern: a toggle per listed object; each task drops its own, then waits for all. Returns is_on calls."""
    indexed = aiotoggles.ToggleSet(all)
    own = [await indexed.make_toggle(name=f"object-{i}") for i in range(objects)]
    checks = 0
    is_on = aiotoggles.ToggleSet.is_on

    def counting(self: aiotoggles.ToggleSet) -> bool:
        nonlocal checks
        checks += 1
        return is_on(self)

    async def process(toggle: aiotoggles.Toggle) -> None:
        await indexed.drop_toggle(toggle)
        await indexed.wait_for(True)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(aiotoggles.ToggleSet, "is_on", counting)
        tasks = []
        for toggle in own:  # objects come from the watch stream one by one; the waiters run in between
            tasks.append(asyncio.create_task(process(toggle)))
            for _ in range(3):
                await asyncio.sleep(0)
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    return checks


async def test_kopf_alone_wakes_every_waiter_on_every_drop() -> None:
    assert await _startup(OBJECTS) > OBJECTS * OBJECTS / 4  # quadratic: why the patch exists


async def test_with_the_patch_waiting_for_the_indexes_is_linear() -> None:
    with kopf_index_wait.installed():
        checks = await _startup(OBJECTS)
    assert checks < 4 * OBJECTS


async def test_with_the_patch_a_waiter_still_returns_only_in_the_state_it_waits_for() -> None:
    with kopf_index_wait.installed():
        paused = aiotoggles.ToggleSet(any)
        toggle = await paused.make_toggle(True, name="peer")
        waiter = asyncio.create_task(paused.wait_for(False))
        other = asyncio.create_task(paused.wait_for(False))
        await asyncio.sleep(0)
        await toggle.turn_to(False)
        await toggle.turn_to(True)  # flips back before the waiters run: they must keep waiting
        await asyncio.sleep(0.01)
        assert not waiter.done() and not other.done()
        other.cancel()  # one waiter giving up does not end the wait of the others
        await toggle.turn_to(False)
        await asyncio.wait_for(waiter, timeout=5)
        await paused.wait_for(False)  # already in that state: returns at once
        assert paused.is_off()


def test_kopf_still_waits_for_its_indexes_the_way_the_patch_expects() -> None:
    # pinned to Kopf 1.45.2: an upgrade that changes this pattern must be re-measured, not silently kept
    source = inspect.getsource(processing.process_resource_event)
    assert "await operator_indexed.drop_toggle(resource_indexed)" in source
    assert "await operator_indexed.wait_for(True)" in source
    assert list(inspect.signature(aiotoggles.ToggleSet.wait_for).parameters) == ["self", "_ToggleSet__state"]


async def test_with_the_patch_a_wait_whose_every_caller_is_cancelled_ends_with_them() -> None:
    # Kopf waits 5 s at exit for any task left running: a shared wait outliving its callers delayed every stop
    with kopf_index_wait.installed():
        paused = aiotoggles.ToggleSet(any)
        await paused.make_toggle(False, name="peer")
        callers = [asyncio.create_task(paused.wait_for(True)) for _ in range(2)]
        await asyncio.sleep(0)
        callers[0].cancel()
        await asyncio.sleep(0)
        assert _kopf_waits(), "one caller still waits: the shared wait goes on"
        callers[1].cancel()
        await asyncio.gather(*callers, return_exceptions=True)
        await asyncio.sleep(0)
        assert not _kopf_waits()


def _kopf_waits() -> list[asyncio.Task[object]]:
    """Tasks still running Kopf's own `ToggleSet.wait_for`."""
    return [t for t in asyncio.all_tasks() if not t.done() and "ToggleSet.wait_for" in repr(t.get_coro())]
