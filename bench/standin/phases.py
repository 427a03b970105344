"""Steady state and restart with K operator processes (shards) against the scale stand-in."""

from __future__ import annotations

import time

from tests.e2e.helpers import OperatorProcess

from bench.lib.apiwrites import describe, split_writes
from bench.lib.baselines import direct_observation
from bench.lib.environment import Environment
from bench.lib.operator_metrics import describe_calls, load_release_calls, resources_seen
from bench.lib.process import frozen
from bench.lib.report import Result, Row
from bench.lib.resources import NotReadyError, listing, total_partitions, wait_ready
from bench.standin.readings import cpu_percent, read


def steady(env: Environment, operators: list[OperatorProcess], resync: float, seconds: float) -> Result:
    items = listing(env.kube, env.namespace)
    count, partitions = len(items), total_partitions(items)
    print(f"steady: settling for one resync interval ({resync:.0f}s), then measuring {seconds:.0f}s", flush=True)
    time.sleep(resync)  # passes scheduled by the burst's loads end within one interval
    before = read(env, operators)
    time.sleep(seconds)  # the window: nothing but the operators touch the API server or the stand-in
    after = read(env, operators)
    window = after.at - before.at
    intervals = window / resync
    ours, theirs = split_writes(before.writes, after.writes)
    calls = after.calls - before.calls
    per_partition = sum(calls.values()) / partitions / intervals
    passes = after.reconciles - before.reconciles
    # each full observation lists the partitions once; the other passes only confirm (architecture.md)
    full = calls["list_partitions"] / count / intervals
    # below 1, the operator cannot keep up with its resync interval: the figures per resync shrink with it
    per_resource = passes / count / intervals
    writes = int(sum(ours.values()))
    peak, now = after.operators.peak_rss_bytes / 2**20, after.operators.rss_bytes / 2**20
    what = f"steady, {count} resources ({partitions} partitions), {len(operators)} shard(s), {window:.0f} s"
    summary = (
        f"{what}: Kubernetes writes {writes} ({describe(ours)}; control plane's own: {describe(theirs)}) | "
        f"Milvus calls per partition per resync {per_partition:.2f} ({describe_calls(calls, partitions * intervals)}; "
        f"full observations per resource per resync {full:.2f}, the other passes confirming) "
        f"| passes per resource per resync {per_resource:.2f} ({sum(calls.values()) / window:.0f} Milvus calls/s) "
        f"| CPU {cpu_percent(before, after)} | operator RSS {now:.0f} MB, peak {peak:.0f} MB (largest shard)"
    )
    rows = (
        Row(f"{what}: Kubernetes writes", str(writes), ratio="target 0"),
        Row(
            f"{what}: Milvus calls per partition per resync",
            f"{per_partition:.2f} ({describe_calls(calls, partitions * intervals)})",
            ratio=f"target ≤ 1; full observations per resource per resync {full:.2f}",
        ),
        Row(
            f"{what}: passes per resource per resync",
            f"{per_resource:.2f} ({sum(calls.values()) / window:.0f} Milvus calls/s)",
            ratio="1 = keeps up with the resync",
        ),
        Row(f"{what}: CPU (% of one core)", cpu_percent(before, after)),
        Row(f"{what}: operator RSS now / peak (largest shard)", f"{now:.0f} / {peak:.0f} MB"),
    )
    return Result(summary, rows)


def wait_seen(operators: list[OperatorProcess], count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        seen = sum(resources_seen(operator.metrics()) for operator in operators)
        if seen >= count:
            return
        time.sleep(0.25)
    raise NotReadyError(f"restarted operators observed {seen} of {count} resources in {timeout:.0f}s")


def restart(
    env: Environment, operators: list[OperatorProcess], settings: list[dict[str, str]], concurrency: int
) -> tuple[Result, list[OperatorProcess]]:
    """Stop every shard, start them all again; the same observation calls made directly are the baseline."""
    items = listing(env.kube, env.namespace)
    count = len(items)
    wait_ready(env.kube, env.namespace, [item["metadata"]["name"] for item in items], timeout=120)
    for operator in operators:
        operator.stop()
    started = time.perf_counter()
    restarted = [env.start_operator(**setting) for setting in settings]
    up = time.perf_counter() - started
    before = read(env, restarted)
    wait_seen(restarted, count, timeout=300 + 0.2 * count)
    after = read(env, restarted)
    observed = after.at - started
    loads = load_release_calls(after.calls)
    ours, _ = split_writes(before.writes, after.writes)
    writes = int(sum(ours.values()))
    with frozen(operator.process.pgid for operator in restarted if operator.process is not None):
        direct_seconds = direct_observation(env.milvus, [item["spec"]["collectionName"] for item in items], concurrency)
    observing = observed - up
    what = f"restart, {count} resources in sync, {len(operators)} shard(s)"
    summary = (
        f"{what}: start → all observed {observed:.1f}s ({up:.1f}s until every shard serves metrics, then "
        f"{observing:.1f}s; the same calls direct, {concurrency} at a time, {direct_seconds:.1f}s: ratio "
        f"{observing / direct_seconds:.2f}) | load/release calls {loads} | Kubernetes writes after start {writes} "
        f"({describe(ours)}) | CPU while observing {cpu_percent(before, after)} | "
        f"operator peak RSS {after.operators.peak_rss_bytes / 2**20:.0f} MB (largest shard)"
    )
    rows = (
        Row(
            f"{what}: start → all observed (processes up, then observing)",
            f"{observed:.1f} s ({up:.1f} + {observing:.1f})",
            f"{direct_seconds:.1f} s same calls, direct",
            f"{observing / direct_seconds:.2f} (observing part)",
        ),
        Row(f"{what}: load/release calls", str(loads), ratio="target 0"),
        Row(f"{what}: CPU while observing (% of one core)", cpu_percent(before, after)),
    )
    return Result(summary, rows), restarted
