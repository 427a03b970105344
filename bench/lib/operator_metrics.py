"""Readings of the operator's own Prometheus metrics (operator/milvusops/metrics.py)."""

from __future__ import annotations

from collections import Counter

from tests.e2e.helpers import OperatorProcess

from bench.lib.scrape import by_label, samples

CALLS = "milvusops_milvus_call_duration_seconds_count"  # every Milvus call, by method and outcome
CALL_SECONDS = "milvusops_milvus_call_duration_seconds_sum"  # their time, slot wait included
RECONCILES = "milvusops_reconciles_total"
RESOURCES = "milvusops_resources"  # each resource counted once, from the end of its first reconcile on


def calls_by_method(text: str) -> Counter[str]:
    return by_label(text, CALLS, "method")


def milliseconds_by_method(text: str) -> Counter[str]:
    """Each method's calls' time in all, in whole milliseconds (from asking to answer, slot wait included)."""
    totals: Counter[str] = Counter()
    for labels, value in samples(text, CALL_SECONDS):
        totals[labels.get("method", "")] += round(1000 * value)
    return totals


def load_release_calls(calls: Counter[str]) -> int:
    """Attempts, failed ones included (milvusops_load_release_calls_total only counts successes)."""
    return sum(count for method, count in calls.items() if method.startswith(("load_", "release_")))


def reconciles(text: str) -> float:
    return sum(by_label(text, RECONCILES, "result").values())


def resources_seen(text: str) -> int:
    return sum(by_label(text, RESOURCES, "ready").values())


def describe_calls(calls: Counter[str], per: float) -> str:
    return ", ".join(f"{method} {count / per:.2f}" for method, count in sorted(calls.items()))


def operator_group(operator: OperatorProcess) -> int:
    assert operator.process is not None, "the operator is not running"
    return int(operator.process.pgid)  # the operator and anything it starts
