"""A SCALE STAND-IN, NOT A MILVUS: an asyncio gRPC server answering only the calls the operator makes
through pymilvus 3.0.2's MilvusClient, from an in-memory store, after latencies sampled from
distributions fitted to the real Milvus 2.3.5 (fit.py, measured.json). For bench/ only.

    .venv/bin/python -m bench.standin.server --port 19530 [--seed 1] [--ddl-concurrency 1]

Any token is accepted. Every other RPC answers UNIMPLEMENTED and is counted, so a missing one shows.
As Milvus 2.3.5's proxy, it runs the requests of its DDL queue (QUEUED) one at a time, each for its
sampled latency; --ddl-concurrency N > 1 runs N at once and answers as v2.5.0, whose proxy has
`proxy.ddlConcurrency` (the latencies stay those measured on 2.3.5).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc, schema_pb2

from bench.standin.fit import MEASURED, LogNormal, load_fitted
from bench.standin.state import Collection, Store, UnknownError

VERSION = "v2.3.5"  # what capabilities() reads: the stand-in answers as 2.3.5 does
POOLED_VERSION = "v2.5.0"  # with more than one DDL request at a time: the first Milvus that runs them so
# what 2.3.5's proxy puts in its DDL queue (internal/proxy/impl.go); GetLoadState, GetReplicas and GetMetrics bypass it
QUEUED = frozenset(
    {
        "DescribeCollection",
        "ShowPartitions",
        "DescribeIndex",
        "GetPartitionStatistics",
        "LoadCollection",
        "LoadPartitions",
        "ReleaseCollection",
        "ReleasePartitions",
    }
)
OK = common_pb2.Status(error_code=common_pb2.Success, code=0)
# a query node with room for any load: the capacity guard reads memory from GetMetrics system_info
SYSTEM_INFO = {
    "nodes_info": [
        {"identifier": 1, "infos": {"type": "querynode", "hardware_infos": {"memory": 2**40, "memory_usage": 2**30}}}
    ]
}


def collection_schema(name: str) -> schema_pb2.CollectionSchema:
    """An auto-id INT64 key and one dim-8 float vector: what every collection of the bench has."""
    fields = [
        schema_pb2.FieldSchema(fieldID=100, name="id", data_type=schema_pb2.Int64, is_primary_key=True, autoID=True),
        schema_pb2.FieldSchema(
            fieldID=101,
            name="vector",
            data_type=schema_pb2.FloatVector,
            type_params=[common_pb2.KeyValuePair(key="dim", value="8")],
        ),
    ]
    return schema_pb2.CollectionSchema(name=name, fields=fields)


DEFAULT_SCHEMA = collection_schema("standin")


# not timed on their own: get_load_state adds GetLoadingProgress while Loading; Connect, once per client
ALIASES = {"GetLoadingProgress": "GetLoadState", "Connect": "GetVersion"}


def _named(request: Any) -> tuple[str, tuple[str, ...]]:
    """One partition asked alone, or several asked together (answered as one state)."""
    names = tuple(request.partition_names)
    return (names[0], ()) if len(names) == 1 else ("", names)


def failed(error: UnknownError) -> common_pb2.Status:
    return common_pb2.Status(error_code=common_pb2.UnexpectedError, code=error.code, reason=error.message)


class Latencies:
    """One sampled delay per RPC; calls without a measured distribution (setup) answer at once."""

    def __init__(self, fitted: dict[str, LogNormal], seed: int) -> None:
        self.fitted = fitted
        self.rng = random.Random(seed)  # noqa: S311 - a simulation, not security

    async def wait(self, rpc: str) -> None:
        distribution = self.fitted.get(ALIASES.get(rpc, rpc))
        if distribution is not None:
            await asyncio.sleep(distribution.sample(self.rng))

    def loading(self, partitions: bool) -> float:
        distribution = self.fitted["loading_partition" if partitions else "loading_collection"]
        return distribution.sample(self.rng)


class StandIn(milvus_pb2_grpc.MilvusServiceServicer):  # type: ignore[misc]
    def __init__(self, latencies: Latencies, store: Store | None = None, ddl_concurrency: int = 1) -> None:
        self.latencies = latencies
        self.store = store or Store()
        self.calls: Counter[str] = Counter()
        self.ddl = asyncio.Semaphore(ddl_concurrency)  # FIFO, as the proxy's queue
        self.version = VERSION if ddl_concurrency == 1 else POOLED_VERSION

    async def _answer(self, rpc: str, build: Callable[[], Any], error: Callable[[common_pb2.Status], Any]) -> Any:
        self.calls[rpc] += 1
        if rpc in QUEUED:
            async with self.ddl:  # the whole sampled latency: an upper bound, it includes the client's round trip
                return await self._after_latency(rpc, build, error)
        return await self._after_latency(rpc, build, error)

    async def _after_latency(
        self, rpc: str, build: Callable[[], Any], error: Callable[[common_pb2.Status], Any]
    ) -> Any:
        await self.latencies.wait(rpc)
        try:
            return build()
        except UnknownError as exc:
            return error(failed(exc))

    async def Connect(self, request: Any, context: Any) -> Any:
        info = common_pb2.ServerInfo(build_tags=self.version, reserved={"standin": "scale stand-in, not a Milvus"})
        return await self._answer(
            "Connect", lambda: milvus_pb2.ConnectResponse(status=OK, server_info=info, identifier=1), _never
        )

    async def GetVersion(self, request: Any, context: Any) -> Any:
        return await self._answer(
            "GetVersion", lambda: milvus_pb2.GetVersionResponse(status=OK, version=self.version), _never
        )

    async def ShowCollections(self, request: Any, context: Any) -> Any:
        names = list(self.store.collections)
        return await self._answer(
            "ShowCollections", lambda: milvus_pb2.ShowCollectionsResponse(status=OK, collection_names=names), _never
        )

    async def CreateCollection(self, request: Any, context: Any) -> Any:
        self.calls["CreateCollection"] += 1
        self.store.create_collection(request.collection_name, request.schema)
        return OK

    async def CreatePartition(self, request: Any, context: Any) -> Any:
        return await self._answer(
            "CreatePartition",
            then_ok(lambda: self.store.create_partition(request.collection_name, request.partition_name)),
            lambda status: status,
        )

    async def DescribeCollection(self, request: Any, context: Any) -> Any:
        return await self._answer(
            "DescribeCollection",
            lambda: describe(request.collection_name, self.store.get(request.collection_name)),
            lambda status: milvus_pb2.DescribeCollectionResponse(status=status),
        )

    async def ShowPartitions(self, request: Any, context: Any) -> Any:
        def build() -> Any:
            partitions = self.store.get(request.collection_name).partitions
            ids = [p.id for p in partitions.values()]
            return milvus_pb2.ShowPartitionsResponse(status=OK, partition_names=list(partitions), partitionIDs=ids)

        return await self._answer(
            "ShowPartitions", build, lambda status: milvus_pb2.ShowPartitionsResponse(status=status)
        )

    async def GetLoadState(self, request: Any, context: Any) -> Any:
        def build() -> Any:
            collection = self.store.get(request.collection_name)
            partition, together = _named(request)
            state = int(collection.state(time.monotonic(), partition, together))
            return milvus_pb2.GetLoadStateResponse(status=OK, state=state)

        return await self._answer("GetLoadState", build, lambda status: milvus_pb2.GetLoadStateResponse(status=status))

    async def GetLoadingProgress(self, request: Any, context: Any) -> Any:
        def build() -> Any:
            collection = self.store.get(request.collection_name)
            partition, together = _named(request)
            progress = collection.progress(time.monotonic(), partition, together)
            return milvus_pb2.GetLoadingProgressResponse(status=OK, progress=progress, refresh_progress=progress)

        return await self._answer(
            "GetLoadingProgress", build, lambda status: milvus_pb2.GetLoadingProgressResponse(status=status)
        )

    async def LoadCollection(self, request: Any, context: Any) -> Any:
        return await self._load("LoadCollection", request, [])

    async def LoadPartitions(self, request: Any, context: Any) -> Any:
        return await self._load("LoadPartitions", request, list(request.partition_names))

    async def _load(self, rpc: str, request: Any, partitions: list[str]) -> Any:
        def build() -> Any:
            ends = time.monotonic() + self.latencies.loading(bool(partitions))
            self.store.load(request.collection_name, partitions, request.replica_number, ends)
            return OK

        return await self._answer(rpc, build, lambda status: status)

    async def ReleaseCollection(self, request: Any, context: Any) -> Any:
        return await self._answer(
            "ReleaseCollection", then_ok(lambda: self.store.release(request.collection_name, [])), lambda status: status
        )

    async def ReleasePartitions(self, request: Any, context: Any) -> Any:
        names = list(request.partition_names)
        return await self._answer(
            "ReleasePartitions", then_ok(lambda: self.store.release(request.collection_name, names)), lambda s: s
        )

    async def GetReplicas(self, request: Any, context: Any) -> Any:
        def build() -> Any:
            found = [(n, c) for n, c in self.store.collections.items() if c.id == request.collectionID]
            if not found:
                raise UnknownError(100, f"collection not found[collection={request.collectionID}]")
            return replicas(found[0][1], time.monotonic())

        return await self._answer("GetReplicas", build, lambda status: milvus_pb2.GetReplicasResponse(status=status))

    async def GetPartitionStatistics(self, request: Any, context: Any) -> Any:
        rows = [common_pb2.KeyValuePair(key="row_count", value="100")]
        return await self._answer(
            "GetPartitionStatistics",
            lambda: (
                self.store.get(request.collection_name)
                and milvus_pb2.GetPartitionStatisticsResponse(status=OK, stats=rows)
            ),
            lambda status: milvus_pb2.GetPartitionStatisticsResponse(status=status),
        )

    async def DescribeIndex(self, request: Any, context: Any) -> Any:
        params = [
            common_pb2.KeyValuePair(key="index_type", value="FLAT"),
            common_pb2.KeyValuePair(key="metric_type", value="L2"),
        ]
        index = milvus_pb2.IndexDescription(
            index_name="vector", indexID=1, params=params, field_name="vector", state=common_pb2.Finished
        )
        return await self._answer(
            "DescribeIndex",
            lambda: (
                self.store.get(request.collection_name)
                and milvus_pb2.DescribeIndexResponse(status=OK, index_descriptions=[index])
            ),
            lambda status: milvus_pb2.DescribeIndexResponse(status=status),
        )

    async def GetMetrics(self, request: Any, context: Any) -> Any:
        return await self._answer(
            "GetMetrics",
            lambda: milvus_pb2.GetMetricsResponse(
                status=OK, response=json.dumps(SYSTEM_INFO), component_name="standin"
            ),
            _never,
        )


def then_ok(action: Callable[[], None]) -> Callable[[], Any]:
    """An action whose answer is a plain Status."""

    def build() -> Any:
        action()
        return OK

    return build


def _never(status: common_pb2.Status) -> Any:
    raise AssertionError("this call cannot fail")


def describe(name: str, collection: Collection) -> Any:
    schema = schema_pb2.CollectionSchema()
    schema.ParseFromString(collection.schema)
    if not schema.fields:
        schema = DEFAULT_SCHEMA
    return milvus_pb2.DescribeCollectionResponse(
        status=OK, schema=schema, collectionID=collection.id, collection_name=name, shards_num=1
    )


def replicas(collection: Collection, now: float) -> Any:
    loaded = collection.loaded_partition_ids(now)
    if not loaded:
        return milvus_pb2.GetReplicasResponse(status=OK)
    listed = [
        milvus_pb2.ReplicaInfo(
            replicaID=collection.id * 10 + index,
            collectionID=collection.id,
            partition_ids=loaded,
            node_ids=[1],
            resource_group_name="__default_resource_group",
        )
        for index in range(collection.replicas)
    ]
    return milvus_pb2.GetReplicasResponse(status=OK, replicas=listed)


# pymilvus pings every 10 s even when idle; gRPC's default server policy answers that with GOAWAY
# (too_many_pings), which Milvus's own server does not: accept pings as Milvus does (MinTime 5 s, no calls needed)
OPTIONS = [
    ("grpc.so_reuseport", 0),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 5000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_ping_strikes", 0),
]


class Counting(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Counts every RPC by name, the unimplemented ones too (they never reach the servicer)."""

    def __init__(self, calls: Counter[str]) -> None:
        self.calls = calls

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any) -> Any:
        self.calls["all " + handler_call_details.method.rsplit("/", 1)[-1]] += 1
        return await continuation(handler_call_details)


async def serve(port: int, seed: int, measured: Path = MEASURED, ddl_concurrency: int = 1) -> None:
    standin = StandIn(Latencies(load_fitted(measured), seed), ddl_concurrency=ddl_concurrency)
    server = grpc.aio.server(interceptors=[Counting(standin.calls)], options=OPTIONS)
    milvus_pb2_grpc.add_MilvusServiceServicer_to_server(standin, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"scale stand-in (not a Milvus) on 127.0.0.1:{port}, {standin.version}", flush=True)
    try:
        while True:
            await asyncio.sleep(30)
            unanswered = {k: v for k, v in standin.calls.items() if k.startswith("all ") and k[4:] not in standin.calls}
            print(f"calls so far: {dict(standin.calls)}; unimplemented: {unanswered}", flush=True)
    finally:
        await server.stop(1)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--measured", type=Path, default=MEASURED, help="the data the latencies are fitted to")
    parser.add_argument("--ddl-concurrency", type=int, default=1, help="DDL requests at a time (1: as 2.3.5)")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.seed, args.measured, args.ddl_concurrency))
    return 0


if __name__ == "__main__":
    sys.exit(main())
