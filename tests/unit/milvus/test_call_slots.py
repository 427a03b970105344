"""Call slots: handed out by priority, then in arrival order, and never lost to a cancelled waiter."""

from __future__ import annotations

import asyncio

from milvusops.milvus.call_slots import Priority, Slots, current, prioritized


async def _take(slots: Slots, priority: Priority, order: list[str], name: str, hold: asyncio.Event) -> None:
    async with slots.take(priority):
        order.append(name)
        await hold.wait()


async def _settle() -> None:
    for _ in range(5):  # let every runnable task reach its next await
        await asyncio.sleep(0)


async def test_waiters_are_served_by_priority_then_in_arrival_order() -> None:
    slots, order, hold = Slots(1), list[str](), asyncio.Event()
    hold.set()  # waiters leave at once, so each release serves the next
    blocker = asyncio.Event()
    first = asyncio.create_task(_take(slots, Priority.BACKGROUND, order, "holder", blocker))
    await _settle()
    arrivals = [
        ("resync-1", Priority.BACKGROUND),
        ("observe-1", Priority.CHANGE),
        ("load-1", Priority.ACT),
        ("resync-2", Priority.BACKGROUND),
        ("load-2", Priority.ACT),
        ("observe-2", Priority.CHANGE),
    ]
    tasks = [asyncio.create_task(_take(slots, priority, order, name, hold)) for name, priority in arrivals]
    await _settle()
    assert order == ["holder"]  # one slot: everybody else waits
    blocker.set()
    await asyncio.gather(first, *tasks)
    assert order == ["holder", "load-1", "load-2", "observe-1", "observe-2", "resync-1", "resync-2"]


async def test_a_cancelled_waiter_does_not_keep_or_lose_a_slot() -> None:
    slots, order, hold = Slots(2), list[str](), asyncio.Event()
    holders = [asyncio.create_task(_take(slots, Priority.ACT, order, f"h{i}", hold)) for i in range(2)]
    await _settle()
    leaving = asyncio.create_task(_take(slots, Priority.ACT, order, "leaving", hold))
    staying = asyncio.create_task(_take(slots, Priority.BACKGROUND, order, "staying", hold))
    await _settle()
    leaving.cancel()
    hold.set()
    await asyncio.gather(*holders, staying)
    assert order == ["h0", "h1", "staying"]
    # both slots are free again: two takers get in without waiting
    again: list[str] = []
    both = [asyncio.create_task(_take(slots, Priority.BACKGROUND, again, f"a{i}", asyncio.Event())) for i in range(2)]
    await _settle()
    assert again == ["a0", "a1"]
    for task in both:
        task.cancel()


async def test_a_slot_handed_to_a_waiter_cancelled_before_it_ran_passes_on() -> None:
    slots, order, hold = Slots(1), list[str](), asyncio.Event()
    hold.set()
    held = slots.take(Priority.ACT)
    await held.__aenter__()
    unlucky = asyncio.create_task(_take(slots, Priority.ACT, order, "unlucky", hold))
    lucky = asyncio.create_task(_take(slots, Priority.BACKGROUND, order, "lucky", hold))
    await _settle()
    await held.__aexit__(None, None, None)  # hands the slot to "unlucky", which has not run yet...
    unlucky.cancel()  # ...and is cancelled before it does
    await lucky
    assert order == ["lucky"]
    assert unlucky.cancelled()


async def test_the_priority_follows_the_task_and_the_tasks_it_starts() -> None:
    async def seen() -> Priority:
        return current()

    assert current() == Priority.CHANGE
    with prioritized(Priority.BACKGROUND):
        assert current() == Priority.BACKGROUND
        assert list(await asyncio.gather(seen(), seen())) == [Priority.BACKGROUND, Priority.BACKGROUND]
        with prioritized(Priority.ACT):
            assert await asyncio.create_task(seen()) == Priority.ACT
        assert current() == Priority.BACKGROUND
    assert current() == Priority.CHANGE


async def _take_queued(slots: Slots, priority: Priority, order: list[str], name: str, hold: asyncio.Event) -> None:
    async with slots.take(priority, queued=True):
        order.append(name)
        await hold.wait()


async def test_requests_milvus_queues_take_at_most_their_share_and_never_block_calls_of_their_priority() -> None:
    """Milvus 2.3.5 runs describe, list, statistics and load requests one at a time: with all 8 slots
    held by them, a burst of 1,000 had no slot left for the re-checks Milvus answers at once (0 Ready
    after 1,050 s)."""
    slots, order, hold = Slots(3, queued=1), list[str](), asyncio.Event()
    describes = [
        asyncio.create_task(_take_queued(slots, Priority.CHANGE, order, f"describe-{i}", hold)) for i in range(3)
    ]
    await _settle()
    state = asyncio.create_task(_take(slots, Priority.CHANGE, order, "load state", hold))
    await _settle()
    assert order == ["describe-0", "load state"]  # one queued request in flight; a first pass's look is not stuck
    load = asyncio.create_task(_take_queued(slots, Priority.ACT, order, "load", hold))
    await _settle()
    hold.set()
    await asyncio.gather(*describes, state, load)
    assert order == ["describe-0", "load state", "load", "describe-1", "describe-2"]  # the load goes first


async def test_a_call_waits_while_a_call_of_a_higher_priority_waits_even_for_the_other_kind_of_slot() -> None:
    """A 200-burst's re-checks (GetLoadingProgress, answered by Milvus's query coordinator) took the free
    slots while the burst's loads waited for the queued share: each load then took 30-40 ms against 7-10 ms
    with Milvus loading alone, and the last load went in after 5.5-6.7 s. Re-checks now wait while a first
    pass's call waits: the last load went in after 3.8-4.6 s (docs/design/performance.md)."""
    slots, order, hold = Slots(3, queued=1), list[str](), asyncio.Event()
    describes = [
        asyncio.create_task(_take_queued(slots, Priority.CHANGE, order, f"describe-{i}", hold)) for i in range(2)
    ]
    await _settle()
    recheck = asyncio.create_task(_take(slots, Priority.FOLLOW, order, "recheck", hold))
    await _settle()
    assert order == ["describe-0"]  # two slots are free, but describe-1 of a higher priority waits
    hold.set()
    await asyncio.gather(*describes, recheck)
    assert order == ["describe-0", "describe-1", "recheck"]  # its turn comes once nothing above it waits


async def test_the_queued_share_follows_the_server_unless_it_is_set() -> None:
    async def in_flight(slots: Slots) -> int:
        order, hold = list[str](), asyncio.Event()
        tasks = [asyncio.create_task(_take_queued(slots, Priority.CHANGE, order, f"d{i}", hold)) for i in range(4)]
        await _settle()
        running = len(order)
        hold.set()
        await asyncio.gather(*tasks)
        return running

    slots = Slots(4)
    assert await in_flight(slots) == 2  # until the server is known: as Milvus before 2.5, one at a time
    slots.follow_server(one_at_a_time=False)  # Milvus 2.5+: proxy.ddlConcurrency at once
    assert await in_flight(slots) == 4
    slots.follow_server(one_at_a_time=True)
    assert await in_flight(slots) == 2
    fixed = Slots(4, queued=3)
    fixed.follow_server(one_at_a_time=True)
    assert await in_flight(fixed) == 3
