"""Steady state: resources in sync, left alone for a window: Kubernetes writes per minute, Milvus
calls per resource per resync interval, operator CPU and peak memory.

    .venv/bin/python -m bench.scenarios.steady [--resources 20] [--seconds 300]

Writes are counted by the API server (apiserver_request_total, so nobody's write is missed), Milvus
calls by the operator (milvusops_milvus_call_duration_seconds by method), CPU from /proc/<pid>/stat
(user + system), peak memory from VmHWM in /proc/<pid>/status (the whole life of the process).
The window opens once Milvus's answer for each whole collection has caught up, plus one resync.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.e2e.helpers import OperatorProcess

from bench.lib.apiwrites import describe, split_writes, write_counts
from bench.lib.connection import create_connection, flapping
from bench.lib.environment import Environment, environment
from bench.lib.operator_metrics import calls_by_method, describe_calls, operator_group, reconciles
from bench.lib.process import Usage, usage
from bench.lib.report import Result, Row
from bench.lib.resources import listing, ready_condition, total_partitions, wait_collections_loaded, wait_ready
from bench.lib.setup import resources_in_sync


@dataclass(frozen=True)
class Reading:
    at: float
    writes: Counter[str]
    calls: Counter[str]
    reconciles: float
    usage: Usage


def reading(env: Environment, operator: OperatorProcess) -> Reading:
    text = operator.metrics()
    process = usage(operator_group(operator))
    return Reading(time.perf_counter(), write_counts(env.kube), calls_by_method(text), reconciles(text), process)


def status_changes(before: list[dict[str, Any]], after: list[dict[str, Any]], shown: int = 10) -> list[str]:
    """Which resources were written in the window, and what in their status changed (a write is a miss)."""
    old = {item["metadata"]["name"]: item for item in before}
    lines = []
    for item in after:
        name, previous = item["metadata"]["name"], old.get(item["metadata"]["name"], {})
        if previous.get("metadata", {}).get("resourceVersion") == item["metadata"]["resourceVersion"]:
            continue
        was, now = previous.get("status") or {}, item.get("status") or {}
        fields = sorted(key for key in set(was) | set(now) if was.get(key) != now.get(key))
        values = "; ".join(f"{key} {was.get(key)} -> {now.get(key)}" for key in fields if key != "lastSyncTime")
        reasons = f"{ready_condition(previous).get('reason')} -> {ready_condition(item).get('reason')}"
        lines.append(f"{name}: status fields {', '.join(fields) or 'none'} ({values}); Ready reason {reasons}")
    return lines[:shown] + ([f"and {len(lines) - shown} more"] if len(lines) > shown else [])


def events_since(env: Environment, opened: datetime) -> Counter[str]:
    """Events the operator posted (or repeated) since `opened`, by reason: a flap shows here even if undone."""
    events = env.kube.core.list_namespaced_event(env.namespace).items
    cutoff = opened.replace(microsecond=0)  # event times have whole seconds
    stamps = ((str(event.reason), event.last_timestamp or event.event_time) for event in events)
    return Counter(reason for reason, stamp in stamps if stamp is not None and stamp >= cutoff)


def run(
    env: Environment, operator: OperatorProcess, resync: float, seconds: float, flap: tuple[str, float] | None = None
) -> Result:
    """Measures every MilvusCollection of the namespace; they must all be in sync already.

    `flap`: a MilvusConnection whose status flaps (Ready False, then True) every so many seconds in the window."""
    items = listing(env.kube, env.namespace)
    count, partitions = len(items), total_partitions(items)
    names = [item["metadata"]["name"] for item in items]
    wait_ready(env.kube, env.namespace, names, timeout=60)
    lag = wait_collections_loaded(env.kube, env.namespace, timeout=600)
    print(f"steady: Milvus reported every collection (not only its partitions) loaded {lag:.1f}s later", flush=True)
    print(f"steady: settling for one resync interval ({resync:.0f}s), then measuring {seconds:.0f}s", flush=True)
    time.sleep(resync)  # passes scheduled by the loads just finished end within one interval; steady is after
    before, bodies, opened = reading(env, operator), listing(env.kube, env.namespace), datetime.now(UTC)
    with flapping(env.kube, env.namespace, *flap) if flap else nullcontext(list[float]()) as flaps:
        time.sleep(
            seconds
        )  # the window itself: nothing but the operator (and the flaps) touch the API server or Milvus
        after = reading(env, operator)
    wait_ready(env.kube, env.namespace, names, timeout=60)  # still in sync at the end
    window = after.at - before.at
    intervals = window / resync
    ours, theirs = split_writes(before.writes, after.writes)
    calls = after.calls - before.calls
    writes_per_minute = sum(ours.values()) / (window / 60)
    calls_per_resource = sum(calls.values()) / count / intervals
    states_per_partition = calls["get_load_state"] / partitions / intervals
    reconciled = after.reconciles - before.reconciles
    passes = reconciled / count / intervals
    # in sync most passes only confirm (architecture.md); each full observation lists the partitions once
    full = calls["list_partitions"] / count / intervals
    calls_per_partition = sum(calls.values()) / partitions / intervals
    cpu = (after.usage.cpu_seconds - before.usage.cpu_seconds) / window * 100
    peak, now = after.usage.peak_rss_bytes / 2**20, after.usage.rss_bytes / 2**20
    print(f"steady: the control plane's own writes in the window (not counted): {describe(theirs)}", flush=True)
    for line in status_changes(bodies, listing(env.kube, env.namespace)):
        print(f"steady: changed in the window: {line}", flush=True)
    print(f"steady: events in the window, by reason: {dict(events_since(env, opened))}", flush=True)
    flapped = f", the connection's status flapped {len(flaps)} times" if flap else ""
    summary = (
        f"steady: {count} resources ({partitions} partitions) for {window:.0f}s, resync {resync:.0f}s{flapped}: "
        f"Kubernetes writes {writes_per_minute:.1f}/min (target 0; {describe(ours)}) | "
        f"Milvus calls {calls_per_resource:.2f} per resource per resync ({describe_calls(calls, count * intervals)}); "
        f"per partition per resync: {calls_per_partition:.2f} calls, get_load_state {states_per_partition:.2f}, "
        f"full observations {full:.2f} per resource per resync, the other passes confirming | "
        f"reconciles {passes:.2f} per resource per resync | operator CPU {cpu:.1f}% of one core | "
        f"RSS {now:.0f} MB at the end, peak {peak:.0f} MB (target <= 200)"
    )
    what = f"steady, {count} resources in sync, {window:.0f} s{flapped}"
    rows = (
        Row(f"{what}: Kubernetes writes", f"{writes_per_minute:.1f} / min", ratio="target 0"),
        Row(
            f"{what}: Milvus calls per resource per resync",
            f"{calls_per_resource:.2f} ({describe_calls(calls, count * intervals)})",
            ratio=(
                f"per partition: {calls_per_partition:.2f} calls, {states_per_partition:.2f} get_load_state "
                f"(target ≤ 1 call; full observations {full:.2f} per resource per resync)"
            ),
        ),
        Row(f"{what}: operator CPU", f"{cpu:.1f} % of one core"),
        Row("operator RSS at the end of the window", f"{now:.0f} MB", ratio="target ≤ 200 MB"),
        Row("operator peak RSS (VmHWM, whole run)", f"{peak:.0f} MB", ratio="target ≤ 200 MB"),
    )
    return Result(summary, rows)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resources", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--resync-seconds", type=float, default=30)
    parser.add_argument(
        "--connection", action="store_true", help="the resources go through a MilvusConnection and its Secret"
    )
    parser.add_argument(
        "--flap-seconds", type=float, help="with --connection: flap the connection's status this often in the window"
    )
    args = parser.parse_args()
    if args.flap_seconds and not args.connection:
        parser.error("--flap-seconds needs --connection")
    with environment("steady") as env:
        operator = env.start_operator(MILVUSOPS_RESYNC_SECONDS=str(args.resync_seconds))
        connection = create_connection(env.kube, env.namespace, env.milvus) if args.connection else None
        resources_in_sync(env, args.resources, connection=connection)
        flap = (connection, args.flap_seconds) if connection and args.flap_seconds else None
        print(run(env, operator, args.resync_seconds, args.seconds, flap).summary)
        return 0


if __name__ == "__main__":
    sys.exit(main())
