"""The per-MilvusAlias loop (reconcile, write status, post events, sleep until due or woken) and its finalizer."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Mapping, MutableSet
from datetime import UTC, datetime
from typing import Any, ClassVar

import kopf

from milvusops import ALIASES
from milvusops.core.alias_model import AliasDeletionPolicy, AliasSpec, CollectionView, alias_winner
from milvusops.core.failures import FailureError, Reason
from milvusops.core.model import ResourceRef
from milvusops.core.pass_state import Timing, backoff
from milvusops.kube.api import KubeApi
from milvusops.milvus.aliases import MilvusAliases
from milvusops.runtime.alias_reconcile import AliasResult, reconcile_alias
from milvusops.runtime.connections import Connections
from milvusops.runtime.deletion import release_retry_delay
from milvusops.runtime.settings import Settings
from milvusops.runtime.worker import Worker

log = logging.getLogger("milvusops")
Index = Mapping[Any, Iterable[Any]]


class AliasWorker(Worker):
    plural = ALIASES
    # (namespace, MilvusCollection name) -> the aliases targeting it: one look-up per collection event, not a scan
    by_target: ClassVar[dict[tuple[str, str], set[AliasWorker]]] = {}  # one per process, like the pool

    def __init__(self, settings: Settings, kube: KubeApi, pool: Connections) -> None:
        super().__init__(settings, kube)
        self.pool = pool
        self.target: tuple[str, str] | None = None  # (namespace, MilvusCollection name) of a collectionRef
        self.target_seen: CollectionView | None = None  # as last handed to a pass: a change wakes the alias
        self.failures = 0  # passes failed in a row, for the backoff
        self.timing = Timing(settings.resync_seconds, settings.loading_recheck_seconds)

    def notice(self, body: kopf.Body) -> None:
        ref = AliasSpec.from_body(body).target_ref
        self._follow((body["metadata"]["namespace"], ref) if ref else None)
        super().notice(body)

    def retire(self, body: kopf.Body) -> None:
        self._follow(None)
        super().retire(body)

    def _follow(self, target: tuple[str, str] | None) -> None:
        if self.target is not None:
            followers = self.by_target.get(self.target, set())
            followers.discard(self)
            if not followers:
                self.by_target.pop(self.target, None)
        self.target = target
        if target is not None:
            self.by_target.setdefault(target, set()).add(self)

    @classmethod
    def wake_followers(cls, body: kopf.Body) -> None:
        """Called for every MilvusCollection event: the view is built only for a collection some alias follows."""
        followers = cls.by_target.get((body["metadata"]["namespace"], body["metadata"]["name"]))
        if followers:
            view = CollectionView.of(body)
            for worker in list(followers):
                worker.target_changed(view)

    def target_changed(self, view: CollectionView | None) -> None:
        """Its MilvusCollection changed: a pass now, not at the next resync, if what the alias reads of it did."""
        if view != self.target_seen:
            self.target_seen = view
            self.wakeup.set()

    async def run(self, body: kopf.Body, owners: Index, views: Index, stopped: kopf.DaemonStopped) -> None:
        self.reset()
        try:
            if not await self.admitted(body, stopped):
                return
            while self.running(stopped):
                delay = await self._pass(body, owners, views)
                await self.sleep(delay, stopped)
        finally:
            self.unwatch()

    async def _pass(self, body: kopf.Body, owners: Index, views: Index) -> float:
        settings = self.settings
        try:
            result = await self.sync(body, owners, views)
        except FailureError as exc:  # the API server refused the status patch
            log.warning("%s", exc.failure.message, extra=_where(body))
            return self._retry()
        except Exception:
            # a bug must not end the loop: log it and back off like any failure
            log.exception("alias pass of %s failed", _where(body)["resource"])
            return self._retry()
        verdict = result.verdict
        if not verdict.reconciling or verdict.reason == Reason.TARGET_NOT_READY:
            self.failures = 0  # waiting for a target is no failure
        if result.recheck_in is not None:
            return min(settings.resync_seconds, max(result.recheck_in, 0.1))
        if verdict.reason == Reason.TARGET_NOT_READY:
            # a MilvusCollection target wakes the alias itself; a bare collection is looked at again soon
            return settings.resync_seconds if self.target is not None else settings.loading_recheck_seconds
        return self._retry() if verdict.reconciling else settings.resync_seconds

    def _retry(self) -> float:
        """Jittered backoff from loading_recheck up to the resync interval, as the collections' loop."""
        self.failures += 1
        return backoff(self.failures, self.timing, random.random())  # noqa: S311 - jitter

    async def sync(self, body: kopf.Body, owners: Index, views: Index) -> AliasResult:
        async with self.lock:
            spec, ref = AliasSpec.from_body(body), ResourceRef.from_body(body)
            lookup = _lookup(views)
            if self.target is not None:
                self.target_seen = lookup(*self.target)
            result = await reconcile_alias(
                spec,
                ref,
                self.previous_status(body),
                self.pool,
                lookup,
                lambda: _every(views),
                datetime.now(UTC),
                conflict_with=alias_winner(body, owners),
            )
            await self.write_status(body, result.status, observed_in_full=result.observed)
            self.post(body, list(result.events))
            for kind, reason, message in result.events:
                level = logging.WARNING if kind == "Warning" else logging.INFO
                log.log(level, "%s", message, extra={**_where(body), "action": reason, "alias": spec.alias})
            return result


def _lookup(views: Index) -> Callable[[str, str], CollectionView | None]:
    def lookup(namespace: str, name: str) -> CollectionView | None:
        found = list(views.get((namespace, name), ()))
        return found[0] if found else None

    return lookup


def _every(views: Index) -> list[CollectionView]:
    return [view for store in views.values() for view in store]


def _where(body: kopf.Body) -> dict[str, str]:
    return {"resource": f"{body['metadata']['namespace']}/{body['metadata']['name']}"}


async def finalize_alias(
    body: kopf.Body, worker: AliasWorker, owners: Index, runtime_seconds: float, reported: MutableSet[str], retry: int
) -> None:
    """deletionPolicy Drop: drop the alias (its collections stay); Retain leaves it. Never wedges the namespace."""
    spec, ref = AliasSpec.from_body(body), ResourceRef.from_body(body)
    if spec.deletion_policy != AliasDeletionPolicy.DROP or ref.paused or alias_winner(body, owners) is not None:
        return
    async with worker.lock:
        try:
            port = await worker.pool.port(ref.namespace, spec.connection_name, spec.database, last_known=True)
            await MilvusAliases(port).drop(spec.alias)
        except FailureError as exc:
            failure, timeout = exc.failure, worker.settings.deletion_timeout_seconds
            delay = release_retry_delay(failure, runtime_seconds, timeout, retry)
            if delay is not None:
                if failure.reason not in reported:  # one Warning per cause, not one per retry
                    reported.add(failure.reason)
                    message = (
                        f"cannot drop alias {spec.alias} yet: {failure.message}; retrying for up to {timeout:.0f} s"
                    )
                    kopf.event(body, type="Warning", reason="DropPending", message=message)
                raise kopf.TemporaryError(failure.message, delay=delay) from exc
            message = f"finalizer removed without dropping alias {spec.alias}: {failure.message}"
            kopf.event(body, type="Warning", reason="DropSkipped", message=message)
            log.warning("%s", message, extra=_where(body))
            return
    kopf.event(body, type="Normal", reason="AliasDropped", message=f"alias {spec.alias} dropped")
    log.info("alias %s dropped", spec.alias, extra=_where(body))
