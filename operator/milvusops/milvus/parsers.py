"""pymilvus's answers (describe_collection, describe_index, GetMetrics, describe_replica) -> the core's types."""

from __future__ import annotations

import json
from typing import Any

from pymilvus import DataType

from milvusops.core.memory_estimate import Field, Index, NodeMemory
from milvusops.core.observed import Replicas


def tolerant_fields_of(described: Any) -> tuple[Field, ...]:
    """The estimate's schema; none when a field is not understood (an observation must not fail on advice)."""
    try:
        return fields_of(described)
    except (KeyError, ValueError, TypeError):
        return ()  # the estimate describes the collection itself, and reports its own failure


def fields_of(described: Any) -> tuple[Field, ...]:
    """describe_collection's fields -> the estimate's Field (type names as pymilvus DataType names)."""
    out = []
    for item in described:
        params = item.get("params") or {}
        element = item.get("element_type")
        out.append(
            Field(
                str(item["name"]),
                DataType(item["type"]).name,
                dim=int(params.get("dim", 0) or 0),
                max_length=int(params.get("max_length", 0) or 0),
                max_capacity=int(params.get("max_capacity", 0) or 0),
                element_type=DataType(element).name if element is not None else "",
            )
        )
    return tuple(out)


def indexes_of(descriptions: Any) -> tuple[Index, ...]:
    """DescribeIndex's index_descriptions -> the estimate's Index (index_type and its build parameters)."""
    out = []
    for description in descriptions:
        params = {kv.key: kv.value for kv in description.params}
        build = dict(params)
        if params.get("params"):  # newer servers nest the build parameters as JSON
            build.update({k: str(v) for k, v in json.loads(params["params"]).items()})
        out.append(Index(str(description.field_name), str(params.get("index_type", "")), build))
    return tuple(out)


def query_nodes_of(system_info: dict[str, Any]) -> tuple[NodeMemory, ...]:
    """GetMetrics system_info -> each query node's memory and use, as it reports them (2.3.5: nodes_info)."""
    nodes = []
    for node in system_info.get("nodes_info") or []:
        infos = node.get("infos") or {}
        hardware = infos.get("hardware_infos") or {}
        if infos.get("type") == "querynode" and hardware.get("memory"):
            nodes.append(
                NodeMemory(
                    int(node.get("identifier", infos.get("id", 0))),
                    int(hardware["memory"]),
                    int(hardware.get("memory_usage", 0)),
                )
            )
    return tuple(sorted(nodes, key=lambda n: n.node_id))


def replicas_of(described: list[Any]) -> Replicas:
    """describe_replica's answer (pymilvus ReplicaInfo) -> count, groups, and any replica left without a node."""
    return replicas_listed([(str(r.id), str(r.resource_group), bool(r.group_nodes)) for r in described])


def replicas_listed(listed: list[tuple[str, str, bool]]) -> Replicas:
    """Each replica's id, resource group and whether any query node serves it."""
    groups = tuple(sorted({group for _, group, _ in listed}))
    empty = [replica for replica, _, served in listed if not served]
    # newer servers may list a replica without nodes instead of failing with 401 as 2.3.5 does
    unavailable = f"no query node serves replica(s) {', '.join(empty)}" if empty else ""
    return Replicas(len(listed), groups, unavailable, tuple(empty))
