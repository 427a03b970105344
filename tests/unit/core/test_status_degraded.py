"""Issue 29 item 11: the Degraded message says what a lost replica means first, Milvus's words after."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from milvusops.core.capabilities import capabilities
from milvusops.core.model import CollectionSpec, LoadState, ResourceRef
from milvusops.core.observed import Observed, Replicas, StateReport
from milvusops.core.plan import plan
from milvusops.core.status import Outcome, build_status

NOW = datetime(2026, 11, 25, 16, 0, 0, tzinfo=UTC)
REF = ResourceRef(namespace="shop", name="products", generation=1)
SPEC = CollectionSpec.from_body({"metadata": {"name": "products"}, "spec": {"state": "Loaded"}})
REPLICA_LOST = "no available nodes in replica: replica not available[replica=4471]"
# as seen on a real cluster after a query node was killed (Milvus's words, already cut by Milvus)
SHARD_LEADER = (
    'failed to get shard leader for shard collectionID:445 channelName:"by-dev-rootcoord-dml_0_445v0" '
    + 'seek_position:<channel_name:"by-dev-rootcoord-dml_0" msgID:"\\010\\001" ' * 2_000
)


def degraded(replicas: Replicas, previous: dict[str, Any] | None = None) -> str:
    observed = Observed(StateReport(LoadState.LOADED), {"_default": StateReport(LoadState.LOADED)}, replicas)
    outcome = Outcome(observed, plan(SPEC, observed, capabilities("v2.3.5")))
    status = build_status(SPEC, REF, outcome, previous or {}, NOW)
    return str(next(c for c in status["conditions"] if c["type"] == "Degraded")["message"])


TWO = {"replicas": {"count": 2, "resourceGroups": ["__default_resource_group"]}}


def test_the_lost_replica_and_what_it_means_come_before_milvus_words() -> None:
    message = degraded(Replicas(None, unavailable=REPLICA_LOST), TWO)
    assert message.startswith("replica 4471 (of 2) has no query node: searches are served by the other replica")
    assert message.index("searches") < message.index(REPLICA_LOST)  # Milvus's words, whole, after ours


def test_a_single_replica_lost_means_searches_fail() -> None:
    message = degraded(Replicas(None, unavailable=REPLICA_LOST), {"replicas": {"count": 1}})
    assert message.startswith("replica 4471 (the only one) has no query node: searches fail")


def test_milvus_internal_dump_is_bounded_and_comes_last() -> None:
    message = degraded(Replicas(None, unavailable=SHARD_LEADER), TWO)
    assert message.startswith("a replica (of 2) has no query node: searches are served by the other replica")
    assert "failed to get shard leader for shard collectionID:445" in message
    assert len(message) <= 1024  # kubectl describe stays readable; the dump is Milvus's, not the user's
