"""One pooled client and set of call slots per Milvus connection, on one shared thread budget.

The pool takes resolved endpoints and knows nothing of Kubernetes: resolving a MilvusConnection and its
Secret is a step of its own (`runtime/endpoints.py`), and `runtime/connections.py` puts the two together.
"""

from __future__ import annotations

import _thread
import collections
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from milvusops.core.endpoint import Endpoint
from milvusops.milvus.call_slots import Slots
from milvusops.milvus.port import MilvusClientPort

T = TypeVar("T")

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
    closed.
    """

    def __init__(
        self,
        max_concurrent_calls: int,
        max_queued_calls: int | None,
        linger: float = THREAD_LINGER_SECONDS,
        replicas_settle: float = 120.0,
    ) -> None:
        self._max_concurrent_calls = max_concurrent_calls
        self._max_queued_calls = max_queued_calls
        self._settle = replicas_settle
        self._pooled: dict[str, _Pooled] = {}
        size = max_concurrent_calls * THREAD_BUDGET_CONNECTIONS
        self._executor = ElasticExecutor(size, linger)

    def port(self, key: str, endpoint: Endpoint, database: str) -> MilvusClientPort:
        """The client of connection `key` for `database`, made anew when the endpoint changed."""
        pooled = self._pooled.get(key)  # no await in here: no other task changes the pool meanwhile
        if pooled is None:
            slots = Slots(self._max_concurrent_calls, queued=self._max_queued_calls)
            pooled = self._pooled[key] = _Pooled(endpoint, slots)
        elif pooled.endpoint.fingerprint() != endpoint.fingerprint():
            pooled = self._pooled[key] = self._replace(pooled, endpoint)  # the connection or its Secret changed
        port = pooled.ports.get(database)
        if port is None:
            port = pooled.ports[database] = MilvusClientPort(
                endpoint, database, self._executor, pooled.slots, self._settle
            )
        return port

    def _replace(self, old: _Pooled, endpoint: Endpoint) -> _Pooled:
        """New clients for the new settings; calls in flight finish on the old ones, calls queued go to the new."""
        new = _Pooled(endpoint, old.slots)  # the same slots: the connection's limit holds across the change
        for database, port in old.ports.items():
            successor = new.ports[database] = MilvusClientPort(
                endpoint, database, self._executor, old.slots, self._settle
            )
            port.close(successor)
        return new

    def discard(self, key: str) -> None:
        """The connection is gone: its clients close once their calls in flight are done."""
        pooled = self._pooled.pop(key, None)
        for port in pooled.ports.values() if pooled is not None else ():
            port.close()  # closed on the executor once its calls in flight are done

    def close(self) -> None:
        for pooled in self._pooled.values():
            for port in pooled.ports.values():
                port.close()  # each port closes its client once its calls in flight are done
        self._pooled.clear()
        # no cancel_futures: a cancelled call would raise CancelledError into the task that made it
        self._executor.shutdown(wait=False)
