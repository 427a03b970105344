"""The oldest-wins rule for two MilvusCollections that claim one collection (operator and `plan` alike)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from milvusops.core.endpoint import Endpoint
from milvusops.core.failures import FailureError
from milvusops.core.model import CollectionSpec, ManagementPolicy, connection_key

Claimant = tuple[str, str, str]  # (creationTimestamp, namespace, name): sorts oldest first, then by name
IndexKey = tuple[str, str, str]  # (connection key, database, collection): the collection_owners index's key
ServerKey = tuple[str, str, str]  # (Milvus URI, database, collection): one collection on one server


def conflict_key(body: Mapping[str, Any]) -> IndexKey:
    return _index_key(body["metadata"]["namespace"], CollectionSpec.from_body(body))


def _index_key(namespace: str, spec: CollectionSpec) -> IndexKey:
    return (connection_key(namespace, spec.connection_name), spec.database, spec.collection_name)


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


@dataclass(frozen=True)
class Claim:
    server: ServerKey
    who: Claimant
    listed_under: IndexKey  # where the collection_owners index lists this resource while it lives


class ServerClaims:
    """Who manages which collection of which Milvus server, whatever MilvusConnection each goes through.

    Filled as passes resolve their endpoints; an entry counts only while the Kopf index still lists its
    resource under the same key (deleted or edited resources drop out without any hook).
    """

    def __init__(self) -> None:
        self._by_server: dict[ServerKey, dict[str, Claim]] = {}
        self._server_of: dict[str, ServerKey] = {}  # uid -> where it claimed last

    def claim(self, uid: str, claim: Claim) -> None:
        if self._by_server.get(claim.server, {}).get(uid) == claim:
            return  # the usual pass: nothing changed since the last one
        previous = self._server_of.get(uid)
        if previous is not None and previous != claim.server:
            self._drop(uid, previous)
        self._by_server.setdefault(claim.server, {})[uid] = claim
        self._server_of[uid] = claim.server

    def claimants(self, uid: str, owners: Mapping[Any, Iterable[Claimant]]) -> list[Claimant]:
        """Every live claimant of the collection `uid` claimed last, itself included, oldest first."""
        server = self._server_of.get(uid)
        if server is None:
            return []
        live = []
        for other, claim in list(self._by_server.get(server, {}).items()):
            if other == uid or claim.who in set(owners.get(claim.listed_under) or ()):
                live.append(claim.who)
            else:
                self._drop(other, server)
        return sorted(live)

    def forget(self, uid: str) -> None:
        """The resource is gone (its deletion handled)."""
        server = self._server_of.get(uid)
        if server is not None:
            self._drop(uid, server)

    def _drop(self, uid: str, server: ServerKey) -> None:
        claims = self._by_server.get(server, {})
        claims.pop(uid, None)
        if not claims:
            self._by_server.pop(server, None)
        if self._server_of.get(uid) == server:
            del self._server_of[uid]


SERVER_CLAIMS = ServerClaims()  # one per process, as the Kopf index it is checked against


class EndpointSource(Protocol):
    async def endpoint(self, namespace: str, connection: str | None) -> Endpoint: ...


async def server_conflict(
    body: Mapping[str, Any],
    owners: Mapping[Any, Iterable[Claimant]],
    endpoints: EndpointSource,
    claims: ServerClaims = SERVER_CLAIMS,
) -> str | None:
    """Like conflict_winner, by the server the connection resolves to: two MilvusConnections to one Milvus."""
    meta, spec = body["metadata"], CollectionSpec.from_body(body)
    if spec.management_policy != ManagementPolicy.MANAGE:
        return None
    try:
        endpoint = await endpoints.endpoint(meta["namespace"], spec.connection_name)
    except FailureError:
        return None  # the pass itself reports why the connection cannot be resolved
    me, uid = claimant(body), _uid(body)
    server = (endpoint.uri.rstrip("/").lower(), spec.database, spec.collection_name)
    claims.claim(uid, Claim(server, me, _index_key(meta["namespace"], spec)))
    oldest = claims.claimants(uid, owners)[0]
    return None if oldest == me else f"{oldest[1]}/{oldest[2]}"


def rivals(
    body: Mapping[str, Any], owners: Mapping[Any, Iterable[Claimant]], claims: ServerClaims = SERVER_CLAIMS
) -> list[Claimant]:
    """The other live resources managing the same collection, by connection or by server, oldest first."""
    me = claimant(body)
    found = set(owners.get(conflict_key(body)) or ()) | set(claims.claimants(_uid(body), owners))
    return sorted(found - {me})


def _uid(body: Mapping[str, Any]) -> str:
    meta = body["metadata"]
    return str(meta.get("uid") or f"{meta['namespace']}/{meta['name']}")
