"""Resolve a resource's connection to an Endpoint: its MilvusConnection, Secret and CA file, read through the API.

One read in flight per connection, re-read once per resync interval; the endpoint last resolved is kept
for finalizers until the connection itself is deleted.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from milvusops.core.endpoint import Endpoint
from milvusops.core.failures import Failure, FailureError, Reason
from milvusops.core.model import ConnectionSpec, connection_key
from milvusops.kube.api import KubeApi
from milvusops.runtime.settings import Settings

log = logging.getLogger("milvusops")

# a prune or a namespace deletion may remove these before the collections whose release needs them
GONE = frozenset({Reason.SECRET_NOT_FOUND, Reason.CONNECTION_NOT_FOUND})


class Endpoints:
    """Each connection's endpoint, from the operator's settings (the default connection) or the cluster."""

    def __init__(
        self,
        settings: Settings,
        kube: KubeApi | None,
        tls_dir: Path,
        given: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
    ) -> None:
        """`kube` None: no cluster (`milvusops plan` of files), so only the default connection can be resolved.

        `given`: MilvusConnections by (namespace, name) read from elsewhere (`plan`'s input), used instead of
        the cluster's; their Secrets still come from the cluster."""
        self._settings = settings
        self._kube = kube
        self._given = dict(given or {})
        self._tls_dir = tls_dir
        self._resolved: dict[str, tuple[float, Endpoint]] = {}
        self._last: dict[str, Endpoint] = {}  # last endpoint resolved per connection, kept until it is deleted
        self._resolving: dict[str, asyncio.Task[tuple[Endpoint, bool]]] = {}  # the read in flight per connection

    async def endpoint(self, namespace: str, connection: str | None, last_known: bool = False) -> Endpoint:
        """`last_known`: if the connection or its Secret is gone, the endpoint last resolved for it (finalizers)."""
        key = connection_key(namespace, connection)
        if not connection:
            return Endpoint(
                uri=self._settings.default_uri,
                token=self._settings.default_token.get_secret_value(),
                timeout=self._settings.default_timeout_seconds,
            )
        cached = self._resolved.get(key)
        # connections and Secrets are re-read once per resync interval, not on every reconcile
        if cached is not None and time.monotonic() - cached[0] < self._settings.resync_seconds:
            return cached[1]
        try:
            endpoint, fresh = await asyncio.shield(self._resolving_task(key, namespace, connection))
        except FailureError as exc:
            kept = self._last.get(key)
            if not last_known or kept is None or exc.failure.reason not in GONE:
                raise
            log.info("%s: using the settings last read for MilvusConnection %s", exc.failure.message, key)
            return kept
        # a read that a change (forget) made stale while under way: read again
        return endpoint if fresh else await self.endpoint(namespace, connection, last_known)

    def _resolving_task(self, key: str, namespace: str, connection: str) -> asyncio.Task[tuple[Endpoint, bool]]:
        """The read in flight for this connection, started if there is none: concurrent resolves share it."""
        task = self._resolving.get(key)
        if task is None:
            task = self._resolving[key] = asyncio.ensure_future(self._read(key, namespace, connection))
            task.add_done_callback(lambda done: done.cancelled() or done.exception())  # seen even if none waits
        return task

    async def _read(self, key: str, namespace: str, connection: str) -> tuple[Endpoint, bool]:
        """The endpoint, and whether it was kept: no change made the read stale while it was under way."""
        try:
            endpoint = await self._resolve(namespace, connection)
        finally:
            current = self._resolving.get(key) is asyncio.current_task()
            if current:
                del self._resolving[key]
        if current:
            self._resolved[key] = (time.monotonic(), endpoint)
            self._last[key] = endpoint
        return endpoint, current

    def forget(self, namespace: str, connection: str) -> None:
        """Drop what is cached for a connection (it changed), keeping its last endpoint for deletions."""
        key = connection_key(namespace, connection)
        self._resolved.pop(key, None)
        self._resolving.pop(key, None)  # the next resolve reads afresh

    def discard(self, namespace: str, connection: str) -> None:
        """The connection is gone: its last endpoint goes with it."""
        self.forget(namespace, connection)
        self._last.pop(connection_key(namespace, connection), None)

    async def _resolve(self, namespace: str, name: str) -> Endpoint:
        body = self._given.get((namespace, name))
        if self._kube is None and (body is None or _needs_secrets(body)):
            what = f"MilvusConnection {namespace}/{name}" if body is None else f"the Secrets of {namespace}/{name}"
            message = f"no Kubernetes cluster to read {what} from"
            reason = Reason.CONNECTION_NOT_FOUND if body is None else Reason.SECRET_NOT_FOUND
            raise FailureError(Failure(reason, message))
        if body is None:
            assert self._kube is not None
            body = await self._kube.read_connection(namespace, name)
        spec = ConnectionSpec.from_body(body)
        token = ""
        if spec.credentials_secret_ref is not None:
            assert self._kube is not None
            ref = spec.credentials_secret_ref
            token = await self._kube.read_secret_value(namespace, ref.name, ref.key)
        ca_path, server_name = "", ""
        if spec.tls is not None:
            server_name = spec.tls.server_name or ""
            if spec.tls.ca_secret_ref is not None:
                assert self._kube is not None
                ref = spec.tls.ca_secret_ref
                ca_path = self._write_ca(await self._kube.read_secret_value(namespace, ref.name, ref.key))
        return Endpoint(spec.uri, token, spec.timeout_seconds, ca_path, server_name)

    def _write_ca(self, pem: str) -> str:
        self._tls_dir.mkdir(parents=True, exist_ok=True)
        path = self._tls_dir / f"ca-{hashlib.sha256(pem.encode()).hexdigest()[:16]}.pem"
        if not path.exists():
            path.write_text(pem + "\n")
        return str(path)


def _needs_secrets(body: Mapping[str, Any]) -> bool:
    spec = body.get("spec") or {}
    return bool(spec.get("credentialsSecretRef") or (spec.get("tls") or {}).get("caSecretRef"))
