"""Typed views for MilvusAlias: its spec, and what it needs to know of a MilvusCollection (a target or a holder)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from milvusops.core.model import Desired, LoadState, ManagementPolicy, connection_key

Claimant = tuple[str, str, str]  # (creationTimestamp, namespace, name): sorts oldest first, then by name
AliasKey = tuple[str, str, str]  # (connection key, database, alias): one alias on one Milvus


class AliasDeletionPolicy(StrEnum):
    RETAIN = "Retain"
    DROP = "Drop"


class AliasSpec(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore")

    alias: str
    database: str = "default"
    connection_name: str | None = None
    target_ref: str | None = None  # a MilvusCollection in the same namespace
    target_name: str | None = None  # a bare collection name
    deletion_policy: AliasDeletionPolicy = AliasDeletionPolicy.RETAIN
    release_after_seconds: int | None = None  # None: the previous target is never released

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> AliasSpec:
        spec = dict(body.get("spec") or {})
        target = spec.pop("target", None) or {}
        release = spec.pop("releasePrevious", None) or {}
        return cls.model_validate(
            {
                **spec,
                "connectionName": (spec.pop("connectionRef", None) or {}).get("name"),
                "targetRef": (target.get("collectionRef") or {}).get("name"),
                "targetName": target.get("collectionName"),
                "releaseAfterSeconds": release.get("afterSeconds"),
            }
        )


def alias_key(body: Mapping[str, Any]) -> AliasKey:
    spec = AliasSpec.from_body(body)
    return (connection_key(body["metadata"]["namespace"], spec.connection_name), spec.database, spec.alias)


def claimant(body: Mapping[str, Any]) -> Claimant:
    meta = body["metadata"]
    return (meta.get("creationTimestamp") or "", meta["namespace"], meta["name"])


def alias_winner(body: Mapping[str, Any], owners: Mapping[Any, Iterable[Claimant]]) -> str | None:
    """The namespace/name of an older MilvusAlias for the same alias on the same connection; None if this one wins."""
    me = claimant(body)
    oldest = sorted(set(owners.get(alias_key(body), ())) | {me})[0]
    return None if oldest == me else f"{oldest[1]}/{oldest[2]}"


@dataclass(frozen=True)
class CollectionView:
    """What an alias needs of a MilvusCollection: where its collection is, whether it is Ready, whether it wants it."""

    namespace: str
    name: str
    collection: str
    database: str
    connection: str  # connection key
    ready: bool  # Ready=True for the current generation, Milvus says Loaded, and not Degraded
    reason: str  # its Ready reason ("" before the operator wrote any)
    message: str
    wants_loaded: bool  # managed, with something desired Loaded: releasing it would fight that resource

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> CollectionView:
        """From the raw body, without the spec model: this runs for every MilvusCollection event (a Kopf index)."""
        meta, spec = body["metadata"], body.get("spec") or {}
        status = body.get("status") or {}
        conditions = {c.get("type"): c for c in status.get("conditions") or []}
        ready, degraded = conditions.get("Ready") or {}, conditions.get("Degraded") or {}
        current = status.get("observedGeneration") == meta.get("generation")
        loaded = (status.get("collection") or {}).get("state") == LoadState.LOADED  # Ready with nothing loaded
        reason, message = _reason(ready, degraded, current), str(degraded.get("message") or ready.get("message") or "")
        if ready.get("status") == "True" and current and not loaded:
            reason, message = "NotLoaded", "the MilvusCollection is Ready with nothing loaded: set its state Loaded"
        partitions = spec.get("partitions") or ()
        wanted = spec.get("state") == Desired.LOADED or any(p.get("state") == Desired.LOADED for p in partitions)
        managed = spec.get("managementPolicy", ManagementPolicy.MANAGE) == ManagementPolicy.MANAGE
        return cls(
            namespace=meta["namespace"],
            name=meta["name"],
            collection=str(spec.get("collectionName") or meta["name"]),
            database=str(spec.get("database") or "default"),
            connection=connection_key(meta["namespace"], (spec.get("connectionRef") or {}).get("name")),
            ready=ready.get("status") == "True" and current and loaded and degraded.get("status") != "True",
            reason=reason,
            message=message,
            wants_loaded=wanted and managed,
        )


def _reason(ready: Mapping[str, Any], degraded: Mapping[str, Any], current: bool) -> str:
    if degraded.get("status") == "True":
        return str(degraded.get("reason") or "")
    if ready.get("status") == "True" and not current:
        return ""  # Ready for an older spec: not yet acted on
    return str(ready.get("reason") or "")


def holders_of(collection: str, database: str, connection: str, views: Iterable[CollectionView]) -> tuple[str, ...]:
    """The MilvusCollections (namespace/name) that want `collection` Loaded: a release would fight them."""
    return tuple(
        sorted(
            f"{v.namespace}/{v.name}"
            for v in views
            if v.wants_loaded and (v.collection, v.database, v.connection) == (collection, database, connection)
        )
    )
