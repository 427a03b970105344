"""MilvusAlias on a real Milvus 2.3.5: a blue-green cutover under search traffic, and a target that cannot load."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from pymilvus import MilvusException

from tests.conftest import Figures
from tests.e2e.health import gitops_verdicts
from tests.e2e.helpers import Kube, OperatorProcess, load_states, new_collection, wait_for
from tests.testenv.milvus import MilvusServer


@pytest.fixture
def operator(shared_operator: OperatorProcess) -> OperatorProcess:
    """One operator for this module's tests, each in its own namespace; the ones that count calls start their own."""
    return shared_operator


ALIASES = "milvusaliases"
SEARCH_RATE = 30.0  # searches per second asked of the loop; the issue wants at least 20


def alias_target(milvus: MilvusServer, alias: str) -> str | None:
    client = milvus.client()
    try:
        return str(client.describe_alias(alias).get("collection_name"))
    except MilvusException:
        return None
    finally:
        client.close()


class SearchLoop(threading.Thread):
    """Searches through the alias at a steady pace, counting what was sent and what failed."""

    def __init__(self, milvus: MilvusServer, alias: str) -> None:
        super().__init__(daemon=True)
        self.client = milvus.client()
        self.alias = alias
        self.sent = self.failed = 0
        self.errors: list[str] = []
        self.done = threading.Event()
        self.started_at = self.stopped_at = 0.0

    def run(self) -> None:
        self.started_at = time.monotonic()
        next_at = self.started_at
        while not self.done.is_set():
            self.sent += 1
            try:
                self.client.search(self.alias, data=[[0.5] * 8], limit=1, anns_field="vector")
            except Exception as exc:  # noqa: BLE001 - every failure counts, whatever its kind
                self.failed += 1
                self.errors.append(f"{type(exc).__name__}: {exc}"[:300])
            next_at += 1 / SEARCH_RATE
            self.done.wait(max(0.0, next_at - time.monotonic()))
        self.stopped_at = time.monotonic()
        self.client.close()

    def stop(self) -> float:
        """Stop and return the rate achieved (searches per second)."""
        self.done.set()
        self.join(30)
        return self.sent / (self.stopped_at - self.started_at)


class Watcher(threading.Thread):
    """When Milvus first said the new collection is Loaded, and when the alias first pointed at it."""

    def __init__(self, milvus: MilvusServer, alias: str, collection: str) -> None:
        super().__init__(daemon=True)
        self.client = milvus.client()
        self.alias, self.collection = alias, collection
        self.loaded_at: float | None = None
        self.switched_at: float | None = None
        self.switched_before_loaded = False
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set() and self.switched_at is None:
            if self.loaded_at is None and self.client.get_load_state(self.collection)["state"].name == "Loaded":
                self.loaded_at = time.monotonic()
            if self.client.describe_alias(self.alias).get("collection_name") == self.collection:
                self.switched_at = time.monotonic()
                self.switched_before_loaded = self.loaded_at is None
            self.done.wait(0.02)
        self.client.close()


def _seconds(status: dict[str, Any], later: str, earlier: str) -> float:
    times = [datetime.fromisoformat(status["previous"][key].replace("Z", "+00:00")) for key in (later, earlier)]
    return (times[0] - times[1]).total_seconds()


def test_cutover_switches_only_to_a_loaded_target_without_a_failed_search(
    kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess, figures: Figures
) -> None:
    blue, green = new_collection(milvus, ["p"]), new_collection(milvus, ["p"], rows=3000)
    client = milvus.client()
    client.load_collection(blue)
    client.close()
    alias = f"search_{blue[2:]}"
    kube.create_alias(namespace, "search", {"alias": alias, "target": {"collectionName": blue}})
    kube.wait_reason(namespace, "search", "InSync", plural=ALIASES)
    assert alias_target(milvus, alias) == blue
    searches = SearchLoop(milvus, alias)
    searches.start()
    watcher = Watcher(milvus, alias, green)
    watcher.start()
    # retargeted before the new collection is even declared: the alias must wait, never point at it unloaded
    patch = {"spec": {"target": {"collectionRef": {"name": "green"}, "collectionName": None}}}
    kube.patch(
        namespace, "search", patch | {"spec": {**patch["spec"], "releasePrevious": {"afterSeconds": 3}}}, ALIASES
    )
    kube.wait_reason(namespace, "search", "TargetNotFound", plural=ALIASES)
    kube.create(namespace, "green", {"collectionName": green, "state": "Loaded"})
    wait_for(lambda: watcher.switched_at, 120, "the alias switched to the new collection")
    status = wait_for(
        lambda: (
            (kube.get(namespace, "search", ALIASES).get("status") or {}).get("previous", {}).get("releasedAt")
            and kube.get(namespace, "search", ALIASES)["status"]
        ),
        60,
        "the previous target released",
    )
    wait_for(lambda: set(load_states(milvus, blue).values()) == {"NotLoad"}, 30, "blue released in Milvus")
    time.sleep(1.0)  # searches keep running a little after the release: they must go to the new target
    rate = searches.stop()
    assert searches.failed == 0, searches.errors[:5]
    assert rate >= 20, f"the loop searched at {rate:.1f}/s only"
    assert not watcher.switched_before_loaded and watcher.loaded_at is not None
    assert watcher.switched_at is not None and watcher.loaded_at <= watcher.switched_at
    assert status["previous"]["collection"] == blue and status["target"] == green
    drain = _seconds(status, "releasedAt", "switchedAt")
    assert drain >= 3  # never released before the drain window is over
    assert set(load_states(milvus, green).values()) == {"Loaded"}
    reasons = {e.reason for e in kube.events(namespace, "search")}
    assert {"AliasCreated", "AliasSwitched", "PreviousReleased"} <= reasons
    kube.delete(namespace, "search", ALIASES)  # deletionPolicy Retain (the default): the alias stays in Milvus
    wait_for(lambda: not kube.exists(namespace, "search", ALIASES), 30, "search gone")
    assert alias_target(milvus, alias) == green
    figures.record("cutover: searches sent / failed", f"{searches.sent} / {searches.failed} ({rate:.1f} per s)")
    figures.record("cutover: Milvus Loaded -> alias switched", f"{watcher.switched_at - watcher.loaded_at:.2f} s")
    figures.record("cutover: switch -> previous released (afterSeconds 3)", f"{drain:.2f} s")


def test_a_target_that_cannot_load_never_gets_the_alias(
    kube: Kube, namespace: str, milvus: MilvusServer, start_operator: Callable[..., OperatorProcess]
) -> None:
    operator = start_operator()  # its own: no other test's lines in the log it counts
    blue, green = new_collection(milvus, ["p"]), new_collection(milvus, ["p"], index=False)
    client = milvus.client()
    client.load_collection(blue)
    client.close()
    alias = f"search_{blue[2:]}"
    kube.create_alias(namespace, "search", {"alias": alias, "target": {"collectionName": blue}})
    kube.wait_reason(namespace, "search", "InSync", plural=ALIASES)
    kube.create(namespace, "green", {"collectionName": green, "state": "Loaded"})
    kube.wait_reason(namespace, "green", "IndexNotFound")
    patch = {
        "target": {"collectionRef": {"name": "green"}, "collectionName": None},
        "releasePrevious": {"afterSeconds": 0},
    }
    generation = kube.patch(namespace, "search", {"spec": patch}, ALIASES)["metadata"]["generation"]
    ready = kube.wait_reason(namespace, "search", "IndexNotFound", plural=ALIASES)
    assert ready["observedGeneration"] == generation and green in ready["message"] and blue in ready["message"]
    assert kube.condition(namespace, "search", "Stalled", ALIASES)["status"] == "True"
    assert gitops_verdicts(kube, namespace, "search", ALIASES) == ("Failed", "Degraded")
    # two more passes of the alias (resync 5 s), each logging why it waits: still on blue, which stays loaded
    passes = operator.log().count("the alias stays on")
    wait_for(lambda: operator.log().count("the alias stays on") >= passes + 2, 30, "two more passes")
    assert alias_target(milvus, alias) == blue
    assert set(load_states(milvus, blue).values()) == {"Loaded"}
    assert kube.get(namespace, "search", ALIASES)["status"]["target"] == blue


def test_an_existing_alias_is_adopted_the_younger_claimant_stalls_and_drop_drops_it(
    kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess
) -> None:
    blue = new_collection(milvus, ["p"])
    alias = f"search_{blue[2:]}"
    client = milvus.client()
    client.load_collection(blue)
    client.create_alias(blue, alias)  # made by hand before the operator: adopted as it is
    client.close()
    spec = {"alias": alias, "target": {"collectionName": blue}, "deletionPolicy": "Drop"}
    kube.create_alias(namespace, "first", spec)
    kube.wait_reason(namespace, "first", "InSync", plural=ALIASES)
    kube.create_alias(namespace, "second", spec)
    stalled = kube.wait_reason(namespace, "second", "Conflict", plural=ALIASES)
    assert f"{namespace}/first" in stalled["message"]
    assert gitops_verdicts(kube, namespace, "second", ALIASES) == ("Failed", "Degraded")
    assert gitops_verdicts(kube, namespace, "first", ALIASES) == ("Current", "Healthy")
    assert "AliasCreated" not in {e.reason for e in kube.events(namespace, "first")}  # adopted: no call
    kube.delete(namespace, "second", ALIASES)  # the loser never acted, so it drops nothing either
    wait_for(lambda: not kube.exists(namespace, "second", ALIASES), 30, "second gone")
    assert alias_target(milvus, alias) == blue
    kube.delete(namespace, "first", ALIASES)
    wait_for(lambda: not kube.exists(namespace, "first", ALIASES), 30, "first gone")
    assert alias_target(milvus, alias) is None
    assert set(load_states(milvus, blue).values()) == {"Loaded"}  # the collection stays as it was


def test_an_alias_left_by_a_dropped_collection_is_taken_over_for_its_rebuild(
    kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess
) -> None:
    # a pipeline that drops and re-creates a collection under the same name: Milvus 2.3.5 keeps the alias,
    # describe_alias answers "alias not found" (1600) and create_alias "alias already exist" (1602)
    rebuilt = new_collection(milvus, ["p"])
    alias = f"search_{rebuilt[2:]}"
    client = milvus.client()
    try:
        client.create_alias(rebuilt, alias)
        client.drop_collection(rebuilt)
    finally:
        client.close()
    assert alias_target(milvus, alias) is None
    new_collection(milvus, ["p"], name=rebuilt)
    kube.create(namespace, "rebuilt", {"collectionName": rebuilt, "state": "Loaded"})
    spec = {"alias": alias, "target": {"collectionRef": {"name": "rebuilt"}}}
    kube.create_alias(namespace, "live", spec)
    ready = kube.wait_reason(namespace, "live", "InSync", plural=ALIASES, timeout=60)
    assert ready["message"] == f"alias {alias} points at {rebuilt}"
    assert alias_target(milvus, alias) == rebuilt
