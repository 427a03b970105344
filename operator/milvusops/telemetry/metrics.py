"""Prometheus metrics of SPEC §4; labels never carry secrets or URIs."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter("milvusops_reconciles_total", "Reconciles of MilvusCollections by result", ["result"])
RECONCILE_SECONDS = Histogram("milvusops_reconcile_duration_seconds", "Duration of one reconcile")
MILVUS_CALL_SECONDS = Histogram(
    "milvusops_milvus_call_duration_seconds", "Duration of Milvus calls", ["method", "outcome"]
)
SLOT_WAIT_SECONDS = Histogram(
    "milvusops_milvus_call_slot_wait_seconds",
    "Time a Milvus call waited for one of its connection's call slots before it was sent",
    ["method"],
    buckets=(0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, float("inf")),  # a burst's waits last minutes
)
RESOURCES_BY_REASON = Gauge("milvusops_resources", "MilvusCollections by Ready status and reason", ["ready", "reason"])
DRIFT_CORRECTIONS = Counter("milvusops_drift_corrections_total", "Out-of-band changes reverted")
# what resolving MilvusConnections costs the API server: one GET per connection read, one per Secret read
KUBE_READS = Counter("milvusops_kube_reads_total", "MilvusConnection and Secret GETs to resolve connections", ["kind"])
LOAD_RELEASE_CALLS = Counter("milvusops_load_release_calls_total", "load/release calls made to Milvus", ["method"])


def observe_slot_wait(method: str, seconds: float) -> None:
    SLOT_WAIT_SECONDS.labels(method).observe(seconds)


def observe_milvus_call(method: str, outcome: str, seconds: float) -> None:
    MILVUS_CALL_SECONDS.labels(method, outcome).observe(seconds)
    if method.startswith(("load_", "release_")) and outcome == "ok":
        LOAD_RELEASE_CALLS.labels(method).inc()


class ReadyTally:
    """Keeps the per-resource (ready, reason) so the gauge counts each resource once.

    A (ready, reason) no resource has any more is removed, not left at 0: a replica paused by a peer
    exports no series for resources it no longer serves.
    """

    def __init__(self) -> None:
        self._by_uid: dict[str, tuple[str, str]] = {}
        self._counts: dict[tuple[str, str], int] = {}

    def set(self, uid: str, ready: str, reason: str) -> None:
        previous = self._by_uid.get(uid)
        if previous == (ready, reason):
            return
        if previous is not None:
            self._leave(previous)
        self._by_uid[uid] = (ready, reason)
        self._counts[ready, reason] = self._counts.get((ready, reason), 0) + 1
        RESOURCES_BY_REASON.labels(ready, reason).set(self._counts[ready, reason])

    def forget(self, uid: str) -> None:
        previous = self._by_uid.pop(uid, None)
        if previous is not None:
            self._leave(previous)

    def _leave(self, labels: tuple[str, str]) -> None:
        left = self._counts.get(labels, 0) - 1
        if left > 0:
            self._counts[labels] = left
            RESOURCES_BY_REASON.labels(*labels).set(left)
        else:
            self._counts.pop(labels, None)
            RESOURCES_BY_REASON.remove(*labels)


READY_TALLY = ReadyTally()
