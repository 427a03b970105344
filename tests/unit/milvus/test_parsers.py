"""describe_replica's answer, as pymilvus 3.0.2 builds it, turned into the replica picture of status."""

from __future__ import annotations

from pymilvus.client.types import ReplicaInfo

from milvusops.core.observed import Replicas
from milvusops.milvus.parsers import replicas_of

GROUP = "__default_resource_group"


def replica(replica_id: int, nodes: list[int], group: str = GROUP) -> ReplicaInfo:
    return ReplicaInfo(replica_id, [], nodes, group, {})


def test_count_and_sorted_distinct_resource_groups() -> None:
    described = [replica(1, [5], "rg_b"), replica(2, [6], GROUP), replica(3, [7], "rg_b")]
    assert replicas_of(described) == Replicas(3, (GROUP, "rg_b"))


def test_a_replica_listed_without_nodes_is_unavailable() -> None:
    found = replicas_of([replica(1, [5]), replica(2, [])])
    assert found.count == 2
    assert found.unavailable == "no query node serves replica(s) 2"
