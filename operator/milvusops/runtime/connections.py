"""A resource's connection end to end: resolved to an Endpoint (`endpoints.py`), then a pooled client
(`client_pool.py`); and how long loads on it took lately."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from milvusops.core.endpoint import Endpoint
from milvusops.core.loadtimes import Expected, LoadTimes
from milvusops.core.model import connection_key
from milvusops.kube.api import KubeApi
from milvusops.milvus.port import MilvusClientPort
from milvusops.runtime.client_pool import ClientPool
from milvusops.runtime.endpoints import Endpoints
from milvusops.runtime.settings import Settings


class Connections:
    """What the workers ask of a connection: a port to its Milvus, its endpoint, its recent load times."""

    def __init__(
        self,
        settings: Settings,
        kube: KubeApi | None,
        tls_dir: Path,
        given: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
    ) -> None:
        """`kube` None: no cluster (`milvusops plan` of files), so only the default connection can be resolved;
        `given`: MilvusConnections read from `plan`'s input instead of the cluster (`Endpoints`)."""
        self._endpoints = Endpoints(settings, kube, tls_dir, given)
        self._clients = ClientPool(
            settings.max_concurrent_calls,
            settings.max_queued_calls,
            settings.call_thread_linger_seconds,
            settings.replicas_settle_seconds,
        )
        self._load_times: dict[str, LoadTimes] = {}  # how long loads took lately, per connection

    def expected_load(self, namespace: str, connection: str | None) -> Expected | None:
        """How long loads on this connection took lately (median and longest of the last few); None before one."""
        times = self._load_times.get(connection_key(namespace, connection))
        return times.expected() if times is not None else None

    def record_load(self, namespace: str, connection: str | None, seconds: float) -> None:
        key = connection_key(namespace, connection)
        self._load_times[key] = self._load_times.get(key, LoadTimes()).record(seconds)

    def for_deletion(self) -> LastKnownPorts:
        return LastKnownPorts(self)

    async def port(
        self, namespace: str, connection: str | None, database: str, last_known: bool = False
    ) -> MilvusClientPort:
        endpoint = await self._endpoints.endpoint(namespace, connection, last_known)
        return self._clients.port(connection_key(namespace, connection), endpoint, database)

    async def endpoint(self, namespace: str, connection: str | None, last_known: bool = False) -> Endpoint:
        """`last_known`: if the connection or its Secret is gone, the endpoint last resolved for it (finalizers)."""
        return await self._endpoints.endpoint(namespace, connection, last_known)

    def forget(self, namespace: str, connection: str) -> None:
        """Drop what is cached for a connection (it changed), keeping its last endpoint for deletions."""
        self._endpoints.forget(namespace, connection)

    def discard(self, namespace: str, connection: str) -> None:
        """The connection is gone, and its finalizer waited for every collection that could need it."""
        self._endpoints.discard(namespace, connection)
        key = connection_key(namespace, connection)
        self._load_times.pop(key, None)
        self._clients.discard(key)

    def close(self) -> None:
        self._clients.close()


class LastKnownPorts:
    """Ports for finalizers: a connection or Secret deleted before its collections still serves their release."""

    def __init__(self, pool: Connections) -> None:
        self._pool = pool

    async def port(self, namespace: str, connection: str | None, database: str) -> MilvusClientPort:
        return await self._pool.port(namespace, connection, database, last_known=True)
