"""The memory estimate and the capacity guard: pure tables, then one pass of the operator against a fake."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import cast

import kopf
import pytest

from milvusops.core.endpoint import Endpoint, server_address
from milvusops.core.failures import Reason
from milvusops.core.memory_estimate import (
    Capacity,
    Field,
    GuardSettings,
    Index,
    NodeMemory,
    Shape,
    admit,
    bytes_per_partition,
    coarse_free,
    human,
)
from milvusops.core.model import CollectionSpec, Desired, LoadState, ResourceRef
from milvusops.core.observed import Observed, StateReport
from milvusops.core.plan import LoadCollection, LoadPartitions, Plan, ReleasePartitions
from milvusops.kube.api import KubeApi
from milvusops.milvus.parsers import query_nodes_of
from milvusops.runtime.capacity_guard import LoadsByServer, MemoryGuard, WaitingLoads, needed_bytes
from milvusops.runtime.collection_worker import CollectionWorker
from milvusops.runtime.connections import Connections
from milvusops.runtime.reconcile import reconcile
from milvusops.runtime.settings import Settings
from tests.unit.fake_milvus import FakeMilvus, FakePorts

GiB, MiB = 2**30, 2**20
ID, VECTOR = Field("id", "INT64"), Field("vector", "FLOAT_VECTOR", dim=128)


@pytest.mark.parametrize(
    ("fields", "index", "rows", "expected"),
    [
        ((ID, VECTOR), Index("vector", "FLAT"), 1000, 1000 * (16 + 8 + 512)),
        ((ID, VECTOR), None, 1000, 1000 * (16 + 8 + 512)),  # no index: the raw vectors
        # IVF_FLAT: vectors + their ids, and nlist centroids
        ((ID, VECTOR), Index("vector", "IVF_FLAT", {"nlist": "64"}), 1000, 1000 * (16 + 8 + 520) + 64 * 512),
        # HNSW M=8: vectors, 2M links of 4 bytes and a count, a label; 10% for upper levels and slack
        ((ID, VECTOR), Index("vector", "HNSW", {"M": "8"}), 1000, 1000 * 24 + int(1000 * (512 + 68 + 8) * 1.1)),
        ((ID, Field("v", "BINARY_VECTOR", dim=256)), Index("v", "BIN_FLAT"), 1000, 1000 * (16 + 8 + 32)),
        ((ID, Field("s", "VARCHAR", max_length=100), Field("f", "FLOAT")), None, 10, 10 * (16 + 8 + 58 + 4)),
        ((ID, VECTOR), Index("vector", "FLAT"), 0, 0),
    ],
)
def test_bytes_per_partition(fields: tuple[Field, ...], index: Index | None, rows: int, expected: int) -> None:
    shape = Shape(fields, (index,) if index else (), {"p": rows})
    assert bytes_per_partition(shape) == {"p": pytest.approx(expected, abs=1)}


def test_load_fields_count_only_those_fields() -> None:
    shape = Shape((ID, VECTOR, Field("big", "VARCHAR", max_length=10_000)), (Index("vector", "FLAT"),), {"p": 10})
    assert bytes_per_partition(shape, ("id", "vector"))["p"] == 10 * (16 + 8 + 512)


@pytest.mark.parametrize(
    ("size", "text"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (3 * GiB, "3.0 GiB"), (-2 * MiB, "-2.0 MiB")]
)
def test_human(size: int, text: str) -> None:
    assert human(size) == text


NODES = Capacity((NodeMemory(1, 1000 * MiB, 100 * MiB), NodeMemory(2, 1000 * MiB, 800 * MiB)))


@pytest.mark.parametrize(
    ("needed", "headroom", "ahead", "fits", "available", "free"),
    [
        (900 * MiB, 10, 0, True, None, ""),  # node 1: 900 - 100 free; node 2: 900 - 800
        (901 * MiB, 10, 0, False, 900 * MiB, "less than that free"),
        (2000 * MiB, 10, 0, False, 900 * MiB, "less than 1000 MiB free"),
        (901 * MiB, 0, 0, True, None, ""),  # no headroom: 900 + 200
        (701 * MiB, 10, 200 * MiB, False, 700 * MiB, "less than that free after 200.0 MiB reserved for older"),
        (100 * MiB, 95, 0, False, 0, "no memory free"),  # a node over its line counts as zero, never negative
    ],
)
def test_admit(needed: int, headroom: float, ahead: int, fits: bool, available: int | None, free: str) -> None:
    refusal = admit(needed, NODES, headroom, ahead, ("a (1.0 MiB)",))
    assert (refusal is None) == fits
    if refusal is not None:
        assert (refusal.needed, refusal.available) == (needed, available)
        assert f"({needed} B)" in refusal.message and f"have {free}" in refusal.message
        assert "releasing a (1.0 MiB) would free memory" in refusal.message


@pytest.mark.parametrize(
    ("available", "needed", "text"),
    [
        (0, MiB, "no memory"),
        (-5, MiB, "no memory"),
        (int(409.8 * MiB), 534 * MiB, "less than 500 MiB"),
        (int(410.9 * MiB), 534 * MiB, "less than 500 MiB"),  # a wobble of a MiB reads the same
        (500 * MiB, 534 * MiB, "less than that"),  # 600 MiB would be above what the load needs
        (int(1.26 * GiB), 10 * GiB, "less than 1.5 GiB"),
        (900 * MiB, 10 * GiB, "less than 1000 MiB"),
        (1000, 10 * GiB, "less than 1500 B"),
    ],
)
def test_coarse_free(available: int, needed: int, text: str) -> None:
    assert coarse_free(available, needed) == text


def test_waiting_loads_go_oldest_first_and_expire() -> None:
    now = [0.0]
    waiting = WaitingLoads(ttl=60, clock=lambda: now[0])
    waiting.wait("young", "2026-01-02T00:00:00Z", 5)
    waiting.wait("old", "2026-01-01T00:00:00Z", 7)
    assert waiting.ahead("young", "2026-01-02T00:00:00Z") == 7
    assert waiting.ahead("old", "2026-01-01T00:00:00Z") == 0
    waiting.done("old")
    assert waiting.ahead("young", "2026-01-02T00:00:00Z") == 0
    waiting.wait("old", "2026-01-01T00:00:00Z", 7)
    now[0] = 61  # not renewed: its resource was deleted, or no longer loads
    assert waiting.ahead("young", "2026-01-02T00:00:00Z") == 0


def _observed(states: dict[str, LoadState]) -> Observed:
    return Observed(StateReport(LoadState.NOT_LOAD), {n: StateReport(s) for n, s in states.items()})


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        ((LoadCollection(),), 1 + 4),  # the partitions not loaded yet
        ((LoadPartitions(("c",)),), 4),
        ((ReleasePartitions(("b",)), LoadPartitions(("c",))), 4 - 2),  # releases first make room
        ((), 0),
    ],
)
def test_needed_bytes(actions: tuple[LoadCollection | LoadPartitions | ReleasePartitions, ...], expected: int) -> None:
    observed = _observed({"a": LoadState.NOT_LOAD, "b": LoadState.LOADED, "c": LoadState.NOT_LOAD})
    planned = Plan({n: Desired.LOADED for n in "abc"}, (), actions)
    assert needed_bytes(planned, observed, {"a": 1, "b": 2, "c": 4}) == expected


def test_query_nodes_of_system_info() -> None:
    """The shape Milvus 2.3.5 answers GetMetrics system_info with (trimmed), a coordinator among the nodes."""
    info = {
        "nodes_info": [
            {
                "identifier": 7,
                "infos": {"type": "querynode", "hardware_infos": {"memory": 629145600, "memory_usage": 28811264}},
            },
            {"identifier": 1, "infos": {"type": "querycoord", "hardware_infos": {"memory": 25276510208}}},
            {
                "identifier": 5,
                "infos": {"type": "querynode", "hardware_infos": {"memory": 25276510208, "memory_usage": 5}},
            },
        ]
    }
    assert query_nodes_of(info) == (NodeMemory(5, 25276510208, 5), NodeMemory(7, 629145600, 28811264))


SPEC = CollectionSpec.model_validate({"collectionName": "c", "partitions": [{"name": "big", "state": "Loaded"}]})
REF = ResourceRef(namespace="ns", name="r", uid="u1", generation=1, created="2026-01-01T00:00:00Z")


async def _pass(milvus: FakeMilvus, guard: MemoryGuard) -> dict[str, object]:
    result = await reconcile(SPEC, REF, {}, FakePorts(milvus), datetime(2026, 1, 1, tzinfo=UTC), memory=guard)
    return result.status


async def test_a_load_that_does_not_fit_sends_nothing_and_stalls_with_both_numbers() -> None:
    milvus = FakeMilvus({"_default": LoadState.NOT_LOAD, "big": LoadState.NOT_LOAD})
    milvus.rows = {"big": 10_000_000}  # 56 B a row: 560 MB
    milvus.nodes = (NodeMemory(1, 512 * MiB, 50 * MiB),)
    status = await _pass(milvus, MemoryGuard(GuardSettings(True, 10)))
    assert milvus.mutating_calls == []
    [ready] = [c for c in status["conditions"] if c["type"] == "Ready"]  # type: ignore[attr-defined]
    [stalled] = [c for c in status["conditions"] if c["type"] == "Stalled"]  # type: ignore[attr-defined]
    assert ready["reason"] == stalled["reason"] == Reason.INSUFFICIENT_MEMORY.value and stalled["status"] == "True"
    assert "(560000000 B)" in ready["message"] and "have less than 500 MiB free" in ready["message"]  # 410.8 MiB
    assert status["memory"] == {"estimatedLoadedBytes": 0, "estimatedDesiredBytes": 560_000_000}


async def test_the_same_load_goes_ahead_with_the_guard_off_or_when_it_fits() -> None:
    for guard, memory in ((GuardSettings(False), 512 * MiB), (GuardSettings(True, 10), 8 * GiB)):
        milvus = FakeMilvus({"_default": LoadState.NOT_LOAD, "big": LoadState.NOT_LOAD})
        milvus.rows = {"big": 10_000_000}
        milvus.nodes = (NodeMemory(1, memory, 50 * MiB),)
        status = await _pass(milvus, MemoryGuard(guard))
        assert [call[0] for call in milvus.mutating_calls] == ["load_partitions"]
        partitions = {p["name"]: p for p in status["partitions"]}  # type: ignore[attr-defined]
        assert partitions["big"]["estimatedMemoryBytes"] == 560_000_000
        assert ("query_node_memory",) in milvus.calls or not guard.enabled


async def test_a_steady_pass_keeps_the_estimates_in_status_and_reads_no_sizes() -> None:
    milvus = FakeMilvus({"_default": LoadState.NOT_LOAD, "big": LoadState.LOADED})
    milvus.rows = {"big": 1000}
    now = datetime(2026, 1, 1, tzinfo=UTC)
    first = await reconcile(SPEC, REF, {}, FakePorts(milvus), now, memory=MemoryGuard())
    assert ("shape", "c") in milvus.calls  # nothing estimated yet: read once
    milvus.calls.clear()
    again = await reconcile(SPEC, REF, first.status, FakePorts(milvus), now, memory=MemoryGuard())
    assert [call for call in milvus.calls if call[0] in ("shape", "query_node_memory")] == []
    assert again.status["memory"] == first.status["memory"]
    assert {p["name"]: p.get("estimatedMemoryBytes") for p in again.status["partitions"]}["big"] == 56_000


async def test_a_refused_load_still_sends_the_releases_of_its_plan() -> None:
    spec = CollectionSpec.model_validate(
        {
            "collectionName": "c",
            "partitions": [{"name": "big", "state": "Loaded"}, {"name": "old", "state": "Released"}],
        }
    )
    milvus = FakeMilvus({"_default": LoadState.NOT_LOAD, "big": LoadState.NOT_LOAD, "old": LoadState.LOADED})
    milvus.rows = {"big": 10_000_000, "old": 1000}
    milvus.nodes = (NodeMemory(1, 512 * MiB, 50 * MiB),)
    guard = MemoryGuard(GuardSettings(True, 10))
    result = await reconcile(spec, REF, {}, FakePorts(milvus), datetime(2026, 1, 1, tzinfo=UTC), memory=guard)
    assert [call[0] for call in milvus.mutating_calls] == ["release_partitions"]  # frees memory, as spec asks
    assert result.verdict.reason == Reason.INSUFFICIENT_MEMORY


class Overlapping(FakeMilvus):
    """Each of the two reads before a load waits, briefly, for the other to have started."""

    def __init__(self, partitions: dict[str, LoadState]) -> None:
        super().__init__(partitions)
        self.started = {"shape": asyncio.Event(), "query_node_memory": asyncio.Event()}

    async def _meet(self, mine: str, other: str) -> bool:
        self.started[mine].set()
        try:
            await asyncio.wait_for(self.started[other].wait(), timeout=0.5)
        except TimeoutError:
            return False
        return True

    async def shape(self, collection: str, partitions: list[str], fields: tuple[Field, ...] = ()) -> Shape:
        self.met_in_shape = await self._meet("shape", "query_node_memory")
        return await super().shape(collection, partitions, fields)

    async def query_node_memory(self, resource_groups: tuple[str, ...] = ()) -> tuple[tuple[NodeMemory, ...], str]:
        await self._meet("query_node_memory", "shape")
        return await super().query_node_memory(resource_groups)


async def test_before_a_load_the_sizes_and_the_query_nodes_memory_are_read_at_the_same_time() -> None:
    milvus = Overlapping({"_default": LoadState.NOT_LOAD, "big": LoadState.NOT_LOAD})
    milvus.rows = {"big": 1000}
    await _pass(milvus, MemoryGuard(GuardSettings(True, 10)))
    assert milvus.met_in_shape  # one round trip for both: a load starts that much sooner
    assert [call[0] for call in milvus.mutating_calls] == ["load_partitions"]


def test_loads_still_running_count_for_the_others_until_seen_to_end() -> None:
    now = [0.0]
    waiting = WaitingLoads(ttl=60, clock=lambda: now[0])
    waiting.sent("a", 5)
    waiting.sent("b", 7)
    assert (waiting.running("a"), waiting.running("b"), waiting.running("c")) == (7, 5, 12)
    waiting.ended("a")
    assert waiting.running("c") == 7
    now[0] = 61  # not seen since: its resource was deleted while loading
    assert waiting.running("c") == 0


async def test_a_load_still_running_counts_against_the_next_one_that_milvus_does_not_see_yet() -> None:
    """Milvus's memory use grows as a load runs: a burst's loads all read it before any of them counts."""
    guard = MemoryGuard(GuardSettings(True, 10))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    first, second = (FakeMilvus({"_default": LoadState.NOT_LOAD, "big": LoadState.NOT_LOAD}) for _ in range(2))
    first.rows, second.rows = {"big": 7_000_000}, {"big": 10_000_000}  # 392 MB, then 560 MB
    for milvus in (first, second):
        milvus.nodes = (NodeMemory(1, GiB, 50 * MiB),)  # 914 MB free with 10 % headroom, for both passes
    sent = await reconcile(SPEC, REF, {}, FakePorts(first), now, memory=guard)
    assert [call[0] for call in first.mutating_calls] == ["load_partitions"]
    later = ResourceRef(namespace="ns", name="r2", uid="u2", generation=1, created="2026-01-01T00:01:00Z")
    refused = await reconcile(SPEC, later, {}, FakePorts(second), now, memory=guard)
    assert second.mutating_calls == []
    assert refused.verdict.reason == Reason.INSUFFICIENT_MEMORY
    assert "for loads still running" in refused.verdict.message
    first.states["big"] = LoadState.LOADED  # its load ended; Milvus now counts it in the node's use
    await reconcile(SPEC, REF, sent.status, FakePorts(first), now, memory=guard)
    assert guard.waiting.on("fake:19530", "u2").running("u2") == 0


def _ref(uid: str, created: str) -> ResourceRef:
    return ResourceRef(namespace="ns", name=uid, uid=uid, generation=1, created=created)


def _server(name: str, node_bytes: int, partition_bytes: int) -> FakeMilvus:
    milvus = FakeMilvus({"_default": LoadState.NOT_LOAD, "big": LoadState.NOT_LOAD})
    milvus.server = name
    milvus.rows = {"big": partition_bytes // 56}  # 56 B a row
    milvus.nodes = (NodeMemory(1, node_bytes, GiB),)
    return milvus


async def test_an_older_load_refused_on_one_server_holds_back_no_load_on_another() -> None:
    """Issue 29 item 1: a 40 GiB load refused on a small Milvus must not reserve memory on a big, empty one."""
    guard = MemoryGuard(GuardSettings(True, 10))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    small, big = _server("small:19530", 2 * GiB, 40 * GiB), _server("big:19530", 48 * GiB, 10 * GiB)
    older = await reconcile(SPEC, _ref("u1", "2026-01-01T00:00:00Z"), {}, FakePorts(small), now, memory=guard)
    assert older.verdict.reason == Reason.INSUFFICIENT_MEMORY
    younger = await reconcile(SPEC, _ref("u2", "2026-01-02T00:00:00Z"), {}, FakePorts(big), now, memory=guard)
    assert younger.verdict.reason != Reason.INSUFFICIENT_MEMORY, younger.verdict.message
    assert [call[0] for call in big.mutating_calls] == ["load_partitions"]


async def test_a_load_running_on_one_server_is_not_counted_on_another() -> None:
    guard = MemoryGuard(GuardSettings(True, 10))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    first, second = _server("one:19530", 48 * GiB, 30 * GiB), _server("two:19530", 48 * GiB, 30 * GiB)
    await reconcile(SPEC, _ref("u1", "2026-01-01T00:00:00Z"), {}, FakePorts(first), now, memory=guard)
    assert [call[0] for call in first.mutating_calls] == ["load_partitions"]  # still Loading on server one
    await reconcile(SPEC, _ref("u2", "2026-01-02T00:00:00Z"), {}, FakePorts(second), now, memory=guard)
    assert [call[0] for call in second.mutating_calls] == ["load_partitions"]


async def test_two_connections_to_one_server_share_its_memory() -> None:
    """Two MilvusConnections (or one and the default) to the same server: one queue, as they share its memory."""
    guard = MemoryGuard(GuardSettings(True, 10))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    first, second = _server("same:19530", 48 * GiB, 30 * GiB), _server("same:19530", 48 * GiB, 30 * GiB)
    await reconcile(SPEC, _ref("u1", "2026-01-01T00:00:00Z"), {}, FakePorts(first), now, memory=guard)
    refused = await reconcile(SPEC, _ref("u2", "2026-01-02T00:00:00Z"), {}, FakePorts(second), now, memory=guard)
    assert refused.verdict.reason == Reason.INSUFFICIENT_MEMORY and second.mutating_calls == []


async def test_a_deleted_resource_stops_holding_memory_at_once() -> None:
    """A retired (deleted) resource's waiting load is dropped when it goes, not only after the entries' TTL."""
    worker = CollectionWorker(Settings(_cli_parse_args=[]), cast(KubeApi, None), cast(Connections, None))  # type: ignore[call-arg]
    worker.memory = guard = MemoryGuard(GuardSettings(True, 10))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    older = _server("one:19530", 48 * GiB, 40 * GiB)
    older.nodes = (NodeMemory(1, 32 * GiB, GiB),)  # too small for it: it waits
    await reconcile(SPEC, _ref("u1", "2026-01-01T00:00:00Z"), {}, FakePorts(older), now, memory=guard)
    worker.retire(cast(kopf.Body, {"metadata": {"namespace": "ns", "name": "u1", "uid": "u1"}}))
    younger = _server("one:19530", 48 * GiB, 10 * GiB)
    await reconcile(SPEC, _ref("u2", "2026-01-02T00:00:00Z"), {}, FakePorts(younger), now, memory=guard)
    assert [call[0] for call in younger.mutating_calls] == ["load_partitions"]


class NaiveLoads:
    """The old, obvious WaitingLoads (a scan of every entry), to check the incremental one against."""

    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self.ttl, self.clock = ttl, clock
        self.entries: dict[str, tuple[str, int, float]] = {}
        self.runs: dict[str, tuple[int, float]] = {}

    def ahead(self, key: str, created: str) -> int:
        now = self.clock()
        return sum(
            needed
            for other, (since, needed, seen) in self.entries.items()
            if other != key and now - seen <= self.ttl and (since, other) < (created, key)
        )

    def running(self, key: str) -> int:
        now = self.clock()
        return sum(needed for other, (needed, sent) in self.runs.items() if other != key and now - sent <= self.ttl)


def test_waiting_loads_agree_with_a_scan_of_every_entry() -> None:
    """Renewals, new entries, admissions, ends and expiry in a random order: the prefix sums never go stale."""
    rng = random.Random(29)  # noqa: S311 - a reproducible order, not a secret
    now = [0.0]
    fast, slow = WaitingLoads(ttl=30, clock=lambda: now[0]), NaiveLoads(30, lambda: now[0])
    keys = [f"r{i:02d}" for i in range(40)]
    created = {key: f"2026-01-01T00:{rng.randrange(60):02d}:00Z" for key in keys}  # ties broken by name
    for _ in range(3000):
        key, needed, op = rng.choice(keys), rng.randrange(1, 1000), rng.random()
        now[0] += rng.random()
        if op < 0.4:
            fast.wait(key, created[key], needed)
            slow.entries[key] = (created[key], needed, now[0])
        elif op < 0.55:
            fast.done(key)
            slow.entries.pop(key, None)
        elif op < 0.7:
            fast.sent(key, needed)
            slow.runs[key] = (needed, now[0])
        elif op < 0.8:
            fast.ended(key)
            slow.runs.pop(key, None)
        elif op < 0.85:
            fast.forget(key)
            slow.entries.pop(key, None)
            slow.runs.pop(key, None)
        assert fast.ahead(key, created[key]) == slow.ahead(key, created[key])
        assert fast.running(key) == slow.running(key)


def test_expired_entries_are_pruned_as_checks_go() -> None:
    now = [0.0]
    waiting = WaitingLoads(ttl=60, clock=lambda: now[0])
    for i in range(100):
        waiting.wait(f"r{i}", f"2026-01-01T00:00:{i:02d}Z", 1)
        waiting.sent(f"r{i}", 1)
    now[0] = 61
    waiting.wait("new", "2026-01-02T00:00:00Z", 1)
    assert waiting.ahead("new", "2026-01-02T00:00:00Z") == 0
    assert waiting.running("new") == 0
    waiting.done("new")
    assert waiting.empty()  # nothing of the 100 is kept: memory stays bounded by the live entries


def test_loads_by_server_keep_each_server_apart_and_drop_what_goes() -> None:
    loads = LoadsByServer(ttl=60)
    loads.on("one:19530", "a").wait("a", "2026-01-01T00:00:00Z", 7)
    loads.on("one:19530", "b").sent("b", 5)
    assert loads.on("two:19530", "c").ahead("c", "2026-01-02T00:00:00Z") == 0
    assert loads.on("one:19530", "d").ahead("d", "2026-01-02T00:00:00Z") == 7
    assert loads.on("one:19530", "d").running("d") == 5
    loads.ended("b")
    assert loads.on("one:19530", "d").running("d") == 0
    loads.on("two:19530", "a")  # a's connection now points at another server: its old entry goes
    assert loads.on("one:19530", "d").ahead("d", "2026-01-02T00:00:00Z") == 0
    for key in "abd":
        loads.forget(key)
    loads.ended("c")  # a resource whose server's (empty) entries were dropped
    assert loads._servers == {}  # servers without entries are not kept: connections come and go


@pytest.mark.parametrize(
    ("uri", "server"),
    [
        ("http://127.0.0.1:19530", "127.0.0.1:19530"),
        ("tcp://Milvus.Example:19530/db1", "milvus.example:19530"),  # the database is not the server
        ("http://milvus", "milvus:19530"),
        ("https://in01.example.com", "in01.example.com:443"),
        ("unix:/tmp/milvus.sock", "unix:/tmp/milvus.sock"),
        ("http://host:notaport", "http://host:notaport"),
    ],
)
def test_server_address(uri: str, server: str) -> None:
    assert Endpoint(uri, token="root:Milvus").server == server == server_address(uri)
