"""Pure: what the stand-in holds, collections and partitions each with a load state, as time goes by.

A load makes its partitions Loading until a sampled moment, then Loaded; progress stays 0 until then
(as Milvus 2.3.5 reports it for small loads). Time is passed in, so this is tested without waiting.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class State(enum.IntEnum):
    """common_pb2.LoadState's numbers."""

    NOT_EXIST = 0
    NOT_LOAD = 1
    LOADING = 2
    LOADED = 3


DEFAULT_PARTITION = "_default"


@dataclass
class Partition:
    id: int
    loaded_at: float | None = None  # None: released; else the moment its load ends

    def state(self, now: float) -> State:
        if self.loaded_at is None:
            return State.NOT_LOAD
        return State.LOADED if now >= self.loaded_at else State.LOADING


@dataclass
class Collection:
    id: int
    schema: bytes  # the serialized CollectionSchema, as CreateCollection sent it
    partitions: dict[str, Partition] = field(default_factory=dict)
    replicas: int = 1

    def state(self, now: float, partition: str = "", together: tuple[str, ...] = ()) -> State:
        """One partition's state, or the collection's: Loading while any loads, Loaded if some partition is.

        `together` (several partition names in one request): NotLoad as soon as any of them is, as Milvus answers.
        """
        if partition:
            found = self.partitions.get(partition)
            return found.state(now) if found is not None else State.NOT_EXIST
        if together:
            named = {self.state(now, name) for name in together}
            for state in (State.NOT_EXIST, State.NOT_LOAD, State.LOADING):
                if state in named:
                    return state
            return State.LOADED
        states = {p.state(now) for p in self.partitions.values()}
        if State.LOADING in states:
            return State.LOADING
        return State.LOADED if State.LOADED in states else State.NOT_LOAD

    def progress(self, now: float, partition: str = "", together: tuple[str, ...] = ()) -> int:
        return 100 if self.state(now, partition, together) == State.LOADED else 0

    def loaded_partition_ids(self, now: float) -> list[int]:
        return [p.id for p in self.partitions.values() if p.state(now) != State.NOT_LOAD]


class UnknownError(KeyError):
    """A collection or partition the stand-in does not hold (Milvus: code 100 or 200)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Store:
    collections: dict[str, Collection] = field(default_factory=dict)
    next_id: int = 1000

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def create_collection(self, name: str, schema: bytes) -> Collection:
        collection = Collection(self._id(), schema, {DEFAULT_PARTITION: Partition(self._id())})
        self.collections.setdefault(name, collection)
        return self.collections[name]

    def create_partition(self, name: str, partition: str) -> None:
        self.get(name).partitions.setdefault(partition, Partition(self._id()))

    def get(self, name: str) -> Collection:
        found = self.collections.get(name)
        if found is None:
            raise UnknownError(100, f"collection not found[collection={name}]")
        return found

    def load(self, name: str, partitions: list[str], replicas: int, ends: float) -> None:
        """Start loading (all partitions when none are named); already loaded or loading ones are left alone."""
        collection = self.get(name)
        names = partitions or list(collection.partitions)
        missing = [p for p in names if p not in collection.partitions]
        if missing:
            raise UnknownError(200, f"partition not found[partition={missing[0]}]")
        collection.replicas = max(1, replicas)
        for partition in names:
            if collection.partitions[partition].loaded_at is None:
                collection.partitions[partition].loaded_at = ends

    def release(self, name: str, partitions: list[str]) -> None:
        collection = self.get(name)
        for partition in partitions or list(collection.partitions):
            if partition in collection.partitions:
                collection.partitions[partition].loaded_at = None
