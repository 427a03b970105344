"""The per-MilvusCollection loop: reconcile, write status, post events, sleep until due or woken."""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Mapping, MutableSet
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import kopf

from milvusops import COLLECTIONS
from milvusops.core.conflicts import conflict_winner, rivals, server_conflict
from milvusops.core.failures import Failure, FailureError, Reason
from milvusops.core.model import CollectionSpec, DeletionPolicy, ManagementPolicy, ResourceRef, connection_key
from milvusops.core.observed import Observed
from milvusops.core.pass_state import FIRST_PASS, Mode, Pass, PassState, Timing, next_pass, steady, this_pass
from milvusops.core.schedule import WindowState, wake_in
from milvusops.kube.api import KubeApi
from milvusops.runtime.capacity_guard import MemoryGuard
from milvusops.runtime.connections import Connections
from milvusops.runtime.deletion import pending_message, release_held, release_retry_delay
from milvusops.runtime.events import DRIFT_CORRECTED
from milvusops.runtime.reconcile import Result, reconcile
from milvusops.runtime.settings import Settings, memory_guard
from milvusops.runtime.worker import Worker
from milvusops.telemetry import metrics

log = logging.getLogger("milvusops")
STOPPED_SERVING = "no longer served here: deleted, or its labels no longer match this shard's label selector"


class Census:
    """How many resources each connection serves in this process: they share its call budget."""

    def __init__(self) -> None:
        self._where: dict[str, str] = {}  # resource uid -> connection key
        self._counts: Counter[str] = Counter()

    def place(self, uid: str, connection: str) -> int:
        """Count `uid` under `connection` (once, wherever it was before); how many that connection serves."""
        self.leave(uid)
        self._where[uid] = connection
        self._counts[connection] += 1
        return self._counts[connection]

    def leave(self, uid: str) -> None:
        before = self._where.pop(uid, None)
        if before is not None:
            self._counts[before] -= 1
            if not self._counts[before]:
                del self._counts[before]


class CollectionWorker(Worker):
    plural = COLLECTIONS
    census = Census()  # one per process, like the pool the workers share

    def __init__(self, settings: Settings, kube: KubeApi, pool: Connections) -> None:
        super().__init__(settings, kube)
        self.pool = pool
        self.timing = Timing(
            settings.resync_seconds,
            settings.loading_recheck_seconds,
            full_observation_seconds=settings.full_observation_seconds,
            calls_per_second=settings.steady_calls_per_second,
        )
        # replaced by the operator-wide one (handlers), which orders the loads waiting for each server's memory
        self.memory = MemoryGuard(memory_guard(settings))
        self.connection: tuple[str, str | None] = ("", None)  # (namespace, connectionRef name)
        self.failing = False  # its last pass failed: a connection that is Ready again wakes it

    def notice(self, body: kopf.Body) -> None:
        self.connection = (body["metadata"]["namespace"], (body.get("spec") or {}).get("connectionRef", {}).get("name"))
        super().notice(body)

    def uses_connection(self, namespace: str, name: str) -> bool:
        return self.connection == (namespace, name)

    def retire(self, body: kopf.Body) -> None:
        metrics.READY_TALLY.forget(body["metadata"]["uid"])
        self.memory.forget(body["metadata"]["uid"])  # a deleted resource's waiting load must not hold others back
        super().retire(body)

    async def run(self, body: kopf.Body, owners: kopf.Index[Any, Any], stopped: kopf.DaemonStopped) -> None:
        self.reset()
        try:
            if await self.admitted(body, stopped):
                await self._loop(body, owners, stopped)
        finally:
            self.census.leave(body["metadata"]["uid"])
            self.unwatch()
            # a stopped daemon (peering pause, shutdown, deletion) no longer speaks for its resource
            metrics.READY_TALLY.forget(body["metadata"]["uid"])
            if self.gone:  # a relabelled resource is DELETED for its old shard's watch, though it still exists
                log.info("%s", STOPPED_SERVING, extra=where(body))

    async def _loop(self, body: kopf.Body, owners: kopf.Index[Any, Any], stopped: kopf.DaemonStopped) -> None:
        state, this = PassState(), FIRST_PASS  # the first pass goes before timer passes
        window: WindowState | None = None
        while self.running(stopped):
            failure: Failure | None
            try:
                # unbound: a sleeping loop holds only what `carried` keeps, not the pass's status and events
                observed, acted, failure, settled, started, window = carried(
                    await self.sync(body, owners, this, window)
                )
            except FailureError as exc:  # the API server refused the status patch: nothing to write it with
                log.warning("%s", exc.failure.message, extra=where(body))
                metrics.RECONCILES.labels("progressing").inc()
                observed, acted, failure, settled, started, window = None, False, exc.failure, False, None, None
            except Exception as exc:
                # a bug must not end the loop: log it and back off like any failure
                log.exception("reconcile of %s/%s failed", body["metadata"]["namespace"], body["metadata"]["name"])
                metrics.RECONCILES.labels("exception").inc()
                observed, acted, failure = None, False, Failure(Reason.MILVUS_ERROR, f"{type(exc).__name__}: {exc}")
                settled, started, window = False, None, None
            self.failing = failure is not None
            step = next_pass(
                state,
                observed=observed,
                acted=acted,
                failure=failure,
                timing=self.timing,
                draw=random.random(),  # noqa: S311 - jitter
                now=time.monotonic(),
                expected=self.pool.expected_load(*self.connection),
                settled=settled,
                started=started,
                resources=self.census.place(body["metadata"]["uid"], connection_key(*self.connection)),
            )
            if step.loaded_in is not None:
                self.pool.record_load(*self.connection, step.loaded_in)
            state = step.state
            if log.isEnabledFor(logging.DEBUG):  # the pass schedule: when a load's end was looked for, and why
                log.debug("%s", schedule_line(this.mode, step.mode, step.delay, failure, acted), extra=where(body))
            # a window that opens or closes before the next pass is due wakes the loop just after it
            delay = wake_in(honour_retry_after(step.delay, failure), window, datetime.now(UTC))
            woken = await self.sleep(delay, stopped)
            if woken and log.isEnabledFor(logging.DEBUG):
                log.debug("woken early by a change of the resource: the next pass is a full one", extra=where(body))
            this = this_pass(step.mode, state.observed, woken=woken, settled=settled)

    async def sync(
        self, body: kopf.Body, owners: Mapping[Any, Any], this: Pass = FIRST_PASS, window: WindowState | None = None
    ) -> Result:
        async with self.lock:
            started = time.perf_counter()
            ref = ResourceRef.from_body(body)
            spec = CollectionSpec.from_body(body)
            result = await reconcile(
                spec,
                ref,
                self.previous_status(body),
                self.pool,
                datetime.now(UTC),
                this,
                conflict_with=conflict_winner(body, owners) or await server_conflict(body, owners, self.pool),
                memory=self.memory,
                window=window,
            )
            full = result.observed is not None and not result.observed.partial
            await self.write_status(body, result.status, observed_in_full=full)
            self.post(body, [(e.type, e.reason, e.message) for e in result.events])
            elapsed = time.perf_counter() - started
            for event in result.events:
                if event.reason == DRIFT_CORRECTED:  # counted where the event is sent: deriving it stays pure
                    metrics.DRIFT_CORRECTIONS.inc()
                fields = {
                    "resource": f"{ref.namespace}/{ref.name}",
                    "collection": spec.collection_name,
                    "action": event.reason,
                    "outcome": "error" if event.type == "Warning" else "ok",
                    "duration": round(elapsed, 3),
                }
                if event.partitions:
                    fields["partition"] = ",".join(event.partitions)
                level = logging.WARNING if event.type == "Warning" else logging.INFO
                log.log(level, "%s", event.message, extra=fields)
            outcome = "ready" if result.verdict.ready else "stalled" if result.verdict.stalled else "progressing"
            metrics.RECONCILES.labels(outcome).inc()
            metrics.RECONCILE_SECONDS.observe(elapsed)
            metrics.READY_TALLY.set(ref.uid, str(result.verdict.ready), result.verdict.reason.value)
            return result


def honour_retry_after(delay: float, failure: Failure | None) -> float:
    """The API server's Retry-After, when it asked for longer than the backoff."""
    return max(delay, failure.retry_after or 0.0) if failure is not None else delay


def schedule_line(mode: Mode, following: Mode, delay: float, failure: Failure | None, acted: bool) -> str:
    outcome = f"failed ({failure.reason})" if failure is not None else "acted" if acted else "done"
    return f"{mode} pass {outcome}; next: a {following} pass in {delay:.2f}s"


def where(body: kopf.Body) -> dict[str, str]:
    return {"resource": f"{body['metadata']['namespace']}/{body['metadata']['name']}"}


def carried(
    result: Result,
) -> tuple[Observed | None, bool, Failure | None, bool, Observed | None, WindowState | None]:
    """What the next pass needs of a pass (settled: in sync or observing, nothing done); not its status and
    events, which each sleeping loop would hold."""
    settled = steady(result.verdict.reason, result.failure, result.acted)
    return _lean(result.observed), result.acted, result.failure, settled, _lean(result.started), result.schedule


def _lean(observed: Observed | None) -> Observed | None:
    """Without the schema: only the pass that described the collection estimates from it."""
    return replace(observed, fields=()) if observed is not None and observed.fields else observed


async def finalize_collection(
    body: kopf.Body,
    worker: CollectionWorker,
    owners: Mapping[Any, Any],
    runtime_seconds: float,
    reported: MutableSet[str],
    retry: int = 0,
) -> None:
    """deletionPolicy Release: release what this resource kept loaded; never wedge the namespace."""
    ref = ResourceRef.from_body(body)
    spec = CollectionSpec.from_body(body)
    skip = (
        spec.deletion_policy == DeletionPolicy.RETAIN
        or spec.management_policy == ManagementPolicy.OBSERVE
        or ref.paused
        or conflict_winner(body, owners) is not None
    )
    if skip:
        return
    async with worker.lock:
        try:
            done = await _release_on_deletion(body, owners, worker)
        except FailureError as exc:
            failure = exc.failure
            timeout = worker.settings.deletion_timeout_seconds
            delay = release_retry_delay(failure, runtime_seconds, timeout, retry)
            if delay is not None:
                if failure.reason not in reported:  # one Warning per cause, not one per retry
                    reported.add(failure.reason)
                    kopf.event(body, type="Warning", reason="ReleasePending", message=pending_message(failure, timeout))
                raise kopf.TemporaryError(failure.message, delay=delay) from exc
            message = f"finalizer removed without releasing: {failure.message}"
            kopf.event(body, type="Warning", reason="ReleaseSkipped", message=message)
            log.warning("%s", message, extra={"resource": f"{ref.namespace}/{ref.name}"})
            return
    for line in done:
        kopf.event(body, type="Normal", reason="Released", message=line)
        log.info("%s", line, extra={"resource": f"{ref.namespace}/{ref.name}", "collection": spec.collection_name})


async def _losers(body: kopf.Body, owners: Mapping[Any, Any], kube: KubeApi) -> tuple[CollectionSpec, ...]:
    """The specs of the live resources this winner kept from acting: they take over what they declare."""
    specs = []
    for _, namespace, name in rivals(body, owners):
        other = await kube.read_collection(namespace, name)
        if other is not None and not other["metadata"].get("deletionTimestamp"):
            specs.append(CollectionSpec.from_body(other))
    return tuple(specs)


async def _release_on_deletion(body: kopf.Body, owners: Mapping[Any, Any], worker: CollectionWorker) -> list[str]:
    """An unexpected exception counts against the deletion timeout like an unclassified Milvus error."""
    ref, spec = ResourceRef.from_body(body), CollectionSpec.from_body(body)
    try:
        if await server_conflict(body, owners, worker.pool) is not None:
            return []  # lost to an older resource through another MilvusConnection to the same server
        return await release_held(spec, ref, worker.pool.for_deletion(), await _losers(body, owners, worker.kube))
    except FailureError:
        raise
    except Exception as exc:
        log.exception("release on deletion of %s/%s failed", ref.namespace, ref.name)
        raise FailureError(Failure(Reason.MILVUS_ERROR, f"{type(exc).__name__}: {exc}")) from exc
