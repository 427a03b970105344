"""The query nodes' memory as they report it to Milvus, read on a call's thread (`port.query_node_memory`)."""

from __future__ import annotations

import json

from pymilvus import MilvusException
from pymilvus.grpc_gen import milvus_pb2

from milvusops.core.memory_estimate import NodeMemory
from milvusops.milvus.client import MilvusClient
from milvusops.milvus.parsers import query_nodes_of


def read_node_memory(
    client: MilvusClient, resource_groups: tuple[str, ...], timeout: float
) -> tuple[tuple[NodeMemory, ...], str]:
    """GetMetrics system_info, limited to `resource_groups` when the server names their nodes (2.4+)."""
    request = milvus_pb2.GetMetricsRequest(request=json.dumps({"metric_type": "system_info"}))
    # pymilvus 3.0.2 has no GetMetrics wrapper: the stub is called directly
    response = client._get_connection()._stub.GetMetrics(request, timeout=timeout)
    if response.status.code != 0 or response.status.error_code != 0:
        raise MilvusException(response.status.code, response.status.reason)
    nodes = query_nodes_of(json.loads(response.response or "{}"))
    if not resource_groups:
        return nodes, "all query nodes"
    members: set[int] = set()
    for group in resource_groups:
        listed = getattr(client.describe_resource_group(group, timeout=timeout), "nodes", None)
        if not listed:
            return nodes, "all query nodes (Milvus does not say which are in the resource groups)"
        members |= {int(getattr(node, "node_id", node)) for node in listed}
    return tuple(n for n in nodes if n.node_id in members), f"the query nodes of {', '.join(resource_groups)}"
