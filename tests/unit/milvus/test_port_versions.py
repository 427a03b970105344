"""The Milvus adapter by server version: version per client, replica_number sent when known, and the answers of
newer servers built exactly as pymilvus 3.0.2 builds them (`MilvusException.from_status`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from pymilvus import MilvusException
from pymilvus.client.prepare import Prepare

from milvusops.core.capabilities import ROWS, capabilities
from milvusops.core.failures import FailureError, Reason
from milvusops.core.model import LoadOptions, LoadPriority, LoadState
from milvusops.core.observed import CollectionInfo
from milvusops.milvus import port as milvus_port
from milvusops.milvus.errors import classify
from milvusops.milvus.port import MilvusClientPort
from milvusops.runtime.observe import observe
from tests.unit.fake_grpc import server_status


@dataclass
class Server:
    """What the fake MilvusClient answers, and what it was asked."""

    version: str = "v2.5.27"
    load_state_error: Exception | None = None
    fields: list[dict[str, Any]] = field(default_factory=lambda: [{"name": "id"}, {"name": "vector"}])
    version_reads: int = 0
    replica_error: Exception | None = None
    loads: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Server:
    state = Server()

    class FakeMilvusClient:
        def __init__(self, **_: Any) -> None:
            pass

        def get_server_version(self, timeout: float) -> str:
            state.version_reads += 1
            return state.version

        def get_load_state(self, collection: str, partition: str, timeout: float) -> dict[str, Any]:
            if state.load_state_error is not None:
                raise state.load_state_error
            from pymilvus.client.types import LoadState as MilvusLoadState

            return {"state": MilvusLoadState.NotLoad}

        def list_partitions(self, collection: str, timeout: float) -> list[str]:
            return ["_default"]

        def describe_collection(self, collection: str, timeout: float) -> dict[str, Any]:
            return {"collection_id": 4507, "fields": state.fields}

        def load_collection(self, collection: str, timeout: float, **kwargs: Any) -> None:
            state.loads.append(("load_collection", kwargs))

        def load_partitions(self, collection: str, partitions: list[str], timeout: float, **kwargs: Any) -> None:
            state.loads.append(("load_partitions", kwargs))

        def describe_replica(self, collection: str, timeout: float) -> list[Any]:
            if state.replica_error is not None:
                raise state.replica_error
            return []

        def close(self) -> None:
            pass

    monkeypatch.setattr(milvus_port, "MilvusClient", FakeMilvusClient)
    return state


async def test_version_is_read_once_per_client_and_again_after_a_new_one(
    server: Server, port: MilvusClientPort
) -> None:
    assert await port.version() == "v2.5.27"
    assert await port.version() == "v2.5.27"
    assert server.version_reads == 1
    port.close()  # a changed connection or a reconnect: the next call builds a new client
    server.version = "v2.6.18"
    assert await port.version() == "v2.6.18"
    assert server.version_reads == 2


async def test_server_version_asks_every_time_and_refreshes_the_kept_one(
    server: Server, port: MilvusClientPort
) -> None:
    await port.version()
    server.version = "v2.5.28"  # an in-place upgrade behind the same address
    assert await port.server_version() == "v2.5.28"
    assert await port.version() == "v2.5.28"
    assert server.version_reads == 2


@pytest.mark.parametrize("replicas", [1, 2, None])
async def test_replica_number_is_sent_when_known(server: Server, port: MilvusClientPort, replicas: int | None) -> None:
    """A number (from spec, or what Milvus has: `load_options.effective`) is sent; unset, none is, and pymilvus 2.5+
    sends 0: the server picks its own (2.4+: the collection's or database's replica property, else 1; #2782)."""
    options = LoadOptions(replicas=replicas)
    await port.load_collection("c", options)
    await port.load_partitions("c", ["p"], options)
    assert [(method, kwargs.get("replica_number")) for method, kwargs in server.loads] == [
        ("load_collection", replicas),
        ("load_partitions", replicas),
    ]
    # and pymilvus 3.0.2 puts it into the request it sends
    collection_kwargs, partition_kwargs = (kwargs for _, kwargs in server.loads)
    assert Prepare.load_collection("c", **collection_kwargs).replica_number == (replicas or 0)
    assert Prepare.load_partitions("c", ["p"], **partition_kwargs).replica_number == (replicas or 0)


async def test_describe_finds_the_partition_key(server: Server, port: MilvusClientPort) -> None:
    assert await port.describe("c") == CollectionInfo("4507", None)
    server.fields = [{"name": "id"}, {"name": "tenant", "is_partition_key": True}, {"name": "vector"}]
    assert await port.describe("c") == CollectionInfo("4507", "tenant")


# querycoordv2/services.go ShowLoadCollections before 2.6.16: merr.Status(errors.Wrap(cached, "show collection
# failed")), so the code is the cached failure's and the message is prefixed; the proxy passes it on.
FAILED_LOADS = [
    pytest.param(server_status(604, "show collection failed: segment load failed[segment=7]"), id="604"),
    pytest.param(server_status(3, "show collection failed: memory limit exceeded[predict(MB)=9][limit(MB)=8]"), id="3"),
    pytest.param(
        server_status(65535, "show collection failed: load segment failed, OOM if load, maxSegmentSize = 512 MB"),
        id="65535-oom",
    ),
]


@pytest.mark.parametrize("error", FAILED_LOADS)
async def test_get_load_state_raising_a_failed_load_reads_as_not_loaded_with_the_cause(
    server: Server, port: MilvusClientPort, error: MilvusException
) -> None:
    server.load_state_error = error
    with pytest.raises(FailureError) as raised:
        await port.load_state("c")
    assert raised.value.failure.reason == Reason.LOAD_FAILED
    assert str(error.message) in raised.value.failure.message
    assert "before 2.6.16" in raised.value.failure.message  # v2.5.27 keeps repeating it

    seen = await observe(port, "c")
    assert seen.collection.state == LoadState.NOT_LOAD
    assert seen.failed_load == raised.value.failure


async def test_a_failed_load_on_a_fixed_server_has_no_24h_hint(server: Server, port: MilvusClientPort) -> None:
    server.version = "v2.6.16"
    server.load_state_error = server_status(604, "show collection failed: segment load failed[segment=7]")
    with pytest.raises(FailureError) as raised:
        await port.load_state("c")
    assert raised.value.failure.reason == Reason.LOAD_FAILED
    assert "24 h" not in raised.value.failure.message


async def test_other_get_load_state_errors_are_not_failed_loads(server: Server, port: MilvusClientPort) -> None:
    server.load_state_error = server_status(100, "collection not found[collection=c]")
    with pytest.raises(FailureError) as raised:
        await port.load_state("c")
    assert raised.value.failure.reason == Reason.COLLECTION_NOT_FOUND


@pytest.mark.parametrize("version", ["v2.3.5", "v2.4.13", "v2.5.27", "v2.6.18", "v2.6.19", "v3.0.0"])
@pytest.mark.parametrize("method", ["load", "release"])
def test_partition_key_refusal_of_each_version(version: str, method: str) -> None:
    code = capabilities(version).partition_key_refusal_code
    failure = classify(server_status(code, f"disable {method} partitions if partition key mode is used"))
    assert failure.reason == Reason.PARTITION_KEY_COLLECTION
    assert failure.stalled
    assert "only as a whole" in failure.message


def test_every_row_cites_milvus_source() -> None:
    assert all(row.source.startswith("internal/") for row in ROWS)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        # Milvus 2.3.5 cluster, a query node SIGKILLed (e2e test_cluster.py): 901 for a moment, then 401
        (901, "node not found[node=6]"),
        (401, "no available nodes in replica: replica not available[replica=470807354396901378]"),
    ],
)
async def test_a_replica_without_its_query_node_is_an_answer_not_a_failure(
    server: Server, port: MilvusClientPort, code: int, message: str
) -> None:
    server.replica_error = server_status(code, message)
    replicas = await port.replicas("c")
    assert replicas is not None and replicas.count is None
    assert message in replicas.unavailable


async def test_other_describe_replica_errors_still_fail(server: Server, port: MilvusClientPort) -> None:
    server.replica_error = server_status(101, "collection not loaded[collection=4507]")
    with pytest.raises(FailureError):
        await port.replicas("c")


def _requests(server: Server) -> list[Any]:
    """The requests pymilvus 3.0.2 builds from what the port passed to MilvusClient."""
    built = []
    for method, kwargs in server.loads:
        if method == "load_collection":
            built.append(Prepare.load_collection("c", **kwargs))
        else:
            built.append(Prepare.load_partitions("c", ["p"], **kwargs))
    return built


@pytest.mark.parametrize(("priority", "sent"), [(LoadPriority.LOW, "low"), (LoadPriority.HIGH, "high")])
async def test_priority_reaches_load_params_as_the_proxy_reads_it(
    server: Server, port: MilvusClientPort, priority: LoadPriority, sent: str
) -> None:
    # proxy GetLoadPriority: load_params["load_priority"] == "low" is low, anything else high
    options = LoadOptions(priority=priority)
    await port.load_collection("c", options)
    await port.load_partitions("c", ["p"], options)
    assert [dict(request.load_params) for request in _requests(server)] == [{"load_priority": sent}] * 2


async def test_load_fields_and_skip_dynamic_field_reach_the_request(server: Server, port: MilvusClientPort) -> None:
    options = LoadOptions(load_fields=("id", "vector"), skip_load_dynamic_field=True)
    await port.load_collection("c", options)
    await port.load_partitions("c", ["p"], options)
    for request in _requests(server):
        assert list(request.load_fields) == ["id", "vector"]
        assert request.skip_load_dynamic_field is True
        assert not request.refresh


async def test_plain_options_send_no_optional_field(server: Server, port: MilvusClientPort) -> None:
    # a server that lacks an option never sees it unless the spec asks
    await port.load_collection("c", LoadOptions())
    (request,) = _requests(server)
    assert not request.load_fields and not request.skip_load_dynamic_field
    assert dict(request.load_params) == {} and not request.refresh


async def test_refresh_sets_the_request_refresh_flag(server: Server, port: MilvusClientPort) -> None:
    await port.load_collection("c", LoadOptions(), refresh=True)
    await port.load_partitions("c", ["p"], LoadOptions(), refresh=True)
    assert [request.refresh for request in _requests(server)] == [True, True]
    # still started, not awaited: pymilvus would otherwise poll the refresh progress until done
    assert all(kwargs["_async"] is True and kwargs["sync"] is False for _, kwargs in server.loads)
