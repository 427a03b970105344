"""The two ways of asking Milvus about a collection's replicas, run on a call's thread (`port.replicas`)."""

from __future__ import annotations

from typing import Any

import grpc
from pymilvus import MilvusException
from pymilvus.grpc_gen import milvus_pb2

from milvusops.core.observed import Replicas
from milvusops.milvus.client import MilvusClient
from milvusops.milvus.errors import REPLICA_LOST
from milvusops.milvus.parsers import replicas_listed, replicas_of


def replicas_by_id(client: MilvusClient, collection_id: int, timeout: float) -> Replicas | None:
    """GetReplicas alone (not queued behind loads); None to ask by name instead (it failed in transport)."""
    request = milvus_pb2.GetReplicasRequest(collectionID=collection_id)
    try:
        response = client._get_connection()._stub.GetReplicas(request, timeout=timeout)
    except grpc.RpcError:
        return None  # by name: pymilvus's retries, reconnect and errors, as for every other call
    if response.status.code in REPLICA_LOST:
        return Replicas(None, unavailable=str(response.status.reason))
    if response.status.code or response.status.error_code:
        return None
    return replicas_listed(
        [(str(r.replicaID), str(r.resource_group_name), bool(r.node_ids)) for r in response.replicas]
    )


def replicas_described(client: MilvusClient, collection: str, timeout: float) -> Replicas:
    """describe_replica (DescribeCollection first); a replica without its query node is an answer, not a failure."""
    try:
        described: list[Any] = list(client.describe_replica(collection, timeout=timeout))
    except MilvusException as exc:
        if exc.code in REPLICA_LOST:
            return Replicas(None, unavailable=str(exc.message))
        raise
    return replicas_of(described)
