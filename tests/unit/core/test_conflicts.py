"""Item 10: a conflict's winner hands over on deletion; two MilvusConnections to one server are one identity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import kopf
import pytest

from milvusops.core.conflicts import Claim, ServerClaims, claimant, conflict_key
from milvusops.core.endpoint import Endpoint
from milvusops.core.failures import Reason
from milvusops.core.model import CollectionSpec, ResourceRef
from milvusops.kube.api import KubeApi
from milvusops.runtime.collection_worker import CollectionWorker, finalize_collection
from milvusops.runtime.connections import Connections
from milvusops.runtime.deletion import release_held
from milvusops.runtime.settings import Settings
from tests.unit.fake_milvus import LOADED, NOT_LOAD, FakeMilvus, FakePorts


def _body(name: str, created: str, connection: str | None = None, **spec: Any) -> dict[str, Any]:
    meta = {"namespace": "team", "name": name, "uid": f"uid-{name}", "generation": 1, "creationTimestamp": created}
    meta |= {"resourceVersion": "1", "finalizers": ["milvusops.dev/finalizer"]}
    body_spec: dict[str, Any] = {"collectionName": "docs", "deletionPolicy": "Release", **spec}
    if connection:
        body_spec["connectionRef"] = {"name": connection}
    return {"metadata": meta, "spec": body_spec}


def _owners(*bodies: Mapping[str, Any]) -> dict[Any, list[tuple[str, str, str]]]:
    """What the collection_owners Kopf index holds."""
    owners: dict[Any, list[tuple[str, str, str]]] = {}
    for body in bodies:
        owners.setdefault(conflict_key(body), []).append(claimant(body))
    return owners


class _Kube:
    """Reads MilvusCollections by name; status patches are accepted and dropped."""

    def __init__(self, *bodies: Mapping[str, Any]) -> None:
        self.bodies = {body["metadata"]["name"]: body for body in bodies}

    async def read_collection(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        if name not in self.bodies:
            return None
        return self.bodies[name]

    async def patch_status(self, plural: str, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        return None


class _Ports(FakePorts):
    """Every named connection resolves to the same Milvus server, as two MilvusConnections to one URI do."""

    async def endpoint(self, namespace: str, connection: str | None, last_known: bool = False) -> Endpoint:
        return Endpoint(uri="http://milvus.shared:19530", token=f"token-of-{connection}")


def _worker(milvus: FakeMilvus, kube: _Kube) -> CollectionWorker:
    settings = Settings(_cli_parse_args=[])  # type: ignore[call-arg]
    return CollectionWorker(settings, cast(KubeApi, kube), cast(Connections, _Ports(milvus)))


async def test_deleting_the_winner_leaves_loaded_what_the_loser_declares_loaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kopf, "event", lambda body, type, reason, message: None)
    milvus = FakeMilvus({"_default": NOT_LOAD, "hot": LOADED, "cold": LOADED})
    winner = _body("old", "2026-01-01T00:00:00Z", state="Loaded")
    loser = _body("new", "2026-06-01T00:00:00Z", partitions=[{"name": "hot", "state": "Loaded"}])
    worker = _worker(milvus, _Kube(winner, loser))
    await finalize_collection(cast(kopf.Body, winner), worker, _owners(winner, loser), 1.0, set())
    assert milvus.states == {"_default": NOT_LOAD, "hot": LOADED, "cold": NOT_LOAD}
    assert [call[0] for call in milvus.mutating_calls] == ["release_partitions"]


async def test_two_connections_to_one_server_conflict_and_the_oldest_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kopf, "event", lambda body, type, reason, message: None)
    milvus = FakeMilvus({"_default": NOT_LOAD, "hot": NOT_LOAD})
    older = _body("via-a", "2026-01-01T00:00:00Z", connection="a", state="Released")
    younger = _body("via-b", "2026-06-01T00:00:00Z", connection="b", state="Loaded")
    owners = _owners(older, younger)  # different connection objects: different index keys
    kube = _Kube(older, younger)
    first, second = _worker(milvus, kube), _worker(milvus, kube)
    await first.sync(cast(kopf.Body, older), owners)
    result = await second.sync(cast(kopf.Body, younger), owners)
    assert result.verdict.reason == Reason.CONFLICT, result.verdict
    assert "team/via-a" in result.verdict.message
    assert milvus.mutating_calls == []  # the younger one never loads what the older one keeps released


def _claim(name: str, created: str, server: str = "http://m:19530", connection: str = "a") -> tuple[str, Claim]:
    body = _body(name, created, connection=connection)
    return body["metadata"]["uid"], Claim((server, "default", "docs"), claimant(body), conflict_key(body))


def test_server_claims_count_only_resources_the_index_still_lists() -> None:
    claims = ServerClaims()
    old_uid, old = _claim("old", "2026-01-01T00:00:00Z", connection="a")
    new_uid, new = _claim("new", "2026-06-01T00:00:00Z", connection="b")
    claims.claim(old_uid, old)
    claims.claim(new_uid, new)
    both = {old.listed_under: [old.who], new.listed_under: [new.who]}
    assert claims.claimants(new_uid, both) == [old.who, new.who]
    # the older one was deleted (or edited to another collection): it left the index, so it no longer wins
    assert claims.claimants(new_uid, {new.listed_under: [new.who]}) == [new.who]
    assert claims.claimants(new_uid, both) == [new.who]  # and it was dropped, not just skipped


def test_a_claim_moves_with_its_resource_and_goes_with_it() -> None:
    claims = ServerClaims()
    uid, here = _claim("r", "2026-01-01T00:00:00Z", server="http://one:19530")
    other_uid, there = _claim("s", "2026-06-01T00:00:00Z", server="http://two:19530")
    claims.claim(uid, here)
    claims.claim(other_uid, there)
    owners = {here.listed_under: [here.who, there.who]}
    assert claims.claimants(other_uid, owners) == [there.who]  # another server: no conflict
    claims.claim(uid, Claim(there.server, here.who, here.listed_under))  # its connection now points at `two`
    assert claims.claimants(other_uid, owners) == [here.who, there.who]
    claims.forget(uid)
    assert claims.claimants(other_uid, owners) == [there.who]
    assert claims.claimants(uid, owners) == []


async def test_the_winners_deletion_keeps_nothing_when_no_other_resource_wants_it() -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD, "hot": LOADED})
    spec = CollectionSpec.from_body(_body("old", "t", state="Loaded"))
    released = CollectionSpec.from_body(_body("new", "t", state="Released"))
    done = await release_held(spec, ResourceRef.from_body(_body("old", "t")), FakePorts(milvus), (released,))
    assert milvus.states == {"_default": NOT_LOAD, "hot": NOT_LOAD}
    assert done and not any("left" in line for line in done)
