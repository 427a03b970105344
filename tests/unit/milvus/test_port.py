"""MilvusClientPort over a fake MilvusClient: one connect in flight, and no client closed under a call."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from pymilvus import DataType, MilvusException
from pymilvus.client.grpc_handler import GrpcHandler
from pymilvus.client.types import LoadState as MilvusLoadState
from pymilvus.grpc_gen import common_pb2, milvus_pb2

from milvusops.core.endpoint import Endpoint
from milvusops.core.failures import FailureError, Reason
from milvusops.core.observed import Replicas
from milvusops.kube.api import KubeApi
from milvusops.milvus import port as milvus_port
from milvusops.milvus.call_slots import Slots
from milvusops.milvus.port import MilvusClientPort
from milvusops.runtime.connections import Connections
from milvusops.runtime.settings import Settings
from milvusops.telemetry import metrics
from tests.unit.fake_grpc import FakeRpcError

CALLS = 8


@dataclass
class Fakes:
    """What the fake MilvusClient class does, and what was done to it."""

    connect_seconds: float = 0.0
    connect_error: BaseException | None = None
    connects: int = 0
    clients: list[Any] = field(default_factory=list)
    call_gate: threading.Event = field(default_factory=threading.Event)
    in_call: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Fakes:
    state = Fakes()
    state.call_gate.set()

    class FakeMilvusClient:
        def __init__(self, **_: Any) -> None:
            state.connects += 1
            time.sleep(state.connect_seconds)  # like pymilvus: the connect happens in the constructor
            if state.connect_error is not None:
                raise state.connect_error
            self.closed = False
            state.clients.append(self)

        def get_load_state(self, collection: str, partition: str, timeout: float) -> dict[str, Any]:
            state.in_call.set()
            state.call_gate.wait(5)
            if self.closed:  # what pymilvus raises once close() dropped the handler
                raise MilvusException(message="should create connection first")
            return {"state": MilvusLoadState.Loaded}

        def close(self) -> None:
            self.closed = True

    monkeypatch.setattr(milvus_port, "MilvusClient", FakeMilvusClient)
    return state


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(CALLS)
    yield pool
    pool.shutdown(wait=True)


def port(executor: ThreadPoolExecutor, token: str = "", timeout: float = 10.0) -> MilvusClientPort:
    return MilvusClientPort(Endpoint("http://milvus:19530", token, timeout), "default", executor, Slots(CALLS))


async def closed(client: Any) -> None:
    """Clients are closed on the executor, never on the event loop: a moment after their last call."""
    deadline = time.monotonic() + 2
    while not client.closed:
        assert time.monotonic() < deadline, "the client was not closed"
        await asyncio.sleep(0.01)


async def outcomes(target: MilvusClientPort, calls: int = CALLS) -> tuple[list[Any], float]:
    started = time.perf_counter()
    results = await asyncio.gather(*(target.load_state("c") for _ in range(calls)), return_exceptions=True)
    return results, time.perf_counter() - started


async def test_concurrent_calls_share_one_slow_failing_connect(fakes: Fakes, executor: ThreadPoolExecutor) -> None:
    # Milvus down: every connect takes 0.5 s to fail; 8 calls used to queue behind one lock, 4 s in all
    fakes.connect_seconds = 0.5
    fakes.connect_error = MilvusException(code=2, message="Fail connecting to server on milvus:19530")
    results, elapsed = await outcomes(port(executor))
    assert all(isinstance(r, FailureError) and r.failure.reason == Reason.MILVUS_UNAVAILABLE for r in results)
    assert fakes.connects == 1
    assert elapsed < 1.5, f"{CALLS} calls took {elapsed:.1f} s"


async def test_concurrent_calls_share_one_client(fakes: Fakes, executor: ThreadPoolExecutor) -> None:
    fakes.connect_seconds = 0.2
    results, _ = await outcomes(port(executor))
    assert all(r.state.value == "Loaded" for r in results), results
    assert fakes.connects == 1


async def test_waiters_give_up_after_their_own_timeout(fakes: Fakes, executor: ThreadPoolExecutor) -> None:
    # a connect stuck past its timeout (pymilvus holds one process-wide lock while connecting)
    fakes.connect_seconds = 3.0
    fakes.connect_error = MilvusException(code=2, message="Fail connecting to server on milvus:19530")
    target = port(executor, timeout=0.3)
    leader = asyncio.ensure_future(target.load_state("c"))
    await asyncio.sleep(0.1)
    results, elapsed = await outcomes(target, CALLS - 1)
    assert all(isinstance(r, FailureError) and r.failure.reason == Reason.MILVUS_UNAVAILABLE for r in results)
    assert elapsed < 1.0, f"waiters took {elapsed:.1f} s"
    with pytest.raises(FailureError):
        await leader


async def test_a_failed_connect_is_tried_again_by_the_next_call(fakes: Fakes, executor: ThreadPoolExecutor) -> None:
    fakes.connect_error = MilvusException(code=2, message="Fail connecting to server on milvus:19530")
    target = port(executor)
    with pytest.raises(FailureError):
        await target.load_state("c")
    fakes.connect_error = None
    assert (await target.load_state("c")).state.value == "Loaded"
    assert fakes.connects == 2


async def test_close_waits_for_the_call_in_flight(fakes: Fakes, executor: ThreadPoolExecutor) -> None:
    target = port(executor)
    await target.load_state("c")  # connected
    fakes.call_gate.clear()
    fakes.in_call.clear()
    call = asyncio.ensure_future(target.load_state("c"))
    await asyncio.to_thread(fakes.in_call.wait, 5)
    target.close()  # the connection changed or the operator stops, while a call runs
    assert not fakes.clients[0].closed
    fakes.call_gate.set()
    assert (await call).state.value == "Loaded"
    await closed(fakes.clients[0])  # by the last call out, on the executor


async def test_dropped_pool_lets_the_call_in_flight_finish(fakes: Fakes, tmp_path: Path) -> None:
    settings = Settings(_cli_parse_args=[])  # type: ignore[call-arg]
    pool = Connections(settings, cast(KubeApi, None), tmp_path)
    target = await pool.port("ns", None, "default")  # the default connection needs no API server
    fakes.call_gate.clear()
    call = asyncio.ensure_future(target.load_state("c"))
    await asyncio.to_thread(fakes.in_call.wait, 5)
    pool.close()
    fakes.call_gate.set()
    assert (await call).state.value == "Loaded"
    await closed(fakes.clients[0])


async def test_rejected_credentials_name_the_user_not_the_password(fakes: Fakes, executor: ThreadPoolExecutor) -> None:
    # seen on Milvus 2.3.5: a wrong password fails the connect with code 2, caused by UNAUTHENTICATED
    refused = MilvusException(code=2, message="Fail connecting to server on milvus:19530")
    refused.__cause__ = FakeRpcError(grpc.StatusCode.UNAUTHENTICATED, "auth check failure")
    fakes.connect_error = refused
    with pytest.raises(FailureError) as caught:
        await port(executor, token="alice:s3cret").load_state("c")
    assert caught.value.failure.reason == Reason.UNAUTHENTICATED
    assert "user alice" in caught.value.failure.message
    assert "s3cret" not in caught.value.failure.message


async def test_an_unreachable_server_with_a_token_gets_no_credentials_hint(
    fakes: Fakes, executor: ThreadPoolExecutor
) -> None:
    refused = MilvusException(code=2, message="Fail connecting to server on milvus:19530")
    refused.__cause__ = FakeRpcError(grpc.StatusCode.UNAVAILABLE, "Connection refused")
    fakes.connect_error = refused
    with pytest.raises(FailureError) as caught:
        await port(executor, token="alice:s3cret").load_state("c")
    assert caught.value.failure.reason == Reason.MILVUS_UNAVAILABLE
    assert "credentials" not in caught.value.failure.message


async def test_the_estimate_reuses_the_schema_the_observation_described(
    monkeypatch: pytest.MonkeyPatch, executor: ThreadPoolExecutor
) -> None:
    """Milvus runs describe_collection one at a time with loads (the proxy's DDL queue): asked once a pass."""
    asked: list[str] = []
    schema = [
        {"name": "id", "type": DataType.INT64},
        {"name": "v", "type": DataType.FLOAT_VECTOR, "params": {"dim": 8}},
    ]

    class Client:
        def __init__(self, **_: Any) -> None:
            pass

        def describe_collection(self, collection: str, timeout: float) -> dict[str, Any]:
            asked.append("describe_collection")
            return {"collection_id": 7, "fields": schema}

        def _get_connection(self) -> Client:
            return self

        def list_indexes(self, collection: str, timeout: float) -> list[Any]:
            asked.append("list_indexes")
            return []

        def get_partition_stats(self, collection: str, partition: str, timeout: float) -> dict[str, Any]:
            asked.append("get_partition_stats")
            return {"row_count": 10}

    monkeypatch.setattr(milvus_port, "MilvusClient", Client)
    target = port(executor)
    info = await target.describe("c")
    shape = await target.shape("c", ["_default"], info.fields)
    assert asked == ["describe_collection", "list_indexes", "get_partition_stats"]
    assert [f.name for f in shape.fields] == ["id", "v"] and shape.rows == {"_default": 10}
    asked.clear()
    await target.shape("c", ["_default"])  # no observation's schema at hand: described here
    assert asked == ["describe_collection", "list_indexes", "get_partition_stats"]


@pytest.mark.parametrize("queued", ["list_partitions", "describe_replica"])
async def test_calls_milvus_queues_leave_slots_for_load_state_checks(
    monkeypatch: pytest.MonkeyPatch, executor: ThreadPoolExecutor, queued: str
) -> None:
    gate, asking = threading.Event(), threading.Event()

    def wait_in_milvus_queue(*_: Any, **__: Any) -> list[Any]:
        asking.set()
        gate.wait(5)  # Milvus's queue: one at a time, and slow in a burst
        return []

    class Client:
        def __init__(self, **_: Any) -> None:
            setattr(self, queued, wait_in_milvus_queue)

        def get_load_state(self, collection: str, partition: str, timeout: float) -> dict[str, Any]:
            return {"state": MilvusLoadState.Loaded}

    monkeypatch.setattr(milvus_port, "MilvusClient", Client)
    target = MilvusClientPort(Endpoint("http://milvus:19530", "", 10.0), "default", executor, Slots(2, queued=1))
    ask = target.list_partitions if queued == "list_partitions" else target.replicas
    waiting = [asyncio.create_task(ask(f"c{i}")) for i in range(3)]
    await asyncio.to_thread(asking.wait, 5)
    state = await asyncio.wait_for(target.load_state("c"), 2)  # not stuck behind the queued calls
    assert state.state.value == "Loaded"
    gate.set()
    await asyncio.gather(*waiting)


def test_describe_replica_waits_in_milvus_queue() -> None:
    """pymilvus asks DescribeCollection (queued in Milvus before 2.5) for the id GetReplicas wants."""
    source = inspect.getsource(GrpcHandler.describe_replica)
    assert "self.describe_collection(" in source
    assert source.index("self.describe_collection(") < source.index("GetReplicas")


class ReplicaClient:
    """describe_replica as pymilvus makes it (DescribeCollection first) beside the bare GetReplicas stub."""

    def __init__(self, answer: Any, asked: list[str]) -> None:
        self.asked = asked
        self.answer = answer
        self._stub = self

    def _get_connection(self) -> Any:
        return self

    def GetReplicas(self, request: Any, timeout: float) -> Any:
        self.asked.append(f"GetReplicas {request.collectionID}")
        return self.answer

    def describe_replica(self, collection: str, timeout: float) -> list[Any]:
        self.asked.append("DescribeCollection")
        self.asked.append("GetReplicas by name")
        return []


def replicas_answer(code: int = 0, nodes: tuple[list[int], ...] = ([1], [2])) -> Any:
    status = common_pb2.Status(code=code, reason="replica not available" if code else "")
    listed = [
        milvus_pb2.ReplicaInfo(replicaID=10 + i, node_ids=n, resource_group_name="rg") for i, n in enumerate(nodes)
    ]
    return milvus_pb2.GetReplicasResponse(status=status, replicas=listed if not code else [])


async def ask_replicas(
    monkeypatch: pytest.MonkeyPatch, executor: ThreadPoolExecutor, answer: Any, collection_id: str
) -> tuple[Any, list[str]]:
    asked: list[str] = []
    monkeypatch.setattr(milvus_port, "MilvusClient", lambda **_: ReplicaClient(answer, asked))
    target = MilvusClientPort(Endpoint("http://milvus:19530", "", 10.0), "default", executor, Slots(2, queued=1))
    return await target.replicas("c", collection_id), asked


async def test_replicas_of_a_known_collection_id_are_asked_without_describing_it(
    monkeypatch: pytest.MonkeyPatch, executor: ThreadPoolExecutor
) -> None:
    found, asked = await ask_replicas(monkeypatch, executor, replicas_answer(nodes=([1], [])), "42")
    assert asked == ["GetReplicas 42"]  # DescribeCollection waits in Milvus's queue behind every load
    assert found == Replicas(2, ("rg",), "no query node serves replica(s) 11", ("11",))


async def test_a_replica_without_its_query_node_is_an_answer_when_asked_by_id(
    monkeypatch: pytest.MonkeyPatch, executor: ThreadPoolExecutor
) -> None:
    found, asked = await ask_replicas(monkeypatch, executor, replicas_answer(code=401), "42")
    assert asked == ["GetReplicas 42"]
    assert found == Replicas(None, unavailable="replica not available")


@pytest.mark.parametrize("collection_id", ["", "42"])
async def test_replicas_are_asked_by_name_without_an_id_or_when_the_id_is_not_loaded(
    monkeypatch: pytest.MonkeyPatch, executor: ThreadPoolExecutor, collection_id: str
) -> None:
    """A collection recreated since the observation has a new id; Milvus knows no replicas of the old one."""
    found, asked = await ask_replicas(monkeypatch, executor, replicas_answer(code=400), collection_id)
    assert asked[-2:] == ["DescribeCollection", "GetReplicas by name"]
    assert found == Replicas(0, (), "")


async def test_replicas_asked_by_id_that_fail_in_transport_are_asked_through_pymilvus(
    monkeypatch: pytest.MonkeyPatch, executor: ThreadPoolExecutor
) -> None:
    """The bare stub has none of pymilvus's retries and reconnects: a Milvus that is down fails as for any call."""
    asked: list[str] = []

    class Down(ReplicaClient):
        def GetReplicas(self, request: Any, timeout: float) -> Any:
            asked.append("GetReplicas by id")
            raise FakeRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses")

        def describe_replica(self, collection: str, timeout: float) -> list[Any]:
            asked.append("describe_replica")
            raise MilvusException(code=2, message="Fail connecting to server on milvus:19530")

    monkeypatch.setattr(milvus_port, "MilvusClient", lambda **_: Down(None, asked))
    target = MilvusClientPort(Endpoint("http://milvus:19530", "", 10.0), "default", executor, Slots(2, queued=1))
    with pytest.raises(FailureError) as failed:
        await target.replicas("c", "42")
    assert asked == ["GetReplicas by id", "describe_replica"]
    assert failed.value.failure.reason == Reason.MILVUS_UNAVAILABLE
    assert "Fail connecting to server" in failed.value.failure.message


async def test_call_duration_leaves_out_the_wait_for_a_call_slot_which_has_its_own_metric(
    fakes: Fakes, executor: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    durations: list[tuple[str, str, float]] = []
    waits: list[tuple[str, float]] = []
    monkeypatch.setattr(metrics, "observe_milvus_call", lambda *sample: durations.append(sample))
    monkeypatch.setattr(metrics, "observe_slot_wait", lambda *sample: waits.append(sample))
    target = MilvusClientPort(Endpoint("http://milvus:19530", "", 10.0), "default", executor, Slots(1))
    await target.load_state("c")  # connected: no connect inside the calls below
    durations.clear()
    waits.clear()
    fakes.call_gate.clear()
    first = asyncio.create_task(target.load_state("c"))
    await asyncio.to_thread(fakes.in_call.wait, 5)
    second = asyncio.create_task(target.load_state("c"))  # waits for the one slot
    await asyncio.sleep(0.4)
    fakes.call_gate.set()
    await asyncio.gather(first, second)
    assert len(durations) == 2 and all(outcome == "ok" for _, outcome, _ in durations)
    held, waited = sorted(seconds for *_, seconds in durations)[::-1]  # the first call held the slot 0.4 s
    assert held >= 0.3 and waited < 0.2, f"slot wait counted as Milvus time: {durations}"
    assert len(waits) == 2 and sorted(seconds for _, seconds in waits)[1] >= 0.3, waits
    assert {method for method, _ in waits} == {"get_load_state"}
