"""MilvusAlias bodies and what an alias reads of a MilvusCollection (its readiness, whether it wants loading)."""

from __future__ import annotations

from typing import Any

import pytest

from milvusops.core.alias_model import (
    AliasDeletionPolicy,
    AliasSpec,
    CollectionView,
    alias_key,
    alias_winner,
    claimant,
    holders_of,
)


def _alias(name: str, created: str, **spec: Any) -> dict[str, Any]:
    meta = {"namespace": "team", "name": name, "creationTimestamp": created}
    return {"metadata": meta, "spec": {"alias": "search", "target": {"collectionName": "blue"}, **spec}}


def _collection(generation: int = 2, observed: int = 2, **status: Any) -> dict[str, Any]:
    ready = {"type": "Ready", "status": status.pop("ready", "True"), "reason": status.pop("reason", "InSync")}
    degraded = {"type": "Degraded", "status": status.pop("degraded", "False"), "reason": "ReplicasAvailable"}
    return {
        "metadata": {"namespace": "team", "name": "green", "generation": generation},
        "spec": {"collectionName": "green_v2", "state": status.pop("state", "Loaded")},
        "status": {
            "observedGeneration": observed,
            "collection": {"state": status.pop("loaded", "Loaded")},
            "conditions": [ready | {"message": "m"}, degraded],
        },
    }


def test_spec_from_body() -> None:
    body = _alias("a", "t", connectionRef={"name": "main"}, deletionPolicy="Drop", releasePrevious={"afterSeconds": 3})
    body["spec"]["target"] = {"collectionRef": {"name": "green"}}
    spec = AliasSpec.from_body(body)
    assert (spec.alias, spec.database, spec.connection_name) == ("search", "default", "main")
    assert (spec.target_ref, spec.target_name, spec.release_after_seconds) == ("green", None, 3)
    assert spec.deletion_policy == AliasDeletionPolicy.DROP
    assert alias_key(body) == ("team/main", "default", "search")


def test_the_oldest_alias_resource_wins() -> None:
    old, young = _alias("old", "2026-01-01T00:00:00Z"), _alias("young", "2026-02-01T00:00:00Z")
    owners = {alias_key(old): [claimant(old), claimant(young)]}
    assert alias_winner(old, owners) is None
    assert alias_winner(young, owners) == "team/old"
    assert alias_winner(_alias("other", "2026-03-01T00:00:00Z", alias="other"), owners) is None


@pytest.mark.parametrize(
    ("body", "ready", "reason"),
    [
        (_collection(), True, "InSync"),
        (_collection(generation=3), False, ""),  # Ready for an older spec
        (_collection(ready="False", reason="Loading"), False, "Loading"),
        (_collection(ready="False", reason="IndexNotFound"), False, "IndexNotFound"),
        (_collection(degraded="True"), False, "ReplicasAvailable"),
        (_collection(state="Released", loaded="NotLoad"), False, "NotLoaded"),  # in sync, serving nothing
    ],
)
def test_a_collection_is_a_ready_target_only_when_ready_for_its_generation_and_not_degraded(
    body: dict[str, Any], ready: bool, reason: str
) -> None:
    view = CollectionView.of(body)
    assert (view.ready, view.reason, view.collection, view.connection) == (ready, reason, "green_v2", "")


def test_holders_are_the_collections_that_want_it_loaded() -> None:
    loaded, released = CollectionView.of(_collection()), CollectionView.of(_collection(state="Released"))
    assert holders_of("green_v2", "default", "", [loaded, released]) == ("team/green",)
    assert holders_of("green_v2", "default", "team/other", [loaded]) == ()
    assert holders_of("blue", "default", "", [loaded]) == ()
