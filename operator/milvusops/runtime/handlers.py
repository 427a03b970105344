"""Kopf registrations only: each handler translates Kopf's arguments and calls one function."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import kopf

from milvusops import ALIASES, COLLECTIONS, CONNECTIONS, FINALIZER, GROUP, VERSION
from milvusops.core.alias_model import CollectionView, alias_key
from milvusops.core.alias_model import claimant as alias_claimant
from milvusops.core.conflicts import SERVER_CLAIMS, claimant, claims_collection, conflict_key
from milvusops.kube import session as kube_session
from milvusops.kube.api import KubeApi
from milvusops.kube.slim_bodies import slim_body
from milvusops.runtime.alias_worker import AliasWorker, finalize_alias
from milvusops.runtime.capacity_guard import MemoryGuard
from milvusops.runtime.collection_worker import CollectionWorker, finalize_collection
from milvusops.runtime.connection_worker import ConnectionWorker, Wake, wake_delays
from milvusops.runtime.connections import Connections
from milvusops.runtime.deletion import connection_use, finalize_connection, indexed_users, listed_users
from milvusops.runtime.kopf_diffbase import NoDiffBase
from milvusops.runtime.settings import Settings, memory_guard


class RetryForever:
    """Kopf's first backoffs capped at `ceiling`, then every `ceiling` s without end (as client-go does).

    Unsized, so Kopf never counts the retries down and escalates.
    """

    def __init__(self, ceiling: float = 10.0) -> None:
        self.ceiling = ceiling

    def __iter__(self) -> Iterator[float]:
        return itertools.chain((min(s, self.ceiling) for s in (1, 1, 2, 3, 5, 8)), itertools.repeat(self.ceiling))


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config: Settings = memo.settings
    # own finalizer and annotation prefix: the resource's group, not Kopf's defaults
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    # no create/update handlers: a diff base would cost each new object one more PATCH and watch event
    settings.persistence.diffbase_storage = NoDiffBase()
    # our own logger reports outcomes; Kopf's per-handler log lines are not worth an Event each
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = "milvusops"
    # an API server away for longer than Kopf's ~54 s of retries would end the watch streams for good
    settings.networking.error_backoffs = RetryForever(config.api_retry_max_seconds)
    # how long a crashed replica blocks the others; set before Kopf's peering starts (it waits for startup)
    settings.peering.lifetime = config.peering_lifetime_seconds
    if config.watch_label_selector:
        # server-side (labelSelector on the list and the watch): other shards' objects never reach this process
        settings.watching.label_selectors[GROUP, COLLECTIONS] = config.watch_label_selector
    # no settings.queueing/posting.worker_limit, though they cut peak RSS: Kopf sleeps retry delays inside
    # its workers, so a few dozen objects retrying (a deletion, an event to a terminating namespace) stall the rest
    # reading the kubeconfig or the service account's files takes about a second on a busy node: not on the loop
    memo.kube = await asyncio.to_thread(KubeApi, config.api_timeout_seconds)
    memo.workers = {}  # uid -> worker; shared by every per-object memo (they are shallow copies)
    memo.pool = Connections(config, memo.kube, Path(tempfile.gettempdir()) / "milvusops-tls")
    memo.memory = MemoryGuard(memory_guard(config))  # per Milvus server, the order of loads waiting for its memory


@kopf.on.login()
async def login(memo: kopf.Memo, **kwargs: Any) -> kopf.AiohttpSession | None:
    """Kopf's usual login (in-cluster, else kubeconfig), in a session with a bounded connection pool.

    Async because Kopf runs sync handlers in threads, and the aiohttp session must be made on the event loop.
    """
    config: Settings = memo.settings
    info = kopf.login_via_client(**kwargs)
    limit = kube_session.connection_limit(config.api_connections, config.namespaces, peering=not config.standalone)
    return None if info is None else kube_session.session(info, limit)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    memo.pool.close()
    await asyncio.to_thread(memo.kube.close)  # joins the client's thread pool


# the indexes are async though they never wait: Kopf runs a sync handler on a thread, per watch event each
@kopf.index(GROUP, VERSION, COLLECTIONS)
async def collection_owners(body: kopf.Body, **_: Any) -> dict[tuple[str, str, str], tuple[str, str, str]]:
    """Who manages which collection, for the oldest-wins conflict rule."""
    if not claims_collection(body):
        return {}
    return {conflict_key(body): claimant(body)}


@kopf.index(GROUP, VERSION, COLLECTIONS)
async def connection_users(body: kopf.Body, **_: Any) -> dict[tuple[str, str], str]:
    """Which MilvusCollections refer to which MilvusConnection, so a deleted connection waits for them."""
    return connection_use(body)


@kopf.on.event(GROUP, VERSION, COLLECTIONS)
async def collection_changed(body: kopf.Body, memo: kopf.Memo, event: kopf.RawEvent, **_: Any) -> None:
    _follow(memo, body, event, CollectionWorker)
    if event.get("type") != "DELETED":
        AliasWorker.wake_followers(body)  # an alias waiting for it switches at once, not at its next resync


@kopf.index(GROUP, VERSION, COLLECTIONS)
async def collection_views(body: kopf.Body, **_: Any) -> dict[tuple[str, str], CollectionView]:
    """What MilvusAliases read of MilvusCollections (their targets, and who wants a previous target Loaded)."""
    return {(body["metadata"]["namespace"], body["metadata"]["name"]): CollectionView.of(body)}


@kopf.daemon(GROUP, VERSION, COLLECTIONS, cancellation_timeout=5.0)
async def collection_daemon(body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **kwargs: Any) -> None:
    await _worker(memo, CollectionWorker).run(body, kwargs["collection_owners"], stopped)


@kopf.on.delete(GROUP, VERSION, COLLECTIONS)
async def collection_deleted(body: kopf.Body, memo: kopf.Memo, runtime: timedelta, retry: int, **kwargs: Any) -> None:
    worker = _worker(memo, CollectionWorker)
    reported = memo.setdefault("deletion_reported", set())
    owners = kwargs["collection_owners"]
    await finalize_collection(body, worker, owners, runtime.total_seconds(), reported, retry)
    SERVER_CLAIMS.forget(body["metadata"]["uid"])


def serve_aliases(registry: kopf.OperatorRegistry) -> None:
    """MilvusAlias handlers, for the one shard that serves connections (aliases are few and not sharded)."""
    kopf.index(GROUP, VERSION, ALIASES, registry=registry)(alias_owners)
    kopf.on.event(GROUP, VERSION, ALIASES, registry=registry)(alias_changed)
    kopf.on.delete(GROUP, VERSION, ALIASES, registry=registry)(alias_deleted)
    kopf.daemon(GROUP, VERSION, ALIASES, cancellation_timeout=5.0, registry=registry)(alias_daemon)


async def alias_owners(body: kopf.Body, **_: Any) -> dict[tuple[str, str, str], tuple[str, str, str]]:
    """Who manages which alias, for the oldest-wins conflict rule."""
    return {alias_key(body): alias_claimant(body)}


async def alias_changed(body: kopf.Body, memo: kopf.Memo, event: kopf.RawEvent, **_: Any) -> None:
    _follow(memo, body, event, AliasWorker)


async def alias_daemon(body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **kwargs: Any) -> None:
    await _worker(memo, AliasWorker).run(body, kwargs["alias_owners"], kwargs["collection_views"], stopped)


async def alias_deleted(body: kopf.Body, memo: kopf.Memo, runtime: timedelta, retry: int, **kwargs: Any) -> None:
    reported = memo.setdefault("deletion_reported", set())
    await finalize_alias(
        body, _worker(memo, AliasWorker), kwargs["alias_owners"], runtime.total_seconds(), reported, retry
    )


def serve_connections(registry: kopf.OperatorRegistry) -> None:
    """MilvusConnection handlers, for the one shard that serves them: Kopf strips a finalizer no handler needs."""
    kopf.on.event(GROUP, VERSION, CONNECTIONS, registry=registry)(connection_changed)
    kopf.on.delete(GROUP, VERSION, CONNECTIONS, registry=registry)(connection_deleted)
    kopf.daemon(GROUP, VERSION, CONNECTIONS, cancellation_timeout=5.0, registry=registry)(connection_daemon)


async def connection_changed(body: kopf.Body, memo: kopf.Memo, event: kopf.RawEvent, **_: Any) -> None:
    slim_body(event["object"])
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    connection = _worker(memo, ConnectionWorker)
    if event.get("type") == "DELETED":
        memo.pool.discard(namespace, name)  # its finalizer waited until no collection could need it
        connection.retire(body)
        _wake_users(memo, namespace, name, failing_only=False)  # each finds out now
        return
    connection.notice(body)
    if body["metadata"].get("deletionTimestamp"):
        return  # on its way out, patched by each retry of its finalizer: nothing new for its collections
    wake = connection.changed_for_collections(body)
    if wake == Wake.NONE:
        return  # our own status writes and heartbeats, a lost Ready: the cached endpoint and the collections stand
    memo.pool.forget(namespace, name)
    # an edited or recovered connection should not wait for the next resync of the collections it concerns
    _wake_users(memo, namespace, name, failing_only=wake == Wake.FAILING)


def _wake_users(memo: kopf.Memo, namespace: str, name: str, failing_only: bool) -> None:
    """Each collection using the connection wakes after its own random delay, so their passes do not all coincide."""
    config: Settings = memo.settings
    users = [
        w
        for w in memo.workers.values()
        if isinstance(w, CollectionWorker) and w.uses_connection(namespace, name) and (w.failing or not failing_only)
    ]
    loop = asyncio.get_running_loop()
    for worker, delay in zip(users, wake_delays(len(users), config.resync_seconds, random.random), strict=True):
        loop.call_later(delay, worker.wakeup.set)


async def connection_deleted(body: kopf.Body, memo: kopf.Memo, retry: int, **kwargs: Any) -> None:
    config: Settings = memo.settings
    reported = memo.setdefault("deletion_reported", set())
    # a shard's index holds only its own collections: then ask the API server for every shard's
    users = listed_users(memo.kube) if config.watch_label_selector else indexed_users(kwargs["connection_users"])
    await finalize_connection(body, users, retry, reported)


async def connection_daemon(body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any) -> None:
    await _worker(memo, ConnectionWorker).run(body, stopped)


def _worker(memo: kopf.Memo, kind: Any) -> Any:
    """The per-object worker lives in the per-object memo, shared by its event and daemon handlers."""
    if "worker" not in memo:
        memo.worker = kind(memo.settings, memo.kube, memo.pool)
        if isinstance(memo.worker, CollectionWorker):
            memo.worker.memory = memo.memory
    return memo.worker


def _follow(memo: kopf.Memo, body: kopf.Body, event: kopf.RawEvent, kind: Any) -> None:
    """An object's watch event reaches its worker: noticed, or retired when the object is gone."""
    slim_body(event["object"])  # on.event runs before Kopf hands this same dict to the daemon
    worker = _worker(memo, kind)
    if event.get("type") == "DELETED":
        memo.workers.pop(body["metadata"]["uid"], None)
        worker.retire(body)
        return
    memo.workers[body["metadata"]["uid"]] = worker
    worker.notice(body)
