"""The oldest-wins rule for two MilvusCollections that claim one collection (operator and `plan` alike)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .connections import connection_key
from .model import CollectionSpec, ManagementPolicy

Claimant = tuple[str, str, str]  # (creationTimestamp, namespace, name): sorts oldest first, then by name


def conflict_key(body: Mapping[str, Any]) -> tuple[str, str, str]:
    spec = CollectionSpec.from_body(body)
    return (connection_key(body["metadata"]["namespace"], spec.connection_name), spec.database, spec.collection_name)


def claims_collection(body: Mapping[str, Any]) -> bool:
    """Observe-only resources never act, so they neither win nor lose conflicts."""
    return CollectionSpec.from_body(body).management_policy == ManagementPolicy.MANAGE


def claimant(body: Mapping[str, Any]) -> Claimant:
    meta = body["metadata"]
    return (meta.get("creationTimestamp") or "", meta["namespace"], meta["name"])


def conflict_winner(body: Mapping[str, Any], owners: Mapping[Any, Iterable[Claimant]]) -> str | None:
    """The namespace/name of an older resource managing the same collection, or None if this one wins."""
    if not claims_collection(body):
        return None
    me = claimant(body)
    claimants = sorted(set(owners.get(conflict_key(body), ())) | {me})
    oldest = claimants[0]
    return None if oldest == me else f"{oldest[1]}/{oldest[2]}"
