"""What Milvus reports about one collection, as the pure modules take it (the adapter fills these in)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from milvusops.core.failures import Failure
from milvusops.core.memory_estimate import Field
from milvusops.core.model import LoadState


@dataclass(frozen=True)
class StateReport:
    state: LoadState
    progress: int | None = None


@dataclass(frozen=True)
class CollectionInfo:
    """What describe_collection tells the operator about a collection."""

    id: str  # a dropped and recreated collection has a new one
    partition_key: str | None = None  # its partition-key field: Milvus loads and releases only the whole collection
    fields: tuple[Field, ...] = ()  # the schema, so the same pass's memory estimate need not describe again
    partitions: int | None = None  # how many it has (num_partitions), when Milvus says


@dataclass(frozen=True)
class Replicas:
    """What describe_replica says of the replicas of a collection with something loaded."""

    count: int | None  # None: Milvus could not describe them (a replica has no available query node)
    resource_groups: tuple[str, ...] = ()
    unavailable: str = ""  # Milvus's words when a replica has no query node to serve it
    lost: tuple[str, ...] = ()  # ids of the replicas without a query node, when Milvus lists them

    @property
    def lost_ids(self) -> tuple[str, ...]:
        """The replicas without a query node: as listed, else as Milvus 2.3.5's 401 names one ("[replica=4471]")."""
        return self.lost or tuple(dict.fromkeys(_REPLICA_ID.findall(self.unavailable)))


_REPLICA_ID = re.compile(r"replica=(\d+)")


@dataclass(frozen=True)
class QueryNodes:
    """The server's query nodes as GetMetrics lists them, and since when (monotonic seconds) that set stands."""

    ids: frozenset[int]
    since: float
    settle: float = 0.0  # how long after a change GetReplicas may still lag it (`replicas_settle_seconds`)


@dataclass(frozen=True)
class Observed:
    """What Milvus reports now; `partitions` holds every partition that exists in Milvus."""

    collection: StateReport
    partitions: dict[str, StateReport] = field(default_factory=dict)
    replicas: Replicas | None = None  # describe_replica's answer; None when nothing is loaded (or no such call)
    collection_id: str | None = None  # Milvus's id of this incarnation of the collection
    partial: bool = False  # a re-check: only what was Loading was asked, so nothing may be planned from it
    partition_key: str | None = None  # the partition-key field: only whole-collection load and release then
    failed_load: Failure | None = None  # get_load_state answered with the cause of a failed load (reads as NotLoad)
    confirmed: bool = False  # a steady pass found an earlier full picture unchanged (`confirm`)
    fields: tuple[Field, ...] = ()  # the schema this pass described, for its own memory estimate; not carried on
    replicas_at: float | None = None  # monotonic seconds just before `replicas` was asked

    @property
    def exists(self) -> bool:
        return self.collection.state != LoadState.NOT_EXIST

    @property
    def loading(self) -> bool:
        reports = (self.collection, *self.partitions.values())
        return any(report.state == LoadState.LOADING for report in reports)


def replicas_stand(before: Observed, nodes: QueryNodes | None) -> bool:
    """Whether `before`'s replicas can be taken as they were without asking Milvus again.

    Only when every replica was served, the server's query nodes are known, and the replicas were read
    at least `nodes.settle` seconds after that set last changed: a node lost or added since is news for them.
    """
    replicas, read_at = before.replicas, before.replicas_at
    if replicas is None or replicas.count is None or replicas.lost_ids or nodes is None or read_at is None:
        return False
    return read_at >= nodes.since + nodes.settle
