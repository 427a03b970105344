"""What deletion waits for: a MilvusConnection for the collections that still need it, a release for Milvus.

A GitOps prune or a namespace deletion removes a Secret, its MilvusConnection and the MilvusCollections
using them in any order. A connection is therefore held (Crossplane's ProviderConfigUsage model) until no
MilvusCollection in its namespace refers to it, and a collection's finalizer waits, up to the deletion
timeout, for what it needs to release its collection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableSet
from dataclasses import dataclass
from typing import Any, Protocol

import kopf

from milvusops.core.failures import Failure, FailureError, Reason
from milvusops.core.model import CollectionSpec, ResourceRef
from milvusops.core.plan import deletion_release
from milvusops.milvus.call_slots import Priority, prioritized
from milvusops.milvus.port import PortSource
from milvusops.runtime.apply import apply
from milvusops.runtime.observe import observe

log = logging.getLogger("milvusops")

# Stalled reasons that a release on deletion still waits for: what a prune removes may come back (restored)
COMES_BACK = frozenset({Reason.SECRET_NOT_FOUND, Reason.CONNECTION_NOT_FOUND})
# a release on deletion is retried after 1, 2, 4 ... seconds, then every 30 s, until the deletion timeout
RELEASE_RETRY_CAP_SECONDS = 30.0
# a prune's releases take a few seconds: watch the in-memory index that long before a Kopf retry (a PATCH, a log line)
IN_USE_WATCH_SECONDS = 5.0
IN_USE_POLL_SECONDS = 0.2
# with shards, each look is a LIST of the namespace's MilvusCollections: not five per second
IN_USE_LIST_SECONDS = 1.0
IN_USE_RETRY_CAP_SECONDS = 10.0


def connection_use(body: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    """Index entry of a MilvusCollection: (namespace, connection name) -> collection name; {} for the default."""
    connection = CollectionSpec.from_body(body).connection_name
    if not connection:
        return {}
    meta = body["metadata"]
    return {(meta["namespace"], connection): meta["name"]}


def users_of(index: Mapping[Any, Iterable[str]], namespace: str, connection: str) -> list[str]:
    """The MilvusCollections (names, sorted) that still refer to a connection."""
    return sorted(set(index.get((namespace, connection), ())))


@dataclass(frozen=True)
class UsersOf:
    """Where a connection's finalizer looks up the MilvusCollections (names, sorted) still referring to it."""

    find: Callable[[str, str], Awaitable[list[str]]]  # (namespace, connection name) -> users
    poll_seconds: float


class CollectionLister(Protocol):
    async def list_collections(self, namespace: str | None) -> list[Mapping[str, Any]]: ...


def indexed_users(index: Mapping[Any, Iterable[str]]) -> UsersOf:
    """From Kopf's live index of this process's collections: complete when it serves every collection."""

    async def find(namespace: str, name: str) -> list[str]:
        return users_of(index, namespace, name)

    return UsersOf(find, IN_USE_POLL_SECONDS)


def listed_users(kube: CollectionLister) -> UsersOf:
    """From the API server: a shard's index misses the collections that other shards serve."""

    async def find(namespace: str, name: str) -> list[str]:
        index: dict[tuple[str, str], list[str]] = {}
        for body in await kube.list_collections(namespace):
            for key, user in connection_use(body).items():
                index.setdefault(key, []).append(user)
        return users_of(index, namespace, name)

    return UsersOf(find, IN_USE_LIST_SECONDS)


def in_use_delay(retry: int) -> float:
    return min(IN_USE_RETRY_CAP_SECONDS, 2.0 ** min(retry, 10))


def in_use_message(users: list[str]) -> str:
    shown = ", ".join(users[:10]) + (f" and {len(users) - 10} more" if len(users) > 10 else "")
    return f"deletion waits until no MilvusCollection uses this connection; still used by: {shown}"


def release_retry_delay(
    failure: Failure, runtime_seconds: float, timeout_seconds: float, retry: int = 0
) -> float | None:
    """Seconds until a release on deletion is tried again; None: give up and remove the finalizer.

    Only a permanent cause (Stalled: RBAC, the collection's definition) gives up before the timeout; transient
    and unclassified ones (an unknown code during a Milvus upgrade) are retried with backoff until then.
    """
    permanent = failure.stalled and failure.reason not in COMES_BACK
    if permanent or runtime_seconds >= timeout_seconds:
        return None
    backoff = max(min(RELEASE_RETRY_CAP_SECONDS, 2.0 ** min(retry, 5)), failure.retry_after or 0.0)
    return min(backoff, timeout_seconds - runtime_seconds)


def pending_message(failure: Failure, timeout_seconds: float) -> str:
    return (
        f"cannot release on deletion yet: {failure.message}; retrying for up to {timeout_seconds:.0f} s "
        "after the deletion started, then the finalizer is removed without releasing"
    )


async def finalize_connection(
    body: kopf.Body, users_of_connection: UsersOf, retry: int, reported: MutableSet[str]
) -> None:
    """Hold a deleted MilvusConnection while MilvusCollections refer to it; they may need it to release.

    With Kopf's live index, the users change as the collections go, without any API call.
    """
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    try:
        users = await users_of_connection.find(namespace, name)
        if not users:
            return
        message = in_use_message(users)
        if message not in reported:  # one event per set of users, not one per re-check
            reported.add(message)
            kopf.event(body, type="Normal", reason="InUse", message=message)
            log.info("%s", message, extra={"resource": f"{namespace}/{name}"})
        deadline = time.monotonic() + IN_USE_WATCH_SECONDS
        while users and time.monotonic() < deadline:
            await asyncio.sleep(users_of_connection.poll_seconds)
            users = await users_of_connection.find(namespace, name)
    except FailureError as exc:  # the API server did not answer the list: look again later
        raise kopf.TemporaryError(exc.failure.message, delay=in_use_delay(retry)) from exc
    if users:
        raise kopf.TemporaryError(in_use_message(users), delay=in_use_delay(retry))


async def release_held(
    spec: CollectionSpec, ref: ResourceRef, ports: PortSource, others: tuple[CollectionSpec, ...] = ()
) -> list[str]:
    """Deletion with deletionPolicy Release: release what this resource kept loaded; a line per call made.

    `others`: the specs of the live resources that lost a conflict to this one; what they declare Loaded is
    handed over to them, not released.
    """
    port = await ports.port(ref.namespace, spec.connection_name, spec.database)
    with prioritized(Priority.ACT):  # someone is waiting for the deletion
        observed = await observe(port, spec.collection_name)
    action, handed_over = deletion_release(spec, observed, others)
    if action is None:
        return []
    applied = await apply(port, spec, (action,))
    if applied.failure is not None:
        raise FailureError(applied.failure)
    done = list(applied.lines)
    if handed_over:
        kept = ", ".join(sorted(handed_over))
        done.append(f"left {kept} of collection {spec.collection_name} loaded: another MilvusCollection declares them")
    return done
