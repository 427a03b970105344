"""Run planned actions through the Milvus port; loads are started, not awaited to completion."""

from __future__ import annotations

from .milvus import MilvusPort
from .model import CollectionSpec
from .plan import Action, LoadCollection, LoadPartitions, ReleaseCollection, ReleasePartitions
from .refresh import Refresh
from .status import listing


async def apply(port: MilvusPort, spec: CollectionSpec, actions: tuple[Action, ...]) -> list[str]:
    """Returns one line per action done; raises FailureError at the first that Milvus refuses."""
    done: list[str] = []
    name = spec.collection_name
    for action in actions:
        match action:
            case LoadCollection():
                await port.load_collection(name, spec.load)
                done.append(f"load of collection {name} started (replicas={spec.load.replicas})")
            case LoadPartitions(partitions):
                await port.load_partitions(name, list(partitions), spec.load)
                done.append(f"load of partitions {listing(partitions)} started (replicas={spec.load.replicas})")
            case ReleasePartitions(partitions):
                await port.release_partitions(name, list(partitions))
                done.append(f"released partitions {listing(partitions)}")
            case ReleaseCollection():
                await port.release_collection(name)
                done.append(f"released collection {name}")
    return done


async def apply_refresh(port: MilvusPort, spec: CollectionSpec, refresh: Refresh) -> str:
    """Start the refresh of what is loaded; Milvus loads the new segments in the background."""
    name = spec.collection_name
    if refresh.partitions is None:
        await port.load_collection(name, spec.load, refresh=True)
        return f"refresh of collection {name} started"
    await port.load_partitions(name, list(refresh.partitions), spec.load, refresh=True)
    return f"refresh of collection {name} started (loaded partitions {listing(refresh.partitions)})"


def describe(action: Action) -> str:
    match action:
        case LoadCollection():
            return "load_collection"
        case LoadPartitions(partitions):
            return f"load_partitions({', '.join(partitions)})"
        case ReleasePartitions(partitions):
            return f"release_partitions({', '.join(partitions)})"
        case ReleaseCollection():
            return "release_collection"
