"""The floor: the stand-in driven directly over raw asyncio gRPC, `concurrency` calls at a time.

Each load is started, then every pending collection is polled (GetLoadState) in rounds 0.25 s apart
until all are Loaded: the operator's own strategy without Kubernetes or the operator.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc

from bench.standin.server import collection_schema

T = TypeVar("T")
POLL = 0.25  # seconds between rounds of state checks, as bench.lib.baselines.direct_started, the floor


def metadata(token: str) -> tuple[tuple[str, str], ...]:
    """The authorization header pymilvus sends (base64 of the token)."""
    return (("authorization", base64.b64encode(token.encode()).decode()),)


def schema(name: str) -> bytes:
    return bytes(collection_schema(name).SerializeToString())


async def create(address: str, token: str, names: list[str], width: int = 64) -> None:
    """Setup, not measured: each collection with one partition `p` (plus `_default`)."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = milvus_pb2_grpc.MilvusServiceStub(channel)
        limit = asyncio.Semaphore(width)

        async def one(name: str) -> None:
            async with limit:
                request = milvus_pb2.CreateCollectionRequest(collection_name=name, schema=schema(name), shards_num=1)
                await stub.CreateCollection(request, metadata=metadata(token))
                partition = milvus_pb2.CreatePartitionRequest(collection_name=name, partition_name="p")
                await stub.CreatePartition(partition, metadata=metadata(token))

        await asyncio.gather(*(one(name) for name in names))


async def loads(address: str, token: str, names: list[str], concurrency: int) -> float:
    """Seconds from the first LoadCollection until every collection is Loaded."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = milvus_pb2_grpc.MilvusServiceStub(channel)
        limit = asyncio.Semaphore(concurrency)
        auth = metadata(token)

        async def limited(call: Callable[[], Awaitable[T]]) -> T:
            async with limit:  # an aio stub call starts its RPC when made: make it only once a slot is free
                return await call()

        async def load(name: str) -> None:
            request = milvus_pb2.LoadCollectionRequest(collection_name=name, replica_number=1)
            await limited(lambda: stub.LoadCollection(request, metadata=auth))

        async def state(name: str) -> int:
            request = milvus_pb2.GetLoadStateRequest(collection_name=name)
            return int((await limited(lambda: stub.GetLoadState(request, metadata=auth))).state)

        started = time.perf_counter()
        await asyncio.gather(*(load(name) for name in names))
        pending = list(names)
        while pending:
            states = await asyncio.gather(*(state(name) for name in pending))
            pending = [n for n, s in zip(pending, states, strict=True) if s != common_pb2.LoadStateLoaded]
            if pending:
                await asyncio.sleep(POLL)
        return time.perf_counter() - started
