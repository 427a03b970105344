"""Readings of the operators (summed over shards), the API server and the stand-in, at one moment."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from tests.e2e.helpers import OperatorProcess

from bench.lib.apiwrites import write_counts
from bench.lib.environment import Environment
from bench.lib.operator_metrics import calls_by_method, operator_group, reconciles, resources_seen
from bench.lib.process import Usage, usage


@dataclass(frozen=True)
class Reading:
    """Operators summed (CPU, calls), peak RSS the largest of them; API server and stand-in apart."""

    at: float
    operators: Usage
    apiserver: Usage
    standin: Usage
    calls: Counter[str]
    writes: Counter[str]
    reconciles: float
    seen: int


def sum_usage(readings: list[Usage]) -> Usage:
    cpu = sum(u.cpu_seconds for u in readings)
    return Usage(cpu, max(u.peak_rss_bytes for u in readings), max(u.rss_bytes for u in readings))


def read(env: Environment, operators: list[OperatorProcess]) -> Reading:
    texts = [operator.metrics() for operator in operators]
    calls: Counter[str] = Counter()
    for text in texts:
        calls += calls_by_method(text)
    assert env.plane.apiserver is not None and env.milvus.process is not None
    return Reading(
        time.perf_counter(),
        sum_usage([usage(operator_group(operator)) for operator in operators]),
        usage(env.plane.apiserver.pgid),
        usage(env.milvus.process.pgid),
        calls,
        write_counts(env.kube),
        sum(reconciles(text) for text in texts),
        sum(resources_seen(text) for text in texts),
    )


def cpu_percent(before: Reading, after: Reading) -> str:
    seconds = after.at - before.at
    parts = {"operators": (before.operators, after.operators), "API server": (before.apiserver, after.apiserver)}
    parts["stand-in"] = (before.standin, after.standin)
    return ", ".join(f"{name} {(b.cpu_seconds - a.cpu_seconds) / seconds * 100:.0f}%" for name, (a, b) in parts.items())
