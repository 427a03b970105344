"""Connections and MilvusClientPort lifecycle: nothing blocks the event loop, no tenant holds back another,
deleted connections leave nothing behind, and a replaced client fails no call (issue 29 items 2, 3, 5)."""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import grpc
import pymilvus
import pytest
from pymilvus.client.types import LoadState as MilvusLoadState
from pymilvus.grpc_gen import milvus_pb2_grpc

from milvusops.core.endpoint import Endpoint
from milvusops.core.failures import FailureError, Reason
from milvusops.kube.api import KubeApi
from milvusops.milvus import client as milvus_client
from milvusops.milvus import port as milvus_port
from milvusops.milvus.call_slots import Slots
from milvusops.milvus.port import MilvusClientPort
from milvusops.runtime.client_pool import ElasticExecutor
from milvusops.runtime.connections import Connections
from milvusops.runtime.settings import Settings
from tests.unit.fake_grpc import PlaintextMilvus


class FakeKube:
    """MilvusConnections and their Secrets; counts the reads."""

    def __init__(self, read_seconds: float = 0.0) -> None:
        self.tokens: dict[str, str] = {}
        self.reads = 0
        self.read_seconds = read_seconds

    async def read_connection(self, namespace: str, name: str) -> Mapping[str, Any]:
        self.reads += 1
        await asyncio.sleep(self.read_seconds)
        return {"spec": {"uri": f"http://{name}:19530", "credentialsSecretRef": {"name": name}, "timeoutSeconds": 5}}

    async def read_secret_value(self, namespace: str, name: str, key: str) -> str:
        return self.tokens.get(name, "root:Milvus")


@dataclass
class Clients:
    """What the fake MilvusClient class does, and what was done to it."""

    close_seconds: float = 0.0
    call_seconds: float = 0.0
    made: list[Any] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Clients:
    state = Clients()
    state.gate.set()

    class FakeMilvusClient:
        def __init__(self, **_: Any) -> None:
            self.closed = False
            state.made.append(self)

        def get_load_state(self, collection: str, partition: str, timeout: float) -> dict[str, Any]:
            state.gate.wait(10)
            time.sleep(state.call_seconds)
            return {"state": MilvusLoadState.Loaded}

        def close(self) -> None:
            time.sleep(state.close_seconds)  # pymilvus: under its process-wide lock, held by any connect
            self.closed = True

    monkeypatch.setattr(milvus_port, "MilvusClient", FakeMilvusClient)
    return state


def settings(**values: Any) -> Settings:
    return Settings(_cli_parse_args=[], **values)  # type: ignore[call-arg]


@pytest.fixture
async def pool(tmp_path: Path) -> AsyncIterator[tuple[Connections, FakeKube]]:
    kube = FakeKube()
    made = Connections(settings(), cast(KubeApi, kube), tmp_path)
    yield made, kube
    made.close()


class Ticker:
    """Beats every 20 ms on the event loop; the longest gap says how long the loop stood still."""

    def __init__(self) -> None:
        self.gap = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _beat(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.02)
            now = time.perf_counter()
            self.gap = max(self.gap, now - last)
            last = now

    def __enter__(self) -> Ticker:
        self._task = asyncio.get_running_loop().create_task(self._beat())
        return self

    def __exit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def wait_until(check: Callable[[], bool], seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


# item 2: nothing blocks the event loop, no server holds back another


def assignments(source: str) -> set[str]:
    return set(re.findall(r"self\.(\w+) = ", source))


def test_the_isolated_client_mirrors_pymilvus_own_constructor() -> None:
    """milvus.client.MilvusClient is MilvusClient.__init__ of pymilvus with a ConnectionManager of its own."""
    theirs = inspect.getsource(pymilvus.MilvusClient.__init__)
    assert "ConnectionManager.get_instance()" in theirs and "super().__init__" not in theirs
    assert assignments(theirs) == assignments(inspect.getsource(milvus_client.MilvusClient.__init__))


async def test_replacing_a_client_never_closes_it_on_the_event_loop(
    clients: Clients, pool: tuple[Connections, FakeKube]
) -> None:
    target, kube = pool
    await (await target.port("ns", "a", "default")).load_state("c")  # a client to replace
    clients.close_seconds = 1.0
    kube.tokens["a"] = "root:rotated"
    target.forget("ns", "a")  # the Secret changed
    with Ticker() as ticker:
        await asyncio.sleep(0.1)  # the ticker beats
        await (await target.port("ns", "a", "default")).load_state("c")
        await wait_until(lambda: clients.made[0].closed)
        await asyncio.sleep(0.1)
    assert ticker.gap < 0.5, f"the event loop stood still {ticker.gap:.2f} s while a client closed"


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A TCP listener that accepts and never answers: a connect to it waits its whole timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener.getsockname()[1]
    listener.close()


@pytest.fixture
def healthy() -> Iterator[int]:
    server = grpc.server(futures.ThreadPoolExecutor(4))
    milvus_pb2_grpc.add_MilvusServiceServicer_to_server(PlaintextMilvus(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(0)


async def test_a_healthy_connect_and_close_do_not_wait_behind_an_unreachable_server(
    black_hole: int, healthy: int
) -> None:
    """Real pymilvus: its ConnectionManager held one process-wide lock for a whole connect."""
    executor = ThreadPoolExecutor(4)
    stuck = MilvusClientPort(Endpoint(f"http://127.0.0.1:{black_hole}", "", 3.0), "default", executor, Slots(2))
    fine = MilvusClientPort(Endpoint(f"http://127.0.0.1:{healthy}", "", 3.0), "default", executor, Slots(2))
    try:
        assert await fine.server_version() == "v-plaintext"
        connecting = asyncio.create_task(stuck.server_version())
        await asyncio.sleep(0.3)  # the unreachable server's connect is under way
        with Ticker() as ticker:
            await asyncio.sleep(0.1)  # the ticker beats
            started = time.perf_counter()
            fine.close()  # a Secret rotation elsewhere
            assert await fine.server_version() == "v-plaintext"  # a fresh connect
            took = time.perf_counter() - started
        assert ticker.gap < 0.5, f"the event loop stood still {ticker.gap:.2f} s"
        assert took < 1.5, f"a healthy connect waited {took:.1f} s behind an unreachable server's"
        with pytest.raises(FailureError) as failed:
            await connecting
        assert failed.value.failure.reason == Reason.MILVUS_UNAVAILABLE
    finally:
        fine.close()
        stuck.close()
        executor.shutdown(wait=True)


async def test_a_call_that_never_returns_ends_at_its_deadline(clients: Clients) -> None:
    """A finalizer's call must end so that its deletion timeout is honoured."""
    clients.gate.clear()  # Milvus never answers, and the call ignores its timeout
    executor = ThreadPoolExecutor(2)
    target = MilvusClientPort(Endpoint("http://milvus:19530", "", 0.2), "default", executor, Slots(2))
    started = time.perf_counter()
    try:
        with pytest.raises(FailureError) as failed:
            await target.load_state("c")
        took = time.perf_counter() - started
        assert failed.value.failure.reason == Reason.MILVUS_UNAVAILABLE
        assert took < 3.0, f"a call with a 0.2 s timeout took {took:.1f} s"
    finally:
        clients.gate.set()
        executor.shutdown(wait=True)


# item 5: deleted connections leave nothing, threads do not grow per tenant, a replaced client fails no call


async def test_discarding_a_connection_closes_its_client(clients: Clients, pool: tuple[Connections, FakeKube]) -> None:
    target, _ = pool
    await (await target.port("ns", "a", "default")).load_state("c")
    target.discard("ns", "a")  # the MilvusConnection is gone
    await wait_until(lambda: clients.made[0].closed)


async def test_threads_do_not_grow_with_connections(clients: Clients, pool: tuple[Connections, FakeKube]) -> None:
    target, _ = pool
    calls = 8  # each connection used at its full concurrency, then deleted
    clients.call_seconds = 0.05
    before = len(os.listdir("/proc/self/task"))
    for i in range(10):
        port = await target.port("ns", f"c{i}", "default")
        await asyncio.gather(*(port.load_state("c") for _ in range(calls)))
        target.discard("ns", f"c{i}")
    await asyncio.sleep(0.2)
    grown = len(os.listdir("/proc/self/task")) - before
    assert grown <= calls + 2, f"{grown} more threads after 10 connections of {calls} calls each"


async def test_a_secret_rotation_under_queued_calls_fails_none_of_them(
    clients: Clients, pool: tuple[Connections, FakeKube]
) -> None:
    target, kube = pool
    port = await target.port("ns", "a", "default")
    await port.load_state("c")
    clients.gate.clear()
    burst = [asyncio.create_task(port.load_state("c")) for _ in range(20)]  # 8 run, 12 wait for a slot
    await asyncio.sleep(0.1)
    kube.tokens["a"] = "root:rotated"
    target.forget("ns", "a")
    await target.port("ns", "a", "default")  # the rotated Secret replaces the client
    clients.gate.set()
    results = await asyncio.gather(*burst, return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    assert not failed, failed[:1]


# item 3: one resolve in flight per connection


async def test_concurrent_resolves_of_one_connection_share_one_read(tmp_path: Path) -> None:
    kube = FakeKube(read_seconds=0.05)
    target = Connections(settings(), cast(KubeApi, kube), tmp_path)
    endpoints = await asyncio.gather(*(target.endpoint("ns", "a") for _ in range(10)))
    assert {e.uri for e in endpoints} == {"http://a:19530"}
    assert kube.reads == 1, f"{kube.reads} reads of one MilvusConnection for 10 concurrent resolves"


async def test_a_resolve_started_before_a_change_is_not_kept_after_it(tmp_path: Path) -> None:
    kube = FakeKube(read_seconds=0.1)
    target = Connections(settings(), cast(KubeApi, kube), tmp_path)
    early = asyncio.create_task(target.endpoint("ns", "a"))
    await asyncio.sleep(0.05)
    kube.tokens["a"] = "root:rotated"
    target.forget("ns", "a")  # the Secret changed while the first read was under way
    assert (await target.endpoint("ns", "a")).token == "root:rotated"
    await early
    assert (await target.endpoint("ns", "a")).token == "root:rotated"


async def test_a_burst_threads_end_once_idle() -> None:
    """A burst over many connections at once starts threads up to the budget; idle, they end."""
    executor = ElasticExecutor(16, linger=0.2)
    gate = threading.Event()
    burst = [executor.submit(gate.wait, 5) for _ in range(40)]  # more than the budget: 24 wait as backlog
    await wait_until(lambda: executor.threads == 16)
    gate.set()
    assert all(f.result(5) for f in burst)
    await wait_until(lambda: executor.threads == 0)
    assert executor.submit(lambda: 7).result(5) == 7  # threads start again for new work
    executor.shutdown()


async def test_work_queued_on_a_busy_budget_runs_without_a_new_thread() -> None:
    executor = ElasticExecutor(2, linger=5)
    order: list[int] = []

    def step(i: int) -> None:
        time.sleep(0.05)
        order.append(i)

    results = [executor.submit(step, i) for i in range(6)]
    for result in results:
        result.result(5)
    assert sorted(order) == list(range(6)) and executor.threads <= 2
    executor.shutdown()
    with pytest.raises(RuntimeError):
        executor.submit(print)


async def test_the_executor_runs_everything_submitted_from_many_threads_and_then_winds_down() -> None:
    executor = ElasticExecutor(4, linger=0.1)
    done: list[int] = []

    def work(n: int) -> None:
        time.sleep(0.001 * (n % 3))
        done.append(n)

    def submitter(base: int) -> None:
        for i in range(50):
            executor.submit(work, base + i)
            if i % 10 == 0:
                time.sleep(0.15)  # let threads linger out in between

    submitters = [threading.Thread(target=submitter, args=(k * 100,)) for k in range(4)]
    for thread in submitters:
        thread.start()
    for thread in submitters:
        thread.join(30)
    await wait_until(lambda: len(done) == 200, 10)
    await wait_until(lambda: executor.threads == 0, 5)
    assert sorted(done) == sorted(k * 100 + i for k in range(4) for i in range(50))


async def test_periodic_work_after_a_burst_keeps_only_the_threads_it_needs() -> None:
    """Round-robin over idle threads would keep every thread of a burst alive with a call now and then."""
    executor = ElasticExecutor(16, linger=0.3)
    gate = threading.Event()
    burst = [executor.submit(gate.wait, 5) for _ in range(16)]
    await wait_until(lambda: executor.threads == 16)
    gate.set()
    for future in burst:
        future.result(5)
    ended = time.monotonic() + 1.5
    while time.monotonic() < ended:  # one short call every 50 ms, as passes over a few resources make
        await asyncio.wrap_future(executor.submit(time.sleep, 0.001))
        await asyncio.sleep(0.05)
    assert executor.threads <= 2, f"{executor.threads} threads kept for one call at a time"
    executor.shutdown()
    await wait_until(lambda: executor.threads == 0)
