"""What deletion waits for: connections held for their collections, releases retried until the timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import kopf
import pytest

from milvusops.core.failures import Failure, FailureError, Reason
from milvusops.kube.api import KubeApi
from milvusops.runtime import deletion
from milvusops.runtime.collection_worker import CollectionWorker, finalize_collection
from milvusops.runtime.connections import Connections
from milvusops.runtime.deletion import (
    connection_use,
    finalize_connection,
    in_use_delay,
    in_use_message,
    indexed_users,
    listed_users,
    pending_message,
    release_retry_delay,
    users_of,
)
from milvusops.runtime.settings import Settings
from tests.unit.fake_milvus import FakeMilvus, FakePorts


def _collection(name: str, ref: Any = None, namespace: str = "team") -> dict[str, Any]:
    spec: dict[str, Any] = {"state": "Loaded"}
    if ref is not None:
        spec["connectionRef"] = ref
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


def test_a_collection_uses_the_connection_it_names() -> None:
    assert connection_use(_collection("docs", {"name": "main"})) == {("team", "main"): "docs"}


@pytest.mark.parametrize("ref", [None, {}, {"name": ""}])
def test_the_default_connection_is_nobody_s_to_hold(ref: Any) -> None:
    assert connection_use(_collection("docs", ref)) == {}


def test_users_are_listed_once_and_sorted() -> None:
    index = {("team", "main"): ["b", "a", "b"], ("other", "main"): ["z"]}
    assert users_of(index, "team", "main") == ["a", "b"]
    assert users_of(index, "team", "spare") == []


@pytest.mark.parametrize(("retry", "delay"), [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (4, 10.0), (10_000, 10.0)])
def test_a_connection_still_in_use_is_retried_with_backoff_up_to_ten_seconds(retry: int, delay: float) -> None:
    assert in_use_delay(retry) == delay


def test_the_in_use_message_names_the_users_and_stays_short() -> None:
    assert in_use_message(["a", "b"]).endswith("still used by: a, b")
    many = in_use_message([f"c{i:02}" for i in range(25)])
    assert "c09 and 15 more" in many and "c10" not in many


_MAIN = {"metadata": {"namespace": "team", "name": "main"}}


async def test_a_connection_goes_as_soon_as_its_last_collection_leaves_the_index(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deletion, "IN_USE_WATCH_SECONDS", 5.0)
    index: dict[tuple[str, str], list[str]] = {("team", "main"): ["docs"]}
    reported = {in_use_message(["docs"])}  # already said: no event to post outside Kopf
    waiting = asyncio.create_task(finalize_connection(cast(kopf.Body, _MAIN), indexed_users(index), 0, reported))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    index[("team", "main")] = []  # Kopf's live index, as the collection's DELETED event arrives
    await asyncio.wait_for(waiting, 1.0)


async def test_a_connection_still_in_use_after_the_watch_is_retried_by_kopf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deletion, "IN_USE_WATCH_SECONDS", 0.3)
    index = {("team", "main"): ["docs"]}
    with pytest.raises(kopf.TemporaryError) as raised:
        await finalize_connection(cast(kopf.Body, _MAIN), indexed_users(index), 2, {in_use_message(["docs"])})
    assert raised.value.delay == 4.0
    assert str(raised.value).endswith("still used by: docs")


async def test_an_unused_connection_goes_at_once() -> None:
    await asyncio.wait_for(finalize_connection(cast(kopf.Body, _MAIN), indexed_users({}), 0, set()), 0.1)


class _Lister:
    """MilvusCollections as the API server lists them: every shard's, not only this process's."""

    def __init__(self, *bodies: dict[str, Any], failure: Failure | None = None) -> None:
        self.bodies, self.failure, self.calls = list(bodies), failure, 0

    async def list_collections(self, namespace: str | None) -> list[Mapping[str, Any]]:
        self.calls += 1
        if self.failure is not None:
            raise FailureError(self.failure)
        return [b for b in self.bodies if b["metadata"]["namespace"] == namespace]


async def test_a_shard_asks_the_api_server_for_the_users_of_every_shard() -> None:
    lister = _Lister(
        _collection("b", {"name": "main"}),
        _collection("a", {"name": "main"}),
        _collection("other", {"name": "backup"}),
        _collection("default"),
        _collection("elsewhere", {"name": "main"}, namespace="team-b"),
    )
    users = listed_users(lister)
    assert await users.find("team", "main") == ["a", "b"]
    assert users.poll_seconds >= 1.0  # a LIST per look: not the index's 5 per second
    assert lister.calls == 1


async def test_a_sharded_connection_goes_once_the_listed_users_are_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deletion, "IN_USE_WATCH_SECONDS", 5.0)
    lister = _Lister(_collection("docs", {"name": "main"}))
    users = listed_users(lister)
    waiting = asyncio.create_task(finalize_connection(cast(kopf.Body, _MAIN), users, 0, {in_use_message(["docs"])}))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    lister.bodies.clear()  # the other shard released and removed its finalizer
    await asyncio.wait_for(waiting, 2.0)
    assert lister.calls == 2


async def test_an_unanswered_list_is_retried_by_kopf_not_taken_for_no_users() -> None:
    unavailable = Failure(Reason.API_SERVER_UNAVAILABLE, "no answer from the Kubernetes API server")
    with pytest.raises(kopf.TemporaryError) as raised:
        await finalize_connection(cast(kopf.Body, _MAIN), listed_users(_Lister(failure=unavailable)), 3, set())
    assert raised.value.delay == 8.0
    assert "no answer" in str(raised.value)


@pytest.mark.parametrize(
    ("reason", "runtime", "retry", "delay"),
    [
        (Reason.MILVUS_UNAVAILABLE, 0.0, 0, 1.0),
        (Reason.MILVUS_UNAVAILABLE, 0.0, 3, 8.0),
        (Reason.MILVUS_UNAVAILABLE, 0.0, 9, 30.0),
        (Reason.MILVUS_UNAVAILABLE, 290.0, 9, 10.0),
        (Reason.MILVUS_ERROR, 0.0, 4, 16.0),  # unclassified: may be transient, so waited for as well
        (Reason.API_SERVER_UNAVAILABLE, 0.0, 1, 2.0),
        (Reason.SECRET_NOT_FOUND, 0.0, 9, 30.0),  # a prune deleted it, and nothing was cached (operator restarted)
        (Reason.CONNECTION_NOT_FOUND, 100.0, 9, 30.0),
        (Reason.SECRET_NOT_FOUND, 300.0, 0, None),  # the deletion timeout is over: give up
        (Reason.MILVUS_UNAVAILABLE, 301.0, 0, None),
        (Reason.MILVUS_ERROR, 301.0, 0, None),
        (Reason.INDEX_NOT_FOUND, 0.0, 0, None),  # waiting cannot help
        (Reason.FORBIDDEN, 0.0, 0, None),
        (Reason.SECRET_INVALID, 0.0, 0, None),
    ],
)
def test_a_release_on_deletion_gives_up_early_only_on_a_permanent_cause(
    reason: Reason, runtime: float, retry: int, delay: float | None
) -> None:
    assert release_retry_delay(Failure(reason, "x"), runtime, 300.0, retry) == delay


async def test_an_unexpected_exception_on_deletion_counts_against_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    posted: list[str] = []
    monkeypatch.setattr(kopf, "event", lambda body, type, reason, message: posted.append(reason))
    worker = CollectionWorker(Settings(_cli_parse_args=[]), cast(KubeApi, None), cast(Connections, _Exploding()))  # type: ignore[call-arg]
    with pytest.raises(kopf.TemporaryError, match="RuntimeError: cannot schedule new futures"):
        await finalize_collection(_releasing_body(), worker, {}, runtime_seconds=1.0, reported=set())
    await finalize_collection(_releasing_body(), worker, {}, runtime_seconds=300.0, reported=set())  # timeout over
    assert posted == ["ReleasePending", "ReleaseSkipped"]


class _Exploding:
    def for_deletion(self) -> _Exploding:
        return self

    async def port(self, namespace: str, connection: str | None, database: str) -> Any:
        raise RuntimeError("cannot schedule new futures after shutdown")

    async def endpoint(self, namespace: str, connection: str | None) -> Any:
        raise RuntimeError("cannot schedule new futures after shutdown")


def test_the_pending_message_says_what_happens_next() -> None:
    message = pending_message(Failure(Reason.SECRET_NOT_FOUND, "Secret team/token not found"), 300.0)
    assert message.startswith("cannot release on deletion yet: Secret team/token not found;")
    assert "up to 300 s" in message and "removed without releasing" in message


class _FakeKube:
    """Reads a MilvusConnection and its Secret from dicts; a missing one fails as KubeApi does."""

    def __init__(self) -> None:
        self.connections: dict[str, Mapping[str, Any]] = {}
        self.secrets: dict[str, str] = {}
        self.forbidden = False

    async def read_connection(self, namespace: str, name: str) -> Mapping[str, Any]:
        if name not in self.connections:
            raise FailureError(Failure(Reason.CONNECTION_NOT_FOUND, f"MilvusConnection {namespace}/{name} not found"))
        return self.connections[name]

    async def read_secret_value(self, namespace: str, name: str, key: str) -> str:
        if self.forbidden:
            raise FailureError(Failure(Reason.FORBIDDEN, "may not get secrets"))
        if name not in self.secrets:
            raise FailureError(Failure(Reason.SECRET_NOT_FOUND, f"Secret {namespace}/{name} not found"))
        return self.secrets[name]


@pytest.fixture
def kube() -> _FakeKube:
    fake = _FakeKube()
    fake.connections["main"] = {"spec": {"uri": "http://milvus:19530", "credentialsSecretRef": {"name": "token"}}}
    fake.secrets["token"] = "root:Milvus"
    return fake


@pytest.fixture
def pool(kube: _FakeKube, tmp_path: Path) -> Connections:
    return Connections(Settings(_cli_parse_args=[]), cast(KubeApi, kube), tmp_path)  # type: ignore[call-arg]


async def test_finalizers_use_the_last_endpoint_once_the_secret_is_pruned(pool: Connections, kube: _FakeKube) -> None:
    assert (await pool.endpoint("team", "main")).token == "root:Milvus"
    del kube.secrets["token"]
    pool.forget("team", "main")  # the connection's own deletion is an event: it drops the cached endpoint
    with pytest.raises(FailureError) as raised:
        await pool.endpoint("team", "main")
    assert raised.value.failure.reason == Reason.SECRET_NOT_FOUND  # reconciles are not served stale settings
    kept = await pool.endpoint("team", "main", last_known=True)
    assert (kept.uri, kept.token) == ("http://milvus:19530", "root:Milvus")


async def test_finalizers_use_the_last_endpoint_once_the_connection_is_pruned(
    pool: Connections, kube: _FakeKube
) -> None:
    await pool.endpoint("team", "main")
    kube.connections.clear()
    pool.forget("team", "main")
    assert (await pool.endpoint("team", "main", last_known=True)).token == "root:Milvus"


async def test_nothing_resolved_before_means_nothing_to_fall_back_on(pool: Connections, kube: _FakeKube) -> None:
    del kube.secrets["token"]
    with pytest.raises(FailureError) as raised:
        await pool.endpoint("team", "main", last_known=True)
    assert raised.value.failure.reason == Reason.SECRET_NOT_FOUND


async def test_a_deleted_connection_takes_its_last_endpoint_with_it(pool: Connections, kube: _FakeKube) -> None:
    await pool.endpoint("team", "main")
    kube.connections.clear()
    pool.discard("team", "main")
    with pytest.raises(FailureError):
        await pool.endpoint("team", "main", last_known=True)


async def test_only_what_a_prune_removes_falls_back(pool: Connections, kube: _FakeKube) -> None:
    await pool.endpoint("team", "main")
    kube.forbidden = True
    pool.forget("team", "main")
    with pytest.raises(FailureError) as raised:
        await pool.endpoint("team", "main", last_known=True)
    assert raised.value.failure.reason == Reason.FORBIDDEN


async def test_the_last_endpoint_follows_a_changed_secret(pool: Connections, kube: _FakeKube) -> None:
    await pool.endpoint("team", "main")
    kube.secrets["token"] = "root:Rotated"
    pool.forget("team", "main")
    await pool.endpoint("team", "main")
    del kube.secrets["token"]
    pool.forget("team", "main")
    assert (await pool.endpoint("team", "main", last_known=True)).token == "root:Rotated"


def _releasing_body() -> kopf.Body:
    meta: dict[str, Any] = {"name": "m", "namespace": "ns", "uid": "u1", "generation": 1}
    spec = {"state": "Loaded", "deletionPolicy": "Release", "collectionName": "c"}
    return cast(kopf.Body, {"metadata": meta, "spec": spec})


async def test_a_transient_milvus_error_on_deletion_is_retried_not_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 6: an unclassified error (a Milvus rolling upgrade's unknown code) must not leave the collection loaded."""
    posted: list[str] = []
    monkeypatch.setattr(kopf, "event", lambda body, type, reason, message: posted.append(reason))
    unknown = Failure(Reason.MILVUS_ERROR, "code 65535: service is upgrading")
    pool = cast(Connections, FakePorts(FakeMilvus(None), failure=unknown))
    worker = CollectionWorker(Settings(_cli_parse_args=[]), cast(KubeApi, None), pool)  # type: ignore[call-arg]
    with pytest.raises(kopf.TemporaryError) as caught:
        await finalize_collection(_releasing_body(), worker, {}, runtime_seconds=1.0, reported=set())
    assert "service is upgrading" in str(caught.value)
    assert posted == ["ReleasePending"]
