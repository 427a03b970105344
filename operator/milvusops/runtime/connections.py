"""Resolve a resource's connection to an Endpoint, and keep one pooled client per connection."""

from __future__ import annotations

import _thread
import asyncio
import collections
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from milvusops.core.endpoint import Endpoint
from milvusops.core.failures import Failure, FailureError, Reason
from milvusops.core.loadtimes import Expected, LoadTimes
from milvusops.core.model import ConnectionSpec, connection_key
from milvusops.kube.api import KubeApi
from milvusops.milvus.call_slots import Slots
from milvusops.milvus.port import MilvusClientPort
from milvusops.runtime.settings import Settings

log = logging.getLogger("milvusops")
T = TypeVar("T")

# a prune or a namespace deletion may remove these before the collections whose release needs them
GONE = frozenset({Reason.SECRET_NOT_FOUND, Reason.CONNECTION_NOT_FOUND})


# threads for Milvus calls, shared by every connection: this many connections' worth of concurrent calls
THREAD_BUDGET_CONNECTIONS = 8
THREAD_LINGER_SECONDS = 30.0  # an idle thread ends after this: a burst's threads do not stay for good

_Work = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]  # future, fn, args, kwargs


class _Idle:
    """An idle thread's mailbox: the work handed to it, or None to end."""

    def __init__(self) -> None:
        self.handed = threading.Event()
        self.work: _Work | None = None


class ElasticExecutor(Executor):
    """Up to `size` threads, started as work arrives, each ending after `linger` seconds without work.

    ThreadPoolExecutor keeps every thread it ever started. Here work goes to the thread idle the
    shortest (a stack), so after a burst the threads that periodic work does not need stay idle and
    end. Threads are bare (`_thread`): a connect stuck for minutes never holds up the process's exit.
    """

    def __init__(self, size: int, linger: float) -> None:
        self._size, self._linger = size, linger
        self._lock = threading.Lock()
        self._idle: list[_Idle] = []
        self._backlog: collections.deque[_Work] = collections.deque()
        self._threads = 0
        self._stopped = False

    @property
    def threads(self) -> int:
        return self._threads

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        work: _Work = (future, fn, args, kwargs)
        with self._lock:
            if self._stopped:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if self._idle:
                idle = self._idle.pop()
                idle.work = work
                idle.handed.set()
            elif self._threads < self._size:
                self._threads += 1
                # not threading.Thread.start(), which waits on the event loop until the thread runs
                _thread.start_new_thread(self._work, (work,))
            else:
                self._backlog.append(work)
        return future

    def _work(self, first: _Work) -> None:
        work: _Work | None = first
        del first
        while work is not None:
            future, fn, args, kwargs = work
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:  # noqa: BLE001 -- the caller gets whatever fn raised
                    future.set_exception(exc)
            del work, future, fn, args, kwargs  # nothing of the last call kept while idle
            work = self._next()

    def _next(self) -> _Work | None:
        """The next item; None when this thread ends (idle too long, or shut down)."""
        with self._lock:
            if self._backlog:
                return self._backlog.popleft()
            if self._stopped:
                self._threads -= 1
                return None
            idle = _Idle()
            self._idle.append(idle)
        idle.handed.wait(self._linger)
        with self._lock:
            if not idle.handed.is_set():  # not handed anything in time: this thread ends
                self._idle.remove(idle)
            if idle.work is None:
                self._threads -= 1
            return idle.work

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Queued work still runs (no cancel_futures: a cancelled call would raise into its caller)."""
        with self._lock:
            self._stopped = True
            for idle in self._idle:
                idle.handed.set()  # with no work: the thread ends
            self._idle.clear()


@dataclass
class _Pooled:
    endpoint: Endpoint
    slots: Slots
    ports: dict[str, MilvusClientPort] = field(default_factory=dict)


class ClientPool:
    """One client per connection (and database), shared by every resource that uses it.

    Each connection has its own slots, sized by the concurrent-call limit, so a slow or unreachable
    Milvus only ever ties up as many threads as it has slots (one while it cannot be reached), and
    its backlog never delays a load elsewhere. The threads come from one executor for the whole
    operator, so they do not grow with the number of connections; a deleted connection's client is
    closed. Connections and Secrets are read with one read in flight per connection.
    """

    def __init__(self, settings: Settings, kube: KubeApi | None, tls_dir: Path) -> None:
        """`kube` None: no cluster (`milvusops plan` of files), so only the default connection can be resolved."""
        self._settings = settings
        self._kube = kube
        self._tls_dir = tls_dir
        self._pooled: dict[str, _Pooled] = {}
        self._resolved: dict[str, tuple[float, Endpoint]] = {}
        self._last: dict[str, Endpoint] = {}  # last endpoint resolved per connection, kept until it is deleted
        self._load_times: dict[str, LoadTimes] = {}  # how long loads took lately, per connection
        self._resolving: dict[str, asyncio.Task[tuple[Endpoint, bool]]] = {}  # the read in flight per connection
        size = settings.max_concurrent_calls * THREAD_BUDGET_CONNECTIONS
        self._executor = ElasticExecutor(size, THREAD_LINGER_SECONDS)

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
        key = connection_key(namespace, connection)
        endpoint = await self.endpoint(namespace, connection, last_known)
        pooled = self._pooled.get(key)  # no await from here on: no other task changes the pool meanwhile
        if pooled is None:
            slots = Slots(self._settings.max_concurrent_calls, queued=self._settings.max_queued_calls)
            pooled = self._pooled[key] = _Pooled(endpoint, slots)
        elif pooled.endpoint.fingerprint() != endpoint.fingerprint():
            pooled = self._pooled[key] = self._replace(pooled, endpoint)  # the connection or its Secret changed
        port = pooled.ports.get(database)
        if port is None:
            port = pooled.ports[database] = MilvusClientPort(endpoint, database, self._executor, pooled.slots)
        return port

    def _replace(self, old: _Pooled, endpoint: Endpoint) -> _Pooled:
        """New clients for the new settings; calls in flight finish on the old ones, calls queued go to the new."""
        new = _Pooled(endpoint, old.slots)  # the same slots: the connection's limit holds across the change
        for database, port in old.ports.items():
            successor = new.ports[database] = MilvusClientPort(endpoint, database, self._executor, old.slots)
            port.close(successor)
        return new

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
        """The connection is gone, and its finalizer waited for every collection that could need it."""
        key = connection_key(namespace, connection)
        self.forget(namespace, connection)
        self._last.pop(key, None)
        self._load_times.pop(key, None)
        pooled = self._pooled.pop(key, None)
        for port in pooled.ports.values() if pooled is not None else ():
            port.close()  # closed on the executor once its calls in flight are done

    async def _resolve(self, namespace: str, name: str) -> Endpoint:
        if self._kube is None:
            message = f"no Kubernetes cluster to read MilvusConnection {namespace}/{name} from"
            raise FailureError(Failure(Reason.CONNECTION_NOT_FOUND, message))
        spec = ConnectionSpec.from_body(await self._kube.read_connection(namespace, name))
        token = ""
        if spec.credentials_secret_ref is not None:
            ref = spec.credentials_secret_ref
            token = await self._kube.read_secret_value(namespace, ref.name, ref.key)
        ca_path, server_name = "", ""
        if spec.tls is not None:
            server_name = spec.tls.server_name or ""
            if spec.tls.ca_secret_ref is not None:
                ref = spec.tls.ca_secret_ref
                ca_path = self._write_ca(await self._kube.read_secret_value(namespace, ref.name, ref.key))
        return Endpoint(spec.uri, token, spec.timeout_seconds, ca_path, server_name)

    def _write_ca(self, pem: str) -> str:
        self._tls_dir.mkdir(parents=True, exist_ok=True)
        path = self._tls_dir / f"ca-{hashlib.sha256(pem.encode()).hexdigest()[:16]}.pem"
        if not path.exists():
            path.write_text(pem + "\n")
        return str(path)

    def close(self) -> None:
        for pooled in self._pooled.values():
            for port in pooled.ports.values():
                port.close()  # each port closes its client once its calls in flight are done
        self._pooled.clear()
        # no cancel_futures: a cancelled call would raise CancelledError into the task that made it
        self._executor.shutdown(wait=False)


class LastKnownPorts:
    """Ports for finalizers: a connection or Secret deleted before its collections still serves their release."""

    def __init__(self, pool: ClientPool) -> None:
        self._pool = pool

    async def port(self, namespace: str, connection: str | None, database: str) -> MilvusClientPort:
        return await self._pool.port(namespace, connection, database, last_known=True)
