"""MilvusCollections in bulk: create them at once, wait until every one is Ready, delete them.

`wait_ready` lists the namespace once and then follows a watch, as `kubectl wait` does: each change
reaches it once, so the waiting costs the API server and this process next to nothing while the
operator works. The other waits list the namespace once per poll (never one GET per resource).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from kubernetes import watch
from kubernetes.client import ApiException
from tests.e2e.helpers import GROUP, PLURAL, VERSION, Kube

CREATE_WIDTH = 16  # parallel API creates, as a GitOps apply of many manifests sends them
SHOWN = 20  # not-ready resources listed in an error


class NotReadyError(RuntimeError):
    pass


def desired(collection: str, partitions: list[str] | None, connection: str | None = None) -> dict[str, Any]:
    """Every partition Loaded: the whole collection, or the listed partitions (then `_default` stays Released).

    `connection`: through that MilvusConnection, not the operator's default connection."""
    via = {"connectionRef": {"name": connection}} if connection else {}
    if partitions is None:
        return {"collectionName": collection, "state": "Loaded", **via}
    listed = [{"name": name, "state": "Loaded"} for name in partitions]
    return {"collectionName": collection, "partitions": listed, **via}


def create_all(kube: Kube, namespace: str, specs: dict[str, dict[str, Any]]) -> None:
    with ThreadPoolExecutor(CREATE_WIDTH) as pool:
        list(pool.map(lambda item: kube.create(namespace, item[0], item[1]), specs.items()))


PAGE = 500  # a list of 10,000 in one request outran the API server's 60 s timeout (504) under a 4-shard burst
TRANSIENT = (429, 500, 503, 504)  # a busy API server; 504 also when its watch cache lags a continue token
PAGE_ATTEMPTS = 10


def listing(kube: Kube, namespace: str) -> list[dict[str, Any]]:
    """Every MilvusCollection of the namespace, a page at a time (limit and continue)."""
    return listing_at(kube, namespace)[0]


def listing_at(kube: Kube, namespace: str) -> tuple[list[dict[str, Any]], str]:
    """Every MilvusCollection of the namespace and the resourceVersion of that list (all pages share it)."""
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        page = _page(kube, namespace, token)
        items.extend(page["items"])
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token:
            return items, str((page.get("metadata") or {}).get("resourceVersion") or "")


def _page(kube: Kube, namespace: str, token: str) -> dict[str, Any]:
    """One page, asked again after the server's Retry-After while the API server says it is busy."""
    for attempt in range(1, PAGE_ATTEMPTS + 1):
        try:
            return cast(
                dict[str, Any],
                kube.custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, limit=PAGE, _continue=token or None, _request_timeout=120
                ),
            )
        except ApiException as exc:
            if exc.status not in TRANSIENT or attempt == PAGE_ATTEMPTS:
                raise
            time.sleep(float((exc.headers or {}).get("Retry-After") or 1))
    raise AssertionError("unreachable: the last attempt returns or raises")


def ready_condition(item: dict[str, Any]) -> dict[str, Any]:
    for condition in (item.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return dict(condition)
    return {}


def in_sync(item: dict[str, Any]) -> bool:
    """Ready=True for the current spec (the status was written after the last spec change)."""
    status = item.get("status") or {}
    generation = item["metadata"].get("generation")
    return ready_condition(item).get("status") == "True" and status.get("observedGeneration") == generation


def wait_collections_loaded(kube: Kube, namespace: str, timeout: float) -> float:
    """Seconds until no resource's `status.collection` says Loading any more.

    Milvus's answer for a whole collection can lag its partitions' (all Loaded, so Ready) by a minute
    under load; until it catches up each such resource has one real status change still to write.
    """
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    while True:
        items = listing(kube, namespace)
        loading = [
            i["metadata"]["name"]
            for i in items
            if (i.get("status") or {}).get("collection", {}).get("state") == "Loading"
        ]
        if not loading:
            return time.perf_counter() - started
        if time.monotonic() >= deadline:
            raise NotReadyError(
                f"{len(loading)} collections still Loading after {timeout:.0f}s: {', '.join(loading[:SHOWN])}"
            )
        time.sleep(poll_interval(len(items)))


def poll_interval(count: int) -> float:
    """Fine-grained for small runs; a list of 1,000 resources costs the API server ~0.1 s, so not too often,
    and at 10,000 (tens of MB a list, seconds to parse here) rarely, or the waiting would load the machine."""
    return 0.25 if count <= 200 else 0.5 if count <= 2000 else 5.0


def wait_ready(kube: Kube, namespace: str, names: Iterable[str], timeout: float) -> float:
    """Seconds until every named resource is in sync; on timeout, say which are not and why.

    One list, then a watch from its resourceVersion (listed again if the watch expires, 410 Gone).
    """
    wanted = set(names)
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    items: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        listed, version = listing_at(kube, namespace)
        items = {item["metadata"]["name"]: item for item in listed if item["metadata"]["name"] in wanted}
        pending = {name for name in wanted if name not in items or not in_sync(items[name])}
        if not pending:
            return time.perf_counter() - started
        if _watch_until_in_sync(kube, namespace, version, items, pending, deadline):
            return time.perf_counter() - started
    left = [items.get(name) or {"metadata": {"name": name}} for name in sorted(wanted) if not _synced(items, name)]
    raise NotReadyError(f"{len(left)} of {len(wanted)} not Ready after {timeout:.0f}s: {_reasons(left)}")


def _watch_until_in_sync(
    kube: Kube, namespace: str, version: str, items: dict[str, dict[str, Any]], pending: set[str], deadline: float
) -> bool:
    """Follow changes from `version`, keeping `items` and `pending` current; False when the watch ended first."""
    stream = watch.Watch()  # type: ignore[no-untyped-call]
    try:
        for event in stream.stream(  # type: ignore[no-untyped-call]
            kube.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            resource_version=version,
            timeout_seconds=max(1, int(deadline - time.monotonic())),
            _request_timeout=max(2.0, deadline - time.monotonic() + 5),
        ):
            item = event["object"]
            if event["type"] == "ERROR":
                return False  # expired (410): list again
            name = item["metadata"]["name"]
            if name not in items and name not in pending:
                continue  # not one of ours
            if event["type"] == "DELETED":
                items.pop(name, None)
                pending.add(name)
            else:
                items[name] = item
                if in_sync(item):
                    pending.discard(name)
                else:
                    pending.add(name)
            if not pending:
                return True
        return False
    except ApiException as exc:
        if exc.status in (410, *TRANSIENT):
            return False
        raise
    finally:
        stream.stop()  # type: ignore[no-untyped-call]


def _synced(items: dict[str, dict[str, Any]], name: str) -> bool:
    return name in items and in_sync(items[name])


def _reasons(items: list[dict[str, Any]]) -> str:
    shown = []
    for item in items[:SHOWN]:
        ready = ready_condition(item)
        reason = ready.get("reason") or "no status yet"
        shown.append(f"{item['metadata']['name']} ({reason}: {ready.get('message', '')})")
    more = f"; and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return "; ".join(shown) + more


def delete_all(kube: Kube, namespace: str, timeout: float) -> None:
    """Delete every MilvusCollection of the namespace and wait until the operator let them go."""
    names = [item["metadata"]["name"] for item in listing(kube, namespace)]
    with ThreadPoolExecutor(CREATE_WIDTH) as pool:
        list(pool.map(lambda name: _delete(kube, namespace, name), names))
    deadline = time.monotonic() + timeout
    left = names
    while time.monotonic() < deadline:
        left = [item["metadata"]["name"] for item in listing(kube, namespace)]
        if not left:
            return
        time.sleep(poll_interval(len(left)))
    raise NotReadyError(f"{len(left)} MilvusCollections still present {timeout:.0f}s after delete: {left[:SHOWN]}")


def _delete(kube: Kube, namespace: str, name: str) -> None:
    try:
        kube.delete(namespace, name)
    except ApiException as exc:
        if exc.status != 404:
            raise


def total_partitions(items: list[dict[str, Any]]) -> int:
    return sum(int((item.get("status") or {}).get("totalPartitions") or 0) for item in items)
