"""Faults injected into the real parts (Milvus, the operator, kube-apiserver): everything converges again."""

from __future__ import annotations

import functools
import json
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tests.conftest import Figures
from tests.e2e.helpers import Kube, OperatorProcess, load_states, new_collection, wait_for
from tests.testenv.kube import ControlPlane
from tests.testenv.milvus import MilvusServer

RESYNC = 5.0  # the test operator's resync interval (MILVUSOPS_RESYNC_SECONDS in OperatorProcess)
# a dead Milvus is noticed within one call timeout; a Release deletion gives up after 12 s (past two resyncs), so
# Milvus restarts sooner: its recovery waits for the killed sessions to expire (TTL 10 s in tests, from the kill)
FAST_FAILING = {"MILVUSOPS_DEFAULT_TIMEOUT_SECONDS": "2", "MILVUSOPS_DELETION_TIMEOUT_SECONDS": "12"}
CHURN_EDITS = 50  # bounded by a count, not a clock: about 20 s of edits, several per resource and pass
# Kopf's retries of a failed API request, paused at most 1 s here: 20 s away is past the 8 retries (9 attempts)
# of Kopf's own sized sequence, after which it escalates and its watch streams end for good
RETRY_CEILING = {"MILVUSOPS_API_RETRY_MAX_SECONDS": "1"}
APISERVER_AWAY_SECONDS = 20.0
KOPF_ATTEMPTS = 9


@contextmanager
def milvus_killed(milvus: MilvusServer) -> Iterator[None]:
    """SIGKILL Milvus; it is always started again (same port and data), even if the test fails."""
    milvus.kill()
    try:
        yield
    finally:
        if milvus.process is None:
            milvus.start()


def reasons(kube: Kube, namespace: str, names: list[str]) -> dict[str, str]:
    return {name: kube.condition(namespace, name).get("reason", "") for name in names}


def all_reason(kube: Kube, namespace: str, names: list[str], reason: str) -> Callable[[], bool]:
    return lambda: set(reasons(kube, namespace, names).values()) == {reason}


def in_sync(kube: Kube, namespace: str, names: list[str]) -> Callable[[], bool]:
    """Every resource InSync for its current generation (not a stale status from before a change)."""

    def check() -> bool:
        for name in names:
            body = kube.get(namespace, name)
            ready = kube.condition(namespace, name)
            if (
                ready.get("reason") != "InSync"
                or body["status"].get("observedGeneration") != body["metadata"]["generation"]
            ):
                return False
        return True

    return check


def fault_seed() -> int:
    """A random seed for fault timing, or TEST_FAULT_SEED's, to replay the one a failure printed."""
    return int(os.environ.get("TEST_FAULT_SEED") or random.randrange(2**32))  # noqa: S311 - not cryptography


def gone(kube: Kube, namespace: str, name: str) -> bool:
    return not kube.exists(namespace, name)


def expected_states(spec: dict[str, Any], partitions: list[str]) -> dict[str, str]:
    """What Milvus must report per partition for a spec (plus `_default`, which follows spec.state)."""
    named = {p["name"]: p["state"] for p in spec.get("partitions", [])}
    default = spec.get("state", "Released")
    return {name: "Loaded" if named.get(name, default) == "Loaded" else "NotLoad" for name in ["_default", *partitions]}


def test_one_milvus_outage_every_resource_recovers_and_no_deletion_wedges(
    kube: Kube,
    namespace: str,
    control_plane: ControlPlane,
    milvus: MilvusServer,
    start_operator: Callable[..., OperatorProcess],
    figures: Figures,
) -> None:
    """One SIGKILL of Milvus seen from every side: loads under way, a resource in sync, deletions under both
    policies, and an operator that starts while Milvus is down (one outage: each costs seconds of recovery)."""
    operator = start_operator(**FAST_FAILING)
    partitions = ["a", "b"]
    steady, kept, released = (new_collection(milvus, ["a"]) for _ in range(3))
    kube.create(namespace, "steady", {"collectionName": steady, "state": "Loaded"})
    kube.create(namespace, "kept", {"collectionName": kept, "state": "Loaded", "deletionPolicy": "Retain"})
    kube.create(namespace, "released", {"collectionName": released, "state": "Loaded", "deletionPolicy": "Release"})
    for name in ("steady", "kept", "released"):
        kube.wait_reason(namespace, name, "InSync", timeout=90)
    late = f"{namespace}-late"  # its operator starts while Milvus is down
    control_plane.kubectl("create", "namespace", late)
    early = new_collection(milvus, ["a"])
    kube.create(late, "early", {"collectionName": early, "partitions": [{"name": "a", "state": "Loaded"}]})
    loading = {
        f"k{i}": {
            "collectionName": new_collection(milvus, partitions, rows=2000),
            "state": "Loaded" if i % 2 else "Released",
            "partitions": [{"name": "a", "state": "Loaded"}],
        }
        for i in range(4)
    }
    for name, spec in loading.items():
        kube.create(namespace, name, spec)
    wait_for(
        lambda: "Loading" in reasons(kube, namespace, list(loading)).values(), 60, "a load under way", interval=0.1
    )
    live = ["steady", *loading]
    with milvus_killed(milvus):
        killed = time.monotonic()
        wait_for(all_reason(kube, namespace, live, "MilvusUnavailable"), 2 * RESYNC + 5, "MilvusUnavailable on all")
        figures.record(
            "Milvus SIGKILL: MilvusUnavailable on all 5 (4 mid-load) after", f"{time.monotonic() - killed:.1f} s"
        )
        kube.delete(namespace, "kept")
        kube.delete(namespace, "released")
        deleted = time.monotonic()
        wait_for(lambda: not kube.exists(namespace, "kept"), 15, "Retain: deleted at once")
        figures.record("deletion with Milvus down, Retain: gone after", f"{time.monotonic() - deleted:.1f} s")
        second = start_operator(watch=late, **FAST_FAILING)
        kube.wait_reason(late, "early", "MilvusUnavailable", timeout=30)

        def released_gone() -> bool:
            # down for longer than two resyncs: both operators stay alive and keep reporting it meanwhile
            assert kube.condition(namespace, "steady")["reason"] == "MilvusUnavailable"
            assert operator.liveness() == 200 and second.liveness() == 200
            return not kube.exists(namespace, "released")

        # FAST_FAILING's deletion timeout, 12 s
        wait_for(released_gone, 90, "Release: finalizer removed after the timeout", interval=0.5)
        figures.record("deletion with Milvus down, Release: gone after", f"{time.monotonic() - deleted:.1f} s")
        assert time.monotonic() - killed > 2 * RESYNC
    back = time.monotonic()
    wait_for(in_sync(kube, namespace, live), 180, "all InSync after Milvus restart")
    figures.record("Milvus SIGKILL: all 5 InSync after the restart began in", f"{time.monotonic() - back:.1f} s")
    kube.wait_reason(late, "early", "InSync", timeout=180)
    for spec in loading.values():
        assert load_states(milvus, str(spec["collectionName"])) == expected_states(spec, partitions)
    assert load_states(milvus, early) == {"_default": "NotLoad", "a": "Loaded"}
    warnings = [e for e in kube.events(namespace, "steady") if e.reason == "MilvusUnavailable"]
    assert len(warnings) == 1, [e.message for e in warnings]  # reported once, not on every retry
    skipped = [e for e in kube.events(namespace, "released") if e.reason == "ReleaseSkipped"]
    assert len(skipped) == 1 and "cannot reach Milvus" in skipped[0].message
    # Retain left it loaded: Milvus reloads it by itself after its restart
    wait_for(lambda: load_states(milvus, kept)["a"] == "Loaded", 120, "retained partition Loaded again")


def load_lines(log: str) -> list[tuple[str, str]]:
    """(collection, partition or '*') of every load the operator started, from its JSON log."""
    started: list[tuple[str, str]] = []
    for line in log.splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        for part in entry.get("message", "").split("; "):
            if match := re.fullmatch(r"load of partitions (.+) started \(replicas=\d+\)", part):
                started += [(entry["collection"], name) for name in match.group(1).split(", ")]
            elif re.fullmatch(r"load of collection \S+ started \(replicas=\d+\)", part):
                started.append((entry["collection"], "*"))
    return started


def test_operator_sigkilled_ten_times_converges_without_duplicate_loads(
    kube: Kube, namespace: str, milvus: MilvusServer, start_operator: Callable[..., OperatorProcess], figures: Figures
) -> None:
    seed = fault_seed()
    rng = random.Random(seed)  # noqa: S311
    partitions = ["a", "b", "c"]
    collections = [new_collection(milvus, partitions, rows=1000) for _ in range(4)]
    names = [f"r{i}" for i in range(4)]

    def spec_for(i: int, flip: bool) -> dict[str, Any]:
        loaded = {"a", "b"} if (i + flip) % 2 else {"c"}
        return {
            "collectionName": collections[i],
            "state": "Loaded" if i == 0 and not flip else "Released",
            "partitions": [{"name": p, "state": "Loaded" if p in loaded else "Released"} for p in partitions],
            "deletionPolicy": "Release",
        }

    specs = {name: spec_for(i, False) for i, name in enumerate(names)}
    for name, spec in specs.items():
        kube.create(namespace, name, spec)
    duplicates: list[str] = []
    for round_ in range(10):
        if round_ == 5:  # half-way, the desired state flips while no operator runs
            specs = {name: spec_for(i, True) for i, name in enumerate(names)}
            for name, spec in specs.items():
                kube.patch(namespace, name, {"spec": spec})
        held = {c: {p for p, s in load_states(milvus, c).items() if s in ("Loaded", "Loading")} for c in collections}
        operator = start_operator(MILVUSOPS_LOG_FORMAT="json")
        time.sleep(rng.uniform(0.2, 3.0))  # the fault's timing is the point here: random, not a condition
        operator.kill()
        for collection, partition in load_lines(operator.log()):
            if partition in held[collection] or (partition == "*" and held[collection] >= {"_default", *partitions}):
                duplicates.append(f"round {round_}: load of {collection}/{partition} already held")
    assert not duplicates, (seed, duplicates)
    final = start_operator()
    started = time.monotonic()
    wait_for(in_sync(kube, namespace, names), 180, f"all InSync after 10 kills (seed {seed})")
    figures.record(
        "operator SIGKILLed 10x at random",
        f"{len(duplicates)} duplicate loads; all InSync {time.monotonic() - started:.1f} s after the last restart",
    )
    for name, spec in specs.items():
        assert load_states(milvus, spec["collectionName"]) == expected_states(spec, partitions), name
    for name in names:
        kube.delete(namespace, name)
    wait_for(lambda: not any(kube.exists(namespace, name) for name in names), 60, "no finalizer left behind")
    assert final.metric("milvusops_load_release_calls_total", method="release_collection") + final.metric(
        "milvusops_load_release_calls_total", method="release_partitions"
    ) >= len(names)  # deletionPolicy Release did release what each kept loaded


def kopf_retries(log: str) -> tuple[int, list[str]]:
    """The highest attempt number of Kopf's "will retry" lines, and its "escalating" lines (it gave up)."""
    attempts = [int(n) for n in re.findall(r"Request attempt #(\d+) failed; will retry", log)]
    return max(attempts, default=0), [line for line in log.splitlines() if "failed; escalating" in line]


def test_apiserver_restart_watches_recover(
    kube: Kube,
    namespace: str,
    control_plane: ControlPlane,
    milvus: MilvusServer,
    start_operator: Callable[..., OperatorProcess],
    figures: Figures,
) -> None:
    operator = start_operator(**RETRY_CEILING)
    collection = new_collection(milvus, ["a", "b"])
    listed = [{"name": "a", "state": "Loaded"}]  # state Released: b is the spec's too, so its load is drift
    kube.create(namespace, "survivor", {"collectionName": collection, "state": "Released", "partitions": listed})
    kube.wait_reason(namespace, "survivor", "InSync", timeout=90)
    control_plane.stop_apiserver()
    stopped = time.monotonic()
    try:
        # meanwhile Milvus drifts: the operator corrects it while the API server is away, and reports it later
        client = milvus.client()
        client.load_partitions(collection, ["b"])
        client.close()
        wait_for(
            lambda: load_states(milvus, collection)["b"] == "NotLoad", 3 * RESYNC, "drift reverted with no API server"
        )
        # away for longer than Kopf's own retries would last, after which its watch streams would give up
        while time.monotonic() - stopped < APISERVER_AWAY_SECONDS:
            assert operator.process is not None and operator.process.alive()
            time.sleep(1)
    finally:
        control_plane.start_apiserver()
    restarted = time.monotonic()
    highest, escalated = kopf_retries(operator.log())
    assert highest > KOPF_ATTEMPTS and not escalated, (highest, escalated)  # unnumbered: a sequence without end
    # a spec change made after the restart reaches the operator only through a recovered watch
    loaded = [{"name": "a", "state": "Loaded"}, {"name": "b", "state": "Loaded"}]
    kube.patch(namespace, "survivor", {"spec": {"partitions": loaded}})
    wait_for(in_sync(kube, namespace, ["survivor"]), 120, "new generation InSync after the API server restart")
    figures.record(
        f"kube-apiserver down {APISERVER_AWAY_SECONDS:.0f} s, then back: a spec change made after it InSync in",
        f"{time.monotonic() - restarted:.1f} s",
    )
    assert load_states(milvus, collection) == {"_default": "NotLoad", "a": "Loaded", "b": "Loaded"}
    kube.create(namespace, "newcomer", {"collectionName": new_collection(milvus, ["x"]), "state": "Loaded"})
    kube.wait_reason(namespace, "newcomer", "InSync", timeout=90)
    assert operator.process is not None and operator.process.alive()


def test_churn_ends_with_milvus_matching_the_last_spec(
    kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess, figures: Figures
) -> None:
    seed = fault_seed()
    rng = random.Random(seed)  # noqa: S311
    partitions = ["a", "b", "c"]
    collections = {f"m{i}": new_collection(milvus, partitions) for i in range(6)}
    specs: dict[str, dict[str, Any]] = {}
    edits = 0

    def random_spec(collection: str) -> dict[str, Any]:
        chosen = [{"name": p, "state": rng.choice(["Loaded", "Released"])} for p in partitions if rng.random() < 0.7]
        return {"collectionName": collection, "state": rng.choice(["Loaded", "Released"]), "partitions": chosen}

    for name, collection in collections.items():
        specs[name] = random_spec(collection)
        kube.create(namespace, name, specs[name])
    for _ in range(CHURN_EDITS):
        name = rng.choice(list(collections))
        move = rng.choice(["edit", "edit", "edit", "pause", "recreate"])
        if move == "edit":
            specs[name] = random_spec(collections[name])
            kube.patch(
                namespace, name, {"spec": {"state": specs[name]["state"], "partitions": specs[name]["partitions"]}}
            )
        elif move == "pause":
            paused = kube.get(namespace, name)["metadata"].get("annotations", {}).get("milvusops.dev/paused") == "true"
            kube.patch(
                namespace, name, {"metadata": {"annotations": {"milvusops.dev/paused": None if paused else "true"}}}
            )
        else:
            kube.delete(namespace, name)
            wait_for(functools.partial(gone, kube, namespace, name), 60, f"{name} deleted")
            specs[name] = random_spec(collections[name])
            kube.create(namespace, name, specs[name])
        edits += 1
        time.sleep(rng.uniform(0.05, 0.6))  # random pacing of the edits is part of the churn, not a wait
    for name in collections:  # unpause what the churn left paused, so the last spec must be enforced
        kube.patch(namespace, name, {"metadata": {"annotations": {"milvusops.dev/paused": None}}})
    settled = time.monotonic()
    wait_for(in_sync(kube, namespace, list(collections)), 180, f"all InSync after churn (seed {seed})")
    figures.record(
        f"churn: {CHURN_EDITS} random edits",
        f"{edits} edits on 6 resources, all InSync {time.monotonic() - settled:.1f} s after the last",
    )
    for name, collection in collections.items():
        assert load_states(milvus, collection) == expected_states(specs[name], partitions), (seed, name, specs[name])
    assert operator.process is not None and operator.process.alive()
